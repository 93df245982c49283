//! FAT12/16/32 in userspace with `fatfs`. Names are matched case-insensitively, as on firmware.
//!
//! `fatfs` wants a `Read + Write + Seek` device; ours ([`Cached`], a [`Slice`] with a one-block
//! read cache, since fatfs reads a few bytes at a time) refuses every write, and `fatfs` only
//! writes when something was modified, which leapboot never does.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::blockcache::Cached;
use super::{components, copy_bounded, BootFs, DirEntry, FileKind, FsError, Metadata, OpenError};
use crate::disk::Slice;

type Fs = fatfs::FileSystem<Cached>;
type Dir<'a> = fatfs::Dir<'a, Cached>;

/// Raw 32-byte directory records walked in one directory at most (FAT's own limit is 65,536
/// per directory), deleted and long-name records included: fatfs follows a directory's
/// cluster chain without a cycle check, and a chain that loops through deleted records would
/// spin forever while handing back no entry at all.
pub const MAX_RAW_DIR_RECORDS: u64 = 65_536;
/// Bytes fatfs may read through the device while walking one directory: its records plus
/// the FAT lookups of its cluster chain (4 bytes per cluster at most, a cluster holds at
/// least 16 records), with room for the boot sector fatfs may re-read.
pub const DIR_READ_BUDGET: u64 = MAX_RAW_DIR_RECORDS * 32 + MAX_RAW_DIR_RECORDS / 4 + 64 * 1024;

/// A FAT volume.
pub struct FatFs {
    // fatfs borrows the device mutably inside; a RefCell keeps our `&self` API honest.
    fs: RefCell<Fs>,
    /// Bytes the device still lets fatfs read, set before each directory walk and file read.
    budget: Rc<Cell<u64>>,
}

impl FatFs {
    /// Reads the boot sector of `slice`.
    pub fn open(slice: Slice) -> Result<FatFs, OpenError> {
        let options = fatfs::FsOptions::new().update_accessed_date(false);
        // Opening reads the boot sector and FSInfo: a few KiB.
        let budget = Rc::new(Cell::new(DIR_READ_BUDGET));
        let fs = fatfs::FileSystem::new(Cached::with_budget(slice, budget.clone()), options)
            .map_err(|e| OpenError(format!("vfat: {e}")))?;
        Ok(FatFs {
            fs: RefCell::new(fs),
            budget,
        })
    }

    /// Gives the next operation a fresh read budget of `bytes`.
    fn allow(&self, bytes: u64) {
        self.budget.set(bytes);
    }
}

/// The read budget of a file of `len` bytes: its bytes, the FAT lookups of its chain (4 bytes
/// per cluster of at least 512 bytes) and one directory walk.
fn file_budget(len: u64) -> u64 {
    len.saturating_add(len / 64).saturating_add(DIR_READ_BUDGET)
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
/// The first read error ends the walk (fatfs' iterator stops after one), so a spent budget
/// is reported, not mistaken for "not found".
fn lookup<'a>(
    dir: &Dir<'a>,
    name: &str,
    budget: &Cell<u64>,
    path: &str,
) -> Result<Option<fatfs::DirEntry<'a, Cached>>, FsError> {
    budget.set(DIR_READ_BUDGET);
    for e in dir.iter().take(super::MAX_DIR_ENTRIES) {
        let e = e.map_err(|e| io(path, e))?;
        if e.file_name().eq_ignore_ascii_case(name) {
            return Ok(Some(e));
        }
    }
    Ok(None)
}

fn walk<'a>(
    root: Dir<'a>,
    path: &str,
    budget: &Cell<u64>,
) -> Result<Option<fatfs::DirEntry<'a, Cached>>, FsError> {
    let parts = components(path);
    let Some((last, dirs)) = parts.split_last() else {
        return Ok(None); // the root itself
    };
    let mut dir = root;
    for d in dirs {
        match lookup(&dir, d, budget, path)? {
            Some(e) if e.is_dir() => dir = e.to_dir(),
            Some(_) => return Err(FsError::NotADir(path.to_string())),
            None => return Err(FsError::NotFound(path.to_string())),
        }
    }
    lookup(&dir, last, budget, path)?
        .map(Some)
        .ok_or_else(|| FsError::NotFound(path.to_string()))
}

impl BootFs for FatFs {
    fn metadata(&self, path: &str) -> Result<Metadata, FsError> {
        let fs = self.fs.borrow();
        Ok(match walk(fs.root_dir(), path, &self.budget)? {
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
        let dir = match walk(fs.root_dir(), path, &self.budget)? {
            None => fs.root_dir(),
            Some(e) if e.is_dir() => e.to_dir(),
            Some(_) => return Err(FsError::NotADir(path.to_string())),
        };
        self.allow(DIR_READ_BUDGET);
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
        let entry = walk(fs.root_dir(), path, &self.budget)?
            .ok_or_else(|| FsError::NotAFile(path.to_string()))?;
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
        self.allow(file_budget(entry.len()));
        let mut file = entry.to_file();
        let r = copy_bounded(path, &mut file, out, max);
        self.allow(DIR_READ_BUDGET);
        r
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        use std::io::{Seek, SeekFrom};
        let fs = self.fs.borrow();
        let entry = walk(fs.root_dir(), path, &self.budget)?
            .ok_or_else(|| FsError::NotAFile(path.to_string()))?;
        if entry.is_dir() {
            return Err(FsError::NotAFile(path.to_string()));
        }
        if offset >= entry.len() {
            return Ok(0);
        }
        // A window of a large file (an ISO read through this volume): its clusters are
        // walked like a whole file's, bounded by the same per-file budget.
        self.allow(file_budget(entry.len()));
        let mut file = entry.to_file();
        let r = file
            .seek(SeekFrom::Start(offset))
            .map_err(|e| io(path, e))
            .and_then(|_| super::read_full(path, &mut file, buf));
        self.allow(DIR_READ_BUDGET);
        r
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
        let entry = walk(fs.root_dir(), path, &self.budget)?
            .ok_or_else(|| FsError::NotAFile(path.to_string()))?;
        if entry.is_dir() {
            return Err(FsError::NotAFile(path.to_string()));
        }
        if offset.checked_add(len).is_none_or(|end| end > entry.len()) {
            return Err(FsError::Io {
                path: path.to_string(),
                message: format!("the file ends before byte {}", offset.saturating_add(len)),
            });
        }
        self.allow(file_budget(entry.len()));
        let mut file = entry.to_file();
        let copied = file
            .seek(SeekFrom::Start(offset))
            .map_err(|e| io(path, e))
            .and_then(|_| copy_bounded(path, &mut file.take(len), out, len));
        self.allow(DIR_READ_BUDGET);
        let copied = copied?;
        if copied != len {
            return Err(FsError::Io {
                path: path.to_string(),
                message: format!("the file ends before byte {}", offset + len),
            });
        }
        Ok(copied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::Disk;
    use std::process::Command;
    use std::time::{Duration, Instant};

    fn run(cmd: &str, args: &[&str]) {
        let ok = Command::new(cmd)
            .args(args)
            .status()
            .unwrap_or_else(|e| {
                panic!("{cmd}: {e} (dosfstools/mtools: `cargo xtask test` installs them)")
            })
            .success();
        assert!(ok, "{cmd} {args:?} failed");
    }

    fn u16_at(b: &[u8], at: usize) -> u64 {
        u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
    }

    /// A FAT16 image made by the real `mkfs.vfat` and `mtools`: `/loader` held 100 files, all
    /// deleted again (its first cluster is full of deleted records), and then the first
    /// cluster of `/loader`'s chain is pointed back at itself: the directory loops.
    pub(crate) fn looping_directory_image() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fat.img");
        let img_s = img.to_str().unwrap();
        run("/usr/sbin/mkfs.vfat", &["-F", "16", "-C", img_s, "16384"]);
        run("mmd", &["-i", img_s, "::/loader"]);
        let f = dir.path().join("x");
        std::fs::write(&f, b"x").unwrap();
        for i in 0..100 {
            run(
                "mcopy",
                &[
                    "-i",
                    img_s,
                    f.to_str().unwrap(),
                    &format!("::/loader/f{i}.conf"),
                ],
            );
        }
        run("mdel", &["-i", img_s, "::/loader/*.conf"]);
        let mut b = std::fs::read(&img).unwrap();
        let sector = u16_at(&b, 11);
        let reserved = u16_at(&b, 14);
        let fats = u64::from(b[16]);
        let root_entries = u16_at(&b, 17);
        let fat_sectors = u16_at(&b, 22);
        let fat = (reserved * sector) as usize;
        let root = ((reserved + fats * fat_sectors) * sector) as usize;
        let loader = (0..root_entries as usize)
            .map(|i| root + 32 * i)
            .find(|&at| &b[at..at + 11] == b"LOADER     ")
            .expect("/loader in the root directory");
        let first = u16_at(&b, loader + 26);
        let c = first;
        let next = u16_at(&b, fat + 2 * c as usize);
        assert!(next < 0xfff8, "/loader should span clusters");
        for copy in 0..fats as usize {
            let at = fat + copy * (fat_sectors * sector) as usize + 2 * c as usize;
            b[at..at + 2].copy_from_slice(&(first as u16).to_le_bytes());
        }
        b
    }

    #[test]
    fn fat_directory_cluster_loop_ends() {
        let img = looping_directory_image();
        let disk = Disk::from_bytes("loop.img", img);
        let fs = FatFs::open(disk.slice(0, disk.size())).unwrap();
        let t = Instant::now();
        let listing = fs.read_dir("/loader");
        let err = listing.unwrap_err().to_string();
        assert!(err.contains("/loader") && err.contains("budget"), "{err}");
        // Lookups through the looping directory end too, with the same error.
        let err = fs.read("/loader/entries/a.conf", 1 << 20).unwrap_err();
        assert!(err.to_string().contains("budget"), "{err}");
        assert!(!fs.exists("/loader/a.conf"));
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "took {:?}",
            t.elapsed()
        );
        // The rest of the volume still reads.
        assert!(fs.read_dir("/").unwrap().iter().any(|e| e.name == "loader"));
    }
}
