//! Opening disks in PID 1: each disk and its partition nodes set read-only (`BLKROSET`) before
//! anything reads them, the `allow_devices`/`deny_devices` lists applied, volumes probed in
//! parallel and kernel-mounted read-only under /run/leapboot where no userspace reader serves.

use std::path::Path;

use leapboot::config::Config;
use leapboot::discover;
use leapboot::disk::Disk;
use leapboot::pipeline::Volumes;

/// Opens every disk read-only (partitions first set read-only too) and its volumes; volumes
/// are probed in parallel, and those without a userspace reader are kernel-mounted read-only
/// under /run/leapboot. What `allow_devices`/`deny_devices` exclude is left alone.
pub fn open_volumes(disks: &[discover::BlockDevice], config: &Config) -> Volumes {
    let mut volumes = Volumes::with_mounts(leapboot::fs::mount::MountConfig {
        root: Path::new(leapboot::MOUNT_ROOT).to_path_buf(),
        modules_dir: crate::early::modules_dir(),
    });
    let mut opened = Vec::new();
    for d in disks.iter().filter(|d| disk_wanted(d, config)) {
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
    drop_unwanted_volumes(&mut volumes, config);
    volumes
}

/// Whether disk `d` (or any of its partitions) may be read under `allow_devices`/`deny_devices`.
pub fn disk_wanted(d: &discover::BlockDevice, config: &Config) -> bool {
    let denied = config
        .deny_devices
        .iter()
        .any(|g| leapboot::glob::matches(g, &d.name));
    let wanted = config.device_allowed(&[&d.name])
        || (!denied && d.partitions.iter().any(|p| config.device_allowed(&[p])));
    if !wanted {
        log::info!("{}: left alone (allow_devices/deny_devices)", d.name);
    }
    wanted
}

/// Drops the volumes `allow_devices`/`deny_devices` exclude (checked by volume and disk name).
pub fn drop_unwanted_volumes(volumes: &mut Volumes, config: &Config) {
    volumes.list.retain(|v| {
        let disk = v
            .disk
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let keep = config.device_allowed(&[&v.name, &disk]);
        if !keep {
            log::info!("{}: left alone (allow_devices/deny_devices)", v.name);
        }
        keep
    });
}

/// Opens one disk read-only (partitions first) and adds its volumes.
pub fn add_disk_volumes(volumes: &mut Volumes, d: &discover::BlockDevice, config: &Config) {
    if !disk_wanted(d, config) {
        return;
    }
    if let Some(disk) = open_disk(d) {
        volumes.add_disk(&disk, &d.name, &|n| discover::partition_name(&d.name, n));
        drop_unwanted_volumes(volumes, config);
    }
}

/// Opens a disk read-only (BLKROSET), its partition nodes first, so that even a kernel mount
/// of a partition is read-only.
pub fn open_disk(d: &discover::BlockDevice) -> Option<Disk> {
    for p in &d.partitions {
        if let Err(e) = Disk::open(&Path::new("/dev").join(p)) {
            log::warn!("{e}");
        }
    }
    Disk::open(&d.node).map_err(|e| log::error!("{e}")).ok()
}
