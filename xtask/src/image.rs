//! Disk image fixtures, built without root or loop devices: a GPT written with the `gpt` crate,
//! an MBR (with logical partitions) written by `sfdisk`, filesystems made by the real tools
//! (`mkfs.vfat` + `mcopy`, `mkfs.ext4 -d`) in separate files and copied into place; damage on
//! purpose (`corrupt`, `table = "garbage"`, an ext4 journal that needs recovery via debugfs). Layouts are data ([`DiskSpec`], from scenario files and
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
    /// `gpt` (default), `mbr`, `none` (one filesystem on the whole disk) or `garbage`
    /// (`size_mib` of deterministic noise ending sector 0 in 0x55AA; no partitions).
    #[serde(default)]
    pub table: TableKind,
    /// Damage done after building: `gpt-primary` breaks the primary GPT header's CRC.
    pub corrupt: Option<Corrupt>,
    /// Size of a `garbage` disk in MiB (default 16).
    pub size_mib: Option<u64>,
    /// Partitions in order (exactly one for `table = "none"`).
    #[serde(default)]
    pub partition: Vec<PartSpec>,
    /// How QEMU attaches it: `virtio` (default), `nvme`, `ahci`, `scsi` or `usb`.
    #[serde(default)]
    pub bus: crate::qemu::Bus,
    /// Not attached at start; a `{ monitor = "device_add ..." }` step attaches it.
    #[serde(default)]
    pub hotplug: bool,
    /// This many identical disks (scenarios only; at most 32). Default 1.
    pub repeat: Option<usize>,
    /// The booted system's own disk (a `debian_rootfs`): the guest writes to it, through a
    /// QEMU overlay (`snapshot=on`) kept across the VM's reboots; the image stays as built.
    #[serde(default)]
    pub snapshot: bool,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    #[default]
    Gpt,
    Mbr,
    None,
    Garbage,
    /// An ISO9660 hybrid image (a USB stick): the first partition is the ISO (built by
    /// xorriso, at byte 0), the others are appended partitions in its MBR (`-append_partition`).
    #[serde(rename = "iso-hybrid")]
    IsoHybrid,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Corrupt {
    GptPrimary,
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
    /// ext4 only: the filesystem UUID (`mkfs.ext4 -U`), for configs that search for it.
    pub uuid: Option<String>,
    /// MBR only: a logical partition inside the extended partition (numbered from 5).
    #[serde(default)]
    pub logical: bool,
    /// ext4 only: path → new content (same length as the file's). After mkfs, one journal
    /// transaction rewrites the file's first block with it and the filesystem is left needing
    /// recovery; a reader that replays the journal sees the new content, one that ignores it
    /// the old.
    #[serde(default)]
    pub journal: BTreeMap<String, String>,
    /// Extra arguments for mkfs.ext4 (e.g. `["-O", "inline_data"]`).
    #[serde(default)]
    pub mkfs_args: Vec<String>,
    /// Path → content. Content is text, or `@kernel`, `@kernel-signed` / `@kernel-unsigned`
    /// / `@kernel-tampered` (the test kernel signed with the Secure Boot chain's `db` key, with
    /// no signature, or signed and then one byte flipped), `@target-initrd`,
    /// `@marker-initrd NAME`, `@garbage BYTES`, `@uki CMDLINE`, `@uki-signed CMDLINE` (that
    /// UKI signed with `db`), `@uki-signed-linux CMDLINE` / `@uki-unsigned-linux
    /// CMDLINE` (a UKI whose `.linux` is `@kernel-signed` / `@kernel-unsigned`; `@uki`'s is
    /// Debian's own signed kernel), `@secureboot-db-cert` (the `db` certificate, PEM), `@iso NAME` (the ISO image `isos.NAME`
    /// describes), `@leapboot` (the static
    /// `leapboot` command), `@symlink TARGET`. Text starting with `#!` and `@leapboot` are
    /// made executable.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// ISO images kept as files on this filesystem (`@iso NAME`), by name.
    #[serde(default)]
    pub isos: BTreeMap<String, IsoSpec>,
    /// ext4 only: start from a cached Debian root filesystem (`systemd` or `openrc`, built
    /// by debootstrap on first use, see `xtask/src/rootfs.rs`); `files` are added over it.
    pub debian_rootfs: Option<String>,
    /// `fs = "md"`: the `[[md]]` array (by `name`) this partition is a member of.
    pub array: Option<String>,
    /// `fs = "lvm"`: the `[[lvm]]` volume group (by `vg`) this partition is a PV of.
    pub vg: Option<String>,
    /// The member or PV image made by [`build_stacks`], copied in as the partition.
    #[serde(skip)]
    pub prebuilt: Option<PathBuf>,
}

/// An ISO 9660 image file (Rock Ridge and Joliet, `xorriso -as mkisofs`) of its own files.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsoSpec {
    /// Volume identifier (default `LEAPBOOT`).
    pub label: Option<String>,
    /// Path → content, as a partition's `files` (no `@iso` inside an ISO).
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

/// An md RAID array over partitions with `fs = "md"` and `array = NAME` (in disk order),
/// made by mdadm in a helper VM ([`crate::mdvm`]); raid devices beyond the partitions
/// present are created `missing` (a degraded mirror).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MdSpec {
    pub name: String,
    /// `0.90`, `1.0`, `1.1` or `1.2` (default).
    #[serde(default = "default_md_metadata")]
    pub metadata: String,
    /// RAID level (default 1).
    #[serde(default = "default_md_level")]
    pub level: u32,
    /// `--raid-devices` (default: the member partitions present).
    pub devices: Option<usize>,
    /// The filesystem written onto the array (`size_mib` must fit it).
    pub volume: PartSpec,
}

fn default_md_metadata() -> String {
    "1.2".into()
}
fn default_md_level() -> u32 {
    1
}

/// An LVM2 volume group over partitions with `fs = "lvm"` and `vg = NAME`, written by the
/// real `pvcreate`/`vgcreate`/`lvcreate` on loop devices without device-mapper (`--driverloaded
/// n`, `--activate n`); each LV's filesystem is written at the extents `lvs --segments` names.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VgSpec {
    pub vg: String,
    /// Extent size in MiB (default 1).
    pub extent_mib: Option<u64>,
    /// Logical volumes, created in order (linear; one may span several PVs).
    pub lv: Vec<LvSpec>,
}

/// One linear logical volume: its name and filesystem (`volume.size_mib` is the LV's size).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LvSpec {
    pub name: String,
    pub volume: PartSpec,
}

fn default_size() -> u64 {
    64
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FsKind {
    Vfat,
    Ext4,
    /// ISO 9660 with Rock Ridge and Joliet (`xorriso -as mkisofs`); its size is its content's.
    Iso9660,
    /// An md RAID member (of the `[[md]]` array named by `array`).
    Md,
    /// An LVM2 physical volume (of the `[[lvm]]` volume group named by `vg`).
    Lvm,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PartType {
    Esp,
    Xbootldr,
    #[default]
    Linux,
}

/// Whether a file of this content (text or `@generator`) is a program, installed with its
/// execute bit: a script, the static `leapboot`, the TLS helper.
pub fn is_program(content: &str) -> bool {
    content.starts_with("#!") || content == "@leapboot" || content == "@leapboot-tls"
}

/// The generated files fixtures refer to with `@...`.
pub struct Artifacts {
    kernel: PathBuf,
    /// The kernel's modules (md-mod, raid1 for the mdadm helper VM).
    modules: Option<PathBuf>,
    target_initrd: Vec<u8>,
    cli: PathBuf,
    /// The Secure Boot chain (keys, enrolled OVMF store, signed kernels), made on first use.
    secureboot: std::sync::OnceLock<Result<crate::secureboot::Chain, String>>,
    tls_helper: PathBuf,
    /// This run's HTTPS certificates (`crate::certs`, for 10.0.2.2 and fd00::2), made on
    /// first use.
    https_certs: std::sync::OnceLock<Result<PathBuf, String>>,
}

impl Artifacts {
    /// The Secure Boot chain of the test kernel (see `crate::secureboot`), made once.
    pub fn secureboot(&self) -> anyhow::Result<crate::secureboot::Chain> {
        self.secureboot
            .get_or_init(|| crate::secureboot::prepare(&self.kernel).map_err(|e| format!("{e:#}")))
            .clone()
            .map_err(|e| anyhow::anyhow!("preparing the Secure Boot chain: {e}"))
    }

    /// The directory of this run's HTTPS certificates (see `crate::certs`), made once.
    pub fn https_certs(&self) -> anyhow::Result<PathBuf> {
        self.https_certs
            .get_or_init(|| {
                let dir = crate::paths::target()
                    .join(format!("qemu-tests/https-certs-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                crate::certs::make(&dir, &format!("IP:{},IP:fd00::2", crate::netlab::SERVER_V4))
                    .map_err(|e| format!("{e:#}"))?;
                Ok(dir)
            })
            .clone()
            .map_err(|e| anyhow::anyhow!("making the HTTPS certificates: {e}"))
    }

    pub fn new(bins: &Binaries, kernel: &Kernel) -> anyhow::Result<Artifacts> {
        Ok(Artifacts {
            kernel: kernel.image.clone(),
            modules: kernel.modules.clone(),
            target_initrd: crate::initramfs::target(bins)?,
            cli: bins.cli.clone(),
            secureboot: std::sync::OnceLock::new(),
            tls_helper: bins.tls_helper.clone(),
            https_certs: std::sync::OnceLock::new(),
        })
    }

    pub fn content(&self, spec: &str) -> anyhow::Result<Vec<u8>> {
        let Some(gen) = spec.strip_prefix('@') else {
            return Ok(spec.as_bytes().to_vec());
        };
        let (what, arg) = gen.split_once(' ').unwrap_or((gen, ""));
        Ok(match what {
            "kernel" => std::fs::read(&self.kernel)?,
            "kernel-signed" => std::fs::read(self.secureboot()?.signed)?,
            "kernel-unsigned" => std::fs::read(self.secureboot()?.unsigned)?,
            "kernel-tampered" => std::fs::read(self.secureboot()?.tampered)?,
            "secureboot-db-cert" => std::fs::read(self.secureboot()?.db_cert)?,
            "uki-signed" => self.secureboot()?.sign(&self.uki(arg)?)?,
            "uki-signed-linux" | "uki-unsigned-linux" => {
                let chain = self.secureboot()?;
                let linux = if what == "uki-signed-linux" {
                    chain.signed
                } else {
                    chain.unsigned
                };
                self.uki_of(&std::fs::read(linux)?, arg)
            }
            "target-initrd" => self.target_initrd.clone(),
            "leapboot-tls" => std::fs::read(&self.tls_helper)?,
            "https-ca" => std::fs::read(self.https_certs()?.join("ca.pem"))?,
            "https-wrong-ca" => std::fs::read(self.https_certs()?.join("wrong-ca.pem"))?,
            "marker-initrd" if !arg.is_empty() => crate::initramfs::marker(arg)?,
            "garbage" => garbage(arg.parse().context("@garbage needs a byte count")?),
            // Zero bytes: the kernel's initramfs unpacker skips them between archives, so
            // this is an initrd of any size that changes nothing (transfer measurements).
            "zeros" => vec![0; arg.parse().context("@zeros needs a byte count")?],
            "leapboot" => std::fs::read(&self.cli)?,
            "uki" => self.uki(arg)?,
            "chain-initrd" => crate::initramfs::chain(
                &std::fs::read(&self.cli)?,
                &std::fs::read(&self.kernel)?,
                &self.target_initrd,
                arg,
            )?,
            _ => bail!("unknown generated content {spec:?}"),
        })
    }

    /// `spec` as [`Artifacts::content`], and `@iso NAME`: the image `isos[NAME]` describes.
    fn content_in(&self, spec: &str, isos: &BTreeMap<String, IsoSpec>) -> anyhow::Result<Vec<u8>> {
        let Some(name) = spec.strip_prefix("@iso ") else {
            return self.content(spec);
        };
        let iso = isos
            .get(name)
            .with_context(|| format!("@iso {name}: no [isos.{name}] table in this partition"))?;
        let work = std::env::temp_dir().join(format!("leapboot-iso-{}-{name}", std::process::id()));
        let stage = work.join("stage");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&stage)?;
        for (path, content) in &iso.files {
            let dest = stage.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(dest.parent().context("a file path has a parent")?)?;
            std::fs::write(
                &dest,
                self.content(content)
                    .with_context(|| format!("@iso {name}: file {path}"))?,
            )?;
        }
        let out = work.join("image.iso");
        let label = iso.label.clone().unwrap_or_else(|| "LEAPBOOT".into());
        run(
            Command::new(crate::prereq::find("xorriso").context("xorriso")?)
                .args(["-as", "mkisofs", "-quiet", "-R", "-J", "-V", &label, "-o"])
                .arg(&out)
                .arg(&stage),
        )?;
        let bytes = std::fs::read(&out)?;
        let _ = std::fs::remove_dir_all(&work);
        Ok(bytes)
    }

    /// A unified kernel image of the test kernel, the target initrd and `cmdline`: a minimal
    /// PE container (`leapboot::entry::uki::pe::build`) with `.osrel`, `.cmdline`, `.uname`,
    /// `.initrd` and `.linux`. No EFI stub and no signature: firmware cannot start it, kexec
    /// can (only `.linux` runs), which is all the scenarios need.
    fn uki(&self, cmdline: &str) -> anyhow::Result<Vec<u8>> {
        Ok(self.uki_of(&std::fs::read(&self.kernel)?, cmdline))
    }

    /// A UKI of `kernel` as `.linux`, the target initrd and `cmdline`.
    fn uki_of(&self, kernel: &[u8], cmdline: &str) -> Vec<u8> {
        let osrel = "PRETTY_NAME=\"leapboot test UKI\"\nID=leapboot-test\nVERSION_ID=1\n";
        leapboot::entry::uki::pe::build(
            0x8664, // IMAGE_FILE_MACHINE_AMD64: the QEMU machine
            &[
                (".osrel", osrel.as_bytes()),
                (".cmdline", format!("{cmdline}\n").as_bytes()),
                (".uname", b"test"),
                (".initrd", &self.target_initrd),
                (".linux", kernel),
            ],
        )
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
    if matches!(p.fs, FsKind::Md | FsKind::Lvm) {
        let from = p
            .prebuilt
            .as_ref()
            .context("an md/lvm partition needs its `array`/`vg` defined by [[md]]/[[lvm]]")?;
        std::fs::copy(from, out)?;
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(stage);
    std::fs::create_dir_all(stage)?;
    if let Some(variant) = &p.debian_rootfs {
        if p.fs != FsKind::Ext4 {
            bail!("`debian_rootfs` is for ext4 partitions only");
        }
        let tree = crate::rootfs::get(variant)?;
        run(Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", tree.display()))
            .arg(stage))?;
        let _ = std::fs::remove_file(stage.join(".leapboot-complete"));
    }
    for (path, content) in &p.files {
        let dest = stage.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().expect("a file path has a parent"))?;
        let _ = std::fs::remove_file(&dest);
        if let Some(target) = content.strip_prefix("@symlink ") {
            std::os::unix::fs::symlink(target, &dest)?;
            continue;
        }
        std::fs::write(
            &dest,
            art.content_in(content, &p.isos)
                .with_context(|| format!("file {path}"))?,
        )?;
        if is_program(content) {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))?;
        }
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
        FsKind::Iso9660 | FsKind::Md | FsKind::Lvm => {} // below, or prebuilt
        FsKind::Ext4 => {
            let label = p.label.clone().unwrap_or_else(|| "leapboot".into());
            let mut mkfs = Command::new(crate::prereq::find("mkfs.ext4").context("mkfs.ext4")?);
            mkfs.args(["-q", "-F", "-L", &label]).args(&p.mkfs_args);
            if let Some(u) = &p.uuid {
                mkfs.args(["-U", u]);
            }
            run(mkfs.arg("-d").arg(stage).arg(out))?;
            if !p.journal.is_empty() {
                dirty_journal(p, out, stage)?;
            }
        }
    }
    if p.fs == FsKind::Iso9660 {
        let label = p.label.clone().unwrap_or_else(|| "LEAPBOOT".into());
        let _ = std::fs::remove_file(out);
        run(
            Command::new(crate::prereq::find("xorriso").context("xorriso")?)
                .args(["-as", "mkisofs", "-quiet", "-R", "-J", "-V", &label, "-o"])
                .arg(out)
                .arg(stage),
        )?;
    }
    if p.fs != FsKind::Ext4 && (!p.journal.is_empty() || !p.mkfs_args.is_empty()) {
        bail!("`journal` and `mkfs_args` are for ext4 partitions only");
    }
    if p.fs != FsKind::Ext4 && p.uuid.is_some() {
        bail!("`uuid` is for ext4 partitions only");
    }
    Ok(())
}

/// Writes one journal transaction (`debugfs -w`: `jo -c`, `jw`, `jc`; checksum v3 as
/// mke2fs' defaults expect) replacing the first block of each `p.journal` file with its new
/// content, leaving `needs_recovery` set: the state of a filesystem whose host crashed.
fn dirty_journal(p: &PartSpec, img: &Path, stage: &Path) -> anyhow::Result<()> {
    let debugfs = crate::prereq::find("debugfs").context("debugfs (e2fsprogs)")?;
    let dumpe2fs = crate::prereq::find("dumpe2fs").context("dumpe2fs")?;
    let header = Command::new(&dumpe2fs).arg("-h").arg(img).output()?;
    let bs: usize = String::from_utf8_lossy(&header.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Block size:"))
        .and_then(|n| n.trim().parse().ok())
        .context("dumpe2fs: no block size")?;
    let mut cmds = String::from("jo -c\n");
    for (i, (path, content)) in p.journal.iter().enumerate() {
        let old = std::fs::read(stage.join(path.trim_start_matches('/')))
            .with_context(|| format!("journal: {path} must be one of the partition's files"))?;
        if old.len() != content.len() {
            bail!("journal: new content of {path} must have the same length as the old");
        }
        let out = Command::new(&debugfs)
            .args(["-R", &format!("blocks /{}", path.trim_start_matches('/'))])
            .arg(img)
            .output()?;
        let block: u64 = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .and_then(|b| b.parse().ok())
            .with_context(|| format!("journal: no data block for {path}"))?;
        if content.len() > bs {
            bail!("journal: {path} is longer than one {bs}-byte block");
        }
        let blockfile = stage.with_extension(format!("jblock{i}"));
        let mut data = vec![0u8; bs];
        data[..content.len()].copy_from_slice(content.as_bytes());
        std::fs::write(&blockfile, data)?;
        cmds.push_str(&format!("jw -b {block} {}\n", blockfile.display()));
    }
    cmds.push_str("jc\n");
    let script = stage.with_extension("debugfs");
    std::fs::write(&script, cmds)?;
    run(Command::new(&debugfs)
        .arg("-w")
        .arg("-f")
        .arg(&script)
        .arg(img))?;
    let out = Command::new(&dumpe2fs).arg("-h").arg(img).output()?;
    if !String::from_utf8_lossy(&out.stdout).contains("needs_recovery") {
        bail!("debugfs did not leave {} needing recovery", img.display());
    }
    Ok(())
}

/// Builds the disks of a layout into `dir` as `disk0.img`, `disk1.img`, ...
pub fn build_disks(
    disks: &[DiskSpec],
    dir: &Path,
    art: &Artifacts,
) -> anyhow::Result<Vec<PathBuf>> {
    build_layout(disks, &[], &[], dir, art)
}

/// As [`build_disks`], with md arrays and LVM volume groups over the disks' `md`/`lvm`
/// partitions, made first by the real tools ([`build_stacks`]).
pub fn build_layout(
    disks: &[DiskSpec],
    md: &[MdSpec],
    lvm: &[VgSpec],
    dir: &Path,
    art: &Artifacts,
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut disks = disks.to_vec();
    build_stacks(&mut disks, md, lvm, dir, art)?;
    let disks = &disks[..];
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
            TableKind::Mbr => build_mbr(d, &img, &work, art)?,
            TableKind::IsoHybrid => build_iso_hybrid(d, &img, &work, art)?,
            TableKind::Garbage => {
                if !d.partition.is_empty() {
                    bail!("disk {i}: table = \"garbage\" has no partitions");
                }
                let mut g = garbage((d.size_mib.unwrap_or(16) << 20) as usize);
                g[510] = 0x55; // looks like a boot sector at first glance
                g[511] = 0xaa;
                std::fs::write(&img, g)?;
            }
        }
        if let Some(Corrupt::GptPrimary) = d.corrupt {
            if d.table != TableKind::Gpt {
                bail!("disk {i}: corrupt = \"gpt-primary\" needs table = \"gpt\"");
            }
            // One byte of the primary header's disk GUID (LBA 1, byte 60 of the 92 the CRC
            // covers): its CRC no longer matches.
            let mut f = File::options().read(true).write(true).open(&img)?;
            f.seek(SeekFrom::Start(512 + 60))?;
            f.write_all(&[0xA5])?;
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
        let t = match (p.ptype, p.fs) {
            (PartType::Esp, _) => gpt::partition_types::EFI,
            (PartType::Xbootldr, _) => gpt::partition_types::FREEDESK_BOOT,
            (PartType::Linux, FsKind::Md) => gpt::partition_types::LINUX_RAID,
            (PartType::Linux, FsKind::Lvm) => gpt::partition_types::LINUX_LVM,
            (PartType::Linux, _) => gpt::partition_types::LINUX_FS,
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

/// An MBR disk written by `sfdisk`: the primaries in order from 1 MiB, then (if any
/// partition is `logical`) an extended partition holding the logical ones, which sfdisk places
/// with their EBRs. Type bytes: esp 0xef, xbootldr 0xea, linux 0x83 (0x0c for vfat).
fn build_mbr(d: &DiskSpec, img: &Path, work: &Path, art: &Artifacts) -> anyhow::Result<()> {
    const MIB: u64 = 1 << 20;
    let primaries: Vec<&PartSpec> = d.partition.iter().filter(|p| !p.logical).collect();
    let logicals: Vec<&PartSpec> = d.partition.iter().filter(|p| p.logical).collect();
    if primaries.len() + usize::from(!logicals.is_empty()) > 4 {
        bail!("an MBR holds at most 4 primary partitions (the extended one counts)");
    }
    let ty = |p: &PartSpec| match (p.ptype, p.fs) {
        (PartType::Esp, _) => "ef",
        (PartType::Xbootldr, _) => "ea",
        (PartType::Linux, FsKind::Vfat) => "c",
        (PartType::Linux, FsKind::Ext4 | FsKind::Iso9660) => "83",
        (PartType::Linux, FsKind::Md) => "fd",
        (PartType::Linux, FsKind::Lvm) => "8e",
    };
    let mut script = String::from("label: dos\nlabel-id: 0x4c454150\n");
    let mut total = MIB;
    for p in &primaries {
        script.push_str(&format!("size={}MiB, type={}\n", p.size_mib, ty(p)));
        total += p.size_mib * MIB;
    }
    if !logicals.is_empty() {
        let ext: u64 = logicals.iter().map(|p| p.size_mib + 1).sum::<u64>() + 1;
        script.push_str(&format!("size={ext}MiB, type=5\n"));
        for (i, p) in logicals.iter().enumerate() {
            // Numbered, or sfdisk makes a primary partition while primary slots are free.
            script.push_str(&format!(
                "{} : size={}MiB, type={}\n",
                i + 5,
                p.size_mib,
                ty(p)
            ));
        }
        total += ext * MIB;
    }
    total += MIB;
    let _ = std::fs::remove_file(img);
    File::create(img)?.set_len(total)?;
    let sfdisk = crate::prereq::find("sfdisk").context("sfdisk (fdisk)")?;
    let mut child = Command::new(&sfdisk)
        .args(["--no-reread", "--no-tell-kernel", "-q"])
        .arg(img)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("sfdisk stdin")?
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "sfdisk failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // `sfdisk --dump`: "IMG5 : start=  8192, size=  4096, type=83" → starts by number.
    let dump = Command::new(&sfdisk).arg("--dump").arg(img).output()?;
    let mut starts = BTreeMap::new();
    for line in String::from_utf8_lossy(&dump.stdout).lines() {
        let Some((node, rest)) = line.split_once(" : ") else {
            continue;
        };
        let number: u32 = node
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .context("sfdisk --dump node number")?;
        let start: u64 = rest
            .split(',')
            .find_map(|f| f.trim().strip_prefix("start="))
            .and_then(|n| n.trim().parse().ok())
            .context("sfdisk --dump start")?;
        starts.insert(number, start * 512);
    }
    let numbered = primaries
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u32 + 1, *p))
        .chain(logicals.iter().enumerate().map(|(i, p)| (i as u32 + 5, *p)));
    let mut f = File::options().write(true).open(img)?;
    for (n, p) in numbered {
        let start = *starts
            .get(&n)
            .with_context(|| format!("sfdisk made no partition {n}"))?;
        let fs_img = work.join(format!("part{n}.img"));
        build_fs(p, &fs_img, &work.join("stage"), art)?;
        f.seek(SeekFrom::Start(start))?;
        f.write_all(&std::fs::read(&fs_img)?)?;
    }
    f.sync_all()?;
    Ok(())
}

/// An ISO9660 hybrid: `xorriso -as mkisofs` of the first partition's files, with the other
/// partitions' filesystems appended as MBR partitions 2, 3, ... (type bytes as [`build_mbr`]).
fn build_iso_hybrid(d: &DiskSpec, img: &Path, work: &Path, art: &Artifacts) -> anyhow::Result<()> {
    let Some((iso, rest)) = d.partition.split_first() else {
        bail!("table = \"iso-hybrid\" needs partitions, the first one iso9660");
    };
    if iso.fs != FsKind::Iso9660 || rest.len() > 3 {
        bail!("table = \"iso-hybrid\": the first partition is iso9660, then up to 3 others");
    }
    let stage = work.join("iso");
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage)?;
    for (path, content) in &iso.files {
        let dest = stage.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().context("a file path has a parent")?)?;
        std::fs::write(
            &dest,
            art.content_in(content, &iso.isos)
                .with_context(|| format!("file {path}"))?,
        )?;
    }
    let label = iso.label.clone().unwrap_or_else(|| "LEAPBOOT".into());
    let mut cmd = Command::new(crate::prereq::find("xorriso").context("xorriso")?);
    cmd.args(["-as", "mkisofs", "-quiet", "-R", "-J", "-V", &label]);
    for (i, p) in rest.iter().enumerate() {
        let part = work.join(format!("part{}.img", i + 2));
        build_fs(p, &part, &work.join("stage"), art)?;
        let ty = match (p.ptype, p.fs) {
            (PartType::Esp, _) => "0xef",
            (PartType::Xbootldr, _) => "0xea",
            (PartType::Linux, FsKind::Vfat) => "0x0c",
            (PartType::Linux, _) => "0x83",
        };
        cmd.arg("-append_partition")
            .arg((i + 2).to_string())
            .arg(ty)
            .arg(&part);
    }
    let _ = std::fs::remove_file(img);
    run(cmd.arg("-o").arg(img).arg(&stage))
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

/// Makes the md member and LVM PV images the disks' `md`/`lvm` partitions refer to and sets
/// their `prebuilt`: all md arrays in one mdadm helper VM run, each VG with the LVM tools
/// on loop devices.
fn build_stacks(
    disks: &mut [DiskSpec],
    md: &[MdSpec],
    lvm: &[VgSpec],
    dir: &Path,
    art: &Artifacts,
) -> anyhow::Result<()> {
    let work = dir.join("stacks");
    if md.is_empty() && lvm.is_empty() {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    // Member partitions per array / VG, in disk order: (disk, partition index).
    let members = |pick: &dyn Fn(&PartSpec) -> bool, disks: &[DiskSpec]| -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        for (i, d) in disks.iter().enumerate() {
            for (n, p) in d.partition.iter().enumerate() {
                if pick(p) {
                    v.push((i, n));
                }
            }
        }
        v
    };
    let mut arrays = Vec::new();
    for a in md {
        let parts = members(
            &|p| p.fs == FsKind::Md && p.array.as_deref() == Some(&a.name),
            disks,
        );
        if parts.is_empty() {
            bail!(
                "md array {}: no partition has fs = \"md\", array = {:?}",
                a.name,
                a.name
            );
        }
        let content = work.join(format!("md-{}.fs", a.name));
        build_fs(&a.volume, &content, &work.join("stage"), art)
            .with_context(|| format!("md array {}: its volume", a.name))?;
        let mut imgs = Vec::new();
        for (k, &(i, n)) in parts.iter().enumerate() {
            let img = work.join(format!("md-{}-{k}.img", a.name));
            File::create(&img)?.set_len(disks[i].partition[n].size_mib << 20)?;
            disks[i].partition[n].prebuilt = Some(img.clone());
            imgs.push(Some(img));
        }
        let devices = a.devices.unwrap_or(imgs.len());
        if devices < imgs.len() {
            bail!(
                "md array {}: {} member partitions but devices = {devices}",
                a.name,
                imgs.len()
            );
        }
        imgs.resize(devices, None);
        arrays.push(crate::mdvm::Array {
            metadata: a.metadata.clone(),
            level: a.level,
            name: a.name.clone(),
            members: imgs,
            content: Some(content),
        });
    }
    if !arrays.is_empty() {
        let modules = art
            .modules
            .as_ref()
            .context("the test kernel has no modules (md-mod, raid1) for the mdadm helper VM")?;
        let transcript = crate::mdvm::create(&art.kernel, modules, &arrays, &work)?;
        std::fs::write(dir.join("mdadm.txt"), transcript)?;
    }
    for g in lvm {
        let parts = members(
            &|p| p.fs == FsKind::Lvm && p.vg.as_deref() == Some(&g.vg),
            disks,
        );
        if parts.is_empty() {
            bail!(
                "volume group {}: no partition has fs = \"lvm\", vg = {:?}",
                g.vg,
                g.vg
            );
        }
        let mut imgs = Vec::new();
        for (k, &(i, n)) in parts.iter().enumerate() {
            let img = work.join(format!("vg-{}-{k}.img", g.vg));
            File::create(&img)?.set_len(disks[i].partition[n].size_mib << 20)?;
            disks[i].partition[n].prebuilt = Some(img.clone());
            imgs.push(img);
        }
        build_vg(g, &imgs, &work, art)?;
    }
    Ok(())
}

/// Loop devices attached read-write to PV image files, detached on drop.
struct Loops(Vec<String>);

impl Drop for Loops {
    fn drop(&mut self) {
        for l in &self.0 {
            let _ = Command::new("losetup").args(["-d", l]).status();
        }
    }
}

/// `pvcreate`, `vgcreate`, `lvcreate` on loop devices over `pvs`, then each LV's filesystem
/// written at the PV extents `lvs --segments` reports.
fn build_vg(g: &VgSpec, pvs: &[PathBuf], work: &Path, art: &Artifacts) -> anyhow::Result<()> {
    let mut loops = Loops(Vec::new());
    for p in pvs {
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(p)
            .output()?;
        if !out.status.success() {
            bail!(
                "losetup {} failed (LVM fixtures need root): {}",
                p.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        loops
            .0
            .push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let etc = work.join(format!("lvm-{}", g.vg));
    std::fs::create_dir_all(&etc)?;
    std::fs::write(
        etc.join("lvm.conf"),
        "devices { obtain_device_list_from_udev = 0 use_devicesfile = 0 }\n\
         activation { udev_sync = 0 udev_rules = 0 }\nbackup { backup = 0 archive = 0 }\n\
         global { use_lvmlockd = 0 }\n",
    )?;
    let devices = loops.0.join(",");
    let lvm = |args: &[&str]| -> anyhow::Result<String> {
        let out = Command::new(crate::prereq::find("lvm").context("lvm (lvm2)")?)
            .args(args)
            .args(["--devices", &devices, "--driverloaded", "n"])
            .env("LVM_SYSTEM_DIR", &etc)
            .env("LVM_SUPPRESS_FD_WARNINGS", "1")
            .output()?;
        if !out.status.success() {
            bail!(
                "lvm {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let mut pv_args = vec!["pvcreate", "-q"];
    pv_args.extend(loops.0.iter().map(String::as_str));
    lvm(&pv_args)?;
    let extent = format!("{}M", g.extent_mib.unwrap_or(1));
    let mut vg_args = vec!["vgcreate", "-q", "-s", &extent, &g.vg];
    vg_args.extend(loops.0.iter().map(String::as_str));
    lvm(&vg_args)?;
    for lv in &g.lv {
        let size = format!("{}M", lv.volume.size_mib);
        lvm(&[
            "lvcreate",
            "-q",
            "--activate",
            "n",
            "--zero",
            "n",
            "-L",
            &size,
            "-n",
            &lv.name,
            &g.vg,
        ])?;
    }
    let pe_starts = lvm(&[
        "pvs",
        "-o",
        "pv_name,pe_start",
        "--units",
        "b",
        "--noheadings",
        "--separator",
        ";",
    ])?;
    let segs = lvm(&[
        "lvs",
        "--segments",
        "-o",
        "lv_name,seg_start_pe,seg_pe_ranges,vg_extent_size",
        "--units",
        "b",
        "--noheadings",
        "--separator",
        ";",
        &g.vg,
    ])?;
    let pe_start = |dev: &str| -> anyhow::Result<u64> {
        pe_starts
            .lines()
            .find_map(|l| l.trim().strip_prefix(dev)?.strip_prefix(';'))
            .and_then(|n| n.trim().trim_end_matches('B').parse().ok())
            .with_context(|| format!("pvs: no pe_start for {dev}"))
    };
    for lv in &g.lv {
        let fs_img = work.join(format!("lv-{}-{}.fs", g.vg, lv.name));
        build_fs(&lv.volume, &fs_img, &work.join("stage"), art)
            .with_context(|| format!("LV {}/{}", g.vg, lv.name))?;
        let data = std::fs::read(&fs_img)?;
        let mut rows: Vec<(u64, String, u64, u64, u64)> = Vec::new();
        for l in segs.lines() {
            let f: Vec<&str> = l.trim().split(';').collect();
            if f.len() == 4 && f[0] == lv.name {
                let (dev, range) = f[2].split_once(':').context("lvs: seg_pe_ranges")?;
                let (a, b) = range.split_once('-').context("lvs: seg_pe_ranges")?;
                rows.push((
                    f[1].parse()?,
                    dev.to_string(),
                    a.parse()?,
                    b.parse()?,
                    f[3].trim_end_matches('B').parse()?,
                ));
            }
        }
        rows.sort();
        let mut at = 0usize;
        for (_, dev, a, b, extent) in rows {
            let k = loops
                .0
                .iter()
                .position(|l| *l == dev)
                .context("lvs: unknown PV")?;
            let n = ((b - a + 1) * extent) as usize;
            let mut f = File::options().write(true).open(&pvs[k])?;
            f.seek(SeekFrom::Start(pe_start(&dev)? + a * extent))?;
            f.write_all(
                data.get(at..at + n)
                    .context("LV larger than its filesystem image")?,
            )?;
            at += n;
        }
    }
    Ok(())
}
