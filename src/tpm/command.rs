//! TPM 2.0 command bytes: `TPM2_PCR_Extend` for the SHA-256 bank, and the response checked.
//!
//! Written from the TPM 2.0 Library specification (Part 1 "Architecture" for the header and
//! the response codes, Part 2 "Structures" for the types, Part 3 "Commands" §22.4 for
//! `TPM2_PCR_Extend`). Everything is big-endian.
//!
//! The command (65 bytes):
//!
//! ```text
//! tag            u16  0x8002 TPM_ST_SESSIONS (the PCR handle needs an authorisation)
//! commandSize    u32  65
//! commandCode    u32  0x00000182 TPM_CC_PCR_Extend
//! pcrHandle      u32  the PCR number (PCR handles are 0..=23)
//! authSize       u32  9: one password session with an empty password
//!   sessionHandle  u32  0x40000009 TPM_RS_PW
//!   nonce          u16  0 (size, no bytes)
//!   attributes     u8   0
//!   hmac           u16  0 (size: the empty password)
//! digests        TPML_DIGEST_VALUES: count u32 = 1, hashAlg u16 = 0x000B TPM_ALG_SHA256,
//!                32 digest bytes
//! ```
//!
//! A successful response is `tag 0x8002, size 19, rc 0, parameterSize u32 = 0` and the
//! password session's acknowledgement (`nonce 0, attributes, hmac 0`: 5 bytes). A failure is
//! `tag 0x8001, size 10, rc ≠ 0`. [`parse_response`] checks every length against the bytes
//! it was given, never reads past them, and names the response code.

/// TPM_ST_NO_SESSIONS.
const ST_NO_SESSIONS: u16 = 0x8001;
/// TPM_ST_SESSIONS.
const ST_SESSIONS: u16 = 0x8002;
/// TPM_CC_PCR_Extend.
const CC_PCR_EXTEND: u32 = 0x0000_0182;
/// TPM_RS_PW: the password authorisation session.
const RS_PW: u32 = 0x4000_0009;
/// TPM_ALG_SHA256.
pub const ALG_SHA256: u16 = 0x000B;
/// The length of a `TPM2_PCR_Extend` command with one SHA-256 digest.
pub const EXTEND_LEN: usize = 65;
/// The largest response accepted (the kernel's own buffer is one page).
pub const MAX_RESPONSE: usize = 4096;
/// The PCRs a PC Client TPM has.
pub const PCR_COUNT: u32 = 24;

/// `TPM2_PCR_Extend(pcr, SHA-256 digest)` with an empty password session.
pub fn pcr_extend(pcr: u32, digest: &[u8; 32]) -> [u8; EXTEND_LEN] {
    let mut c = [0u8; EXTEND_LEN];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        c[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(&ST_SESSIONS.to_be_bytes());
    put(&(EXTEND_LEN as u32).to_be_bytes());
    put(&CC_PCR_EXTEND.to_be_bytes());
    put(&pcr.to_be_bytes());
    put(&9u32.to_be_bytes());
    put(&RS_PW.to_be_bytes());
    put(&0u16.to_be_bytes()); // nonceCaller: empty
    put(&[0]); // sessionAttributes
    put(&0u16.to_be_bytes()); // hmac: the empty password
    put(&1u32.to_be_bytes()); // one digest
    put(&ALG_SHA256.to_be_bytes());
    put(digest);
    c
}

/// What is wrong with a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// Fewer bytes than a response header (10).
    #[error("the TPM's reply is {0} bytes, shorter than a response header")]
    Short(usize),
    /// More bytes than [`MAX_RESPONSE`].
    #[error("the TPM's reply is {0} bytes, more than {MAX_RESPONSE}")]
    TooLong(usize),
    /// The header's size is not the number of bytes received.
    #[error("the TPM's reply says {said} bytes but {got} arrived")]
    SizeMismatch {
        /// The header's `responseSize`.
        said: u32,
        /// Bytes received.
        got: usize,
    },
    /// Not TPM_ST_SESSIONS/NO_SESSIONS, or NO_SESSIONS on success (we sent a session).
    #[error("the TPM's reply has tag {0:#06x}, not the one a PCR_Extend reply has")]
    BadTag(u16),
    /// The TPM refused the command.
    #[error("the TPM refused: {} (response code {code:#x})", rc_text(*.code))]
    Refused {
        /// The response code.
        code: u32,
    },
    /// A successful reply whose parameter or session area does not add up.
    #[error("the TPM's reply is malformed: {0}")]
    Malformed(&'static str),
}

impl ResponseError {
    /// Whether trying the same command again may succeed (TPM_RC_RETRY, _YIELDED,
    /// _TESTING: warnings the TPM gives while busy).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ResponseError::Refused {
                code: RC_RETRY | RC_YIELDED | RC_TESTING
            }
        )
    }
}

const RC_RETRY: u32 = 0x922;
const RC_YIELDED: u32 = 0x908;
const RC_TESTING: u32 = 0x90A;

/// Words for a response code: the common ones by name, the rest by their format.
pub fn rc_text(code: u32) -> String {
    // Format-one codes (bit 7) carry a parameter/handle/session number in bits 8-11: the
    // error itself is the low 6 bits plus 0x80 (RC_FMT1).
    let fmt1 = code & 0x80 != 0;
    let base = if fmt1 { (code & 0x3F) | 0x80 } else { code };
    let name = match base {
        0x100 => "TPM_RC_INITIALIZE: the TPM was not started (TPM2_Startup missing)",
        0x101 => "TPM_RC_FAILURE: the TPM is in failure mode",
        0x143 => "TPM_RC_COMMAND_CODE: command not supported",
        0x149 => "TPM_RC_AUTH_MISSING: the command needs an authorisation",
        0x14B => "TPM_RC_AUTH_UNAVAILABLE",
        0x01E => "TPM_RC_BAD_TAG",
        0x907 => "TPM_RC_LOCALITY: the PCR cannot be extended from this locality",
        0x908 => "TPM_RC_YIELDED",
        0x90A => "TPM_RC_TESTING: the TPM is self-testing",
        0x921 => "TPM_RC_LOCKOUT",
        0x922 => "TPM_RC_RETRY: the TPM is busy",
        0x923 => "TPM_RC_NV_UNAVAILABLE",
        0x084 => "TPM_RC_VALUE: a value is out of range",
        0x08B => "TPM_RC_HANDLE: no such PCR",
        0x095 => "TPM_RC_SIZE",
        0x09A => "TPM_RC_BAD_AUTH",
        0x08E => "TPM_RC_AUTH_FAIL: the authorisation failed (the PCR has a non-empty auth value)",
        0x083 => "TPM_RC_HASH: the SHA-256 bank is not allocated",
        _ if code & 0x800 != 0 => "a warning",
        _ if fmt1 => "a parameter, handle or session error",
        _ => "an error",
    };
    name.to_string()
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Checks a `TPM2_PCR_Extend` response: `Ok` only for response code 0 with a well-formed
/// empty parameter area and one password-session acknowledgement.
pub fn parse_response(r: &[u8]) -> Result<(), ResponseError> {
    if r.len() > MAX_RESPONSE {
        return Err(ResponseError::TooLong(r.len()));
    }
    let (Some(tag), Some(size), Some(code)) = (be16(r, 0), be32(r, 2), be32(r, 6)) else {
        return Err(ResponseError::Short(r.len()));
    };
    if size as usize != r.len() {
        return Err(ResponseError::SizeMismatch {
            said: size,
            got: r.len(),
        });
    }
    if tag != ST_SESSIONS && tag != ST_NO_SESSIONS {
        return Err(ResponseError::BadTag(tag));
    }
    if code != 0 {
        return Err(ResponseError::Refused { code });
    }
    if tag != ST_SESSIONS {
        return Err(ResponseError::BadTag(tag));
    }
    let params = be32(r, 10).ok_or(ResponseError::Malformed("no parameter size"))? as usize;
    if params != 0 {
        return Err(ResponseError::Malformed("PCR_Extend returns no parameters"));
    }
    // The session acknowledgement: nonce (u16 size + bytes), attributes (u8), hmac (u16
    // size + bytes), exactly to the end.
    let mut at = 14;
    let nonce = be16(r, at).ok_or(ResponseError::Malformed("no session area"))? as usize;
    at += 2 + nonce;
    if r.get(at).is_none() {
        return Err(ResponseError::Malformed("session area cut short"));
    }
    at += 1;
    let hmac = be16(r, at).ok_or(ResponseError::Malformed("session area cut short"))? as usize;
    at += 2 + hmac;
    if at != r.len() {
        return Err(ResponseError::Malformed(
            "session area does not end the reply",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The success reply a TPM (swtpm, or the reference implementation) sends.
    fn ok_reply() -> Vec<u8> {
        let mut r = vec![0x80, 0x02, 0, 0, 0, 19, 0, 0, 0, 0];
        r.extend([0, 0, 0, 0]); // parameterSize
        r.extend([0, 0, 1, 0, 0]); // nonce 0, continueSession, hmac 0
        r
    }

    #[test]
    fn the_extend_command_is_laid_out_as_the_specification_says() {
        let d = [0xABu8; 32];
        let c = pcr_extend(12, &d);
        let hex: String = c[..33].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            concat!(
                "8002", "00000041", "00000182", "0000000c", // header, PCR 12
                "00000009", "40000009", "0000", "00", "0000", // password session
                "00000001", "000b" // one SHA-256 digest follows
            )
        );
        assert_eq!(&c[33..], &d);
        assert_eq!(c.len(), 65);
    }

    #[test]
    fn a_success_reply_is_accepted() {
        assert_eq!(parse_response(&ok_reply()), Ok(()));
        // A nonce in the acknowledgement is allowed (its length is honoured).
        let mut r = ok_reply();
        r.truncate(14);
        r.extend([0, 2, 0xAA, 0xBB, 1, 0, 0]);
        r[5] = r.len() as u8;
        assert_eq!(parse_response(&r), Ok(()));
    }

    #[test]
    fn error_codes_are_named() {
        let refused = |code: u32| {
            let mut r = vec![0x80, 0x01, 0, 0, 0, 10];
            r.extend(code.to_be_bytes());
            parse_response(&r)
        };
        let e = refused(0x907).unwrap_err();
        assert!(e.to_string().contains("TPM_RC_LOCALITY"), "{e}");
        assert!(!e.is_transient());
        let e = refused(0x100).unwrap_err();
        assert!(e.to_string().contains("TPM2_Startup"), "{e}");
        assert!(refused(0x922).unwrap_err().is_transient());
        assert!(refused(0x90A).unwrap_err().is_transient());
        // A format-one code with a handle number (0x08B | handle 1 << 8): TPM_RC_HANDLE.
        let e = refused(0x18B).unwrap_err();
        assert!(e.to_string().contains("TPM_RC_HANDLE"), "{e}");
        assert!(e.to_string().contains("0x18b"), "{e}");
        assert!(refused(0x12345).unwrap_err().to_string().contains("error"));
    }

    #[test]
    fn short_long_and_inconsistent_replies_are_refused() {
        assert_eq!(parse_response(&[]), Err(ResponseError::Short(0)));
        assert_eq!(
            parse_response(&ok_reply()[..9]),
            Err(ResponseError::Short(9))
        );
        let mut r = ok_reply();
        r.pop();
        assert!(matches!(
            parse_response(&r),
            Err(ResponseError::SizeMismatch { said: 19, got: 18 })
        ));
        assert!(matches!(
            parse_response(&vec![0; MAX_RESPONSE + 1]),
            Err(ResponseError::TooLong(_))
        ));
        let mut r = ok_reply();
        r[1] = 0x01; // NO_SESSIONS on success: we sent one
        assert_eq!(parse_response(&r), Err(ResponseError::BadTag(0x8001)));
        let mut r = ok_reply();
        r[0] = 0x00;
        assert_eq!(parse_response(&r), Err(ResponseError::BadTag(0x0002)));
        let mut r = ok_reply();
        r[13] = 4; // parameters where there are none
        assert!(matches!(
            parse_response(&r),
            Err(ResponseError::Malformed(_))
        ));
        // A nonce length that runs past the end.
        let mut r = ok_reply();
        r[14] = 0xFF;
        assert!(matches!(
            parse_response(&r),
            Err(ResponseError::Malformed(_))
        ));
        // Bytes after the session area.
        let mut r = ok_reply();
        r.push(0);
        r[5] = 20;
        assert!(matches!(
            parse_response(&r),
            Err(ResponseError::Malformed(_))
        ));
        // The header alone on success: no parameter area.
        let r = [0x80, 0x02, 0, 0, 0, 10, 0, 0, 0, 0];
        assert!(matches!(
            parse_response(&r),
            Err(ResponseError::Malformed(_))
        ));
    }
}
