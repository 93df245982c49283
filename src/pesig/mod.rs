//! `require_signed`: leapboot's own check of a kernel's (or UKI's) Authenticode signature
//! against certificates the administrator put in the initramfs, for machines whose kernel
//! is not locked down (no Secure Boot) but that must still boot only signed kernels.
//!
//! The check is the kernel's own (`verify_pefile` + PKCS#7): the PE image's SHA-256 digest
//! as Authenticode computes it must equal the one in the signed content; the signed
//! attributes' messageDigest must match that content; the signer's RSA signature over them
//! must verify; and the signer's certificate must be one of the trusted ones or chain to one
//! through the certificates the signature carries (at most [`MAX_CHAIN`] links), each link a
//! SHA-256 RSA signature. Like UEFI's `db`, no validity dates (the initramfs has no trusted
//! clock) and no key usage are checked. SHA-256 and RSA only: what `sbsign` and the
//! distributions' signing services produce.
//!
//! Pure: callers hand in the image (a memfd) and the trusted certificates' bytes.

pub(crate) mod authenticode;
mod der;
mod rsa;
pub(crate) mod x509;

#[cfg(test)]
mod tests;

pub use authenticode::Image;
use x509::Cert;

/// Most certificates between the signer and a trusted one (the signer included).
pub const MAX_CHAIN: usize = 4;
/// Most trusted certificates.
pub const MAX_TRUSTED: usize = 64;

/// The certificates a signature may chain to, each with the file it came from.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    certs: Vec<(String, Vec<u8>)>,
}

impl Trust {
    /// Adds the certificates of `bytes` (PEM, any number, or one DER), read from `file`;
    /// returns how many.
    pub fn add(&mut self, file: &str, bytes: &[u8]) -> Result<usize, String> {
        let certs = x509::load(bytes)?;
        if self.certs.len() + certs.len() > MAX_TRUSTED {
            return Err(format!("more than {MAX_TRUSTED} trusted certificates"));
        }
        let n = certs.len();
        self.certs
            .extend(certs.into_iter().map(|c| (file.to_string(), c)));
        Ok(n)
    }

    /// Whether no certificate is trusted (every signature is then refused).
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// The trusted certificates' names, for the log.
    pub fn names(&self) -> Vec<String> {
        self.certs
            .iter()
            .filter_map(|(f, c)| Some(format!("'{}' ({f})", clean(&Cert::parse(c).ok()?.name()))))
            .collect()
    }
}

/// The trust of `signing_certs`: each file read with `read` (the initramfs's own files, or a
/// running system's under its root); a file that cannot be read or parsed is a problem
/// named with its path, and the others still count.
pub fn load_trust(
    paths: &[String],
    read: impl Fn(&str) -> std::io::Result<Vec<u8>>,
) -> (Trust, Vec<String>) {
    let mut trust = Trust::default();
    let mut problems = Vec::new();
    for path in paths {
        let added = read(path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| trust.add(path, &bytes));
        if let Err(e) = added {
            problems.push(format!("signing_certs: {}: {e}; not trusted", clean(path)));
        }
    }
    (trust, problems)
}

/// A signature that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The signer's certificate name.
    pub signer: String,
    /// The trusted certificate it chains to, and the file that holds it.
    pub anchor: String,
    /// The file of [`Verified::anchor`].
    pub anchor_file: String,
}

/// Why an image is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // each variant is documented by its message
pub enum SigError {
    #[error("it is not signed (no Authenticode signature in its PE header)")]
    Unsigned,
    #[error("it is not a PE image, so it cannot carry a signature: {0}")]
    NotPe(String),
    #[error("its signature cannot be read: {0}")]
    Malformed(String),
    #[error("it was changed after signing (its digest is not the one signed by '{signer}')")]
    Changed { signer: String },
    #[error("its signature by '{signer}' does not verify with that certificate's key")]
    BadSignature { signer: String },
    #[error("its signature does not name a signer certificate it carries")]
    NoSignerCert,
    #[error("it is signed by '{signer}', which is not one of the trusted certificates ({trusted}) and is not certified by one")]
    Untrusted { signer: String, trusted: String },
    #[error("require_signed is set but no signing certificate is trusted: add `signing_certs = [\"/etc/leapboot/db.pem\"]` to leapboot.toml and that PEM file to the initramfs")]
    NoTrust,
}

fn clean(s: &str) -> String {
    crate::sanitize::for_terminal(s).into_owned()
}

/// Checks `img`'s Authenticode signatures; the first that verifies and chains to `trust`
/// wins. Otherwise the first signature's problem is returned (the one the kernel reads).
pub fn verify(img: &dyn Image, trust: &Trust) -> Result<Verified, SigError> {
    if trust.is_empty() {
        return Err(SigError::NoTrust);
    }
    let layout = authenticode::layout(img).map_err(|e| {
        if e.starts_with("not a PE image") {
            SigError::NotPe(e)
        } else {
            SigError::Malformed(e)
        }
    })?;
    if layout.certs.1 == 0 {
        return Err(SigError::Unsigned);
    }
    let blobs = authenticode::signatures(img, &layout).map_err(SigError::Malformed)?;
    if blobs.is_empty() {
        return Err(SigError::Unsigned);
    }
    let digest = authenticode::digest(img, &layout).map_err(SigError::Malformed)?;
    let mut first = None;
    for blob in &blobs {
        match check_one(blob, &digest, trust) {
            Ok(v) => return Ok(v),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    Err(first.unwrap_or(SigError::Unsigned))
}

fn check_one(blob: &[u8], digest: &[u8; 32], trust: &Trust) -> Result<Verified, SigError> {
    let s = authenticode::parse(blob).map_err(SigError::Malformed)?;
    let signer = s
        .certs
        .iter()
        .find(|c| {
            c.issuer == s.signer_issuer && der::unsigned(c.serial) == der::unsigned(s.signer_serial)
        })
        .ok_or(SigError::NoSignerCert)?;
    let name = clean(&signer.name());
    if s.image_digest != digest {
        return Err(SigError::Changed { signer: name });
    }
    let key = signer
        .key
        .as_ref()
        .ok_or_else(|| SigError::Malformed(format!("the signer '{name}' has no RSA key")))?;
    if !key.verify_sha256(s.signature, &s.signed_digest) {
        return Err(SigError::BadSignature { signer: name });
    }
    let trusted: Vec<(&str, Cert<'_>)> = trust
        .certs
        .iter()
        .filter_map(|(f, der)| Some((f.as_str(), Cert::parse(der).ok()?)))
        .collect();
    let mut cur = signer.clone();
    for _ in 0..MAX_CHAIN {
        if let Some((file, t)) = trusted
            .iter()
            .find(|(_, t)| t.whole == cur.whole || cur.signed_by(t))
        {
            return Ok(Verified {
                signer: name,
                anchor: clean(&t.name()),
                anchor_file: file.to_string(),
            });
        }
        match s
            .certs
            .iter()
            .find(|c| c.whole != cur.whole && cur.signed_by(c))
        {
            Some(up) => cur = up.clone(),
            None => break,
        }
    }
    Err(SigError::Untrusted {
        signer: name,
        trusted: trust.names().join(", "),
    })
}
