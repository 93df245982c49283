//! The PE/COFF section reader of unified kernel images: the bytes of a file's head in, the
//! file ranges of its UKI sections out.
//!
//! Pure and total: no I/O, no allocation beyond the result, no panic on any byte sequence
//! (fuzzed by `fuzz/fuzz_targets/uki.rs`). The headers are parsed by `object`; the section
//! arithmetic is ours, checked. A section's length is its `VirtualSize` (the real content)
//! clamped to `SizeOfRawData` (the content padded to the file alignment). It does not verify
//! signatures, apply relocations or look at anything but the section table; whether `.linux`
//! holds a kernel is for `kexec_file_load` to say.
//!
//! [`build`] writes the reverse: a minimal PE container for tests and disk fixtures.

use std::ops::Range;

use object::pe;
use object::pe::{ImageNtHeaders32, ImageNtHeaders64};
use object::read::pe::ImageNtHeaders;
use object::LittleEndian as LE;

/// The PE headers and section table must lie within this many bytes of the file's start.
pub const HEAD_BYTES: u64 = 64 << 10;
/// Largest `.osrel`, `.cmdline` or `.uname` section accepted.
pub const MAX_SMALL_SECTION: u64 = 64 << 10;

/// The sections leapboot uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name {
    /// The kernel image (a bzImage on x86).
    Linux,
    /// The initrd.
    Initrd,
    /// CPU microcode, an initrd loaded before `.initrd`.
    Ucode,
    /// The kernel command line.
    Cmdline,
    /// os-release data: the title and version.
    Osrel,
    /// The kernel version (`uname -r`).
    Uname,
}

impl Name {
    const ALL: [Name; 6] = [
        Name::Linux,
        Name::Initrd,
        Name::Ucode,
        Name::Cmdline,
        Name::Osrel,
        Name::Uname,
    ];

    /// The section name in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Name::Linux => ".linux",
            Name::Initrd => ".initrd",
            Name::Ucode => ".ucode",
            Name::Cmdline => ".cmdline",
            Name::Osrel => ".osrel",
            Name::Uname => ".uname",
        }
    }

    fn small(self) -> bool {
        matches!(self, Name::Cmdline | Name::Osrel | Name::Uname)
    }

    fn from_raw(raw: &[u8; 8]) -> Option<Name> {
        let len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        Name::ALL
            .into_iter()
            .find(|n| n.as_str().as_bytes() == &raw[..len])
    }
}

/// Why a file is not a usable UKI.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // each variant is documented by its message
pub enum PeError {
    #[error("not a PE file (no MZ signature)")]
    NotPe,
    #[error("bad PE headers in the first {HEAD_BYTES} bytes: {0}")]
    Headers(String),
    #[error("no .linux section: a PE program, not a unified kernel image")]
    NoLinux,
    #[error("section {0}: empty")]
    Empty(&'static str),
    #[error("section {0} appears twice")]
    Duplicate(&'static str),
    #[error("section {name}: bytes {start}..{end} lie beyond the end of the file ({len} bytes)")]
    Truncated {
        name: &'static str,
        start: u64,
        end: u64,
        len: u64,
    },
    #[error("section {name}: {len} bytes is larger than the {max}-byte limit")]
    TooLarge {
        name: &'static str,
        len: u64,
        max: u64,
    },
    #[error("sections {0} and {1} overlap")]
    Overlap(&'static str, &'static str),
}

/// Where a UKI's sections are in the file: byte ranges, within the file's length.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sections {
    /// COFF machine type (`IMAGE_FILE_MACHINE_*`).
    pub machine: u16,
    /// `.linux` (always present, never empty).
    pub linux: Range<u64>,
    /// `.initrd`.
    pub initrd: Option<Range<u64>>,
    /// `.ucode`.
    pub ucode: Option<Range<u64>>,
    /// `.cmdline` (at most [`MAX_SMALL_SECTION`] bytes, like `.osrel` and `.uname`).
    pub cmdline: Option<Range<u64>>,
    /// `.osrel`.
    pub osrel: Option<Range<u64>>,
    /// `.uname`.
    pub uname: Option<Range<u64>>,
}

/// Reads the section table of a UKI. `head` is the start of the file (at least its headers:
/// the first `min(file_len, HEAD_BYTES)` bytes); `file_len` its full length, which every
/// section must lie within.
///
/// Multi-profile UKIs (systemd 257): sections after the first `.profile` section belong to
/// profile 0 and override the base sections; sections after a second `.profile` belong to
/// other profiles and are ignored. Other sections (`.sbat`, `.pcrsig`, `.dtb`, ...) are ignored.
pub fn parse(head: &[u8], file_len: u64) -> Result<Sections, PeError> {
    if head.get(..2) != Some(b"MZ".as_slice()) {
        return Err(PeError::NotPe);
    }
    let headers = |e: object::read::Error| PeError::Headers(e.to_string());
    let dos = pe::ImageDosHeader::parse(head).map_err(headers)?;
    let mut offset = u64::from(dos.nt_headers_offset());
    let (machine, table) = match object::read::pe::optional_header_magic(head).map_err(headers)? {
        pe::IMAGE_NT_OPTIONAL_HDR64_MAGIC => {
            let (nt, _) = ImageNtHeaders64::parse(head, &mut offset).map_err(headers)?;
            (
                nt.file_header().machine.get(LE).0,
                nt.sections(head, offset),
            )
        }
        _ => {
            let (nt, _) = ImageNtHeaders32::parse(head, &mut offset).map_err(headers)?;
            (
                nt.file_header().machine.get(LE).0,
                nt.sections(head, offset),
            )
        }
    };
    let table = table.map_err(headers)?;

    let mut base: [Option<Range<u64>>; 6] = Default::default();
    let mut profile0: [Option<Range<u64>>; 6] = Default::default();
    let mut profiles = 0u32;
    for s in table.iter() {
        if s.name == *b".profile" {
            profiles += 1;
            continue;
        }
        let Some(name) = Name::from_raw(&s.name) else {
            continue;
        };
        let scope = match profiles {
            0 => &mut base,
            1 => &mut profile0,
            _ => continue,
        };
        let i = name as usize; // declaration order = ALL order
        if scope[i].is_some() {
            return Err(PeError::Duplicate(name.as_str()));
        }
        let start = u64::from(s.pointer_to_raw_data.get(LE));
        let len = u64::from(s.virtual_size.get(LE).min(s.size_of_raw_data.get(LE)));
        let end = start.checked_add(len).filter(|&e| e <= file_len);
        let Some(end) = end else {
            return Err(PeError::Truncated {
                name: name.as_str(),
                start,
                end: start.saturating_add(len),
                len: file_len,
            });
        };
        if name.small() && len > MAX_SMALL_SECTION {
            return Err(PeError::TooLarge {
                name: name.as_str(),
                len,
                max: MAX_SMALL_SECTION,
            });
        }
        scope[i] = Some(start..end);
    }
    for (b, p) in base.iter_mut().zip(profile0) {
        if p.is_some() {
            *b = p;
        }
    }

    let used_ranges = base.clone();
    let [linux, initrd, ucode, cmdline, osrel, uname] = base;
    let linux = linux.ok_or(PeError::NoLinux)?;
    if linux.is_empty() {
        return Err(PeError::Empty(Name::Linux.as_str()));
    }
    let mut used: Vec<(Name, Range<u64>)> = Name::ALL
        .into_iter()
        .zip(used_ranges)
        .filter_map(|(n, r)| Some((n, r?)))
        .filter(|(_, r)| !r.is_empty())
        .collect();
    used.sort_by_key(|(_, r)| r.start);
    for w in used.windows(2) {
        if let [(a, ra), (b, rb)] = w {
            if rb.start < ra.end {
                return Err(PeError::Overlap(a.as_str(), b.as_str()));
            }
        }
    }
    Ok(Sections {
        machine,
        linux,
        initrd,
        ucode,
        cmdline,
        osrel,
        uname,
    })
}

/// A minimal PE32+ container holding `sections` (name ≤ 8 bytes, content), for tests and
/// disk fixtures: a DOS header, PE headers, a section table and the contents at 512-byte
/// file alignment. It has no code and no signature: not EFI-bootable, only a valid carrier of
/// `.linux`/`.initrd`/`.cmdline`/... for a kexec loader. Each section's `VirtualSize` is its
/// content's length; `SizeOfRawData` is padded.
pub fn build(machine: u16, sections: &[(&str, &[u8])]) -> Vec<u8> {
    const FILE_ALIGN: usize = 0x200;
    const SECT_ALIGN: u64 = 0x1000;
    let align = |n: usize, a: usize| n.div_ceil(a) * a;
    let headers_len = 0x40 + 4 + 20 + 240 + 40 * sections.len();
    let mut raw_at = align(headers_len, FILE_ALIGN);
    let mut rva = SECT_ALIGN;
    let mut table = Vec::new();
    let mut body = Vec::new();
    for (name, data) in sections {
        let mut n = [0u8; 8];
        let len = name.len().min(8);
        n[..len].copy_from_slice(&name.as_bytes()[..len]);
        let raw_len = align(data.len(), FILE_ALIGN);
        table.extend_from_slice(&n);
        table.extend_from_slice(&(data.len() as u32).to_le_bytes()); // VirtualSize
        table.extend_from_slice(&(rva as u32).to_le_bytes()); // VirtualAddress
        table.extend_from_slice(&(raw_len as u32).to_le_bytes()); // SizeOfRawData
        table.extend_from_slice(&(raw_at as u32).to_le_bytes()); // PointerToRawData
        table.extend_from_slice(&[0u8; 12]); // relocations, line numbers
        table.extend_from_slice(&0x4000_0040u32.to_le_bytes()); // initialized data, readable
        body.extend_from_slice(data);
        body.resize(align(body.len(), FILE_ALIGN), 0);
        raw_at += raw_len;
        rva += (data.len() as u64).div_ceil(SECT_ALIGN).max(1) * SECT_ALIGN;
    }
    let mut f = Vec::with_capacity(raw_at);
    // DOS header: "MZ", e_lfanew at 0x3c.
    f.extend_from_slice(b"MZ");
    f.resize(0x3c, 0);
    f.extend_from_slice(&0x40u32.to_le_bytes());
    f.extend_from_slice(b"PE\0\0");
    // COFF file header.
    f.extend_from_slice(&machine.to_le_bytes());
    f.extend_from_slice(&(sections.len() as u16).to_le_bytes());
    f.extend_from_slice(&[0u8; 12]); // time stamp, symbol table, symbol count
    f.extend_from_slice(&240u16.to_le_bytes()); // SizeOfOptionalHeader
    f.extend_from_slice(&0x0022u16.to_le_bytes()); // executable, large address aware
                                                   // PE32+ optional header.
    let opt = f.len();
    f.extend_from_slice(&pe::IMAGE_NT_OPTIONAL_HDR64_MAGIC.to_le_bytes());
    f.resize(opt + 32, 0); // linker version, code sizes, entry point, base of code, image base
    f.extend_from_slice(&(SECT_ALIGN as u32).to_le_bytes());
    f.extend_from_slice(&(FILE_ALIGN as u32).to_le_bytes());
    f.resize(opt + 56, 0); // OS, image and subsystem versions
    f.extend_from_slice(&(rva as u32).to_le_bytes()); // SizeOfImage
    f.extend_from_slice(&(align(headers_len, FILE_ALIGN) as u32).to_le_bytes()); // SizeOfHeaders
    f.extend_from_slice(&0u32.to_le_bytes()); // CheckSum
    f.extend_from_slice(&pe::IMAGE_SUBSYSTEM_EFI_APPLICATION.0.to_le_bytes());
    f.resize(opt + 108, 0); // DLL characteristics, stack and heap sizes, loader flags
    f.extend_from_slice(&16u32.to_le_bytes()); // NumberOfRvaAndSizes
    f.resize(opt + 240, 0); // 16 empty data directories
    f.extend_from_slice(&table);
    f.resize(align(f.len(), FILE_ALIGN), 0);
    f.extend_from_slice(&body);
    f
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const AMD64: u16 = pe::IMAGE_FILE_MACHINE_AMD64.0;

    fn slice(f: &[u8], r: &Range<u64>) -> Vec<u8> {
        f[r.start as usize..r.end as usize].to_vec()
    }

    fn all_sections() -> Vec<u8> {
        build(
            AMD64,
            &[
                (".osrel", b"NAME=Test\n"),
                (".cmdline", b"console=ttyS0\n\0"),
                (".uname", b"6.1.0-test"),
                (".ucode", b"UCODE"),
                (".initrd", b"INITRD!"),
                (".sbat", b"sbat,1\n"),
                (".linux", &[0xAB; 1000]),
            ],
        )
    }

    #[test]
    fn finds_every_section_by_virtual_size() {
        let f = all_sections();
        let s = parse(&f, f.len() as u64).unwrap();
        assert_eq!(s.machine, AMD64);
        assert_eq!(slice(&f, &s.linux), vec![0xAB; 1000]);
        assert_eq!(slice(&f, s.initrd.as_ref().unwrap()), b"INITRD!");
        assert_eq!(slice(&f, s.ucode.as_ref().unwrap()), b"UCODE");
        assert_eq!(slice(&f, s.cmdline.as_ref().unwrap()), b"console=ttyS0\n\0");
        assert_eq!(slice(&f, s.osrel.as_ref().unwrap()), b"NAME=Test\n");
        assert_eq!(slice(&f, s.uname.as_ref().unwrap()), b"6.1.0-test");
    }

    #[test]
    fn object_reads_the_built_container_as_pe() {
        use object::{Object, ObjectSection};
        let f = all_sections();
        let file = object::read::pe::PeFile64::parse(&*f).unwrap();
        let names: Vec<&str> = file.sections().map(|s| s.name().unwrap()).collect();
        assert_eq!(names[0], ".osrel");
        assert_eq!(names.len(), 7);
    }

    #[test]
    fn only_the_headers_are_needed() {
        let f = all_sections();
        let head = &f[..0x400];
        let s = parse(head, f.len() as u64).unwrap();
        assert_eq!(s, parse(&f, f.len() as u64).unwrap());
    }

    /// Offset of section `i`'s header in a [`build`] image.
    fn header(i: usize) -> usize {
        0x40 + 4 + 20 + 240 + 40 * i
    }

    fn set_u32(f: &mut [u8], at: usize, v: u32) {
        f[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn virtual_size_is_clamped_to_the_raw_size() {
        let mut f = build(AMD64, &[(".linux", &[1; 10])]);
        set_u32(&mut f, header(0) + 8, 0x10000); // VirtualSize far beyond SizeOfRawData
        let s = parse(&f, f.len() as u64).unwrap();
        assert_eq!(s.linux.end - s.linux.start, 0x200);
    }

    #[test]
    fn not_a_uki() {
        assert_eq!(parse(b"", 0), Err(PeError::NotPe));
        assert_eq!(parse(b"\x7fELF....", 8), Err(PeError::NotPe));
        let f = build(AMD64, &[(".text", b"code"), (".osrel", b"ID=x\n")]);
        assert_eq!(parse(&f, f.len() as u64), Err(PeError::NoLinux));
        assert!(matches!(parse(b"MZ", 2), Err(PeError::Headers(_))));
        let mut f = build(AMD64, &[(".linux", b"k")]);
        f[0x40] = b'X'; // PE signature
        assert!(matches!(
            parse(&f, f.len() as u64),
            Err(PeError::Headers(_))
        ));
    }

    #[test]
    fn truncated_files_and_sections() {
        let f = build(AMD64, &[(".linux", &[1; 3000])]);
        let e = parse(&f, 0x400 + 100).unwrap_err();
        assert!(
            matches!(e, PeError::Truncated { name: ".linux", .. }),
            "{e}"
        );
        // A section table cut off by the end of the head.
        assert!(matches!(
            parse(&f[..0x100], f.len() as u64),
            Err(PeError::Headers(_))
        ));
        let mut f = build(AMD64, &[(".linux", &[1; 10])]);
        set_u32(&mut f, header(0) + 20, u32::MAX); // PointerToRawData
        assert!(matches!(
            parse(&f, f.len() as u64),
            Err(PeError::Truncated { .. })
        ));
    }

    #[test]
    fn empty_duplicate_overlapping_and_oversized_sections() {
        let f = build(AMD64, &[(".linux", b"")]);
        assert_eq!(parse(&f, f.len() as u64), Err(PeError::Empty(".linux")));
        let f = build(AMD64, &[(".linux", b"a"), (".linux", b"b")]);
        assert_eq!(parse(&f, f.len() as u64), Err(PeError::Duplicate(".linux")));
        let mut f = build(AMD64, &[(".linux", &[1; 600]), (".initrd", b"i")]);
        let linux_at = u32::from_le_bytes(f[header(0) + 20..header(0) + 24].try_into().unwrap());
        set_u32(&mut f, header(1) + 20, linux_at + 0x100); // .initrd inside .linux
        assert_eq!(
            parse(&f, f.len() as u64),
            Err(PeError::Overlap(".linux", ".initrd"))
        );
        let big = vec![b'x'; MAX_SMALL_SECTION as usize + 1];
        let f = build(AMD64, &[(".linux", b"k"), (".cmdline", &big)]);
        assert!(matches!(
            parse(&f, f.len() as u64),
            Err(PeError::TooLarge {
                name: ".cmdline",
                ..
            })
        ));
    }

    #[test]
    fn profile_zero_overrides_the_base_and_later_profiles_are_ignored() {
        let f = build(
            AMD64,
            &[
                (".linux", b"k"),
                (".cmdline", b"base"),
                (".profile", b"ID=a"),
                (".cmdline", b"profile0"),
                (".profile", b"ID=b"),
                (".cmdline", b"profile1"),
                (".linux", b"other"),
            ],
        );
        let s = parse(&f, f.len() as u64).unwrap();
        assert_eq!(slice(&f, s.cmdline.as_ref().unwrap()), b"profile0");
        assert_eq!(slice(&f, &s.linux), b"k");
    }

    #[test]
    fn a_32_bit_pe_is_read_too() {
        // A PE32 optional header: magic 0x10b, 224 bytes. Rewrite the built image's headers.
        let mut f = build(pe::IMAGE_FILE_MACHINE_I386.0, &[(".linux", b"kernel")]);
        f[0x40 + 4 + 16..0x40 + 4 + 18].copy_from_slice(&224u16.to_le_bytes());
        let opt = 0x40 + 4 + 20;
        f[opt..opt + 2].copy_from_slice(&pe::IMAGE_NT_OPTIONAL_HDR32_MAGIC.to_le_bytes());
        set_u32(&mut f, opt + 92, 16); // NumberOfRvaAndSizes
                                       // The section table now starts 16 bytes earlier.
        let table: Vec<u8> = f[header(0)..header(1)].to_vec();
        f[header(0) - 16..header(1) - 16].copy_from_slice(&table);
        let s = parse(&f, f.len() as u64).unwrap();
        assert_eq!(s.machine, pe::IMAGE_FILE_MACHINE_I386.0);
        assert_eq!(slice(&f, &s.linux), b"kernel");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_bytes(data in proptest::collection::vec(proptest::num::u8::ANY, 0..2048), len in 0u64..u64::MAX) {
            let _ = parse(&data, len);
            if let Ok(s) = parse(&data, data.len() as u64) {
                proptest::prop_assert!(s.linux.end <= data.len() as u64);
            }
        }

        #[test]
        fn never_panics_on_damaged_ukis(flips in proptest::collection::vec((0usize..0x400, proptest::num::u8::ANY), 1..8)) {
            let mut f = all_sections();
            for (at, v) in flips {
                f[at] = v;
            }
            if let Ok(s) = parse(&f, f.len() as u64) {
                for r in [Some(s.linux), s.initrd, s.ucode, s.cmdline, s.osrel, s.uname].into_iter().flatten() {
                    proptest::prop_assert!(r.start <= r.end && r.end <= f.len() as u64);
                }
            }
        }
    }
}
