//! Discovery tests on UKIs built by [`pe::build`] in a temporary directory.

use std::cell::Cell;
use std::path::Path;

use super::*;
use crate::entry::tests::view;
use crate::fs::dir::DirFs;
use crate::fs::{DirEntry, Metadata};

const HOST: u16 = match MACHINE {
    Some(m) => m,
    None => object::pe::IMAGE_FILE_MACHINE_AMD64.0,
};

/// A UKI with these os-release, command line and uname, and a `.linux` of `kernel_len` bytes.
fn uki(osrel: &str, cmdline: &str, uname: &str, kernel_len: usize) -> Vec<u8> {
    let kernel = vec![0x90; kernel_len];
    pe::build(
        HOST,
        &[
            (".osrel", osrel.as_bytes()),
            (".cmdline", cmdline.as_bytes()),
            (".uname", uname.as_bytes()),
            (".initrd", b"INITRD"),
            (".linux", &kernel),
        ],
    )
}

fn write(root: &Path, path: &str, data: &[u8]) {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

#[test]
fn discover_lists_ukis_with_their_metadata_and_reports_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let debian =
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=Debian\nVERSION_ID=12\nID=debian\n";
    write(
        root,
        "EFI/Linux/debian-6.1.0-10.efi",
        &uki(
            debian,
            "root=/dev/vda2 ro quiet\n\0\0",
            "6.1.0-10-amd64\n",
            5000,
        ),
    );
    write(
        root,
        "EFI/Linux/debian-6.1.0-9+2-1.efi",
        &uki(debian, "root=/dev/vda2", "6.1.0-9-amd64", 5000),
    );
    write(
        root,
        "EFI/Linux/shell.efi",
        &pe::build(HOST, &[(".text", b"code")]),
    );
    write(root, "EFI/Linux/junk.EFI", b"not a PE file at all");
    write(root, "EFI/Linux/._debian-6.1.0-10.efi", b"macOS metadata");
    write(root, "EFI/Linux/notes.txt", b"hello");
    let fs = DirFs::new(root);
    let found = discover(&view("esp", &fs), &[]);

    let ids: Vec<&str> = found.entries.iter().map(|e| e.id.as_str()).collect();
    // Same sort key and version: by file name, newest first; the boot counter is stripped.
    assert_eq!(ids, ["debian-6.1.0-10", "debian-6.1.0-9"]);
    let e = &found.entries[0];
    assert_eq!(e.title, "Debian GNU/Linux 12 (bookworm)");
    assert_eq!(e.version.as_deref(), Some("12"));
    assert_eq!(e.cmdline, "root=/dev/vda2 ro quiet");
    assert_eq!(e.kind, EntryKind::Uki);
    assert_eq!(e.format, Format::Uki);
    assert_eq!(e.kernel.to_string(), "esp:/EFI/Linux/debian-6.1.0-10.efi");
    assert!(e.initrds.is_empty());
    assert_eq!(e.source.file, "/EFI/Linux/debian-6.1.0-10.efi");

    let errors: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        errors,
        [
            "esp:/EFI/Linux/junk.EFI: not a unified kernel image: not a PE file (no MZ signature)",
            "esp:/EFI/Linux/shell.efi: not a unified kernel image: no .linux section: a PE program, not a unified kernel image",
        ]
    );
}

#[test]
fn sorting_follows_type_1_rules() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let os = |v: &str| format!("NAME=Fedora\nID=fedora\nVERSION_ID={v}\n");
    write(root, "EFI/Linux/a.efi", &uki(&os("6.1"), "", "", 10));
    write(root, "EFI/Linux/b.efi", &uki(&os("6.10"), "", "", 10));
    write(root, "EFI/Linux/c+0-3.efi", &uki(&os("7.0"), "", "", 10));
    write(
        root,
        "EFI/Linux/z.efi",
        &uki("NAME=NoSortKey\n", "", "9.9", 10),
    );
    let fs = DirFs::new(root);
    let found = discover(&view("v", &fs), &[]);
    let ids: Vec<&str> = found.entries.iter().map(|e| e.id.as_str()).collect();
    // Sort keys first (version newest first), then entries without one; tries exhausted last.
    assert_eq!(ids, ["b", "a", "z", "c"]);
    assert_eq!(found.entries[0].title, "Fedora 6.10");
    assert_eq!(
        found.entries[2].version.as_deref(),
        Some("9.9"),
        ".uname when .osrel has no version"
    );
    assert!(found.errors.is_empty());
}

#[test]
fn the_directory_is_found_in_any_case_and_a_missing_one_is_no_error() {
    let dir = tempfile::tempdir().unwrap();
    let fs = DirFs::new(dir.path());
    let found = discover(&view("v", &fs), &[]);
    assert!(found.entries.is_empty() && found.errors.is_empty());
    write(dir.path(), "efi/LINUX/x.Efi", &uki("ID=x\n", "a=1", "", 10));
    let found = discover(&view("v", &fs), &[]);
    assert_eq!(found.entries.len(), 1);
    assert_eq!(found.entries[0].kernel.path, "/efi/LINUX/x.Efi");
    assert_eq!(found.entries[0].title, "x", "no name in .osrel: the id");
}

#[test]
fn a_uki_for_another_machine_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let other = if HOST == object::pe::IMAGE_FILE_MACHINE_ARM64.0 {
        object::pe::IMAGE_FILE_MACHINE_AMD64.0
    } else {
        object::pe::IMAGE_FILE_MACHINE_ARM64.0
    };
    write(
        dir.path(),
        "EFI/Linux/arm.efi",
        &pe::build(other, &[(".linux", b"k")]),
    );
    let fs = DirFs::new(dir.path());
    let found = discover(&view("v", &fs), &[]);
    assert!(found.entries.is_empty());
    if MACHINE.is_some() {
        assert!(
            found.errors[0].message.contains("built for PE machine"),
            "{}",
            found.errors[0]
        );
    }
}

#[test]
fn an_oversized_uki_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "EFI/Linux/big.efi", &uki("ID=x\n", "", "", 10));
    let f = std::fs::File::options()
        .write(true)
        .open(dir.path().join("EFI/Linux/big.efi"))
        .unwrap();
    f.set_len(MAX_UKI_BYTES + 1).unwrap(); // sparse
    let fs = DirFs::new(dir.path());
    let found = discover(&view("v", &fs), &[]);
    assert!(found.entries.is_empty());
    assert!(
        found.errors[0].message.contains("larger than the"),
        "{}",
        found.errors[0]
    );
}

/// A BootFs that counts the bytes it hands out and can pretend files are longer.
struct Counting<'a> {
    inner: &'a dyn BootFs,
    delivered: Cell<u64>,
    extra_len: u64,
}

impl BootFs for Counting<'_> {
    fn metadata(&self, path: &str) -> Result<Metadata, FsError> {
        let mut m = self.inner.metadata(path)?;
        m.len += self.extra_len;
        Ok(m)
    }
    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        self.inner.read_dir(path)
    }
    fn copy_to(&self, path: &str, out: &mut dyn Write, max: u64) -> Result<u64, FsError> {
        struct Count<'w, 'c>(&'w mut dyn Write, &'c Cell<u64>);
        impl Write for Count<'_, '_> {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                let n = self.0.write(b)?;
                self.1.set(self.1.get() + n as u64);
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                self.0.flush()
            }
        }
        self.inner
            .copy_to(path, &mut Count(out, &self.delivered), max)
    }
}

#[test]
fn listing_reads_the_head_not_the_kernel() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "EFI/Linux/k.efi",
        &uki("ID=x\n", "a=1", "6.1", 8 << 20),
    );
    let inner = DirFs::new(dir.path());
    let fs = Counting {
        inner: &inner,
        delivered: Cell::new(0),
        extra_len: 0,
    };
    let found = discover(&view("v", &fs), &[]);
    assert_eq!(found.entries.len(), 1, "{:?}", found.errors);
    assert!(
        fs.delivered.get() < 1 << 20,
        "{} bytes read to list an 8 MiB UKI",
        fs.delivered.get()
    );
}

#[test]
fn a_file_shorter_than_its_size_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "EFI/Linux/k.efi", &uki("ID=x\n", "", "", 100));
    let inner = DirFs::new(dir.path());
    let fs = Counting {
        inner: &inner,
        delivered: Cell::new(0),
        extra_len: 1 << 20,
    };
    // The filesystem claims 1 MiB more; a section there is past the real end.
    let mut buf = vec![0u8; 10];
    let len = inner.metadata("/EFI/Linux/k.efi").unwrap().len;
    let e = read_parts(
        &fs,
        "/EFI/Linux/k.efi",
        u64::MAX,
        &mut [Part {
            range: len + 5..len + 15,
            sink: &mut buf,
            at: 0,
        }],
    )
    .unwrap_err();
    assert!(matches!(e, UkiError::Short { .. }), "{e}");
}

#[test]
fn read_parts_delivers_ranges_to_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..=255u8).cycle().take(600_000).collect();
    write(dir.path(), "f", &data);
    let fs = DirFs::new(dir.path());
    let (mut a, mut b) = (vec![0u8; 300_000], vec![0u8; 20]);
    read_parts(
        &fs,
        "/f",
        u64::MAX,
        &mut [
            Part {
                range: 200_000..500_000, // across copy_to's 256 KiB chunks
                sink: &mut a,
                at: 0,
            },
            Part {
                range: 10..20,
                sink: &mut b,
                at: 10,
            },
        ],
    )
    .unwrap();
    assert_eq!(a, data[200_000..500_000]);
    assert_eq!(b[..10], [0; 10]);
    assert_eq!(b[10..], data[10..20]);
    // A sink too small is an error, not a panic.
    let mut small = vec![0u8; 5];
    let e = read_parts(
        &fs,
        "/f",
        u64::MAX,
        &mut [Part {
            range: 0..10,
            sink: &mut small,
            at: 0,
        }],
    )
    .unwrap_err();
    assert!(matches!(e, UkiError::Sink(_)), "{e}");
}

#[test]
fn command_lines_are_cleaned() {
    assert_eq!(clean_cmdline("  a=1\nb=2 \r\n"), "a=1 b=2");
    assert_eq!(clean_cmdline(""), "");
}

proptest::proptest! {
    /// However `copy_to` chunks the file, every part gets exactly its bytes, and the writer
    /// stops once the last one arrived.
    #[test]
    fn the_splitter_delivers_exact_ranges(
        len in 1usize..3000,
        cuts in proptest::collection::vec((0usize..3000, 0usize..3000), 1..4),
        chunk in 1usize..700,
    ) {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
        let ranges: Vec<Range<u64>> = cuts
            .iter()
            .map(|&(a, b)| {
                let (a, b) = (a % len, b % len);
                a.min(b) as u64..a.max(b) as u64 + 1
            })
            .collect();
        let mut bufs: Vec<Vec<u8>> = ranges.iter().map(|r| vec![0; (r.end - r.start) as usize]).collect();
        let mut parts: Vec<Part<'_>> = ranges
            .iter()
            .zip(bufs.iter_mut())
            .map(|(r, b)| Part { range: r.clone(), sink: b, at: 0 })
            .collect();
        let end = ranges.iter().map(|r| r.end).max().unwrap_or(0);
        let mut w = Splitter { pos: 0, end, parts: &mut parts, sink_error: None, complete: false };
        let mut fed = 0;
        for c in data.chunks(chunk) {
            fed += c.len();
            if w.write(c).is_err() {
                break;
            }
        }
        proptest::prop_assert!(w.complete);
        proptest::prop_assert!(fed < end as usize + chunk, "read on after the last wanted byte");
        drop(parts);
        for (r, b) in ranges.iter().zip(&bufs) {
            proptest::prop_assert_eq!(&b[..], &data[r.start as usize..r.end as usize]);
        }
    }
}
