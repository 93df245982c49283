//! One test per naming rule, real-world `/boot` listings under `testdata/`, and properties.

use super::*;
use crate::entry::syslinux::tests::MemFs;
use crate::entry::tests::view;

fn k(v: Option<&str>, arch: Option<&str>) -> Option<KernelName> {
    Some(KernelName {
        version: v.map(str::to_string),
        arch: arch.map(str::to_string),
    })
}

#[test]
fn kernel_names() {
    let cases: &[(&str, Option<KernelName>)] = &[
        ("vmlinuz-6.1.0-13-amd64", k(Some("6.1.0-13-amd64"), None)),
        ("vmlinux-6.6.1", k(Some("6.6.1"), None)),
        ("kernel-6.1.57-gentoo", k(Some("6.1.57-gentoo"), None)),
        ("bzImage-5.15.0", k(Some("5.15.0"), None)),
        (
            "kernel-genkernel-x86_64-6.1.57-gentoo",
            k(Some("6.1.57-gentoo"), Some("x86_64")),
        ),
        ("vmlinuz", k(None, None)),
        ("bzImage", k(None, None)),
        ("vmlinuz-0-rescue-1234", k(Some("0-rescue-1234"), None)),
        ("vmlinuz.old", None),
        ("vmlinuz-6.1.0.old", None),
        ("vmlinuz-6.1.0.OLD", None),
        ("bzImage-6.1.bak", None),
        ("vmlinuz-6.1~", None),
        ("kernel-config", None),
        ("vmlinuz-", None),
        ("kernel-genkernel-x86_64", None),
        ("kernel-genkernel--6.1", None),
        ("initrd.img-6.1", None),
        ("config-6.1.0", None),
        ("System.map-6.1.0", None),
        ("Vmlinuz-6.1", None),
    ];
    for (name, want) in cases {
        assert_eq!(&classify(name), want, "{name}");
    }
}

#[test]
fn initrd_names_by_kernel() {
    let g = classify("kernel-genkernel-x86_64-6.1").unwrap();
    assert_eq!(initrd_names(&g)[0], "initramfs-genkernel-x86_64-6.1");
    let d = classify("vmlinuz-6.1").unwrap();
    assert_eq!(
        initrd_names(&d),
        [
            "initrd.img-6.1",
            "initrd-6.1.img",
            "initrd-6.1",
            "initramfs-6.1.img",
            "initramfs-6.1"
        ]
    );
    let u = classify("bzImage").unwrap();
    assert_eq!(initrd_names(&u), ["initrd.img", "initramfs.img"]);
}

fn scan(files: &[(&str, &str)], part_uuid: Option<&str>, uuid: Option<&str>) -> Found {
    let fs = MemFs::new(files);
    let mut v = view("vda2", &fs);
    v.part_uuid = part_uuid;
    v.uuid = uuid;
    discover(&v, &[])
}

fn rows(f: &Found) -> Vec<(String, Vec<String>)> {
    f.entries
        .iter()
        .map(|e| {
            (
                e.kernel.path.clone(),
                e.initrds.iter().map(|i| i.path.clone()).collect(),
            )
        })
        .collect()
}

#[test]
fn newest_first_with_paired_initrds_and_root_from_the_volume() {
    let f = scan(
        &[
            ("/boot/vmlinuz-6.1.0-9-amd64", "old"),
            ("/boot/initrd.img-6.1.0-9-amd64", "i"),
            ("/boot/vmlinuz-6.1.0-13-amd64", "new"),
            ("/boot/initrd.img-6.1.0-13-amd64", "i"),
            ("/boot/config-6.1.0-13-amd64", "c"),
        ],
        Some("0f1e2d3c-aaaa-bbbb-cccc-0123456789ab"),
        Some("1234"),
    );
    assert_eq!(
        rows(&f),
        [
            (
                "/boot/vmlinuz-6.1.0-13-amd64".into(),
                vec!["/boot/initrd.img-6.1.0-13-amd64".into()]
            ),
            (
                "/boot/vmlinuz-6.1.0-9-amd64".into(),
                vec!["/boot/initrd.img-6.1.0-9-amd64".into()]
            ),
        ]
    );
    let e = &f.entries[0];
    assert_eq!(
        e.cmdline,
        "root=PARTUUID=0f1e2d3c-aaaa-bbbb-cccc-0123456789ab ro"
    );
    assert_eq!(e.title, "Linux 6.1.0-13-amd64");
    assert_eq!(e.id, "vmlinuz-6.1.0-13-amd64");
    assert_eq!(e.version.as_deref(), Some("6.1.0-13-amd64"));
    assert_eq!(e.format, Format::Bootdir);
    assert_eq!(f.default, None, "the first entry boots");
}

#[test]
fn uuid_when_there_is_no_partuuid() {
    let f = scan(&[("/boot/vmlinuz-6.1", "k")], None, Some("1234-ABCD"));
    assert_eq!(f.entries[0].cmdline, "root=UUID=1234-ABCD ro");
    let f = scan(&[("/boot/vmlinuz-6.1", "k")], None, None);
    assert_eq!(f.entries[0].cmdline, "ro");
}

#[test]
fn initrd_name_styles() {
    let f = scan(
        &[
            ("/boot/kernel-6.1-gentoo", "a"),
            ("/boot/initramfs-6.1-gentoo.img", "i"),
            ("/boot/vmlinuz-5.0", "bb"),
            ("/boot/initrd-5.0.img", "i"),
            ("/boot/kernel-genkernel-x86_64-4.19", "ccc"),
            ("/boot/initramfs-genkernel-x86_64-4.19", "i"),
            ("/boot/bzImage-4.1", "dddd"),
            ("/boot/initramfs-4.1", "i"),
            ("/boot/vmlinux-3.0", "eeeee"),
        ],
        None,
        None,
    );
    let r = rows(&f);
    assert_eq!(r[0].1, ["/boot/initramfs-6.1-gentoo.img"]);
    assert_eq!(r[1].1, ["/boot/initrd-5.0.img"]);
    assert_eq!(r[2].1, ["/boot/initramfs-genkernel-x86_64-4.19"]);
    assert_eq!(r[3].1, ["/boot/initramfs-4.1"]);
    assert!(r[4].1.is_empty(), "no initrd: boots without one");
}

#[test]
fn unversioned_kernel_pairs_with_unversioned_initrd() {
    let f = scan(
        &[("/boot/bzImage", "k"), ("/boot/initramfs.img", "i")],
        None,
        None,
    );
    assert_eq!(
        rows(&f),
        [("/boot/bzImage".into(), vec!["/boot/initramfs.img".into()])]
    );
    assert_eq!(f.entries[0].title, "Linux bzImage");
}

#[test]
fn symlink_at_the_root_and_old_backups_are_not_listed_twice() {
    // Debian's /vmlinuz and /vmlinuz.old symlinks: read_dir reports their targets' kind, and
    // the same length as the target.
    let f = scan(
        &[
            ("/vmlinuz", "KERNEL-61"),
            ("/vmlinuz.old", "KERNEL-5"),
            ("/initrd.img", "I"),
            ("/boot/vmlinuz-6.1", "KERNEL-61"),
            ("/boot/vmlinuz-5.10", "KERNEL-5"),
            ("/boot/vmlinuz-5.10.old", "KERNEL-4"),
        ],
        Some("p"),
        None,
    );
    let paths: Vec<String> = rows(&f).into_iter().map(|r| r.0).collect();
    assert_eq!(paths, ["/boot/vmlinuz-6.1", "/boot/vmlinuz-5.10"]);
}

#[test]
fn same_version_in_boot_and_root_is_listed_once_from_boot() {
    let f = scan(
        &[
            ("/vmlinuz-6.1", "a"),
            ("/boot/vmlinuz-6.1", "b"),
            ("/boot/kernel-6.1", "c"),
        ],
        None,
        None,
    );
    assert_eq!(rows(&f).len(), 1);
    // Within a directory, name order decides.
    assert_eq!(f.entries[0].kernel.path, "/boot/kernel-6.1");
}

#[test]
fn an_unversioned_kernel_of_its_own_is_listed_last() {
    let f = scan(
        &[
            ("/boot/vmlinuz-6.1", "a"),
            ("/boot/bzImage", "custom build"),
        ],
        None,
        None,
    );
    let paths: Vec<String> = rows(&f).into_iter().map(|r| r.0).collect();
    assert_eq!(paths, ["/boot/vmlinuz-6.1", "/boot/bzImage"]);
}

#[test]
fn kernels_at_a_separate_boot_volume_take_root_from_the_one_root_filesystem() {
    let boot = MemFs::new(&[("/vmlinuz-6.1", "k"), ("/initramfs-6.1.img", "i")]);
    let root = MemFs::new(&[
        ("/etc/os-release", "ID=gentoo\n"),
        ("/etc/kernel/cmdline", "quiet\n"),
    ]);
    let other = MemFs::new(&[("/data", "x")]);
    let mut b = view("vda1", &boot);
    b.part_uuid = Some("boot-part");
    let mut r = view("vda2", &root);
    r.part_uuid = Some("root-part");
    let o = view("vdb1", &other);
    let f = discover(&b, &[b, r, o]);
    assert_eq!(f.entries[0].cmdline, "root=PARTUUID=root-part ro quiet");
    assert_eq!(f.entries[0].initrds[0].path, "/initramfs-6.1.img");
    // Two candidates: no guess.
    let root2 = MemFs::new(&[("/usr/lib/os-release", "ID=debian\n")]);
    let r2 = view("vdc1", &root2);
    let f = discover(&b, &[b, r, r2]);
    assert_eq!(f.entries[0].cmdline, "ro");
}

#[test]
fn directories_named_like_kernels_are_ignored() {
    let f = scan(&[("/boot/vmlinuz-6.1/x", "k")], None, None);
    assert!(f.entries.is_empty());
    assert!(scan(&[("/etc/x", "y")], None, None).entries.is_empty());
}

#[test]
fn real_world_fixtures() {
    crate::entry::syslinux::tests::check_fixtures("src/entry/bootdir/testdata", discover);
}

proptest::proptest! {
    #[test]
    fn classify_never_panics(name in ".{0,40}") {
        if let Some(k) = classify(&name) {
            let _ = initrd_names(&k);
        }
    }

    #[test]
    fn scan_order_is_newest_first(vers in proptest::collection::vec("[0-9]{1,2}(\\.[0-9]{1,2}){0,2}", 1..8)) {
        let files: Vec<(String, String)> = vers.iter().enumerate()
            .map(|(i, v)| (format!("/boot/vmlinuz-{v}"), "x".repeat(i + 1))).collect();
        let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let f = scan(&refs, None, None);
        for w in f.entries.windows(2) {
            let (a, b) = (w[0].version.as_deref().unwrap(), w[1].version.as_deref().unwrap());
            proptest::prop_assert!(crate::version::compare(a, b) != std::cmp::Ordering::Less);
        }
    }
}

/// The whole pipeline on a real ext4 image: no configuration, so the scan runs, with the
/// partition's PARTUUID in `root=`.
#[test]
fn pipeline_scans_an_ext4_root_without_configuration() {
    use crate::testutil::{ext4_volume, gpt_image};
    let root = ext4_volume(
        16 << 20,
        &[
            ("boot/vmlinuz-6.1.0-1", b"NEW".as_slice()),
            ("boot/initrd.img-6.1.0-1", b"I"),
            ("boot/vmlinuz-5.10.0-1", b"OLD!"),
            ("etc/os-release", b"ID=debian\n"),
        ],
    );
    let img = gpt_image(&[(crate::partition::types::LINUX_FS, root)]);
    let disk = crate::disk::Disk::open(img.path()).unwrap();
    let mut vols = crate::pipeline::Volumes::default();
    vols.add_disk(&disk, "img", &|n| format!("img:{n}"));
    let part_uuid = vols.list[0]
        .partition
        .as_ref()
        .and_then(|p| p.part_uuid.clone())
        .unwrap();
    let (list, _) = vols.boot_list();
    let first = &list.entries[list.default_entry().unwrap()];
    assert_eq!(first.kernel.path, "/boot/vmlinuz-6.1.0-1");
    assert_eq!(first.initrds[0].path, "/boot/initrd.img-6.1.0-1");
    assert_eq!(first.cmdline, format!("root=PARTUUID={part_uuid} ro"));
    assert_eq!(list.entries.len(), 2);
}

#[test]
fn etc_kernel_cmdline_adds_the_distribution_options() {
    let cases: &[(Option<&str>, Option<&str>, &str)] = &[
        (Some("root=PARTUUID=p"), None, "root=PARTUUID=p ro"),
        (
            Some("root=PARTUUID=p"),
            Some("console=ttyS0 quiet"),
            "root=PARTUUID=p ro console=ttyS0 quiet",
        ),
        (
            Some("root=PARTUUID=p"),
            Some("rw quiet"),
            "root=PARTUUID=p rw quiet",
        ),
        (
            Some("root=PARTUUID=p"),
            Some("root=/dev/sda2 ro quiet"),
            "root=/dev/sda2 ro quiet",
        ),
        (None, Some("quiet"), "ro quiet"),
        (None, None, "ro"),
    ];
    for (root, args, want) in cases {
        assert_eq!(command_line(*root, *args), *want, "{root:?} {args:?}");
    }
    let f = scan(
        &[
            ("/boot/vmlinuz-6.1", "k"),
            (
                "/etc/kernel/cmdline",
                "# comment\n console=ttyS0\n  quiet\n",
            ),
        ],
        Some("p"),
        None,
    );
    assert_eq!(
        f.entries[0].cmdline,
        "root=PARTUUID=p ro console=ttyS0 quiet"
    );
}
