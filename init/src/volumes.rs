//! Opening disks in PID 1: each disk and its partition nodes set read-only (`BLKROSET`) before
//! anything reads them, the `allow_devices`/`deny_devices` policy applied, volumes probed in
//! parallel and kernel-mounted read-only under /run/leapboot where no userspace reader serves.

use std::path::Path;

use leapboot::discover;
use leapboot::disk::Disk;
use leapboot::pipeline::Volumes;
use leapboot::session::Policy;

/// An empty set of volumes that kernel-mounts, read-only, what no userspace reader serves.
pub fn new_volumes() -> Volumes {
    Volumes::with_mounts(leapboot::fs::mount::MountConfig {
        root: Path::new(leapboot::MOUNT_ROOT).to_path_buf(),
        modules_dir: crate::early::modules_dir(),
    })
}

/// Opens each disk read-only (partitions first set read-only too) and adds its volumes;
/// volumes are probed in parallel, and those without a userspace reader are kernel-mounted
/// read-only under /run/leapboot. What `allow_devices`/`deny_devices` exclude is left alone.
pub fn add_disks(volumes: &mut Volumes, disks: &[discover::BlockDevice], policy: &Policy) {
    let mut opened = Vec::new();
    for d in disks {
        if !policy.disk_wanted(&d.name, &d.partitions) {
            log::info!("{}: left alone (allow_devices/deny_devices)", d.name);
            continue;
        }
        if let Some(disk) = open_disk(d) {
            opened.push((disk, d));
        }
    }
    let namers: Vec<Box<dyn Fn(u32) -> String + Sync>> = opened
        .iter()
        .map(|(_, d)| {
            let name = d.name.clone();
            Box::new(move |n| discover::partition_name(&name, n))
                as Box<dyn Fn(u32) -> String + Sync>
        })
        .collect();
    let refs: Vec<leapboot::pipeline::DiskRef<'_>> = opened
        .iter()
        .zip(&namers)
        .map(|((disk, d), namer)| leapboot::pipeline::DiskRef {
            disk,
            name: &d.name,
            part_name: namer.as_ref(),
        })
        .collect();
    volumes.add_disks(&refs);
    volumes.list.retain(|v| {
        let disk = v
            .disk
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let keep = policy.volume_wanted(&v.name, &disk);
        if !keep {
            log::info!("{}: left alone (allow_devices/deny_devices)", v.name);
        }
        keep
    });
}

/// Opens a disk read-only (BLKROSET), its partition nodes first, so that even a kernel mount
/// of a partition is read-only.
fn open_disk(d: &discover::BlockDevice) -> Option<Disk> {
    for p in &d.partitions {
        if let Err(e) = Disk::open(&Path::new("/dev").join(p)) {
            log::warn!("{e}");
        }
    }
    Disk::open(&d.node).map_err(|e| log::error!("{e}")).ok()
}
