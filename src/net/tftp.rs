//! TFTP client: RFC 1350 read requests with the RFC 2347 option extension, `blksize`
//! (RFC 2348), `tsize` and `timeout` (RFC 2349) and `windowsize` (RFC 7440).
//!
//! [`decode`] and the `encode_*` functions are the packet codec: pure, bounded (at most
//! [`MAX_OPTIONS`] options, strings within the packet), fuzzed. [`Window`] is the receive
//! logic (which block is next, when to acknowledge, block-number roll-over) without a socket.
//! [`fetch`] runs them over UDP: one read request, the server's new port locked in as the
//! transfer id, data streamed into the writer, bounded by the transfer's [`Limits`]
//! (size checked against `tsize` before the first data, the overall deadline, the cancel flag
//! every [`TICK`]); a lost packet is recovered by re-sending the last acknowledgement (or the
//! request) after the negotiated timeout, at most `retries` times in a row. A server that
//! refuses the options (error 8) is asked again without them, once.
//!
//! [`Limits`]: super::fetch::Limits
//! [`TICK`]: super::fetch::TICK

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use super::fetch::{printable, NetError, Run};
use super::url::Url;

/// Most options read from one packet.
pub const MAX_OPTIONS: usize = 16;
/// Largest block size asked for or accepted (RFC 2348's maximum).
pub const MAX_BLKSIZE: u16 = 65464;

const RRQ: u16 = 1;
const WRQ: u16 = 2;
const DATA: u16 = 3;
const ACK: u16 = 4;
const ERROR: u16 = 5;
const OACK: u16 = 6;

/// A TFTP packet, borrowing from the datagram.
#[derive(Debug, PartialEq, Eq)]
#[allow(missing_docs)] // the fields are the RFC 1350 packet fields
pub enum Packet<'a> {
    /// A read (`write: false`) or write request.
    Request {
        write: bool,
        file: &'a [u8],
        mode: &'a [u8],
        options: OptionList<'a>,
    },
    /// A block of the file.
    Data { block: u16, data: &'a [u8] },
    /// An acknowledgement.
    Ack { block: u16 },
    /// An error from the peer.
    Error { code: u16, message: &'a [u8] },
    /// The server's option acknowledgement.
    Oack { options: OptionList<'a> },
}

/// Why a datagram is not a TFTP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)]
pub enum DecodeError {
    #[error("packet shorter than its header")]
    Short,
    #[error("unknown opcode {0}")]
    Opcode(u16),
    #[error("string not NUL-terminated")]
    Unterminated,
    #[error("more than {MAX_OPTIONS} options")]
    TooManyOptions,
}

/// Splits NUL-terminated strings off `b`.
fn strings(b: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
    if b.is_empty() {
        return Ok(Vec::new());
    }
    if b.last() != Some(&0) {
        return Err(DecodeError::Unterminated);
    }
    let parts: Vec<&[u8]> = b[..b.len() - 1].split(|&c| c == 0).collect();
    if parts.len() > 2 + 2 * MAX_OPTIONS {
        return Err(DecodeError::TooManyOptions);
    }
    Ok(parts)
}

/// Option name/value pairs, borrowing from the datagram.
pub type OptionList<'a> = Vec<(&'a [u8], &'a [u8])>;

fn pairs<'a>(s: &[&'a [u8]]) -> Result<OptionList<'a>, DecodeError> {
    if s.len() % 2 != 0 {
        return Err(DecodeError::Unterminated);
    }
    if s.len() / 2 > MAX_OPTIONS {
        return Err(DecodeError::TooManyOptions);
    }
    Ok(s.chunks(2).map(|c| (c[0], c[1])).collect())
}

/// Decodes one datagram.
pub fn decode(b: &[u8]) -> Result<Packet<'_>, DecodeError> {
    if b.len() < 2 {
        return Err(DecodeError::Short);
    }
    let op = u16::from_be_bytes([b[0], b[1]]);
    let rest = &b[2..];
    let num = || {
        if rest.len() < 2 {
            Err(DecodeError::Short)
        } else {
            Ok(u16::from_be_bytes([rest[0], rest[1]]))
        }
    };
    match op {
        RRQ | WRQ => {
            let s = strings(rest)?;
            if s.len() < 2 {
                return Err(DecodeError::Unterminated);
            }
            Ok(Packet::Request {
                write: op == WRQ,
                file: s[0],
                mode: s[1],
                options: pairs(&s[2..])?,
            })
        }
        DATA => Ok(Packet::Data {
            block: num()?,
            data: &rest[2..],
        }),
        ACK => Ok(Packet::Ack { block: num()? }),
        ERROR => {
            let code = num()?;
            let m = &rest[2..];
            // Servers that forget the NUL are common enough to accept.
            let message = m.split(|&c| c == 0).next().unwrap_or(&[]);
            Ok(Packet::Error { code, message })
        }
        OACK => Ok(Packet::Oack {
            options: pairs(&strings(rest)?)?,
        }),
        other => Err(DecodeError::Opcode(other)),
    }
}

/// A read request for `file` in octet mode with `options`.
pub fn encode_rrq(file: &str, options: &[(&str, String)]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + file.len() + 8 + options.len() * 16);
    v.extend_from_slice(&RRQ.to_be_bytes());
    for s in [file, "octet"] {
        v.extend_from_slice(s.as_bytes());
        v.push(0);
    }
    for (k, val) in options {
        v.extend_from_slice(k.as_bytes());
        v.push(0);
        v.extend_from_slice(val.as_bytes());
        v.push(0);
    }
    v
}

/// An acknowledgement of `block`.
pub fn encode_ack(block: u16) -> [u8; 4] {
    let b = block.to_be_bytes();
    [0, ACK as u8, b[0], b[1]]
}

/// An error packet.
pub fn encode_error(code: u16, message: &str) -> Vec<u8> {
    let mut v = vec![0, ERROR as u8];
    v.extend_from_slice(&code.to_be_bytes());
    v.extend_from_slice(message.as_bytes());
    v.push(0);
    v
}

/// The option values asked for (RFC 2347 names). `None`: not asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Block size (RFC 2348); 1468 fills an Ethernet frame.
    pub blksize: Option<u16>,
    /// Blocks per acknowledgement (RFC 7440).
    pub windowsize: Option<u16>,
    /// Retransmission timeout in seconds (RFC 2349); also ours.
    pub timeout_s: u8,
    /// Ask for the size (RFC 2349 `tsize`).
    pub tsize: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            blksize: Some(1468),
            windowsize: Some(16),
            timeout_s: 1,
            tsize: true,
        }
    }
}

/// What was agreed with the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// Bytes per data block.
    pub blksize: u16,
    /// Blocks per acknowledgement.
    pub windowsize: u16,
    /// The file size, if announced.
    pub tsize: Option<u64>,
    /// Retransmission timeout.
    pub timeout: Duration,
}

impl Negotiated {
    /// RFC 1350's values, when the server ignored the options.
    pub fn plain(o: &Options) -> Negotiated {
        Negotiated {
            blksize: 512,
            windowsize: 1,
            tsize: None,
            timeout: Duration::from_secs(u64::from(o.timeout_s.max(1))),
        }
    }
}

fn opt_list(o: &Options) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    if let Some(b) = o.blksize {
        v.push(("blksize", b.clamp(8, MAX_BLKSIZE).to_string()));
    }
    if o.tsize {
        v.push(("tsize", "0".to_string()));
    }
    v.push(("timeout", o.timeout_s.max(1).to_string()));
    if let Some(w) = o.windowsize {
        v.push(("windowsize", w.max(1).to_string()));
    }
    v
}

/// Checks the server's OACK against what was asked: a value may be lowered, never raised,
/// and only options that were asked may appear.
pub fn negotiate(asked: &Options, oack: &[(&[u8], &[u8])]) -> Result<Negotiated, String> {
    let mut n = Negotiated::plain(asked);
    for (k, v) in oack {
        let key = String::from_utf8_lossy(k).to_ascii_lowercase();
        let val = std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<u64>().ok());
        let bad = || {
            format!(
                "bad option {}={}",
                printable(&key, 32),
                printable(&String::from_utf8_lossy(v), 32)
            )
        };
        match key.as_str() {
            "blksize" => match (val, asked.blksize) {
                (Some(b), Some(max)) if (8..=u64::from(max)).contains(&b) => n.blksize = b as u16,
                _ => return Err(bad()),
            },
            "windowsize" => match (val, asked.windowsize) {
                (Some(w), Some(max)) if (1..=u64::from(max.max(1))).contains(&w) => {
                    n.windowsize = w as u16
                }
                _ => return Err(bad()),
            },
            "tsize" if asked.tsize => n.tsize = Some(val.ok_or_else(bad)?),
            "timeout" => match val {
                Some(t) if (1..=255).contains(&t) => n.timeout = Duration::from_secs(t),
                _ => return Err(bad()),
            },
            _ => return Err(format!("option {} was not asked for", printable(&key, 32))),
        }
    }
    Ok(n)
}

/// What [`Window::on_data`] says to do with a data packet.
#[derive(Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Verdict {
    /// The next block: write its data; acknowledge `ack` if set; `last` ends the transfer.
    Accept { ack: Option<u16>, last: bool },
    /// A block after a gap: acknowledge the last good one (the server resends from there).
    Gap { ack: u16 },
    /// An old block (a retransmitted window): ignore.
    Old,
}

/// The receiving side of a windowed transfer.
#[derive(Debug)]
pub struct Window {
    /// Blocks received in order (the next expected block is `count + 1`, mod 2^16 on the wire).
    pub count: u64,
    blksize: u16,
    windowsize: u16,
    in_window: u16,
    gap_acked: bool,
}

impl Window {
    /// A window for the agreed values.
    pub fn new(n: &Negotiated) -> Window {
        Window {
            count: 0,
            blksize: n.blksize,
            windowsize: n.windowsize.max(1),
            in_window: 0,
            gap_acked: false,
        }
    }

    /// The wire number of the last block received in order (0 before any).
    pub fn last_block(&self) -> u16 {
        self.count as u16
    }

    /// Judges a data packet of `len` bytes numbered `block`.
    pub fn on_data(&mut self, block: u16, len: usize) -> Verdict {
        let expected = (self.count + 1) as u16;
        if block == expected {
            self.count += 1;
            self.in_window += 1;
            self.gap_acked = false;
            let last = len < usize::from(self.blksize);
            let ack = (last || self.in_window >= self.windowsize).then(|| {
                self.in_window = 0;
                block
            });
            return Verdict::Accept { ack, last };
        }
        let ahead = block.wrapping_sub(expected) < 0x8000;
        if ahead && !self.gap_acked {
            self.gap_acked = true;
            self.in_window = 0;
            Verdict::Gap {
                ack: self.last_block(),
            }
        } else {
            Verdict::Old
        }
    }
}

fn resolve(url: &Url, run: &Run<'_, '_>) -> Result<SocketAddr, NetError> {
    (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| run.io(&format!("cannot resolve {}", url.host), e))?
        .next()
        .ok_or_else(|| run.server(format!("{} has no address", url.host)))
}

/// One TFTP read in progress.
struct Session {
    sock: UdpSocket,
    server: SocketAddr,
    tid: Option<SocketAddr>,
}

enum Got<'b> {
    Packet(Packet<'b>),
    Nothing,
}

impl Session {
    fn open(url: &Url, run: &Run<'_, '_>) -> Result<Session, NetError> {
        let server = resolve(url, run)?;
        let bind: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0".parse().unwrap_or(server)
        } else {
            "[::]:0".parse().unwrap_or(server)
        };
        let sock = UdpSocket::bind(bind).map_err(|e| run.io("cannot open a UDP socket", e))?;
        Ok(Session {
            sock,
            server,
            tid: None,
        })
    }

    fn send_to_tid(&self, b: &[u8], run: &Run<'_, '_>) -> Result<(), NetError> {
        let to = self.tid.unwrap_or(self.server);
        self.sock
            .send_to(b, to)
            .map(|_| ())
            .map_err(|e| run.io(&format!("cannot send to {to}"), e))
    }

    /// Waits up to one tick for a packet from the server (its transfer id once known).
    fn recv<'b>(&mut self, buf: &'b mut [u8], run: &Run<'_, '_>) -> Result<Got<'b>, NetError> {
        self.sock
            .set_read_timeout(Some(run.tick()))
            .map_err(|e| run.io("socket", e))?;
        let (n, from) = match self.sock.recv_from(buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                return Ok(Got::Nothing)
            }
            Err(e) => return Err(run.io("receiving", e)),
        };
        match self.tid {
            None if from.ip() == self.server.ip() => self.tid = Some(from),
            Some(t) if t == from => {}
            _ => {
                // RFC 1350: a packet from a stranger gets error 5 and changes nothing.
                let _ = self
                    .sock
                    .send_to(&encode_error(5, "unknown transfer ID"), from);
                return Ok(Got::Nothing);
            }
        }
        match decode(&buf[..n]) {
            Ok(p) => Ok(Got::Packet(p)),
            Err(e) => {
                log::debug!("tftp: ignoring a bad packet from {from}: {e}");
                Ok(Got::Nothing)
            }
        }
    }
}

fn server_error(code: u16, message: &[u8], run: &Run<'_, '_>) -> NetError {
    let m = printable(&String::from_utf8_lossy(message), 200);
    if code == 1 {
        NetError::NotFound {
            url: run.url.clone(),
        }
    } else {
        run.server(format!("the TFTP server said: error {code}: {m}"))
    }
}

/// Outcome of [`start`]: the session and what was agreed, with the first data packet if the
/// server skipped the OACK.
struct Started {
    sess: Session,
    agreed: Negotiated,
    first: Option<(u16, Vec<u8>)>,
}

/// Sends the read request and waits for the server's first answer (OACK, DATA or ERROR),
/// re-sending the request after each timeout, at most `retries` times.
fn start(url: &Url, o: &Options, run: &mut Run<'_, '_>) -> Result<Started, NetError> {
    let path = url.decoded_path();
    let mut with_options = true;
    'again: loop {
        let mut sess = Session::open(url, run)?;
        let opts = if with_options {
            opt_list(o)
        } else {
            Vec::new()
        };
        let rrq = encode_rrq(&path, &opts);
        let asked = if with_options {
            *o
        } else {
            Options {
                blksize: None,
                windowsize: None,
                tsize: false,
                ..*o
            }
        };
        let wait = Negotiated::plain(o).timeout;
        let mut buf = vec![0u8; usize::from(MAX_BLKSIZE) + 4];
        for _attempt in 0..=run.limits.retries {
            sess.send_to_tid(&rrq, run)?;
            let sent = Instant::now();
            while sent.elapsed() < wait {
                run.check()?;
                let got = sess.recv(&mut buf, run)?;
                let p = match got {
                    Got::Nothing => continue,
                    Got::Packet(p) => p,
                };
                match p {
                    Packet::Oack { options } => match negotiate(&asked, &options) {
                        Ok(agreed) => {
                            return Ok(Started {
                                sess,
                                agreed,
                                first: None,
                            })
                        }
                        Err(m) => {
                            let _ = sess.send_to_tid(&encode_error(8, &m), run);
                            return Err(run.server(format!("the TFTP server's OACK: {m}")));
                        }
                    },
                    Packet::Data { block: 1, data } => {
                        let first = Some((1, data.to_vec()));
                        return Ok(Started {
                            sess,
                            agreed: Negotiated::plain(o),
                            first,
                        });
                    }
                    Packet::Error { code: 8, .. } if with_options => {
                        log::info!(
                            "{}: the server refused the TFTP options; asking without",
                            run.url
                        );
                        with_options = false;
                        continue 'again;
                    }
                    Packet::Error { code, message } => {
                        return Err(server_error(code, message, run))
                    }
                    _ => {}
                }
            }
        }
        return Err(run.timeout(format!(
            "no answer from the TFTP server {} to {} requests",
            sess.server,
            run.limits.retries + 1
        )));
    }
}

/// Fetches `url` into `out` (see the module docs).
pub(crate) fn fetch(
    url: &Url,
    out: &mut dyn Write,
    o: &Options,
    run: &mut Run<'_, '_>,
) -> Result<u64, NetError> {
    let Started {
        mut sess,
        agreed,
        first,
    } = start(url, o, run)?;
    if let Some(t) = agreed.tsize {
        if let Err(e) = run.announce(t) {
            let _ = sess.send_to_tid(&encode_error(3, "file too large"), run);
            return Err(e);
        }
    }
    log::debug!(
        "{}: TFTP blksize {}, windowsize {}, tsize {:?}, timeout {} s",
        run.url,
        agreed.blksize,
        agreed.windowsize,
        agreed.tsize,
        agreed.timeout.as_secs()
    );
    let mut win = Window::new(&agreed);
    let mut buf = vec![0u8; usize::from(agreed.blksize) + 4];
    // What to re-send when nothing arrives: the last ACK (ACK 0 acknowledges the OACK).
    let mut last_ack = encode_ack(0);
    let mut pending: Option<(u16, Vec<u8>)> = first;
    if pending.is_none() {
        sess.send_to_tid(&last_ack, run)?;
    }
    let mut quiet_since = Instant::now();
    let mut silent_rounds = 0u32;
    loop {
        run.check()?;
        let (block, data): (u16, Vec<u8>) = if let Some(p) = pending.take() {
            p
        } else {
            match sess.recv(&mut buf, run)? {
                Got::Nothing => {
                    if quiet_since.elapsed() >= agreed.timeout {
                        silent_rounds += 1;
                        if silent_rounds > run.limits.retries {
                            return Err(run.timeout(format!(
                                "the TFTP server stopped sending ({} retransmissions of {} s)",
                                run.limits.retries,
                                agreed.timeout.as_secs()
                            )));
                        }
                        sess.send_to_tid(&last_ack, run)?;
                        quiet_since = Instant::now();
                    }
                    continue;
                }
                Got::Packet(Packet::Data { block, data }) => (block, data.to_vec()),
                Got::Packet(Packet::Error { code, message }) => {
                    return Err(server_error(code, message, run))
                }
                Got::Packet(_) => continue,
            }
        };
        quiet_since = Instant::now();
        silent_rounds = 0;
        if data.len() > usize::from(agreed.blksize) {
            let _ = sess.send_to_tid(&encode_error(4, "block larger than blksize"), run);
            return Err(run.server(format!(
                "the TFTP server sent {} bytes in a {}-byte block",
                data.len(),
                agreed.blksize
            )));
        }
        match win.on_data(block, data.len()) {
            Verdict::Accept { ack, last } => {
                run.deliver(out, &data).inspect_err(|_| {
                    let _ = sess.send_to_tid(&encode_error(3, "transfer refused"), run);
                })?;
                if let Some(a) = ack {
                    last_ack = encode_ack(a);
                    sess.send_to_tid(&last_ack, run)?;
                }
                if last {
                    if let Some(t) = agreed.tsize {
                        if t != run.bytes {
                            log::warn!("{}: tsize said {t} bytes, {} came", run.url, run.bytes);
                        }
                    }
                    return Ok(run.bytes);
                }
            }
            Verdict::Gap { ack } => {
                last_ack = encode_ack(ack);
                sess.send_to_tid(&last_ack, run)?;
            }
            Verdict::Old => {}
        }
    }
}

/// The size of `url` by asking `tsize` and stopping at the OACK (error 0, as pxelinux does).
/// `None` when the server does not announce sizes.
pub(crate) fn probe_size(
    url: &Url,
    o: &Options,
    run: &mut Run<'_, '_>,
) -> Result<Option<u64>, NetError> {
    let o = Options { tsize: true, ..*o };
    let s = start(url, &o, run)?;
    let _ = s.sess.send_to_tid(&encode_error(0, "size probe only"), run);
    Ok(match s.first {
        // No OACK: a short first block is the whole file.
        Some((_, d)) if d.len() < 512 => Some(d.len() as u64),
        _ => s.agreed.tsize,
    })
}

#[cfg(test)]
mod tests;
