//! Budgets for one scan of the disks: what any set of hostile volumes may cost, in total.
//!
//! Per-file bounds ([`crate::fs::MAX_CONFIG_BYTES`], directory sizes) do not bound a scan:
//! 1024 hard links to one 1 MiB entry are 1 GiB, four partitions over one filesystem read it
//! four times. So every format parser sees each volume through [`Metered`], which charges
//! the bytes it reads to the volume and to the scan, and every volume's findings pass
//! [`VolumeMeter::admit`], which refuses command lines longer than a kernel accepts
//! ([`MAX_CMDLINE`]) and entries beyond the per-volume and per-scan count and byte budgets.
//! Time: each format run has a deadline (what is left of the volume's and the scan's
//! wall-clock budgets); [`Metered`] refuses reads after it and the GRUB interpreter stops at
//! it ([`expired`]). The deadline is a thread-local set around each run by [`with_deadline`]
//! so that deep parser loops can look at it without every signature carrying it.
//!
//! Allocation failure: Rust aborts the process when the allocator fails, and on stable Rust
//! no hook can turn that into an error (`set_alloc_error_hook` is nightly-only), and a
//! global allocator that refuses would abort just the same. So the budgets keep every
//! input-sized allocation small, and the one buffer whose size a file decides (a whole file
//! read, [`crate::fs::BootFs::read`]) grows with `try_reserve`: a refused allocation is a
//! read error for that file, never an abort.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::entry::{EntryError, Found};
use crate::fs::{BootFs, DirEntry, FsError, Metadata};

/// The longest kernel command line an entry may carry, in bytes: the largest
/// `COMMAND_LINE_SIZE` of the architectures leapboot runs on (x86 and arm64: 2048; this
/// leaves room for `leapboot.append`); the exact limit of the kernel being booted is checked
/// by [`crate::kexec`] from its setup header.
pub const MAX_CMDLINE: usize = 4096;

/// A scan's limits. [`Limits::default`] is what leapboot uses.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Wall-clock time one volume's parsers may take.
    pub volume_time: Duration,
    /// Wall-clock time all parsers of one scan may take.
    pub scan_time: Duration,
    /// Bytes the parsers may read from one volume.
    pub volume_read: u64,
    /// Bytes the parsers may read in one scan.
    pub scan_read: u64,
    /// Entries one volume may contribute.
    pub volume_entries: usize,
    /// Entries one scan may list.
    pub scan_entries: usize,
    /// Bytes of entries (titles, ids, paths, command lines) one volume may contribute.
    pub volume_entry_bytes: usize,
    /// Bytes of entries one scan may hold.
    pub scan_entry_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            volume_time: Duration::from_secs(5),
            scan_time: Duration::from_secs(20),
            volume_read: 64 << 20,
            scan_read: 256 << 20,
            volume_entries: 1024,
            scan_entries: 4096,
            volume_entry_bytes: 4 << 20,
            scan_entry_bytes: 16 << 20,
        }
    }
}

std::thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Whether the current run's deadline has passed (never, outside [`with_deadline`]).
pub fn expired() -> bool {
    DEADLINE.with(|d| d.get().is_some_and(|d| Instant::now() >= d))
}

/// Runs `f` with `deadline` as the thread's deadline (the earlier one wins when nested).
pub fn with_deadline<R>(deadline: Instant, f: impl FnOnce() -> R) -> R {
    let old = DEADLINE.with(|d| d.get());
    let new = old.map_or(deadline, |o| o.min(deadline));
    DEADLINE.with(|d| d.set(Some(new)));
    let r = f();
    DEADLINE.with(|d| d.set(old));
    r
}

/// One scan's spending.
pub struct Scan {
    limits: Limits,
    started: Instant,
    read: Cell<u64>,
    entries: Cell<usize>,
    entry_bytes: Cell<usize>,
}

impl Scan {
    /// A scan starting now.
    pub fn new(limits: Limits) -> Scan {
        Scan {
            limits,
            started: Instant::now(),
            read: Cell::new(0),
            entries: Cell::new(0),
            entry_bytes: Cell::new(0),
        }
    }

    /// The meter of volume `name` in this scan.
    pub fn volume(&self, name: &str) -> VolumeMeter<'_> {
        VolumeMeter {
            scan: self,
            name: name.to_string(),
            read: Cell::new(0),
            time: Cell::new(Duration::ZERO),
            entries: Cell::new(0),
            entry_bytes: Cell::new(0),
        }
    }

    /// Bytes the parsers read in this scan so far.
    pub fn bytes_read(&self) -> u64 {
        self.read.get()
    }
}

/// One volume's spending within a [`Scan`].
pub struct VolumeMeter<'s> {
    scan: &'s Scan,
    name: String,
    read: Cell<u64>,
    time: Cell<Duration>,
    entries: Cell<usize>,
    entry_bytes: Cell<usize>,
}

impl VolumeMeter<'_> {
    /// The deadline of the volume's next parser run: what is left of its own time and of
    /// the scan's.
    pub fn deadline(&self) -> Instant {
        let l = &self.scan.limits;
        let now = Instant::now();
        let volume = now + l.volume_time.saturating_sub(self.time.get());
        volume.min(self.scan.started + l.scan_time)
    }

    /// Runs one parser of this volume under its deadline, counting the time it took.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let t = Instant::now();
        let r = with_deadline(self.deadline(), f);
        self.time.set(self.time.get() + t.elapsed());
        r
    }

    /// Bytes a read may still take from this volume and the scan.
    fn read_left(&self) -> u64 {
        let l = &self.scan.limits;
        (l.volume_read.saturating_sub(self.read.get()))
            .min(l.scan_read.saturating_sub(self.scan.read.get()))
    }

    fn charge_read(&self, n: u64) {
        self.read.set(self.read.get().saturating_add(n));
        self.scan.read.set(self.scan.read.get().saturating_add(n));
    }

    /// Refuses entries this volume may not add: command lines over [`MAX_CMDLINE`] bytes
    /// (no kernel would accept them) and those beyond the volume's or the scan's entry
    /// count and byte budgets. Each refusal is an error naming the entry and the bound.
    pub fn admit(&self, mut found: Found) -> Found {
        let l = &self.scan.limits;
        let mut kept = Vec::with_capacity(found.entries.len().min(l.volume_entries));
        let mut reported = false;
        let default = found.default_index();
        let mut new_default = None;
        for (i, e) in std::mem::take(&mut found.entries).into_iter().enumerate() {
            let err = |message: String| EntryError {
                volume: e.source.volume.clone(),
                file: e.source.file.clone(),
                line: e.source.line,
                message,
            };
            if e.cmdline.len() > MAX_CMDLINE {
                found.errors.push(err(format!(
                    "entry {:?}: its command line of {} bytes is longer than the {MAX_CMDLINE} bytes a kernel accepts; not listed",
                    crate::sanitize::for_terminal(&short(&e.title)),
                    e.cmdline.len()
                )));
                continue;
            }
            let bytes = entry_bytes(&e);
            let over_volume = self.entries.get() >= l.volume_entries
                || self.entry_bytes.get() + bytes > l.volume_entry_bytes;
            let over_scan = self.scan.entries.get() >= l.scan_entries
                || self.scan.entry_bytes.get() + bytes > l.scan_entry_bytes;
            if over_volume || over_scan {
                if !reported {
                    reported = true;
                    let (what, n, b) = if over_volume {
                        ("this volume", l.volume_entries, l.volume_entry_bytes)
                    } else {
                        ("one scan", l.scan_entries, l.scan_entry_bytes)
                    };
                    found.errors.push(err(format!(
                        "more entries than {what} may list ({n} entries, {} KiB); this one and the rest are dropped",
                        b >> 10
                    )));
                }
                continue;
            }
            self.entries.set(self.entries.get() + 1);
            self.entry_bytes.set(self.entry_bytes.get() + bytes);
            self.scan.entries.set(self.scan.entries.get() + 1);
            self.scan
                .entry_bytes
                .set(self.scan.entry_bytes.get() + bytes);
            if Some(i) == default {
                new_default = Some(kept.len());
            }
            kept.push(e);
        }
        found.entries = kept;
        if matches!(found.default, Some(crate::entry::DefaultRule::Index(_))) {
            found.default = new_default.map(crate::entry::DefaultRule::Index);
        }
        found
    }

    /// The volume's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn short(s: &str) -> String {
    s.chars().take(80).collect()
}

/// The heap bytes an entry holds (its strings).
pub fn entry_bytes(e: &crate::entry::BootEntry) -> usize {
    let f = |r: &crate::entry::FileRef| r.volume.len() + r.path.len() + 48;
    e.id.len()
        + e.title.len()
        + e.version.as_ref().map_or(0, String::len)
        + f(&e.kernel)
        + e.initrds.iter().map(f).sum::<usize>()
        + e.cmdline.len()
        + e.devicetree.as_ref().map_or(0, f)
        + e.source.volume.len()
        + e.source.file.len()
        + 256
}

/// A volume as the parsers see it: every read charged to its [`VolumeMeter`], refused once
/// the volume's or the scan's read budget or the run's deadline is spent.
pub struct Metered<'a> {
    /// The volume.
    pub fs: &'a dyn BootFs,
    /// Its meter.
    pub meter: &'a VolumeMeter<'a>,
}

impl Metered<'_> {
    fn late(&self, path: &str) -> Result<(), FsError> {
        if expired() {
            return Err(FsError::Io {
                path: path.to_string(),
                message: format!(
                    "not read: {}'s time budget for this scan is spent ({} s per volume, {} s per scan)",
                    self.meter.name,
                    self.meter.scan.limits.volume_time.as_secs(),
                    self.meter.scan.limits.scan_time.as_secs()
                ),
            });
        }
        Ok(())
    }
}

/// Counts the bytes written through it.
struct Counting<'w> {
    out: &'w mut dyn std::io::Write,
    n: u64,
}

impl std::io::Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl BootFs for Metered<'_> {
    fn metadata(&self, path: &str) -> Result<Metadata, FsError> {
        self.late(path)?;
        self.fs.metadata(path)
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        self.late(path)?;
        let list = self.fs.read_dir(path)?;
        self.meter
            .charge_read(list.iter().map(|e| e.name.len() as u64 + 32).sum());
        Ok(list)
    }

    fn copy_to(&self, path: &str, out: &mut dyn std::io::Write, max: u64) -> Result<u64, FsError> {
        self.late(path)?;
        let left = self.meter.read_left();
        let mut counting = Counting { out, n: 0 };
        let r = self.fs.copy_to(path, &mut counting, max.min(left));
        self.meter.charge_read(counting.n);
        match r {
            Err(FsError::TooLarge { len, .. }) if left < max && len <= max => Err(FsError::Io {
                path: path.to_string(),
                message: format!(
                    "not read: {}'s read budget is spent ({} MiB per volume, {} MiB per scan); the rest of the volume is ignored",
                    self.meter.name,
                    self.meter.scan.limits.volume_read >> 20,
                    self.meter.scan.limits.scan_read >> 20
                ),
            }),
            r => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::tests::entry;
    use crate::fs::mem::MemFs;

    #[test]
    fn reads_beyond_the_volume_budget_are_refused() {
        let (a, b) = ("a".repeat(600), "b".repeat(600));
        let fs = MemFs::new(&[("/a", a.as_str()), ("/b", b.as_str())]);
        let scan = Scan::new(Limits {
            volume_read: 1000,
            ..Limits::default()
        });
        let meter = scan.volume("v");
        let m = Metered {
            fs: &fs,
            meter: &meter,
        };
        assert_eq!(m.read("/a", 1 << 20).unwrap().len(), 600);
        let err = m.read("/b", 1 << 20).unwrap_err().to_string();
        assert!(err.contains("read budget"), "{err}");
        assert_eq!(scan.bytes_read(), 600);
        // Another volume of the same scan has its own budget.
        let other = scan.volume("w");
        let m = Metered {
            fs: &fs,
            meter: &other,
        };
        assert_eq!(m.read("/b", 1 << 20).unwrap().len(), 600);
    }

    #[test]
    fn after_the_deadline_nothing_is_read() {
        let fs = MemFs::new(&[("/a", "x")]);
        let scan = Scan::new(Limits::default());
        let meter = scan.volume("v");
        let m = Metered {
            fs: &fs,
            meter: &meter,
        };
        let r = with_deadline(Instant::now(), || m.read("/a", 10));
        assert!(r.unwrap_err().to_string().contains("time budget"));
        assert!(!expired(), "the deadline ends with the run");
        assert_eq!(m.read("/a", 10).unwrap(), b"x");
    }

    #[test]
    fn admit_refuses_long_command_lines_and_entries_beyond_the_budgets() {
        let scan = Scan::new(Limits {
            volume_entries: 3,
            scan_entries: 4,
            ..Limits::default()
        });
        let mut long = entry("long", "v");
        long.cmdline = "x".repeat(MAX_CMDLINE + 1);
        let found = Found {
            entries: vec![
                entry("a", "v"),
                long,
                entry("b", "v"),
                entry("c", "v"),
                entry("d", "v"),
            ],
            default: Some(crate::entry::DefaultRule::Index(2)),
            ..Found::default()
        };
        let got = scan.volume("v").admit(found);
        let ids: Vec<&str> = got.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(
            got.default_index(),
            Some(1),
            "the default follows its entry"
        );
        assert_eq!(got.errors.len(), 2, "{:?}", got.errors);
        assert!(got.errors[0].message.contains("command line of 4097 bytes"));
        let got = scan.volume("w").admit(Found {
            entries: vec![entry("e", "w"), entry("f", "w")],
            ..Found::default()
        });
        assert_eq!(got.entries.len(), 1, "the scan's budget: 4 entries");
        assert!(got.errors[0].message.contains("one scan"));
    }
}
