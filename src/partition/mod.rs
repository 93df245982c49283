//! Partition tables: what volumes a disk holds.
//!
//! [`read`] returns the partitions of a disk. A disk without a recognised table is returned as
//! [`Table::None`] and the caller probes the whole disk for a filesystem. Everything here is
//! bounded: a hostile table can make a disk show no partitions, never hang or crash.

mod gpt;

use crate::disk::Disk;

/// One partition, in bytes from the start of its disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// The kernel's partition number (1-based), as in `/dev/vda2`.
    pub number: u32,
    /// Byte offset on the disk.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// GPT unique partition GUID (PARTUUID), lower case.
    pub part_uuid: Option<String>,
    /// GPT partition type GUID, lower case.
    pub type_guid: Option<String>,
    /// GPT partition name.
    pub label: Option<String>,
}

/// What partition table a disk has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Table {
    /// A GUID Partition Table.
    Gpt {
        /// The disk GUID.
        disk_guid: String,
        /// Its partitions, ordered by number.
        partitions: Vec<Partition>,
    },
    /// No partition table leapboot recognises: the whole disk may hold a filesystem.
    None,
}

/// Errors reading a partition table.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each variant is documented by its message
pub enum PartitionError {
    #[error("{disk}: {message}")]
    Invalid { disk: String, message: String },
    #[error("{disk}: read error: {source}")]
    Io {
        disk: String,
        source: std::io::Error,
    },
}

/// Reads the partition table of `disk`.
pub fn read(disk: &Disk) -> Result<Table, PartitionError> {
    match gpt::read(disk)? {
        Some(table) => Ok(table),
        None => Ok(Table::None),
    }
}

/// Well-known GPT partition type GUIDs.
pub mod types {
    /// EFI System Partition.
    pub const ESP: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
    /// Extended Boot Loader Partition (Boot Loader Specification `$BOOT`).
    pub const XBOOTLDR: &str = "bc13c2ff-59e6-4262-a352-b275fd6f7172";
    /// Linux filesystem data.
    pub const LINUX_FS: &str = "0fc63daf-8483-4772-8e79-3d69d8477de4";
}
