//! DHCPv4 (RFC 2131/2132) with the PXE client options (RFC 4578): DISCOVER → OFFER →
//! REQUEST → ACK.
//!
//! The codec ([`encode`], [`decode`]) is pure and fuzzed; [`Reply::lease`] turns an ACK into a
//! [`Lease`]. [`acquire`] runs the exchange over a UDP socket bound to the interface
//! (`SO_BINDTODEVICE`, broadcast flag set so the server answers by broadcast before we have an
//! address), with retransmissions at 1, 2, 4, 8, 8... s, ending at the caller's deadline or
//! cancel flag. It never configures the interface (see [`super::ipcfg`]).
//!
//! Bounds: a packet is at most [`MAX_PACKET`] bytes (larger datagrams are cut); an option
//! is kept at most [`MAX_OPTION`] bytes even when split (RFC 3396); option overload (52)
//! is honoured once per field.

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{net_string, Lease};

/// The largest datagram read; the rest of a larger one is dropped.
pub const MAX_PACKET: usize = 1536;
/// The largest value kept for one option code (concatenated parts included).
pub const MAX_OPTION: usize = 1024;
/// At most this many DNS servers and routers are kept.
const MAX_ADDRS: usize = 8;
/// BOOTP header, then the magic cookie.
const HEADER: usize = 236;
const COOKIE: [u8; 4] = [99, 130, 83, 99];

/// Client and server ports.
pub const CLIENT_PORT: u16 = 68;
/// The server port.
pub const SERVER_PORT: u16 = 67;

/// DHCP message types (option 53).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgType {
    /// 1
    Discover,
    /// 2
    Offer,
    /// 3
    Request,
    /// 4
    Decline,
    /// 5
    Ack,
    /// 6
    Nak,
    /// 7
    Release,
    /// 8
    Inform,
}

impl MsgType {
    fn code(self) -> u8 {
        self as u8 + 1
    }
    fn from_code(c: u8) -> Option<MsgType> {
        use MsgType::*;
        [Discover, Offer, Request, Decline, Ack, Nak, Release, Inform]
            .get(usize::from(c).wrapping_sub(1))
            .copied()
    }
}

/// What the client says about itself in every request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    /// The interface's MAC address (chaddr).
    pub mac: [u8; 6],
    /// The SMBIOS system UUID (option 97), 16 bytes in the order of its text form.
    pub uuid: Option<[u8; 16]>,
    /// RFC 4578 client architecture (option 93): 0 x86 BIOS, 7 x64 UEFI, 11 ARM64 UEFI.
    pub arch: u16,
}

impl ClientInfo {
    /// The vendor class identifier (option 60), as PXE firmware sends it:
    /// `PXEClient:Arch:00007:UNDI:003016`.
    pub fn vendor_class(&self) -> String {
        format!("PXEClient:Arch:{:05}:UNDI:003016", self.arch)
    }
}

/// The architecture code of this build (RFC 4578 / IANA "Processor Architecture Types").
pub const fn native_arch() -> u16 {
    if cfg!(target_arch = "aarch64") {
        11
    } else if cfg!(target_arch = "x86") {
        6
    } else {
        7
    }
}

/// The parameter request list (option 55): the lease fields we use plus what PXE firmware
/// asks for.
pub const PARAMS: &[u8] = &[
    1, 3, 6, 12, 15, 17, 28, 42, 43, 51, 54, 58, 59, 60, 66, 67, 97, 119, 128, 129, 130, 131, 132,
    133, 134, 135, 209, 210,
];

/// One request to encode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// DISCOVER or REQUEST (others encode, but the client sends only these).
    pub kind: MsgType,
    /// Transaction id.
    pub xid: u32,
    /// Seconds since the exchange started.
    pub secs: u16,
    /// Option 50 (REQUEST after an OFFER).
    pub requested: Option<Ipv4Addr>,
    /// Option 54 (REQUEST after an OFFER).
    pub server_id: Option<Ipv4Addr>,
}

/// Encodes a BOOTREQUEST: broadcast flag, chaddr, the PXE options, padded to 300 bytes (the
/// BOOTP minimum some relays insist on).
pub fn encode(req: &Request, client: &ClientInfo) -> Vec<u8> {
    let mut p = vec![0u8; HEADER];
    p[0] = 1; // BOOTREQUEST
    p[1] = 1; // Ethernet
    p[2] = 6;
    p[4..8].copy_from_slice(&req.xid.to_be_bytes());
    p[8..10].copy_from_slice(&req.secs.to_be_bytes());
    p[10..12].copy_from_slice(&0x8000u16.to_be_bytes()); // broadcast
    p[28..34].copy_from_slice(&client.mac);
    p.extend_from_slice(&COOKIE);
    let mut opt = |code: u8, val: &[u8]| {
        p.push(code);
        p.push(val.len() as u8);
        p.extend_from_slice(val);
    };
    opt(53, &[req.kind.code()]);
    let mut id = vec![1u8];
    id.extend_from_slice(&client.mac);
    opt(61, &id);
    if let Some(a) = req.requested {
        opt(50, &a.octets());
    }
    if let Some(s) = req.server_id {
        opt(54, &s.octets());
    }
    opt(57, &1472u16.to_be_bytes());
    opt(55, PARAMS);
    opt(93, &client.arch.to_be_bytes());
    opt(94, &[1, 3, 16]); // UNDI 3.16
    if let Some(u) = client.uuid {
        let mut v = vec![0u8];
        v.extend_from_slice(&u);
        opt(97, &v);
    }
    opt(60, client.vendor_class().as_bytes());
    p.push(255);
    if p.len() < 300 {
        p.resize(300, 0);
    }
    p
}

/// A decoded BOOTREPLY.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Transaction id.
    pub xid: u32,
    /// Option 53, if present and known.
    pub kind: Option<MsgType>,
    /// The first 6 bytes of chaddr.
    pub chaddr: [u8; 6],
    /// The address offered.
    pub yiaddr: Ipv4Addr,
    /// The next server (TFTP) address.
    pub siaddr: Ipv4Addr,
    /// The `sname` field, unless it carried options.
    pub sname: Option<String>,
    /// The `file` field, unless it carried options.
    pub file: Option<String>,
    options: Vec<(u8, Vec<u8>)>,
}

/// Why a datagram is not a usable DHCP reply.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the header and cookie.
    #[error("packet too short ({0} bytes)")]
    Short(usize),
    /// Not a BOOTREPLY over Ethernet.
    #[error("not a BOOTREPLY for Ethernet (op {0}, htype {1}, hlen {2})")]
    NotReply(u8, u8, u8),
    /// No magic cookie.
    #[error("no DHCP magic cookie")]
    NoCookie,
    /// An option runs past the end of its field.
    #[error("option {0} runs past the end of the packet")]
    Truncated(u8),
}

/// Decodes a BOOTREPLY. Options repeated are concatenated (RFC 3396) up to [`MAX_OPTION`]
/// bytes; option 52 makes the `file` and/or `sname` fields option areas.
pub fn decode(p: &[u8]) -> Result<Reply, DecodeError> {
    let p = &p[..p.len().min(MAX_PACKET)];
    if p.len() < HEADER + 4 {
        return Err(DecodeError::Short(p.len()));
    }
    if p[0] != 2 || p[1] != 1 || p[2] != 6 {
        return Err(DecodeError::NotReply(p[0], p[1], p[2]));
    }
    if p[HEADER..HEADER + 4] != COOKIE {
        return Err(DecodeError::NoCookie);
    }
    let ip = |o: usize| Ipv4Addr::new(p[o], p[o + 1], p[o + 2], p[o + 3]);
    let mut options = Vec::new();
    parse_options(&p[HEADER + 4..], &mut options)?;
    let overload = find(&options, 52)
        .and_then(|v| v.first().copied())
        .unwrap_or(0);
    let (sname_f, file_f) = (&p[44..108], &p[108..236]);
    if overload & 1 != 0 {
        parse_options(file_f, &mut options)?;
    }
    if overload & 2 != 0 {
        parse_options(sname_f, &mut options)?;
    }
    let text = |f: &[u8]| Some(net_string(f, f.len())).filter(|s| !s.is_empty());
    let mut chaddr = [0u8; 6];
    chaddr.copy_from_slice(&p[28..34]);
    Ok(Reply {
        xid: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        kind: find(&options, 53)
            .and_then(|v| v.first().copied())
            .and_then(MsgType::from_code),
        chaddr,
        yiaddr: ip(16),
        siaddr: ip(20),
        sname: if overload & 2 != 0 {
            None
        } else {
            text(sname_f)
        },
        file: if overload & 1 != 0 {
            None
        } else {
            text(file_f)
        },
        options,
    })
}

fn parse_options(mut b: &[u8], out: &mut Vec<(u8, Vec<u8>)>) -> Result<(), DecodeError> {
    while let Some((&code, rest)) = b.split_first() {
        match code {
            0 => b = rest,
            255 => break,
            _ => {
                let (&len, rest) = rest.split_first().ok_or(DecodeError::Truncated(code))?;
                let len = usize::from(len);
                if rest.len() < len {
                    return Err(DecodeError::Truncated(code));
                }
                let (val, rest) = rest.split_at(len);
                match out.iter_mut().find(|(c, _)| *c == code) {
                    Some((_, v)) => {
                        let room = MAX_OPTION.saturating_sub(v.len());
                        v.extend_from_slice(&val[..val.len().min(room)]);
                    }
                    None => out.push((code, val.to_vec())),
                }
                b = rest;
            }
        }
    }
    Ok(())
}

fn find(options: &[(u8, Vec<u8>)], code: u8) -> Option<&[u8]> {
    options
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, v)| v.as_slice())
}

fn addrs(v: &[u8]) -> Vec<Ipv4Addr> {
    v.chunks_exact(4)
        .take(MAX_ADDRS)
        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
        .collect()
}

/// A netmask's prefix length; `None` for a mask with holes.
pub fn mask_prefix(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let ones = m.leading_ones();
    (m.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

/// The classful prefix of an address (what the kernel assumes when no netmask is given).
pub fn classful_prefix(a: Ipv4Addr) -> u8 {
    match a.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

impl Reply {
    /// The raw value of option `code`, if present.
    pub fn option(&self, code: u8) -> Option<&[u8]> {
        find(&self.options, code)
    }

    /// The server identifier (option 54).
    pub fn server_id(&self) -> Option<Ipv4Addr> {
        self.option(54)
            .filter(|v| v.len() == 4)
            .map(|v| Ipv4Addr::new(v[0], v[1], v[2], v[3]))
    }

    fn text(&self, code: u8) -> Option<String> {
        self.option(code)
            .map(|v| net_string(v, 255))
            .filter(|s| !s.is_empty())
    }

    /// The lease this ACK gives to `iface`/`mac` (and the UUID we sent).
    pub fn lease(&self, iface: &str, mac: &[u8; 6], uuid: Option<String>) -> Lease {
        let addr = (!self.yiaddr.is_unspecified()).then_some(self.yiaddr);
        let prefix = self
            .option(1)
            .filter(|v| v.len() == 4)
            .and_then(|v| mask_prefix(Ipv4Addr::new(v[0], v[1], v[2], v[3])))
            .or(addr.map(classful_prefix))
            .unwrap_or(0);
        let opt66 = self.text(66);
        let opt66_ip = opt66.as_deref().and_then(|s| s.parse::<Ipv4Addr>().ok());
        let next_server = opt66_ip
            .or((!self.siaddr.is_unspecified()).then_some(self.siaddr))
            .map(IpAddr::V4);
        Lease {
            iface: iface.to_string(),
            mac: super::mac_string(mac),
            source: "dhcp4",
            addr: addr.map(IpAddr::V4),
            prefix,
            router: self
                .option(3)
                .and_then(|v| addrs(v).into_iter().next())
                .map(IpAddr::V4),
            dns: self
                .option(6)
                .map(addrs)
                .unwrap_or_default()
                .into_iter()
                .map(IpAddr::V4)
                .collect(),
            domain: self.text(15),
            server: self.server_id().map(IpAddr::V4),
            next_server,
            next_server_name: opt66.filter(|_| opt66_ip.is_none()),
            boot_file: self.text(67).or_else(|| self.file.clone()),
            pxe_config_file: self.text(209),
            path_prefix: self.text(210),
            boot_file_url: None,
            client_uuid: uuid,
            lease_secs: self
                .option(51)
                .filter(|v| v.len() == 4)
                .map_or(0, |v| u32::from_be_bytes([v[0], v[1], v[2], v[3]])),
        }
    }
}

/// A step of [`acquire`], for a progress display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A DISCOVER went out (attempt number from 1).
    Discover(u32),
    /// An OFFER of this address came from this server.
    Offer(Ipv4Addr, Ipv4Addr),
    /// A REQUEST went out.
    Request(u32),
    /// The server said NAK: starting over.
    Nak,
}

/// Why no lease came.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket could not be made or used.
    #[error("{iface}: DHCPv4 socket: {err}; is the interface up, and are we root?")]
    Socket {
        /// The interface.
        iface: String,
        /// The cause.
        err: std::io::Error,
    },
    /// Nothing usable before the deadline.
    #[error("{iface}: no DHCPv4 lease after {secs:.1} s ({sent} DISCOVER/REQUEST sent, {offers} offer(s)); check the cable and the DHCP server")]
    Timeout {
        /// The interface.
        iface: String,
        /// Seconds waited.
        secs: f64,
        /// Packets sent.
        sent: u32,
        /// Offers seen.
        offers: u32,
    },
    /// The cancel flag was set.
    #[error("{0}: DHCPv4 cancelled")]
    Cancelled(String),
}

/// Retransmission delay before attempt `n` (from 0): 1, 2, 4, 8, 8... s (RFC 2131 starts at
/// 4 s; a boot loader starts faster and caps lower).
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.min(3))
}

/// Runs DISCOVER/OFFER/REQUEST/ACK on `iface` until a lease, the deadline or `cancel`.
/// Every wait is at most 100 ms long, so `cancel` is seen promptly.
pub fn acquire(
    iface: &str,
    client: &ClientInfo,
    uuid_text: Option<String>,
    deadline: Instant,
    cancel: &AtomicBool,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<Lease, Error> {
    let sock_err = |err| Error::Socket {
        iface: iface.to_string(),
        err,
    };
    let sock = super::iface::udp4_socket(iface, CLIENT_PORT).map_err(sock_err)?;
    let start = Instant::now();
    let mut xid_b = [0u8; 4];
    super::random_bytes(&mut xid_b);
    let xid = u32::from_be_bytes(xid_b);
    let (mut sent, mut offers, mut attempt) = (0u32, 0u32, 0u32);
    // None: discovering; Some(offer): requesting it.
    let mut offered: Option<(Ipv4Addr, Ipv4Addr)> = None;
    let dest = SocketAddrV4::new(Ipv4Addr::BROADCAST, SERVER_PORT);
    let mut buf = vec![0u8; MAX_PACKET];
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled(iface.to_string()));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Timeout {
                iface: iface.to_string(),
                secs: start.elapsed().as_secs_f64(),
                sent,
                offers,
            });
        }
        let req = Request {
            kind: if offered.is_some() {
                MsgType::Request
            } else {
                MsgType::Discover
            },
            xid,
            secs: start.elapsed().as_secs().min(u64::from(u16::MAX)) as u16,
            requested: offered.map(|o| o.0),
            server_id: offered.map(|o| o.1),
        };
        attempt += 1;
        progress(match offered {
            None => Event::Discover(attempt),
            Some(_) => Event::Request(attempt),
        });
        if let Err(e) = sock.send_to(&encode(&req, client), dest) {
            log::debug!("{iface}: DHCPv4 send: {e}");
        }
        sent += 1;
        let wait_until = (now + backoff(attempt - 1)).min(deadline);
        let want = if offered.is_some() {
            [MsgType::Ack, MsgType::Nak]
        } else {
            [MsgType::Offer, MsgType::Offer]
        };
        match wait_reply(&sock, &mut buf, xid, &client.mac, &want, wait_until, cancel) {
            None => {
                // Retransmit; after 3 unanswered REQUESTs, discover again.
                if offered.is_some() && attempt >= 3 {
                    offered = None;
                    attempt = 0;
                }
            }
            Some(r) => match (offered, r.kind) {
                (None, Some(MsgType::Offer)) => {
                    offers += 1;
                    let server = r.server_id().unwrap_or(r.siaddr);
                    progress(Event::Offer(r.yiaddr, server));
                    offered = Some((r.yiaddr, server));
                    attempt = 0;
                }
                (Some(_), Some(MsgType::Ack)) => {
                    return Ok(r.lease(iface, &client.mac, uuid_text));
                }
                (Some(_), Some(MsgType::Nak)) => {
                    progress(Event::Nak);
                    offered = None;
                    attempt = 0;
                }
                _ => {}
            },
        }
    }
}

/// Waits for a reply to `xid`/`mac` of a kind in `want` (an OFFER or ACK must carry an
/// address), until `until` or `cancel`. Others (late OFFERs answering retransmitted
/// DISCOVERs) are skipped without ending the wait.
#[allow(clippy::too_many_arguments)]
fn wait_reply(
    sock: &UdpSocket,
    buf: &mut [u8],
    xid: u32,
    mac: &[u8; 6],
    want: &[MsgType],
    until: Instant,
    cancel: &AtomicBool,
) -> Option<Reply> {
    loop {
        let now = Instant::now();
        if now >= until || cancel.load(Ordering::Relaxed) {
            return None;
        }
        let slice = (until - now).min(Duration::from_millis(100));
        if sock.set_read_timeout(Some(slice)).is_err() {
            return None;
        }
        let (n, from) = match sock.recv_from(buf) {
            Ok(r) => r,
            Err(e) => {
                super::iface::pause_after(&e);
                continue;
            }
        };
        match decode(&buf[..n]) {
            Ok(r)
                if r.xid == xid
                    && &r.chaddr == mac
                    && r.kind.is_some_and(|k| want.contains(&k)) =>
            {
                let usable = match r.kind {
                    Some(MsgType::Offer) => !r.yiaddr.is_unspecified(),
                    Some(MsgType::Ack) => !r.yiaddr.is_unspecified(),
                    Some(MsgType::Nak) => true,
                    _ => false,
                };
                if usable {
                    return Some(r);
                }
            }
            Ok(_) => {}
            Err(e) => log::debug!("DHCPv4 datagram from {from} ignored: {e}"),
        }
    }
}

#[cfg(test)]
mod tests;
