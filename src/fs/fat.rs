//! FAT12/16/32 in userspace with `fatfs`. Names are matched case-insensitively, as on firmware.
//!
//! `fatfs` wants a `Read + Write + Seek` device; ours ([`Cached`], a [`Slice`] with a one-block
//! read cache, since fatfs reads a few bytes at a time) refuses every write, and `fatfs` only
//! writes when something was modified, which leapboot never does.

use std::cell::RefCell;

use super::blockcache::Cached;
use super::{components, copy_bounded, BootFs, DirEntry, FileKind, FsError, Metadata, OpenError};
use crate::disk::Slice;

type Fs = fatfs::FileSystem<Cached>;
type Dir<'a> = fatfs::Dir<'a, Cached>;

/// A FAT volume.
pub struct FatFs {
    // fatfs borrows the device mutably inside; a RefCell keeps our `&self` API honest.
    fs: RefCell<Fs>,
}

impl FatFs {
    /// Reads the boot sector of `slice`.
    pub fn open(slice: Slice) -> Result<FatFs, OpenError> {
        let options = fatfs::FsOptions::new().update_accessed_date(false);
        fatfs::FileSystem::new(Cached::new(slice), options)
            .map(|fs| FatFs {
                fs: RefCell::new(fs),
            })
            .map_err(|e| OpenError(format!("vfat: {e}")))
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

/// Finds `name` in `dir`, case-insensitively (fatfs' own lookup is case-insensitive only for
/// ASCII, which is what firmware does too).
fn lookup<'a>(dir: &Dir<'a>, name: &str) -> Option<fatfs::DirEntry<'a, Cached>> {
    dir.iter()
        .take(super::MAX_DIR_ENTRIES)
        .filter_map(Result::ok)
        .find(|e| e.file_name().eq_ignore_ascii_case(name))
}

fn walk<'a>(root: Dir<'a>, path: &str) -> Result<Option<fatfs::DirEntry<'a, Cached>>, FsError> {
    let parts = components(path);
    let Some((last, dirs)) = parts.split_last() else {
        return Ok(None); // the root itself
    };
    let mut dir = root;
    for d in dirs {
        match lookup(&dir, d) {
            Some(e) if e.is_dir() => dir = e.to_dir(),
            Some(_) => return Err(FsError::NotADir(path.to_string())),
            None => return Err(FsError::NotFound(path.to_string())),
        }
    }
    lookup(&dir, last)
        .map(Some)
        .ok_or_else(|| FsError::NotFound(path.to_string()))
}

impl BootFs for FatFs {
    fn metadata(&self, path: &str) -> Result<Metadata, FsError> {
        let fs = self.fs.borrow();
        Ok(match walk(fs.root_dir(), path)? {
            None => Metadata {
                kind: FileKind::Dir,
                len: 0,
            },
            Some(e) => Metadata {
                kind: if e.is_dir() {
                    FileKind::Dir
                } else {
                    FileKind::File
                },
                len: e.len(),
            },
        })
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let fs = self.fs.borrow();
        let dir = match walk(fs.root_dir(), path)? {
            None => fs.root_dir(),
            Some(e) if e.is_dir() => e.to_dir(),
            Some(_) => return Err(FsError::NotADir(path.to_string())),
        };
        let mut out = Vec::new();
        for e in dir.iter() {
            let e = e.map_err(|e| io(path, e))?;
            let name = e.file_name();
            if name == "."
                || name == ".."
                || e.attributes().contains(fatfs::FileAttributes::VOLUME_ID)
            {
                continue;
            }
            if out.len() == super::MAX_DIR_ENTRIES {
                log::warn!(
                    "{path}: more than {} entries, the rest ignored",
                    super::MAX_DIR_ENTRIES
                );
                break;
            }
            let kind = if e.is_dir() {
                FileKind::Dir
            } else {
                FileKind::File
            };
            out.push(DirEntry { name, kind });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn copy_to(&self, path: &str, out: &mut dyn std::io::Write, max: u64) -> Result<u64, FsError> {
        let fs = self.fs.borrow();
        let entry =
            walk(fs.root_dir(), path)?.ok_or_else(|| FsError::NotAFile(path.to_string()))?;
        if entry.is_dir() {
            return Err(FsError::NotAFile(path.to_string()));
        }
        if entry.len() > max {
            return Err(FsError::TooLarge {
                path: path.to_string(),
                len: entry.len(),
                max,
            });
        }
        let mut file = entry.to_file();
        copy_bounded(path, &mut file, out, max)
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        use std::io::{Seek, SeekFrom};
        let fs = self.fs.borrow();
        let entry =
            walk(fs.root_dir(), path)?.ok_or_else(|| FsError::NotAFile(path.to_string()))?;
        if entry.is_dir() {
            return Err(FsError::NotAFile(path.to_string()));
        }
        if offset >= entry.len() {
            return Ok(0);
        }
        let mut file = entry.to_file();
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| io(path, e))?;
        super::read_full(path, &mut file, buf)
    }

    fn copy_range_to(
        &self,
        path: &str,
        offset: u64,
        len: u64,
        out: &mut dyn std::io::Write,
    ) -> Result<u64, FsError> {
        use std::io::{Read, Seek, SeekFrom};
        let fs = self.fs.borrow();
        let entry =
            walk(fs.root_dir(), path)?.ok_or_else(|| FsError::NotAFile(path.to_string()))?;
        if entry.is_dir() {
            return Err(FsError::NotAFile(path.to_string()));
        }
        if offset.checked_add(len).is_none_or(|end| end > entry.len()) {
            return Err(FsError::Io {
                path: path.to_string(),
                message: format!("the file ends before byte {}", offset.saturating_add(len)),
            });
        }
        let mut file = entry.to_file();
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| io(path, e))?;
        let copied = copy_bounded(path, &mut file.take(len), out, len)?;
        if copied != len {
            return Err(FsError::Io {
                path: path.to_string(),
                message: format!("the file ends before byte {}", offset + len),
            });
        }
        Ok(copied)
    }
}
