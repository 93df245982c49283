//! Test fixtures built in-process: GPT disk images (the `gpt` crate) holding FAT volumes
//! (`fatfs`) or ext4 volumes (`mkfs.ext4 -d`, a prerequisite `cargo xtask test` installs).

use std::io::{Cursor, Seek, SeekFrom, Write};
use std::path::Path;

/// A FAT volume of `size` bytes holding `files` (path, content).
pub fn fat_volume(size: usize, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut img = Cursor::new(vec![0u8; size]);
    fatfs::format_volume(
        &mut img,
        fatfs::FormatVolumeOptions::new().volume_label(*b"TESTESP    "),
    )
    .unwrap();
    img.seek(SeekFrom::Start(0)).unwrap();
    {
        let fs = fatfs::FileSystem::new(&mut img, fatfs::FsOptions::new()).unwrap();
        for (path, data) in files {
            let mut dir = fs.root_dir();
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            for d in &parts[..parts.len() - 1] {
                dir = dir.open_dir(d).or_else(|_| dir.create_dir(d)).unwrap();
            }
            let mut f = dir.create_file(parts[parts.len() - 1]).unwrap();
            f.write_all(data).unwrap();
        }
    }
    img.into_inner()
}

/// An ext4 volume of `size` bytes holding `files`, made by the real `mkfs.ext4 -d`.
pub fn ext4_volume(size: u64, files: &[(&str, &[u8])]) -> Vec<u8> {
    let stage = tempfile::tempdir().unwrap();
    for (path, data) in files {
        let p = stage.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    let img = tempfile::NamedTempFile::new().unwrap();
    img.as_file().set_len(size).unwrap();
    let mkfs = ["/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("mkfs.ext4 (e2fsprogs) is needed by this test; `cargo xtask test` installs it");
    let ok = std::process::Command::new(mkfs)
        .args(["-q", "-F", "-L", "testboot", "-d"])
        .arg(stage.path())
        .arg(img.path())
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfs.ext4 failed");
    std::fs::read(img.path()).unwrap()
}

/// A GPT disk image file with the given (type GUID, volume bytes) partitions, 1 MiB aligned.
pub fn gpt_image(parts: &[(&str, Vec<u8>)]) -> tempfile::NamedTempFile {
    const MIB: u64 = 1 << 20;
    let total = MIB
        + parts
            .iter()
            .map(|(_, v)| (v.len() as u64).div_ceil(MIB) * MIB)
            .sum::<u64>()
        + MIB;
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut f = file.reopen().unwrap();
    f.set_len(total).unwrap();
    gpt::mbr::ProtectiveMBR::with_lb_size((total / 512 - 1) as u32)
        .overwrite_lba0(&mut f)
        .unwrap();
    let mut g = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
        .create_from_device(f, None)
        .unwrap();
    let mut starts = Vec::new();
    for (i, (t, v)) in parts.iter().enumerate() {
        let ty = gpt::partition_types::Type {
            guid: t.parse().unwrap(),
            os: gpt::partition_types::OperatingSystem::None,
        };
        let id = g
            .add_partition(&format!("part{}", i + 1), v.len() as u64, ty, 0, Some(2048))
            .unwrap();
        starts.push(g.partitions()[&id].first_lba * 512);
    }
    let mut f = g.write().unwrap();
    for ((_, v), start) in parts.iter().zip(starts) {
        f.seek(SeekFrom::Start(start)).unwrap();
        f.write_all(v).unwrap();
    }
    f.sync_all().unwrap();
    file
}

/// A disk image from a sparse hex fixture (`testdata/*.sparse`): a line `size N`, then one line
/// `OFFSET HEX` per non-zero 512-byte block. Real tools' output (sfdisk, mkfs.*) kept small:
/// [`sparse_text`] writes the format.
pub fn sparse_image(text: &str) -> Vec<u8> {
    let mut lines = text.lines();
    let size: usize = lines
        .next()
        .and_then(|l| l.strip_prefix("size "))
        .and_then(|n| n.trim().parse().ok())
        .expect("a sparse fixture starts with `size N`");
    let mut out = vec![0u8; size];
    for l in lines.filter(|l| !l.trim().is_empty()) {
        let (off, hex) = l.split_once(' ').expect("`OFFSET HEX` lines");
        let off: usize = off.parse().expect("decimal offset");
        let hex = hex.trim();
        for i in 0..hex.len() / 2 {
            out[off + i] = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex bytes");
        }
    }
    out
}

/// The sparse hex fixture text of `bytes`, keeping at most the first `keep` bytes.
pub fn sparse_text(bytes: &[u8], keep: usize) -> String {
    let mut s = format!("size {}\n", bytes.len().min(keep));
    for (i, block) in bytes[..bytes.len().min(keep)].chunks(512).enumerate() {
        if block.iter().any(|&b| b != 0) {
            s.push_str(&format!("{} ", i * 512));
            for b in block {
                s.push_str(&format!("{b:02x}"));
            }
            s.push('\n');
        }
    }
    s
}

/// The `xorriso` binary (a prerequisite `cargo xtask test` installs).
fn xorriso() -> &'static str {
    ["/usr/bin/xorriso", "/bin/xorriso"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("xorriso is needed by this test; `cargo xtask test` installs it")
}

/// An ISO image of `files` (path, content) and `links` (path, target), built by
/// `xorriso -as mkisofs` with `args` (`-R`, `-J`, ...).
pub fn iso_image(args: &[&str], files: &[(&str, &[u8])], links: &[(&str, &str)]) -> Vec<u8> {
    let stage = tempfile::tempdir().unwrap();
    iso_image_of(stage.path(), files, links, args)
}

/// An ISO image of directory `dir` plus `files` and `links`, built by `xorriso -as mkisofs`
/// with `args`.
pub fn iso_image_of(
    dir: &Path,
    files: &[(&str, &[u8])],
    links: &[(&str, &str)],
    args: &[&str],
) -> Vec<u8> {
    let stage = tempfile::tempdir().unwrap();
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", dir.display()))
        .arg(stage.path())
        .status()
        .unwrap()
        .success();
    assert!(ok, "cp -a {} failed", dir.display());
    for (path, data) in files {
        let p = stage.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    for (path, target) in links {
        let p = stage.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, p).unwrap();
    }
    let out = tempfile::NamedTempFile::new().unwrap();
    // `-as mkisofs` always writes Rock Ridge; `-rockridge off` before it does not.
    let rr = if args.contains(&"-R") { "on" } else { "off" };
    let ok = std::process::Command::new(xorriso())
        .args([
            "-rockridge",
            rr,
            "-as",
            "mkisofs",
            "-quiet",
            "-V",
            "TEST_ISO",
        ])
        .args(args)
        .arg("-o")
        .arg(out.path())
        .arg(stage.path())
        .status()
        .unwrap()
        .success();
    assert!(ok, "xorriso failed");
    std::fs::read(out.path()).unwrap()
}
