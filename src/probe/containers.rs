//! Volumes that hold no filesystem leapboot reads directly, recognised so the log can say
//! why a volume was skipped: md RAID members, LUKS, LVM2 PVs, bcache, swap. md members and
//! LVM PVs are then read by [`crate::md`] and [`crate::lvm`] (the pipeline opens RAID1
//! mirrors and linear LVs over them).

use super::{bytes, le32, text, uuid, Other};

const MD_MAGIC: u32 = 0xa92b_4efc;

/// Where md keeps end-of-device superblocks on a volume of `len` bytes: 0.90 (64 KiB aligned,
/// last 64 KiB) and 1.0 (8 KiB from the end, 4 KiB aligned).
pub fn md_tail_offsets(len: u64) -> Vec<u64> {
    let mut v = Vec::new();
    if len >= 0x20000 {
        v.push((len & !0xffff) - 0x10000);
    }
    if len >= 0x4000 {
        v.push((len - 0x2000) & !0xfff);
    }
    v
}

/// md, LUKS, LVM2 PV or bcache, checked before filesystems (their members may show one).
pub(super) fn raid_or_crypt(head: &[u8], tails: &[Vec<u8>]) -> Option<Other> {
    let other = |kind, detail: String| Some(Other { kind, detail });
    for (at, version) in [(0usize, "1.1"), (4096, "1.2")] {
        if le32(head, at) == Some(MD_MAGIC) && le32(head, at + 4) == Some(1) {
            return other(
                "linux_raid_member",
                format!("md RAID member (superblock {version})"),
            );
        }
    }
    for t in tails {
        match (le32(t, 0), le32(t, 4)) {
            (Some(MD_MAGIC), Some(0)) => {
                return other(
                    "linux_raid_member",
                    "md RAID member (superblock 0.90)".into(),
                )
            }
            (Some(MD_MAGIC), Some(1)) => {
                return other(
                    "linux_raid_member",
                    "md RAID member (superblock 1.0)".into(),
                )
            }
            _ => {}
        }
    }
    if bytes(head, 0, 6) == Some(b"LUKS\xba\xbe") {
        let version = bytes(head, 6, 2).map_or(0, |v| u16::from_be_bytes([v[0], v[1]]));
        let id = bytes(head, 168, 40).and_then(text).unwrap_or_default();
        return other(
            "crypto_LUKS",
            format!("LUKS{version} encrypted volume {id}"),
        );
    }
    // LVM2: a "LABELONE" label in one of the first four sectors, type "LVM2 001".
    for s in 0..4 {
        let at = s * 512;
        if bytes(head, at, 8) == Some(b"LABELONE") && bytes(head, at + 24, 8) == Some(b"LVM2 001") {
            let id = bytes(head, at + 32, 32).and_then(text).unwrap_or_default();
            return other("LVM2_member", format!("LVM2 physical volume {id}"));
        }
    }
    const BCACHE_MAGIC: [u8; 16] = [
        0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba, 0x6d,
        0x81,
    ];
    if bytes(head, 4096 + 24, 16) == Some(&BCACHE_MAGIC[..]) {
        return other("bcache", "bcache device".into());
    }
    None
}

/// Linux swap: "SWAPSPACE2" (or the old "SWAP-SPACE") ending a page (4 KiB or 64 KiB).
pub(super) fn swap(head: &[u8]) -> Option<Other> {
    for page in [4096usize, 8192, 16384, 65536] {
        let sig = bytes(head, page - 10, 10)?;
        if sig == b"SWAPSPACE2" || sig == b"SWAP-SPACE" {
            let id = bytes(head, 1024 + 12, 16).and_then(uuid);
            return Some(Other {
                kind: "swap",
                detail: format!(
                    "swap space{}",
                    id.map(|u| format!(" {u}")).unwrap_or_default()
                ),
            });
        }
    }
    None
}
