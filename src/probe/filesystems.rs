//! Filesystem superblocks: the magic, UUID and label of each type leapboot identifies.
//! Every reader takes the volume's head bytes and checks lengths itself (`bytes`/`le*` return
//! `None` past the end), so a short or hostile head yields `None`, never a panic.

use super::{bytes, le16, le32, text, uuid, FsInfo, FsKind};

/// The first filesystem whose superblock matches `head`.
pub(super) fn identify(head: &[u8]) -> Option<FsInfo> {
    ext(head)
        .or_else(|| xfs(head))
        .or_else(|| btrfs(head))
        .or_else(|| f2fs(head))
        .or_else(|| squashfs(head))
        .or_else(|| iso9660(head))
        .or_else(|| fat(head))
}

/// ext2/3/4 superblock (at byte 1024).
fn ext(head: &[u8]) -> Option<FsInfo> {
    let sb = bytes(head, 1024, 1024)?;
    if le16(sb, 56)? != 0xEF53 {
        return None;
    }
    let compat = le32(sb, 92)?;
    let incompat = le32(sb, 96)?;
    const COMPAT_HAS_JOURNAL: u32 = 0x4;
    const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
    if incompat & INCOMPAT_JOURNAL_DEV != 0 {
        return None; // an external journal, not a filesystem
    }
    // Anything ext3 cannot mount makes it ext4 (blkid's rule, in short): extents, 64bit,
    // flex_bg, and the other incompat bits beyond filetype/recover/journal_dev/meta_bg.
    const EXT3_INCOMPAT: u32 = 0x2 | 0x4 | 0x8 | 0x10;
    let kind = if incompat & !EXT3_INCOMPAT != 0 {
        FsKind::Ext4
    } else if compat & COMPAT_HAS_JOURNAL != 0 {
        FsKind::Ext3
    } else {
        FsKind::Ext2
    };
    Some(FsInfo {
        kind,
        uuid: uuid(&sb[104..120]),
        label: text(&sb[120..136]),
    })
}

/// XFS: "XFSB" at 0, UUID at 32, 12-byte label at 108.
fn xfs(head: &[u8]) -> Option<FsInfo> {
    let sb = bytes(head, 0, 120)?;
    if &sb[..4] != b"XFSB" {
        return None;
    }
    // Block size (big endian at 4) must be sane, like blkid's xfs_verify_sb.
    let bs = u32::from_be_bytes([sb[4], sb[5], sb[6], sb[7]]);
    if !(512..=65536).contains(&bs) || !bs.is_power_of_two() {
        return None;
    }
    Some(FsInfo {
        kind: FsKind::Xfs,
        uuid: uuid(&sb[32..48]),
        label: text(&sb[108..120]),
    })
}

/// btrfs: superblock at 64 KiB; magic "_BHRfS_M" at +0x40, fsid at +0x20, label at +0x12b.
fn btrfs(head: &[u8]) -> Option<FsInfo> {
    let sb = bytes(head, 0x10000, 0x12b + 256)?;
    if &sb[0x40..0x48] != b"_BHRfS_M" {
        return None;
    }
    Some(FsInfo {
        kind: FsKind::Btrfs,
        uuid: uuid(&sb[0x20..0x30]),
        label: text(&sb[0x12b..0x12b + 256]),
    })
}

/// F2FS: magic 0xF2F52010 at 1024, UUID at +108, UTF-16LE label at +124.
fn f2fs(head: &[u8]) -> Option<FsInfo> {
    let sb = bytes(head, 1024, 124 + 1024)?;
    if le32(sb, 0)? != 0xF2F5_2010 {
        return None;
    }
    let units: Vec<u16> = sb[124..124 + 1024]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    let label = String::from_utf16_lossy(&units);
    Some(FsInfo {
        kind: FsKind::F2fs,
        uuid: uuid(&sb[108..124]),
        label: Some(label).filter(|l| !l.is_empty()),
    })
}

/// squashfs: "hsqs" at 0 (little endian); it has no UUID or label.
fn squashfs(head: &[u8]) -> Option<FsInfo> {
    if bytes(head, 0, 4)? != b"hsqs" {
        return None;
    }
    // Major version (at 28) 4 is what Linux mounts; blkid accepts 2-4.
    let major = le16(head, 28)?;
    if !(2..=4).contains(&major) {
        return None;
    }
    Some(FsInfo {
        kind: FsKind::Squashfs,
        uuid: None,
        label: None,
    })
}

/// ISO 9660: the primary volume descriptor at 32 KiB ("\x01CD001"). Label: the volume
/// identifier; UUID: like blkid, the modification date (else the creation date) as
/// `YYYY-MM-DD-HH-MM-SS-CC`.
fn iso9660(head: &[u8]) -> Option<FsInfo> {
    let pvd = bytes(head, 0x8000, 2048)?;
    if pvd[0] != 1 || &pvd[1..6] != b"CD001" {
        return None;
    }
    let date = |at: usize| {
        let d = &pvd[at..at + 16];
        if !d.iter().all(u8::is_ascii_digit) || d.iter().all(|&c| c == b'0') {
            return None;
        }
        let s = |r: std::ops::Range<usize>| String::from_utf8_lossy(&d[r]).into_owned();
        Some(format!(
            "{}-{}-{}-{}-{}-{}-{}",
            s(0..4),
            s(4..6),
            s(6..8),
            s(8..10),
            s(10..12),
            s(12..14),
            s(14..16)
        ))
    };
    Some(FsInfo {
        kind: FsKind::Iso9660,
        uuid: date(830).or_else(|| date(813)),
        label: text(&pvd[40..72]),
    })
}

/// FAT boot sector with a sane BIOS parameter block.
fn fat(head: &[u8]) -> Option<FsInfo> {
    let bs = bytes(head, 0, 512)?;
    if bs[510] != 0x55 || bs[511] != 0xAA || !matches!(bs[0], 0xEB | 0xE9) {
        return None;
    }
    let bytes_per_sector = le16(bs, 11)?;
    let sectors_per_cluster = bs[13];
    let reserved = le16(bs, 14)?;
    let fats = bs[16];
    if !matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096)
        || !sectors_per_cluster.is_power_of_two()
        || reserved == 0
        || fats == 0
    {
        return None;
    }
    // FAT32 has no 16-bit FAT size and keeps its extended BPB at 64; FAT12/16 at 36.
    let ebpb = if le16(bs, 22)? == 0 { 64 } else { 36 };
    let fs_type = &bs[ebpb + 18..ebpb + 26];
    if !fs_type.starts_with(b"FAT") {
        return None;
    }
    let has_serial = bs[ebpb + 2] == 0x29;
    let serial = le32(bs, ebpb + 3)?;
    let label = if has_serial {
        text(&bs[ebpb + 7..ebpb + 18]).filter(|l| l != "NO NAME")
    } else {
        None
    };
    Some(FsInfo {
        kind: FsKind::Vfat,
        uuid: has_serial.then(|| format!("{:04X}-{:04X}", serial >> 16, serial & 0xffff)),
        label,
    })
}
