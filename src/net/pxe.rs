//! pxelinux's search for its configuration file, as pxelinux itself does it
//! (syslinux `core/fs/pxe/pxe.c`, "pxelinux.cfg" search):
//!
//! 1. DHCP option 209 (`config_file_209`), if given: only that file (relative to the prefix
//!    unless absolute or a URL);
//! 2. else, in the prefix directory: `pxelinux.cfg/<client UUID>` (lower case, dashed),
//!    `pxelinux.cfg/01-<mac>` (ARP type 1, lower-case hex, dashes), the client IPv4 address
//!    in upper-case hex (`C000025B`), then that name shortened one digit at a time (`C000025`
//!    ... `C`), and last `pxelinux.cfg/default`.
//!
//! The prefix is option 210 (`prefix_210`) if given, else the boot file's directory (the
//! boot file `debian-installer/amd64/pxelinux.0` gives `/debian-installer/amd64/`), else the
//! server root. Relative paths in the config (kernels, `INCLUDE`s) resolve against the same
//! prefix. This module only computes names; reading them is the caller's (a [`NetFs`]).
//!
//! [`NetFs`]: super::netfs::NetFs

use std::net::Ipv4Addr;

/// What pxelinux knows of its client: the few lease fields the search needs (the lead maps
/// the DHCP lease onto it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PxeClient {
    /// The NIC's MAC address.
    pub mac: [u8; 6],
    /// The leased IPv4 address.
    pub ip: Option<Ipv4Addr>,
    /// The client UUID (DHCP option 97, SMBIOS system UUID), as sent.
    pub uuid: Option<[u8; 16]>,
    /// The boot file (`file` field or option 67), as given.
    pub boot_file: Option<String>,
    /// DHCP option 209: the config file.
    pub config_file_209: Option<String>,
    /// DHCP option 210: the path prefix.
    pub prefix_210: Option<String>,
}

/// The UUID as pxelinux prints it: `b8945908-d6a6-41a9-611d-74a6ab80b83d`. The bytes are
/// taken in the order sent (SMBIOS's mixed-endian fields already swapped by the firmware).
pub fn uuid_name(u: &[u8; 16]) -> String {
    let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

/// `01-88-99-aa-bb-cc-dd`.
pub fn mac_name(mac: &[u8; 6]) -> String {
    let mut s = String::from("01");
    for b in mac {
        s.push_str(&format!("-{b:02x}"));
    }
    s
}

/// The directory config names are relative to, with a trailing `/`.
pub fn prefix(c: &PxeClient) -> String {
    let dir = match (&c.prefix_210, &c.boot_file) {
        (Some(p), _) if !p.is_empty() => p.clone(),
        (_, Some(b)) => b.rfind('/').map_or(String::new(), |i| b[..=i].to_string()),
        _ => String::new(),
    };
    if dir.contains("://") {
        return if dir.ends_with('/') {
            dir
        } else {
            format!("{dir}/")
        };
    }
    let mut d = crate::fs::normalize(&dir);
    if !d.ends_with('/') {
        d.push('/');
    }
    d
}

/// Every config file pxelinux would try, in order: server paths (or URLs, when option
/// 209/210 give one).
pub fn config_candidates(c: &PxeClient) -> Vec<String> {
    let pre = prefix(c);
    let under = |name: &str| {
        if name.starts_with('/') || name.contains("://") {
            name.to_string()
        } else {
            format!("{pre}{name}")
        }
    };
    if let Some(f) = c.config_file_209.as_deref().filter(|f| !f.is_empty()) {
        return vec![under(f)];
    }
    let mut v = Vec::with_capacity(12);
    if let Some(u) = &c.uuid {
        v.push(under(&format!("pxelinux.cfg/{}", uuid_name(u))));
    }
    v.push(under(&format!("pxelinux.cfg/{}", mac_name(&c.mac))));
    if let Some(ip) = c.ip {
        let hex: String = ip.octets().iter().map(|b| format!("{b:02X}")).collect();
        for n in (1..=hex.len()).rev() {
            v.push(under(&format!("pxelinux.cfg/{}", &hex[..n])));
        }
    }
    v.push(under("pxelinux.cfg/default"));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of syslinux's own documentation (doc/pxelinux.txt).
    fn doc_client() -> PxeClient {
        PxeClient {
            mac: [0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd],
            ip: Some(Ipv4Addr::new(192, 168, 2, 91)),
            uuid: Some([
                0xb8, 0x94, 0x59, 0x08, 0xd6, 0xa6, 0x41, 0xa9, 0x61, 0x1d, 0x74, 0xa6, 0xab, 0x80,
                0xb8, 0x3d,
            ]),
            boot_file: Some("pxelinux.0".into()),
            ..PxeClient::default()
        }
    }

    #[test]
    fn search_order_is_pxelinux_documented_one() {
        let want = [
            "/pxelinux.cfg/b8945908-d6a6-41a9-611d-74a6ab80b83d",
            "/pxelinux.cfg/01-88-99-aa-bb-cc-dd",
            "/pxelinux.cfg/C0A8025B",
            "/pxelinux.cfg/C0A8025",
            "/pxelinux.cfg/C0A802",
            "/pxelinux.cfg/C0A80",
            "/pxelinux.cfg/C0A8",
            "/pxelinux.cfg/C0A",
            "/pxelinux.cfg/C0",
            "/pxelinux.cfg/C",
            "/pxelinux.cfg/default",
        ];
        assert_eq!(config_candidates(&doc_client()), want);
    }

    #[test]
    fn prefix_and_option_209_rules() {
        let table: &[(PxeClient, &[&str])] = &[
            // No UUID, no address: MAC then default; boot file in a directory.
            (
                PxeClient {
                    mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
                    boot_file: Some("debian-installer/amd64/pxelinux.0".into()),
                    ..PxeClient::default()
                },
                &[
                    "/debian-installer/amd64/pxelinux.cfg/01-52-54-00-12-34-56",
                    "/debian-installer/amd64/pxelinux.cfg/default",
                ],
            ),
            // Option 210 wins over the boot file's directory.
            (
                PxeClient {
                    boot_file: Some("a/pxelinux.0".into()),
                    prefix_210: Some("/srv/boot".into()),
                    ..PxeClient::default()
                },
                &[
                    "/srv/boot/pxelinux.cfg/01-00-00-00-00-00-00",
                    "/srv/boot/pxelinux.cfg/default",
                ],
            ),
            // Option 209: only that file, relative to the prefix...
            (
                PxeClient {
                    config_file_209: Some("configs/rack7.cfg".into()),
                    prefix_210: Some("/p/".into()),
                    ..doc_client()
                },
                &["/p/configs/rack7.cfg"],
            ),
            // ...or absolute, or a URL.
            (
                PxeClient {
                    config_file_209: Some("/abs.cfg".into()),
                    ..doc_client()
                },
                &["/abs.cfg"],
            ),
            (
                PxeClient {
                    config_file_209: Some("http://10.0.2.2/x.cfg".into()),
                    ..doc_client()
                },
                &["http://10.0.2.2/x.cfg"],
            ),
            (
                PxeClient {
                    prefix_210: Some("http://10.0.2.2/pxe".into()),
                    ..PxeClient::default()
                },
                &[
                    "http://10.0.2.2/pxe/pxelinux.cfg/01-00-00-00-00-00-00",
                    "http://10.0.2.2/pxe/pxelinux.cfg/default",
                ],
            ),
        ];
        for (c, want) in table {
            assert_eq!(&config_candidates(c), want, "{c:?}");
        }
        assert_eq!(prefix(&PxeClient::default()), "/");
        assert_eq!(
            prefix(&PxeClient {
                prefix_210: Some("../../x".into()),
                ..PxeClient::default()
            }),
            "/x/",
            "a prefix cannot leave the server root"
        );
    }
}
