//! Block device discovery from sysfs: which disks exist, and waiting (bounded) for them.
//!
//! Whole disks only (partitions are read from the disk's own table by [`crate::partition`]).
//! RAM disks, loop and zram devices are ignored: they never hold a boot partition we were
//! given by firmware.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

const IGNORED_PREFIXES: &[&str] = &["ram", "loop", "zram"];

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Lists whole-disk block devices under `sys` (normally `/sys`), sorted by name. Devices of
/// size 0 (empty card readers, disconnected nbd) are skipped.
pub fn block_devices(sys: &Path, dev: &Path) -> Vec<BlockDevice> {
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
        if base.join("partition").exists() || IGNORED_PREFIXES.iter().any(|p| name.starts_with(p)) {
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
    fn partition_names() {
        assert_eq!(partition_name("vda", 2), "vda2");
        assert_eq!(partition_name("nvme0n1", 2), "nvme0n1p2");
        assert_eq!(partition_name("mmcblk0", 1), "mmcblk0p1");
    }
}
