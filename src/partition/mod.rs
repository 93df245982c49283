//! Partition tables: what volumes a disk holds.
//!
//! [`read`] returns the partitions of a disk. A disk without a recognised table is returned as
//! [`Table::None`] and the caller probes the whole disk for a filesystem. Everything here is
//! bounded: a hostile table can make a disk show no partitions, never hang or crash.
//!
//! Order, as Linux and blkid decide: a valid GPT wins (a hybrid MBR beside it is logged and
//! ignored); a protective MBR without a usable GPT gives no partitions; otherwise a DOS MBR
//! (primary + logical partitions); otherwise no table. Partitions inside an ISO9660 hybrid
//! image are just an MBR or GPT that happens to sit in the ISO's system area; the pipeline
//! adds the ISO9660 filesystem of the whole disk beside them.

mod gpt;
#[cfg(test)]
pub(crate) use gpt::crc32;
pub mod mbr;

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
    /// PARTUUID as Linux reports it: the GPT unique partition GUID (lower case), or for MBR
    /// `<disk signature hex8>-<partition number hex2>`.
    pub part_uuid: Option<String>,
    /// GPT partition type GUID, lower case.
    pub type_guid: Option<String>,
    /// MBR partition type byte.
    pub mbr_type: Option<u8>,
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
    /// A DOS/MBR partition table.
    Mbr {
        /// The disk signature (bytes 440..444) as 8 hex digits, as in PARTUUIDs.
        signature: String,
        /// Primary partitions (1-4), then logical ones (5...) in chain order.
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

impl Table {
    /// The partitions (none for [`Table::None`]).
    pub fn partitions(&self) -> &[Partition] {
        match self {
            Table::Gpt { partitions, .. } | Table::Mbr { partitions, .. } => partitions,
            Table::None => &[],
        }
    }

    /// `gpt`, `dos` or `none` (blkid's PTTYPE names).
    pub fn kind(&self) -> &'static str {
        match self {
            Table::Gpt { .. } => "gpt",
            Table::Mbr { .. } => "dos",
            Table::None => "none",
        }
    }
}

/// Reads the partition table of `disk`.
pub fn read(disk: &Disk) -> Result<Table, PartitionError> {
    let name = disk.path().display().to_string();
    let mut sector0 = vec![0u8; disk.sector_size() as usize];
    if disk.size() < u64::from(disk.sector_size()) {
        return Ok(Table::None);
    }
    disk.read_exact_at(0, &mut sector0)
        .map_err(|source| PartitionError::Io {
            disk: name.clone(),
            source,
        })?;
    let kind = mbr::classify(&sector0);
    if let Some(table) = gpt::read(disk)? {
        match kind {
            mbr::Kind::Hybrid => {
                log::info!("{name}: hybrid MBR beside the GPT; the GPT is used, as Linux does")
            }
            mbr::Kind::Dos | mbr::Kind::Invalid(_) => {
                log::info!("{name}: a GPT without a protective MBR; the GPT is used")
            }
            mbr::Kind::NotMbr | mbr::Kind::Protective => {}
        }
        return Ok(table);
    }
    match kind {
        mbr::Kind::NotMbr => Ok(Table::None),
        mbr::Kind::Invalid(why) => {
            log::info!("{name}: {why}");
            Ok(Table::None)
        }
        mbr::Kind::Protective | mbr::Kind::Hybrid => Err(PartitionError::Invalid {
            disk: name,
            message: "protective MBR (type 0xEE) but no GPT header, primary or backup".into(),
        }),
        mbr::Kind::Dos => {
            let (signature, partitions) = mbr::read(disk, &sector0)?;
            Ok(Table::Mbr {
                signature,
                partitions,
            })
        }
    }
}

/// Whether the GPT header at `lba` (and its entry array) passes every check; the reason if
/// not. For tests and diagnostics.
pub fn gpt_header_is_valid(disk: &Disk, lba: u64) -> Result<(), String> {
    gpt::check(disk, lba)
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
