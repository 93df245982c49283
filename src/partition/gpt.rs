//! GPT, read with the `gpt` crate behind a guard.
//!
//! The `gpt` crate parses the partition entries, but trusts the header more than a bootloader
//! reading disks anyone could have written may: it asserts (panics) when the entry size is not
//! 128 and loops over an unbounded entry count, and it does not check the entry-array CRC. So
//! [`check_header`] validates a header completely first (signature, size, header CRC, entry size,
//! entry count bound, entry-array CRC) and the crate only ever sees a disk whose chosen header
//! passed. When the primary header fails and the backup passes, the backup is used and the
//! reason is logged.

use super::{Partition, PartitionError, Table};
use crate::disk::Disk;

/// The CRC-32 of GPT headers and entry arrays (IEEE 802.3, as zlib's), with the same
/// crate the `gpt` crate uses: one table in the binary, not two.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    CRC.checksum(data)
}

/// Entry arrays larger than this are refused (the spec's minimum is 128 entries of 128 bytes;
/// no real tool writes more than a few hundred).
const MAX_ENTRIES: u32 = 1024;
const ENTRY_SIZE: u32 = 128;

/// Reads a GPT from `disk`. `Ok(None)`: the disk has no GPT signature at all.
pub(super) fn read(disk: &Disk) -> Result<Option<Table>, PartitionError> {
    let lb = u64::from(disk.sector_size());
    let name = disk.path().display().to_string();
    let io = |source| PartitionError::Io {
        disk: name.clone(),
        source,
    };
    let invalid = |message: String| PartitionError::Invalid {
        disk: name.clone(),
        message,
    };
    if disk.size() < lb * 3 {
        return Ok(None);
    }
    let last_lba = disk.size() / lb - 1;
    let primary = check_header(disk, 1, lb);
    let backup = || check_header(disk, last_lba, lb);
    let header = match primary {
        Ok(h) => h,
        Err(HeaderProblem::NoSignature) => match backup() {
            Ok(h) => {
                log::warn!(
                    "{name}: no primary GPT header, using the backup header at LBA {last_lba}"
                );
                h
            }
            Err(_) => return Ok(None),
        },
        Err(HeaderProblem::Io(e)) => return Err(io(e)),
        Err(HeaderProblem::Invalid(why)) => match backup() {
            Ok(h) => {
                log::warn!(
                    "{name}: primary GPT header is invalid ({why}); using the backup header"
                );
                h
            }
            Err(HeaderProblem::Invalid(why2)) => {
                return Err(invalid(format!(
                    "primary GPT header is invalid ({why}) and so is the backup ({why2})"
                )))
            }
            Err(_) => {
                return Err(invalid(format!(
                    "primary GPT header is invalid ({why}) and there is no backup header"
                )))
            }
        },
    };
    let lb_size = if lb == 4096 {
        ::gpt::disk::LogicalBlockSize::Lb4096
    } else {
        ::gpt::disk::LogicalBlockSize::Lb512
    };
    let gdisk = ::gpt::GptConfig::new()
        .writable(false)
        .logical_block_size(lb_size)
        .open_from_device(disk.slice(0, disk.size()))
        .map_err(|e| invalid(format!("GPT: {e}")))?;
    let disk_guid = gdisk.guid().to_string();
    if disk_guid != header.disk_guid {
        // The crate chose a different header than the one we validated (it only checks the
        // header CRC). Refuse rather than trust unvalidated entries.
        return Err(invalid(
            "GPT headers disagree about the disk GUID; refusing the table".to_string(),
        ));
    }
    let mut partitions = Vec::new();
    for (&number, p) in gdisk.partitions() {
        if !p.is_used() {
            continue;
        }
        let start = p.first_lba.checked_mul(lb);
        let len = p
            .last_lba
            .checked_sub(p.first_lba)
            .and_then(|n| n.checked_add(1))
            .and_then(|n| n.checked_mul(lb));
        let (Some(start), Some(len)) = (start, len) else {
            log::warn!("{name}: GPT partition {number} has impossible bounds, skipped");
            continue;
        };
        if start.checked_add(len).is_none_or(|end| end > disk.size()) {
            log::warn!("{name}: GPT partition {number} extends past the end of the disk, skipped");
            continue;
        }
        partitions.push(Partition {
            number,
            start,
            len,
            part_uuid: Some(p.part_guid.to_string()),
            type_guid: Some(p.part_type_guid.guid.to_string()),
            mbr_type: None,
            label: Some(p.name.clone()).filter(|n| !n.is_empty()),
        });
    }
    Ok(Some(Table::Gpt {
        disk_guid,
        partitions,
    }))
}

/// [`check_header`] for diagnostics: `Err` with the reason.
pub(super) fn check(disk: &Disk, lba: u64) -> Result<(), String> {
    check_header(disk, lba, u64::from(disk.sector_size()))
        .map(|_| ())
        .map_err(|p| format!("{p:?}"))
}

#[derive(Debug)]
enum HeaderProblem {
    NoSignature,
    Invalid(String),
    Io(std::io::Error),
}

#[derive(Debug)]
struct Header {
    disk_guid: String,
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Validates the GPT header at `lba` (UEFI 2.10 §5.3.2) and its entry array.
fn check_header(disk: &Disk, lba: u64, lb: u64) -> Result<Header, HeaderProblem> {
    let mut sector = vec![0u8; lb as usize];
    disk.read_exact_at(lba * lb, &mut sector)
        .map_err(HeaderProblem::Io)?;
    if &sector[0..8] != b"EFI PART" {
        return Err(HeaderProblem::NoSignature);
    }
    let bad = |s: String| Err(HeaderProblem::Invalid(s));
    let header_size = le32(&sector, 12);
    if !(92..=lb as u32).contains(&header_size) {
        return bad(format!("header size {header_size}"));
    }
    let stored_crc = le32(&sector, 16);
    let mut h = sector[..header_size as usize].to_vec();
    h[16..20].fill(0);
    if crc32(&h) != stored_crc {
        return bad("header CRC mismatch".into());
    }
    if le64(&sector, 24) != lba {
        return bad(format!("header claims to be at LBA {}", le64(&sector, 24)));
    }
    let entries_lba = le64(&sector, 72);
    let count = le32(&sector, 80);
    let entry_size = le32(&sector, 84);
    if entry_size != ENTRY_SIZE {
        return bad(format!(
            "partition entry size {entry_size} (only {ENTRY_SIZE} is supported)"
        ));
    }
    if count > MAX_ENTRIES {
        return bad(format!(
            "{count} partition entries (more than {MAX_ENTRIES})"
        ));
    }
    let mut array = vec![0u8; (count * entry_size) as usize];
    let offset = entries_lba
        .checked_mul(lb)
        .ok_or_else(|| HeaderProblem::Invalid("entry array offset overflows".into()))?;
    disk.read_exact_at(offset, &mut array)
        .map_err(|e| HeaderProblem::Invalid(format!("entry array unreadable: {e}")))?;
    if crc32(&array) != le32(&sector, 88) {
        return bad("partition entry array CRC mismatch".into());
    }
    let mut guid = [0u8; 16];
    guid.copy_from_slice(&sector[56..72]);
    Ok(Header {
        disk_guid: uuid_from_mixed_endian(&guid),
    })
}

/// Formats a GUID stored in the mixed-endian on-disk layout (first three fields little endian).
pub(crate) fn uuid_from_mixed_endian(b: &[u8; 16]) -> String {
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    )
}
