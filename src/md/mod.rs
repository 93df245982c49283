//! md RAID superblocks (metadata 0.90, 1.0, 1.1, 1.2), read to open a RAID1 mirror from one
//! member without assembling it.
//!
//! A RAID1 member holds a whole copy of the array's data at the data offset its superblock
//! names, so the mirror is a plain window of one member ([`Member::data`]). [`parse`] is pure
//! and fuzzed: it checks the magic, the version, the checksum (as the kernel computes it),
//! that the superblock names the place it was found at (1.x `super_offset`), and that the data
//! area lies inside the device and clear of the superblock; anything else is an error naming
//! what is wrong. Choosing between members ([`pick`]) prefers an in-sync member of a clean
//! array, then the highest event count.
//!
//! What it does not do: write (no superblock update, no resync, no assembly), read other
//! RAID levels' data (they are reported and skipped by the caller), or follow a reshape.

use std::fmt;

use crate::disk::Slice;

const MAGIC: u32 = 0xa92b_4efc;
/// The size of a 0.90 superblock, and the bytes read for a 1.x one (256 + 2 × max_dev).
pub const SB_BYTES: usize = 4096;

/// Superblock format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// 0.90: at the last 64 KiB-aligned 64 KiB of the device, data from byte 0.
    V090,
    /// 1.0: 8 KiB from the end (4 KiB aligned), data from byte 0.
    V10,
    /// 1.1: at byte 0.
    V11,
    /// 1.2: at byte 4096.
    V12,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V090 => "0.90",
            Version::V10 => "1.0",
            Version::V11 => "1.1",
            Version::V12 => "1.2",
        })
    }
}

impl Version {
    /// Where this version's superblock is on a device of `len` bytes, if it fits.
    pub fn offset(self, len: u64) -> Option<u64> {
        match self {
            Version::V090 => (len >= 0x20000).then(|| (len & !0xffff) - 0x10000),
            Version::V10 => (len >= 0x4000).then(|| (len - 0x2000) & !0xfff),
            Version::V11 => (len >= 0x2000).then_some(0),
            Version::V12 => (len >= 0x3000).then_some(0x1000),
        }
    }
}

/// What one member's superblock says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The superblock format.
    pub version: Version,
    /// RAID level (1: mirror; 0, 4, 5, 6, 10, -1 linear, -4 multipath...).
    pub level: i32,
    /// The array's UUID (all members share it).
    pub uuid: [u8; 16],
    /// The array's name (1.x `set_name`, e.g. `host:boot`); `None` for 0.90.
    pub set_name: Option<String>,
    /// 0.90: the md minor number the array was created as (`/dev/mdN`).
    pub md_minor: Option<u32>,
    /// Members the array is made of (`raid_disks`).
    pub raid_disks: u32,
    /// The superblock's update count: the member written last has the highest.
    pub events: u64,
    /// The array was stopped cleanly (no resync pending).
    pub clean: bool,
    /// This member is an active, fully synchronised device of the array (not a spare, not
    /// faulty, not part-way through a recovery).
    pub in_sync: bool,
    /// Its slot in the array, if active.
    pub role: Option<u32>,
    /// Byte offset of the array's data on the member.
    pub data_offset: u64,
    /// Bytes of array data (the used size of each member).
    pub data_size: u64,
}

impl Member {
    /// The array's UUID as mdadm prints it (`xxxxxxxx:xxxxxxxx:xxxxxxxx:xxxxxxxx`).
    pub fn uuid_text(&self) -> String {
        let mut s = String::new();
        for (i, b) in self.uuid.iter().enumerate() {
            if i > 0 && i % 4 == 0 {
                s.push(':');
            }
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// The name leapboot gives the array's volume, as mdadm names the device under `/dev`
    /// (`md/boot` for `/dev/md/boot`; `md0` for a 0.90 array of minor 0). Only
    /// `[A-Za-z0-9._-]` survive from the on-disk name; the host part (`host:`) is dropped.
    pub fn volume_name(&self) -> String {
        match (&self.set_name, self.md_minor) {
            (Some(n), _) => {
                let n = n.rsplit(':').next().unwrap_or(n);
                let clean: String = n
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || "._-".contains(c) {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                if clean.is_empty() {
                    format!("md/{}", &self.uuid_text()[..8])
                } else {
                    format!("md/{clean}")
                }
            }
            (None, Some(m)) => format!("md{m}"),
            (None, None) => format!("md/{}", &self.uuid_text()[..8]),
        }
    }

    /// The array's data on this member (a window of `member`).
    pub fn data(&self, member: &Slice) -> Slice {
        member.sub(self.data_offset, self.data_size)
    }
}

/// Why a superblock was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("md superblock {version}: {what}")]
pub struct MdError {
    /// The format being read.
    pub version: Version,
    /// What is wrong.
    pub what: String,
}

fn le16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |x| u16::from_le_bytes([x[0], x[1]]))
}
fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from(le32(b, at)) | (u64::from(le32(b, at + 4)) << 32)
}

/// The kernel's superblock checksum: the 32-bit words of `b` (the checksum field at
/// `csum_at` taken as zero, an odd trailing half-word added as 16 bits) summed in 64 bits,
/// folded to 32.
fn checksum(b: &[u8], csum_at: usize) -> u32 {
    let mut sum = 0u64;
    let mut i = 0;
    while i + 4 <= b.len() {
        if i != csum_at {
            sum += u64::from(le32(b, i));
        }
        i += 4;
    }
    if b.len() - i == 2 {
        sum += u64::from(le16(b, i));
    }
    (sum as u32).wrapping_add((sum >> 32) as u32)
}

/// Whether `b` starts like an md superblock of version 0.90 (`Some(false)`) or 1.x
/// (`Some(true)`).
pub fn magic(b: &[u8]) -> Option<bool> {
    match (le32(b, 0), le32(b, 4)) {
        (MAGIC, 0) => Some(false),
        (MAGIC, 1) => Some(true),
        _ => None,
    }
}

/// Parses the superblock `b` (up to [`SB_BYTES`]) found where `version` keeps it on a device
/// of `dev_len` bytes. Pure; never panics.
pub fn parse(b: &[u8], version: Version, dev_len: u64) -> Result<Member, MdError> {
    let err = |what: String| MdError { version, what };
    let Some(at) = version.offset(dev_len) else {
        return Err(err(format!("a {dev_len}-byte device is too small")));
    };
    if b.len() < SB_BYTES {
        return Err(err(format!("only {} bytes of superblock", b.len())));
    }
    let b = &b[..SB_BYTES];
    match (magic(b), version) {
        (Some(false), Version::V090) => parse_090(b, at, err),
        (Some(true), Version::V10 | Version::V11 | Version::V12) => {
            parse_1(b, version, at, dev_len, err)
        }
        _ => Err(err("no md superblock of this version here".into())),
    }
}

fn parse_090(b: &[u8], at: u64, err: impl Fn(String) -> MdError) -> Result<Member, MdError> {
    let w = |i: usize| le32(b, i * 4);
    if w(2) != 90 {
        return Err(err(format!("minor version {} (only 0.90 is known)", w(2))));
    }
    let stored = w(38);
    let sum = checksum(b, 38 * 4);
    if stored != sum {
        return Err(err(format!(
            "checksum {stored:#010x} does not match the superblock ({sum:#010x})"
        )));
    }
    let mut uuid = [0u8; 16];
    // mdadm prints the four words (set_uuid0..3) in this order, each as %08x.
    for (k, word) in [5usize, 13, 14, 15].into_iter().enumerate() {
        uuid[4 * k..4 * k + 4].copy_from_slice(&w(word).to_be_bytes());
    }
    let data_size = u64::from(w(8)) * 1024; // KiB
    if data_size == 0 || data_size > at {
        return Err(err(format!(
            "data of {data_size} bytes from offset 0 does not fit before the superblock at {at}"
        )));
    }
    // this_disk: words 992.. (number, major, minor, raid_disk, state).
    let (raid_disk, state) = (w(995), w(996));
    let raid_disks = w(10);
    let (faulty, active, sync) = (state & 1 != 0, state & 2 != 0, state & 4 != 0);
    let in_sync = !faulty && active && sync && raid_disk < raid_disks;
    Ok(Member {
        version: Version::V090,
        level: w(7) as i32,
        uuid,
        set_name: None,
        md_minor: Some(w(11)),
        raid_disks,
        events: u64::from(w(39)) | (u64::from(w(40)) << 32),
        clean: w(33) & 1 != 0,
        in_sync,
        role: in_sync.then_some(raid_disk),
        data_offset: 0,
        data_size,
    })
}

fn parse_1(
    b: &[u8],
    version: Version,
    at: u64,
    dev_len: u64,
    err: impl Fn(String) -> MdError,
) -> Result<Member, MdError> {
    let max_dev = le32(b, 220) as usize;
    let sb_len = 256 + 2 * max_dev;
    if sb_len > SB_BYTES {
        return Err(err(format!(
            "max_dev {max_dev} makes the superblock larger than 4 KiB"
        )));
    }
    let stored = le32(b, 216);
    let sum = checksum(&b[..sb_len], 216);
    if stored != sum {
        return Err(err(format!(
            "checksum {stored:#010x} does not match the superblock ({sum:#010x})"
        )));
    }
    let super_offset = le64(b, 144);
    if super_offset.checked_mul(512) != Some(at) {
        return Err(err(format!(
            "it says it is at sector {super_offset} but was found at byte {at}"
        )));
    }
    let sectors = |s: u64, what: &str| {
        s.checked_mul(512)
            .ok_or_else(|| err(format!("{what} of {s} sectors overflows")))
    };
    let data_offset = sectors(le64(b, 128), "data offset")?;
    // `size` is the used size of each member (RAID1); levels without one (RAID0) leave it
    // 0, and the member's whole data area counts.
    let size = match le64(b, 80) {
        0 => le64(b, 136),
        n => n,
    };
    let data_size = sectors(size, "array size")?;
    let data_end = data_offset
        .checked_add(data_size)
        .filter(|&e| e <= dev_len && data_size > 0)
        .ok_or_else(|| {
            err(format!(
                "data of {data_size} bytes at offset {data_offset} is not inside the {dev_len}-byte device"
            ))
        })?;
    let sb_end = at + SB_BYTES as u64;
    if data_offset < sb_end && at < data_end {
        return Err(err(format!(
            "data at {data_offset}..{data_end} overlaps the superblock at {at}"
        )));
    }
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&b[16..32]);
    let name_bytes = &b[32..64];
    let end = name_bytes.iter().position(|&c| c == 0).unwrap_or(32);
    let set_name = String::from_utf8_lossy(&name_bytes[..end]).into_owned();
    let raid_disks = le32(b, 92);
    let dev_number = le32(b, 160) as usize;
    let role = (dev_number < max_dev)
        .then(|| le16(b, 256 + 2 * dev_number))
        .filter(|&r| u32::from(r) < raid_disks && r < 0xff00)
        .map(u32::from);
    const RECOVERY_OFFSET: u32 = 2;
    let recovering = le32(b, 8) & RECOVERY_OFFSET != 0 && le64(b, 152) != u64::MAX;
    Ok(Member {
        version,
        level: le32(b, 72) as i32,
        uuid,
        set_name: Some(set_name),
        md_minor: None,
        raid_disks,
        events: le64(b, 200),
        clean: le64(b, 208) == u64::MAX,
        in_sync: role.is_some() && !recovering,
        role,
        data_offset,
        data_size,
    })
}

/// Finds and parses the md superblock of `vol`, trying 1.1, 1.2, then the end-of-device
/// 0.90 and 1.0 places. `Ok(None)`: no md magic anywhere; `Err`: a superblock that is not
/// to be trusted (the first error found).
pub fn read(vol: &Slice) -> std::io::Result<Option<Result<Member, MdError>>> {
    let len = vol.len();
    let mut first_err = None;
    for v in [Version::V11, Version::V12, Version::V090, Version::V10] {
        let Some(at) = v.offset(len) else { continue };
        let mut b = vec![0u8; SB_BYTES.min((len - at) as usize)];
        vol.read_exact_at(at, &mut b)?;
        if magic(&b).is_none() {
            continue;
        }
        match parse(&b, v, len) {
            Ok(m) => return Ok(Some(Ok(m))),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Ok(first_err.map(Err))
}

/// Of the members of one array, the one to read: an in-sync member of a clean array first,
/// then any in-sync member, by the highest event count (the member written last), the first
/// of equals; `None`
/// when no member is in sync (all spares or faulty).
pub fn pick<T>(members: &[(T, Member)]) -> Option<&(T, Member)> {
    // Reversed: of equally good members, the first (in discovery order) wins.
    members
        .iter()
        .rev()
        .filter(|(_, m)| m.in_sync)
        .max_by_key(|(_, m)| (m.clean, m.events))
}

#[cfg(test)]
mod tests;
