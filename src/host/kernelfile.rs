//! What kind of file a user's `--kernel` is, from its first bytes, so that a file that is not
//! a kernel, or a kernel of another architecture, is refused in words before anything is
//! loaded (the kernel's own answer would be a bare `ENOEXEC`).
//!
//! Reads only the header given ([`HEADER_BYTES`]); every offset is checked against its length.

/// How many bytes of the file [`classify`] wants.
pub const HEADER_BYTES: usize = 4096;

/// What the header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelKind {
    /// An x86 bzImage (boot protocol `HdrS`): the only kind an x86-64 kernel kexecs with
    /// `kexec_file_load`. `x86_64`: the header says the kernel can be entered in 64-bit mode
    /// (`XLF_KERNEL_64`), protocol >= 2.12, or is older (assumed so).
    BzImage {
        /// Boot protocol version (`0x020f`...).
        protocol: u16,
    },
    /// A kernel or executable for another architecture (named).
    OtherArch(&'static str),
    /// An uncompressed ELF `vmlinux` (kexec_file_load on x86 takes only bzImages).
    Elf,
    /// Compressed data (gzip, xz, zstd...) or a cpio archive: maybe an initrd, not a kernel.
    Archive(&'static str),
    /// Nothing a kernel would recognise.
    Unknown,
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn pe_machine(m: u16) -> &'static str {
    match m {
        0x8664 => "x86-64",
        0x014c => "i386",
        0xaa64 => "arm64",
        0x01c4 => "arm",
        0x5064 => "riscv64",
        0x6264 => "loongarch64",
        _ => "an unknown PE machine",
    }
}

fn elf_machine(m: u16) -> Option<&'static str> {
    Some(match m {
        0x3e => return None, // x86-64: an ELF vmlinux
        0x03 => "i386",
        0xb7 => "arm64",
        0x28 => "arm",
        0xf3 => "riscv",
        0x15 => "ppc64",
        0x16 => "s390",
        _ => "an unknown ELF machine",
    })
}

/// Classifies a file by its first bytes (up to [`HEADER_BYTES`]).
pub fn classify(h: &[u8]) -> KernelKind {
    if h.get(0x202..0x206) == Some(b"HdrS") {
        return KernelKind::BzImage {
            protocol: le16(h, 0x206).unwrap_or(0),
        };
    }
    // arm64 Image: "ARM\x64" at 0x38; RISC-V Image: "RSC\x05" at 0x38.
    match h.get(0x38..0x3c) {
        Some(b"ARM\x64") => return KernelKind::OtherArch("arm64"),
        Some(b"RSC\x05") => return KernelKind::OtherArch("riscv"),
        _ => {}
    }
    if h.get(0..4) == Some(b"\x7fELF") {
        return match le16(h, 18).and_then(elf_machine) {
            Some(arch) => KernelKind::OtherArch(arch),
            None => KernelKind::Elf,
        };
    }
    if h.get(0..2) == Some(b"MZ") {
        if let Some(pe) = le32(h, 0x3c) {
            let pe = pe as usize;
            if h.get(pe..pe + 4) == Some(b"PE\0\0") {
                if let Some(m) = le16(h, pe + 4) {
                    // An EFI application that is no bzImage (a UKI's stub, GRUB, shim...).
                    return KernelKind::OtherArch(pe_machine(m));
                }
            }
        }
        return KernelKind::Unknown;
    }
    let archive = match h {
        [0x1f, 0x8b, ..] => "gzip data",
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => "xz data",
        [0x28, 0xb5, 0x2f, 0xfd, ..] => "zstd data",
        [b'B', b'Z', b'h', ..] => "bzip2 data",
        [0x02, 0x21, 0x4c, 0x18, ..] => "lz4 data",
        [b'0', b'7', b'0', b'7', b'0', b'1' | b'2', ..] => "a cpio archive",
        _ => return KernelKind::Unknown,
    };
    KernelKind::Archive(archive)
}

/// `Ok` for a kernel this machine can kexec, or why not (in words, naming `path`).
pub fn check(path: &str, h: &[u8]) -> Result<(), String> {
    let arch = std::env::consts::ARCH;
    match classify(h) {
        KernelKind::BzImage { .. } if arch == "x86_64" || arch == "x86" => Ok(()),
        KernelKind::BzImage { .. } => Err(format!(
            "{path} is an x86 bzImage; this machine is {arch}: give a kernel built for {arch}"
        )),
        KernelKind::OtherArch(a) => Err(format!(
            "{path} is a kernel or program for {a}; this machine is {arch}: give a kernel built for {arch}"
        )),
        KernelKind::Elf => Err(format!(
            "{path} is an uncompressed ELF vmlinux; kexec_file_load takes the bzImage \
             (arch/x86/boot/bzImage, installed as /boot/vmlinuz-<version>)"
        )),
        KernelKind::Archive(what) => Err(format!(
            "{path} is {what}, not a kernel (an initrd? give it with --initrd)"
        )),
        KernelKind::Unknown => Err(format!(
            "{path} is not a Linux kernel image (no bzImage header): give /boot/vmlinuz-<version>"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(mut v: Vec<u8>, off: usize, bytes: &[u8]) -> Vec<u8> {
        if v.len() < off + bytes.len() {
            v.resize(off + bytes.len(), 0);
        }
        v[off..off + bytes.len()].copy_from_slice(bytes);
        v
    }

    #[test]
    fn table_of_headers() {
        let bz = at(at(b"MZ".to_vec(), 0x202, b"HdrS"), 0x206, &[0x0f, 0x02]);
        let arm = at(b"MZ".to_vec(), 0x38, b"ARM\x64");
        let elf_x86 = at(b"\x7fELF".to_vec(), 18, &[0x3e, 0]);
        let elf_arm = at(b"\x7fELF".to_vec(), 18, &[0xb7, 0]);
        let pe_arm = at(
            at(at(b"MZ".to_vec(), 0x3c, &[0x80, 0, 0, 0]), 0x80, b"PE\0\0"),
            0x84,
            &[0x64, 0xaa],
        );
        let cases: &[(&[u8], KernelKind)] = &[
            (&bz, KernelKind::BzImage { protocol: 0x020f }),
            (&arm, KernelKind::OtherArch("arm64")),
            (&elf_x86, KernelKind::Elf),
            (&elf_arm, KernelKind::OtherArch("arm64")),
            (&pe_arm, KernelKind::OtherArch("arm64")),
            (&[0x1f, 0x8b, 8, 0], KernelKind::Archive("gzip data")),
            (b"070701000", KernelKind::Archive("a cpio archive")),
            (b"#!/bin/sh\n", KernelKind::Unknown),
            (b"", KernelKind::Unknown),
            (b"MZ", KernelKind::Unknown),
        ];
        for (h, want) in cases {
            assert_eq!(&classify(h), want, "{:?}", &h[..h.len().min(8)]);
        }
        assert!(check("/boot/vmlinuz", &bz).is_ok());
        let e = check("/etc/passwd", b"root:x:0:0").unwrap_err();
        assert!(e.contains("/etc/passwd is not a Linux kernel image"), "{e}");
        let e = check("/boot/initrd.img", &[0x1f, 0x8b]).unwrap_err();
        assert!(e.contains("gzip data, not a kernel"), "{e}");
    }

    proptest! {
        #[test]
        fn never_panics(h in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = check("f", &h);
        }
    }
}
