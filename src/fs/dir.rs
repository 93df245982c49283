//! A directory of the running system seen as a volume: `leapboot list --root DIR`, unit tests,
//! and (later) kernel-mounted volumes. Symlinks are followed but must stay inside the root.

use std::path::{Path, PathBuf};

use super::{components, copy_bounded, BootFs, DirEntry, FileKind, FsError, Metadata};

/// A directory tree treated as the root of one volume.
pub struct DirFs {
    root: PathBuf,
}

impl DirFs {
    /// Uses `root` as the volume root.
    pub fn new(root: &Path) -> DirFs {
        DirFs {
            root: root.to_owned(),
        }
    }

    fn resolve(&self, path: &str) -> Result<PathBuf, FsError> {
        let mut p = self.root.clone();
        p.extend(components(path));
        // A symlink may point outside the root: refuse what canonicalizes elsewhere.
        if let (Ok(real), Ok(root)) = (p.canonicalize(), self.root.canonicalize()) {
            if !real.starts_with(&root) {
                return Err(FsError::NotFound(path.to_string()));
            }
        }
        Ok(p)
    }
}

fn io(path: &str, e: std::io::Error) -> FsError {
    if e.kind() == std::io::ErrorKind::NotFound {
        FsError::NotFound(path.to_string())
    } else {
        FsError::Io {
            path: path.to_string(),
            message: e.to_string(),
        }
    }
}

fn kind(t: &std::fs::Metadata) -> FileKind {
    if t.is_file() {
        FileKind::File
    } else if t.is_dir() {
        FileKind::Dir
    } else {
        FileKind::Other
    }
}

impl BootFs for DirFs {
    fn metadata(&self, path: &str) -> Result<Metadata, FsError> {
        let m = std::fs::metadata(self.resolve(path)?).map_err(|e| io(path, e))?;
        Ok(Metadata {
            kind: kind(&m),
            len: m.len(),
        })
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let p = self.resolve(path)?;
        let rd = std::fs::read_dir(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotADirectory => FsError::NotADir(path.to_string()),
            _ => io(path, e),
        })?;
        let mut out = Vec::new();
        for e in rd.take(super::MAX_DIR_ENTRIES) {
            let e = e.map_err(|e| io(path, e))?;
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            let k = std::fs::metadata(e.path())
                .map(|m| kind(&m))
                .unwrap_or(FileKind::Other);
            out.push(DirEntry { name, kind: k });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn copy_to(&self, path: &str, out: &mut dyn std::io::Write, max: u64) -> Result<u64, FsError> {
        let p = self.resolve(path)?;
        let m = std::fs::metadata(&p).map_err(|e| io(path, e))?;
        if !m.is_file() {
            return Err(FsError::NotAFile(path.to_string()));
        }
        if m.len() > max {
            return Err(FsError::TooLarge {
                path: path.to_string(),
                len: m.len(),
                max,
            });
        }
        let mut f = std::fs::File::open(&p).map_err(|e| io(path, e))?;
        copy_bounded(path, &mut f, out, max)
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        use std::os::unix::fs::FileExt;
        let p = self.resolve(path)?;
        let f = std::fs::File::open(&p).map_err(|e| io(path, e))?;
        if !f.metadata().map_err(|e| io(path, e))?.is_file() {
            return Err(FsError::NotAFile(path.to_string()));
        }
        let mut n = 0;
        while n < buf.len() {
            match f.read_at(&mut buf[n..], offset.saturating_add(n as u64)) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io(path, e)),
            }
        }
        Ok(n)
    }
}
