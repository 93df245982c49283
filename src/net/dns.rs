//! A DNS stub resolver (RFC 1035): A and AAAA queries over UDP to the servers a lease gave,
//! for HTTP URLs with host names.
//!
//! [`encode_query`] and [`decode_answer`] are pure and fuzzed; the name decoder follows at most
//! [`MAX_POINTERS`] compression pointers and builds names of at most 255 bytes. [`resolve`]
//! asks each server at most twice, every wait bounded by the deadline. No cache, no TCP
//! fallback (a truncated answer still gives the addresses it holds), no search list beyond
//! the lease's domain.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Compression pointers followed per name.
pub const MAX_POINTERS: usize = 16;
/// Answers read per response.
const MAX_ANSWERS: usize = 32;
/// The largest UDP answer read.
const MAX_PACKET: usize = 1232;

/// A record type asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QType {
    /// IPv4 address (1).
    A = 1,
    /// IPv6 address (28).
    Aaaa = 28,
}

/// Why a name or an answer is unusable.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Not a valid host name (empty label, label over 63 bytes, name over 253).
    #[error("{0:?} is not a valid host name")]
    BadName(String),
    /// The packet ends early or a pointer loops.
    #[error("malformed DNS message")]
    Malformed,
    /// Not the answer to our query.
    #[error("not an answer to our query")]
    NotOurs,
    /// The server said the name does not exist (or another error code).
    #[error("the DNS server answered with error code {0}")]
    Rcode(u8),
}

/// Encodes `name` in DNS wire format (labels, no compression).
pub fn encode_name(name: &str, out: &mut Vec<u8>) -> Result<(), Error> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return Err(Error::BadName(name.to_string()));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(Error::BadName(name.to_string()));
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    Ok(())
}

/// Decodes the name at `pos` in `msg` (compression allowed); returns it (lower case,
/// non-printable bytes as `?`) and the position after it.
pub fn decode_name(msg: &[u8], mut pos: usize) -> Result<(String, usize), Error> {
    let mut name = String::new();
    let mut after = None;
    let mut jumps = 0;
    loop {
        let len = *msg.get(pos).ok_or(Error::Malformed)?;
        match len {
            0 => {
                return Ok((name, after.unwrap_or(pos + 1)));
            }
            l if l & 0xc0 == 0xc0 => {
                let lo = *msg.get(pos + 1).ok_or(Error::Malformed)?;
                jumps += 1;
                if jumps > MAX_POINTERS {
                    return Err(Error::Malformed);
                }
                after.get_or_insert(pos + 2);
                pos = usize::from(l & 0x3f) << 8 | usize::from(lo);
            }
            l if l & 0xc0 != 0 => return Err(Error::Malformed),
            l => {
                let l = usize::from(l);
                let label = msg.get(pos + 1..pos + 1 + l).ok_or(Error::Malformed)?;
                if name.len() + l + 1 > 255 {
                    return Err(Error::Malformed);
                }
                if !name.is_empty() {
                    name.push('.');
                }
                name.extend(label.iter().map(|&b| {
                    if b.is_ascii_graphic() {
                        b.to_ascii_lowercase() as char
                    } else {
                        '?'
                    }
                }));
                pos += 1 + l;
            }
        }
    }
}

/// A query for `name` with id `id`, recursion desired.
pub fn encode_query(id: u16, name: &str, qtype: QType) -> Result<Vec<u8>, Error> {
    let mut q = Vec::with_capacity(12 + name.len() + 6);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    encode_name(name, &mut q)?;
    q.extend_from_slice(&(qtype as u16).to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    Ok(q)
}

/// The addresses for `name` in the response `msg` to query `id`: A/AAAA records whose
/// owner is `name` or a CNAME target reached from it.
pub fn decode_answer(msg: &[u8], id: u16, name: &str) -> Result<Vec<IpAddr>, Error> {
    if msg.len() < 12 {
        return Err(Error::Malformed);
    }
    let u16at = |p: usize| -> Result<u16, Error> {
        Ok(u16::from_be_bytes([
            *msg.get(p).ok_or(Error::Malformed)?,
            *msg.get(p + 1).ok_or(Error::Malformed)?,
        ]))
    };
    if u16at(0)? != id || msg[2] & 0x80 == 0 {
        return Err(Error::NotOurs);
    }
    let rcode = msg[3] & 0x0f;
    if rcode != 0 {
        return Err(Error::Rcode(rcode));
    }
    let (qd, an) = (u16at(4)?, u16at(6)?);
    if qd != 1 {
        return Err(Error::NotOurs);
    }
    let want = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let (qname, mut pos) = decode_name(msg, 12)?;
    if qname != want {
        return Err(Error::NotOurs);
    }
    pos += 4;
    let mut names = vec![want];
    let mut out = Vec::new();
    for _ in 0..an.min(MAX_ANSWERS as u16) {
        let (owner, p) = decode_name(msg, pos)?;
        let (ty, class) = (u16at(p)?, u16at(p + 2)?);
        let rdlen = usize::from(u16at(p + 8)?);
        let rdata = msg.get(p + 10..p + 10 + rdlen).ok_or(Error::Malformed)?;
        pos = p + 10 + rdlen;
        if class != 1 || !names.contains(&owner) {
            continue;
        }
        match (ty, rdlen) {
            (1, 4) => out.push(IpAddr::V4(Ipv4Addr::new(
                rdata[0], rdata[1], rdata[2], rdata[3],
            ))),
            (28, 16) => {
                let mut b = [0u8; 16];
                b.copy_from_slice(rdata);
                out.push(IpAddr::V6(Ipv6Addr::from(b)));
            }
            (5, _) if names.len() < 8 => names.push(decode_name(msg, p + 10)?.0),
            _ => {}
        }
    }
    Ok(out)
}

/// Resolves `host` (an address literal is returned as is) with the `servers`, A first then
/// AAAA, each server asked at most twice, everything ending by `deadline`. `domain` is
/// tried as a suffix for a name without dots.
pub fn resolve(
    host: &str,
    servers: &[IpAddr],
    domain: Option<&str>,
    deadline: Instant,
) -> Result<Vec<IpAddr>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(a) = bare.parse::<IpAddr>() {
        return Ok(vec![a]);
    }
    let full = match domain {
        Some(d) if !host.contains('.') => format!("{host}.{d}"),
        _ => host.to_string(),
    };
    if servers.is_empty() {
        return Err(format!(
            "cannot resolve {full}: the lease gave no DNS server; use an address in the URL or configure DNS"
        ));
    }
    let mut last = String::from("no answer");
    for qtype in [QType::A, QType::Aaaa] {
        for &server in servers.iter().take(4) {
            for _ in 0..2 {
                match ask(server, &full, qtype, deadline) {
                    Ok(a) if !a.is_empty() => return Ok(a),
                    Ok(_) => break, // the server has no such record
                    Err(e) => last = e,
                }
                if Instant::now() >= deadline {
                    return Err(format!("cannot resolve {full}: timed out ({last})"));
                }
            }
        }
    }
    Err(format!("cannot resolve {full}: {last}"))
}

fn ask(server: IpAddr, name: &str, qtype: QType, deadline: Instant) -> Result<Vec<IpAddr>, String> {
    let mut idb = [0u8; 2];
    super::random_bytes(&mut idb);
    let id = u16::from_be_bytes(idb);
    let q = encode_query(id, name, qtype).map_err(|e| e.to_string())?;
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().map_err(|_| "bind")?
    } else {
        "[::]:0".parse().map_err(|_| "bind")?
    };
    let sock = UdpSocket::bind(bind).map_err(|e| format!("socket: {e}"))?;
    let to = SocketAddr::new(server, 53);
    sock.send_to(&q, to).map_err(|e| format!("{server}: {e}"))?;
    let until = (Instant::now() + Duration::from_secs(2)).min(deadline);
    let mut buf = vec![0u8; MAX_PACKET];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("{server}: no answer"));
        }
        sock.set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) => {
                super::iface::pause_after(&e);
                continue;
            }
        };
        if from != to {
            continue;
        }
        match decode_answer(&buf[..n], id, name) {
            Err(Error::NotOurs) | Err(Error::Malformed) => continue,
            Err(e) => return Err(format!("{server}: {e}")),
            Ok(a) => return Ok(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A response to `boot.example.com A` id 0x1234: CNAME to `www.example.com`
    /// (compressed), then its A record, the shape dnsmasq/bind send.
    fn cname_answer() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
        encode_name("boot.example.com", &mut m).unwrap();
        m.extend_from_slice(&[0, 1, 0, 1]);
        // answer 1: owner = pointer to offset 12, CNAME www + pointer to "example.com" (17)
        m.extend_from_slice(&[
            0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 6, 3, b'w', b'w', b'w', 0xc0, 17,
        ]);
        let www = m.len() - 6;
        // answer 2: owner = pointer to www, A 192.0.2.7
        m.extend_from_slice(&[0xc0, www as u8, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
        m
    }

    #[test]
    fn queries_are_rfc1035() {
        let q = encode_query(0xbeef, "a.bc", QType::Aaaa).unwrap();
        assert_eq!(
            q,
            [0xbe, 0xef, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 2, b'b', b'c', 0, 0, 28, 0, 1]
        );
        assert!(encode_query(1, "a..b", QType::A).is_err());
        assert!(encode_query(1, &"x".repeat(64), QType::A).is_err());
    }

    #[test]
    fn answers_follow_cnames() {
        let m = cname_answer();
        assert_eq!(
            decode_answer(&m, 0x1234, "Boot.Example.com."),
            Ok(vec!["192.0.2.7".parse().unwrap()])
        );
        assert_eq!(
            decode_answer(&m, 0x1235, "boot.example.com"),
            Err(Error::NotOurs)
        );
        assert_eq!(
            decode_answer(&m, 0x1234, "other.example.com"),
            Err(Error::NotOurs)
        );
        let mut nx = m.clone();
        nx[3] = 0x83;
        assert_eq!(
            decode_answer(&nx, 0x1234, "boot.example.com"),
            Err(Error::Rcode(3))
        );
    }

    #[test]
    fn pointer_loops_end() {
        let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xc0, 12]); // points at itself
        assert_eq!(decode_name(&m, 12), Err(Error::Malformed));
        assert_eq!(decode_answer(&m, 1, "x"), Err(Error::Malformed));
    }

    #[test]
    fn literals_need_no_server() {
        let far = Instant::now() + Duration::from_secs(1);
        assert_eq!(
            resolve("10.0.2.2", &[], None, far),
            Ok(vec!["10.0.2.2".parse().unwrap()])
        );
        assert_eq!(
            resolve("[fd00::1]", &[], None, far),
            Ok(vec!["fd00::1".parse().unwrap()])
        );
        assert!(resolve("boot", &[], Some("lan"), far)
            .unwrap_err()
            .contains("boot.lan"));
    }

    proptest! {
        #[test]
        fn decoding_never_panics(m in proptest::collection::vec(any::<u8>(), 0..600), id: u16) {
            let _ = decode_answer(&m, id, "boot.example.com");
            let _ = decode_name(&m, 0);
        }

        #[test]
        fn decoding_mutated_answers_never_panics(i in 0usize..64, b: u8) {
            let mut m = cname_answer();
            let i = i % m.len();
            m[i] = b;
            let _ = decode_answer(&m, 0x1234, "boot.example.com");
        }
    }
}
