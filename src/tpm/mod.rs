//! A TPM 2.0 through the kernel's character device: find it, extend a PCR, read PCRs.
//!
//! [`Tpm::open`] takes `/dev/tpmrm0` (the kernel's resource manager, shared safely with
//! other users), else `/dev/tpm0`; the kernel's driver (`tpm_tis`, `tpm_crb`: built into
//! Debian's kernels) must have found the chip. [`Tpm::extend`] sends one hand-encoded
//! `TPM2_PCR_Extend` ([`command`]) and checks the reply; a busy TPM (`TPM_RC_RETRY`,
//! `_YIELDED`, `_TESTING`) is asked again at most [`RETRIES`] times, 20 ms apart. The kernel
//! driver bounds each command in time (its TIS/CRB timeouts); replies are read into a
//! [`command::MAX_RESPONSE`]-byte buffer. PCR values are read from
//! `/sys/class/tpm/tpm0/pcr-sha256/<n>` (Linux ≥ 5.12), which needs no command code here.
//! [`eventlog`] is the TCG binary log of what was extended.
//!
//! This module decides nothing: which PCR gets what is [`crate::measure`]'s job.

pub mod command;
pub mod eventlog;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// How often a busy TPM is asked again.
pub const RETRIES: u32 = 3;

/// Where the TPM device nodes are looked for, in order.
pub const DEVICES: &[&str] = &["/dev/tpmrm0", "/dev/tpm0"];

/// A TPM failure.
#[derive(Debug, thiserror::Error)]
pub enum TpmError {
    /// No device node (no TPM, or no driver).
    #[error("no TPM found ({})", DEVICES.join(", "))]
    Absent,
    /// The device could not be opened, written or read.
    #[error("{path}: {source}")]
    Io {
        /// The device node.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The TPM's reply was a refusal or malformed.
    #[error("{path}: PCR {pcr}: {source}")]
    Reply {
        /// The device node.
        path: PathBuf,
        /// The PCR being extended.
        pcr: u32,
        /// What was wrong.
        source: command::ResponseError,
    },
    /// A PCR number outside 0..24.
    #[error("PCR {0} does not exist")]
    NoSuchPcr(u32),
}

/// An open TPM device.
pub struct Tpm {
    file: std::fs::File,
    path: PathBuf,
}

/// The first of `candidates` that exists.
pub fn find(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

impl Tpm {
    /// Opens the first TPM device of [`DEVICES`].
    pub fn open() -> Result<Tpm, TpmError> {
        let path = find(DEVICES).ok_or(TpmError::Absent)?;
        Tpm::open_path(&path)
    }

    /// Opens `path` (read-write, close-on-exec).
    pub fn open_path(path: &Path) -> Result<Tpm, TpmError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|source| TpmError::Io {
                path: path.to_owned(),
                source,
            })?;
        Ok(Tpm {
            file,
            path: path.to_owned(),
        })
    }

    /// The device node in use.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One command, its reply (at most [`command::MAX_RESPONSE`] bytes, one read: the
    /// kernel returns the whole reply at once).
    fn transmit(&mut self, cmd: &[u8]) -> Result<Vec<u8>, TpmError> {
        let io = |source| TpmError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(cmd).map_err(io)?;
        let mut buf = vec![0u8; command::MAX_RESPONSE];
        let n = self.file.read(&mut buf).map_err(|source| TpmError::Io {
            path: self.path.clone(),
            source,
        })?;
        buf.truncate(n);
        Ok(buf)
    }

    /// `TPM2_PCR_Extend(pcr, SHA-256 digest)`.
    pub fn extend(&mut self, pcr: u32, digest: &[u8; 32]) -> Result<(), TpmError> {
        if pcr >= command::PCR_COUNT {
            return Err(TpmError::NoSuchPcr(pcr));
        }
        let cmd = command::pcr_extend(pcr, digest);
        let mut tries = 0;
        loop {
            let reply = self.transmit(&cmd)?;
            match command::parse_response(&reply) {
                Ok(()) => return Ok(()),
                Err(e) if e.is_transient() && tries < RETRIES => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(source) => {
                    return Err(TpmError::Reply {
                        path: self.path.clone(),
                        pcr,
                        source,
                    })
                }
            }
        }
    }
}

/// The SHA-256 value of `pcr` as the kernel shows it under `sysfs_tpm`
/// (`/sys/class/tpm/tpm0`): 64 hex digits. `None` if absent or not that shape.
pub fn read_pcr(sysfs_tpm: &Path, pcr: u32) -> Option<[u8; 32]> {
    // A sysfs attribute: one page at most, whatever its content.
    let text = std::fs::read(sysfs_tpm.join(format!("pcr-sha256/{pcr}"))).ok()?;
    parse_hex32(std::str::from_utf8(&text).ok()?.trim())
}

/// 64 hex digits (either case) as 32 bytes.
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Where the kernel shows the first TPM.
pub const SYSFS_TPM: &str = "/sys/class/tpm/tpm0";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcr_values_are_read_from_sysfs_text() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pcr-sha256")).unwrap();
        let v = "AB".repeat(32);
        std::fs::write(dir.path().join("pcr-sha256/4"), format!("{v}\n")).unwrap();
        std::fs::write(dir.path().join("pcr-sha256/5"), "xyz\n").unwrap();
        assert_eq!(read_pcr(dir.path(), 4), Some([0xAB; 32]));
        assert_eq!(read_pcr(dir.path(), 5), None);
        assert_eq!(read_pcr(dir.path(), 6), None);
        assert_eq!(parse_hex32(&"0".repeat(63)), None);
        assert_eq!(parse_hex32(&"é".repeat(32)), None);
    }

    #[test]
    fn a_missing_device_is_absent_and_a_bad_pcr_refused() {
        assert_eq!(find(&["/nonexistent/tpm"]), None);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tpm");
        std::fs::write(&f, b"").unwrap();
        let mut t = Tpm::open_path(&f).unwrap();
        assert!(matches!(
            t.extend(24, &[0; 32]),
            Err(TpmError::NoSuchPcr(24))
        ));
        // A regular file "answers" with nothing: a short reply, named.
        let e = t.extend(4, &[0; 32]).unwrap_err();
        assert!(
            e.to_string().contains("shorter than a response header"),
            "{e}"
        );
    }
}
