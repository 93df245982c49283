//! The one pipeline both front ends use: disks → partition tables → probed volumes → opened
//! read-only → boot entries → one merged list.
//!
//! Each volume is handled in isolation: an error or even a panic in a filesystem or table
//! reader on a hostile disk loses that volume (logged), never the others.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use crate::disk::Disk;
use crate::entry::{self, BootList, EntryError};
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
}

/// All opened volumes.
#[derive(Default)]
pub struct Volumes {
    /// In discovery order.
    pub list: Vec<Volume>,
    /// Disks added so far.
    disks: u32,
}

impl Volumes {
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
        });
    }

    /// Reads `disk`'s partition table and opens every volume with a filesystem leapboot can
    /// read. `part_name` names partition N (`vda` → `vda1`).
    pub fn add_disk(&mut self, disk: &Disk, disk_name: &str, part_name: &dyn Fn(u32) -> String) {
        let disk_index = self.disks;
        self.disks += 1;
        let table = match catch_unwind(AssertUnwindSafe(|| partition::read(disk))) {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                log::error!("{e}; the disk is skipped");
                return;
            }
            Err(_) => {
                log::error!("{disk_name}: the partition table reader crashed; the disk is skipped");
                return;
            }
        };
        match table {
            Table::Gpt { partitions, .. } | Table::Mbr { partitions, .. } => {
                log::info!("{disk_name}: GPT with {} partition(s)", partitions.len());
                for p in partitions {
                    let name = part_name(p.number);
                    let slice = disk.slice(p.start, p.len);
                    self.open_volume(name, disk, disk_index, Some(p), slice);
                }
            }
            Table::None => {
                self.open_volume(
                    disk_name.to_string(),
                    disk,
                    disk_index,
                    None,
                    disk.slice(0, disk.size()),
                );
            }
        }
    }

    fn open_volume(
        &mut self,
        name: String,
        disk: &Disk,
        disk_index: u32,
        partition: Option<Partition>,
        slice: crate::disk::Slice,
    ) {
        let info = match probe::probe(&slice) {
            Ok(probe::Probed::Fs(info)) => info,
            Ok(probe::Probed::Other(o)) => {
                log::info!("{name}: {}; not a boot volume, skipped", o.detail);
                return;
            }
            Ok(probe::Probed::Unknown) => {
                if partition.is_none() {
                    log::info!("{name}: no partition table and no known filesystem; skipped");
                } else {
                    log::debug!("{name}: no known filesystem");
                }
                return;
            }
            Err(e) => {
                log::error!("{name}: cannot read: {e}");
                return;
            }
        };
        let kind = info.kind;
        match catch_unwind(AssertUnwindSafe(|| fs::open(slice, kind))) {
            Ok(Ok(fs)) => {
                log::info!(
                    "{name}: {kind}{}{}",
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
                    disk: disk.path().to_owned(),
                    partition,
                    info: Some(info),
                    disk_index: Some(disk_index),
                    fs,
                });
            }
            Ok(Err(e)) => log::error!("{name}: cannot open the {kind} filesystem: {e}"),
            Err(_) => log::error!("{name}: the {kind} reader crashed on this volume; skipped"),
        }
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
            })
            .collect()
    }

    /// Runs every format on every volume and merges the entries into one list. A volume where
    /// no configuration yields an entry is scanned for kernels by name.
    pub fn boot_list(&self) -> (BootList, Vec<EntryError>) {
        let views = self.views();
        let mut list = BootList::default();
        let mut errors = Vec::new();
        let mut run = |format: entry::Format,
                       f: entry::DiscoverFn,
                       v: &entry::VolumeView<'_>,
                       list: &mut BootList|
         -> usize {
            match catch_unwind(AssertUnwindSafe(|| f(v, &views))) {
                Ok(found) => {
                    errors.extend(found.errors.iter().cloned());
                    let n = found.entries.len();
                    list.merge(found);
                    n
                }
                Err(_) => {
                    errors.push(EntryError {
                        volume: v.name.to_string(),
                        file: "/".into(),
                        line: None,
                        message: format!("the {format:?} parser crashed on this volume"),
                    });
                    0
                }
            }
        };
        for v in &views {
            let mut found = 0;
            for (format, f) in entry::FORMATS {
                found += run(*format, *f, v, &mut list);
            }
            if found == 0 {
                run(
                    entry::Format::Bootdir,
                    entry::bootdir::discover,
                    v,
                    &mut list,
                );
            }
        }
        (list, errors)
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
        bytes[512 + 100] ^= 0xFF; // inside the primary header: its CRC no longer matches
        std::fs::write(img.path(), &bytes).unwrap();
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
}
