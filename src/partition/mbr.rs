//! DOS/MBR partition tables, hand-written: four primary entries in sector 0, and extended
//! partitions (types 0x05, 0x0f, 0x85) holding a chain of EBRs whose logical partitions are
//! numbered from 5, as Linux numbers them.
//!
//! What it does not do: GPT (a protective 0xEE entry makes [`super::read`] use the GPT
//! reader instead), CHS addressing (only the LBA fields are read, like Linux), BSD/Solaris
//! sub-labels, or writing.
//!
//! Hostile input: every chain is bounded ([`MAX_LOGICAL`] EBRs) and loop-checked (an EBR seen
//! twice ends the chain), every entry outside the disk or outside its extended partition is
//! refused with a log line, and all arithmetic is checked. A sector with the 0x55AA signature
//! is only taken for a table when the boot flags are 0x00 or 0x80 (Linux's and blkid's rule),
//! and not when it is a FAT boot sector (a whole-disk FAT filesystem also ends in 0x55AA).

use super::{Partition, PartitionError};
use crate::disk::Disk;

/// Longest EBR chain followed (Linux allows 256 partitions per disk in all).
pub const MAX_LOGICAL: u32 = 128;

/// The partition type bytes of an extended (container) partition.
pub fn is_extended(ptype: u8) -> bool {
    matches!(ptype, 0x05 | 0x0f | 0x85)
}

/// Type byte of a GPT protective MBR entry.
pub const PROTECTIVE: u8 = 0xee;

/// One of the four 16-byte entries of a (E)BR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub boot: u8,
    pub ptype: u8,
    /// First sector, relative to what the entry is relative to.
    pub start: u32,
    /// Number of sectors.
    pub sectors: u32,
}

/// The four entries of a boot record, or `None` when the sector does not end in 0x55AA.
pub(super) fn entries(sector: &[u8]) -> Option<[Entry; 4]> {
    if sector.len() < 512 || sector[510] != 0x55 || sector[511] != 0xaa {
        return None;
    }
    let mut out = [Entry {
        boot: 0,
        ptype: 0,
        start: 0,
        sectors: 0,
    }; 4];
    for (i, e) in out.iter_mut().enumerate() {
        let b = &sector[446 + 16 * i..446 + 16 * (i + 1)];
        *e = Entry {
            boot: b[0],
            ptype: b[4],
            start: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            sectors: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
        };
    }
    Some(out)
}

/// What sector 0 is, as far as the MBR reader is concerned.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// No 0x55AA signature, or a FAT boot sector: no MBR.
    NotMbr,
    /// The 0x55AA signature with boot flags that are not 0x00/0x80: garbage, logged.
    Invalid(String),
    /// A protective (only 0xEE) MBR.
    Protective,
    /// 0xEE beside other entries.
    Hybrid,
    /// A DOS partition table.
    Dos,
}

/// Classifies sector 0.
pub(super) fn classify(sector: &[u8]) -> Kind {
    let Some(entries) = entries(sector) else {
        return Kind::NotMbr;
    };
    if let Some((i, e)) = entries
        .iter()
        .enumerate()
        .find(|(_, e)| e.boot != 0 && e.boot != 0x80)
    {
        return Kind::Invalid(format!(
            "sector 0 ends in 0x55AA but entry {} has boot flag {:#04x} (only 0x00 and 0x80 are valid): not a partition table",
            i + 1,
            e.boot
        ));
    }
    if looks_like_fat(sector) {
        return Kind::NotMbr;
    }
    let protective = entries.iter().any(|e| e.ptype == PROTECTIVE);
    let others = entries
        .iter()
        .any(|e| e.ptype != PROTECTIVE && e.ptype != 0 && e.sectors != 0);
    match (protective, others) {
        (true, true) => Kind::Hybrid,
        (true, false) => Kind::Protective,
        _ => Kind::Dos,
    }
}

/// A FAT boot sector (BPB with a FAT type string), which a whole-disk FAT filesystem has in
/// sector 0 together with the 0x55AA signature. blkid does the same check.
fn looks_like_fat(s: &[u8]) -> bool {
    let bps = u16::from_le_bytes([s[11], s[12]]);
    matches!(s[0], 0xeb | 0xe9)
        && matches!(bps, 512 | 1024 | 2048 | 4096)
        && s[13].is_power_of_two()
        && s[16] != 0
        && (s[54..57] == *b"FAT" || s[82..85] == *b"FAT")
}

/// Reads the DOS partition table of `disk` whose sector 0 is `sector` (already classified as
/// [`Kind::Dos`] or [`Kind::Hybrid`]). Returns the disk signature (`hex8`) and the partitions,
/// primaries first, then logicals in chain order.
pub(super) fn read(disk: &Disk, sector: &[u8]) -> Result<(String, Vec<Partition>), PartitionError> {
    let name = disk.path().display().to_string();
    let Some(primary) = entries(sector) else {
        return Err(PartitionError::Invalid {
            disk: name,
            message: "no MBR signature".into(),
        });
    };
    let signature = u32::from_le_bytes([sector[440], sector[441], sector[442], sector[443]]);
    let sig_hex = format!("{signature:08x}");
    let lb = u64::from(disk.sector_size());
    let disk_sectors = disk.size() / lb;
    let mut parts = Vec::new();
    let mut next_logical = 5u32;
    for (i, e) in primary.iter().enumerate() {
        let number = i as u32 + 1;
        // Like Linux: an entry is a partition when it has sectors, whatever its type byte
        // (isohybrid images use type 0x00 for the partition holding the ISO).
        if e.sectors == 0 || e.ptype == PROTECTIVE {
            continue;
        }
        let start = u64::from(e.start);
        let end = start + u64::from(e.sectors);
        if end > disk_sectors {
            log::warn!(
                "{name}: MBR partition {number} (sectors {start}..{end}) extends past the end of the disk ({disk_sectors} sectors); skipped"
            );
            continue;
        }
        if is_extended(e.ptype) {
            logicals(
                disk,
                &name,
                &sig_hex,
                start,
                end,
                &mut next_logical,
                &mut parts,
            );
            continue;
        }
        parts.push(partition(&sig_hex, number, start, e, lb));
    }
    Ok((sig_hex, parts))
}

fn partition(sig: &str, number: u32, start_sector: u64, e: &Entry, lb: u64) -> Partition {
    Partition {
        number,
        start: start_sector * lb,
        len: u64::from(e.sectors) * lb,
        part_uuid: Some(format!("{sig}-{number:02x}")),
        type_guid: None,
        mbr_type: Some(e.ptype),
        label: None,
    }
}

/// Follows the EBR chain of the extended partition covering sectors `ext_start..ext_end`.
fn logicals(
    disk: &Disk,
    name: &str,
    sig: &str,
    ext_start: u64,
    ext_end: u64,
    next: &mut u32,
    out: &mut Vec<Partition>,
) {
    let lb = u64::from(disk.sector_size());
    let mut seen: Vec<u64> = Vec::new();
    let mut ebr = ext_start;
    let mut buf = vec![0u8; lb as usize];
    loop {
        if seen.contains(&ebr) {
            log::warn!("{name}: the EBR chain loops back to sector {ebr}; the chain ends here");
            return;
        }
        if seen.len() as u32 >= MAX_LOGICAL {
            log::warn!(
                "{name}: more than {MAX_LOGICAL} EBRs in the extended partition; the rest ignored"
            );
            return;
        }
        seen.push(ebr);
        if let Err(e) = disk.read_exact_at(ebr * lb, &mut buf) {
            log::warn!("{name}: cannot read the EBR at sector {ebr}: {e}; the chain ends here");
            return;
        }
        let Some(entries) = entries(&buf) else {
            log::warn!(
                "{name}: the EBR at sector {ebr} has no 0x55AA signature; the chain ends here"
            );
            return;
        };
        // Data partitions: the first two slots (slots 3 and 4 often hold garbage; Linux
        // ignores them too unless they fit, we ignore them always).
        for e in entries[..2]
            .iter()
            .filter(|e| !is_extended(e.ptype) && e.ptype != 0 && e.sectors != 0)
        {
            let number = *next;
            *next += 1;
            let start = ebr + u64::from(e.start);
            let end = start + u64::from(e.sectors);
            if start <= ebr || end > ext_end {
                log::warn!(
                    "{name}: logical partition {number} (sectors {start}..{end}) lies outside its extended partition ({ext_start}..{ext_end}); skipped"
                );
                continue;
            }
            out.push(partition(sig, number, start, e, lb));
        }
        let Some(link) = entries
            .iter()
            .find(|e| is_extended(e.ptype) && e.sectors != 0)
        else {
            return;
        };
        let nxt = ext_start + u64::from(link.start);
        if nxt >= ext_end {
            log::warn!(
                "{name}: the next EBR (sector {nxt}) lies outside the extended partition; the chain ends here"
            );
            return;
        }
        ebr = nxt;
    }
}

#[cfg(test)]
mod tests;
