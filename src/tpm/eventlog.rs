//! The measurement log, in the TCG's binary "crypto agile" format (TCG PC Client Platform
//! Firmware Profile, §10: the format firmware logs use, `tpm2_eventlog` reads it).
//!
//! A log is one `TCG_PCClientPCREvent` header (SHA-1 layout, `EV_NO_ACTION`, 20 zero digest
//! bytes) holding a `TCG_EfiSpecIDEvent` ("Spec ID Event03", the algorithms the events
//! carry), then one `TCG_PCR_EVENT2` per measurement:
//!
//! ```text
//! pcrIndex   u32  little-endian, like every integer here
//! eventType  u32  EV_IPL (0x0D) for what leapboot measures
//! digests    count u32, then per digest: algorithmId u16, digest (size from the header)
//! eventSize  u32, then the event data: for leapboot a printable text naming what was measured
//! ```
//!
//! leapboot writes SHA-256 only. [`parse`] reads any log in this format (several algorithms
//! too: sizes come from the header), bounded: [`MAX_LOG`] bytes, [`MAX_EVENTS`] events,
//! [`MAX_EVENT_DATA`] bytes of data each, 16 algorithms; it never reads past the input.

use sha2::{Digest, Sha256};

use super::command::ALG_SHA256;

/// `EV_NO_ACTION`: not extended (the header, informational records).
pub const EV_NO_ACTION: u32 = 0x03;
/// `EV_IPL`: "initial program loader" code and data (GRUB uses it for commands, files and
/// command lines; leapboot for everything it measures).
pub const EV_IPL: u32 = 0x0D;
/// The largest log [`parse`] reads.
pub const MAX_LOG: usize = 1 << 20;
/// The most events [`parse`] returns.
pub const MAX_EVENTS: usize = 4096;
/// The largest event data [`parse`] accepts.
pub const MAX_EVENT_DATA: usize = 64 << 10;
const MAX_ALGORITHMS: usize = 16;
const SPEC_ID: &[u8; 16] = b"Spec ID Event03\0";

/// One measurement: the PCR, its event type, the SHA-256 digest extended, and the data that
/// says what it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The PCR extended.
    pub pcr: u32,
    /// `EV_IPL` for leapboot's events.
    pub kind: u32,
    /// The SHA-256 digest extended into the PCR.
    pub digest: [u8; 32],
    /// What was measured, as text (for leapboot's events; any bytes in a parsed log).
    pub data: Vec<u8>,
}

/// `SHA-256(old || digest)`: what `TPM2_PCR_Extend` makes of a PCR.
pub fn extend(old: &[u8; 32], digest: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(old);
    h.update(digest);
    h.finalize().into()
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The log header: the Spec ID event announcing one algorithm, SHA-256.
fn header() -> Vec<u8> {
    let mut spec = Vec::new();
    spec.extend_from_slice(SPEC_ID);
    spec.extend_from_slice(&0u32.to_le_bytes()); // platformClass: client
    spec.extend_from_slice(&[0, 2, 0, 2]); // version 2.0, errata 0, uintnSize 2 (UINT64)
    spec.extend_from_slice(&1u32.to_le_bytes()); // numberOfAlgorithms
    spec.extend_from_slice(&ALG_SHA256.to_le_bytes());
    spec.extend_from_slice(&32u16.to_le_bytes());
    spec.push(0); // vendorInfoSize
    let mut out = Vec::new();
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&EV_NO_ACTION.to_le_bytes());
    out.extend_from_slice(&[0u8; 20]);
    out.extend_from_slice(&(spec.len() as u32).to_le_bytes());
    out.extend_from_slice(&spec);
    out
}

/// A whole log: the header, then `events` in order.
pub fn encode(events: &[Event]) -> Vec<u8> {
    let mut out = header();
    for e in events {
        out.extend_from_slice(&e.pcr.to_le_bytes());
        out.extend_from_slice(&e.kind.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&ALG_SHA256.to_le_bytes());
        out.extend_from_slice(&e.digest);
        out.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&e.data);
    }
    out
}

/// Why a log could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// The input is larger than [`MAX_LOG`].
    #[error("the event log is {0} bytes, more than {MAX_LOG}")]
    TooLarge(usize),
    /// The first event is not a Spec ID event listing SHA-256.
    #[error("not a crypto-agile TCG event log: {0}")]
    NotAgile(&'static str),
    /// An event runs past the end, or is otherwise inconsistent.
    #[error("event {index} at byte {at}: {what}")]
    Bad {
        /// The event's number (0 = the first after the header).
        index: usize,
        /// Its offset in the log.
        at: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// More than [`MAX_EVENTS`] events.
    #[error("more than {MAX_EVENTS} events")]
    TooManyEvents,
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.b.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}

/// The algorithms of a Spec ID event: (id, digest size) pairs.
fn spec_algorithms(spec: &[u8]) -> Result<Vec<(u16, usize)>, LogError> {
    let mut r = Reader { b: spec, at: 0 };
    if r.take(16) != Some(SPEC_ID.as_slice()) {
        return Err(LogError::NotAgile("no \"Spec ID Event03\" signature"));
    }
    r.take(8)
        .ok_or(LogError::NotAgile("Spec ID event cut short"))?;
    let n = r
        .u32()
        .ok_or(LogError::NotAgile("Spec ID event cut short"))? as usize;
    if n == 0 || n > MAX_ALGORITHMS {
        return Err(LogError::NotAgile("bad number of algorithms"));
    }
    let mut algs = Vec::with_capacity(n);
    for _ in 0..n {
        let (Some(id), Some(size)) = (r.u16(), r.u16()) else {
            return Err(LogError::NotAgile("Spec ID event cut short"));
        };
        if size == 0 || size > 64 {
            return Err(LogError::NotAgile("bad digest size"));
        }
        algs.push((id, size as usize));
    }
    let vendor = r
        .u8()
        .ok_or(LogError::NotAgile("Spec ID event cut short"))?;
    r.take(vendor as usize)
        .ok_or(LogError::NotAgile("Spec ID event cut short"))?;
    if !algs
        .iter()
        .any(|&(id, size)| id == ALG_SHA256 && size == 32)
    {
        return Err(LogError::NotAgile("no SHA-256 bank"));
    }
    Ok(algs)
}

/// Reads a log: its events after the header, each with its SHA-256 digest (an event without
/// one is an error). `EV_NO_ACTION` events are returned too ([`replay`] skips them).
pub fn parse(b: &[u8]) -> Result<Vec<Event>, LogError> {
    if b.len() > MAX_LOG {
        return Err(LogError::TooLarge(b.len()));
    }
    let mut r = Reader { b, at: 0 };
    let short = LogError::NotAgile("header cut short");
    let (Some(_pcr), Some(kind)) = (r.u32(), r.u32()) else {
        return Err(short);
    };
    if kind != EV_NO_ACTION {
        return Err(LogError::NotAgile("the first event is not EV_NO_ACTION"));
    }
    r.take(20).ok_or(short.clone())?;
    let size = r.u32().ok_or(short.clone())? as usize;
    let spec = r.take(size).ok_or(short)?;
    let algs = spec_algorithms(spec)?;
    let mut events = Vec::new();
    while r.at < b.len() {
        let at = r.at;
        let index = events.len();
        let bad = |what| LogError::Bad { index, at, what };
        if index >= MAX_EVENTS {
            return Err(LogError::TooManyEvents);
        }
        let (Some(pcr), Some(kind), Some(count)) = (r.u32(), r.u32(), r.u32()) else {
            return Err(bad("cut short"));
        };
        if count as usize > algs.len() {
            return Err(bad("more digests than the header's algorithms"));
        }
        let mut sha256 = None;
        for _ in 0..count {
            let id = r.u16().ok_or(bad("cut short in a digest"))?;
            let size = algs
                .iter()
                .find(|a| a.0 == id)
                .ok_or(bad("a digest of an algorithm the header does not list"))?
                .1;
            let d = r.take(size).ok_or(bad("cut short in a digest"))?;
            if id == ALG_SHA256 {
                sha256 = d.try_into().ok();
            }
        }
        let len = r.u32().ok_or(bad("cut short"))? as usize;
        if len > MAX_EVENT_DATA {
            return Err(bad("event data too large"));
        }
        let data = r.take(len).ok_or(bad("event data cut short"))?.to_vec();
        let digest = sha256.ok_or(bad("no SHA-256 digest"))?;
        events.push(Event {
            pcr,
            kind,
            digest,
            data,
        });
    }
    Ok(events)
}

/// The PCR values `events` lead to from `start` (each PCR's value before the first event):
/// every event but `EV_NO_ACTION` extends its PCR. PCRs in the order first touched.
pub fn replay(events: &[Event], start: impl Fn(u32) -> [u8; 32]) -> Vec<(u32, [u8; 32])> {
    let mut pcrs: Vec<(u32, [u8; 32])> = Vec::new();
    for e in events.iter().filter(|e| e.kind != EV_NO_ACTION) {
        match pcrs.iter_mut().find(|p| p.0 == e.pcr) {
            Some(p) => p.1 = extend(&p.1, &e.digest),
            None => pcrs.push((e.pcr, extend(&start(e.pcr), &e.digest))),
        }
    }
    pcrs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(pcr: u32, what: &[u8], data: &str) -> Event {
        Event {
            pcr,
            kind: EV_IPL,
            digest: Sha256::digest(what).into(),
            data: data.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_log_reads_back_as_written() {
        let events = vec![
            ev(4, b"kernel", "leapboot kernel vda1:/vmlinuz"),
            ev(9, b"initrd", "leapboot initrds vda1:/a vda1:/b"),
            ev(12, b"console=ttyS0", "console=ttyS0"),
            ev(8, b"", ""),
        ];
        let bytes = encode(&events);
        assert_eq!(&bytes[32..48], SPEC_ID, "the Spec ID event starts the log");
        assert_eq!(parse(&bytes).unwrap(), events);
        assert_eq!(parse(&encode(&[])).unwrap(), vec![]);
    }

    #[test]
    fn replay_extends_from_the_start_values() {
        let events = vec![ev(4, b"a", ""), ev(9, b"b", ""), ev(4, b"c", "")];
        let zero = [0u8; 32];
        let pcrs = replay(&events, |_| zero);
        let a: [u8; 32] = Sha256::digest(b"a").into();
        let c: [u8; 32] = Sha256::digest(b"c").into();
        assert_eq!(pcrs[0], (4, extend(&extend(&zero, &a), &c)));
        assert_eq!(pcrs[1].0, 9);
        let start4 = [7u8; 32];
        let pcrs = replay(&events, |p| if p == 4 { start4 } else { zero });
        assert_eq!(pcrs[0].1, extend(&extend(&start4, &a), &c));
        // The known answer: SHA-256 of 32 zero bytes and SHA-256("abc").
        let abc: [u8; 32] = Sha256::digest(b"abc").into();
        assert_eq!(
            hex(&extend(&zero, &abc)),
            hex(&Sha256::digest([zero.as_slice(), abc.as_slice()].concat()))
        );
    }

    #[test]
    fn a_log_with_two_banks_reads_its_sha256_digests() {
        // A firmware-style log: SHA-1 and SHA-256 in the header and in every event.
        let mut spec = SPEC_ID.to_vec();
        spec.extend([0, 0, 0, 0, 0, 2, 0, 2]);
        spec.extend(2u32.to_le_bytes());
        spec.extend([0x04, 0x00, 20, 0, 0x0B, 0x00, 32, 0]);
        spec.push(0);
        let mut b = vec![0u8; 8];
        b[4] = 3;
        b.extend([0u8; 20]);
        b.extend((spec.len() as u32).to_le_bytes());
        b.extend(&spec);
        b.extend(0u32.to_le_bytes());
        b.extend(8u32.to_le_bytes());
        b.extend(2u32.to_le_bytes());
        b.extend([0x04, 0x00]);
        b.extend([1u8; 20]);
        b.extend([0x0B, 0x00]);
        b.extend([2u8; 32]);
        b.extend(3u32.to_le_bytes());
        b.extend(b"abc");
        let e = parse(&b).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].pcr, e[0].kind, e[0].digest), (0, 8, [2u8; 32]));
        assert_eq!(e[0].data, b"abc");
    }

    #[test]
    fn damaged_logs_are_errors_not_panics() {
        let good = encode(&[ev(4, b"k", "kernel"), ev(12, b"c", "cmdline")]);
        for n in 0..good.len() {
            let r = parse(&good[..n]);
            // Cut between two events is a shorter valid log; anywhere else an error.
            if let Ok(events) = &r {
                assert!(events.len() < 2, "{n}");
            }
        }
        assert!(matches!(parse(&[]), Err(LogError::NotAgile(_))));
        let mut b = good.clone();
        b[4] = 1; // the first event is not EV_NO_ACTION
        assert!(matches!(parse(&b), Err(LogError::NotAgile(_))));
        let mut b = good.clone();
        b[32] = b'X'; // signature
        assert!(matches!(parse(&b), Err(LogError::NotAgile(_))));
        // An event data size beyond the bound.
        let mut b = encode(&[ev(4, b"k", "")]);
        let n = b.len();
        b[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(parse(&b), Err(LogError::Bad { index: 0, .. })));
        // A digest count larger than the header's algorithms.
        let mut b = encode(&[ev(4, b"k", "")]);
        let at = header().len() + 8;
        b[at] = 9;
        assert!(matches!(parse(&b), Err(LogError::Bad { .. })));
        assert!(matches!(
            parse(&vec![0u8; MAX_LOG + 1]),
            Err(LogError::TooLarge(_))
        ));
    }
}
