//! What leapboot loaded, kept under `/run/leapboot/` (tmpfs: it never touches a disk and is
//! gone after the reboot), so that `leapboot status` can say what `/sys/kernel/kexec_loaded`
//! cannot: which kernel, which initrds and which command line.
//!
//! The record is JSON written by [`save`] and read back by [`read`] with a size bound; a
//! record that does not parse is reported, never trusted. It describes a load; the kernel's
//! `kexec_loaded` flag remains the truth about whether something is loaded (someone may have
//! run `kexec -u` since).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The record's file name under the run directory's `leapboot/`.
pub const FILE: &str = "leapboot/loaded.json";
/// Largest record read.
const MAX_BYTES: u64 = 64 << 10;

/// One file that was loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loaded {
    /// Where it was read from (`/boot/vmlinuz-…`, or `volume:path`).
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What was loaded, and by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The entry's title (or the kernel's file name for `--kernel`).
    pub title: String,
    /// The kernel.
    pub kernel: Loaded,
    /// The initrds, in order.
    pub initrds: Vec<Loaded>,
    /// The command line given to the new kernel.
    pub cmdline: String,
    /// Seconds since the epoch when it was loaded.
    pub loaded_at: u64,
    /// What loaded it (`leapboot load`, `leapboot shutdown-hook`...).
    pub by: String,
}

/// The record's path under `run` (normally `/run`).
pub fn path(run: &Path) -> PathBuf {
    run.join(FILE)
}

/// Writes the record (creating `run/leapboot/`). `run` must be a tmpfs such as `/run`.
pub fn save(run: &Path, r: &Record) -> std::io::Result<()> {
    let p = path(run);
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(r).map_err(std::io::Error::other)?;
    let tmp = p.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, p)
}

/// Removes the record (after `unload`); a missing one is fine.
pub fn clear(run: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path(run)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The record, `Ok(None)` if there is none, or why it cannot be read.
pub fn read(run: &Path) -> Result<Option<Record>, String> {
    use std::io::Read;
    let p = path(run);
    let f = match std::fs::File::open(&p) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", p.display())),
    };
    let mut text = String::new();
    f.take(MAX_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", p.display()))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("{}: not a leapboot record ({e}); ignoring it", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_read_clear() {
        let run = tempfile::tempdir().unwrap();
        assert_eq!(read(run.path()), Ok(None));
        let r = Record {
            title: "Debian".into(),
            kernel: Loaded {
                path: "/boot/vmlinuz-6.1".into(),
                bytes: 8 << 20,
            },
            initrds: vec![Loaded {
                path: "/boot/initrd.img-6.1".into(),
                bytes: 30 << 20,
            }],
            cmdline: "root=/dev/vda1 ro".into(),
            loaded_at: 1,
            by: "leapboot load".into(),
        };
        save(run.path(), &r).unwrap();
        assert_eq!(read(run.path()), Ok(Some(r)));
        clear(run.path()).unwrap();
        assert_eq!(read(run.path()), Ok(None));
        clear(run.path()).unwrap();
    }

    #[test]
    fn a_broken_record_is_reported_not_trusted() {
        let run = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(run.path().join("leapboot")).unwrap();
        std::fs::write(path(run.path()), "{\"title\": 1").unwrap();
        let e = read(run.path()).unwrap_err();
        assert!(e.contains("not a leapboot record"), "{e}");
    }
}
