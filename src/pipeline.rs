//! The one pipeline both front ends use: disks → partition tables → probed volumes → opened
//! read-only → boot entries → one merged list.
//!
//! Each volume is handled in isolation: an error or even a panic in a filesystem or table
//! reader on a hostile disk loses that volume (logged), never the others.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use crate::disk::Disk;
use crate::entry::{self, BootList, EntryError, Found};
use crate::fs::mount::MountConfig;
use crate::fs::{self, BootFs};
use crate::partition::{self, Partition, Table};
use crate::probe::{self, FsInfo};

/// A volume leapboot opened: a partition, or a whole disk holding a filesystem.
pub struct Volume {
    /// Name used in logs, entries and the menu (`vda1`, `disk.img:1`, or a `--root` path).
    pub name: String,
    /// The disk it lives on.
    pub disk: PathBuf,
    /// The partition, if it is one.
    pub partition: Option<Partition>,
    /// What the superblock says.
    pub info: Option<FsInfo>,
    /// Index of its disk in discovery order (GRUB's `hdN`), if on a disk.
    pub disk_index: Option<u32>,
    /// The read-only view of its files.
    pub fs: Box<dyn BootFs>,
    /// For an ISO image read from a file of another volume: that file.
    pub iso: Option<entry::isofile::IsoOrigin>,
}

/// All opened volumes.
#[derive(Default)]
pub struct Volumes {
    /// In discovery order.
    pub list: Vec<Volume>,
    /// Disks added so far.
    disks: u32,
    /// Kernel mounts for filesystems without a userspace reader: only in the initramfs.
    mounts: Option<MountConfig>,
}

/// Volumes probed (and mounted) at once, at most.
pub const MAX_PROBE_THREADS: usize = 4;

/// One disk to add: the opened disk, its name, and how its partitions are named.
pub struct DiskRef<'a> {
    /// The opened disk.
    pub disk: &'a Disk,
    /// Its name in logs (`vda`, `disk.img`).
    pub name: &'a str,
    /// Partition N's name (`vda` → `vda1`). With mounts enabled this must also be the
    /// partition's node name under `/dev`.
    pub part_name: &'a (dyn Fn(u32) -> String + Sync),
}

/// A volume found in a partition table (or a whole disk), before it is probed.
struct Candidate {
    name: String,
    disk: Disk,
    disk_index: u32,
    partition: Option<Partition>,
    slice: crate::disk::Slice,
    /// The block device node to mount (the partition's own node).
    node: PathBuf,
}

/// What the parallel stage found for one candidate.
enum Probe {
    Skip,
    Userspace(FsInfo),
    Mounted(FsInfo, Result<fs::mount::MountedFs, fs::OpenError>),
    NeedsMount(FsInfo),
}

impl Volumes {
    /// Volumes that kernel-mount the filesystems leapboot has no userspace reader for (and
    /// ext4 that `ext4-view` refuses). For the initramfs only.
    pub fn with_mounts(config: MountConfig) -> Volumes {
        Volumes {
            mounts: Some(config),
            ..Volumes::default()
        }
    }

    /// The filesystem of volume `name`.
    pub fn fs(&self, name: &str) -> Option<&dyn BootFs> {
        self.list
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.fs.as_ref())
    }

    /// Adds a directory of the host as a volume (`leapboot list --root DIR`).
    pub fn add_dir(&mut self, root: &Path) {
        self.list.push(Volume {
            name: root.display().to_string(),
            disk: root.to_owned(),
            partition: None,
            info: None,
            disk_index: None,
            fs: Box::new(fs::dir::DirFs::new(root)),
            iso: None,
        });
        self.add_iso_files(self.list.len() - 1);
    }

    /// Reads `disk`'s partition table and opens every volume with a filesystem leapboot can
    /// read. `part_name` names partition N (`vda` → `vda1`).
    pub fn add_disk(
        &mut self,
        disk: &Disk,
        disk_name: &str,
        part_name: &(dyn Fn(u32) -> String + Sync),
    ) {
        self.add_disks(&[DiskRef {
            disk,
            name: disk_name,
            part_name,
        }]);
    }

    /// Adds several disks: their tables are read in order, then all their volumes are probed
    /// (and kernel-mounted where needed) in parallel on at most [`MAX_PROBE_THREADS`] threads,
    /// then opened in order. The resulting list is in disk order, then partition order,
    /// whatever the threads' timing.
    pub fn add_disks(&mut self, disks: &[DiskRef<'_>]) {
        let mut candidates = Vec::new();
        for d in disks {
            let disk_index = self.disks;
            self.disks += 1;
            candidates.extend(self.candidates(d, disk_index));
        }
        let probed = probe_all(&candidates, self.mounts.as_ref());
        let first = self.list.len();
        for (c, p) in candidates.into_iter().zip(probed) {
            self.open_volume(c, p);
        }
        self.add_iso_files(first);
    }

    /// Adds the ISO image files found on the volumes from index `first` on as volumes of
    /// their own, named `<volume><path>` (`vdb1/isos/debian.iso`), read in userspace through
    /// the volume's file: no loop device, no mount. An ISO inside an ISO is not looked for.
    fn add_iso_files(&mut self, first: usize) {
        let end = self.list.len();
        for i in first..end {
            if self.list[i].iso.is_some() {
                continue;
            }
            let name = self.list[i].name.clone();
            let found = match catch_unwind(AssertUnwindSafe(|| {
                fs::isoscan::find(self.list[i].fs.as_ref(), &name)
            })) {
                Ok(f) => f,
                Err(_) => {
                    log::error!("{name}: the ISO file search crashed on this volume; skipped");
                    continue;
                }
            };
            if found.is_empty() {
                continue;
            }
            // The volume's reader is shared with the ISOs read from its files.
            let own = std::mem::replace(&mut self.list[i].fs, Box::new(fs::mem::MemFs::default()));
            let shared: std::rc::Rc<dyn BootFs> = std::rc::Rc::from(own);
            self.list[i].fs = Box::new(fs::iso::Shared(shared.clone()));
            for (path, len) in found {
                let iso_name = format!("{name}{path}");
                let opened = catch_unwind(AssertUnwindSafe(|| {
                    fs::iso::IsoFs::open(shared.clone(), &path)
                }));
                let iso = match opened {
                    Ok(Ok(iso)) => iso,
                    Ok(Err(e)) => {
                        log::warn!("{name}: {path} is not a readable ISO 9660 image: {e}; skipped");
                        continue;
                    }
                    Err(_) => {
                        log::error!("{name}: the ISO reader crashed on {path}; skipped");
                        continue;
                    }
                };
                let parent = &self.list[i];
                log::info!(
                    "{iso_name}: ISO image file ({} MiB){}",
                    len >> 20,
                    iso.label()
                        .map(|l| format!(" label={l}"))
                        .unwrap_or_default()
                );
                let info = FsInfo {
                    kind: probe::FsKind::Iso9660,
                    uuid: iso.uuid().map(str::to_string),
                    label: iso.label().map(str::to_string),
                };
                let origin = entry::isofile::IsoOrigin {
                    volume: name.clone(),
                    path,
                    volume_uuid: parent.info.as_ref().and_then(|i| i.uuid.clone()),
                };
                let disk = parent.disk.clone();
                self.list.push(Volume {
                    name: iso_name,
                    disk,
                    partition: None,
                    info: Some(info),
                    disk_index: None,
                    fs: Box::new(iso),
                    iso: Some(origin),
                });
            }
        }
    }

    /// The volumes `d` may hold: its partitions, or the whole disk.
    fn candidates(&self, d: &DiskRef<'_>, disk_index: u32) -> Vec<Candidate> {
        let disk_name = d.name;
        let disk = d.disk;
        let table = match catch_unwind(AssertUnwindSafe(|| partition::read(disk))) {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                log::error!("{e}; the disk is skipped");
                return Vec::new();
            }
            Err(_) => {
                log::error!("{disk_name}: the partition table reader crashed; the disk is skipped");
                return Vec::new();
            }
        };
        let whole = |name: &str| Candidate {
            name: name.to_string(),
            disk: disk.clone(),
            disk_index,
            partition: None,
            slice: disk.slice(0, disk.size()),
            node: disk.path().to_owned(),
        };
        let partitions = match table {
            Table::None => return vec![whole(disk_name)],
            Table::Gpt { partitions, .. } => {
                log::info!("{disk_name}: GPT with {} partition(s)", partitions.len());
                partitions
            }
            Table::Mbr { partitions, .. } => {
                log::info!("{disk_name}: MBR with {} partition(s)", partitions.len());
                partitions
            }
        };
        let mut out = Vec::new();
        // An ISO9660 hybrid image (a USB stick): the ISO filesystem starts at byte 0 of the
        // disk, beside the table in its system area. Like blkid, report both: the whole disk
        // as the ISO volume, and the partitions (an ESP image, ...), except one starting at
        // byte 0, which is the ISO again.
        let iso = matches!(
            probe::probe(&disk.slice(0, disk.size())),
            Ok(probe::Probed::Fs(FsInfo {
                kind: probe::FsKind::Iso9660,
                ..
            }))
        );
        if iso {
            log::info!(
                "{disk_name}: ISO9660 hybrid image: the whole disk and its partitions are volumes"
            );
            out.push(whole(disk_name));
        }
        let dev = disk
            .path()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for p in partitions {
            if iso && p.start == 0 {
                log::debug!("{disk_name}: partition {} is the ISO itself", p.number);
                continue;
            }
            let name = (d.part_name)(p.number);
            out.push(Candidate {
                node: dev.join(&name),
                slice: disk.slice(p.start, p.len),
                name,
                disk: disk.clone(),
                disk_index,
                partition: Some(p),
            });
        }
        out
    }

    fn open_volume(&mut self, c: Candidate, probed: Probe) {
        let name = c.name;
        let (info, fs): (FsInfo, Box<dyn BootFs>) = match probed {
            Probe::Skip => return,
            Probe::NeedsMount(info) => {
                log::warn!(
                    "{name}: {} needs a kernel mount; leapboot list reads images in userspace only (the initramfs mounts it read-only); skipped",
                    info.kind
                );
                return;
            }
            Probe::Mounted(info, Ok(dir)) => (info, Box::new(dir)),
            Probe::Mounted(info, Err(e)) => {
                log::error!("{name}: cannot mount the {} filesystem: {e}", info.kind);
                return;
            }
            Probe::Userspace(info) => {
                let kind = info.kind;
                match catch_unwind(AssertUnwindSafe(|| fs::open(c.slice, kind))) {
                    Ok(Ok(fs)) => (info, fs),
                    Ok(Err(e)) => match &self.mounts {
                        // ext4-view refuses some features (inline_data, casefold, meta_bg,
                        // journals without checksums): the kernel reads them, ro and noload.
                        Some(m) if kind != probe::FsKind::Vfat => {
                            log::warn!("{name}: {e}; falling back to a read-only kernel mount");
                            match fs::mount::mount(&name, &c.node, kind, m) {
                                Ok(dir) => (info, Box::new(dir)),
                                Err(e) => {
                                    log::error!("{name}: cannot mount the {kind} filesystem: {e}");
                                    return;
                                }
                            }
                        }
                        _ => {
                            log::error!("{name}: cannot open the {kind} filesystem: {e}");
                            return;
                        }
                    },
                    Err(_) => {
                        log::error!("{name}: the {kind} reader crashed on this volume; skipped");
                        return;
                    }
                }
            }
        };
        log::info!(
            "{name}: {}{}{}",
            info.kind,
            info.label
                .as_deref()
                .map(|l| format!(" label={l}"))
                .unwrap_or_default(),
            info.uuid
                .as_deref()
                .map(|u| format!(" uuid={u}"))
                .unwrap_or_default()
        );
        self.list.push(Volume {
            name,
            disk: c.disk.path().to_owned(),
            partition: c.partition,
            info: Some(info),
            disk_index: Some(c.disk_index),
            fs,
            iso: None,
        });
    }

    /// What parsers see of each volume.
    fn views(&self) -> Vec<entry::VolumeView<'_>> {
        self.list
            .iter()
            .map(|v| entry::VolumeView {
                name: &v.name,
                fs: v.fs.as_ref(),
                uuid: v.info.as_ref().and_then(|i| i.uuid.as_deref()),
                label: v.info.as_ref().and_then(|i| i.label.as_deref()),
                part_uuid: v.partition.as_ref().and_then(|p| p.part_uuid.as_deref()),
                part_type: v.partition.as_ref().and_then(|p| p.type_guid.as_deref()),
                grub_position: v
                    .disk_index
                    .map(|d| (d, v.partition.as_ref().map_or(0, |p| p.number))),
                root_fs: entry::is_root_fs(v.fs.as_ref()),
            })
            .collect()
    }

    /// Runs every format on every volume and merges the entries into one list, volume by
    /// volume, formats in [`entry::FORMATS`] order. A volume where no configuration yields
    /// an entry is scanned for kernels by name.
    ///
    /// GRUB runs first on every volume, so the volumes whose BLS entries a `grub.cfg` shows
    /// through `blscfg` (on any volume, before or after them) are known before the BLS
    /// format would list them again. Each format runs once per volume: the cost is linear in
    /// the number of volumes, whatever a hostile disk set holds.
    pub fn boot_list(&self) -> (BootList, Vec<EntryError>) {
        let views = self.views();
        let mut errors = Vec::new();
        let run = |format: entry::Format, f: entry::DiscoverFn, v: &entry::VolumeView<'_>| {
            catch_unwind(AssertUnwindSafe(|| f(v, &views))).unwrap_or_else(|_| Found {
                errors: vec![EntryError {
                    volume: v.name.to_string(),
                    file: "/".into(),
                    line: None,
                    message: format!("the {format:?} parser crashed on this volume"),
                }],
                ..Found::default()
            })
        };
        let mut grub: Vec<Option<Found>> = views
            .iter()
            .zip(&self.list)
            .map(|(v, vol)| {
                // An ISO file's volume has its own discovery (below).
                (vol.iso.is_none()).then(|| run(entry::Format::Grub, entry::grub::discover, v))
            })
            .collect();
        let bls_shown: BTreeSet<String> = grub
            .iter()
            .flatten()
            .flat_map(|f| f.bls_shown.iter().cloned())
            .collect();
        let mut list = BootList::default();
        for ((v, grub), vol) in views.iter().zip(&mut grub).zip(&self.list) {
            let mut count = 0;
            let mut merge = |found: Found, list: &mut BootList| {
                errors.extend(found.errors.iter().cloned());
                list.merge(found);
            };
            if let Some(origin) = &vol.iso {
                let found = catch_unwind(AssertUnwindSafe(|| {
                    entry::isofile::discover(v, &views, origin)
                }))
                .unwrap_or_else(|_| Found {
                    errors: vec![EntryError {
                        volume: v.name.to_string(),
                        file: "/".into(),
                        line: None,
                        message: "the ISO file parser crashed on this image".into(),
                    }],
                    ..Found::default()
                });
                merge(found, &mut list);
                continue;
            }
            for (format, f) in entry::FORMATS {
                let found = match format {
                    entry::Format::Grub => grub.take().unwrap_or_default(),
                    entry::Format::Bls if bls_shown.contains(v.name) => {
                        log::debug!(
                            "{}: BLS entries shown through a grub.cfg's blscfg; not listed again",
                            v.name
                        );
                        continue;
                    }
                    _ => run(*format, *f, v),
                };
                count += found.entries.len();
                merge(found, &mut list);
            }
            if count == 0 {
                merge(
                    run(entry::Format::Bootdir, entry::bootdir::discover, v),
                    &mut list,
                );
            }
        }
        (list, errors)
    }
}

/// Probes every candidate (mounting those that need it when `mounts` is set) on at most
/// [`MAX_PROBE_THREADS`] threads; results in the candidates' order.
fn probe_all(candidates: &[Candidate], mounts: Option<&MountConfig>) -> Vec<Probe> {
    let threads = candidates.len().min(MAX_PROBE_THREADS);
    if threads <= 1 {
        return candidates.iter().map(|c| probe_one(c, mounts)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, Probe)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(c) = candidates.get(i) else {
                            return mine;
                        };
                        mine.push((i, probe_one(c, mounts)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    // A worker that died (it cannot: probe_one catches panics) loses its volumes only.
    let mut out: Vec<Probe> = Vec::with_capacity(candidates.len());
    let mut it = results.into_iter().peekable();
    for i in 0..candidates.len() {
        match it.next_if(|(j, _)| *j == i) {
            Some((_, p)) => out.push(p),
            None => out.push(Probe::Skip),
        }
    }
    out
}

/// Identifies one candidate; mounts it if it has no userspace reader and mounts are allowed.
fn probe_one(c: &Candidate, mounts: Option<&MountConfig>) -> Probe {
    let name = &c.name;
    let probed = catch_unwind(AssertUnwindSafe(|| probe::probe(&c.slice)));
    let info = match probed {
        Ok(Ok(probe::Probed::Fs(info))) => info,
        Ok(Ok(probe::Probed::Other(o))) => {
            log::info!("{name}: {}; not a boot volume, skipped", o.detail);
            return Probe::Skip;
        }
        Ok(Ok(probe::Probed::Unknown)) => {
            if c.partition.is_none() {
                log::info!("{name}: no partition table and no known filesystem; skipped");
            } else {
                log::debug!("{name}: no known filesystem");
            }
            return Probe::Skip;
        }
        Ok(Err(e)) => {
            log::error!("{name}: cannot read: {e}");
            return Probe::Skip;
        }
        Err(_) => {
            log::error!("{name}: the filesystem probe crashed on this volume; skipped");
            return Probe::Skip;
        }
    };
    if fs::has_userspace_reader(info.kind) {
        return Probe::Userspace(info);
    }
    match mounts {
        Some(m) => {
            let r = catch_unwind(AssertUnwindSafe(|| {
                fs::mount::mount(name, &c.node, info.kind, m)
            }))
            .unwrap_or_else(|_| Err(fs::OpenError("the mount code crashed".into())));
            Probe::Mounted(info, r)
        }
        None => Probe::NeedsMount(info),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::types;
    use crate::testutil::{ext4_volume, fat_volume, gpt_image};

    const ENTRY: &[u8] = b"title T\nlinux /vmlinuz\ninitrd /initrd.img\noptions console=ttyS0\n";

    fn scan(path: &Path) -> (Volumes, BootList) {
        let disk = Disk::open(path).unwrap();
        let mut v = Volumes::default();
        v.add_disk(&disk, "img", &|n| format!("img:{n}"));
        let (list, _) = v.boot_list();
        (v, list)
    }

    fn sha(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }

    #[test]
    fn finds_entries_on_fat_and_ext4_partitions_and_reads_kernels() {
        let esp = fat_volume(
            16 << 20,
            &[
                ("loader/entries/a.conf", ENTRY),
                ("vmlinuz", b"KERNEL-A"),
                ("initrd.img", b"I"),
            ],
        );
        let boot = ext4_volume(
            16 << 20,
            &[("loader/entries/b.conf", ENTRY), ("vmlinuz", b"KERNEL-B")],
        );
        let img = gpt_image(&[(types::ESP, esp), (types::XBOOTLDR, boot)]);
        let before = sha(img.path());
        let (vols, list) = scan(img.path());
        assert_eq!(vols.list.len(), 2);
        assert_eq!(
            vols.list[0]
                .partition
                .as_ref()
                .unwrap()
                .type_guid
                .as_deref(),
            Some(types::ESP)
        );
        let ids: Vec<_> = list
            .entries
            .iter()
            .map(|e| (e.id.as_str(), e.source.volume.as_str()))
            .collect();
        assert_eq!(ids, [("a", "img:1"), ("b", "img:2")]);
        for (e, want) in list.entries.iter().zip([&b"KERNEL-A"[..], b"KERNEL-B"]) {
            let fs = vols.fs(&e.kernel.volume).unwrap();
            assert_eq!(fs.read(&e.kernel.path, 100).unwrap(), want);
        }
        // FAT lookups are case-insensitive, like firmware's.
        assert!(vols.fs("img:1").unwrap().exists("/LOADER/Entries/A.CONF"));
        assert!(before == sha(img.path()), "the image was modified");
    }

    #[test]
    fn a_corrupt_primary_gpt_falls_back_to_the_backup() {
        let esp = fat_volume(8 << 20, &[("loader/entries/a.conf", ENTRY)]);
        let img = gpt_image(&[(types::ESP, esp)]);
        let mut bytes = std::fs::read(img.path()).unwrap();
        bytes[512 + 60] ^= 0xFF; // the primary header's disk GUID: its CRC no longer matches
        std::fs::write(img.path(), &bytes).unwrap();
        let disk = Disk::open(img.path()).unwrap();
        assert!(crate::partition::gpt_header_is_valid(&disk, 1).is_err());
        assert!(crate::partition::gpt_header_is_valid(&disk, disk.size() / 512 - 1).is_ok());
        let (_, list) = scan(img.path());
        assert_eq!(list.entries.len(), 1);
    }

    #[test]
    fn hostile_gpt_headers_are_refused_not_trusted() {
        let esp = fat_volume(8 << 20, &[("loader/entries/a.conf", ENTRY)]);
        let img = gpt_image(&[(types::ESP, esp)]);
        let mut bytes = std::fs::read(img.path()).unwrap();
        // Entry size 256 with a correct header CRC: the gpt crate would assert on it.
        for at in [512usize, bytes.len() - 512] {
            bytes[at + 84..at + 88].copy_from_slice(&256u32.to_le_bytes());
            bytes[at + 16..at + 20].fill(0);
            let crc = crc32fast::hash(&bytes[at..at + 92]);
            bytes[at + 16..at + 20].copy_from_slice(&crc.to_le_bytes());
        }
        std::fs::write(img.path(), &bytes).unwrap();
        let disk = Disk::open(img.path()).unwrap();
        let err = partition::read(&disk).unwrap_err().to_string();
        assert!(err.contains("partition entry size 256"), "{err}");
        let (vols, list) = scan(img.path());
        assert!(vols.list.is_empty() && list.entries.is_empty());
    }

    #[test]
    fn garbage_disks_yield_nothing_and_never_panic() {
        let mut x = 0x1234_5678_9abc_def0u64;
        let bytes: Vec<u8> = (0..(4 << 20))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), &bytes).unwrap();
        let (vols, list) = scan(f.path());
        assert!(vols.list.is_empty() && list.entries.is_empty());
    }

    #[test]
    fn bls_entries_a_later_volumes_grub_cfg_shows_are_listed_once() {
        let bls = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(bls.path().join("loader/entries")).unwrap();
        std::fs::write(
            bls.path().join("loader/entries/a.conf"),
            "title A\nlinux /vmlinuz\noptions $kernelopts\n",
        )
        .unwrap();
        let grub = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(grub.path().join("grub2")).unwrap();
        std::fs::write(
            grub.path().join("grub2/grub.cfg"),
            format!(
                "set kernelopts=\"root=/dev/x\"\nset root=({})\nblscfg\n",
                bls.path().display()
            ),
        )
        .unwrap();
        let mut v = Volumes::default();
        v.add_dir(bls.path());
        v.add_dir(grub.path());
        let (list, errors) = v.boot_list();
        assert!(errors.is_empty(), "{errors:?}");
        let got: Vec<_> = list
            .entries
            .iter()
            .map(|e| (e.format, e.kernel.volume.clone(), e.cmdline.clone()))
            .collect();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, entry::Format::Grub);
        assert_eq!(got[0].1, bls.path().display().to_string());
        assert!(got[0].2.ends_with("root=/dev/x"), "{got:?}");
    }

    #[test]
    fn a_whole_disk_filesystem_is_a_volume() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            f.path(),
            ext4_volume(8 << 20, &[("loader/entries/w.conf", ENTRY)]),
        )
        .unwrap();
        let (vols, list) = scan(f.path());
        assert_eq!(vols.list[0].name, "img");
        assert_eq!(list.entries[0].id, "w");
    }

    fn at(img: &mut [u8], sector: usize, bytes: &[u8]) {
        img[sector * 512..sector * 512 + bytes.len()].copy_from_slice(bytes);
    }

    #[test]
    fn an_ext4_boot_in_a_logical_partition_of_an_sfdisk_table() {
        // The table sfdisk wrote (partition/testdata/logical): 1 at 2048, 5 at 8192, 6 at 14336.
        let mut img =
            crate::testutil::sparse_image(include_str!("partition/testdata/logical.sparse"));
        at(
            &mut img,
            2048,
            &fat_volume(2 << 20, &[("readme.txt", b"x")]),
        );
        at(
            &mut img,
            8192,
            &ext4_volume(
                2 << 20,
                &[("loader/entries/l.conf", ENTRY), ("vmlinuz", b"K")],
            ),
        );
        let disk = Disk::from_bytes("img", img);
        let mut v = Volumes::default();
        v.add_disk(&disk, "img", &|n| format!("img:{n}"));
        let names: Vec<(&str, Option<&str>)> = v
            .list
            .iter()
            .map(|v| {
                (
                    v.name.as_str(),
                    v.partition.as_ref().and_then(|p| p.part_uuid.as_deref()),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("img:1", Some("12345678-01")),
                ("img:5", Some("12345678-05"))
            ]
        );
        let (list, _) = v.boot_list();
        assert_eq!(list.entries[0].source.volume, "img:5");
    }

    #[test]
    fn an_iso9660_hybrid_disk_is_the_iso_and_its_other_partitions() {
        let mut img = crate::testutil::sparse_image(include_str!("probe/testdata/iso9660.sparse"));
        img.resize(4 << 20, 0);
        let mut mbr = vec![0u8; 512];
        let entry = |mbr: &mut Vec<u8>, i: usize, ty: u8, start: u32, n: u32| {
            let e = &mut mbr[446 + 16 * i..462 + 16 * i];
            e[4] = ty;
            e[8..12].copy_from_slice(&start.to_le_bytes());
            e[12..16].copy_from_slice(&n.to_le_bytes());
        };
        entry(&mut mbr, 0, 0x00, 0, 8192); // isohybrid: the ISO itself, from sector 0
        entry(&mut mbr, 1, 0xef, 4096, 2048); // an ESP image inside the ISO
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        at(&mut img, 0, &mbr);
        at(
            &mut img,
            4096,
            &fat_volume(1 << 20, &[("loader/entries/e.conf", ENTRY)]),
        );
        let disk = Disk::from_bytes("usb", img);
        let mut v = Volumes::default();
        let part_name = |n: u32| format!("usb:{n}");
        let cands = v.candidates(
            &DiskRef {
                disk: &disk,
                name: "usb",
                part_name: &part_name,
            },
            0,
        );
        let names: Vec<&str> = cands.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["usb", "usb:2"]);
        // On the host, the ISO needs a kernel mount: only the ESP opens.
        v.add_disk(&disk, "usb", &part_name);
        let names: Vec<&str> = v.list.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["usb:2"]);
    }

    #[test]
    fn iso_files_on_an_ext4_partition_are_volumes_whose_kernels_load() {
        let loopback = b"menuentry Live { linux /live/vmlinuz boot=live findiso=${iso_path}\n initrd /live/initrd.img }\n";
        let iso = crate::testutil::iso_image(
            &["-R", "-J"],
            &[
                ("boot/grub/loopback.cfg", loopback),
                ("live/vmlinuz", b"KERNEL-IN-ISO"),
                ("live/initrd.img", b"INITRD-IN-ISO"),
            ],
            &[],
        );
        let not_iso = vec![7u8; 64 * 1024];
        let data = ext4_volume(
            16 << 20,
            &[
                ("isos/live.iso", &iso),
                ("isos/broken.iso", &not_iso),
                ("readme.txt", b"x"),
            ],
        );
        let stick = fat_volume(8 << 20, &[("live.iso", &iso)]);
        let img = gpt_image(&[(types::LINUX_FS, data), (types::ESP, stick)]);
        let before = sha(img.path());
        let (vols, list) = scan(img.path());
        let names: Vec<&str> = vols.list.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            ["img:1", "img:2", "img:1/isos/live.iso", "img:2/live.iso"]
        );
        // The same image on FAT: read through fatfs' seeks.
        let on_fat = &list.entries[1];
        assert_eq!(on_fat.kernel.volume, "img:2/live.iso");
        assert!(
            on_fat.cmdline.ends_with("findiso=/live.iso"),
            "{}",
            on_fat.cmdline
        );
        let fat_iso = vols.fs("img:2/live.iso").unwrap();
        assert_eq!(
            fat_iso.read("/live/vmlinuz", 100).unwrap(),
            b"KERNEL-IN-ISO"
        );
        let e = &list.entries[0];
        assert_eq!(e.title, "Live (live.iso)");
        assert_eq!(e.kernel.volume, "img:1/isos/live.iso");
        assert!(
            e.cmdline.ends_with("boot=live findiso=/isos/live.iso"),
            "{}",
            e.cmdline
        );
        // What the loader does: the FileRef's volume, then the file.
        let fs = vols.fs(&e.kernel.volume).unwrap();
        assert_eq!(fs.read(&e.kernel.path, 100).unwrap(), b"KERNEL-IN-ISO");
        assert_eq!(
            vols.fs(&e.initrds[0].volume)
                .unwrap()
                .read(&e.initrds[0].path, 100)
                .unwrap(),
            b"INITRD-IN-ISO"
        );
        // The data partition itself is still readable through the shared reader.
        assert_eq!(
            vols.fs("img:1").unwrap().read("/readme.txt", 10).unwrap(),
            b"x"
        );
        assert!(before == sha(img.path()), "the image was modified");
    }

    #[test]
    fn parallel_probing_keeps_disk_and_partition_order() {
        let parts: Vec<(&str, Vec<u8>)> = (0..6)
            .map(|i| {
                let conf = format!("title T{i}\nlinux /vmlinuz\n");
                (
                    types::ESP,
                    fat_volume(1 << 20, &[("loader/entries/e.conf", conf.as_bytes())]),
                )
            })
            .collect();
        let a = gpt_image(&parts);
        let b = gpt_image(&parts[..2]);
        let disks = [Disk::open(a.path()).unwrap(), Disk::open(b.path()).unwrap()];
        for _ in 0..3 {
            let mut v = Volumes::default();
            let na = |n: u32| format!("a:{n}");
            let nb = |n: u32| format!("b:{n}");
            v.add_disks(&[
                DiskRef {
                    disk: &disks[0],
                    name: "a",
                    part_name: &na,
                },
                DiskRef {
                    disk: &disks[1],
                    name: "b",
                    part_name: &nb,
                },
            ]);
            let names: Vec<&str> = v.list.iter().map(|v| v.name.as_str()).collect();
            assert_eq!(
                names,
                ["a:1", "a:2", "a:3", "a:4", "a:5", "a:6", "b:1", "b:2"]
            );
            let grub: Vec<u32> = v.list.iter().filter_map(|v| v.disk_index).collect();
            assert_eq!(grub, [0, 0, 0, 0, 0, 0, 1, 1]);
        }
    }
}
