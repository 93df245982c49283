//! Filesystem identification from superblocks, like `blkid`: type, UUID and label.
//!
//! Reads at most a few KiB from the start of a volume and never interprets more than the
//! superblock. Knows ext2/3/4 and FAT12/16/32 so far.

use std::fmt;

use crate::disk::Slice;

/// A filesystem type leapboot can identify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FsKind {
    /// ext2 (no journal, no extents).
    Ext2,
    /// ext3 (journal, no extents).
    Ext3,
    /// ext4.
    Ext4,
    /// FAT12/16/32.
    Vfat,
}

impl fmt::Display for FsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FsKind::Ext2 => "ext2",
            FsKind::Ext3 => "ext3",
            FsKind::Ext4 => "ext4",
            FsKind::Vfat => "vfat",
        })
    }
}

/// What a superblock says about its filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsInfo {
    /// Filesystem type.
    pub kind: FsKind,
    /// UUID in the form `blkid` prints (`/dev/disk/by-uuid/` names).
    pub uuid: Option<String>,
    /// Volume label.
    pub label: Option<String>,
}

/// Identifies the filesystem on `vol`. `Ok(None)`: not a filesystem leapboot knows.
pub fn probe(vol: &Slice) -> std::io::Result<Option<FsInfo>> {
    if vol.len() < 4096 {
        return Ok(None);
    }
    let mut head = [0u8; 2048];
    vol.read_exact_at(0, &mut head)?;
    Ok(probe_ext(&head[1024..]).or_else(|| probe_fat(&head[..512])))
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn text(b: &[u8]) -> Option<String> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let s = String::from_utf8_lossy(&b[..end]).trim_end().to_string();
    Some(s).filter(|s| !s.is_empty())
}

/// ext2/3/4 superblock (at byte 1024 of the volume).
fn probe_ext(sb: &[u8]) -> Option<FsInfo> {
    if le16(sb, 56) != 0xEF53 {
        return None;
    }
    let compat = le32(sb, 92);
    let incompat = le32(sb, 96);
    const COMPAT_HAS_JOURNAL: u32 = 0x4;
    const INCOMPAT_EXT4: u32 = 0x40 /* extents */ | 0x80 /* 64bit */ | 0x200 /* flex_bg */;
    let kind = if incompat & INCOMPAT_EXT4 != 0 {
        FsKind::Ext4
    } else if compat & COMPAT_HAS_JOURNAL != 0 {
        FsKind::Ext3
    } else {
        FsKind::Ext2
    };
    let u = &sb[104..120];
    let uuid = (u.iter().any(|&b| b != 0)).then(|| {
        format!(
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]
        )
    });
    Some(FsInfo {
        kind,
        uuid,
        label: text(&sb[120..136]),
    })
}

/// FAT boot sector with a sane BIOS parameter block.
fn probe_fat(bs: &[u8]) -> Option<FsInfo> {
    if bs[510] != 0x55 || bs[511] != 0xAA || !matches!(bs[0], 0xEB | 0xE9) {
        return None;
    }
    let bytes_per_sector = le16(bs, 11);
    let sectors_per_cluster = bs[13];
    let reserved = le16(bs, 14);
    let fats = bs[16];
    if !matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096)
        || !sectors_per_cluster.is_power_of_two()
        || reserved == 0
        || fats == 0
    {
        return None;
    }
    // FAT32 has no 16-bit FAT size and keeps its extended BPB at 64; FAT12/16 at 36.
    let ebpb = if le16(bs, 22) == 0 { 64 } else { 36 };
    let fs_type = &bs[ebpb + 18..ebpb + 26];
    if !fs_type.starts_with(b"FAT") {
        return None;
    }
    let has_serial = bs[ebpb + 2] == 0x29;
    let serial = le32(bs, ebpb + 3);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_a_filesystem() {
        let mut b = vec![0xA5u8; 2048];
        assert_eq!(probe_ext(&b[1024..]), None);
        assert_eq!(probe_fat(&b[..512]), None);
        // A DOS MBR has the boot signature but no FAT BPB.
        b[0] = 0xEB;
        b[510] = 0x55;
        b[511] = 0xAA;
        assert_eq!(probe_fat(&b[..512]), None);
    }

    #[test]
    fn fat32_boot_sector_is_recognised() {
        let mut b = vec![0u8; 512];
        b[0] = 0xEB;
        b[11..13].copy_from_slice(&512u16.to_le_bytes());
        b[13] = 8;
        b[14] = 32;
        b[16] = 2;
        b[64 + 2] = 0x29;
        b[64 + 3..64 + 7].copy_from_slice(&0x1234_ABCDu32.to_le_bytes());
        b[64 + 7..64 + 18].copy_from_slice(b"ESP        ");
        b[64 + 18..64 + 26].copy_from_slice(b"FAT32   ");
        b[510] = 0x55;
        b[511] = 0xAA;
        let info = probe_fat(&b).unwrap();
        assert_eq!(info.kind, FsKind::Vfat);
        assert_eq!(info.uuid.as_deref(), Some("1234-ABCD"));
        assert_eq!(info.label.as_deref(), Some("ESP"));
    }

    #[test]
    fn ext4_superblock_is_recognised() {
        let mut sb = vec![0u8; 1024];
        sb[56..58].copy_from_slice(&0xEF53u16.to_le_bytes());
        sb[96..100].copy_from_slice(&0x2C0u32.to_le_bytes());
        sb[104..120].copy_from_slice(&[0x11; 16]);
        sb[120..124].copy_from_slice(b"boot");
        let info = probe_ext(&sb).unwrap();
        assert_eq!(info.kind, FsKind::Ext4);
        assert_eq!(
            info.uuid.as_deref(),
            Some("11111111-1111-1111-1111-111111111111")
        );
        assert_eq!(info.label.as_deref(), Some("boot"));
    }
}
