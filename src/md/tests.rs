use super::*;
use crate::disk::Disk;
use crate::testutil::sparse_image;
use proptest::prelude::*;

/// Members made by mdadm in a helper VM (`cargo xtask md-fixtures`): two 4 MiB members per
/// array, each RAID1 holding an ext4 (label `raidboot`) written through `/dev/mdN`; mdadm's
/// own account of them is `testdata/mdadm.txt`. (fixture name, array index in mdadm.txt)
const SETS: &[(&str, usize, Version)] = &[
    ("v0.90", 0, Version::V090),
    ("v1.0", 1, Version::V10),
    ("v1.1", 2, Version::V11),
    ("v1.2", 3, Version::V12),
];

fn member(name: &str, k: usize) -> Slice {
    let text = std::fs::read_to_string(format!(
        "{}/src/md/testdata/{name}-m{k}.sparse",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let bytes = sparse_image(&text);
    let len = bytes.len() as u64;
    Disk::from_bytes(name, bytes).slice(0, len)
}

/// What mdadm --examine printed for member `k` of array `n`: the value of `key`.
fn examine(n: usize, k: usize, key: &str) -> String {
    let text = include_str!("testdata/mdadm.txt");
    let head = format!("### mdadm --examine /dev/s/a{n}m{k}");
    let section = text.split(&head).nth(1).unwrap();
    let section = section.split("###").next().unwrap();
    section
        .lines()
        .find_map(|l| l.trim().strip_prefix(key)?.trim().strip_prefix(':'))
        .unwrap_or_else(|| panic!("{key} in {head}"))
        .trim()
        .to_string()
}

#[test]
fn real_members_of_every_version_read_as_mdadm_describes_them() {
    for &(name, n, version) in SETS {
        let mut found = Vec::new();
        for k in 0..2 {
            let m = read(&member(name, k)).unwrap().unwrap().unwrap();
            assert_eq!(m.version, version, "{name}");
            assert_eq!(m.level, 1, "{name}");
            assert_eq!(m.raid_disks, 2, "{name}");
            let uuid_key = if version == Version::V090 {
                "UUID"
            } else {
                "Array UUID"
            };
            let want = examine(n, k, uuid_key);
            assert!(
                want.starts_with(&m.uuid_text()),
                "{name}: {want} vs {}",
                m.uuid_text()
            );
            assert!(m.in_sync && m.clean, "{name}: {m:?}");
            assert_eq!(examine(n, k, "State"), "clean", "{name}");
            if version != Version::V090 {
                assert_eq!(
                    examine(n, k, "Device Role"),
                    format!("Active device {k}"),
                    "{name}"
                );
            }
            assert_eq!(m.role, Some(k as u32), "{name}");
            let size_kib: u64 = examine(n, k, "Array Size")
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(m.data_size, size_kib * 1024, "{name}");
            if version >= Version::V11 {
                let off: u64 = examine(n, k, "Data Offset")
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(m.data_offset, off * 512, "{name}");
            } else {
                assert_eq!(m.data_offset, 0);
            }
            found.push(m);
        }
        assert_eq!(found[0].uuid, found[1].uuid);
        let want_name = if version == Version::V090 {
            "md0"
        } else {
            "md/boot"
        };
        assert_eq!(found[0].volume_name(), want_name);
        // The mirror's data on either member is the ext4 mdadm's array was given.
        for (k, m) in found.iter().enumerate() {
            let data = m.data(&member(name, k));
            match crate::probe::probe(&data).unwrap() {
                crate::probe::Probed::Fs(info) => {
                    assert_eq!(info.label.as_deref(), Some("raidboot"), "{name}");
                }
                other => panic!("{name}: {other:?}"),
            }
            let fs = crate::fs::open(data, crate::probe::FsKind::Ext4).unwrap();
            let conf = fs.read("/loader/entries/raid.conf", 4096).unwrap();
            assert!(conf.starts_with(b"title On RAID1"), "{name}");
        }
    }
}

#[test]
fn a_raid0_member_says_level_0() {
    let m = read(&member("raid0", 0)).unwrap().unwrap().unwrap();
    assert_eq!((m.level, m.version), (0, Version::V12));
}

/// The 1.2 superblock of member 0, with its checksum recomputed after `edit`.
fn edited_v12(edit: impl Fn(&mut [u8])) -> Result<Member, MdError> {
    let m = member("v1.2", 0);
    let mut b = vec![0u8; SB_BYTES];
    m.read_exact_at(4096, &mut b).unwrap();
    edit(&mut b);
    let max_dev = le32(&b, 220) as usize;
    let sum = checksum(&b[..(256 + 2 * max_dev).min(SB_BYTES)], 216);
    b[216..220].copy_from_slice(&sum.to_le_bytes());
    parse(&b, Version::V12, m.len())
}

#[test]
fn hostile_superblocks_are_refused_with_the_reason() {
    assert!(edited_v12(|_| {}).is_ok());
    let e = edited_v12(|b| b[128..136].copy_from_slice(&u64::MAX.to_le_bytes())).unwrap_err();
    assert!(e.what.contains("overflows"), "{e}");
    let e = edited_v12(|b| b[128..136].copy_from_slice(&(1u64 << 40).to_le_bytes())).unwrap_err();
    assert!(e.what.contains("not inside"), "{e}");
    let e = edited_v12(|b| b[128..136].copy_from_slice(&0u64.to_le_bytes())).unwrap_err();
    assert!(e.what.contains("overlaps the superblock"), "{e}");
    let e = edited_v12(|b| b[144..152].copy_from_slice(&0u64.to_le_bytes())).unwrap_err();
    assert!(e.what.contains("was found at"), "{e}");
    let e = edited_v12(|b| b[220..224].copy_from_slice(&5000u32.to_le_bytes())).unwrap_err();
    assert!(e.what.contains("max_dev"), "{e}");
    // A spare is not read from.
    let m = edited_v12(|b| {
        let n = le32(b, 160) as usize;
        b[256 + 2 * n..258 + 2 * n].copy_from_slice(&0xffffu16.to_le_bytes());
    })
    .unwrap();
    assert!(!m.in_sync && m.role.is_none());
    // A byte flipped without fixing the checksum.
    let mm = member("v1.2", 0);
    let mut b = vec![0u8; SB_BYTES];
    mm.read_exact_at(4096, &mut b).unwrap();
    b[100] ^= 1;
    assert!(parse(&b, Version::V12, mm.len())
        .unwrap_err()
        .what
        .contains("checksum"));
}

#[test]
fn pick_prefers_in_sync_members_of_clean_arrays_then_events() {
    let base = read(&member("v1.2", 0)).unwrap().unwrap().unwrap();
    let with = |in_sync, clean, events| Member {
        in_sync,
        clean,
        events,
        ..base.clone()
    };
    let ms = [
        ("spare", with(false, true, 99)),
        ("dirty", with(true, false, 50)),
        ("old", with(true, true, 3)),
        ("new", with(true, true, 4)),
    ];
    assert_eq!(pick(&ms).unwrap().0, "new");
    assert_eq!(pick(&ms[..2]).unwrap().0, "dirty");
    assert!(pick(&ms[..1]).is_none());
}

proptest! {
    #[test]
    fn parse_never_panics(b in proptest::collection::vec(any::<u8>(), 0..4200), len in 0u64..(1 << 30), v in 0usize..4) {
        let v = [Version::V090, Version::V10, Version::V11, Version::V12][v];
        let mut b = b;
        if b.len() >= 8 {
            b[..4].copy_from_slice(&MAGIC.to_le_bytes());
        }
        let _ = parse(&b, v, len);
    }

    #[test]
    fn mutated_real_superblocks_never_panic(at in 0usize..SB_BYTES, x in any::<u8>(), len in 0u64..(1 << 24)) {
        let _ = edited_v12(|b| b[at] ^= x);
        let m = member("v1.2", 0);
        let mut b = vec![0u8; SB_BYTES];
        m.read_exact_at(4096, &mut b).unwrap();
        b[at] ^= x;
        let _ = parse(&b, Version::V12, len);
    }
}
