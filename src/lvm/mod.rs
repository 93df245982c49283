//! LVM2 physical volumes read in userspace, without device-mapper: the PV label, its metadata
//! area and the volume group text in it ([`metadata`]), and linear logical volumes turned
//! into [`Slice`]s over the PVs' extents, so the probe and filesystem readers open them like
//! partitions. Nothing is activated and nothing is written.
//!
//! [`read_pv`] reads one PV: the `LABELONE` label in one of the first four sectors (its CRC
//! checked), the PV header (UUID, data and metadata areas, bounded to the label sector), the
//! first metadata area's header (magic, CRC) and the current metadata text (bounded by
//! [`metadata::MAX_TEXT`] and the area's size; a text that wraps around the area's circular
//! buffer is read in its two parts; its CRC checked). [`logical_volumes`] takes every PV seen
//! so far, uses the newest metadata copy (highest `seqno`) of each volume group, and maps each
//! visible linear LV; an LV on a PV not (yet) present, a segment past its PV's end, and every
//! other LV type are reported, not opened.

pub mod metadata;

use std::collections::BTreeMap;

use crate::disk::Slice;
pub use metadata::{LvKind, Vg};

/// LVM's CRC-32 (the reflected 0xEDB88320 polynomial without inversions) from LVM's initial
/// value, as `calc_crc(INITIAL_CRC, ...)` in LVM2.
pub fn crc(data: &[u8]) -> u32 {
    const INITIAL: u32 = 0xf597_a6cf;
    // Reflected in and out, no final XOR; `crc` reflects `init` itself, so it is given
    // reflected here to start the register at INITIAL.
    const LVM: crc::Algorithm<u32> = crc::Algorithm {
        width: 32,
        poly: 0x04c1_1db7,
        init: INITIAL.reverse_bits(),
        refin: true,
        refout: true,
        xorout: 0,
        check: 0,
        residue: 0,
    };
    const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&LVM);
    CRC.checksum(data)
}

const LABEL_ID: &[u8] = b"LABELONE";
const LABEL_TYPE: &[u8] = b"LVM2 001";
const MDA_MAGIC: &[u8] = b" LVM2 x[5A%r0N*>";
const MDA_HEADER: u64 = 512;

/// What one PV holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvLabel {
    /// The PV's UUID, 32 characters without dashes.
    pub uuid: String,
    /// The volume group it belongs to, from its metadata area (`None` for a PV without
    /// one, or an orphan PV with no VG).
    pub vg: Option<Vg>,
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A PV label: the PV's UUID and its metadata areas, (byte offset, size) each.
pub type Label = (String, Vec<(u64, u64)>);

/// The PV label of the first 2 KiB of a volume: the label sector and the PV header's
/// (offset, size) metadata areas. Pure; never panics.
pub fn parse_label(head: &[u8]) -> Result<Option<Label>, String> {
    for s in 0..4usize {
        let Some(l) = head.get(s * 512..s * 512 + 512) else {
            break;
        };
        if &l[..8] != LABEL_ID || &l[24..32] != LABEL_TYPE {
            continue;
        }
        if le64(l, 8) != Some(s as u64) {
            return Err(format!(
                "the label in sector {s} says it is in another sector"
            ));
        }
        let stored = le32(l, 16).unwrap_or(0);
        if crc(&l[20..]) != stored {
            return Err(format!("the label in sector {s} fails its checksum"));
        }
        let off = le32(l, 20).unwrap_or(0) as usize;
        let h = l
            .get(off..)
            .filter(|h| h.len() >= 40)
            .ok_or("the PV header offset is outside the label sector")?;
        let uuid: String = String::from_utf8_lossy(&h[..32]).into_owned();
        if !uuid.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err("the PV UUID is not alphanumeric".into());
        }
        // After the UUID and device size: data areas, a zero entry, metadata areas, a zero
        // entry; each (offset, size) in bytes. Bounded by the 512-byte sector.
        let mut at = 40;
        let mut lists = [Vec::new(), Vec::new()];
        for list in &mut lists {
            loop {
                let (Some(o), Some(n)) = (le64(h, at), le64(h, at + 8)) else {
                    return Err("the PV header's area lists run past the label sector".into());
                };
                at += 16;
                if o == 0 && n == 0 {
                    break;
                }
                list.push((o, n));
            }
        }
        let [_, mdas] = lists;
        return Ok(Some((uuid, mdas)));
    }
    Ok(None)
}

/// The metadata text location in a metadata area header (`hdr`, 512 bytes, found at byte
/// `area` of the PV): (offset from the area's start, size), or `None` if the area holds no
/// metadata. Pure.
pub fn parse_mda_header(hdr: &[u8], area: u64) -> Result<Option<(u64, u64, u32)>, String> {
    if hdr.len() < 512 || &hdr[4..20] != MDA_MAGIC {
        return Err("no metadata area header (magic)".into());
    }
    if crc(&hdr[4..512]) != le32(hdr, 0).unwrap_or(0) {
        return Err("the metadata area header fails its checksum".into());
    }
    if le32(hdr, 20) != Some(1) {
        return Err("metadata area header version is not 1".into());
    }
    if le64(hdr, 24) != Some(area) {
        return Err("the metadata area header names another place".into());
    }
    let (Some(off), Some(size), Some(sum), Some(flags)) =
        (le64(hdr, 40), le64(hdr, 48), le32(hdr, 56), le32(hdr, 60))
    else {
        return Ok(None);
    };
    const IGNORED: u32 = 1;
    if size == 0 || flags & IGNORED != 0 {
        return Ok(None);
    }
    Ok(Some((off, size, sum)))
}

/// Reads the PV label and current metadata of `vol`. `Ok(None)`: not an LVM2 PV.
pub fn read_pv(vol: &Slice) -> Result<Option<PvLabel>, String> {
    let mut head = vec![0u8; 2048.min(vol.len() as usize)];
    vol.read_exact_at(0, &mut head).map_err(|e| e.to_string())?;
    let Some((uuid, mdas)) = parse_label(&head)? else {
        return Ok(None);
    };
    let Some(&(area, area_size)) = mdas.first() else {
        return Ok(Some(PvLabel { uuid, vg: None }));
    };
    if area.checked_add(area_size).is_none_or(|e| e > vol.len()) || area_size <= MDA_HEADER {
        return Err(format!(
            "the metadata area at {area} (+{area_size}) is outside the device"
        ));
    }
    let mut hdr = vec![0u8; 512];
    vol.read_exact_at(area, &mut hdr)
        .map_err(|e| e.to_string())?;
    let Some((off, size, sum)) = parse_mda_header(&hdr, area)? else {
        return Ok(Some(PvLabel { uuid, vg: None }));
    };
    let ring = area_size - MDA_HEADER;
    if size > metadata::MAX_TEXT as u64 || size > ring || off < MDA_HEADER || off >= area_size {
        return Err(format!(
            "metadata text of {size} bytes at {off} does not fit its {area_size}-byte area"
        ));
    }
    // The text may wrap around the end of the circular buffer, continuing after the header.
    let first = size.min(area_size - off);
    let mut text = vec![0u8; size as usize];
    vol.read_exact_at(area + off, &mut text[..first as usize])
        .map_err(|e| e.to_string())?;
    if first < size {
        vol.read_exact_at(area + MDA_HEADER, &mut text[first as usize..])
            .map_err(|e| e.to_string())?;
    }
    if crc(&text) != sum {
        return Err("the metadata text fails its checksum".into());
    }
    let vg = metadata::vg(&text)?;
    Ok(Some(PvLabel { uuid, vg: Some(vg) }))
}

/// A logical volume made readable.
#[derive(Clone, Debug)]
pub struct LogicalVolume {
    /// `vg/lv`, as LVM names it.
    pub name: String,
    /// `/dev/mapper/vg-lv` (dashes in either name doubled, as device-mapper does).
    pub device: String,
    /// The LV's UUID.
    pub id: String,
    /// Its bytes: the segments' extents on their PVs, in order.
    pub slice: Slice,
}

/// What [`logical_volumes`] found.
#[derive(Debug, Default)]
pub struct Found {
    /// LVs ready to read.
    pub volumes: Vec<LogicalVolume>,
    /// LVs not opened, each with the reason (for the log); `waiting` ones may open when a
    /// missing PV appears.
    pub skipped: Vec<(String, String)>,
    /// LV names that wait for a PV not seen yet.
    pub waiting: Vec<String>,
}

/// Only `[A-Za-z0-9+_.-]` of an on-disk name survive (LVM's own name rule), others become `_`.
fn clean(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The linear LVs of every volume group among `pvs` (each PV's window and label), using the
/// newest metadata copy of each group. Pure but for reading nothing: slices are only built.
pub fn logical_volumes(pvs: &[(Slice, PvLabel)]) -> Found {
    let mut newest: BTreeMap<&str, &Vg> = BTreeMap::new();
    for (_, l) in pvs {
        if let Some(vg) = &l.vg {
            let e = newest.entry(vg.id.as_str()).or_insert(vg);
            if vg.seqno > e.seqno {
                *e = vg;
            }
        }
    }
    let mut out = Found::default();
    for vg in newest.values() {
        let bytes = vg.extent_size.saturating_mul(512);
        for lv in &vg.lvs {
            let name = format!("{}/{}", clean(&vg.name), clean(&lv.name));
            let segs = match &lv.kind {
                _ if !lv.visible => continue,
                LvKind::Unsupported(what) => {
                    out.skipped.push((
                        name,
                        format!("{what} logical volume; only linear ones are read"),
                    ));
                    continue;
                }
                LvKind::Linear(segs) => segs,
            };
            let mut parts = Vec::new();
            let mut problem = None;
            for s in segs {
                let pv = &vg.pvs[s.pv];
                let Some((slice, _)) = pvs.iter().find(|(_, l)| l.uuid == pv.id) else {
                    out.waiting.push(name.clone());
                    problem = Some(format!("its PV {} ({}) is not present", pv.key, pv.id));
                    break;
                };
                let start = pv
                    .pe_start
                    .checked_mul(512)
                    .and_then(|p| p.checked_add(s.pe.checked_mul(bytes)?));
                let len = s.extent_count.checked_mul(bytes);
                match (start, len) {
                    (Some(a), Some(n)) if a.checked_add(n).is_some_and(|e| e <= slice.len()) => {
                        parts.push(slice.sub(a, n));
                    }
                    _ => {
                        problem = Some(format!(
                            "a segment points past the end of PV {} ({} bytes)",
                            pv.key,
                            slice.len()
                        ));
                        break;
                    }
                }
            }
            match (problem, Slice::concat(&parts)) {
                (None, Some(slice)) => out.volumes.push(LogicalVolume {
                    device: format!(
                        "/dev/mapper/{}-{}",
                        clean(&vg.name).replace('-', "--"),
                        clean(&lv.name).replace('-', "--")
                    ),
                    name,
                    id: lv.id.clone(),
                    slice,
                }),
                (Some(p), _) => out.skipped.push((name, p)),
                (None, None) => out.skipped.push((name, "too many segments".into())),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
