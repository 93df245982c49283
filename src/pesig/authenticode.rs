//! Authenticode: the PE image digest (the way the kernel's `verify_pefile` computes it) and
//! the PKCS#7 SignedData in the certificate table that signs it.

use super::der::{self, Bad};
use super::x509::Cert;
use sha2::{Digest, Sha256};

const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const SPC_INDIRECT_DATA: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x04];
const MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
pub const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];

/// Largest PE header read (SizeOfHeaders), signature blob, and number of signatures tried.
const MAX_HEADERS: u64 = 64 << 10;
const MAX_SIGNATURE: u64 = 256 << 10;
const MAX_SIGNATURES: usize = 8;

/// Random access to the image being checked (a memfd, or bytes in tests).
#[allow(clippy::len_without_is_empty)] // an empty image is just one more that is not PE
pub trait Image {
    /// Its size in bytes.
    fn len(&self) -> u64;
    /// Fills `buf` from `offset`; fails rather than returning less.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

impl Image for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

impl Image for std::fs::File {
    fn len(&self) -> u64 {
        self.metadata().map_or(0, |m| m.len())
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

/// What the PE headers say about hashing and the signatures.
pub struct Layout {
    /// (offset, length) of each hashed region, in order.
    regions: Vec<(u64, u64)>,
    /// The certificate table: (file offset, size); size 0: unsigned.
    pub certs: (u64, u64),
}

fn io(e: std::io::Error) -> Bad {
    format!("reading the image: {e}")
}

fn le16(h: &[u8], at: usize) -> Option<u16> {
    h.get(at..at.checked_add(2)?)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
}

fn le32(h: &[u8], at: usize) -> Option<u32> {
    h.get(at..at.checked_add(4)?)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// What the first bytes of a PE image say (offsets in the file).
pub(crate) struct PeHeaders {
    /// NumberOfRvaAndSizes and SizeOfOptionalHeader cover the certificate table entry.
    declared: bool,
    /// Number of sections, and where their table starts.
    sections: usize,
    table: usize,
    /// SizeOfHeaders.
    header_size: u64,
    /// The CheckSum field and the certificate table's data directory entry.
    checksum: u64,
    cert_dir: u64,
    /// The certificate table: (file offset, size); size 0: unsigned.
    pub(crate) certs: (u64, u64),
}

/// Reads the DOS, COFF and optional headers from `head`, the image's first bytes (4 KiB
/// hold them in practice); nothing is checked against the file's length here.
pub(crate) fn pe_headers(head: &[u8]) -> Result<PeHeaders, Bad> {
    if head.get(..2) != Some(b"MZ") {
        return Err("not a PE image (no MZ header)".into());
    }
    let pe = le32(head, 0x3c).ok_or("truncated DOS header")? as usize;
    if head.get(pe..pe.saturating_add(4)) != Some(b"PE\0\0") {
        return Err("not a PE image (no PE signature)".into());
    }
    let sections = le16(head, pe + 6).ok_or("truncated COFF header")? as usize;
    let opt_size = le16(head, pe + 20).ok_or("truncated COFF header")? as usize;
    let opt = pe + 24;
    let (dirs, count_at) = match le16(head, opt) {
        Some(0x20b) => (opt + 112, opt + 108),
        Some(0x10b) => (opt + 96, opt + 92),
        _ => return Err("unknown PE optional header".into()),
    };
    let header_size = le32(head, opt + 60).ok_or("truncated optional header")? as u64;
    let cert_dir = dirs + 4 * 8;
    let certs = (
        le32(head, cert_dir).ok_or("truncated data directories")? as u64,
        le32(head, cert_dir + 4).ok_or("truncated data directories")? as u64,
    );
    // Whether the header itself declares the certificate entry (the kernel's check); the
    // entry is read either way.
    let declared = le32(head, count_at).is_some_and(|n| n >= 5) && cert_dir + 8 <= opt + opt_size;
    Ok(PeHeaders {
        declared,
        sections,
        table: opt + opt_size,
        header_size,
        checksum: (opt + 64) as u64,
        cert_dir: cert_dir as u64,
        certs,
    })
}

/// Reads the PE headers of `img` and lays out what Authenticode hashes: the headers without
/// the checksum and the certificate table entry, the sections by file offset, then what
/// follows them except the certificate table (as the kernel's `pefile_digest_pe`).
pub fn layout(img: &dyn Image) -> Result<Layout, Bad> {
    let len = img.len();
    let mut head = vec![0u8; len.min(4096) as usize];
    img.read_at(0, &mut head).map_err(io)?;
    let PeHeaders {
        declared,
        sections,
        table,
        header_size,
        checksum,
        cert_dir,
        certs,
    } = pe_headers(&head)?;
    if !declared {
        return Err("no certificate table entry in the PE header".into());
    }
    if header_size > MAX_HEADERS || header_size > len || header_size < cert_dir + 8 {
        return Err(format!("a PE header size of {header_size} bytes"));
    }
    if certs.1 > 0 && (certs.0 < header_size || certs.0.saturating_add(certs.1) > len) {
        return Err("the certificate table lies outside the image".into());
    }
    let mut headers = vec![0u8; header_size as usize];
    img.read_at(0, &mut headers).map_err(io)?;
    let mut secs = Vec::new();
    for i in 0..sections.min(96) {
        let at = table + i * 40;
        let size = le32(&headers, at + 16).ok_or("section table beyond the headers")? as u64;
        let ptr = le32(&headers, at + 20).ok_or("section table beyond the headers")? as u64;
        if size > 0 {
            if ptr.saturating_add(size) > len {
                return Err(format!("section {} lies outside the image", i + 1));
            }
            secs.push((ptr, size));
        }
    }
    secs.sort_unstable();
    let mut regions = vec![
        (0, checksum),
        (checksum + 4, cert_dir - checksum - 4),
        (cert_dir + 8, header_size - cert_dir - 8),
    ];
    let mut hashed = header_size;
    for s in secs {
        regions.push(s);
        hashed += s.1;
        if hashed > len {
            return Err("sections hash more bytes than the image has (overlapping)".into());
        }
    }
    if len > hashed {
        let trailing = (len - hashed)
            .checked_sub(certs.1)
            .ok_or("the certificate table overlaps the sections")?;
        regions.push((hashed, trailing));
    }
    Ok(Layout { regions, certs })
}

/// The Authenticode SHA-256 digest of `img`.
pub fn digest(img: &dyn Image, l: &Layout) -> Result<[u8; 32], Bad> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    for &(mut at, mut left) in &l.regions {
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            img.read_at(at, &mut buf[..n]).map_err(io)?;
            h.update(&buf[..n]);
            at += n as u64;
            left -= n as u64;
        }
    }
    Ok(h.finalize().into())
}

/// The PKCS#7 blobs of the certificate table (WIN_CERTIFICATE entries of type
/// PKCS_SIGNED_DATA, at most [`MAX_SIGNATURES`]).
pub fn signatures(img: &dyn Image, l: &Layout) -> Result<Vec<Vec<u8>>, Bad> {
    let (start, size) = l.certs;
    if size > MAX_SIGNATURE {
        return Err(format!("a certificate table of {size} bytes"));
    }
    let mut table = vec![0u8; size as usize];
    img.read_at(start, &mut table).map_err(io)?;
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 8 <= table.len() && out.len() < MAX_SIGNATURES {
        let length = u32::from_le_bytes(table[at..at + 4].try_into().unwrap_or([0; 4])) as usize;
        let revision = u16::from_le_bytes([table[at + 4], table[at + 5]]);
        let kind = u16::from_le_bytes([table[at + 6], table[at + 7]]);
        if length < 8 || at + length > table.len() {
            return Err("a certificate table entry of a bad length".into());
        }
        if revision == 0x0200 && kind == 0x0002 {
            out.push(table[at + 8..at + length].to_vec());
        }
        at += length.div_ceil(8) * 8;
    }
    Ok(out)
}

/// A SignedData blob taken apart: what it says the image's digest is, and who signed it.
pub struct Signed<'a> {
    /// The image digest the signed content names.
    pub image_digest: &'a [u8],
    /// The certificates it carries.
    pub certs: Vec<Cert<'a>>,
    /// The signer (issuer and serial, from its SignerInfo).
    pub signer_issuer: &'a [u8],
    pub signer_serial: &'a [u8],
    /// The SHA-256 the signature is over (the authenticated attributes, or the content).
    pub signed_digest: [u8; 32],
    pub signature: &'a [u8],
}

/// Parses an Authenticode PKCS#7 SignedData, checking on the way what does not need a key:
/// SHA-256 throughout, and the authenticated attributes' messageDigest against the content.
pub fn parse(blob: &[u8]) -> Result<Signed<'_>, Bad> {
    let mut input = blob;
    let mut ci = der::expect(&mut input, der::SEQUENCE, "ContentInfo")?;
    if der::expect(&mut ci, der::OID, "ContentInfo type")? != SIGNED_DATA {
        return Err("not PKCS#7 SignedData".into());
    }
    let mut explicit = der::expect(&mut ci, der::context(0), "SignedData")?;
    let mut sd = der::expect(&mut explicit, der::SEQUENCE, "SignedData")?;
    der::expect(&mut sd, der::INTEGER, "SignedData version")?;
    der::expect(&mut sd, der::SET, "digestAlgorithms")?;
    let mut content = der::expect(&mut sd, der::SEQUENCE, "contentInfo")?;
    if der::expect(&mut content, der::OID, "content type")? != SPC_INDIRECT_DATA {
        return Err("the signed content is not Authenticode's SpcIndirectDataContent".into());
    }
    let mut wrapped = der::expect(&mut content, der::context(0), "SpcIndirectDataContent")?;
    let spc = der::expect(&mut wrapped, der::SEQUENCE, "SpcIndirectDataContent")?;
    let mut s = spc;
    der::read(&mut s, "SpcIndirectDataContent data")?;
    let mut info = der::expect(&mut s, der::SEQUENCE, "DigestInfo")?;
    let alg = der::algorithm(&mut info, "DigestInfo algorithm")?;
    if alg != SHA256 {
        return Err(format!(
            "the image digest is not SHA-256 (OID {}): only SHA-256 is checked",
            crate::tpm::eventlog::hex(alg)
        ));
    }
    let image_digest = der::expect(&mut info, der::OCTET_STRING, "image digest")?;
    let mut certs = Vec::new();
    if let Some(bag) = der::optional(&mut sd, der::context(0), "certificates")? {
        let mut b = bag.body;
        while !b.is_empty() && certs.len() < 16 {
            let c = der::read(&mut b, "certificate")?;
            certs.push(Cert::parse(c.whole)?);
        }
    }
    der::optional(&mut sd, der::context(1), "crls")?;
    let mut infos = der::expect(&mut sd, der::SET, "signerInfos")?;
    let mut si = der::expect(&mut infos, der::SEQUENCE, "signerInfo")?;
    der::expect(&mut si, der::INTEGER, "signerInfo version")?;
    let mut sid = der::expect(&mut si, der::SEQUENCE, "issuerAndSerialNumber")?;
    let signer_issuer = der::read(&mut sid, "signer issuer")?.whole;
    let signer_serial = der::expect(&mut sid, der::INTEGER, "signer serial")?;
    if der::algorithm(&mut si, "signer digestAlgorithm")? != SHA256 {
        return Err("the signer's digest is not SHA-256: only SHA-256 is checked".into());
    }
    let content_digest: [u8; 32] = Sha256::digest(spc).into();
    let signed_digest = match der::optional(&mut si, der::context(0), "authenticatedAttributes")? {
        None => content_digest,
        Some(attrs) => {
            let mut a = attrs.body;
            let mut found = None;
            while !a.is_empty() {
                let mut attr = der::expect(&mut a, der::SEQUENCE, "attribute")?;
                let oid = der::expect(&mut attr, der::OID, "attribute type")?;
                if oid == MESSAGE_DIGEST {
                    let mut set = der::expect(&mut attr, der::SET, "messageDigest")?;
                    found = Some(der::expect(&mut set, der::OCTET_STRING, "messageDigest")?);
                }
            }
            if found != Some(&content_digest[..]) {
                return Err(
                    "the signed attributes' messageDigest does not match the signed content".into(),
                );
            }
            // The signature is over the attributes as a SET (tag 0x31 instead of [0]).
            let mut h = Sha256::new();
            h.update([der::SET]);
            h.update(&attrs.whole[1..]);
            h.finalize().into()
        }
    };
    let enc = der::algorithm(&mut si, "digestEncryptionAlgorithm")?;
    if enc != super::x509::RSA_ENCRYPTION && enc != super::x509::SHA256_WITH_RSA {
        return Err("the signature is not RSA: only RSA signatures are checked".into());
    }
    let signature = der::expect(&mut si, der::OCTET_STRING, "encryptedDigest")?;
    Ok(Signed {
        image_digest,
        certs,
        signer_issuer,
        signer_serial,
        signed_digest,
        signature,
    })
}
