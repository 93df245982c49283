//! Filesystem identification from superblocks, like `blkid`: type, UUID and label.
//!
//! [`probe`] reads a bounded head of a volume ([`HEAD_BYTES`]: enough for the btrfs
//! superblock at 64 KiB) plus the two places md RAID keeps superblocks at the end, and
//! [`identify`] decides from those bytes alone (pure, fuzzed). Filesystems: ext2/3/4, vfat
//! (FAT12/16/32), xfs, btrfs, iso9660, squashfs, f2fs ([`filesystems`]). Recognised and
//! reported as not-a-boot-volume, so the log says why a volume was skipped: swap, LUKS 1/2,
//! LVM2 PV, md RAID members (0.90, 1.0, 1.1, 1.2), bcache ([`containers`]); the pipeline
//! then reads md members and PVs with [`crate::md`] and [`crate::lvm`]. RAID and
//! encryption are checked first, as blkid does: an md 1.0 member also shows a filesystem at
//! offset 0.
//!
//! What it does not do: read past the superblock, verify checksums, or open anything.
//! UUIDs and labels are formatted as `blkid` prints them (checked against blkid's own output in
//! the tests).

mod containers;
mod filesystems;

use std::fmt;

use crate::disk::Slice;

/// Bytes read from the start of a volume: up to and including the btrfs superblock.
pub const HEAD_BYTES: usize = 0x10000 + 0x1000;

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
    /// XFS.
    Xfs,
    /// btrfs.
    Btrfs,
    /// ISO 9660 (CD/DVD images, hybrid USB images).
    Iso9660,
    /// squashfs.
    Squashfs,
    /// F2FS.
    F2fs,
}

impl FsKind {
    /// The name the kernel's `mount(2)` and blkid use.
    pub fn name(self) -> &'static str {
        match self {
            FsKind::Ext2 => "ext2",
            FsKind::Ext3 => "ext3",
            FsKind::Ext4 => "ext4",
            FsKind::Vfat => "vfat",
            FsKind::Xfs => "xfs",
            FsKind::Btrfs => "btrfs",
            FsKind::Iso9660 => "iso9660",
            FsKind::Squashfs => "squashfs",
            FsKind::F2fs => "f2fs",
        }
    }
}

impl fmt::Display for FsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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

/// Something on a volume that is not a filesystem leapboot reads boot files from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Other {
    /// What it is, as blkid names it (`swap`, `crypto_LUKS`, `LVM2_member`,
    /// `linux_raid_member`, `bcache`).
    pub kind: &'static str,
    /// Detail for the log (version, UUID).
    pub detail: String,
}

/// The result of probing one volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probed {
    /// A filesystem.
    Fs(FsInfo),
    /// A known non-filesystem (swap, encrypted, RAID/LVM member): skipped with an info line.
    Other(Other),
    /// Nothing recognised.
    Unknown,
}

/// Reads the superblock areas of `vol` (bounded: [`HEAD_BYTES`] plus 1 KiB at its end) and
/// identifies what it holds.
pub fn probe(vol: &Slice) -> std::io::Result<Probed> {
    let len = vol.len();
    if len < 4096 {
        return Ok(Probed::Unknown);
    }
    let mut head = vec![0u8; (len as usize).min(HEAD_BYTES)];
    vol.read_exact_at(0, &mut head)?;
    let mut tails = Vec::new();
    for at in containers::md_tail_offsets(len) {
        let mut b = vec![0u8; 512];
        vol.read_exact_at(at, &mut b)?;
        tails.push(b);
    }
    Ok(identify(&head, &tails))
}

/// Identifies a volume from its first bytes (`head`, up to [`HEAD_BYTES`]) and the sectors at
/// [`containers::md_tail_offsets`] (`tails`, may be empty). Pure; never panics.
pub fn identify(head: &[u8], tails: &[Vec<u8>]) -> Probed {
    if let Some(o) = containers::raid_or_crypt(head, tails) {
        return Probed::Other(o);
    }
    if let Some(fs) = filesystems::identify(head) {
        return Probed::Fs(fs);
    }
    match containers::swap(head) {
        Some(o) => Probed::Other(o),
        None => Probed::Unknown,
    }
}

/// `b[at..at+n]`, or `None` when `b` is too short.
fn bytes(b: &[u8], at: usize, n: usize) -> Option<&[u8]> {
    b.get(at..at.checked_add(n)?)
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    bytes(b, at, 2).map(|x| u16::from_le_bytes([x[0], x[1]]))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    bytes(b, at, 4).map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
}

/// A NUL-terminated, blank-padded label; `None` if empty.
fn text(b: &[u8]) -> Option<String> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let s = String::from_utf8_lossy(&b[..end]).trim_end().to_string();
    Some(s).filter(|s| !s.is_empty())
}

/// 16 bytes as a UUID in the standard (big-endian) layout; `None` if all zero.
fn uuid(u: &[u8]) -> Option<String> {
    if u.len() != 16 || u.iter().all(|&b| b == 0) {
        return None;
    }
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]
    ))
}

#[cfg(test)]
mod tests;
