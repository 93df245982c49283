//! `tftp://`, `http://` and `https://` URLs: parsing (bounded) and relative resolution.
//!
//! Only what a boot loader needs: scheme, host (IPv4, `[IPv6]` or a DNS name), optional port
//! and a path (with an optional `?query`, kept verbatim). No user info (`user@host` is
//! refused), no fragments (dropped). Paths are normalised: `.` and `..` segments are resolved
//! and `..` never climbs above the root. Control characters and spaces are refused in a URL
//! and percent-encoded when they come from a relative reference ([`Url::join`]), because
//! config files write paths, not URLs.

use std::fmt;

/// Longest URL accepted (bytes).
pub const MAX_URL_LEN: usize = 2048;
/// Longest host name (RFC 1035).
pub const MAX_HOST_LEN: usize = 253;

/// A URL scheme leapboot can fetch from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// TFTP (RFC 1350), port 69.
    Tftp,
    /// HTTP/1.1, port 80.
    Http,
    /// HTTP/1.1 over TLS, port 443.
    Https,
}

impl Scheme {
    /// `tftp`, `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Tftp => "tftp",
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Tftp => 69,
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A parsed URL. `path` always starts with `/`; `host` is lower case, IPv6 without brackets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Url {
    /// The scheme.
    pub scheme: Scheme,
    /// Host name or address literal.
    pub host: String,
    /// Port (the scheme's default when not given).
    pub port: u16,
    /// Normalised absolute path, percent-encoding kept; a `?query` follows it verbatim.
    pub path: String,
}

/// Why a string is not a URL leapboot fetches.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // each variant is documented by its message
pub enum UrlError {
    #[error("URL longer than {MAX_URL_LEN} bytes")]
    TooLong,
    #[error("not a URL (expected tftp://, http:// or https://)")]
    NoScheme,
    #[error("unsupported scheme '{0}' (tftp, http and https are)")]
    Scheme(String),
    #[error("no host in the URL")]
    NoHost,
    #[error("bad host '{0}'")]
    BadHost(String),
    #[error("bad port '{0}'")]
    BadPort(String),
    #[error("user names in URLs are not supported")]
    UserInfo,
    #[error("the URL contains a space or control character")]
    BadChar,
}

fn is_url_char(b: u8) -> bool {
    (0x21..0x7f).contains(&b)
}

impl Url {
    /// Parses an absolute URL.
    pub fn parse(s: &str) -> Result<Url, UrlError> {
        if s.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        if !s.bytes().all(is_url_char) {
            return Err(UrlError::BadChar);
        }
        let (scheme, rest) = s.split_once("://").ok_or(UrlError::NoScheme)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "tftp" => Scheme::Tftp,
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(UrlError::Scheme(scheme.chars().take(16).collect())),
        };
        let rest = rest.split('#').next().unwrap_or("");
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.contains('@') {
            return Err(UrlError::UserInfo);
        }
        let (host, port) = split_host_port(authority)?;
        let port = match port {
            None => scheme.default_port(),
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(UrlError::BadPort(p.chars().take(16).collect())),
            },
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        Ok(Url {
            scheme,
            host,
            port,
            path: normalize_path(&path),
        })
    }

    /// Resolves `reference` against this URL: an absolute URL is parsed as is; `/x` replaces
    /// the path; anything else is relative to this URL's directory (the path up to its last
    /// `/`). Spaces and control characters in a reference are percent-encoded.
    pub fn join(&self, reference: &str) -> Result<Url, UrlError> {
        if reference.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        if reference.contains("://") {
            return Url::parse(reference);
        }
        let reference = encode(reference);
        let path = if let Some(r) = reference.strip_prefix("//") {
            return Url::parse(&format!("{}://{r}", self.scheme.as_str()));
        } else if reference.starts_with('/') {
            reference
        } else {
            let p = self.path.split('?').next().unwrap_or("/");
            let dir = &p[..p.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{reference}")
        };
        if path.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        Ok(Url {
            path: normalize_path(&path),
            ..self.clone()
        })
    }

    /// `scheme://host[:port]`, the port shown only when it is not the default.
    pub fn origin(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.scheme.default_port() {
            format!("{}://{host}", self.scheme.as_str())
        } else {
            format!("{}://{host}:{}", self.scheme.as_str(), self.port)
        }
    }

    /// The path without its query, percent-decoded (what a TFTP server is asked for).
    pub fn decoded_path(&self) -> String {
        decode(self.path.split('?').next().unwrap_or("/"))
    }

    /// `host:port` for the HTTP `Host:` header (the port only when not the default).
    pub fn host_header(&self) -> String {
        self.origin()
            .split_once("://")
            .map_or(String::new(), |(_, h)| h.to_string())
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin(), self.path)
    }
}

fn split_host_port(authority: &str) -> Result<(String, Option<&str>), UrlError> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| UrlError::BadHost(authority.chars().take(64).collect()))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(UrlError::BadHost(h.chars().take(64).collect()));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| UrlError::BadPort(p.chars().take(16).collect()))?,
            ),
        };
        (h.to_ascii_lowercase(), port)
    } else {
        let (h, p) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let ok = !h.is_empty()
            && h.len() <= MAX_HOST_LEN
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if h.is_empty() {
            return Err(UrlError::NoHost);
        }
        if !ok {
            return Err(UrlError::BadHost(h.chars().take(64).collect()));
        }
        (h.to_ascii_lowercase(), p)
    };
    Ok((host, port))
}

/// Resolves `.` and `..` in the path part (the query is kept as is).
fn normalize_path(p: &str) -> String {
    let (path, query) = match p.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (p, None),
    };
    let mut out = crate::fs::normalize(path);
    // A trailing slash is meaningful for joins ("dir/" + "x" = "dir/x").
    if path.ends_with('/') && out != "/" {
        out.push('/');
    }
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Percent-encodes what may not appear in a URL (spaces, control and non-ASCII bytes).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if is_url_char(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-decodes `s` (invalid escapes are kept literally; the result is lossy UTF-8).
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn parses_the_three_schemes() {
        let t = u("tftp://10.0.2.2/pxelinux.cfg/default");
        assert_eq!(
            (t.scheme, t.host.as_str(), t.port, t.path.as_str()),
            (Scheme::Tftp, "10.0.2.2", 69, "/pxelinux.cfg/default")
        );
        let h = u("HTTP://Boot.Example:8080");
        assert_eq!(
            (h.host.as_str(), h.port, h.path.as_str()),
            ("boot.example", 8080, "/")
        );
        let s = u("https://[fd00::1]:8443/a/./b/../c?x=1#frag");
        assert_eq!(
            (s.scheme, s.host.as_str(), s.port, s.path.as_str()),
            (Scheme::Https, "fd00::1", 8443, "/a/c?x=1")
        );
        assert_eq!(s.to_string(), "https://[fd00::1]:8443/a/c?x=1");
        assert_eq!(u("http://h?q").path, "/?q");
        assert_eq!(u("http://h:80/x").to_string(), "http://h/x");
        assert_eq!(u("http://h:81/x").host_header(), "h:81");
    }

    #[test]
    fn refuses_what_is_not_a_fetchable_url() {
        for (s, e) in [
            ("ftp://h/x", UrlError::Scheme("ftp".into())),
            ("/boot/vmlinuz", UrlError::NoScheme),
            ("http:///x", UrlError::NoHost),
            ("http://u:p@h/x", UrlError::UserInfo),
            ("http://h:0/", UrlError::BadPort("0".into())),
            ("http://h:99999/", UrlError::BadPort("99999".into())),
            ("http://h x/", UrlError::BadChar),
            ("http://[zz]/", UrlError::BadHost("zz".into())),
            ("http://h%41/", UrlError::BadHost("h%41".into())),
        ] {
            assert_eq!(Url::parse(s), Err(e), "{s}");
        }
        assert_eq!(
            Url::parse(&format!("http://h/{}", "a".repeat(MAX_URL_LEN))),
            Err(UrlError::TooLong)
        );
    }

    #[test]
    fn joins_like_a_browser_within_the_root() {
        let base = u("http://10.0.2.2/boot/ipxe/menu.ipxe");
        for (r, want) in [
            ("vmlinuz", "http://10.0.2.2/boot/ipxe/vmlinuz"),
            ("../linux", "http://10.0.2.2/boot/linux"),
            ("../../../../etc", "http://10.0.2.2/etc"),
            ("/abs/x", "http://10.0.2.2/abs/x"),
            ("//other:81/y", "http://other:81/y"),
            ("tftp://10.0.2.3/k", "tftp://10.0.2.3/k"),
            ("a b", "http://10.0.2.2/boot/ipxe/a%20b"),
        ] {
            assert_eq!(base.join(r).unwrap().to_string(), want, "{r}");
        }
        assert_eq!(
            u("tftp://h/dir/").join("x").unwrap().path,
            "/dir/x",
            "a trailing slash is a directory"
        );
        assert_eq!(u("tftp://h/a%20b").decoded_path(), "/a b");
        assert_eq!(decode("%zz%4"), "%zz%4");
    }

    proptest! {
        #[test]
        fn never_panics_and_round_trips(s in "\\PC{0,300}", r in "\\PC{0,100}") {
            if let Ok(url) = Url::parse(&s) {
                let again = Url::parse(&url.to_string());
                prop_assert_eq!(again.as_ref(), Ok(&url));
                let _ = url.join(&r);
                let _ = url.decoded_path();
            }
            let _ = decode(&s);
        }
    }
}
