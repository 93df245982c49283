//! ISO images made by the real `xorriso` (a prerequisite `cargo xtask test` installs), read
//! through a [`MemFs`] file as the pipeline reads them through a volume's file.

use std::rc::Rc;

use super::*;
use crate::fs::mem::MemFs;
use crate::testutil::iso_image;

fn open(img: Vec<u8>) -> IsoFs {
    let parent: Rc<dyn BootFs> = Rc::new(MemFs([("/x.iso".to_string(), img)].into()));
    IsoFs::open(parent, "/x.iso").unwrap()
}

const KERNEL: &[u8] = b"a kernel image that is not very long";

fn files() -> Vec<(&'static str, Vec<u8>)> {
    let big: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    vec![
        ("casper/vmlinuz", KERNEL.to_vec()),
        ("casper/initrd", big),
        ("boot/grub/loopback.cfg", b"menuentry x {}\n".to_vec()),
        ("Mixed Case Long-Name.file.txt", b"long".to_vec()),
    ]
}

fn build(args: &[&str], links: &[(&str, &str)]) -> IsoFs {
    let f = files();
    let refs: Vec<(&str, &[u8])> = f.iter().map(|(p, d)| (*p, d.as_slice())).collect();
    open(iso_image(args, &refs, links))
}

fn check_contents(fs: &IsoFs, long_name: &str) {
    assert_eq!(fs.read("/casper/vmlinuz", 1 << 20).unwrap(), KERNEL);
    let big = fs.read("/casper/initrd", 1 << 20).unwrap();
    assert_eq!(big, files()[1].1);
    let m = fs.metadata("/casper").unwrap();
    assert_eq!(m.kind, FileKind::Dir);
    let names: Vec<String> = fs
        .read_dir("/")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(names.contains(&long_name.to_string()), "{names:?}");
    assert!(names.contains(&"casper".to_string()), "{names:?}");
    // Random access across the 256 KiB copy chunks and at the end.
    let mut buf = [0u8; 10];
    assert_eq!(fs.read_at("/casper/initrd", 262_140, &mut buf).unwrap(), 10);
    assert_eq!(&buf[..], &files()[1].1[262_140..262_150]);
    assert_eq!(fs.read_at("/casper/initrd", 699_995, &mut buf).unwrap(), 5);
    assert_eq!(fs.read_at("/casper/initrd", 800_000, &mut buf).unwrap(), 0);
    assert_eq!(fs.read_at("/casper/initrd", u64::MAX, &mut buf).unwrap(), 0);
    assert!(matches!(
        fs.read("/casper/initrd", 1000),
        Err(FsError::TooLarge { .. })
    ));
    assert!(matches!(fs.metadata("/nope"), Err(FsError::NotFound(_))));
}

#[test]
fn rock_ridge_names_and_symlinks() {
    let fs = build(
        &["-R"],
        &[("live/vmlinuz", "../casper/vmlinuz"), ("debian", ".")],
    );
    assert!(matches!(fs.names, Names::RockRidge { .. }));
    check_contents(&fs, "Mixed Case Long-Name.file.txt");
    assert_eq!(fs.read("/live/vmlinuz", 100).unwrap(), KERNEL);
    // A link to its own directory (Debian's /debian -> .) is walked, bounded.
    assert_eq!(
        fs.read("/debian/debian/casper/vmlinuz", 100).unwrap(),
        KERNEL
    );
    let deep = "/debian".repeat(MAX_LINKS + 1) + "/casper/vmlinuz";
    assert!(fs.read(&deep, 100).is_err());
    assert_eq!(fs.label(), Some("TEST_ISO"));
    assert!(fs.uuid().is_some_and(|u| u.len() == 22), "{:?}", fs.uuid());
}

#[test]
fn joliet_names_without_rock_ridge() {
    let fs = build(&["-J", "-joliet-long"], &[]);
    assert_eq!(fs.names, Names::Joliet);
    check_contents(&fs, "Mixed Case Long-Name.file.txt");
}

#[test]
fn plain_iso9660_names_as_linux_shows_them() {
    let fs = build(&[], &[]);
    assert_eq!(fs.names, Names::Plain);
    check_contents(&fs, "mixed_ca.txt");
}

/// Byte offset of the directory record named `name` (plain ISO 9660 name bytes) in `img`.
fn find_record(img: &[u8], name: &[u8]) -> usize {
    (0..img.len() - 34)
        .find(|&i| {
            let nl = usize::from(img[i + 32]);
            nl == name.len()
                && img.get(i + 33..i + 33 + nl) == Some(name)
                && usize::from(img[i]) >= 33 + nl
        })
        .unwrap()
}

#[test]
fn a_directory_that_points_at_its_ancestor_is_a_loop_not_a_hang() {
    let mut img = iso_image(&["-R"], &[("a/b/file", b"x")], &[]);
    // Make /a/b's record point at /a's extent.
    let a = find_record(&img, b"A");
    let b = find_record(&img, b"B");
    let (extent, len) = (img[a + 2..a + 10].to_vec(), img[a + 10..a + 18].to_vec());
    img[b + 2..b + 10].copy_from_slice(&extent);
    img[b + 10..b + 18].copy_from_slice(&len);
    let fs = open(img);
    let err = fs.metadata("/a/b/b/file").unwrap_err().to_string();
    assert!(err.contains("directory loop"), "{err}");
    assert!(fs
        .read_dir("/a/b")
        .unwrap_err()
        .to_string()
        .contains("loop"));
    assert!(fs.read_dir("/a").is_ok(), "the rest of the image is fine");
}

#[test]
fn an_extent_past_the_end_of_the_image_is_dropped() {
    let mut img = iso_image(&["-R"], &[("k", b"kernel"), ("ok", b"fine")], &[]);
    let k = find_record(&img, b"K.;1");
    img[k + 10..k + 14].copy_from_slice(&u32::MAX.to_le_bytes());
    let fs = open(img);
    assert!(matches!(fs.metadata("/k"), Err(FsError::NotFound(_))));
    assert_eq!(fs.read("/ok", 10).unwrap(), b"fine");
}

#[test]
fn not_an_iso_is_refused_with_the_file_named() {
    let parent: Rc<dyn BootFs> = Rc::new(MemFs::new(&[("/x.iso", &"z".repeat(40_000))]));
    let err = IsoFs::open(parent, "/x.iso").err().unwrap().to_string();
    assert!(
        err.contains("/x.iso") && err.contains("primary volume descriptor"),
        "{err}"
    );
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn base() -> &'static Vec<u8> {
        static IMG: OnceLock<Vec<u8>> = OnceLock::new();
        IMG.get_or_init(|| {
            iso_image(
                &["-R", "-J"],
                &[("a/b/c/vmlinuz", b"k"), ("boot/grub/loopback.cfg", b"x")],
                &[("l", "a/b"), ("m", "/m")],
            )
        })
    }

    /// Walks everything reachable, bounded.
    fn walk(fs: &IsoFs) {
        let mut todo = vec!["/".to_string()];
        let mut seen = 0;
        while let Some(d) = todo.pop() {
            seen += 1;
            if seen > 200 {
                break;
            }
            for e in fs.read_dir(&d).unwrap_or_default() {
                let p = format!("{}/{}", d.trim_end_matches('/'), e.name);
                let _ = fs.metadata(&p);
                let _ = fs.read(&p, 1 << 20);
                let mut b = [0u8; 64];
                let _ = fs.read_at(&p, 3, &mut b);
                if e.kind == FileKind::Dir && p.len() < 256 {
                    todo.push(p);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn mutated_images(edits in proptest::collection::vec((32_768usize..80_000, any::<u8>()), 1..40)) {
            let mut img = base().clone();
            for (at, v) in edits {
                if at < img.len() {
                    img[at] = v;
                }
            }
            let parent: Rc<dyn BootFs> = Rc::new(MemFs([("/x.iso".to_string(), img)].into()));
            if let Ok(fs) = IsoFs::open(parent, "/x.iso") {
                walk(&fs);
            }
        }

        #[test]
        fn arbitrary_bytes_after_a_descriptor(data in proptest::collection::vec(any::<u8>(), 0..8192)) {
            let mut img = vec![0u8; 32_768];
            img.extend_from_slice(&data);
            if img.len() > 32_774 {
                img[32_768] = 1;
                img[32_769..32_774].copy_from_slice(b"CD001");
            }
            let parent: Rc<dyn BootFs> = Rc::new(MemFs([("/x.iso".to_string(), img)].into()));
            if let Ok(fs) = IsoFs::open(parent, "/x.iso") {
                walk(&fs);
            }
        }
    }
}

#[test]
fn a_label_with_control_characters_is_shown_harmless() {
    let mut img = iso_image(&["-R"], &[("k", b"x")], &[]);
    img[16 * 2048 + 40..16 * 2048 + 44].copy_from_slice(b"\x1b[2J");
    let fs = open(img);
    assert_eq!(
        fs.label(),
        Some("?[2J_ISO"),
        "TEST_ISO with its first 4 bytes replaced"
    );
}
