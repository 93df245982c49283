//! The one pipeline both front ends use: disks → partition tables → probed volumes → opened
//! read-only → boot entries → one merged list.
//!
//! Each volume is handled in isolation: an error or even a panic in a filesystem or table
//! reader on a hostile disk loses that volume (logged), never the others.
//!
//! md RAID members and LVM2 PVs are kept aside as they are found ([`Volumes::add_disks`]
//! may see one member now and another on a later call); after each call, RAID1 mirrors not
//! yet listed become one volume each (read from one member, [`md::pick`]) and linear LVs
//! whose PVs are all present become volumes over their extents ([`lvm::logical_volumes`]);
//! they are probed and opened like partitions, in userspace only (nothing is assembled, so
//! there is no device node to mount).

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use crate::budget;
use crate::disk::{Disk, Slice};
use crate::entry::{self, BootList, EntryError, Found};
use crate::fs::mount::MountConfig;
use crate::fs::{self, BootFs};
use crate::partition::{self, Partition, Table};
use crate::probe::{self, FsInfo};
use crate::{lvm, md};

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
    /// For a RAID1 mirror or an LVM logical volume: the device the system names it by once
    /// assembled (`/dev/md/boot`, `/dev/mapper/vg-lv`), for details.
    pub device: Option<String>,
    /// For an ISO image read from a file of another volume: that file.
    pub iso: Option<entry::isofile::IsoOrigin>,
}

/// An md RAID member or LVM2 PV found on a volume, kept until its array or volume group can
/// be read.
struct StackMember {
    /// The member volume's name (`vda1`).
    name: String,
    slice: Slice,
    kind: MemberKind,
}

enum MemberKind {
    Md(md::Member),
    Pv(lvm::PvLabel),
}

/// All opened volumes.
#[derive(Default)]
pub struct Volumes {
    /// In discovery order.
    pub list: Vec<Volume>,
    /// Disks added so far, in the order they were added.
    disks: u32,
    /// Their names (`/dev/vda`, an image path), by disk index.
    disk_names: Vec<PathBuf>,
    /// Kernel mounts for filesystems without a userspace reader: only in the initramfs.
    mounts: Option<MountConfig>,
    /// md members and LVM PVs seen so far.
    members: Vec<StackMember>,
    /// md array UUIDs and LV ids already opened (or refused for good): listed once.
    stacked: BTreeSet<String>,
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
    /// `None` for a RAID1 mirror or an LV (no GRUB `hdN` position).
    disk_index: Option<u32>,
    partition: Option<Partition>,
    slice: crate::disk::Slice,
    /// The block device node to mount (the partition's own node); `None` for a mirror or
    /// an LV, which leapboot never assembles.
    node: Option<PathBuf>,
    /// `/dev/md/...` or `/dev/mapper/...` for a mirror or an LV.
    device: Option<String>,
}

/// What the parallel stage found for one candidate.
enum Probe {
    Skip,
    Member(MemberKind),
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

    /// Forgets every volume on the disk at `path` (it was removed), and the ISO image files
    /// read from those volumes. Returns the names of the volumes forgotten. A RAID1 mirror
    /// or an LV read through a member on that disk goes with it (its reads would fail).
    pub fn remove_disk(&mut self, path: &Path) -> Vec<String> {
        let mut gone: Vec<String> = self
            .list
            .iter()
            .filter(|v| v.disk == path)
            .map(|v| v.name.clone())
            .collect();
        gone.extend(
            self.list
                .iter()
                .filter(|v| v.iso.as_ref().is_some_and(|o| gone.contains(&o.volume)))
                .map(|v| v.name.clone())
                .collect::<Vec<_>>(),
        );
        self.list.retain(|v| !gone.contains(&v.name));
        gone
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
            device: None,
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
            self.disk_names.push(d.disk.path().to_owned());
            candidates.extend(self.candidates(d, disk_index));
        }
        let probed = probe_all(&candidates, self.mounts.as_ref());
        let first = self.list.len();
        for (c, p) in candidates.into_iter().zip(probed) {
            self.open_volume(c, p);
        }
        self.add_iso_files(first);
        // A mirror or LV may itself hold a PV (LVM on RAID1): a few rounds, bounded.
        for _ in 0..4 {
            let stacked = self.stacked_candidates();
            if stacked.is_empty() {
                break;
            }
            let probed = probe_all(&stacked, None);
            for (c, p) in stacked.into_iter().zip(probed) {
                self.open_volume(c, p);
            }
        }
    }

    /// RAID1 mirrors and linear LVs that the members seen so far make readable and that
    /// are not listed yet.
    fn stacked_candidates(&mut self) -> Vec<Candidate> {
        let mut out = Vec::new();
        let mut arrays: BTreeMap<[u8; 16], Vec<(usize, md::Member)>> = BTreeMap::new();
        for (i, m) in self.members.iter().enumerate() {
            if let MemberKind::Md(md) = &m.kind {
                arrays.entry(md.uuid).or_default().push((i, md.clone()));
            }
        }
        for (uuid, members) in arrays {
            let first = &members[0].1;
            let key = format!("md:{}", first.uuid_text());
            if self.stacked.contains(&key) {
                continue;
            }
            let name = first.volume_name();
            let names: Vec<&str> = members
                .iter()
                .map(|(i, _)| self.members[*i].name.as_str())
                .collect();
            if first.level != 1 {
                log::info!(
                    "{name}: md RAID{} array (members {}); only RAID1 mirrors are read; skipped",
                    first.level,
                    names.join(", ")
                );
                self.stacked.insert(key);
                continue;
            }
            let Some((i, m)) = md::pick(&members) else {
                log::warn!(
                    "{name}: no member of this RAID1 is in sync (members {}: spares or faulty); not read yet",
                    names.join(", ")
                );
                continue;
            };
            let member = &self.members[*i];
            log::info!(
                "{name}: RAID1 (md {}, uuid {}) read from member {} (present: {}; {} in the array), never assembled",
                m.version,
                m.uuid_text(),
                member.name,
                names.join(", "),
                m.raid_disks
            );
            let _ = uuid;
            self.stacked.insert(key);
            let slice = m.data(&member.slice);
            out.push(Candidate {
                device: Some(format!("/dev/{name}")),
                name,
                disk: slice.disk().clone(),
                disk_index: None,
                partition: None,
                slice,
                node: None,
            });
        }
        let pvs: Vec<(Slice, lvm::PvLabel)> = self
            .members
            .iter()
            .filter_map(|m| match &m.kind {
                MemberKind::Pv(l) => Some((m.slice.clone(), l.clone())),
                MemberKind::Md(_) => None,
            })
            .collect();
        if pvs.is_empty() {
            return out;
        }
        let found = lvm::logical_volumes(&pvs);
        for (name, why) in found.skipped {
            if self.stacked.insert(format!("lvm-skip:{name}:{why}")) {
                log::info!("{name}: LVM logical volume not read: {why}");
            }
        }
        for lv in found.volumes {
            let key = format!("lv:{}", lv.id);
            if !self.stacked.insert(key) {
                continue;
            }
            log::info!(
                "{}: LVM linear logical volume ({} bytes in {} piece(s)), read without device-mapper",
                lv.name,
                lv.slice.len(),
                lv.slice.piece_count()
            );
            out.push(Candidate {
                name: lv.name,
                disk: lv.slice.disk().clone(),
                disk_index: None,
                partition: None,
                slice: lv.slice,
                node: None,
                device: Some(lv.device),
            });
        }
        out
    }

    /// Puts the volumes in disk-name order, then partition order, as if every disk had been
    /// added at once in sorted order, and numbers the disks (GRUB's `hdN`) in that order:
    /// disks read one by one as they appear give the same list whatever order they came in.
    /// Directories (`--root`) stay after the disks, in their order.
    pub fn order_by_disk_name(&mut self) {
        let mut sorted: Vec<(PathBuf, u32)> = self.disk_names.iter().cloned().zip(0..).collect();
        sorted.sort();
        let renumber = |old: u32| {
            sorted
                .iter()
                .position(|(_, i)| *i == old)
                .and_then(|p| u32::try_from(p).ok())
        };
        for v in &mut self.list {
            v.disk_index = v.disk_index.and_then(renumber);
        }
        self.list
            .sort_by_key(|v| (v.disk_index.is_none(), v.disk_index.unwrap_or(0)));
        self.disk_names = sorted.into_iter().map(|(n, _)| n).collect();
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
                    device: None,
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
            disk_index: Some(disk_index),
            partition: None,
            slice: disk.slice(0, disk.size()),
            node: Some(disk.path().to_owned()),
            device: None,
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
        // Partitions that overlap an earlier one would read the same bytes again (four GPT
        // entries over one filesystem were four volumes with one UUID, each read whole):
        // the first one is read, the others are refused.
        let mut taken: Vec<(u64, u64, u32)> = Vec::new();
        for p in partitions {
            if iso && p.start == 0 {
                log::debug!("{disk_name}: partition {} is the ISO itself", p.number);
                continue;
            }
            let end = p.start.saturating_add(p.len);
            if let Some(&(_, _, first)) = taken
                .iter()
                .find(|&&(s, e, _)| p.start < e && s < end && p.len > 0)
            {
                log::warn!(
                    "{}: overlaps partition {first} of {disk_name}; not read (a damaged or hostile partition table)",
                    (d.part_name)(p.number)
                );
                continue;
            }
            taken.push((p.start, end, p.number));
            let name = (d.part_name)(p.number);
            out.push(Candidate {
                node: Some(dev.join(&name)),
                slice: disk.slice(p.start, p.len),
                name,
                disk: disk.clone(),
                disk_index: Some(disk_index),
                partition: Some(p),
                device: None,
            });
        }
        out
    }

    fn open_volume(&mut self, c: Candidate, probed: Probe) {
        let name = c.name;
        let (info, fs): (FsInfo, Box<dyn BootFs>) = match probed {
            Probe::Skip => return,
            Probe::Member(kind) => {
                self.members.push(StackMember {
                    name,
                    slice: c.slice,
                    kind,
                });
                return;
            }
            Probe::NeedsMount(info) if c.node.is_none() => {
                log::warn!(
                    "{name}: {} has no userspace reader and this volume has no device node to mount (md and LVM volumes are never assembled); skipped",
                    info.kind
                );
                return;
            }
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
                    Ok(Err(e)) => match (&self.mounts, &c.node) {
                        // ext4-view refuses some features (inline_data, casefold, meta_bg,
                        // journals without checksums): the kernel reads them, ro and noload.
                        (Some(m), Some(node)) if kind != probe::FsKind::Vfat => {
                            log::warn!("{name}: {e}; falling back to a read-only kernel mount");
                            match fs::mount::mount(&name, node, kind, m) {
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
            disk_index: c.disk_index,
            fs,
            device: c.device,
            iso: None,
        });
    }

    /// What parsers see of each volume: its files through `fs[i]` (the metered view).
    fn views<'a>(&'a self, fs: &'a [budget::Metered<'a>]) -> Vec<entry::VolumeView<'a>> {
        self.list
            .iter()
            .zip(fs)
            .map(|(v, fs)| entry::VolumeView {
                name: &v.name,
                fs,
                uuid: v.info.as_ref().and_then(|i| i.uuid.as_deref()),
                label: v.info.as_ref().and_then(|i| i.label.as_deref()),
                part_uuid: v.partition.as_ref().and_then(|p| p.part_uuid.as_deref()),
                part_type: v.partition.as_ref().and_then(|p| p.type_guid.as_deref()),
                grub_position: v
                    .disk_index
                    .map(|d| (d, v.partition.as_ref().map_or(0, |p| p.number))),
                root_fs: entry::is_root_fs(fs),
            })
            .collect()
    }

    /// Runs every format on every volume and merges the entries into one list, volume by
    /// volume, formats in [`entry::FORMATS`] order. A volume where no configuration yields
    /// an entry is scanned for kernels by name, less the kernels some configuration on any
    /// volume already offers ([`entry::bootdir::offered`]).
    ///
    /// GRUB runs first on every volume, so the volumes whose BLS entries a `grub.cfg` shows
    /// through `blscfg` (on any volume, before or after them) are known before the BLS
    /// format would list them again. Each format runs once per volume: the cost is linear in
    /// the number of volumes, whatever a hostile disk set holds.
    pub fn boot_list(&self) -> (BootList, Vec<EntryError>) {
        self.boot_list_within(budget::Limits::default())
    }

    /// [`Volumes::boot_list`] under `limits`: every parser reads through a
    /// [`budget::Metered`] view of its volume, runs under the volume's deadline, and what it
    /// found passes [`budget::VolumeMeter::admit`].
    pub fn boot_list_within(&self, limits: budget::Limits) -> (BootList, Vec<EntryError>) {
        self.scan(limits, &|_| true)
    }

    /// The volumes' identities, for [`crate::trust`].
    pub fn identities(&self) -> Vec<crate::trust::Identity> {
        self.list
            .iter()
            .map(|v| crate::trust::Identity {
                name: v.name.clone(),
                uuid: v.info.as_ref().and_then(|i| i.uuid.clone()),
                part_uuid: v.partition.as_ref().and_then(|p| p.part_uuid.clone()),
            })
            .collect()
    }

    /// [`Volumes::boot_list`] under `policy` ([`crate::trust::decide`]): in locked mode a
    /// volume the administrator does not trust sets neither the default nor the timeout,
    /// trusted volumes hold the bare ids, and the verdict says which entries may boot (the
    /// menu's [`crate::menu::state::Lock::trusted`] takes `verdict.trusted`).
    pub fn boot_list_trusted(
        &self,
        limits: budget::Limits,
        policy: &crate::trust::Policy,
    ) -> (BootList, Vec<EntryError>, crate::trust::Verdict) {
        let ids = self.identities();
        let (trusted, _) = crate::trust::trusted_volumes(&ids, policy);
        let configures = |volume: &str| !policy.locked || trusted.contains(volume);
        let (mut list, errors) = self.scan(limits, &configures);
        let verdict = crate::trust::decide(&mut list, &ids, policy);
        for p in &verdict.problems {
            log::warn!("{p}");
        }
        (list, errors, verdict)
    }

    /// The scan itself; `configures(volume)`: whether that volume's default and timeout count.
    fn scan(
        &self,
        limits: budget::Limits,
        configures: &dyn Fn(&str) -> bool,
    ) -> (BootList, Vec<EntryError>) {
        let scan = budget::Scan::new(limits);
        let meters: Vec<budget::VolumeMeter<'_>> =
            self.list.iter().map(|v| scan.volume(&v.name)).collect();
        let metered: Vec<budget::Metered<'_>> = self
            .list
            .iter()
            .zip(&meters)
            .map(|(v, meter)| budget::Metered {
                fs: v.fs.as_ref(),
                meter,
            })
            .collect();
        let views = self.views(&metered);
        let mut errors = Vec::new();
        let run = |format: entry::Format, f: entry::DiscoverFn, v: &entry::VolumeView<'_>| {
            let meter = meters.iter().find(|m| m.name() == v.name);
            let go = || {
                catch_unwind(AssertUnwindSafe(|| {
                    crate::fault::point("parser");
                    f(v, &views)
                }))
                .unwrap_or_else(|_| Found {
                    errors: vec![EntryError {
                        volume: v.name.to_string(),
                        file: "/".into(),
                        line: None,
                        message: format!("the {format:?} parser crashed on this volume"),
                    }],
                    ..Found::default()
                })
            };
            match meter {
                Some(m) => m.admit(m.run(go)),
                None => go(),
            }
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
        // Every configuration of every volume first: the plain scan of one volume must know
        // what the configurations of all of them offer.
        let mut per_volume: Vec<Vec<Found>> = Vec::with_capacity(views.len());
        for ((v, grub), vol) in views.iter().zip(&mut grub).zip(&self.list) {
            let mut founds = Vec::new();
            // An ISO image file: its own convention (loopback.cfg, or its config plus the
            // distribution's parameter for finding the ISO), not the formats' search.
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
                founds.push(found);
                per_volume.push(founds);
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
                let mut found = found;
                if !configures(v.name) && (found.default.is_some() || found.timeout.is_some()) {
                    log::info!(
                        "{}: not a trusted volume: its default and timeout are ignored in locked mode",
                        v.name
                    );
                    found.default = None;
                    found.timeout = None;
                }
                founds.push(found);
            }
            per_volume.push(founds);
        }
        let scanned: Vec<Option<Found>> = {
            let configured = per_volume.iter().flatten().flat_map(|f| &f.entries);
            let offered = entry::bootdir::offered::Offered::new(configured, &views);
            views
                .iter()
                .zip(&per_volume)
                .map(|(v, founds)| {
                    if founds.iter().any(|f| !f.entries.is_empty()) {
                        return None;
                    }
                    let mut found = run(entry::Format::Bootdir, entry::bootdir::discover, v);
                    found.entries.retain(|e| match offered.offering(e) {
                        Some(by) => {
                            log::info!(
                                "{}:{}: kernel {} is already offered by entry '{}' ({}:{}); the plain scan does not list it again",
                                v.name,
                                e.kernel.path,
                                e.version.as_deref().unwrap_or(&e.id),
                                by.id,
                                by.source.volume,
                                by.source.file
                            );
                            false
                        }
                        None => true,
                    });
                    Some(found)
                })
                .collect()
        };
        let mut list = BootList::default();
        for found in per_volume
            .into_iter()
            .zip(scanned)
            .flat_map(|(founds, scanned)| founds.into_iter().chain(scanned))
        {
            errors.extend(found.errors.iter().cloned());
            list.merge(found);
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
        Ok(Ok(probe::Probed::Other(o))) if o.kind == "linux_raid_member" => {
            return match catch_unwind(AssertUnwindSafe(|| md::read(&c.slice))) {
                Ok(Ok(Some(Ok(m)))) => {
                    log::info!(
                        "{name}: md RAID{} member (superblock {}, array {}, uuid {}{})",
                        m.level,
                        m.version,
                        m.volume_name(),
                        m.uuid_text(),
                        if m.in_sync { "" } else { ", not in sync" }
                    );
                    Probe::Member(MemberKind::Md(m))
                }
                Ok(Ok(Some(Err(e)))) => {
                    log::error!("{name}: {e}; the md member is not trusted, skipped");
                    Probe::Skip
                }
                Ok(Ok(None)) => Probe::Skip,
                Ok(Err(e)) => {
                    log::error!("{name}: cannot read the md superblock: {e}");
                    Probe::Skip
                }
                Err(_) => {
                    log::error!("{name}: the md superblock reader crashed on this volume; skipped");
                    Probe::Skip
                }
            };
        }
        Ok(Ok(probe::Probed::Other(o))) if o.kind == "LVM2_member" => {
            return match catch_unwind(AssertUnwindSafe(|| lvm::read_pv(&c.slice))) {
                Ok(Ok(Some(l))) => {
                    match &l.vg {
                        Some(vg) => log::info!(
                            "{name}: LVM2 physical volume {} of volume group {} (metadata seqno {})",
                            l.uuid,
                            vg.name.escape_debug(),
                            vg.seqno
                        ),
                        None => log::info!("{name}: LVM2 physical volume {} without metadata", l.uuid),
                    }
                    Probe::Member(MemberKind::Pv(l))
                }
                Ok(Ok(None)) => Probe::Skip,
                Ok(Err(e)) => {
                    log::error!("{name}: LVM2 physical volume: {e}; skipped");
                    Probe::Skip
                }
                Err(_) => {
                    log::error!("{name}: the LVM reader crashed on this volume; skipped");
                    Probe::Skip
                }
            };
        }
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
    match (mounts, &c.node) {
        (Some(m), Some(node)) => {
            let r = catch_unwind(AssertUnwindSafe(|| {
                fs::mount::mount(name, node, info.kind, m)
            }))
            .unwrap_or_else(|_| Err(fs::OpenError("the mount code crashed".into())));
            Probe::Mounted(info, r)
        }
        _ => Probe::NeedsMount(info),
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
    fn a_removed_disk_takes_its_volumes_and_entries_with_it() {
        let esp = |id: &str| {
            fat_volume(
                16 << 20,
                &[
                    (&format!("loader/entries/{id}.conf"), ENTRY),
                    ("vmlinuz", b"K"),
                ],
            )
        };
        let a = gpt_image(&[(types::ESP, esp("a"))]);
        let b = gpt_image(&[(types::ESP, esp("b"))]);
        let (da, db) = (Disk::open(a.path()).unwrap(), Disk::open(b.path()).unwrap());
        let mut v = Volumes::default();
        v.add_disk(&da, "a", &|n| format!("a{n}"));
        v.add_disk(&db, "b", &|n| format!("b{n}"));
        assert_eq!(v.boot_list().0.entries.len(), 2);
        assert_eq!(v.remove_disk(b.path()), vec!["b1".to_string()]);
        let ids: Vec<String> = v.boot_list().0.entries.into_iter().map(|e| e.id).collect();
        assert_eq!(ids, vec!["a".to_string()]);
        assert!(v.remove_disk(b.path()).is_empty(), "already gone");
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
            let crc = crate::partition::crc32(&bytes[at..at + 92]);
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

    /// A machine as directories (`testdata/machines/<name>/<dir>/`, identities in
    /// `volumes.json`), listed as the pipeline lists it, against `expected.json` beside it.
    /// `UPDATE_EXPECT=1` rewrites the files (review the diff).
    #[test]
    fn real_world_machines() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/entry/testdata/machines");
        let mut n = 0;
        for d in std::fs::read_dir(&base).unwrap() {
            let d = d.unwrap().path();
            let Ok(spec) = std::fs::read(d.join("volumes.json")) else {
                continue;
            };
            n += 1;
            let spec: Vec<serde_json::Value> = serde_json::from_slice(&spec).unwrap();
            let mut vols = Volumes::default();
            for v in &spec {
                let s = |k: &str| v[k].as_str().map(str::to_string);
                let kind = match v["fs"].as_str() {
                    Some("vfat") => probe::FsKind::Vfat,
                    _ => probe::FsKind::Ext4,
                };
                vols.list.push(Volume {
                    name: s("name").unwrap(),
                    disk: d.clone(),
                    partition: v["partition"].as_u64().map(|number| Partition {
                        number: number as u32,
                        start: 0,
                        len: 0,
                        part_uuid: s("partuuid"),
                        type_guid: s("parttype"),
                        mbr_type: None,
                        label: None,
                    }),
                    info: Some(FsInfo {
                        kind,
                        uuid: s("uuid"),
                        label: s("label"),
                    }),
                    disk_index: v["disk"].as_u64().map(|i| i as u32),
                    fs: Box::new(fs::dir::DirFs::new(&d.join(v["dir"].as_str().unwrap()))),
                    device: None,
                    iso: None,
                });
            }
            let (list, errors) = vols.boot_list();
            let got = serde_json::json!({
                "default": list.default_entry().map(|i| &list.entries[i].id),
                "timeout": list.timeout,
                "entries": list.entries.iter().map(|e| serde_json::json!({
                    "id": e.id,
                    "title": e.title,
                    "version": e.version,
                    "kernel": e.kernel.to_string(),
                    "initrds": e.initrds.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
                    "cmdline": e.cmdline,
                    "format": e.format,
                    "source": format!("{}:{}", e.source.volume, e.source.file),
                })).collect::<Vec<_>>(),
                "errors": errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            });
            let file = d.join("expected.json");
            if std::env::var_os("UPDATE_EXPECT").is_some() {
                std::fs::write(&file, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
                continue;
            }
            let want: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
            assert_eq!(
                got,
                want,
                "{}: got\n{}",
                d.display(),
                serde_json::to_string_pretty(&got).unwrap()
            );
        }
        assert!(n > 0, "no machines in {}", base.display());
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

    fn fixture_disk(path: &str, name: &str) -> Disk {
        let text =
            std::fs::read_to_string(format!("{}/src/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        Disk::from_bytes(name, crate::testutil::sparse_image(&text))
    }

    fn add(v: &mut Volumes, disks: &[(&Disk, &str)]) {
        let refs: Vec<DiskRef<'_>> = disks
            .iter()
            .map(|(d, n)| DiskRef {
                disk: d,
                name: n,
                part_name: &|k| format!("p{k}"),
            })
            .collect();
        v.add_disks(&refs);
    }

    #[test]
    fn a_raid1_pair_is_one_volume_read_from_one_member_and_one_member_is_enough() {
        for version in ["v0.90", "v1.0", "v1.1", "v1.2"] {
            let a = fixture_disk(&format!("md/testdata/{version}-m0.sparse"), "vda");
            let b = fixture_disk(&format!("md/testdata/{version}-m1.sparse"), "vdb");
            let mut v = Volumes::default();
            add(&mut v, &[(&a, "vda"), (&b, "vdb")]);
            let names: Vec<&str> = v.list.iter().map(|v| v.name.as_str()).collect();
            let want = if version == "v0.90" { "md0" } else { "md/boot" };
            assert_eq!(names, [want], "{version}");
            assert_eq!(
                v.list[0].device.as_deref(),
                Some(format!("/dev/{want}").as_str())
            );
            let (list, _) = v.boot_list();
            assert_eq!(list.entries.len(), 1, "{version}");
            assert_eq!(list.entries[0].title, "On RAID1");
            // The second member arriving later (a late disk) does not list the mirror again.
            let mut v = Volumes::default();
            add(&mut v, &[(&b, "vdb")]);
            add(&mut v, &[(&a, "vda")]);
            assert_eq!(v.list.len(), 1, "{version}");
        }
        // Other levels are skipped.
        let a = fixture_disk("md/testdata/raid0-m0.sparse", "vda");
        let b = fixture_disk("md/testdata/raid0-m1.sparse", "vdb");
        let mut v = Volumes::default();
        add(&mut v, &[(&a, "vda"), (&b, "vdb")]);
        assert!(v.list.is_empty());
    }

    #[test]
    fn an_lvm_volume_group_over_two_disks_gives_its_linear_lvs_as_volumes() {
        let a = fixture_disk("lvm/testdata/span-pv0.sparse", "vda");
        let b = fixture_disk("lvm/testdata/span-pv1.sparse", "vdb");
        let mut v = Volumes::default();
        add(&mut v, &[(&a, "vda")]);
        // vg0/boot spans both PVs: not yet; vg0/root is all on the second.
        assert!(v.list.is_empty());
        add(&mut v, &[(&b, "vdb")]);
        let names: Vec<(&str, Option<&str>)> = v
            .list
            .iter()
            .map(|v| (v.name.as_str(), v.device.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("vg0/boot", Some("/dev/mapper/vg0-boot")),
                ("vg0/root", Some("/dev/mapper/vg0-root"))
            ]
        );
        let (list, _) = v.boot_list();
        assert_eq!(list.entries[0].title, "On LVM");
        let fs = v.fs(&list.entries[0].kernel.volume).unwrap();
        assert_eq!(
            fs.read(&list.entries[0].kernel.path, 100).unwrap(),
            b"LVM-KERNEL"
        );
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

    #[test]
    fn disks_read_one_by_one_are_ordered_as_if_read_at_once() {
        let esp = |t: &str| {
            let conf = format!("title {t}\nlinux /vmlinuz\n");
            (
                types::ESP,
                fat_volume(1 << 20, &[("loader/entries/e.conf", conf.as_bytes())]),
            )
        };
        // Image paths sort as the disks' names would: the tempfile names are random, so
        // which one sorts first decides the expected order.
        let a = gpt_image(&[esp("a1"), esp("a2")]);
        let b = gpt_image(&[esp("b1")]);
        let (first, second) = if a.path() < b.path() {
            (&a, &b)
        } else {
            (&b, &a)
        };
        let d_first = Disk::open(first.path()).unwrap();
        let d_second = Disk::open(second.path()).unwrap();
        let n1 = |n: u32| format!("first:{n}");
        let n2 = |n: u32| format!("second:{n}");
        let mut v = Volumes::default();
        // The second disk appears (and is read) before the first.
        v.add_disk(&d_second, "second", &n2);
        v.add_disk(&d_first, "first", &n1);
        v.order_by_disk_name();
        let names: Vec<&str> = v.list.iter().map(|v| v.name.as_str()).collect();
        let grub: Vec<u32> = v.list.iter().filter_map(|v| v.disk_index).collect();
        let n_first = if first.path() == a.path() { 2 } else { 1 };
        let mut want: Vec<String> = (1..=n_first).map(|i| format!("first:{i}")).collect();
        want.extend((1..=3 - n_first).map(|i| format!("second:{i}")));
        assert_eq!(names, want);
        let mut want_grub = vec![0; n_first as usize];
        want_grub.extend(vec![1; 3 - n_first as usize]);
        assert_eq!(grub, want_grub);
    }

    /// Issue 11: 1024 hard links to one 1 MiB BLS entry reached 1 GB RSS. Made with the real
    /// `ln` (hard_link) and `mkfs.ext4 -d`: the volume's read budget ends the scan of it, and
    /// what was read is listed.
    #[test]
    fn bls_hard_links_stay_within_the_volume_read_budget() {
        let stage = tempfile::tempdir().unwrap();
        let dir = stage.path().join("loader/entries");
        std::fs::create_dir_all(&dir).unwrap();
        let mut entry = String::from("title T\nlinux /vmlinuz\noptions quiet\n");
        while entry.len() < (1 << 20) - 64 {
            entry.push_str("# padding padding padding padding padding padding padding\n");
        }
        std::fs::write(dir.join("e0000.conf"), &entry).unwrap();
        for i in 1..1024 {
            std::fs::hard_link(dir.join("e0000.conf"), dir.join(format!("e{i:04}.conf"))).unwrap();
        }
        let img = tempfile::NamedTempFile::new().unwrap();
        img.as_file().set_len(32 << 20).unwrap();
        let ok = std::process::Command::new("/usr/sbin/mkfs.ext4")
            .args(["-q", "-F", "-d"])
            .arg(stage.path())
            .arg(img.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "mkfs.ext4 -d");
        let disk = Disk::open(img.path()).unwrap();
        let mut v = Volumes::default();
        v.add_disk(&disk, "img", &|n| format!("img:{n}"));
        let limits = budget::Limits {
            volume_read: 8 << 20,
            ..budget::Limits::default()
        };
        let (list, errors) = v.boot_list_within(limits);
        assert!(
            (6..=8).contains(&list.entries.len()),
            "{} entries",
            list.entries.len()
        );
        assert!(
            errors.iter().any(|e| e.message.contains("read budget")),
            "{errors:?}"
        );
    }

    /// Rewrites the GPT entries `from..` of `img` to cover entry 0's range, with correct CRCs
    /// in both headers: a table whose partitions overlap (four views of one filesystem).
    fn overlap_gpt_entries(img: &mut [u8], from: usize) {
        let len = img.len();
        for hdr in [512usize, len - 512] {
            let u32_at =
                |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
            let lba = u64::from_le_bytes(img[hdr + 72..hdr + 80].try_into().unwrap()) as usize;
            let (n, size) = (
                u32_at(img, hdr + 80) as usize,
                u32_at(img, hdr + 84) as usize,
            );
            let arr = lba * 512;
            let first: [u8; 16] = img[arr + 32..arr + 48].try_into().unwrap();
            let mut i = from;
            while i < n
                && img[arr + i * size..arr + i * size + 16]
                    .iter()
                    .any(|&b| b != 0)
            {
                img[arr + i * size + 32..arr + i * size + 48].copy_from_slice(&first);
                i += 1;
            }
            let crc = crate::partition::crc32(&img[arr..arr + n * size]);
            img[hdr + 88..hdr + 92].copy_from_slice(&crc.to_le_bytes());
            let hsize = u32_at(img, hdr + 12) as usize;
            img[hdr + 16..hdr + 20].fill(0);
            let crc = crate::partition::crc32(&img[hdr..hdr + hsize]);
            img[hdr + 16..hdr + 20].copy_from_slice(&crc.to_le_bytes());
        }
    }

    /// Issue 11: a GPT with four partitions covering one filesystem reached 4 GB (four
    /// volumes, one UUID, each read whole). The first is read; the others are refused.
    #[test]
    fn overlapping_partitions_are_read_once() {
        let parts: Vec<(&str, Vec<u8>)> = (0..4)
            .map(|_| {
                (
                    types::ESP,
                    fat_volume(1 << 20, &[("loader/entries/e.conf", ENTRY)]),
                )
            })
            .collect();
        let img = gpt_image(&parts);
        let mut bytes = std::fs::read(img.path()).unwrap();
        overlap_gpt_entries(&mut bytes, 1);
        let disk = Disk::from_bytes("img", bytes);
        let table = partition::read(&disk).unwrap();
        assert!(
            matches!(&table, Table::Gpt { partitions, .. } if partitions.len() == 4
                && partitions.iter().all(|p| p.start == partitions[0].start)),
            "the fixture overlaps"
        );
        let mut v = Volumes::default();
        v.add_disk(&disk, "img", &|n| format!("img:{n}"));
        let names: Vec<&str> = v.list.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["img:1"]);
        let (list, _) = v.boot_list();
        assert_eq!(list.entries.len(), 1);
    }

    /// Issue 11's locked-mode bypass, end to end through the pipeline: a stick (the first
    /// disk) whose grub.cfg sets `timeout=0`, `default=debian` and an entry titled like the
    /// real one that boots the real kernel (`root=(hd1,gpt1)`) with `init=/bin/sh`.
    #[test]
    fn locked_mode_stick_cannot_set_the_default_or_boot_an_allowed_title() {
        let stick = fat_volume(
            4 << 20,
            &[(
                "boot/grub/grub.cfg",
                b"set timeout=0\nset default=debian\nmenuentry 'Debian GNU/Linux' --id debian {\n set root=(hd1,gpt1)\n linux /vmlinuz rw init=/bin/sh\n}\n",
            )],
        );
        let real = ext4_volume(
            8 << 20,
            &[
                (
                    "loader/entries/debian.conf",
                    b"title Debian GNU/Linux\nlinux /vmlinuz\noptions root=/dev/vda2 ro\n",
                ),
                ("vmlinuz", b"K"),
            ],
        );
        let a = gpt_image(&[(types::ESP, stick)]);
        let b = gpt_image(&[(types::XBOOTLDR, real)]);
        let disks = [Disk::open(a.path()).unwrap(), Disk::open(b.path()).unwrap()];
        let mut v = Volumes::default();
        let (na, nb) = (|n: u32| format!("usb{n}"), |n: u32| format!("vda{n}"));
        v.add_disks(&[
            DiskRef {
                disk: &disks[0],
                name: "usb",
                part_name: &na,
            },
            DiskRef {
                disk: &disks[1],
                name: "vda",
                part_name: &nb,
            },
        ]);
        let uuid = v.list[1]
            .info
            .as_ref()
            .and_then(|i| i.uuid.clone())
            .unwrap();
        let policy = crate::trust::Policy {
            locked: true,
            allowed: vec!["Debian GNU/Linux*".into()],
            trusted_volumes: vec![format!("UUID={uuid}")],
            allow_devices_set: false,
        };
        // Unprotected, the attack works: the stick's entry is the default, timeout 0.
        let (open, _) = v.boot_list();
        assert_eq!(open.entries[open.default.unwrap()].source.volume, "usb1");
        assert_eq!(open.timeout, Some(crate::entry::Timeout::Secs(0)));
        let (list, _, verdict) = v.boot_list_trusted(budget::Limits::default(), &policy);
        let got: Vec<(&str, &str, bool)> = list
            .entries
            .iter()
            .zip(&verdict.allowed)
            .map(|(e, &ok)| (e.id.as_str(), e.source.volume.as_str(), ok))
            .collect();
        assert_eq!(
            got,
            [("debian@usb1", "usb1", false), ("debian", "vda1", true)]
        );
        assert_eq!(list.default, None, "the stick may not set the default");
        assert_eq!(list.timeout, None, "nor the timeout");
        // The menu, given the verdict, boots only the real entry.
        let mut lock = crate::menu::state::Lock {
            locked: true,
            allowed: policy.allowed.clone(),
            ..Default::default()
        };
        lock.trusted = Some(verdict.trusted.clone());
        let m = crate::menu::state::Menu::new(
            list.entries.clone(),
            list.default,
            crate::entry::Timeout::Secs(0),
            lock,
        );
        assert_eq!(m.boot_order(), vec![1]);
    }
}
