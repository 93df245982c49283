//! ext2/3/4 in userspace with `ext4-view`: no kernel module, no mount, no journal replay on disk
//! (`ext4-view` applies a dirty journal in memory only).

use super::{copy_bounded, BootFs, DirEntry, FileKind, FsError, Metadata, OpenError};
use crate::disk::Slice;
use ext4_view::{Ext4, Ext4Error};

/// An ext2/3/4 volume.
pub struct Ext4Fs {
    fs: Ext4,
    /// The file [`BootFs::read_at`] read last, at the position it stopped: a sequential
    /// reader (an ISO image inside this volume) continues without a new lookup and seek
    /// (`ext4-view` seeks by walking the file's blocks from its start).
    last: std::cell::RefCell<Option<(String, ext4_view::File)>>,
}

impl Ext4Fs {
    /// Loads the superblock, group descriptors and journal of `slice`.
    pub fn open(slice: Slice) -> Result<Ext4Fs, OpenError> {
        Ext4::load(Box::new(slice))
            .map(|fs| Ext4Fs {
                fs,
                last: std::cell::RefCell::new(None),
            })
            .map_err(|e| OpenError(format!("ext4: {e}")))
    }
}

fn err(path: &str, e: Ext4Error) -> FsError {
    match e {
        Ext4Error::NotFound => FsError::NotFound(path.to_string()),
        Ext4Error::IsADirectory | Ext4Error::IsASpecialFile => FsError::NotAFile(path.to_string()),
        Ext4Error::NotADirectory => FsError::NotADir(path.to_string()),
        e => FsError::Io {
            path: path.to_string(),
            message: e.to_string(),
        },
    }
}

fn kind(t: ext4_view::FileType) -> FileKind {
    if t.is_regular_file() {
        FileKind::File
    } else if t.is_dir() {
        FileKind::Dir
    } else {
        FileKind::Other
    }
}

impl BootFs for Ext4Fs {
    fn metadata(&self, path: &str) -> Result<Metadata, FsError> {
        let p = super::normalize(path);
        let m = self.fs.metadata(p.as_str()).map_err(|e| err(path, e))?;
        Ok(Metadata {
            kind: kind(m.file_type()),
            len: m.len(),
        })
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let p = super::normalize(path);
        let mut out = Vec::new();
        for entry in self.fs.read_dir(p.as_str()).map_err(|e| err(path, e))? {
            let entry = entry.map_err(|e| err(path, e))?;
            let Ok(name) = entry.file_name().as_str() else {
                log::debug!("{path}: skipping a file name that is not UTF-8");
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            if out.len() == super::MAX_DIR_ENTRIES {
                log::warn!(
                    "{path}: more than {} entries, the rest ignored",
                    super::MAX_DIR_ENTRIES
                );
                break;
            }
            let name = name.to_string();
            let mut k = entry.file_type().map(kind).unwrap_or(FileKind::Other);
            if k == FileKind::Other {
                // Symlinks: report what they point to.
                let full = format!("{}/{}", p.trim_end_matches('/'), name);
                if let Ok(m) = self.fs.metadata(full.as_str()) {
                    k = kind(m.file_type());
                }
            }
            out.push(DirEntry { name, kind: k });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn copy_to(&self, path: &str, out: &mut dyn std::io::Write, max: u64) -> Result<u64, FsError> {
        let p = super::normalize(path);
        let mut file = self.fs.open(p.as_str()).map_err(|e| err(path, e))?;
        let len = file.metadata().len();
        if len > max {
            return Err(FsError::TooLarge {
                path: path.to_string(),
                len,
                max,
            });
        }
        copy_bounded(path, &mut file, out, max)
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let p = super::normalize(path);
        let mut last = self.last.borrow_mut();
        let reuse = matches!(&*last, Some((q, f)) if *q == p && f.position() == offset);
        if !reuse {
            *last = None;
            let mut file = self.fs.open(p.as_str()).map_err(|e| err(path, e))?;
            if offset >= file.metadata().len() {
                return Ok(0);
            }
            file.seek_to(offset).map_err(|e| err(path, e))?;
            *last = Some((p, file));
        }
        let Some((_, file)) = last.as_mut() else {
            return Ok(0);
        };
        let r = super::read_full(path, file, buf);
        if r.is_err() {
            *last = None;
        }
        r
    }
}
