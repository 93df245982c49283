//! Read-only, positioned access to a disk: a block device or a disk image file.
//!
//! This is the only place that opens disks. A block device is opened `O_RDONLY` and set
//! read-only in the kernel (`BLKROSET`) *before* a single byte is read, so that nothing later
//! (a buggy reader, a kernel mount, a journal replay) can write to it. There is no write path
//! here at all: [`Slice`] implements [`std::io::Write`] only because the `fatfs` and `gpt`
//! crates demand the trait, and every write through it fails.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Errors opening a disk.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each variant is documented by its message
pub enum DiskError {
    #[error("{path}: cannot open: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error(
        "{path}: cannot set the block device read-only (BLKROSET): {source}; refusing to read it"
    )]
    SetReadOnly { path: PathBuf, source: nix::Error },
    #[error("{path}: cannot get its size: {source}")]
    Size { path: PathBuf, source: io::Error },
}

mod ioctl {
    // <linux/fs.h>: BLKROSET _IO(0x12,93) takes an int*, BLKSSZGET _IO(0x12,104) writes an int,
    // BLKGETSIZE64 _IOR(0x12,114,size_t) writes a u64.
    nix::ioctl_write_ptr_bad!(blkroset, nix::request_code_none!(0x12, 93), libc::c_int);
    nix::ioctl_read_bad!(blksszget, nix::request_code_none!(0x12, 104), libc::c_int);
    nix::ioctl_read!(blkgetsize64, 0x12, 114, u64);
}

/// Where a disk's bytes come from.
enum Backing {
    /// A block device or image file, opened read-only.
    File(File),
    /// Bytes in memory (fuzz targets and tests of hostile layouts).
    Memory(Vec<u8>),
}

impl std::fmt::Debug for Backing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backing::File(file) => file.fmt(f),
            Backing::Memory(m) => write!(f, "Memory({} bytes)", m.len()),
        }
    }
}

/// An opened disk. Cheap to clone; clones share the file descriptor.
#[derive(Clone, Debug)]
pub struct Disk {
    file: Arc<Backing>,
    path: PathBuf,
    size: u64,
    sector_size: u32,
}

/// What opening a block device does to the kernel's read-only flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoPolicy {
    /// Set the device read-only (`BLKROSET`) before reading it; refuse it if that fails. For
    /// the initramfs, where nothing else uses the disks.
    Enforce,
    /// Only open the device read-only, leaving its flag alone. For `leapboot` on a running
    /// system, whose mounted disks must stay writable for the system itself.
    Leave,
}

impl Disk {
    /// Opens `path`, which may be a block device or a regular (image) file, with
    /// [`RoPolicy::Enforce`]: a block device is made read-only with `BLKROSET` first; if that
    /// fails the disk is not read at all.
    pub fn open(path: &Path) -> Result<Disk, DiskError> {
        Disk::open_with(path, RoPolicy::Enforce)
    }

    /// Opens `path` read-only with the given policy for block devices.
    pub fn open_with(path: &Path, policy: RoPolicy) -> Result<Disk, DiskError> {
        let file = File::open(path).map_err(|source| DiskError::Open {
            path: path.to_owned(),
            source,
        })?;
        let meta = file.metadata().map_err(|source| DiskError::Size {
            path: path.to_owned(),
            source,
        })?;
        let (size, sector_size) = if meta.file_type().is_block_device() {
            let fd = file.as_raw_fd();
            if policy == RoPolicy::Enforce {
                let one: libc::c_int = 1;
                // SAFETY: fd is a valid open block device; the kernel reads one int.
                unsafe { ioctl::blkroset(fd, &one) }.map_err(|source| DiskError::SetReadOnly {
                    path: path.to_owned(),
                    source,
                })?;
            }
            let mut size = 0u64;
            // SAFETY: the kernel writes one u64.
            unsafe { ioctl::blkgetsize64(fd, &mut size) }.map_err(|e| DiskError::Size {
                path: path.to_owned(),
                source: e.into(),
            })?;
            let mut ssz: libc::c_int = 512;
            // SAFETY: the kernel writes one int. A failure keeps the 512-byte default.
            let _ = unsafe { ioctl::blksszget(fd, &mut ssz) };
            let ssz = u32::try_from(ssz)
                .ok()
                .filter(|s| s.is_power_of_two() && *s >= 512);
            (size, ssz.unwrap_or(512))
        } else {
            (meta.len(), 512)
        };
        Ok(Disk {
            file: Arc::new(Backing::File(file)),
            path: path.to_owned(),
            size,
            sector_size,
        })
    }

    /// A disk held in memory, named `name` in messages: for fuzz targets and tests that build
    /// hostile layouts byte by byte. 512-byte sectors.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Disk {
        Disk {
            size: bytes.len() as u64,
            file: Arc::new(Backing::Memory(bytes)),
            path: PathBuf::from(name),
            sector_size: 512,
        }
    }

    /// Whether this disk is a block device (not an image file or memory).
    pub fn is_block_device(&self) -> bool {
        match self.file.as_ref() {
            Backing::File(f) => f
                .metadata()
                .map(|m| m.file_type().is_block_device())
                .unwrap_or(false),
            Backing::Memory(_) => false,
        }
    }

    /// The path this disk was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Logical sector size in bytes (512 for image files).
    pub fn sector_size(&self) -> u32 {
        self.sector_size
    }

    /// Reads exactly `buf.len()` bytes at `offset`; reading past the end is an error.
    pub fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|end| end > self.size) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "read of {} bytes at offset {offset} is past the end of {} ({} bytes)",
                    buf.len(),
                    self.path.display(),
                    self.size
                ),
            ));
        }
        match self.file.as_ref() {
            Backing::File(f) => f.read_exact_at(buf, offset),
            Backing::Memory(m) => {
                // In bounds: checked against `size` (= m.len()) above.
                let at = offset as usize;
                buf.copy_from_slice(&m[at..at + buf.len()]);
                Ok(())
            }
        }
    }

    /// A window of `len` bytes starting at `start` (a partition, or the whole disk).
    /// The window is clamped to the disk's size.
    pub fn slice(&self, start: u64, len: u64) -> Slice {
        let start = start.min(self.size);
        let len = len.min(self.size - start);
        Slice {
            pieces: Arc::from(vec![Piece {
                disk: self.clone(),
                start,
                len,
                at: 0,
            }]),
            len,
            pos: 0,
        }
    }
}

/// At most this many pieces make one [`Slice`] (an LVM logical volume's segments).
pub const MAX_PIECES: usize = 1024;

/// One contiguous run of a [`Slice`]: `len` bytes at `start` on `disk`, at offset `at` of
/// the window.
#[derive(Clone, Debug)]
struct Piece {
    disk: Disk,
    start: u64,
    len: u64,
    at: u64,
}

/// A read-only window with its own cursor: what filesystem readers see. Usually one
/// contiguous run of a [`Disk`] (a partition, a RAID1 member's data area); an LVM logical
/// volume is an ordered list of runs on one or several disks ([`Slice::concat`]), read as
/// one window. Every write through it fails.
#[derive(Clone, Debug)]
pub struct Slice {
    /// In window order, `at` increasing, never empty.
    pieces: Arc<[Piece]>,
    len: u64,
    pos: u64,
}

impl Slice {
    /// Length of the window in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset of the window's first byte on its first disk.
    pub fn start(&self) -> u64 {
        self.pieces[0].start
    }

    /// The disk the window starts on.
    pub fn disk(&self) -> &Disk {
        &self.pieces[0].disk
    }

    /// How many contiguous runs the window is made of (1 for a partition).
    pub fn piece_count(&self) -> usize {
        self.pieces.len()
    }

    /// The window `[offset, offset + len)` of this one, clamped to it.
    pub fn sub(&self, offset: u64, len: u64) -> Slice {
        let offset = offset.min(self.len);
        let len = len.min(self.len - offset);
        let end = offset + len;
        let mut pieces = Vec::new();
        for p in self.pieces.iter() {
            let (from, to) = (p.at.max(offset), (p.at + p.len).min(end));
            if from < to {
                pieces.push(Piece {
                    disk: p.disk.clone(),
                    start: p.start + (from - p.at),
                    len: to - from,
                    at: from - offset,
                });
            }
        }
        if pieces.is_empty() {
            let first = &self.pieces[0];
            pieces.push(Piece {
                disk: first.disk.clone(),
                start: first.start,
                len: 0,
                at: 0,
            });
        }
        Slice {
            pieces: Arc::from(pieces),
            len,
            pos: 0,
        }
    }

    /// The windows `parts` one after the other, as one window (an LVM logical volume's
    /// segments). `None` for no parts or more than [`MAX_PIECES`] runs in all.
    pub fn concat(parts: &[Slice]) -> Option<Slice> {
        let mut pieces: Vec<Piece> = Vec::new();
        let mut at = 0u64;
        for s in parts {
            for p in s.pieces.iter().filter(|p| p.len > 0) {
                if pieces.len() == MAX_PIECES {
                    return None;
                }
                pieces.push(Piece {
                    disk: p.disk.clone(),
                    start: p.start,
                    len: p.len,
                    at,
                });
                at = at.checked_add(p.len)?;
            }
        }
        if pieces.is_empty() {
            return parts.first().map(|s| s.sub(0, 0));
        }
        Some(Slice {
            pieces: Arc::from(pieces),
            len: at,
            pos: 0,
        })
    }

    /// Reads exactly `buf.len()` bytes at `offset` within the window.
    pub fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|end| end > self.len) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "read of {} bytes at offset {offset} is past the end of a {}-byte volume on {}",
                    buf.len(),
                    self.len,
                    self.disk().path.display()
                ),
            ));
        }
        if let [p] = &*self.pieces {
            return p.disk.read_exact_at(p.start + offset, buf);
        }
        // The first piece holding `offset`, then on through the following ones.
        let mut i = self.pieces.partition_point(|p| p.at + p.len <= offset);
        let (mut done, mut at) = (0usize, offset);
        while done < buf.len() {
            let Some(p) = self.pieces.get(i) else {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "a volume's pieces end before its length",
                ));
            };
            let n = ((p.at + p.len - at) as usize).min(buf.len() - done);
            p.disk
                .read_exact_at(p.start + (at - p.at), &mut buf[done..done + n])?;
            done += n;
            at += n as u64;
            i += 1;
        }
        Ok(())
    }
}

impl Read for Slice {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.read_exact_at(self.pos, &mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Slice {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = seek_within(self.pos, self.len, to)?;
        Ok(self.pos)
    }
}

/// The position a seek from `pos` lands on in a window of `len` bytes (past the end is
/// allowed, as for files; before the start is an error).
pub(crate) fn seek_within(pos: u64, len: u64, to: SeekFrom) -> io::Result<u64> {
    match to {
        SeekFrom::Start(n) => Some(n),
        SeekFrom::End(d) => len.checked_add_signed(d),
        SeekFrom::Current(d) => pos.checked_add_signed(d),
    }
    .ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "seek to a negative or overflowing position",
        )
    })
}

/// The error of every write: leapboot never writes to a disk.
pub(crate) fn write_refused() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "leapboot never writes to disks",
    )
}

/// Every write fails: leapboot never writes to a disk.
impl Write for Slice {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(write_refused())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ext4_view::Ext4Read for Slice {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        Ok(self.read_exact_at(start_byte, dst)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(bytes: &[u8]) -> (tempfile::NamedTempFile, Disk) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        let d = Disk::open(f.path()).unwrap();
        (f, d)
    }

    #[test]
    fn slice_reads_only_inside_its_window() {
        let (_f, d) = image(b"0123456789");
        let mut s = d.slice(2, 5);
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert_eq!(out, "23456");
        assert!(s.read_exact_at(3, &mut [0; 3]).is_err());
    }

    #[test]
    fn slice_is_clamped_to_the_disk() {
        let (_f, d) = image(b"0123456789");
        assert_eq!(d.slice(8, 100).len(), 2);
        assert_eq!(d.slice(100, 100).len(), 0);
    }

    #[test]
    fn writes_always_fail() {
        let (_f, d) = image(b"0123456789");
        let mut s = d.slice(0, 10);
        assert!(s.write(b"x").is_err());
    }

    #[test]
    fn a_concatenated_window_reads_its_pieces_in_order_and_refuses_writes() {
        let (_f, d) = image(b"0123456789");
        let (_g, e) = image(b"abcdefghij");
        let mut s = Slice::concat(&[d.slice(7, 3), e.slice(2, 4), d.slice(0, 2)]).unwrap();
        assert_eq!((s.len(), s.piece_count()), (9, 3));
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert_eq!(out, "789cdef01");
        let mut b = [0u8; 5];
        s.read_exact_at(2, &mut b).unwrap();
        assert_eq!(&b, b"9cdef");
        assert!(s.read_exact_at(5, &mut [0; 5]).is_err());
        assert!(s.write(b"x").is_err());
        let sub = s.sub(2, 4);
        let mut b = [0u8; 4];
        sub.read_exact_at(0, &mut b).unwrap();
        assert_eq!((&b, sub.len()), (b"9cde", 4));
        assert_eq!(s.sub(100, 5).len(), 0);
        assert!(Slice::concat(&[]).is_none());
    }

    proptest::proptest! {
        #[test]
        fn concatenated_windows_read_like_the_bytes_they_join(
            cuts in proptest::collection::vec((0u64..64, 0u64..64), 1..8),
            off in 0u64..600, n in 0usize..600,
        ) {
            let bytes: Vec<u8> = (0..64u8).collect();
            let d = Disk::from_bytes("m", bytes.clone());
            let parts: Vec<Slice> = cuts.iter().map(|&(a, l)| d.slice(a, l)).collect();
            let want: Vec<u8> = cuts.iter().flat_map(|&(a, l)| {
                let a = a as usize;
                bytes[a..(a + l as usize).min(64)].to_vec()
            }).collect();
            let s = Slice::concat(&parts).unwrap();
            proptest::prop_assert_eq!(s.len(), want.len() as u64);
            let mut buf = vec![0u8; n];
            let r = s.read_exact_at(off, &mut buf);
            if off as usize + n <= want.len() {
                proptest::prop_assert_eq!(&buf[..], &want[off as usize..off as usize + n]);
            } else {
                proptest::prop_assert!(r.is_err());
            }
        }
    }

    #[test]
    fn reads_past_the_end_fail_without_overflow() {
        let (_f, d) = image(b"0123456789");
        assert!(d.read_exact_at(u64::MAX, &mut [0; 2]).is_err());
        let s = d.slice(0, 10);
        assert!(s.read_exact_at(u64::MAX - 1, &mut [0; 4]).is_err());
    }
}
