//! Block device discovery: which disks exist, and waiting (bounded) for them.
//!
//! The initial view comes from `/sys/class/block`; later arrivals from kernel uevents
//! ([`uevent`]: a netlink listener opened before the first scan, so nothing falls between).
//! When to stop waiting for more is the boot session's rule
//! ([`crate::session::discovery`]), not this module's.
//!
//! Whole disks only (partitions are read from the disk's own table by [`crate::partition`]).
//! RAM disks, loop and zram devices are ignored unless asked for (`include_virtual`): they
//! never hold a boot partition firmware gave us. This module does not open disks and does not
//! load modules itself: a module loader is passed in as a callback for `MODALIAS` events.

pub mod uevent;

use std::path::{Path, PathBuf};

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
    fn partition_names() {
        assert_eq!(partition_name("vda", 2), "vda2");
        assert_eq!(partition_name("nvme0n1", 2), "nvme0n1p2");
        assert_eq!(partition_name("mmcblk0", 1), "mmcblk0p1");
    }
}
