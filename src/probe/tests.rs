use super::*;
use crate::testutil::{sparse_image, sparse_text};
use proptest::prelude::*;

/// Volumes made by the real tools; each fixture keeps the head [`probe`] reads, and the JSON
/// beside it is `blkid -p -o export` of the full image. (name, size MiB, shell command with
/// `$IMG` for the image file.)
const FIXTURES: &[(&str, u64, &str)] = &[
    ("ext2", 8, "mkfs.ext2 -q -F -L e2label -U 0c6f7d2e-6a1b-4c3d-9e8f-112233445566 $IMG"),
    ("ext3", 8, "mkfs.ext3 -q -F -L e3label $IMG"),
    ("ext4", 8, "mkfs.ext4 -q -F -L boot $IMG"),
    ("fat12", 1, "mkfs.vfat -F 12 -n SMALL $IMG"),
    ("fat16", 16, "mkfs.vfat -F 16 -n SIXTEEN -i 1234abcd $IMG"),
    ("fat32", 40, "mkfs.vfat -F 32 -n ESP $IMG"),
    ("xfs", 300, "mkfs.xfs -q -L xfsboot $IMG"),
    ("btrfs", 128, "mkfs.btrfs -q -L btrboot $IMG"),
    ("f2fs", 64, "mkfs.f2fs -q -l f2label $IMG"),
    ("squashfs", 0, "mkdir -p $IMG.d && echo x > $IMG.d/f && mksquashfs $IMG.d $IMG -noappend -quiet"),
    ("iso9660", 0, "mkdir -p $IMG.d && echo x > $IMG.d/f && xorriso -as mkisofs -quiet -V LEAP_ISO -o $IMG $IMG.d"),
    ("swap", 4, "mkswap -L swaplabel $IMG"),
    ("luks1", 4, "echo -n pw | cryptsetup luksFormat -q --type luks1 --pbkdf-force-iterations 1000 --key-file - $IMG"),
    ("luks2", 20, "echo -n pw | cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file - $IMG"),
];

fn dir() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/src/probe/testdata/")
}

/// Regenerates `testdata/*.sparse` and `*.json` with the real mkfs tools and blkid:
/// `cargo test -p leapboot regenerate_probe_fixtures -- --ignored`.
#[test]
#[ignore = "needs mkfs tools; regenerates checked-in fixtures"]
fn regenerate_probe_fixtures() {
    for (name, mib, cmd) in FIXTURES {
        let tmp = tempfile::tempdir().unwrap();
        let img = tmp.path().join("img");
        if *mib > 0 {
            std::fs::File::create(&img)
                .unwrap()
                .set_len(mib << 20)
                .unwrap();
        }
        let ok = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd.replace("$IMG", &img.display().to_string()))
            .env("PATH", "/usr/sbin:/sbin:/usr/bin:/bin")
            .status()
            .unwrap()
            .success();
        assert!(ok, "{name}: {cmd}");
        let out = std::process::Command::new("blkid")
            .args(["-p", "-o", "export"])
            .arg(&img)
            .output()
            .unwrap();
        let mut json = serde_json::Map::new();
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((k, v)) = l.split_once('=') {
                if matches!(k, "TYPE" | "UUID" | "LABEL") {
                    json.insert(k.into(), v.into());
                }
            }
        }
        let bytes = std::fs::read(&img).unwrap();
        std::fs::write(
            format!("{}{name}.sparse", dir()),
            sparse_text(&bytes, HEAD_BYTES),
        )
        .unwrap();
        std::fs::write(
            format!("{}{name}.json", dir()),
            serde_json::to_string_pretty(&json).unwrap() + "\n",
        )
        .unwrap();
    }
}

#[test]
fn real_superblocks_read_as_blkid_reads_them() {
    for (name, _, _) in FIXTURES {
        let head =
            sparse_image(&std::fs::read_to_string(format!("{}{name}.sparse", dir())).unwrap());
        let want: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{}{name}.json", dir())).unwrap(),
        )
        .unwrap();
        let s = |k: &str| want.get(k).and_then(|v| v.as_str()).map(str::to_string);
        match identify(&head, &[]) {
            Probed::Fs(info) => {
                assert_eq!(Some(info.kind.name().to_string()), s("TYPE"), "{name}");
                assert_eq!(info.uuid, s("UUID"), "{name}: UUID");
                assert_eq!(info.label, s("LABEL"), "{name}: LABEL");
            }
            Probed::Other(o) => {
                assert_eq!(Some(o.kind.to_string()), s("TYPE"), "{name}");
                if let Some(u) = s("UUID") {
                    assert!(o.detail.contains(&u), "{name}: {} lacks {u}", o.detail);
                }
            }
            Probed::Unknown => panic!("{name}: not recognised"),
        }
    }
}

#[test]
fn md_lvm_and_bcache_members_are_recognised_before_filesystems() {
    let ext4 = sparse_image(&std::fs::read_to_string(format!("{}ext4.sparse", dir())).unwrap());
    // md 1.2: superblock at 4 KiB, on top of something that also looks like ext4.
    let mut h = ext4.clone();
    h[4096..4100].copy_from_slice(&0xa92b_4efcu32.to_le_bytes());
    h[4100..4104].copy_from_slice(&1u32.to_le_bytes());
    assert!(matches!(
        identify(&h, &[]),
        Probed::Other(Other {
            kind: "linux_raid_member",
            ..
        })
    ));
    // md 0.90 at the end of the device.
    let mut tail = vec![0u8; 512];
    tail[..4].copy_from_slice(&0xa92b_4efcu32.to_le_bytes());
    assert!(matches!(
        identify(&ext4, &[tail]),
        Probed::Other(Other {
            kind: "linux_raid_member",
            ..
        })
    ));
    // LVM2 label in sector 1.
    let mut h = vec![0u8; HEAD_BYTES];
    h[512..520].copy_from_slice(b"LABELONE");
    h[536..544].copy_from_slice(b"LVM2 001");
    assert!(matches!(
        identify(&h, &[]),
        Probed::Other(Other {
            kind: "LVM2_member",
            ..
        })
    ));
    let mut h = vec![0u8; HEAD_BYTES];
    h[4096 + 24..4096 + 40].copy_from_slice(&[
        0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba, 0x6d,
        0x81,
    ]);
    assert!(matches!(
        identify(&h, &[]),
        Probed::Other(Other { kind: "bcache", .. })
    ));
}

#[test]
fn md_tail_offsets_stay_inside_the_volume() {
    for len in [4096u64, 0x4000, 0x1_0000, 0x2_0000, 0x12_3456, 1 << 40] {
        for at in containers::md_tail_offsets(len) {
            assert!(at + 512 <= len, "{len}: {at}");
        }
    }
}

#[test]
fn garbage_and_short_heads_are_unknown() {
    assert_eq!(identify(&[], &[]), Probed::Unknown);
    assert_eq!(identify(&[0xA5; 2048], &[]), Probed::Unknown);
    // A DOS MBR has the boot signature but no FAT BPB.
    let mut b = vec![0u8; 4096];
    b[0] = 0xEB;
    b[510] = 0x55;
    b[511] = 0xAA;
    assert_eq!(identify(&b, &[]), Probed::Unknown);
}

proptest! {
    /// Any head, any truncation of a real superblock, any tails: never a panic.
    #[test]
    fn hostile_heads_never_panic(
        fixture in 0..FIXTURES.len(),
        cut in 0usize..HEAD_BYTES,
        flips in proptest::collection::vec((0usize..HEAD_BYTES, any::<u8>()), 0..32),
        tail in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let name = FIXTURES[fixture].0;
        let mut head = sparse_image(&std::fs::read_to_string(format!("{}{name}.sparse", dir())).unwrap());
        for (at, b) in flips {
            if let Some(x) = head.get_mut(at) { *x ^= b; }
        }
        head.truncate(cut.min(head.len()));
        let _ = identify(&head, &[tail]);
    }
}
