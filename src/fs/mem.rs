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

impl MemFs {
    /// The paths under directory `prefix` (ending in `/`): one contiguous range of the sorted
    /// map, so listing a directory costs its size (and a log), not the whole volume's.
    fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a String> + 'a {
        use std::ops::Bound;
        self.0
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .map(|(k, _)| k)
            .take_while(move |k| k.starts_with(prefix))
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
        if self.under(&prefix).next().is_some() {
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
        let mut seen = std::collections::BTreeSet::new();
        for k in self.under(&prefix) {
            let rest = &k[prefix.len()..];
            let (name, kind) = match rest.split_once('/') {
                Some((d, _)) => (d, FileKind::Dir),
                None => (rest, FileKind::File),
            };
            if seen.insert(name) {
                out.push(DirEntry {
                    name: name.to_string(),
                    kind,
                });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_lists_each_child_once_whatever_sorts_between_its_files() {
        // "/d/a-1" and "/d/a.x" sort between "/d/a" and "/d/a/b": the listing is by name.
        let fs = MemFs::new(&[
            ("/d/a/b", "1"),
            ("/d/a-1", "2"),
            ("/d/a.x", "3"),
            ("/d/a/c", "4"),
            ("/dz", "5"),
        ]);
        let mut names: Vec<(String, FileKind)> = fs
            .read_dir("/d")
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.kind))
            .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            names,
            [
                ("a".to_string(), FileKind::Dir),
                ("a-1".to_string(), FileKind::File),
                ("a.x".to_string(), FileKind::File),
            ]
        );
        assert_eq!(fs.metadata("/d/a").unwrap().kind, FileKind::Dir);
        assert_eq!(fs.metadata("/").unwrap().kind, FileKind::Dir);
        assert!(fs.metadata("/d/b").is_err());
        assert!(fs.read_dir("/d/a-1/x").is_err());
        assert_eq!(fs.read_dir("/").unwrap().len(), 2);
    }
}
