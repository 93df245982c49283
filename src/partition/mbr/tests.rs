use super::super::{read as read_table, Table};
use super::*;
use crate::testutil::{sparse_image, sparse_text};
use proptest::prelude::*;

const SECTOR: usize = 512;

/// Tables written by the real `sfdisk` (util-linux), with its own `--json` view beside each.
const FIXTURES: &[(&str, &str)] = &[
    (
        "logical",
        "label: dos\nlabel-id: 0x12345678\n\
         start=2048, size=4096, type=83, bootable\n\
         start=6144, size=26000, type=5\n\
         size=4096, type=83\nsize=4096, type=c\nsize=4096, type=82\n",
    ),
    (
        "extended-last",
        "label: dos\nlabel-id: 0xdeadbeef\n\
         1 : start=2048, size=2048, type=ef\n\
         3 : start=4096, size=2048, type=83\n\
         4 : start=8192, size=16384, type=f\n\
         5 : size=8192, type=83\n",
    ),
];

fn fixture(name: &str) -> (Vec<u8>, serde_json::Value) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/partition/testdata/");
    let img = std::fs::read_to_string(format!("{dir}{name}.sparse")).unwrap();
    let json = std::fs::read_to_string(format!("{dir}{name}.json")).unwrap();
    (sparse_image(&img), serde_json::from_str(&json).unwrap())
}

fn table_of(bytes: Vec<u8>) -> Result<Table, crate::partition::PartitionError> {
    read_table(&Disk::from_bytes("mem", bytes))
}

/// Regenerates `testdata/*.sparse` and `*.json` with the real sfdisk:
/// `cargo test -p leapboot regenerate_mbr_fixtures -- --ignored`.
#[test]
#[ignore = "needs sfdisk; regenerates checked-in fixtures"]
fn regenerate_mbr_fixtures() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/partition/testdata/");
    for (name, script) in FIXTURES {
        let img = tempfile::NamedTempFile::new().unwrap();
        img.as_file().set_len(16 << 20).unwrap();
        let run = |args: &[&str], input: Option<&str>| {
            use std::io::Write;
            let mut c = std::process::Command::new("sfdisk")
                .args(args)
                .arg(img.path())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            if let Some(i) = input {
                c.stdin.take().unwrap().write_all(i.as_bytes()).unwrap();
            }
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            out.stdout
        };
        run(&["--no-reread", "--no-tell-kernel", "-q"], Some(script));
        let json = run(&["--json"], None);
        let bytes = std::fs::read(img.path()).unwrap();
        std::fs::write(
            format!("{dir}{name}.sparse"),
            sparse_text(&bytes, usize::MAX),
        )
        .unwrap();
        let path = img.path().display().to_string();
        let json = String::from_utf8(json).unwrap().replace(&path, "IMG");
        std::fs::write(format!("{dir}{name}.json"), json).unwrap();
    }
}

#[test]
fn tables_written_by_sfdisk_read_as_sfdisk_reads_them() {
    for (name, _) in FIXTURES {
        let (bytes, want) = fixture(name);
        let Table::Mbr {
            signature,
            partitions,
        } = table_of(bytes).unwrap()
        else {
            panic!("{name}: not read as an MBR");
        };
        let pt = &want["partitiontable"];
        let id = pt["id"].as_str().unwrap().trim_start_matches("0x");
        assert_eq!(signature, id, "{name}");
        // sfdisk lists the extended container too; it is not a volume.
        let expected: Vec<(u32, u64, u64, u8)> = pt["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let node = p["node"].as_str().unwrap();
                let number = node
                    .trim_start_matches("IMG")
                    .trim_start_matches('p')
                    .parse()
                    .unwrap();
                let ty = u8::from_str_radix(p["type"].as_str().unwrap(), 16).unwrap();
                (
                    number,
                    p["start"].as_u64().unwrap(),
                    p["size"].as_u64().unwrap(),
                    ty,
                )
            })
            .filter(|p| !is_extended(p.3))
            .collect();
        let got: Vec<(u32, u64, u64, u8)> = partitions
            .iter()
            .map(|p| (p.number, p.start / 512, p.len / 512, p.mbr_type.unwrap()))
            .collect();
        assert_eq!(got, expected, "{name}");
        for p in &partitions {
            assert_eq!(
                p.part_uuid.as_deref(),
                Some(format!("{id}-{:02x}", p.number).as_str())
            );
        }
    }
}

/// An MBR sector with `entries` (boot, type, start, sectors) and the signature.
fn boot_record(entries: &[(u8, u8, u32, u32)]) -> Vec<u8> {
    let mut s = vec![0u8; SECTOR];
    for (i, (boot, ty, start, n)) in entries.iter().enumerate() {
        let e = &mut s[446 + 16 * i..446 + 16 * (i + 1)];
        e[0] = *boot;
        e[4] = *ty;
        e[8..12].copy_from_slice(&start.to_le_bytes());
        e[12..16].copy_from_slice(&n.to_le_bytes());
    }
    s[440..444].copy_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    s[510] = 0x55;
    s[511] = 0xaa;
    s
}

fn disk_with(sectors: usize, records: &[(usize, Vec<u8>)]) -> Vec<u8> {
    let mut d = vec![0u8; sectors * SECTOR];
    for (at, r) in records {
        d[at * SECTOR..(at + 1) * SECTOR].copy_from_slice(r);
    }
    d
}

#[test]
fn an_ebr_chain_that_loops_ends_without_hanging() {
    // Extended at 100..1000; EBR at 100 → logical, link back to itself (offset 0).
    let d = disk_with(
        1000,
        &[
            (0, boot_record(&[(0, 0x05, 100, 900)])),
            (100, boot_record(&[(0, 0x83, 10, 50), (0, 0x05, 0, 100)])),
        ],
    );
    let t = table_of(d).unwrap();
    let numbers: Vec<u32> = t.partitions().iter().map(|p| p.number).collect();
    assert_eq!(numbers, [5]);
}

#[test]
fn partitions_outside_the_disk_or_their_extended_partition_are_refused() {
    let d = disk_with(
        1000,
        &[
            (
                0,
                boot_record(&[
                    (0x80, 0x83, 10, 20),
                    (0, 0x83, 900, 200),
                    (0, 0x0f, 500, 400),
                ]),
            ),
            // logical 5 fits; the link's logical 6 overflows the extended partition
            (500, boot_record(&[(0, 0x83, 1, 10), (0, 0x05, 100, 50)])),
            (600, boot_record(&[(0, 0x83, 1, 1000)])),
        ],
    );
    let t = table_of(d).unwrap();
    let got: Vec<(u32, u64)> = t
        .partitions()
        .iter()
        .map(|p| (p.number, p.start / 512))
        .collect();
    assert_eq!(got, [(1, 10), (5, 501)]);
    assert_eq!(t.partitions()[0].part_uuid.as_deref(), Some("a1b2c3d4-01"));
}

#[test]
fn bad_boot_flags_or_a_fat_boot_sector_are_not_tables() {
    let d = disk_with(100, &[(0, boot_record(&[(0x12, 0x83, 1, 10)]))]);
    assert_eq!(table_of(d).unwrap(), Table::None);
    let fat = crate::testutil::fat_volume(1 << 20, &[]);
    assert_eq!(table_of(fat).unwrap(), Table::None);
}

#[test]
fn a_protective_mbr_without_gpt_gives_no_partitions() {
    let d = disk_with(100, &[(0, boot_record(&[(0, 0xee, 1, 99)]))]);
    assert!(table_of(d).is_err());
}

#[test]
fn a_hybrid_mbr_beside_a_gpt_yields_the_gpt() {
    let esp = crate::testutil::fat_volume(1 << 20, &[]);
    let img = crate::testutil::gpt_image(&[(crate::partition::types::ESP, esp)]);
    let mut bytes = std::fs::read(img.path()).unwrap();
    let total = (bytes.len() / SECTOR) as u32;
    let hybrid = boot_record(&[(0, 0xee, 1, 2047), (0x80, 0x0c, 2048, 2048), (0, 0, 0, 0)]);
    bytes[..SECTOR].copy_from_slice(&hybrid);
    let t = table_of(bytes).unwrap();
    assert!(matches!(t, Table::Gpt { .. }), "{t:?}");
    assert!(total > 4096);
}

#[test]
fn an_isohybrid_partition_may_start_at_sector_zero() {
    let d = disk_with(
        100,
        &[(0, boot_record(&[(0x80, 0x00, 0, 100), (0, 0xef, 10, 20)]))],
    );
    let t = table_of(d).unwrap();
    let got: Vec<(u32, u64)> = t.partitions().iter().map(|p| (p.number, p.start)).collect();
    assert_eq!(got, [(1, 0), (2, 10 * 512)]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any bytes at the places the reader looks (sector 0, EBRs) never panic, and every
    /// partition returned lies inside the disk.
    #[test]
    fn hostile_records_never_panic_and_stay_inside_the_disk(
        entries in proptest::collection::vec((prop_oneof![Just(0u8), Just(0x80u8)],
            prop_oneof![Just(0x05u8), Just(0x0f), Just(0x83), Just(0x0c), Just(0xee), any::<u8>()],
            0u32..300, 0u32..300), 1..4),
        ebrs in proptest::collection::vec((0usize..256, proptest::collection::vec(
            (Just(0u8), prop_oneof![Just(0x05u8), Just(0x83)], 0u32..300, 0u32..300), 1..4)), 0..8),
    ) {
        let mut records = vec![(0usize, boot_record(&entries))];
        for (at, e) in &ebrs {
            records.push((1 + at, boot_record(e)));
        }
        let d = disk_with(258, &records);
        if let Ok(t) = table_of(d) {
            let mut logical = 0;
            for p in t.partitions() {
                prop_assert!(p.start + p.len <= 258 * 512);
                prop_assert!(p.len > 0);
                if p.number >= 5 { logical += 1; }
            }
            prop_assert!(logical <= MAX_LOGICAL as usize);
        }
    }

    #[test]
    fn arbitrary_first_sectors_never_panic(bytes in proptest::collection::vec(any::<u8>(), 512..2048)) {
        let _ = table_of(bytes);
    }
}
