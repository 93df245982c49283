//! HTTP/1.1 client: `GET` (and `HEAD` for sizes), `Content-Length`, chunked and
//! read-to-close bodies, at most [`MAX_REDIRECTS`] redirects, a response head of at most
//! [`MAX_HEAD_BYTES`], and HTTPS (rustls, in-process with the cargo feature `https`, else
//! through the `leapboot-tls` helper: [`super::tls`]) verified against the CA certificates
//! of [`FetchConfig::ca_certificates`]: with none configured, HTTPS is refused with a
//! message saying how to add one, never done unchecked.
//!
//! [`parse_head`] and [`Chunked`] are pure and fuzzed; the socket side waits at most
//! [`TICK`] per call, so cancel and the overall deadline are seen that often, and a
//! connection quiet for the idle limit ends the transfer. A request that fails before any
//! body byte arrived (connection refused, reset) is tried again, at most `retries` times,
//! within the same overall bound. An HTTPS URL redirecting to plain HTTP is refused.
//!
//! [`TICK`]: super::fetch::TICK

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::ops::Range;
use std::time::{Duration, Instant};

use super::fetch::{printable, FetchConfig, NetError, Run};
use super::url::{Scheme, Url};

/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 5;
/// Largest response head (status line and headers).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header lines.
pub const MAX_HEADERS: usize = 100;
/// Longest chunk-size or trailer line.
const MAX_LINE: usize = 1024;
/// Most trailer lines after a chunked body.
const MAX_TRAILERS: usize = 32;

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Head {
    /// Status code.
    pub status: u16,
    /// Reason phrase, made printable.
    pub reason: String,
    /// `Content-Length`.
    pub content_length: Option<u64>,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// `Location`.
    pub location: Option<String>,
}

/// Where a response head ends in `buf` (the index after the blank line), if it does.
/// `from` is where the previous search stopped, so repeated calls stay linear.
pub fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    let mut i = start;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf[..i].ends_with(b"\n") {
                return Some(i + 1);
            }
            if buf[..i].ends_with(b"\n\r") {
                return Some(i + 1);
            }
        }
        i += 1;
    }
    None
}

/// Parses a response head (the bytes up to and including the blank line).
pub fn parse_head(b: &[u8]) -> Result<Head, String> {
    if b.len() > MAX_HEAD_BYTES {
        return Err(format!("response head over {MAX_HEAD_BYTES} bytes"));
    }
    let text = String::from_utf8_lossy(b);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(format!(
            "not an HTTP/1.x response: '{}'",
            printable(status_line, 60)
        ));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..=999).contains(s))
        .ok_or_else(|| format!("bad status line '{}'", printable(status_line, 60)))?;
    let mut head = Head {
        status,
        reason: printable(parts.next().unwrap_or("").trim(), 80),
        ..Head::default()
    };
    let mut count = 0;
    for line in lines {
        if line.is_empty() {
            break;
        }
        count += 1;
        if count > MAX_HEADERS {
            return Err(format!("more than {MAX_HEADERS} header lines"));
        }
        if line.starts_with([' ', '\t']) {
            return Err("folded header lines are not accepted".into());
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("bad header line '{}'", printable(line, 60)));
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                let n = value
                    .parse::<u64>()
                    .map_err(|_| format!("bad Content-Length '{}'", printable(value, 30)))?;
                if head.content_length.is_some_and(|m| m != n) {
                    return Err("two different Content-Length headers".into());
                }
                head.content_length = Some(n);
            }
            "transfer-encoding" => {
                for coding in value.split(',').map(str::trim) {
                    if coding.eq_ignore_ascii_case("chunked") {
                        head.chunked = true;
                    } else if !coding.eq_ignore_ascii_case("identity") {
                        return Err(format!(
                            "unsupported Transfer-Encoding '{}'",
                            printable(coding, 30)
                        ));
                    }
                }
            }
            "location" => head.location = Some(value.to_string()),
            _ => {}
        }
    }
    if head.chunked {
        // RFC 9112 § 6.3: chunked wins over a Content-Length.
        head.content_length = None;
    }
    Ok(head)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Size,
    Data(u64),
    DataEnd(bool),
    Trailer,
    Done,
}

/// The chunked transfer-coding decoder, as a push parser over whatever bytes arrived.
#[derive(Debug)]
pub struct Chunked {
    state: St,
    line: Vec<u8>,
    trailers: usize,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: St::Size,
            line: Vec::new(),
            trailers: 0,
        }
    }
}

impl Chunked {
    /// Whether the final chunk and trailers were read.
    pub fn done(&self) -> bool {
        self.state == St::Done
    }

    /// Takes a line ending in `\n` from `input` into `self.line`; `Some` when complete.
    fn take_line(&mut self, input: &[u8]) -> Result<(usize, bool), String> {
        let (n, complete) = match input.iter().position(|&c| c == b'\n') {
            Some(i) => (i + 1, true),
            None => (input.len(), false),
        };
        if self.line.len() + n > MAX_LINE {
            return Err("chunk-size or trailer line too long".into());
        }
        self.line.extend_from_slice(&input[..n]);
        Ok((n, complete))
    }

    /// Consumes a prefix of `input`: returns how many bytes were used and which of them (a
    /// range of `input`) are body data. Call again with the rest until [`Chunked::done`].
    pub fn step(&mut self, input: &[u8]) -> Result<(usize, Range<usize>), String> {
        match self.state {
            St::Done => Ok((0, 0..0)),
            St::Data(rem) => {
                let n = rem.min(input.len() as u64) as usize;
                self.state = if rem == n as u64 {
                    St::DataEnd(false)
                } else {
                    St::Data(rem - n as u64)
                };
                Ok((n, 0..n))
            }
            St::DataEnd(cr) => match input.first() {
                None => Ok((0, 0..0)),
                Some(b'\r') if !cr => {
                    self.state = St::DataEnd(true);
                    Ok((1, 0..0))
                }
                Some(b'\n') => {
                    self.state = St::Size;
                    Ok((1, 0..0))
                }
                Some(_) => Err("chunk data not followed by CRLF".into()),
            },
            St::Size => {
                let (n, complete) = self.take_line(input)?;
                if complete {
                    let line = String::from_utf8_lossy(&self.line).into_owned();
                    self.line.clear();
                    let hex = line.split(';').next().unwrap_or("").trim();
                    let size = (!hex.is_empty() && hex.len() <= 16)
                        .then(|| u64::from_str_radix(hex, 16).ok())
                        .flatten()
                        .ok_or_else(|| format!("bad chunk size '{}'", printable(hex, 20)))?;
                    self.state = if size == 0 {
                        St::Trailer
                    } else {
                        St::Data(size)
                    };
                }
                Ok((n, 0..0))
            }
            St::Trailer => {
                let (n, complete) = self.take_line(input)?;
                if complete {
                    let empty = self.line.iter().all(|c| matches!(c, b'\r' | b'\n'));
                    self.line.clear();
                    if empty {
                        self.state = St::Done;
                    } else {
                        self.trailers += 1;
                        if self.trailers > MAX_TRAILERS {
                            return Err("too many trailer lines".into());
                        }
                    }
                }
                Ok((n, 0..0))
            }
        }
    }
}

/// Decodes a whole chunked body held in memory (tests and the fuzz target), bounded.
pub fn decode_chunked(mut input: &[u8], max: u64) -> Result<Vec<u8>, String> {
    let mut d = Chunked::default();
    let mut out = Vec::new();
    while !d.done() {
        let (n, r) = d.step(input)?;
        if n == 0 {
            return Err("chunked body cut short".into());
        }
        out.extend_from_slice(&input[r]);
        if out.len() as u64 > max {
            return Err("chunked body over the limit".into());
        }
        input = &input[n..];
    }
    Ok(out)
}

/// A connection: plain TCP, TLS over it in-process, or TLS through the helper.
enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "https")]
    Tls(Box<leapboot_tls::rustls::StreamOwned<leapboot_tls::rustls::ClientConnection, TcpStream>>),
    #[cfg_attr(feature = "https", allow(dead_code))]
    Helper(Box<super::tls::helper::Helper>),
}

impl Stream {
    fn set_read_timeout(&mut self, d: Duration) {
        match self {
            Stream::Plain(s) => {
                let _ = s.set_read_timeout(Some(d));
            }
            #[cfg(feature = "https")]
            Stream::Tls(t) => {
                let _ = t.sock.set_read_timeout(Some(d));
            }
            Stream::Helper(h) => h.set_read_timeout(d),
        }
    }
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            #[cfg(feature = "https")]
            Stream::Tls(t) => t.read(buf),
            Stream::Helper(h) => h.read(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(buf),
            #[cfg(feature = "https")]
            Stream::Tls(t) => {
                t.write_all(buf)?;
                t.flush()
            }
            Stream::Helper(h) => h.write_all(buf),
        }
    }
}

/// A connection with its receive buffer.
struct Conn {
    s: Stream,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    last_byte: Instant,
    tls: bool,
    unclean_eof: bool,
}

impl Conn {
    /// Refills the buffer if it is empty, waiting for data within the limits. `Ok(false)`
    /// at end of stream.
    fn fill(&mut self, run: &Run<'_, '_>) -> Result<bool, NetError> {
        if self.pos < self.len {
            return Ok(true);
        }
        loop {
            run.check()?;
            if self.last_byte.elapsed() >= run.limits.idle {
                return Err(run.timeout(format!(
                    "the HTTP server sent nothing for {} s",
                    run.limits.idle.as_secs()
                )));
            }
            self.s.set_read_timeout(run.tick());
            match self.s.read(&mut self.buf) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.pos = 0;
                    self.len = n;
                    self.last_byte = Instant::now();
                    return Ok(true);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                // A TLS peer that closes without close_notify (Python's ssl module does):
                // the end, but a read-to-close body cannot be trusted complete.
                Err(e) if self.tls && e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.unclean_eof = true;
                    return Ok(false);
                }
                Err(e) => return Err(io_error(run, self.tls, "receiving", e)),
            }
        }
    }

    fn data(&self) -> &[u8] {
        &self.buf[self.pos..self.len]
    }
}

fn io_error(run: &Run<'_, '_>, tls: bool, what: &str, e: std::io::Error) -> NetError {
    if tls && e.kind() == std::io::ErrorKind::InvalidData {
        return NetError::Tls {
            url: run.url.clone(),
            message: format!(
                "{e}; the server's certificate must be signed by one of the CA certificates \
                 in `ca_certificates` (/etc/leapboot.toml) and name this host"
            ),
        };
    }
    run.io(what, e)
}

fn resolve(url: &Url, run: &Run<'_, '_>) -> Result<Vec<SocketAddr>, NetError> {
    let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| run.io(&format!("cannot resolve {}", url.host), e))?
        .take(8)
        .collect();
    if addrs.is_empty() {
        return Err(run.server(format!("{} has no address", url.host)));
    }
    Ok(addrs)
}

fn connect(url: &Url, cfg: &FetchConfig, run: &Run<'_, '_>) -> Result<Conn, NetError> {
    let tls_error = |message| NetError::Tls {
        url: run.url.clone(),
        message,
    };
    let https = url.scheme == Scheme::Https;
    if https {
        super::tls::require_ca(cfg).map_err(tls_error)?;
    }
    // In-process TLS when built in; else the helper, found before anything connects.
    #[cfg(feature = "https")]
    let tls = if https {
        Some(super::tls::client(cfg).map_err(tls_error)?)
    } else {
        None
    };
    #[cfg(not(feature = "https"))]
    let helper = if https {
        Some(
            super::tls::helper::locate()
                .ok_or_else(|| tls_error(super::tls::helper::NO_HELPER.into()))?,
        )
    } else {
        None
    };
    let mut last = None;
    let mut tcp = None;
    for a in resolve(url, run)? {
        run.check()?;
        let left = run.limits.overall.saturating_sub(run.start.elapsed());
        let wait = run.limits.idle.min(left).max(Duration::from_millis(1));
        match TcpStream::connect_timeout(&a, wait) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = Some((a, e)),
        }
    }
    let tcp = match (tcp, last) {
        (Some(s), _) => s,
        (None, Some((a, e))) => return Err(run.io(&format!("cannot connect to {a}"), e)),
        (None, None) => return Err(run.server("no address to connect to".into())),
    };
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_write_timeout(Some(run.limits.idle));
    #[cfg(feature = "https")]
    let s = match tls {
        Some(tls) => {
            let conn = super::tls::connection(tls, &url.host).map_err(tls_error)?;
            Stream::Tls(Box::new(leapboot_tls::rustls::StreamOwned::new(conn, tcp)))
        }
        None => Stream::Plain(tcp),
    };
    #[cfg(not(feature = "https"))]
    let s = match helper {
        Some(path) => Stream::Helper(Box::new(
            super::tls::helper::start(&path, tcp, &url.host, &cfg.ca_certificates)
                .map_err(tls_error)?,
        )),
        None => Stream::Plain(tcp),
    };
    Ok(Conn {
        s,
        buf: vec![0u8; 64 * 1024],
        pos: 0,
        len: 0,
        last_byte: Instant::now(),
        tls: https,
        unclean_eof: false,
    })
}

/// Sends the request and reads the head.
fn request(
    url: &Url,
    method: &str,
    cfg: &FetchConfig,
    run: &Run<'_, '_>,
) -> Result<(Conn, Head), NetError> {
    let mut c = connect(url, cfg, run)?;
    let req = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: leapboot/{}\r\nAccept: */*\r\n\
         Accept-Encoding: identity\r\nConnection: close\r\n\r\n",
        url.path,
        url.host_header(),
        env!("CARGO_PKG_VERSION")
    );
    c.s.write_all(req.as_bytes())
        .map_err(|e| io_error(run, c.tls, "sending the request", e))?;
    let mut head = Vec::new();
    let mut searched = 0;
    loop {
        if !c.fill(run)? {
            return Err(run.server("the connection closed before a complete response head".into()));
        }
        let room = MAX_HEAD_BYTES + 1 - head.len();
        let take = c.data().len().min(room);
        head.extend_from_slice(&c.data()[..take]);
        if let Some(end) = head_end(&head, searched) {
            // Give back what belongs to the body.
            let extra = head.len() - end;
            c.pos += take - extra;
            head.truncate(end);
            let h = parse_head(&head).map_err(|m| run.server(m))?;
            return Ok((c, h));
        }
        c.pos += take;
        searched = head.len();
        if head.len() > MAX_HEAD_BYTES {
            return Err(run.server(format!("response head over {MAX_HEAD_BYTES} bytes")));
        }
    }
}

/// Follows redirects until a final response to `method` (within [`MAX_REDIRECTS`]).
fn final_response(
    url: &Url,
    method: &str,
    cfg: &FetchConfig,
    run: &mut Run<'_, '_>,
) -> Result<(Conn, Head, Url), NetError> {
    let mut url = url.clone();
    for _ in 0..=MAX_REDIRECTS {
        let (c, h) = with_retries(run, |run| request(&url, method, cfg, run))?;
        match h.status {
            301 | 302 | 303 | 307 | 308 => {
                let loc = h
                    .location
                    .as_deref()
                    .ok_or_else(|| run.server(format!("HTTP {} without a Location", h.status)))?;
                let next = url
                    .join(loc)
                    .map_err(|e| run.server(format!("redirect to a bad URL: {e}")))?;
                if url.scheme == Scheme::Https && next.scheme != Scheme::Https {
                    return Err(run.server(format!(
                        "refusing the redirect from HTTPS to {}",
                        printable(&next.to_string(), 200)
                    )));
                }
                log::info!("{}: redirected to {next}", run.url);
                url = next;
            }
            _ => return Ok((c, h, url)),
        }
    }
    Err(run.server(format!("more than {MAX_REDIRECTS} redirects")))
}

/// Runs `f` again after a failure that is worth retrying (the connection, before any body
/// byte), at most `retries` more times, pausing a little between attempts.
fn with_retries<T>(
    run: &mut Run<'_, '_>,
    mut f: impl FnMut(&Run<'_, '_>) -> Result<T, NetError>,
) -> Result<T, NetError> {
    let mut attempt = 0;
    loop {
        match f(run) {
            Err(NetError::Io { url, message }) if attempt < run.limits.retries => {
                attempt += 1;
                log::info!(
                    "{url}: {message}; trying again ({attempt}/{})",
                    run.limits.retries
                );
                let until = Instant::now() + Duration::from_millis(500);
                while Instant::now() < until {
                    run.check()?;
                    std::thread::sleep(run.tick().min(Duration::from_millis(50)));
                }
            }
            r => return r,
        }
    }
}

fn status_error(h: &Head, run: &Run<'_, '_>) -> NetError {
    match h.status {
        404 | 410 => NetError::NotFound {
            url: run.url.clone(),
        },
        s => run.server(format!("the HTTP server answered {s} {}", h.reason)),
    }
}

/// `GET url` into `out`.
pub(crate) fn get(
    url: &Url,
    out: &mut dyn Write,
    cfg: &FetchConfig,
    run: &mut Run<'_, '_>,
) -> Result<u64, NetError> {
    let (mut c, h, _) = final_response(url, "GET", cfg, run)?;
    if h.status != 200 {
        return Err(status_error(&h, run));
    }
    if let Some(n) = h.content_length {
        run.announce(n)?;
    }
    if h.chunked {
        let mut d = Chunked::default();
        while !d.done() {
            if !c.fill(run)? {
                return Err(run.server("the connection closed inside a chunked body".into()));
            }
            let (n, r) = d.step(c.data()).map_err(|m| run.server(m))?;
            let (from, to) = (c.pos + r.start, c.pos + r.end);
            c.pos += n;
            if to > from {
                run.deliver(out, &c.buf[from..to])?;
            }
        }
    } else {
        let want = h.content_length;
        while want.is_none_or(|w| run.bytes < w) {
            if !c.fill(run)? {
                if let Some(w) = want {
                    return Err(run.server(format!(
                        "the connection closed after {} of {w} bytes",
                        run.bytes
                    )));
                }
                if c.unclean_eof {
                    return Err(run.server(
                        "the TLS connection closed without close_notify and the body has no \
                         length: it may be cut short"
                            .into(),
                    ));
                }
                break;
            }
            let left = want.map_or(u64::MAX, |w| w - run.bytes);
            let n = (c.data().len() as u64).min(left) as usize;
            let (from, to) = (c.pos, c.pos + n);
            c.pos += n;
            run.deliver(out, &c.buf[from..to])?;
        }
    }
    Ok(run.bytes)
}

/// `HEAD url`: its `Content-Length`, if given.
pub(crate) fn probe_size(
    url: &Url,
    cfg: &FetchConfig,
    run: &mut Run<'_, '_>,
) -> Result<Option<u64>, NetError> {
    let (_, h, _) = final_response(url, "HEAD", cfg, run)?;
    if h.status != 200 {
        return Err(status_error(&h, run));
    }
    Ok(h.content_length)
}

#[cfg(test)]
mod tests;
