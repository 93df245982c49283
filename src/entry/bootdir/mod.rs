//! Kernels found by name, without any configuration: the plain `/boot` scan (what Gentoo's
//! `kexec` service and `installkernel` users rely on). The pipeline runs it only on volumes
//! where no configuration format found an entry, and lists none of the kernels a boot
//! configuration elsewhere on the machine already offers ([`offered`]: same version, same
//! root filesystem).
//!
//! Looks in `/boot` and the volume root for kernels named `vmlinuz-<ver>`, `vmlinux-<ver>`,
//! `kernel-<ver>`, `bzImage-<ver>`, `kernel-genkernel-<arch>-<ver>`, or plain `vmlinuz` /
//! `bzImage`, and pairs each with an initrd of the same version in the same directory
//! ([`initrd_names`]). Versions must start with a digit (so `kernel-config` is no kernel).
//! Backups (`*.old`, `*.bak`, `*~`) are skipped: `vmlinuz.old` is the previous kernel, already
//! found under its versioned name, and `vmlinuz-<ver>.old` is an older build of a version that
//! is listed. One version is listed once (`/boot` first, then name order); an unversioned kernel (usually the
//! `/vmlinuz` symlink Debian keeps) is dropped when a versioned kernel of the same size exists,
//! because [`BootFs`](crate::fs::BootFs) has no `readlink`. Newest version first
//! ([`crate::version::compare`]), unversioned kernels last.
//!
//! Titles: `<PRETTY_NAME> (<version>)` from the root filesystem's os-release, else `Linux
//! <version>` ([`title`]); never a device name (the menu has a column for it).
//!
//! Command line: `root=PARTUUID=…` (else `root=UUID=…`) and `ro`, followed by the root
//! filesystem's `/etc/kernel/cmdline` if it has one (the file `kernel-install`, dracut and
//! `u-boot-update` use for a distribution's default options; when it names `root=` itself it
//! is used as it is). The root is this volume when the kernel is in its `/boot`; for kernels at
//! a volume's root (a separate `/boot` or an ESP mounted at `/boot`) it is the one other
//! volume that holds `/etc/os-release`, if exactly one does; otherwise no `root=` is given (the
//! entry can still be edited). ESPs are scanned like any volume: Gentoo and Arch commonly
//! mount the ESP at `/boot`.
//!
//! Does not read kernel headers, does not look for microcode, and adds no leapboot-configured
//! arguments (that is the front end's configuration).

pub mod offered;

use std::cmp::Ordering;

use super::{BootEntry, EntryKind, EntrySource, FileRef, Format, Found, VolumeView};
use crate::fs::{FileKind, MAX_CONFIG_BYTES};
use crate::version;

/// Directories scanned, in preference order.
pub const DIRS: &[&str] = &["/boot", "/"];
/// The root filesystem's default kernel options.
pub const KERNEL_CMDLINE: &str = "/etc/kernel/cmdline";
/// Most kernels listed from one volume.
const MAX_KERNELS: usize = 64;

/// A kernel file name, understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelName {
    /// The version from the name, if it has one.
    pub version: Option<String>,
    /// The architecture of a genkernel name (`kernel-genkernel-<arch>-<ver>`).
    pub arch: Option<String>,
}

/// Whether `name` is a kernel by name, and its version. `None` for anything else, including
/// backups (`.old`, `.bak`, `~`).
pub fn classify(name: &str) -> Option<KernelName> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".old") || lower.ends_with(".bak") || name.ends_with('~') {
        return None;
    }
    if name == "vmlinuz" || name == "bzImage" {
        return Some(KernelName {
            version: None,
            arch: None,
        });
    }
    let versioned = |v: &str| v.starts_with(|c: char| c.is_ascii_digit());
    if let Some(rest) = name.strip_prefix("kernel-genkernel-") {
        let (arch, ver) = rest.split_once('-')?;
        return (!arch.is_empty() && versioned(ver)).then(|| KernelName {
            version: Some(ver.to_string()),
            arch: Some(arch.to_string()),
        });
    }
    ["vmlinuz-", "vmlinux-", "kernel-", "bzImage-"]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .filter(|v| versioned(v))
        .map(|v| KernelName {
            version: Some(v.to_string()),
            arch: None,
        })
}

/// Initrd file names that pair with a kernel, in preference order.
pub fn initrd_names(k: &KernelName) -> Vec<String> {
    match (&k.version, &k.arch) {
        (None, _) => vec!["initrd.img".into(), "initramfs.img".into()],
        (Some(v), arch) => {
            let mut names = Vec::with_capacity(7);
            if let Some(a) = arch {
                names.push(format!("initramfs-genkernel-{a}-{v}"));
            }
            names.extend([
                format!("initrd.img-{v}"),
                format!("initrd-{v}.img"),
                format!("initrd-{v}"),
                format!("initramfs-{v}.img"),
                format!("initramfs-{v}"),
            ]);
            names
        }
    }
}

/// A kernel found, before it becomes an entry.
struct Found1 {
    dir: &'static str,
    name: String,
    kernel: KernelName,
    len: u64,
    initrd: Option<String>,
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Scans `vol` for kernels by name.
pub fn discover(vol: &VolumeView<'_>, all: &[VolumeView<'_>]) -> Found {
    let mut found = Found::default();
    let mut kernels: Vec<Found1> = Vec::new();
    for dir in DIRS {
        let list = match vol.fs.read_dir(dir) {
            Ok(l) => l,
            Err(_) => continue, // no such directory: nothing to scan
        };
        for f in list.iter().filter(|f| f.kind == FileKind::File) {
            let Some(k) = classify(&f.name) else {
                continue;
            };
            if kernels.len() == MAX_KERNELS {
                log::warn!(
                    "{}: more than {MAX_KERNELS} kernels; the rest are ignored",
                    vol.name
                );
                break;
            }
            let dup = kernels
                .iter()
                .any(|o| match (&o.kernel.version, &k.version) {
                    (Some(a), Some(b)) => a == b,
                    (None, None) => o.name == f.name,
                    _ => false,
                });
            if dup {
                continue;
            }
            let path = join(dir, &f.name);
            let len = vol.fs.metadata(&path).map_or(0, |m| m.len);
            let initrd = initrd_names(&k).into_iter().find(|n| {
                list.iter()
                    .any(|e| e.kind == FileKind::File && e.name == *n)
            });
            kernels.push(Found1 {
                dir,
                name: f.name.clone(),
                kernel: k,
                len,
                initrd,
            });
        }
    }
    // The /vmlinuz symlink and its target are one kernel.
    let sizes: Vec<u64> = kernels
        .iter()
        .filter(|k| k.kernel.version.is_some())
        .map(|k| k.len)
        .collect();
    kernels.retain(|k| k.kernel.version.is_some() || k.len == 0 || !sizes.contains(&k.len));
    kernels.sort_by(|a, b| match (&a.kernel.version, &b.kernel.version) {
        (Some(x), Some(y)) => version::compare(y, x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    });
    let other_root = root_volume(vol, all);
    let here = (root_arg(vol), kernel_cmdline(vol), os_name(vol));
    let there = other_root.map_or((None, None, None), |o| {
        (root_arg(o), kernel_cmdline(o), os_name(o))
    });
    for k in kernels {
        let (root, args, os) = if k.dir == "/boot" { &here } else { &there };
        let cmdline = command_line(root.as_deref(), args.as_deref());
        let path = join(k.dir, &k.name);
        let title = title(
            os.as_deref(),
            k.kernel.version.as_deref().unwrap_or(&k.name),
        );
        let file = |p: String| FileRef {
            volume: vol.name.to_string(),
            path: p,
        };
        found.entries.push(BootEntry {
            id: k.name.clone(),
            title,
            version: k.kernel.version.clone(),
            kernel: file(path.clone()),
            initrds: k.initrd.iter().map(|i| file(join(k.dir, i))).collect(),
            cmdline,
            devicetree: None,
            format: Format::Bootdir,
            kind: EntryKind::Linux,
            source: EntrySource {
                volume: vol.name.to_string(),
                file: path,
                line: None,
            },
        });
    }
    found
}

/// A scanned kernel's title: `<os> (<version>)` where the root filesystem's os-release names
/// the OS (the form systemd-boot gives kernel-install's entries of one OS), else
/// `Linux <version>`. Unversioned kernels show their file name instead. No device name: the
/// menu shows the device in its own column, `details` in full.
pub fn title(os: Option<&str>, version: &str) -> String {
    match os {
        Some(os) => format!("{os} ({version})"),
        None => format!("Linux {version}"),
    }
}

/// The name os-release gives the OS on root filesystem `vol` (`PRETTY_NAME`, else `NAME
/// VERSION_ID`), control characters replaced: it is shown on consoles. `/etc/os-release`
/// first, then `/usr/lib/os-release` (os-release(5)); at most 64 KiB read.
fn os_name(vol: &VolumeView<'_>) -> Option<String> {
    let bytes = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| vol.fs.read(p, OS_RELEASE_BYTES).ok())?;
    let os = super::uki::osrel::OsRelease::parse(&String::from_utf8_lossy(&bytes)).title()?;
    let os: String = os
        .chars()
        .take(MAX_OS_NAME)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let os = os.trim();
    (!os.is_empty()).then(|| os.to_string())
}

/// os-release is read up to this size.
const OS_RELEASE_BYTES: u64 = 64 * 1024;
/// An OS name is cut to this many characters in titles.
const MAX_OS_NAME: usize = 80;

/// `root=` naming `vol`, if it has an identity.
fn root_arg(vol: &VolumeView<'_>) -> Option<String> {
    vol.part_uuid
        .map(|p| format!("root=PARTUUID={p}"))
        .or_else(|| vol.uuid.map(|u| format!("root=UUID={u}")))
}

/// The root filesystem's `/etc/kernel/cmdline` (systemd's `kernel-install`, dracut and Debian's
/// `u-boot-update` read it too): the distribution's own default kernel options, whitespace
/// normalised. `None` when absent, empty or unreadable.
fn kernel_cmdline(vol: &VolumeView<'_>) -> Option<String> {
    let bytes = vol.fs.read(KERNEL_CMDLINE, MAX_CONFIG_BYTES).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let words: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(str::split_ascii_whitespace)
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// The command line of a scanned kernel: `/etc/kernel/cmdline` as it is when it names the root;
/// otherwise the derived `root=`, `ro` (unless `rw`/`ro` is given) and its options.
pub fn command_line(root: Option<&str>, args: Option<&str>) -> String {
    let args = args.unwrap_or("");
    let words: Vec<&str> = args.split_ascii_whitespace().collect();
    if words.iter().any(|w| w.starts_with("root=")) {
        return words.join(" ");
    }
    let mut out: Vec<&str> = root.into_iter().collect();
    if !words.iter().any(|w| *w == "ro" || *w == "rw") {
        out.push("ro");
    }
    out.extend(words);
    out.join(" ")
}

/// For kernels at the root of `vol`: the single other volume that looks like a root filesystem.
fn root_volume<'a>(vol: &VolumeView<'_>, all: &'a [VolumeView<'a>]) -> Option<&'a VolumeView<'a>> {
    let mut roots = all.iter().filter(|o| o.name != vol.name && o.root_fs);
    let one = roots.next()?;
    if roots.next().is_some() {
        return None;
    }
    Some(one)
}

#[cfg(test)]
mod tests;
