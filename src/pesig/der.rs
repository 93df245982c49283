//! A DER reader for the few structures Authenticode needs (PKCS#7 SignedData, X.509
//! certificates): definite lengths, one-byte tags, every length checked against what is
//! left. No recursion: callers walk the structure they expect, one level at a time.

/// One element: its tag, its contents, and its whole encoding (tag and length included).
#[derive(Clone, Copy, Debug)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub body: &'a [u8],
    pub whole: &'a [u8],
}

/// Why an encoding was refused.
pub type Bad = String;

pub const INTEGER: u8 = 0x02;
pub const BIT_STRING: u8 = 0x03;
pub const OCTET_STRING: u8 = 0x04;
pub const OID: u8 = 0x06;
pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;
/// `[n]` constructed, context-specific.
pub const fn context(n: u8) -> u8 {
    0xa0 | n
}

/// Reads the next element of `input` and advances past it.
pub fn read<'a>(input: &mut &'a [u8], what: &str) -> Result<Tlv<'a>, Bad> {
    let all: &'a [u8] = input;
    let bad = |why: &str| format!("{what}: {why}");
    let (&tag, rest) = all.split_first().ok_or_else(|| bad("missing"))?;
    if tag & 0x1f == 0x1f {
        return Err(bad("multi-byte tag"));
    }
    let (&first, mut rest) = rest.split_first().ok_or_else(|| bad("truncated length"))?;
    let len = match first {
        n if n < 0x80 => n as usize,
        0x80 => return Err(bad("indefinite length (BER, not DER)")),
        n => {
            let count = (n & 0x7f) as usize;
            if count > 4 || rest.len() < count {
                return Err(bad("bad length"));
            }
            let mut len = 0usize;
            for &b in &rest[..count] {
                len = (len << 8) | b as usize;
            }
            rest = &rest[count..];
            len
        }
    };
    if len > rest.len() {
        return Err(bad("longer than its container"));
    }
    let header = all.len() - rest.len();
    let tlv = Tlv {
        tag,
        body: &rest[..len],
        whole: &all[..header + len],
    };
    *input = &rest[len..];
    Ok(tlv)
}

/// Reads the next element, which must have `tag`; returns its contents.
pub fn expect<'a>(input: &mut &'a [u8], tag: u8, what: &str) -> Result<&'a [u8], Bad> {
    let t = read(input, what)?;
    if t.tag != tag {
        return Err(format!(
            "{what}: tag 0x{:02x} where 0x{tag:02x} was expected",
            t.tag
        ));
    }
    Ok(t.body)
}

/// Reads the next element if it has `tag`.
pub fn optional<'a>(input: &mut &'a [u8], tag: u8, what: &str) -> Result<Option<Tlv<'a>>, Bad> {
    if input.first() == Some(&tag) {
        read(input, what).map(Some)
    } else {
        Ok(None)
    }
}

/// An AlgorithmIdentifier's OID (its parameters, NULL or absent, are ignored).
pub fn algorithm<'a>(input: &mut &'a [u8], what: &str) -> Result<&'a [u8], Bad> {
    let mut alg = expect(input, SEQUENCE, what)?;
    expect(&mut alg, OID, what)
}

/// An unsigned INTEGER's magnitude, big-endian, without leading zero bytes.
pub fn unsigned(body: &[u8]) -> &[u8] {
    let zeros = body.iter().take_while(|&&b| b == 0).count();
    &body[zeros..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_checked_against_what_is_left() {
        let mut ok: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x05, 0xff];
        let t = read(&mut ok, "x").unwrap();
        assert_eq!((t.tag, t.body, t.whole.len()), (0x30, &[2u8, 1, 5][..], 5));
        assert_eq!(ok, &[0xff]);
        let long: Vec<u8> = [&[0x04, 0x82, 0x01, 0x00][..], &[7; 256]].concat();
        assert_eq!(read(&mut &long[..], "x").unwrap().body.len(), 256);
        for bad in [
            &[0x30, 0x05, 0x01][..],         // longer than the input
            &[0x30, 0x80, 0x00, 0x00],       // indefinite
            &[0x1f, 0x01, 0x00],             // multi-byte tag
            &[0x30, 0x85, 1, 1, 1, 1, 1],    // five length bytes
            &[0x30, 0x84, 0xff, 0xff, 0xff], // truncated length
            &[0x30],                         // no length
            &[],
        ] {
            assert!(read(&mut &bad[..], "x").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn expect_names_what_it_wanted() {
        let e = expect(&mut &[0x31u8, 0][..], SEQUENCE, "signerInfo").unwrap_err();
        assert_eq!(e, "signerInfo: tag 0x31 where 0x30 was expected");
        assert!(optional(&mut &[0x31u8, 0][..], 0xa0, "x")
            .unwrap()
            .is_none());
        assert_eq!(unsigned(&[0, 0, 0x80, 1]), &[0x80, 1]);
    }
}
