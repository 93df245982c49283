//! DHCPv6 (RFC 8415) with the network-boot options of RFC 5970: SOLICIT → ADVERTISE →
//! REQUEST → REPLY, asking for one address (IA_NA), DNS (23, 24) and the boot file URL (59).
//!
//! The codec ([`encode`], [`decode`]) is pure and fuzzed. [`acquire`] sends from the
//! interface's link-local address to `ff02::1:2` port 547, retransmitting at 1, 2, 4, 8,
//! 8... s until the caller's deadline or cancel flag. The address is used as a /128 (on-link
//! prefixes and routes come from router advertisements, which the kernel handles).
//!
//! Bounds: a packet is at most [`MAX_PACKET`] bytes, options nest two levels (IA_NA →
//! IAADDR), at most [`MAX_OPTIONS`] options per level are read.

use std::net::{IpAddr, Ipv6Addr, SocketAddrV6, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{net_string, Lease};

/// The largest datagram read.
pub const MAX_PACKET: usize = 1536;
/// Options read per level.
pub const MAX_OPTIONS: usize = 64;
/// Client port.
pub const CLIENT_PORT: u16 = 546;
/// Server port.
pub const SERVER_PORT: u16 = 547;

const SOLICIT: u8 = 1;
const ADVERTISE: u8 = 2;
const REQUEST: u8 = 3;
const REPLY: u8 = 7;

const OPT_CLIENTID: u16 = 1;
const OPT_SERVERID: u16 = 2;
const OPT_IA_NA: u16 = 3;
const OPT_IAADDR: u16 = 5;
const OPT_ORO: u16 = 6;
const OPT_ELAPSED: u16 = 8;
const OPT_STATUS: u16 = 13;
const OPT_VENDOR_CLASS: u16 = 16;
const OPT_DNS: u16 = 23;
const OPT_DOMAINS: u16 = 24;
const OPT_BOOTFILE_URL: u16 = 59;
const OPT_BOOTFILE_PARAM: u16 = 60;
const OPT_ARCH: u16 = 61;
const OPT_NII: u16 = 62;

/// What the client sends about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    /// The interface's MAC (DUID-LL and the IAID come from it).
    pub mac: [u8; 6],
    /// RFC 4578 architecture (option 61).
    pub arch: u16,
}

impl ClientInfo {
    /// DUID-LL (type 3, hardware type 1, MAC).
    pub fn duid(&self) -> Vec<u8> {
        let mut d = vec![0, 3, 0, 1];
        d.extend_from_slice(&self.mac);
        d
    }
    fn iaid(&self) -> [u8; 4] {
        [self.mac[2], self.mac[3], self.mac[4], self.mac[5]]
    }
}

/// One message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// SOLICIT or REQUEST.
    pub request: bool,
    /// 24-bit transaction id.
    pub xid: u32,
    /// Centiseconds since the exchange started.
    pub elapsed_cs: u16,
    /// The server's DUID (REQUEST).
    pub server_id: Option<Vec<u8>>,
    /// The address advertised (REQUEST).
    pub addr: Option<Ipv6Addr>,
}

fn put(out: &mut Vec<u8>, code: u16, val: &[u8]) {
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&(val.len() as u16).to_be_bytes());
    out.extend_from_slice(val);
}

/// Encodes a SOLICIT or REQUEST.
pub fn encode(req: &Request, client: &ClientInfo) -> Vec<u8> {
    let mut p = vec![if req.request { REQUEST } else { SOLICIT }];
    p.extend_from_slice(&req.xid.to_be_bytes()[1..]);
    put(&mut p, OPT_CLIENTID, &client.duid());
    if let Some(s) = &req.server_id {
        put(&mut p, OPT_SERVERID, s);
    }
    let mut ia = client.iaid().to_vec();
    ia.extend_from_slice(&[0; 8]); // T1, T2: the server's choice
    if let Some(a) = req.addr {
        let mut v = a.octets().to_vec();
        v.extend_from_slice(&[0; 8]);
        put(&mut ia, OPT_IAADDR, &v);
    }
    put(&mut p, OPT_IA_NA, &ia);
    put(&mut p, OPT_ELAPSED, &req.elapsed_cs.to_be_bytes());
    let oro: Vec<u8> = [OPT_DNS, OPT_DOMAINS, OPT_BOOTFILE_URL, OPT_BOOTFILE_PARAM]
        .iter()
        .flat_map(|c| c.to_be_bytes())
        .collect();
    put(&mut p, OPT_ORO, &oro);
    put(&mut p, OPT_ARCH, &client.arch.to_be_bytes());
    put(&mut p, OPT_NII, &[1, 3, 16]);
    let class = format!("PXEClient:Arch:{:05}:UNDI:003016", client.arch);
    let mut vc = 343u32.to_be_bytes().to_vec(); // Intel's enterprise number, as PXE firmware
    vc.extend_from_slice(&(class.len() as u16).to_be_bytes());
    vc.extend_from_slice(class.as_bytes());
    put(&mut p, OPT_VENDOR_CLASS, &vc);
    p
}

/// A decoded ADVERTISE or REPLY.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// Message type (2 ADVERTISE, 7 REPLY...).
    pub kind: u8,
    /// 24-bit transaction id.
    pub xid: u32,
    /// Option 1.
    pub client_id: Option<Vec<u8>>,
    /// Option 2.
    pub server_id: Option<Vec<u8>>,
    /// The top-level status (13), 0 when absent.
    pub status: u16,
    /// The first IAADDR of the first IA_NA with a success status, and its valid lifetime.
    pub addr: Option<(Ipv6Addr, u32)>,
    /// Option 23.
    pub dns: Vec<Ipv6Addr>,
    /// Option 24.
    pub domains: Vec<String>,
    /// Option 59.
    pub boot_file_url: Option<String>,
}

/// Why a datagram is not a usable reply.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the 4-byte header.
    #[error("packet too short")]
    Short,
    /// An option runs past its container.
    #[error("option {0} runs past the end of its container")]
    Truncated(u16),
}

fn options(mut b: &[u8]) -> Result<Vec<(u16, &[u8])>, DecodeError> {
    let mut out = Vec::new();
    while b.len() >= 4 && out.len() < MAX_OPTIONS {
        let code = u16::from_be_bytes([b[0], b[1]]);
        let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
        let val = b.get(4..4 + len).ok_or(DecodeError::Truncated(code))?;
        out.push((code, val));
        b = &b[4 + len..];
    }
    Ok(out)
}

fn status(opts: &[(u16, &[u8])]) -> u16 {
    opts.iter()
        .find(|(c, _)| *c == OPT_STATUS)
        .and_then(|(_, v)| v.get(..2))
        .map_or(0, |s| u16::from_be_bytes([s[0], s[1]]))
}

/// Decodes a server message.
pub fn decode(p: &[u8]) -> Result<Reply, DecodeError> {
    let p = &p[..p.len().min(MAX_PACKET)];
    if p.len() < 4 {
        return Err(DecodeError::Short);
    }
    let top = options(&p[4..])?;
    let mut r = Reply {
        kind: p[0],
        xid: u32::from_be_bytes([0, p[1], p[2], p[3]]),
        status: status(&top),
        ..Reply::default()
    };
    for (code, val) in top {
        match code {
            OPT_CLIENTID => r.client_id = Some(val.to_vec()),
            OPT_SERVERID => r.server_id = Some(val.to_vec()),
            OPT_IA_NA if r.addr.is_none() && val.len() >= 12 => {
                let inner = options(&val[12..])?;
                if status(&inner) != 0 {
                    continue;
                }
                for (c, v) in inner {
                    if c == OPT_IAADDR && v.len() >= 24 && status(&options(&v[24..])?) == 0 {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(&v[..16]);
                        let valid = u32::from_be_bytes([v[20], v[21], v[22], v[23]]);
                        r.addr = Some((Ipv6Addr::from(a), valid));
                        break;
                    }
                }
            }
            OPT_DNS => {
                r.dns = val
                    .chunks_exact(16)
                    .take(8)
                    .map(|c| {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(c);
                        Ipv6Addr::from(a)
                    })
                    .collect();
            }
            OPT_DOMAINS => {
                let mut pos = 0;
                while pos < val.len() && r.domains.len() < 8 {
                    // RFC 8415 § 10: no compression; decode_name then refuses pointers
                    // outside this option only by bounds, which is enough here.
                    match super::dns::decode_name(val, pos) {
                        Ok((n, next)) if next > pos => {
                            if !n.is_empty() {
                                r.domains.push(n);
                            }
                            pos = next;
                        }
                        _ => break,
                    }
                }
            }
            OPT_BOOTFILE_URL => {
                r.boot_file_url = Some(net_string(val, 1024)).filter(|s| !s.is_empty())
            }
            _ => {}
        }
    }
    Ok(r)
}

impl Reply {
    /// The lease this REPLY gives.
    pub fn lease(&self, iface: &str, mac: &[u8; 6], server: Option<Ipv6Addr>) -> Lease {
        Lease {
            iface: iface.to_string(),
            mac: super::mac_string(mac),
            source: "dhcp6",
            addr: self.addr.map(|a| IpAddr::V6(a.0)),
            prefix: 128,
            dns: self.dns.iter().copied().map(IpAddr::V6).collect(),
            domain: self.domains.first().cloned(),
            server: server.map(IpAddr::V6),
            boot_file_url: self.boot_file_url.clone(),
            lease_secs: self.addr.map_or(0, |a| a.1),
            ..Lease::default()
        }
    }
}

/// A step of [`acquire`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A SOLICIT went out (attempt from 1).
    Solicit(u32),
    /// An ADVERTISE offered this address.
    Advertise(Option<Ipv6Addr>),
    /// A REQUEST went out.
    Request(u32),
}

/// Why no lease came.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No link-local address (IPv6 disabled, or DAD did not finish).
    #[error("{0}: no usable IPv6 link-local address; is IPv6 enabled on the interface?")]
    NoLinkLocal(String),
    /// The socket failed.
    #[error("{iface}: DHCPv6 socket: {err}")]
    Socket {
        /// The interface.
        iface: String,
        /// The cause.
        err: std::io::Error,
    },
    /// Nothing before the deadline.
    #[error("{iface}: no DHCPv6 reply after {secs:.1} s ({sent} sent); check the DHCPv6 server")]
    Timeout {
        /// The interface.
        iface: String,
        /// Seconds waited.
        secs: f64,
        /// Messages sent.
        sent: u32,
    },
    /// The cancel flag was set.
    #[error("{0}: DHCPv6 cancelled")]
    Cancelled(String),
}

/// Runs SOLICIT/ADVERTISE/REQUEST/REPLY on `iface` (index `ifindex`).
pub fn acquire(
    iface: &str,
    ifindex: u32,
    client: &ClientInfo,
    deadline: Instant,
    cancel: &AtomicBool,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<Lease, Error> {
    super::iface::wait_link_local(ifindex, deadline, cancel)
        .ok_or_else(|| Error::NoLinkLocal(iface.to_string()))?;
    let sock = super::iface::udp6_socket(iface, CLIENT_PORT).map_err(|err| Error::Socket {
        iface: iface.to_string(),
        err,
    })?;
    let dest = SocketAddrV6::new(
        Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2),
        SERVER_PORT,
        0,
        ifindex,
    );
    let start = Instant::now();
    let mut xb = [0u8; 4];
    super::random_bytes(&mut xb);
    let xid = u32::from_be_bytes(xb) & 0xff_ffff;
    let (mut sent, mut attempt) = (0u32, 0u32);
    let mut chosen: Option<Reply> = None;
    let mut buf = vec![0u8; MAX_PACKET];
    let duid = client.duid();
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
            });
        }
        let req = Request {
            request: chosen.is_some(),
            xid,
            elapsed_cs: (start.elapsed().as_millis() / 10).min(0xffff) as u16,
            server_id: chosen.as_ref().and_then(|c| c.server_id.clone()),
            addr: chosen.as_ref().and_then(|c| c.addr.map(|a| a.0)),
        };
        attempt += 1;
        progress(if chosen.is_some() {
            Event::Request(attempt)
        } else {
            Event::Solicit(attempt)
        });
        if let Err(e) = sock.send_to(&encode(&req, client), dest) {
            log::debug!("{iface}: DHCPv6 send: {e}");
        }
        sent += 1;
        let until = (now + super::dhcp4::backoff(attempt - 1)).min(deadline);
        let want = if chosen.is_some() { REPLY } else { ADVERTISE };
        match wait(&sock, &mut buf, xid, &duid, want, until, cancel) {
            None => {
                if chosen.is_some() && attempt >= 3 {
                    chosen = None;
                    attempt = 0;
                }
            }
            Some((r, from)) if want == ADVERTISE => {
                progress(Event::Advertise(r.addr.map(|a| a.0)));
                let _ = from;
                chosen = Some(r);
                attempt = 0;
            }
            Some((r, from)) => {
                if r.status != 0 {
                    log::warn!(
                        "{iface}: DHCPv6 REPLY status {}; soliciting again",
                        r.status
                    );
                    chosen = None;
                    attempt = 0;
                    continue;
                }
                return Ok(r.lease(iface, &client.mac, Some(from)));
            }
        }
    }
}

fn wait(
    sock: &UdpSocket,
    buf: &mut [u8],
    xid: u32,
    duid: &[u8],
    want: u8,
    until: Instant,
    cancel: &AtomicBool,
) -> Option<(Reply, Ipv6Addr)> {
    loop {
        let now = Instant::now();
        if now >= until || cancel.load(Ordering::Relaxed) {
            return None;
        }
        sock.set_read_timeout(Some((until - now).min(Duration::from_millis(100))))
            .ok()?;
        let (n, from) = match sock.recv_from(buf) {
            Ok(r) => r,
            Err(e) => {
                super::iface::pause_after(&e);
                continue;
            }
        };
        let std::net::SocketAddr::V6(from) = from else {
            continue;
        };
        match decode(&buf[..n]) {
            Ok(r)
                if r.kind == want
                    && r.xid == xid
                    && r.client_id.as_deref() == Some(duid)
                    && r.server_id.is_some()
                    && (want == REPLY || r.addr.is_some()) =>
            {
                return Some((r, *from.ip()))
            }
            Ok(_) => {}
            Err(e) => log::debug!("DHCPv6 datagram from {from} ignored: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn client() -> ClientInfo {
        ClientInfo {
            mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
            arch: 7,
        }
    }

    /// An ADVERTISE as RFC 8415 lays it out: server id, our client id, IA_NA with one
    /// IAADDR, DNS, domain list, boot file URL.
    pub(super) fn advertise(xid: u32) -> Vec<u8> {
        let mut p = vec![ADVERTISE];
        p.extend_from_slice(&xid.to_be_bytes()[1..]);
        put(
            &mut p,
            OPT_SERVERID,
            &[0, 1, 0, 1, 1, 2, 3, 4, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff],
        );
        put(&mut p, OPT_CLIENTID, &client().duid());
        let mut iaaddr: Vec<u8> = "fd00::42".parse::<Ipv6Addr>().unwrap().octets().to_vec();
        iaaddr.extend_from_slice(&[0, 0, 0x0e, 0x10, 0, 0, 0x1c, 0x20]);
        let mut ia = vec![0, 0x12, 0x34, 0x56, 0, 0, 0, 0, 0, 0, 0, 0];
        put(&mut ia, OPT_IAADDR, &iaaddr);
        put(&mut p, OPT_IA_NA, &ia);
        put(
            &mut p,
            OPT_DNS,
            &"fd00::1".parse::<Ipv6Addr>().unwrap().octets(),
        );
        let mut dom = Vec::new();
        super::super::dns::encode_name("lab.example", &mut dom).unwrap();
        put(&mut p, OPT_DOMAINS, &dom);
        put(&mut p, OPT_BOOTFILE_URL, b"tftp://[fd00::1]/pxelinux.0");
        p
    }

    #[test]
    fn solicit_layout() {
        let s = encode(
            &Request {
                request: false,
                xid: 0xabcdef,
                elapsed_cs: 0,
                server_id: None,
                addr: None,
            },
            &client(),
        );
        assert_eq!(&s[..4], &[SOLICIT, 0xab, 0xcd, 0xef]);
        let opts = options(&s[4..]).unwrap();
        let codes: Vec<u16> = opts.iter().map(|o| o.0).collect();
        assert_eq!(codes, [1, 3, 8, 6, 61, 62, 16]);
        assert_eq!(opts[0].1, &[0, 3, 0, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56]);
        assert_eq!(opts[4].1, &[0, 7]);
        assert!(String::from_utf8_lossy(opts[6].1).contains("PXEClient:Arch:00007:UNDI:003016"));
    }

    #[test]
    fn advertise_decodes_into_a_lease() {
        let r = decode(&advertise(0x123456)).unwrap();
        assert_eq!(r.kind, ADVERTISE);
        assert_eq!(r.xid, 0x123456);
        assert_eq!(r.addr, Some(("fd00::42".parse().unwrap(), 7200)));
        let l = r.lease("eth0", &client().mac, Some("fe80::1".parse().unwrap()));
        assert_eq!(l.addr, Some("fd00::42".parse().unwrap()));
        assert_eq!(l.dns, vec!["fd00::1".parse::<IpAddr>().unwrap()]);
        assert_eq!(l.domain.as_deref(), Some("lab.example"));
        assert_eq!(
            l.boot_file_url.as_deref(),
            Some("tftp://[fd00::1]/pxelinux.0")
        );
        assert_eq!(l.lease_secs, 7200);
    }

    #[test]
    fn ia_with_an_error_status_gives_no_address() {
        let mut p = vec![ADVERTISE, 0, 0, 1];
        let mut ia = vec![0; 12];
        put(&mut ia, OPT_STATUS, &[0, 2, b'n', b'o']); // NoAddrsAvail
        put(&mut p, OPT_IA_NA, &ia);
        assert_eq!(decode(&p).unwrap().addr, None);
        assert_eq!(decode(&[1, 2]), Err(DecodeError::Short));
        assert_eq!(
            decode(&[2, 0, 0, 1, 0, 1, 0, 9, 1]),
            Err(DecodeError::Truncated(1))
        );
    }

    #[test]
    fn captured_dnsmasq_advertise_and_reply() {
        let duid = [0, 3, 0, 1, 0x82, 0x9d, 0x97, 0x58, 0x73, 0x18];
        let adv = decode(include_bytes!("testdata/dnsmasq-advertise.bin")).unwrap();
        assert_eq!(adv.kind, ADVERTISE);
        assert_eq!(adv.client_id.as_deref(), Some(&duid[..]));
        assert!(adv.server_id.is_some());
        let rep = decode(include_bytes!("testdata/dnsmasq-reply6.bin")).unwrap();
        assert_eq!(rep.kind, REPLY);
        assert_eq!(rep.xid, adv.xid);
        assert_eq!(rep.status, 0);
        let (addr, valid) = rep.addr.unwrap();
        assert!(addr.segments()[0] == 0xfd77, "{addr}");
        assert_eq!(valid, 3600);
        assert_eq!(rep.dns, vec!["fd77::1".parse::<Ipv6Addr>().unwrap()]);
        assert_eq!(
            rep.boot_file_url.as_deref(),
            Some("tftp://[fd77::1]/pxelinux.0")
        );
    }

    proptest! {
        #[test]
        fn decoding_never_panics(p in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode(&p);
        }

        #[test]
        fn decoding_mutated_advertises_never_panics(i in 0usize..200, b: u8) {
            let mut p = advertise(1);
            let i = i % p.len();
            p[i] = b;
            if let Ok(r) = decode(&p) {
                let _ = r.lease("eth0", &[0; 6], None);
            }
        }
    }
}
