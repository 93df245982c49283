//! Block device discovery: which disks exist, and waiting (bounded) for them.
//!
//! The initial view comes from `/sys/class/block`; later arrivals from kernel uevents
//! ([`uevent`]: a netlink listener opened before the first scan, so nothing falls between).
//! [`wait_for_disks_hotplug`] ends the initial wait by the settle rule: at least one disk and
//! nothing new (no disk, no module loaded for a new device) for `settle`, or `max` at most.
//!
//! Whole disks only (partitions are read from the disk's own table by [`crate::partition`]).
//! RAM disks, loop and zram devices are ignored unless asked for (`include_virtual`): they
//! never hold a boot partition firmware gave us. This module does not open disks and does not
//! load modules itself: a module loader is passed in as a callback for `MODALIAS` events.

pub mod uevent;

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use uevent::{Event, Hotplug};

/// A whole-disk block device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockDevice {
    /// Kernel name (`vda`, `nvme0n1`, `sda`).
    pub name: String,
    /// Device node (`/dev/vda`).
    pub node: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Removable media (USB sticks, CD-ROMs).
    pub removable: bool,
    /// The kernel names of its partitions (`vda1`, `nvme0n1p2`).
    pub partitions: Vec<String>,
}

/// Also assembled md arrays and device-mapper devices (only a running system has them):
/// leapboot reads RAID1 members and LVM PVs itself, and would otherwise list them twice.
const IGNORED_PREFIXES: &[&str] = &["ram", "loop", "zram", "md", "dm-"];

/// Whether `name` is a RAM, loop, zram, md or device-mapper device (ignored unless
/// configured).
pub fn is_ignored_name(name: &str) -> bool {
    IGNORED_PREFIXES.iter().any(|p| name.starts_with(p))
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Lists whole-disk block devices under `sys` (normally `/sys`), sorted by name. Devices of
/// size 0 (empty card readers, disconnected nbd) are skipped.
pub fn block_devices(sys: &Path, dev: &Path) -> Vec<BlockDevice> {
    block_devices_with(sys, dev, false)
}

/// As [`block_devices`]; `include_virtual` keeps ram/loop/zram devices.
pub fn block_devices_with(sys: &Path, dev: &Path, include_virtual: bool) -> Vec<BlockDevice> {
    let class = sys.join("class/block");
    let Ok(rd) = std::fs::read_dir(&class) else {
        return Vec::new();
    };
    let names: Vec<String> = rd
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    let mut disks = Vec::new();
    for name in &names {
        let base = class.join(name);
        if base.join("partition").exists() || (!include_virtual && is_ignored_name(name)) {
            continue;
        }
        // Sizes in sysfs are in 512-byte units whatever the logical block size.
        let size = read_trim(&base.join("size"))
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
            .saturating_mul(512);
        if size == 0 {
            continue;
        }
        let mut partitions: Vec<String> = names
            .iter()
            .filter(|p| base.join(p).join("partition").exists())
            .cloned()
            .collect();
        partitions.sort();
        disks.push(BlockDevice {
            name: name.clone(),
            node: dev.join(name),
            size,
            removable: read_trim(&base.join("removable")).as_deref() == Some("1"),
            partitions,
        });
    }
    disks.sort_by(|a, b| a.name.cmp(&b.name));
    disks
}

/// Waits until at least one disk exists and no new one appeared for `settle`, or until
/// `max` has passed. Returns the disks and the time spent waiting.
pub fn wait_for_disks(
    sys: &Path,
    dev: &Path,
    settle: Duration,
    max: Duration,
) -> (Vec<BlockDevice>, Duration) {
    let start = Instant::now();
    let mut last_change = start;
    let mut seen = block_devices(sys, dev);
    loop {
        let now = Instant::now();
        if now - start >= max || (!seen.is_empty() && now - last_change >= settle) {
            return (seen, now - start);
        }
        std::thread::sleep(Duration::from_millis(50));
        let current = block_devices(sys, dev);
        if current
            .iter()
            .map(|d| &d.name)
            .ne(seen.iter().map(|d| &d.name))
        {
            last_change = Instant::now();
            seen = current;
        }
    }
}

/// One whole disk by kernel name, as [`block_devices_with`] would list it; `None` if it is
/// not (or no longer) there, is a partition, or has size 0.
pub fn block_device(
    sys: &Path,
    dev: &Path,
    name: &str,
    include_virtual: bool,
) -> Option<BlockDevice> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return None;
    }
    let base = sys.join("class/block").join(name);
    if !base.exists() || base.join("partition").exists() {
        return None;
    }
    if !include_virtual && is_ignored_name(name) {
        return None;
    }
    let size = read_trim(&base.join("size"))
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        .saturating_mul(512);
    if size == 0 {
        return None;
    }
    // Partitions are subdirectories of the disk's own sysfs directory with a `partition` file.
    let mut partitions: Vec<String> = std::fs::read_dir(&base)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().join("partition").exists())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    partitions.sort();
    Some(BlockDevice {
        name: name.to_string(),
        node: dev.join(name),
        size,
        removable: read_trim(&base.join("removable")).as_deref() == Some("1"),
        partitions,
    })
}

/// The settle rule as a clock-free state machine: done once at least one disk is known and
/// nothing changed for `settle`, or once `max` has passed since the start.
#[derive(Clone, Copy, Debug)]
pub struct Settle {
    start: Instant,
    last_change: Instant,
    settle: Duration,
    max: Duration,
}

impl Settle {
    /// Starts the clock at `now`.
    pub fn new(now: Instant, settle: Duration, max: Duration) -> Settle {
        Settle {
            start: now,
            last_change: now,
            settle,
            max,
        }
    }

    /// Something new appeared at `now`: the settle time starts again.
    pub fn changed(&mut self, now: Instant) {
        self.last_change = now;
    }

    /// Whether waiting is over.
    pub fn done(&self, now: Instant, have_disks: bool) -> bool {
        now.saturating_duration_since(self.start) >= self.max
            || (have_disks && now.saturating_duration_since(self.last_change) >= self.settle)
    }

    /// How long to sleep at most before [`Settle::done`] may change its answer.
    pub fn next_wakeup(&self, now: Instant, have_disks: bool) -> Duration {
        let to_max = (self.start + self.max).saturating_duration_since(now);
        if have_disks {
            to_max.min((self.last_change + self.settle).saturating_duration_since(now))
        } else {
            to_max
        }
    }
}

/// The initial wait, driven by uevents: returns the disks (a fresh sysfs scan, so partitions
/// are listed) and the time spent. `hp` must have been opened before anything that creates
/// devices ran (module loading). Every `MODALIAS` event is passed to `on_modalias`, which
/// returns how many modules it loaded (a load counts as a change for the settle rule).
/// Without a listener (`None`) this is [`wait_for_disks`]'s sysfs polling.
pub fn wait_for_disks_hotplug(
    hp: Option<&mut Hotplug>,
    sys: &Path,
    dev: &Path,
    settle: Duration,
    max: Duration,
    include_virtual: bool,
    on_modalias: &mut dyn FnMut(&str) -> usize,
) -> (Vec<BlockDevice>, Duration) {
    let Some(hp) = hp else {
        return wait_for_disks(sys, dev, settle, max);
    };
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let start = Instant::now();
    let mut rule = Settle::new(start, settle, max);
    let mut names: Vec<String> = block_devices_with(sys, dev, include_virtual)
        .into_iter()
        .map(|d| d.name)
        .collect();
    loop {
        let (events, overrun) = hp.drain_raw();
        let now = Instant::now();
        for e in events {
            match e {
                Event::DiskAdded(n) => {
                    if !names.contains(&n) {
                        log::debug!("disk {n} appeared after {} ms", (now - start).as_millis());
                        names.push(n);
                        rule.changed(now);
                    }
                }
                Event::DiskRemoved(n) => names.retain(|x| *x != n),
                Event::Modalias(m) => {
                    if on_modalias(&m) > 0 {
                        rule.changed(Instant::now());
                    }
                }
            }
        }
        if overrun {
            let fresh: Vec<String> = block_devices_with(sys, dev, include_virtual)
                .into_iter()
                .map(|d| d.name)
                .collect();
            if fresh.iter().any(|n| !names.contains(n)) {
                rule.changed(now);
            }
            names = fresh;
        }
        let now = Instant::now();
        if rule.done(now, !names.is_empty()) {
            break;
        }
        let wait = rule.next_wakeup(now, !names.is_empty());
        let ms = i32::try_from(wait.as_millis().clamp(1, 60_000)).unwrap_or(60_000);
        let mut fds = [PollFd::new(hp.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                log::error!(
                    "poll on the uevent socket: {}; polling sysfs instead",
                    e.desc()
                );
                let (disks, waited) =
                    wait_for_disks(sys, dev, settle, max.saturating_sub(start.elapsed()));
                return (disks, start.elapsed().max(waited));
            }
        }
    }
    (
        block_devices_with(sys, dev, include_virtual),
        start.elapsed(),
    )
}

/// The kernel name of partition `number` of disk `disk` (`vda`+2 → `vda2`,
/// `nvme0n1`+2 → `nvme0n1p2`).
pub fn partition_name(disk: &str, number: u32) -> String {
    if disk.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{disk}p{number}")
    } else {
        format!("{disk}{number}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_sys(devs: &[(&str, &str, bool)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, size, part) in devs {
            let p = d.path().join("class/block").join(name);
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("size"), size).unwrap();
            if *part {
                std::fs::write(p.join("partition"), "1").unwrap();
                // Partitions also appear inside their disk's directory.
                let disk = name.trim_end_matches(|c: char| c.is_ascii_digit());
                std::fs::create_dir_all(d.path().join("class/block").join(disk).join(name))
                    .unwrap();
                std::fs::write(
                    d.path()
                        .join("class/block")
                        .join(disk)
                        .join(name)
                        .join("partition"),
                    "1",
                )
                .unwrap();
            }
        }
        d
    }

    #[test]
    fn finds_whole_disks_and_their_partitions() {
        let sys = fake_sys(&[
            ("vda", "2048\n", false),
            ("vda1", "1024", true),
            ("loop0", "100", false),
            ("ram0", "100", false),
            ("md127", "100", false),
            ("dm-0", "100", false),
            ("sr0", "0", false),
        ]);
        let disks = block_devices(sys.path(), Path::new("/dev"));
        assert_eq!(disks.len(), 1);
        assert_eq!(disks[0].name, "vda");
        assert_eq!(disks[0].size, 2048 * 512);
        assert_eq!(disks[0].node, Path::new("/dev/vda"));
        assert_eq!(disks[0].partitions, ["vda1"]);
    }

    #[test]
    fn waiting_is_bounded_when_nothing_appears() {
        let sys = fake_sys(&[]);
        let (disks, waited) = wait_for_disks(
            sys.path(),
            Path::new("/dev"),
            Duration::from_millis(10),
            Duration::from_millis(120),
        );
        assert!(disks.is_empty());
        assert!(waited >= Duration::from_millis(120));
    }

    #[test]
    fn one_device_by_name() {
        let sys = fake_sys(&[("vdb", "4096", false), ("loop1", "8", false)]);
        let dir = sys.path().join("class/block/vdb/vdb2");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("partition"), "2").unwrap();
        let d = block_device(sys.path(), Path::new("/dev"), "vdb", false).unwrap();
        assert_eq!(d.partitions, ["vdb2"]);
        assert_eq!(d.size, 4096 * 512);
        assert!(block_device(sys.path(), Path::new("/dev"), "loop1", false).is_none());
        assert!(block_device(sys.path(), Path::new("/dev"), "loop1", true).is_some());
        assert!(block_device(sys.path(), Path::new("/dev"), "vdz", false).is_none());
        assert!(block_device(sys.path(), Path::new("/dev"), "../x", false).is_none());
        assert_eq!(
            block_devices_with(sys.path(), Path::new("/dev"), true).len(),
            2
        );
    }

    #[test]
    fn settle_rule() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut r = Settle::new(t0, ms(500), ms(10_000));
        assert!(!r.done(t0 + ms(600), false), "no disk yet: keep waiting");
        assert!(r.done(t0 + ms(500), true));
        r.changed(t0 + ms(400));
        assert!(
            !r.done(t0 + ms(800), true),
            "a change restarts the settle time"
        );
        assert!(r.done(t0 + ms(900), true));
        assert_eq!(r.next_wakeup(t0 + ms(800), true), ms(100));
        assert_eq!(r.next_wakeup(t0 + ms(800), false), ms(9_200));
        assert!(r.done(t0 + ms(10_000), false), "bounded by max");
        // Changes never push past max.
        r.changed(t0 + ms(9_990));
        assert!(r.done(t0 + ms(10_000), true));
        assert_eq!(r.next_wakeup(t0 + ms(9_995), true), ms(5));
    }

    #[test]
    fn hotplug_wait_is_bounded_and_sees_the_initial_disks() {
        // A real uevent socket (unprivileged processes may listen); nothing arrives for a
        // fake sysfs, so the settle rule must end the wait on its own.
        let Ok(mut hp) = Hotplug::open(false) else {
            return; // no netlink in this sandbox: the sysfs path is tested above
        };
        let sys = fake_sys(&[("vda", "2048", false)]);
        let mut calls = 0;
        let t = Instant::now();
        let (disks, _) = wait_for_disks_hotplug(
            Some(&mut hp),
            sys.path(),
            Path::new("/dev"),
            Duration::from_millis(50),
            Duration::from_millis(2_000),
            false,
            &mut |_| {
                calls += 1;
                0
            },
        );
        assert_eq!(disks.len(), 1);
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert!(t.elapsed() < Duration::from_millis(2_000));
        let empty = fake_sys(&[]);
        let (none, waited) = wait_for_disks_hotplug(
            Some(&mut hp),
            empty.path(),
            Path::new("/dev"),
            Duration::from_millis(10),
            Duration::from_millis(150),
            false,
            &mut |_| 0,
        );
        assert!(none.is_empty());
        assert!(waited >= Duration::from_millis(150));
    }

    #[test]
    fn partition_names() {
        assert_eq!(partition_name("vda", 2), "vda2");
        assert_eq!(partition_name("nvme0n1", 2), "nvme0n1p2");
        assert_eq!(partition_name("mmcblk0", 1), "mmcblk0p1");
    }
}
