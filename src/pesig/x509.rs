//! X.509 certificates, as far as signature checking needs them: issuer, serial, subject,
//! the RSA public key, and the certificate's own signature over its TBS part.

use super::der::{self, Bad};
use super::rsa::PublicKey;
use sha2::{Digest, Sha256};

pub const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
pub const SHA256_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// A parsed certificate; it borrows its DER encoding.
#[derive(Clone, Debug)]
pub struct Cert<'a> {
    pub whole: &'a [u8],
    tbs: &'a [u8],
    pub serial: &'a [u8],
    pub issuer: &'a [u8],
    pub subject: &'a [u8],
    /// `None`: not an RSA key (this verifier knows no other).
    pub key: Option<PublicKey>,
    sig_alg: &'a [u8],
    sig: &'a [u8],
}

impl<'a> Cert<'a> {
    /// Parses one DER certificate (exactly `der`, nothing after it).
    pub fn parse(der: &'a [u8]) -> Result<Cert<'a>, Bad> {
        let mut input = der;
        let outer = der::read(&mut input, "certificate")?;
        if outer.tag != der::SEQUENCE || !input.is_empty() {
            return Err("certificate: not one DER SEQUENCE".into());
        }
        let mut c = outer.body;
        let tbs = der::read(&mut c, "tbsCertificate")?;
        let sig_alg = der::algorithm(&mut c, "certificate signatureAlgorithm")?;
        let sig = der::expect(&mut c, der::BIT_STRING, "certificate signature")?;
        let sig = bit_string(sig, "certificate signature")?;
        let mut t = tbs.body;
        der::optional(&mut t, der::context(0), "version")?;
        let serial = der::expect(&mut t, der::INTEGER, "serialNumber")?;
        der::read(&mut t, "tbs signature")?;
        let issuer = der::read(&mut t, "issuer")?.whole;
        der::read(&mut t, "validity")?;
        let subject = der::read(&mut t, "subject")?.whole;
        let mut spki = der::expect(&mut t, der::SEQUENCE, "subjectPublicKeyInfo")?;
        let alg = der::algorithm(&mut spki, "public key algorithm")?;
        let bits = der::expect(&mut spki, der::BIT_STRING, "public key")?;
        let key = if alg == RSA_ENCRYPTION {
            let mut k = bit_string(bits, "public key")?;
            let mut k = der::expect(&mut k, der::SEQUENCE, "RSAPublicKey")?;
            let n = der::expect(&mut k, der::INTEGER, "modulus")?;
            let e = der::expect(&mut k, der::INTEGER, "exponent")?;
            Some(PublicKey::new(n, e)?)
        } else {
            None
        };
        Ok(Cert {
            whole: der,
            tbs: tbs.whole,
            serial,
            issuer,
            subject,
            key,
            sig_alg,
            sig,
        })
    }

    /// Whether `issuer`'s key signed this certificate (SHA-256 with RSA only).
    pub fn signed_by(&self, issuer: &Cert<'_>) -> bool {
        let Some(key) = &issuer.key else { return false };
        self.issuer == issuer.subject
            && self.sig_alg == SHA256_WITH_RSA
            && key.verify_sha256(self.sig, &Sha256::digest(self.tbs).into())
    }

    /// The subject's common name (or the whole name, hex, when it has none), for messages;
    /// not sanitised.
    pub fn name(&self) -> String {
        common_name(self.subject).unwrap_or_else(|| {
            format!(
                "a certificate without a common name, serial {}",
                crate::tpm::eventlog::hex(self.serial)
            )
        })
    }
}

/// A BIT STRING's bytes (whole bytes only).
fn bit_string<'a>(body: &'a [u8], what: &str) -> Result<&'a [u8], Bad> {
    match body.split_first() {
        Some((0, rest)) => Ok(rest),
        _ => Err(format!("{what}: a BIT STRING with unused bits")),
    }
}

/// The first common name (2.5.4.3) in a Name.
fn common_name(name: &[u8]) -> Option<String> {
    let mut n = name;
    let mut rdns = der::expect(&mut n, der::SEQUENCE, "name").ok()?;
    while !rdns.is_empty() {
        let mut set = der::expect(&mut rdns, der::SET, "name").ok()?;
        while !set.is_empty() {
            let mut atv = der::expect(&mut set, der::SEQUENCE, "name").ok()?;
            let oid = der::expect(&mut atv, der::OID, "name").ok()?;
            let value = der::read(&mut atv, "name").ok()?;
            if oid == COMMON_NAME {
                return Some(String::from_utf8_lossy(value.body).into_owned());
            }
        }
    }
    None
}

/// The DER certificates in `bytes`: PEM (`-----BEGIN CERTIFICATE-----` blocks, any number)
/// or one DER certificate.
pub fn load(bytes: &[u8]) -> Result<Vec<Vec<u8>>, Bad> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let Ok(text) = std::str::from_utf8(bytes) else {
        Cert::parse(bytes)?;
        return Ok(vec![bytes.to_vec()]);
    };
    if !text.contains(BEGIN) {
        Cert::parse(bytes)?;
        return Ok(vec![bytes.to_vec()]);
    }
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let end = body.find(END).ok_or("a PEM block without its END line")?;
        let der = base64(&body[..end]).ok_or("a PEM block that is not base64")?;
        Cert::parse(&der).map_err(|e| format!("certificate {}: {e}", out.len() + 1))?;
        out.push(der);
        rest = &body[end + END.len()..];
    }
    Ok(out)
}

fn base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\r' | b'\n' | b' ' | b'\t' => continue,
            _ => return None,
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}
