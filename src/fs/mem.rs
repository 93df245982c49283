//! An in-memory volume, for parser tests and fuzz targets: files given as path → bytes,
//! directories implied by the paths. Never used on a real disk.

use std::collections::BTreeMap;

use super::{normalize, BootFs, DirEntry, FileKind, FsError, Metadata};

/// An in-memory volume: path → content; directories are implied by the paths.
#[derive(Default)]
pub struct MemFs(pub BTreeMap<String, Vec<u8>>);

impl MemFs {
    /// Fuzz input as a volume: `data` split at NUL bytes, the pieces given `names` in order
    /// (fewer pieces: fewer files).
    pub fn from_chunks(data: &[u8], names: &[&str]) -> MemFs {
        MemFs(
            data.split(|&b| b == 0)
                .zip(names)
                .map(|(c, n)| (normalize(n), c.to_vec()))
                .collect(),
        )
    }

    /// A volume holding `files` (path, text).
    pub fn new(files: &[(&str, &str)]) -> MemFs {
        MemFs(
            files
                .iter()
                .map(|(p, c)| (normalize(p), c.as_bytes().to_vec()))
                .collect(),
        )
    }
}

impl BootFs for MemFs {
    fn metadata(&self, path: &str) -> Result<Metadata, FsError> {
        let p = normalize(path);
        if let Some(c) = self.0.get(&p) {
            return Ok(Metadata {
                kind: FileKind::File,
                len: c.len() as u64,
            });
        }
        let prefix = if p == "/" { p.clone() } else { format!("{p}/") };
        if self.0.keys().any(|k| k.starts_with(&prefix)) {
            return Ok(Metadata {
                kind: FileKind::Dir,
                len: 0,
            });
        }
        Err(FsError::NotFound(p))
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let p = normalize(path);
        let prefix = if p == "/" { p.clone() } else { format!("{p}/") };
        let mut out: Vec<DirEntry> = Vec::new();
        for k in self.0.keys() {
            if let Some(rest) = k.strip_prefix(&prefix) {
                let (name, kind) = match rest.split_once('/') {
                    Some((d, _)) => (d, FileKind::Dir),
                    None => (rest, FileKind::File),
                };
                if !out.iter().any(|e| e.name == name) {
                    out.push(DirEntry {
                        name: name.to_string(),
                        kind,
                    });
                }
            }
        }
        if out.is_empty() {
            return Err(FsError::NotFound(p));
        }
        Ok(out)
    }

    fn copy_to(&self, path: &str, out: &mut dyn std::io::Write, max: u64) -> Result<u64, FsError> {
        let p = normalize(path);
        let c = self.0.get(&p).ok_or(FsError::NotFound(p.clone()))?;
        if c.len() as u64 > max {
            return Err(FsError::TooLarge {
                path: p,
                len: c.len() as u64,
                max,
            });
        }
        out.write_all(c).map_err(|e| FsError::Io {
            path: p,
            message: e.to_string(),
        })?;
        Ok(c.len() as u64)
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let p = normalize(path);
        let c = self.0.get(&p).ok_or(FsError::NotFound(p.clone()))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(c.len());
        let n = buf.len().min(c.len() - start);
        buf[..n].copy_from_slice(&c[start..start + n]);
        Ok(n)
    }
}
