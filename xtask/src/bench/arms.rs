//! The end-to-end arms of the bench: four ways of getting from QEMU start to the same target
//! (kernel, initrd, command line) on the same disk (`qemu-tests/bench-debian12.toml`, on
//! NVMe), with the same QEMU flags and the same first kernel:
//!
//! - (a) `direct`: QEMU's `-kernel` boots the target itself (no first kernel at all);
//! - (b) `floor`: a busybox `/init` kexecs a kernel and initrd carried in its own initramfs;
//! - (c) `script`: busybox + kexec-tools that know the partition, the file names and the
//!   command line: `mount -o ro,noload`, `kexec -s -l`, `kexec -e`;
//! - (d) `leapboot` with `leapboot.timeout=0`.
//!
//! busybox (`busybox-static`) and kexec-tools are Debian's own binaries: `apt-get download` +
//! `dpkg-deb -x`, cached under `target/bench/debs/`; kexec's shared libraries, as `ldd`
//! resolves them (the host's, plus the `lib*` packages kexec-tools depends on that the host
//! lacks, fetched the same way: it links Xen's libxenctrl), are copied in beside it.
//!
//! Each boot is timed from spawning QEMU to the target's `LEAPBOOT-TARGET-OK` line; the host
//! time of every serial line is kept so the split (first kernel, PID 1, second kernel) can be
//! read from the transcript. The disk's SHA-256 is compared after every boot.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::image::{self, Artifacts, DiskSpec};
use crate::initramfs::Archive;
use crate::qemu::{Bus, Vm, VmDisk};
use crate::{paths, scenario};

/// The bench disk and what the hand-written arms are told.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    pub script: ScriptKnows,
    pub disk: Vec<DiskSpec>,
}

/// What the busybox script knows instead of discovering it.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptKnows {
    /// The partition node holding the kernel (`/dev/nvme0n1p2`).
    pub partition: String,
    /// The kernel's path on that partition.
    pub kernel: String,
    /// The initrd's path on that partition.
    pub initrd: String,
    /// The target's command line: the default entry's, so every arm boots the same.
    pub cmdline: String,
}

pub const LAYOUT: &str = "qemu-tests/bench-debian12.toml";

pub fn layout() -> anyhow::Result<Layout> {
    let path = paths::root().join(LAYOUT);
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    toml::from_str(&text).with_context(|| path.display().to_string())
}

/// One way to boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arm {
    Direct,
    Floor,
    Script,
    Leapboot,
    /// leapboot with its menu shown (a one-second countdown): the arm that draws a first
    /// menu frame, for that milestone; not in the ratios.
    Menu,
}

impl Arm {
    /// In the order they are interleaved.
    pub const ALL: [Arm; 5] = [
        Arm::Direct,
        Arm::Floor,
        Arm::Script,
        Arm::Leapboot,
        Arm::Menu,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Arm::Direct => "(a) direct `-kernel` boot of the target",
            Arm::Floor => {
                "(b) floor: busybox `/init` kexecs a kernel + initrd from its own initramfs"
            }
            Arm::Script => {
                "(c) manual: busybox + kexec-tools, `mount -o ro,noload`, `kexec -s -l`, `kexec -e`"
            }
            Arm::Leapboot => "(d) leapboot, `leapboot.timeout=0`",
            Arm::Menu => {
                "(e) leapboot with its menu shown, `leapboot.timeout=1` (one second of countdown)"
            }
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Arm::Direct => "a",
            Arm::Floor => "b",
            Arm::Script => "c",
            Arm::Leapboot => "d",
            Arm::Menu => "e",
        }
    }
}

/// Everything the arms boot, built once.
pub struct Setup {
    kernel: PathBuf,
    disk: PathBuf,
    disk_sha: String,
    script: ScriptKnows,
    /// The target initramfs (arm a).
    target: PathBuf,
    floor: PathBuf,
    manual: PathBuf,
    leapboot: PathBuf,
}

/// Builds the disk and the three initramfs images the arms need.
pub fn prepare(
    kernel: &Path,
    leapboot_initrd: &Path,
    art: &Artifacts,
    target_initrd: &[u8],
) -> anyhow::Result<Setup> {
    let layout = layout()?;
    if layout.disk.len() != 1 || layout.disk[0].bus != Bus::Nvme {
        bail!("{LAYOUT}: the bench boots one NVMe disk");
    }
    let dir = paths::target().join("bench/e2e");
    let disk = image::build_disks(&layout.disk, &dir, art)?.remove(0);
    let busybox = debian_file("busybox-static", "bin/busybox")?;
    let kexec = debian_file("kexec-tools", "sbin/kexec")?;
    let target = dir.join("target-initrd.cpio.gz");
    std::fs::write(&target, target_initrd)?;

    let s = &layout.script;
    let libs = kexec_libraries(&kexec)?;
    let mut floor = base_archive(&busybox, &kexec, &libs)?;
    floor.file("boot/vmlinuz", std::fs::read(kernel)?, 0o644);
    floor.file("boot/initrd.img", target_initrd.to_vec(), 0o644);
    floor.file(
        "init",
        floor_script("/boot/vmlinuz", "/boot/initrd.img", &s.cmdline).into_bytes(),
        0o755,
    );
    let floor_path = dir.join("floor-initrd.cpio.gz");
    std::fs::write(&floor_path, floor.to_gzip()?)?;

    let mut manual = base_archive(&busybox, &kexec, &libs)?;
    manual.file("init", manual_script(s).into_bytes(), 0o755);
    let manual_path = dir.join("manual-initrd.cpio.gz");
    std::fs::write(&manual_path, manual.to_gzip()?)?;

    Ok(Setup {
        kernel: kernel.to_owned(),
        disk_sha: scenario::sha256(&disk)?,
        disk,
        script: s.clone(),
        target,
        floor: floor_path,
        manual: manual_path,
        leapboot: leapboot_initrd.to_owned(),
    })
}

/// busybox at /bin/busybox, kexec at /sbin/kexec with its shared libraries, the mount points.
fn base_archive(
    busybox: &Path,
    kexec: &Path,
    libs: &[(String, PathBuf)],
) -> anyhow::Result<Archive> {
    let mut a = Archive::default();
    for d in ["dev", "proc", "sys", "mnt", "tmp"] {
        a.dir(d);
    }
    a.chardev("dev/console", 5, 1);
    a.file("bin/busybox", std::fs::read(busybox)?, 0o755);
    a.file("sbin/kexec", std::fs::read(kexec)?, 0o755);
    for (dest, src) in libs {
        let data = std::fs::read(src).with_context(|| src.display().to_string())?;
        a.file(dest.trim_start_matches('/'), data, 0o755);
    }
    Ok(a)
}

/// One line of `ldd` output: the name the binary asks for, and where it was found.
#[derive(Debug, PartialEq, Eq)]
pub struct Needed {
    pub name: String,
    pub path: Option<PathBuf>,
}

/// `libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)`, `libx.so.4 => not found` and
/// `/lib64/ld-linux-x86-64.so.2 (0x...)` lines; `linux-vdso.so.1 (0x...)` is no file.
pub fn parse_ldd(text: &str) -> Vec<Needed> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            match l.split_once("=>") {
                Some((name, right)) => Some(Needed {
                    name: name.trim().to_string(),
                    path: right
                        .split_whitespace()
                        .next()
                        .filter(|p| p.starts_with('/'))
                        .map(PathBuf::from),
                }),
                None => {
                    let path = l.split_whitespace().next()?;
                    path.starts_with('/').then(|| Needed {
                        name: path.to_string(),
                        path: Some(PathBuf::from(path)),
                    })
                }
            }
        })
        .collect()
}

/// Where the guest's loader finds a library: the interpreter at its absolute path, the rest
/// in Debian's multiarch directory.
fn guest_path(n: &Needed) -> String {
    if n.name.starts_with('/') {
        n.name.clone()
    } else {
        format!("/lib/x86_64-linux-gnu/{}", n.name)
    }
}

/// kexec-tools' shared libraries: those this Debian host has, and those it lacks (kexec-tools
/// links Xen's libxenctrl) from the `lib*` packages kexec-tools depends on, fetched and
/// unpacked like kexec-tools itself, a few levels deep. Returns (path in the guest, file).
fn kexec_libraries(kexec: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let ldd = crate::prereq::find("ldd").context("ldd (libc-bin)")?;
    let mut roots: Vec<PathBuf> = Vec::new();
    let mut fetched: Vec<String> = vec!["kexec-tools".into()];
    let mut frontier: Vec<String> = fetched.clone();
    for _ in 0..5 {
        let dirs: Vec<String> = roots
            .iter()
            .flat_map(|r| {
                ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"]
                    .map(|d| r.join(d).display().to_string())
            })
            .collect();
        let out = Command::new(&ldd)
            .arg(kexec)
            .env("LD_LIBRARY_PATH", dirs.join(":"))
            .output()?;
        let needed = parse_ldd(&String::from_utf8_lossy(&out.stdout));
        if needed.is_empty() {
            bail!("ldd {} listed no shared libraries", kexec.display());
        }
        let missing: Vec<&str> = needed
            .iter()
            .filter(|n| n.path.is_none())
            .map(|n| n.name.as_str())
            .collect();
        if missing.is_empty() {
            return Ok(needed
                .iter()
                .filter_map(|n| Some((guest_path(n), n.path.clone()?)))
                .collect());
        }
        let mut next = Vec::new();
        for p in &frontier {
            for dep in library_depends(p)? {
                if fetched.contains(&dep) || installed(&dep) {
                    continue;
                }
                roots.push(debian_root(&dep)?);
                fetched.push(dep.clone());
                next.push(dep);
            }
        }
        if next.is_empty() {
            bail!("kexec needs {missing:?}, and no package it depends on provides them");
        }
        frontier = next;
    }
    bail!("kexec's shared libraries did not resolve in 5 levels of dependencies")
}

/// The `lib*` packages `package` depends on (`apt-cache depends`; virtual ones skipped).
fn library_depends(package: &str) -> anyhow::Result<Vec<String>> {
    let out = Command::new("apt-cache")
        .args(["depends", package])
        .output()
        .context("running apt-cache")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_start_matches('|').strip_prefix("Depends:"))
        .map(str::trim)
        .filter(|d| d.starts_with("lib"))
        .map(str::to_string)
        .collect())
}

/// Whether this host has `package` installed (its libraries are then found by `ldd`).
fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).ends_with("installed"))
}

/// A file of a Debian package (see [`debian_root`]).
fn debian_file(package: &str, path: &str) -> anyhow::Result<PathBuf> {
    let root = debian_root(package)?;
    // Debian 12 has a merged /usr: accept the file under usr/ too.
    [root.join(path), root.join("usr").join(path)]
        .into_iter()
        .find(|p| p.is_file())
        .with_context(|| format!("package {package} has no {path}"))
}

/// A Debian package fetched and unpacked once into `target/bench/debs/<pkg>/root`.
fn debian_root(package: &str) -> anyhow::Result<PathBuf> {
    let dir = paths::target().join("bench/debs").join(package);
    let root = dir.join("root");
    if !dir.join(".complete").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        println!("xtask: bench: apt-get download {package}");
        let ok = Command::new("apt-get")
            .args(["download", package])
            .current_dir(&dir)
            .status()
            .context("running apt-get")?
            .success();
        if !ok {
            bail!("apt-get download {package} failed (try: apt-get update)");
        }
        crate::netboot::unpack_deb(&dir, &root)?;
        std::fs::write(dir.join(".complete"), package)?;
    }
    Ok(root)
}

/// The lines the busybox arms print, for the split.
pub const SCRIPT_START: &str = "bench-script: start";
pub const SCRIPT_KEXEC: &str = "bench-script: kexec -e";
const SCRIPT_HEAD: &str = "#!/bin/busybox sh\nB=/bin/busybox\n";

fn fail(what: &str) -> String {
    format!("{{ $B echo \"bench-script: {what} failed\"; $B poweroff -f; }}")
}

fn kexec_lines(kernel: &str, initrd: &str, cmdline: &str) -> String {
    format!(
        "/sbin/kexec -s -l {kernel} --initrd={initrd} --command-line='{cmdline}' || {}\n\
         $B echo '{SCRIPT_KEXEC}'\n/sbin/kexec -e\n{}\n",
        fail("kexec -s -l"),
        fail("kexec -e")
    )
}

/// (b): everything is in the initramfs; kexec needs /proc and /sys.
pub fn floor_script(kernel: &str, initrd: &str, cmdline: &str) -> String {
    format!(
        "{SCRIPT_HEAD}$B echo '{SCRIPT_START}'\n\
         $B mount -t proc proc /proc\n$B mount -t sysfs sysfs /sys\n{}",
        kexec_lines(kernel, initrd, cmdline)
    )
}

/// (c): waits for the partition it knows (at most 30 s), sets it read-only (BLKROSET), mounts
/// it `ro,noload`, kexecs the files it knows with the command line it knows.
pub fn manual_script(s: &ScriptKnows) -> String {
    let part = &s.partition;
    format!(
        "{SCRIPT_HEAD}$B echo '{SCRIPT_START}'\n\
         $B mount -t proc proc /proc\n$B mount -t sysfs sysfs /sys\n\
         $B mount -t devtmpfs devtmpfs /dev\n\
         n=0\nwhile [ ! -b {part} ]; do\n  n=$((n+1))\n  [ $n -gt 30000 ] && {}\n  $B usleep 1000\ndone\n\
         $B blockdev --setro {part} || {}\n\
         $B mount -t ext4 -o ro,noload {part} /mnt || {}\n{}",
        fail("waiting for the disk"),
        fail("blockdev --setro"),
        fail("mount"),
        kexec_lines(
            &format!("/mnt{}", s.kernel),
            &format!("/mnt{}", s.initrd),
            &s.cmdline
        )
    )
}

/// One timed boot: every serial line with the host time it arrived.
pub struct Boot {
    /// QEMU start to the target's `LEAPBOOT-TARGET-OK` line.
    pub wall: Duration,
    pub lines: Vec<(Duration, String)>,
}

impl Boot {
    /// When the first line containing `s` arrived.
    pub fn first(&self, s: &str) -> Option<Duration> {
        self.lines.iter().find(|(_, l)| l.contains(s)).map(|x| x.0)
    }

    /// The first kernel handed over to PID 1 (`Run /init as init process`).
    pub fn pid1(&self) -> Option<Duration> {
        self.first("Run /init as init process")
    }

    /// The first kernel's userspace is about to kexec.
    pub fn kexec(&self, arm: Arm) -> Option<Duration> {
        match arm {
            Arm::Direct => None,
            Arm::Floor | Arm::Script => self.first(SCRIPT_KEXEC),
            Arm::Leapboot | Arm::Menu => self.first("leapboot time:"),
        }
    }
}

const BOOT_LIMIT: Duration = Duration::from_secs(180);

/// Boots `arm` once; fails unless the target reports exactly the expected command line and
/// the disk is unchanged.
pub fn boot(s: &Setup, arm: Arm) -> anyhow::Result<Boot> {
    let (initrd, append) = match arm {
        // The target's own command line (after the harness's `console=ttyS0 panic=-1`).
        Arm::Direct => (&s.target, s.script.cmdline.clone()),
        // The same first-kernel command line for the three kexec arms.
        Arm::Floor => (&s.floor, "leapboot.timeout=0".to_string()),
        Arm::Script => (&s.manual, "leapboot.timeout=0".to_string()),
        Arm::Leapboot => (&s.leapboot, "leapboot.timeout=0".to_string()),
        Arm::Menu => (&s.leapboot, "leapboot.timeout=1".to_string()),
    };
    let vm = Vm {
        kernel: s.kernel.clone(),
        initrd: Some(initrd.clone()),
        append,
        disks: vec![VmDisk {
            path: s.disk.clone(),
            bus: Bus::Nvme,
            hotplug: false,
            snapshot: false,
        }],
        kvm: false,
        monitor: None,
        firmware_reboot: false,
        ovmf: None,
    };
    let mut cmd = vm.command(false);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut child = cmd.spawn().context("starting QEMU")?;
    let stdout = child.stdout.take().context("QEMU's stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            if tx.send((start.elapsed(), text)).is_err() {
                break;
            }
        }
    });
    let deadline = start + BOOT_LIMIT;
    let mut lines = Vec::new();
    let result = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((t, line)) => {
                let ok = line.strip_prefix("LEAPBOOT-TARGET-OK cmdline=");
                let bad = line.contains("Kernel panic")
                    || line.contains("bench-script:") && line.ends_with("failed");
                lines.push((t, line.clone()));
                if let Some(cmdline) = ok {
                    let right = match arm {
                        Arm::Direct => cmdline.ends_with(&s.script.cmdline),
                        _ => cmdline == s.script.cmdline,
                    };
                    if !right {
                        break Err(anyhow::anyhow!(
                            "the target booted with {cmdline:?}, not {:?}",
                            s.script.cmdline
                        ));
                    }
                    break Ok(t);
                }
                if bad {
                    break Err(anyhow::anyhow!("{line}"));
                }
            }
            Err(_) => break Err(anyhow::anyhow!("no booted target within {BOOT_LIMIT:?}")),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let log = paths::target().join(format!("bench/e2e/serial-{}.log", arm.short()));
    let text: String = lines
        .iter()
        .map(|(t, l)| format!("{:8.3} {l}\n", t.as_secs_f64()))
        .collect();
    let _ = std::fs::write(&log, text);
    let wall = result.with_context(|| {
        format!(
            "arm {} ({}); transcript in {}",
            arm.short(),
            arm.label(),
            log.display()
        )
    })?;
    if scenario::sha256(&s.disk)? != s.disk_sha {
        bail!(
            "arm {}: the bench disk {} changed during the boot: a disk must never be written",
            arm.short(),
            s.disk.display()
        );
    }
    Ok(Boot { wall, lines })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_lines_give_the_names_the_paths_and_what_is_missing() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibxenctrl.so.4.17 => not found\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        let n = parse_ldd(text);
        assert_eq!(
            n,
            [
                Needed {
                    name: "libxenctrl.so.4.17".into(),
                    path: None
                },
                Needed {
                    name: "libc.so.6".into(),
                    path: Some("/lib/x86_64-linux-gnu/libc.so.6".into())
                },
                Needed {
                    name: "/lib64/ld-linux-x86-64.so.2".into(),
                    path: Some("/lib64/ld-linux-x86-64.so.2".into())
                },
            ]
        );
        assert_eq!(
            guest_path(&n[0]),
            "/lib/x86_64-linux-gnu/libxenctrl.so.4.17"
        );
        assert_eq!(guest_path(&n[2]), "/lib64/ld-linux-x86-64.so.2");
    }

    #[test]
    fn the_manual_script_knows_the_partition_files_and_command_line() {
        let s = layout().unwrap().script;
        let text = manual_script(&s);
        assert!(text.starts_with("#!/bin/busybox sh\n"));
        assert!(text.contains(&format!("$B blockdev --setro {}", s.partition)));
        assert!(text.contains(&format!("mount -t ext4 -o ro,noload {} /mnt", s.partition)));
        assert!(text.contains(&format!(
            "/sbin/kexec -s -l /mnt{} --initrd=/mnt{} --command-line='{}'",
            s.kernel, s.initrd, s.cmdline
        )));
        assert!(
            !s.cmdline.contains('\''),
            "the command line is single-quoted"
        );
        let f = floor_script("/boot/vmlinuz", "/boot/initrd.img", &s.cmdline);
        assert!(!f.contains("mount -t ext4"), "the floor reads no disk");
        assert!(f.contains(SCRIPT_KEXEC) && text.contains(SCRIPT_KEXEC));
    }
}
