//! Disk image fixtures, built without root or loop devices: a GPT written with the `gpt` crate,
//! filesystems made by the real tools (`mkfs.vfat` + `mcopy`, `mkfs.ext4 -d`) in separate files
//! and copied into place. Layouts are data ([`DiskSpec`], from scenario files and
//! `qemu-tests/demo.toml`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::build::Binaries;
use crate::kernel::Kernel;
use crate::paths;

/// One disk of a layout.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSpec {
    /// `gpt` (default) or `none` (one filesystem on the whole disk).
    #[serde(default)]
    pub table: TableKind,
    /// Partitions in order (exactly one for `table = "none"`).
    #[serde(default)]
    pub partition: Vec<PartSpec>,
    /// How QEMU attaches it: `virtio` (default), `nvme`, `ahci`, `scsi` or `usb`.
    #[serde(default)]
    pub bus: crate::qemu::Bus,
    /// Not attached at start; a `{ monitor = "device_add ..." }` step attaches it.
    #[serde(default)]
    pub hotplug: bool,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    #[default]
    Gpt,
    None,
}

/// One partition and the files on its filesystem.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartSpec {
    /// `vfat` or `ext4`.
    pub fs: FsKind,
    /// GPT type: `esp`, `xbootldr` or `linux` (default).
    #[serde(default, rename = "type")]
    pub ptype: PartType,
    /// Size in MiB (default 64).
    #[serde(default = "default_size")]
    pub size_mib: u64,
    /// Filesystem label.
    pub label: Option<String>,
    /// Path → content. Content is text, or `@kernel`, `@target-initrd`,
    /// `@marker-initrd NAME`, `@garbage BYTES`, `@uki CMDLINE`.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

fn default_size() -> u64 {
    64
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FsKind {
    Vfat,
    Ext4,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PartType {
    Esp,
    Xbootldr,
    #[default]
    Linux,
}

/// The generated files fixtures refer to with `@...`.
pub struct Artifacts {
    kernel: PathBuf,
    target_initrd: Vec<u8>,
}

impl Artifacts {
    pub fn new(bins: &Binaries, kernel: &Kernel) -> anyhow::Result<Artifacts> {
        Ok(Artifacts {
            kernel: kernel.image.clone(),
            target_initrd: crate::initramfs::target(bins)?,
        })
    }

    fn content(&self, spec: &str) -> anyhow::Result<Vec<u8>> {
        let Some(gen) = spec.strip_prefix('@') else {
            return Ok(spec.as_bytes().to_vec());
        };
        let (what, arg) = gen.split_once(' ').unwrap_or((gen, ""));
        Ok(match what {
            "kernel" => std::fs::read(&self.kernel)?,
            "target-initrd" => self.target_initrd.clone(),
            "marker-initrd" if !arg.is_empty() => crate::initramfs::marker(arg)?,
            "garbage" => garbage(arg.parse().context("@garbage needs a byte count")?),
            "uki" => self.uki(arg)?,
            _ => bail!("unknown generated content {spec:?}"),
        })
    }

    /// A unified kernel image of the test kernel, the target initrd and `cmdline`: a minimal
    /// PE container (`leapboot::entry::uki::pe::build`) with `.osrel`, `.cmdline`, `.uname`,
    /// `.initrd` and `.linux`. No EFI stub and no signature: firmware cannot start it, kexec
    /// can (only `.linux` runs), which is all the scenarios need.
    fn uki(&self, cmdline: &str) -> anyhow::Result<Vec<u8>> {
        let kernel = std::fs::read(&self.kernel)?;
        let osrel = "PRETTY_NAME=\"leapboot test UKI\"\nID=leapboot-test\nVERSION_ID=1\n";
        Ok(leapboot::entry::uki::pe::build(
            0x8664, // IMAGE_FILE_MACHINE_AMD64: the QEMU machine
            &[
                (".osrel", osrel.as_bytes()),
                (".cmdline", format!("{cmdline}\n").as_bytes()),
                (".uname", b"test"),
                (".initrd", &self.target_initrd),
                (".linux", &kernel),
            ],
        ))
    }
}

/// Deterministic bytes that are no known format (xorshift).
fn garbage(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Builds one filesystem image file of the partition's size at `out`.
fn build_fs(p: &PartSpec, out: &Path, stage: &Path, art: &Artifacts) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(stage);
    std::fs::create_dir_all(stage)?;
    for (path, content) in &p.files {
        let dest = stage.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().expect("a file path has a parent"))?;
        std::fs::write(
            &dest,
            art.content(content)
                .with_context(|| format!("file {path}"))?,
        )?;
    }
    let f = File::create(out)?;
    f.set_len(p.size_mib << 20)?;
    drop(f);
    match p.fs {
        FsKind::Vfat => {
            let label = p
                .label
                .clone()
                .unwrap_or_else(|| "LEAPBOOT".into())
                .to_uppercase();
            run(
                Command::new(crate::prereq::find("mkfs.vfat").context("mkfs.vfat")?)
                    .arg("-n")
                    .arg(&label)
                    .arg(out),
            )?;
            for e in std::fs::read_dir(stage)? {
                let e = e?;
                run(Command::new("mcopy")
                    .env("MTOOLS_SKIP_CHECK", "1")
                    .arg("-i")
                    .arg(out)
                    .arg("-s")
                    .arg(e.path())
                    .arg("::/"))?;
            }
        }
        FsKind::Ext4 => {
            let label = p.label.clone().unwrap_or_else(|| "leapboot".into());
            run(
                Command::new(crate::prereq::find("mkfs.ext4").context("mkfs.ext4")?)
                    .args(["-q", "-F", "-L", &label, "-d"])
                    .arg(stage)
                    .arg(out),
            )?;
        }
    }
    Ok(())
}

/// Builds the disks of a layout into `dir` as `disk0.img`, `disk1.img`, ...
pub fn build_disks(
    disks: &[DiskSpec],
    dir: &Path,
    art: &Artifacts,
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    for (i, d) in disks.iter().enumerate() {
        let img = dir.join(format!("disk{i}.img"));
        let work = dir.join(format!("disk{i}.work"));
        std::fs::create_dir_all(&work)?;
        match d.table {
            TableKind::None => {
                let [p] = d.partition.as_slice() else {
                    bail!("disk {i}: table = \"none\" needs exactly one [[disk.partition]]");
                };
                build_fs(p, &img, &work.join("stage"), art)?;
            }
            TableKind::Gpt => build_gpt(d, &img, &work, art)?,
        }
        std::fs::remove_dir_all(&work)?;
        out.push(img);
    }
    Ok(out)
}

fn build_gpt(d: &DiskSpec, img: &Path, work: &Path, art: &Artifacts) -> anyhow::Result<()> {
    const MIB: u64 = 1 << 20;
    let total = MIB + d.partition.iter().map(|p| p.size_mib * MIB).sum::<u64>() + MIB;
    let _ = std::fs::remove_file(img);
    let mut f = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(img)?;
    f.set_len(total)?;
    let mbr =
        gpt::mbr::ProtectiveMBR::with_lb_size(u32::try_from(total / 512 - 1).unwrap_or(u32::MAX));
    mbr.overwrite_lba0(&mut f)?;
    let mut g = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
        .create_from_device(f, None)?;
    let mut ids = Vec::new();
    for (n, p) in d.partition.iter().enumerate() {
        let t = match p.ptype {
            PartType::Esp => gpt::partition_types::EFI,
            PartType::Xbootldr => gpt::partition_types::FREEDESK_BOOT,
            PartType::Linux => gpt::partition_types::LINUX_FS,
        };
        let name = p.label.clone().unwrap_or_else(|| format!("part{}", n + 1));
        ids.push(g.add_partition(&name, p.size_mib * MIB, t, 0, Some(2048))?);
    }
    let starts: Vec<u64> = ids
        .iter()
        .map(|id| g.partitions()[id].first_lba * 512)
        .collect();
    let mut f = g.write()?;
    for (n, (p, start)) in d.partition.iter().zip(starts).enumerate() {
        let fs_img = work.join(format!("part{}.img", n + 1));
        build_fs(p, &fs_img, &work.join("stage"), art)?;
        let data = std::fs::read(&fs_img)?;
        f.seek(SeekFrom::Start(start))?;
        f.write_all(&data)?;
    }
    f.sync_all()?;
    Ok(())
}

/// The demo disk of `cargo xtask run`, from `qemu-tests/demo.toml`.
pub fn demo(art: &Artifacts) -> anyhow::Result<PathBuf> {
    #[derive(Deserialize)]
    struct Demo {
        disk: Vec<DiskSpec>,
    }
    let path = paths::root().join("qemu-tests/demo.toml");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let demo: Demo = toml::from_str(&text).with_context(|| path.display().to_string())?;
    let dir = paths::target().join("demo");
    let imgs = build_disks(&demo.disk, &dir, art)?;
    println!("xtask: demo disk {}", imgs[0].display());
    Ok(imgs[0].clone())
}
