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
    /// The read-only view of its files.
    pub fs: Box<dyn BootFs>,
}

/// All opened volumes.
#[derive(Default)]
pub struct Volumes {
    /// In discovery order.
    pub list: Vec<Volume>,
}

impl Volumes {
    /// The filesystem of volume `name`.
    pub fn fs(&self, name: &str) -> Option<&dyn BootFs> {
        self.list.iter().find(|v| v.name == name).map(|v| v.fs.as_ref())
    }

    /// Adds a directory of the host as a volume (`leapboot list --root DIR`).
    pub fn add_dir(&mut self, root: &Path) {
        self.list.push(Volume {
            name: root.display().to_string(),
            disk: root.to_owned(),
            partition: None,
            info: None,
            fs: Box::new(fs::dir::DirFs::new(root)),
        });
    }

    /// Reads `disk`'s partition table and opens every volume with a filesystem leapboot can
    /// read. `part_name` names partition N (`vda` → `vda1`).
    pub fn add_disk(&mut self, disk: &Disk, disk_name: &str, part_name: &dyn Fn(u32) -> String) {
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
            Table::Gpt { partitions, .. } => {
                log::info!("{disk_name}: GPT with {} partition(s)", partitions.len());
                for p in partitions {
                    let name = part_name(p.number);
                    let slice = disk.slice(p.start, p.len);
                    self.open_volume(name, disk, Some(p), slice);
                }
            }
            Table::None => {
                self.open_volume(disk_name.to_string(), disk, None, disk.slice(0, disk.size()));
            }
        }
    }

    fn open_volume(&mut self, name: String, disk: &Disk, partition: Option<Partition>, slice: crate::disk::Slice) {
        let info = match probe::probe(&slice) {
            Ok(Some(info)) => info,
            Ok(None) => {
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
                    info.label.as_deref().map(|l| format!(" label={l}")).unwrap_or_default(),
                    info.uuid.as_deref().map(|u| format!(" uuid={u}")).unwrap_or_default()
                );
                self.list.push(Volume {
                    name,
                    disk: disk.path().to_owned(),
                    partition,
                    info: Some(info),
                    fs,
                });
            }
            Ok(Err(e)) => log::error!("{name}: cannot open the {kind} filesystem: {e}"),
            Err(_) => log::error!("{name}: the {kind} reader crashed on this volume; skipped"),
        }
    }

    /// Parses every format on every volume and merges the entries into one list.
    pub fn boot_list(&self) -> (BootList, Vec<EntryError>) {
        let mut list = BootList::default();
        let mut errors = Vec::new();
        for v in &self.list {
            let found = catch_unwind(AssertUnwindSafe(|| entry::bls::discover(&v.name, v.fs.as_ref())));
            match found {
                Ok(found) => {
                    errors.extend(found.errors.iter().cloned());
                    list.merge(found);
                }
                Err(_) => errors.push(EntryError {
                    volume: v.name.clone(),
                    file: "/loader/entries".into(),
                    line: None,
                    message: "the Boot Loader Spec parser crashed on this volume".into(),
                }),
            }
        }
        (list, errors)
    }
}
