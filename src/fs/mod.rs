//! `BootFs`: a read-only view of one volume, the only way parsers and the loader reach files.
//!
//! Implementations: [`ext4`] (userspace, `ext4-view`), [`fat`] (userspace, `fatfs`), and
//! [`dir`] (a directory of the host: `leapboot list --root DIR`, unit tests, and the read-only
//! kernel mounts [`mount`] makes for the other filesystems in the initramfs). There is no
//! write method, by design. Paths are volume-absolute (`/loader/entries/a.conf`); `..` is
//! resolved lexically and can never leave the volume.

pub mod blockcache;
pub mod dir;
pub mod ext4;
pub mod fat;
pub mod iso;
pub mod isoscan;
pub mod mem;
pub mod mount;

use std::io::Write;

use crate::disk::Slice;
use crate::probe::FsKind;

/// Largest config file a parser reads (bigger files are refused, not truncated).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Largest directory listing returned (entries beyond are ignored with a warning).
pub const MAX_DIR_ENTRIES: usize = 4096;

/// A file's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// Anything else (symlinks are followed where the filesystem has them).
    Other,
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// File name (no directory part).
    pub name: String,
    /// Its kind.
    pub kind: FileKind,
}

/// Size and kind of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// Its kind.
    pub kind: FileKind,
    /// Length in bytes.
    pub len: u64,
}

/// Errors reading a volume. Each names the path.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each variant is documented by its message
pub enum FsError {
    #[error("{0}: no such file or directory")]
    NotFound(String),
    #[error("{0}: not a regular file")]
    NotAFile(String),
    #[error("{0}: not a directory")]
    NotADir(String),
    #[error("{path}: {len} bytes is larger than the {max}-byte limit")]
    TooLarge { path: String, len: u64, max: u64 },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

/// A read-only view of one volume.
pub trait BootFs {
    /// Size and kind of `path`, following symlinks.
    fn metadata(&self, path: &str) -> Result<Metadata, FsError>;
    /// The entries of directory `path`, sorted by name, without `.` and `..`.
    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError>;
    /// Streams regular file `path` into `out`; refuses files larger than `max` bytes before
    /// reading any. Returns the number of bytes copied.
    fn copy_to(&self, path: &str, out: &mut dyn Write, max: u64) -> Result<u64, FsError>;

    /// Reads regular file `path` whole, refusing files larger than `max` bytes. The buffer
    /// grows with `try_reserve`: memory the allocator refuses is an error for this file,
    /// never an abort (see [`crate::budget`]).
    fn read(&self, path: &str, max: u64) -> Result<Vec<u8>, FsError> {
        let mut v = TryVec(Vec::new());
        self.copy_to(path, &mut v, max)?;
        Ok(v.0)
    }

    /// Whether `path` exists.
    fn exists(&self, path: &str) -> bool {
        self.metadata(path).is_ok()
    }

    /// Reads up to `buf.len()` bytes of regular file `path` from byte `offset` (the seekable
    /// read path a filesystem inside a file, an ISO image, is read through). Returns the
    /// number of bytes read: fewer only at the end of the file, 0 at or past it.
    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let _ = (offset, buf);
        Err(FsError::Io {
            path: path.to_string(),
            message: "this volume has no random-access reads".into(),
        })
    }

    /// Streams `len` bytes of regular file `path` from byte `offset` into `out` (one extent
    /// of an ISO image kept in this file), failing if the file ends first. The default reads
    /// through [`BootFs::read_at`] in 256 KiB chunks; a filesystem whose seeks are costly
    /// (FAT walks the cluster chain from the start) streams the range after one seek.
    fn copy_range_to(
        &self,
        path: &str,
        offset: u64,
        len: u64,
        out: &mut dyn Write,
    ) -> Result<u64, FsError> {
        let mut buf = vec![0u8; (256 * 1024).min(len as usize)];
        let mut done = 0u64;
        while done < len {
            let want = (len - done).min(buf.len() as u64) as usize;
            let n = self.read_at(path, offset.saturating_add(done), &mut buf[..want])?;
            if n == 0 {
                return Err(FsError::Io {
                    path: path.to_string(),
                    message: format!("the file ends before byte {}", offset.saturating_add(len)),
                });
            }
            out.write_all(&buf[..n]).map_err(|e| FsError::Io {
                path: path.to_string(),
                message: e.to_string(),
            })?;
            done += n as u64;
        }
        Ok(done)
    }
}

/// Fills `buf` from `r` at its current position until `buf` is full or `r` ends.
pub(crate) fn read_full(
    path: &str,
    r: &mut dyn std::io::Read,
    buf: &mut [u8],
) -> Result<usize, FsError> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(FsError::Io {
                    path: path.to_string(),
                    message: e.to_string(),
                })
            }
        }
    }
    Ok(n)
}

/// A `Vec` writer whose growth is fallible: `try_reserve`, never an allocation abort.
struct TryVec(Vec<u8>);

impl Write for TryVec {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.try_reserve(buf.len()).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                format!(
                    "out of memory reading {} more bytes (after {})",
                    buf.len(),
                    self.0.len()
                ),
            )
        })?;
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Normalises a volume path to its components: `//a/./b/../c` → `["a", "c"]`.
/// `..` at the root stays at the root. Bounded by the input length.
pub fn components(path: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Normalises a volume path to absolute form: `a/../b` → `/b`.
pub fn normalize(path: &str) -> String {
    let mut s = String::with_capacity(path.len() + 1);
    for c in components(path) {
        s.push('/');
        s.push_str(c);
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

/// Copies from `r` to `out`, failing if more than `max` bytes arrive (a file that grew, or a
/// filesystem that lied about its size).
pub(crate) fn copy_bounded(
    path: &str,
    r: &mut dyn std::io::Read,
    out: &mut dyn Write,
    max: u64,
) -> Result<u64, FsError> {
    let io = |e: std::io::Error| FsError::Io {
        path: path.to_string(),
        message: e.to_string(),
    };
    // Config files are small: start with 16 KiB and grow to 256 KiB only for big files
    // (kernels, initrds). Zeroing 256 KiB for every config read was a third of discovery's CPU.
    const SMALL: usize = 16 * 1024;
    const LARGE: usize = 256 * 1024;
    let mut buf = vec![0u8; SMALL];
    let mut total = 0u64;
    loop {
        // Once grown, reads end on 256 KiB boundaries of the file (progress reports rely on
        // the chunking being regular).
        let cap = if buf.len() == LARGE {
            LARGE - (total % LARGE as u64) as usize
        } else {
            buf.len()
        };
        // Filled before it is written: readers that return a block per call (ext4-view
        // reads one 4 KiB block at a time) would otherwise cost one write per block (3 456
        // writes into the memfd for a 13.5 MiB kernel instead of 54).
        let n = match read_full(path, r, &mut buf[..cap])? {
            0 => return Ok(total),
            n => n,
        };
        if n == buf.len() && buf.len() < LARGE {
            buf.resize(LARGE, 0);
        }
        total += n as u64;
        if total > max {
            return Err(FsError::TooLarge {
                path: path.to_string(),
                len: total,
                max,
            });
        }
        out.write_all(&buf[..n]).map_err(io)?;
    }
}

/// Errors opening a volume.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OpenError(pub String);

/// Whether leapboot reads `kind` in userspace (otherwise it needs a kernel mount).
pub fn has_userspace_reader(kind: FsKind) -> bool {
    matches!(
        kind,
        FsKind::Ext2 | FsKind::Ext3 | FsKind::Ext4 | FsKind::Vfat
    )
}

/// Opens the filesystem on `slice` for reading, in userspace.
pub fn open(slice: Slice, kind: FsKind) -> Result<Box<dyn BootFs>, OpenError> {
    match kind {
        FsKind::Ext2 | FsKind::Ext3 | FsKind::Ext4 => Ok(Box::new(ext4::Ext4Fs::open(slice)?)),
        FsKind::Vfat => Ok(Box::new(fat::FatFs::open(slice)?)),
        other => Err(OpenError(format!(
            "{other} has no userspace reader in leapboot; it needs a kernel mount"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_exact_across_buffer_growth_and_bounded() {
        for len in [
            0usize,
            1,
            16 * 1024 - 1,
            16 * 1024,
            16 * 1024 + 1,
            700 * 1024,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let mut out = Vec::new();
            let n = copy_bounded("/f", &mut &data[..], &mut out, len as u64).unwrap();
            assert_eq!((n as usize, &out), (len, &data), "{len}");
            if len > 0 {
                let err = copy_bounded("/f", &mut &data[..], &mut Vec::new(), len as u64 - 1);
                assert!(matches!(err, Err(FsError::TooLarge { .. })), "{len}");
            }
        }
    }

    #[test]
    fn a_reader_that_returns_a_block_per_call_is_written_in_large_chunks() {
        // As ext4-view reads: at most one 4 KiB block per `read`.
        struct Blocks<'a>(&'a [u8]);
        impl std::io::Read for Blocks<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(4096).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        struct Writes(Vec<u8>, usize);
        impl Write for Writes {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.extend_from_slice(b);
                self.1 += 1;
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let data: Vec<u8> = (0..(1 << 20) + 123).map(|i| (i % 253) as u8).collect();
        let mut out = Writes(Vec::new(), 0);
        let n = copy_bounded("/k", &mut Blocks(&data), &mut out, 1 << 21).unwrap();
        assert_eq!((n as usize, &out.0), (data.len(), &data));
        // 16 KiB, then 256 KiB-aligned chunks: 6 writes, not 257.
        assert!(out.1 <= 6, "{} writes", out.1);
    }

    #[test]
    fn paths_never_leave_the_volume() {
        assert_eq!(normalize("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(normalize("a/./b//../c"), "/a/c");
        assert_eq!(normalize(""), "/");
        assert_eq!(components("/"), Vec::<&str>::new());
    }
}
