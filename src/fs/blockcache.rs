//! A one-block read cache over a [`Slice`], for readers that fetch a few bytes at a time.
//!
//! `fatfs` reads FAT entries (2-4 bytes) and directory entries (32 bytes, field by field) with
//! one `read` each; straight on a [`Slice`] every one is a `pread` syscall (about 3,000 per
//! disk of the benchmark, most of discovery's CPU time). [`Cached`] keeps the last 4 KiB
//! block; reads of a block or more bypass it (kernels, initrds). Read-only like the slice:
//! every write fails, so the cache can never be stale.

use std::cell::Cell;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::rc::Rc;

use crate::disk::Slice;

/// Bytes per cached block.
pub const BLOCK: usize = 4096;

/// A [`Slice`] with a one-block read cache and its own cursor.
pub struct Cached {
    slice: Slice,
    pos: u64,
    /// Offset of `block` in the slice (a multiple of [`BLOCK`]); `u64::MAX`: empty.
    block_at: u64,
    block: Vec<u8>,
    /// Bytes the reader above may still read (cached or not): the caller sets it before each
    /// operation, so a reader that loops (a FAT cluster chain pointing back into itself) gets
    /// an error instead of spinning. `u64::MAX`: unbounded.
    budget: Rc<Cell<u64>>,
}

impl Cached {
    /// Wraps `slice`; nothing is read yet; reads are unbounded.
    pub fn new(slice: Slice) -> Cached {
        Cached::with_budget(slice, Rc::new(Cell::new(u64::MAX)))
    }

    /// Wraps `slice`; every read is charged to `budget` (bytes handed to the reader), and a
    /// read the budget cannot pay fails with [`io::ErrorKind::Other`].
    pub fn with_budget(slice: Slice, budget: Rc<Cell<u64>>) -> Cached {
        Cached {
            slice,
            pos: 0,
            block_at: u64::MAX,
            block: Vec::new(),
            budget,
        }
    }

    fn charge(&self, n: usize) -> io::Result<()> {
        let left = self.budget.get();
        if left == u64::MAX {
            return Ok(());
        }
        match left.checked_sub(n as u64) {
            Some(rest) => {
                self.budget.set(rest);
                Ok(())
            }
            None => Err(io::Error::other(
                "read budget spent: the cluster chain is longer than the structure allows or loops",
            )),
        }
    }
}

impl Read for Cached {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = self.slice.len();
        let left = len.saturating_sub(self.pos);
        let want = (buf.len() as u64).min(left) as usize;
        if want == 0 {
            return Ok(0);
        }
        self.charge(want)?;
        if want >= BLOCK {
            self.slice.read_exact_at(self.pos, &mut buf[..want])?;
            self.pos += want as u64;
            return Ok(want);
        }
        let at = self.pos - self.pos % BLOCK as u64;
        if at != self.block_at {
            let n = (len - at).min(BLOCK as u64) as usize;
            self.block.resize(n, 0);
            self.block_at = u64::MAX; // not valid until the read succeeded
            self.slice.read_exact_at(at, &mut self.block)?;
            self.block_at = at;
        }
        let off = (self.pos - at) as usize;
        let n = want.min(self.block.len() - off);
        buf[..n].copy_from_slice(&self.block[off..off + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Cached {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = crate::disk::seek_within(self.pos, self.slice.len(), to)?;
        Ok(self.pos)
    }
}

/// Every write fails: leapboot never writes to disks.
impl Write for Cached {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(crate::disk::write_refused())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::Disk;
    use proptest::prelude::*;

    proptest! {
        /// Any sequence of seeks and reads returns exactly the bytes of the slice.
        #[test]
        fn reads_match_the_slice(
            len in 0usize..20_000,
            start in 0u64..5000,
            ops in proptest::collection::vec((0u64..21_000, 0usize..9000), 1..40),
        ) {
            let bytes: Vec<u8> = (0..len + 5000).map(|i| (i * 13 % 256) as u8).collect();
            let disk = Disk::from_bytes("mem", bytes.clone());
            let slice = disk.slice(start, len as u64);
            let end = (start as usize + len).min(bytes.len());
            let want = &bytes[(start as usize).min(end)..end];
            let mut c = Cached::new(slice);
            for (pos, n) in ops {
                c.seek(SeekFrom::Start(pos)).unwrap();
                let mut buf = vec![0u8; n];
                let got = c.read(&mut buf).unwrap();
                let p = (pos as usize).min(want.len());
                let expect = &want[p..(p + n).min(want.len())];
                prop_assert!(got <= expect.len());
                prop_assert_eq!(&buf[..got], &expect[..got]);
                prop_assert!(got > 0 || expect.is_empty() || n == 0);
            }
        }
    }

    #[test]
    fn reads_beyond_the_budget_fail() {
        let disk = Disk::from_bytes("mem", vec![7; 10_000]);
        let budget = Rc::new(Cell::new(100));
        let mut c = Cached::with_budget(disk.slice(0, 10_000), budget.clone());
        let mut buf = [0u8; 60];
        assert_eq!(c.read(&mut buf).unwrap(), 60);
        assert!(c.read(&mut buf).is_err(), "40 bytes left, 60 asked");
        budget.set(u64::MAX);
        assert_eq!(c.read(&mut buf).unwrap(), 60);
    }

    #[test]
    fn writes_fail() {
        let disk = Disk::from_bytes("mem", vec![0; 10]);
        assert!(Cached::new(disk.slice(0, 10)).write(b"x").is_err());
    }
}
