//! The running system as the host commands see it: where its files are (`/proc`, `/sys`,
//! `/run`, `/etc`, `/boot`, given as one [`System`] so tests use a temporary tree), what a
//! load would be ([`Plan`]: files, sizes, command line), and the checks made before anything
//! is handed to the kernel. The decisions come from the sibling modules; this module reads the
//! files they judge.
//!
//! Command line of a kernel found by name (`--kernel`, `--latest`, `KNAME`, an entry of the
//! plain `/boot` scan without `root=`), first that applies: `--command-line`; `--reuse-cmdline`;
//! `/etc/kernel/cmdline`; the running `/proc/cmdline` without `BOOT_IMAGE=`, `initrd=` and
//! `leapboot.*`. Then `ROOTPART` (`/etc/conf.d/kexec`) replaces `root=`, a command line with no
//! `root=` gets the device mounted at `/`, and `KPARAM` and every `--append` are added.

use std::path::{Path, PathBuf};

use super::kexecconf::{self, KexecConf};
use super::{kernelfile, naming, preflight};
use crate::entry::{BootEntry, EntryKind, EntrySource, FileRef, Format};

/// Largest system file read (`/proc/cmdline`, `/etc/kernel/cmdline`, mountinfo...).
const MAX_TEXT: u64 = 1 << 20;

/// Where the running system's files are. [`System::real`] is `/`.
#[derive(Debug, Clone)]
pub struct System {
    /// The root: `/etc`, `/boot`, `/nokexec` are under it.
    pub root: PathBuf,
    /// `/proc`.
    pub proc: PathBuf,
    /// `/sys`.
    pub sys: PathBuf,
    /// `/run` (a tmpfs: the load record goes there).
    pub run: PathBuf,
}

/// Reads a small text file, bounded; `None` if it is missing or unreadable.
pub fn read_text(p: &Path) -> Option<String> {
    use std::io::Read;
    let f = std::fs::File::open(p).ok()?;
    let mut s = String::new();
    f.take(MAX_TEXT).read_to_string(&mut s).ok()?;
    Some(s)
}

/// The configuration files read, in the order they are tried; the first present is used.
pub const KEXEC_CONFS: &[&str] = &["etc/conf.d/kexec", "etc/kexec.conf"];

impl System {
    /// This machine.
    pub fn real() -> System {
        System::under(Path::new("/"))
    }

    /// A system tree under `root` (tests).
    pub fn under(root: &Path) -> System {
        System {
            root: root.to_owned(),
            proc: root.join("proc"),
            sys: root.join("sys"),
            run: root.join("run"),
        }
    }

    /// A path of the system (`etc/kernel/cmdline`).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// `uname -r`.
    pub fn release(&self) -> String {
        read_text(&self.proc.join("sys/kernel/osrelease"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }

    /// `/proc/cmdline`.
    pub fn cmdline(&self) -> String {
        read_text(&self.proc.join("cmdline"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }

    /// `/sys/kernel/kexec_loaded`.
    pub fn kexec_loaded(&self) -> bool {
        super::kexec_loaded(&self.sys)
    }

    /// The OpenRC kexec configuration, and the file it came from (none: defaults).
    pub fn kexec_conf(&self) -> (KexecConf, Option<PathBuf>) {
        for rel in KEXEC_CONFS {
            let p = self.path(rel);
            if let Some(text) = read_text(&p) {
                let c = kexecconf::parse(&text);
                for (line, why) in &c.warnings {
                    log::warn!("{}:{line}: {why}", p.display());
                }
                return (c, Some(p));
            }
        }
        (kexecconf::parse(""), None)
    }

    /// `/nokexec` (skip kexec once).
    pub fn nokexec(&self) -> PathBuf {
        self.path("nokexec")
    }

    /// The directory of kernels: `BOOTPART` or `/boot`.
    pub fn boot_dir(&self, conf: &KexecConf) -> PathBuf {
        self.path(conf.bootpart.as_deref().unwrap_or("/boot"))
    }

    /// The command line for a kernel found by name, before `--append` (see the module doc).
    pub fn by_name_cmdline(&self, conf: &KexecConf, reuse: bool) -> String {
        let own = read_text(&self.path(crate::entry::bootdir::KERNEL_CMDLINE))
            .map(|s| {
                s.lines()
                    .filter(|l| !l.trim_start().starts_with('#'))
                    .collect::<Vec<_>>()
                    .join(" ")
                    .trim()
                    .to_string()
            })
            .filter(|s| !s.is_empty() && !reuse);
        let mut c = own.unwrap_or_else(|| super::reuse_cmdline(&self.cmdline()));
        if let Some(r) = &conf.rootpart {
            c = super::with_root(&c, r);
        } else if !super::words(&c).iter().any(|w| w.starts_with("root=")) {
            if let Some(dev) = read_text(&self.proc.join("self/mountinfo"))
                .as_deref()
                .and_then(super::root_device)
            {
                c = super::with_root(&c, &dev);
            }
        }
        c
    }

    /// The kernel and initrd the OpenRC service would take: `KNAME`/`INITRD` or the naming
    /// rules in the boot directory.
    pub fn conf_kernel(&self, conf: &KexecConf) -> Result<(PathBuf, Option<PathBuf>), String> {
        let dir = self.boot_dir(conf);
        let arch = std::env::consts::ARCH;
        let resolve = |n: &str| {
            if n.starts_with('/') {
                self.path(n)
            } else {
                dir.join(n)
            }
        };
        let exists = |n: &str| resolve(n).is_file();
        let cands = naming::kernel_candidates(conf.kname.as_deref(), &self.release(), arch);
        let k = naming::first_present(&cands, &exists).ok_or_else(|| {
            format!(
                "no kernel in {}: tried {} (set KNAME in /etc/conf.d/kexec, or give --kernel)",
                dir.display(),
                cands.join(", ")
            )
        })?;
        let initrd = match &conf.initrd {
            Some(i) => {
                let p = resolve(i);
                if !p.is_file() {
                    return Err(missing_initrd(&p));
                }
                Some(p)
            }
            None => {
                let base = Path::new(&k)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                naming::first_present(&naming::initrd_candidates(&base, arch), &exists)
                    .map(|n| resolve(&n))
            }
        };
        Ok((resolve(&k), initrd))
    }

    /// `--latest`: the newest kernel in the boot directory by version, with its initrd.
    pub fn latest(&self, conf: &KexecConf) -> Result<(PathBuf, Option<PathBuf>), String> {
        let dir = self.boot_dir(conf);
        let names: Vec<String> = std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .take(4096)
            .collect();
        let k = naming::newest(names.iter().map(String::as_str)).ok_or_else(|| {
            format!(
                "no versioned kernel (vmlinuz-<version>, ...) in {}",
                dir.display()
            )
        })?;
        let arch = std::env::consts::ARCH;
        let initrd = naming::first_present(&naming::initrd_candidates(k, arch), &|n| {
            dir.join(n).is_file()
        })
        .map(|n| dir.join(n));
        Ok((dir.join(k), initrd))
    }

    /// The mounted boot directories to read through the filesystem (`/boot`, `/efi`,
    /// `/boot/efi`), before any raw device.
    pub fn boot_dirs(&self) -> Vec<PathBuf> {
        let mi = read_text(&self.proc.join("self/mountinfo")).unwrap_or_default();
        let mounted = |d: &str| mi.lines().any(|l| l.split_whitespace().nth(4) == Some(d));
        let mut out = Vec::new();
        for d in ["/boot", "/efi", "/boot/efi"] {
            let p = self.path(d);
            // /boot on the root filesystem is read too; /efi and /boot/efi only as mounts.
            if p.is_dir() && (mounted(d) || d == "/boot") {
                out.push(p);
            }
        }
        out
    }

    /// Block devices (`major:minor`) mounted now: their filesystems are read through the
    /// mounts ([`System::boot_dirs`]), not through the raw device the kernel is writing to.
    pub fn mounted_devices(&self) -> Vec<String> {
        read_text(&self.proc.join("self/mountinfo"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
            .collect()
    }
}

/// The words for an initrd that does not exist.
pub fn missing_initrd(p: &Path) -> String {
    format!(
        "initrd {} does not exist: check the path (or drop --initrd to boot without one)",
        p.display()
    )
}

/// The volume name host files are read through ([`crate::pipeline::Volumes::add_dir`] of `/`).
pub const HOST_VOLUME: &str = "/";

/// An entry for files named on the command line (`--kernel`, `--latest`, `KNAME`), read
/// through the [`HOST_VOLUME`]. The files are checked here: the kernel exists and is a kernel
/// for this machine, every initrd exists.
pub fn file_entry(kernel: &Path, initrds: &[PathBuf], cmdline: &str) -> Result<BootEntry, String> {
    check_kernel_file(kernel)?;
    for i in initrds {
        if !i.is_file() {
            return Err(missing_initrd(i));
        }
    }
    let abs = |p: &Path| -> Result<String, String> {
        std::path::absolute(p)
            .map(|a| a.display().to_string())
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let name = kernel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(BootEntry {
        id: name.clone(),
        title: name.clone(),
        version: naming::version_of(&name).map(str::to_string),
        kernel: FileRef {
            volume: HOST_VOLUME.into(),
            path: abs(kernel)?,
        },
        initrds: initrds
            .iter()
            .map(|i| {
                Ok(FileRef {
                    volume: HOST_VOLUME.into(),
                    path: abs(i)?,
                })
            })
            .collect::<Result<_, String>>()?,
        cmdline: cmdline.to_string(),
        devicetree: None,
        format: Format::Bootdir,
        kind: EntryKind::Linux,
        source: EntrySource {
            volume: HOST_VOLUME.into(),
            file: "(command line)".into(),
            line: None,
        },
    })
}

fn header(p: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("kernel {} does not exist", p.display())
        } else {
            format!("kernel {}: {e}", p.display())
        }
    })?;
    let mut h = Vec::new();
    f.take(kernelfile::HEADER_BYTES as u64)
        .read_to_end(&mut h)
        .map_err(|e| format!("kernel {}: {e}", p.display()))?;
    Ok(h)
}

/// `Ok` for a file that is a kernel this machine can kexec, or why not.
pub fn check_kernel_file(p: &Path) -> Result<(), String> {
    if p.is_dir() {
        return Err(format!("kernel {} is a directory", p.display()));
    }
    kernelfile::check(&p.display().to_string(), &header(p)?)
}

/// The host path of a file on a host directory volume (`None` for disk volumes).
pub fn host_path(f: &FileRef) -> Option<PathBuf> {
    f.volume
        .starts_with('/')
        .then(|| Path::new(&f.volume).join(f.path.trim_start_matches('/')))
}

/// What a load would do: the files with their sizes and the command line.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The entry (its `cmdline` is the entry's own).
    pub entry: BootEntry,
    /// The command line it is loaded with.
    pub cmdline: String,
    /// The kernel's size.
    pub kernel_bytes: u64,
    /// Each initrd's size.
    pub initrd_bytes: Vec<u64>,
    /// The new kernel's command-line limit, when its header was read.
    pub cmdline_max: Option<usize>,
}

impl Plan {
    /// Sizes the files and checks everything that can be checked before loading: each file
    /// is there, a host kernel file is a kernel for this machine, the command line fits the
    /// kernel's limit, and the memory is there (`meminfo`: `/proc/meminfo`'s text).
    pub fn new(
        entry: BootEntry,
        cmdline: String,
        vols: &crate::pipeline::Volumes,
        meminfo: Option<&str>,
    ) -> Result<Plan, String> {
        let size = |f: &FileRef, what: &str| -> Result<u64, String> {
            if let Some(url) = crate::net::netfs::url_of(f) {
                // A network file: its size if the server tells it (0: learnt while loading).
                return crate::net::fetch::probe_size(&url, &crate::net::fetch::global())
                    .map(|n| n.unwrap_or(0))
                    .map_err(|e| format!("{what} {url}: {e}"));
            }
            let fs = vols
                .fs(&f.volume)
                .ok_or_else(|| format!("{what} {f}: volume not found"))?;
            fs.metadata(&f.path).map(|m| m.len).map_err(|e| {
                if what == "initrd" {
                    format!("initrd {f} does not exist ({e}): check the entry or the path")
                } else {
                    format!("{what} {f}: {e}")
                }
            })
        };
        let kernel_bytes = size(&entry.kernel, "kernel")?;
        let initrd_bytes = entry
            .initrds
            .iter()
            .map(|f| size(f, "initrd"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut cmdline_max = None;
        if let (Some(p), EntryKind::Linux) = (host_path(&entry.kernel), entry.kind) {
            let h = header(&p)?;
            kernelfile::check(&p.display().to_string(), &h)?;
            cmdline_max = Some(crate::kexec::cmdline_limit(&h));
        }
        if let Some(max) = cmdline_max {
            if cmdline.len() > max {
                return Err(format!(
                    "the command line is {} bytes; {} accepts at most {max}: shorten it",
                    cmdline.len(),
                    shown(&entry.kernel)
                ));
            }
        }
        let total = kernel_bytes.saturating_add(initrd_bytes.iter().sum());
        preflight::memory(total, meminfo.and_then(preflight::mem_available))?;
        Ok(Plan {
            entry,
            cmdline,
            kernel_bytes,
            initrd_bytes,
            cmdline_max,
        })
    }

    /// The `--dry-run` text: files, sizes, command line, the kexec call.
    pub fn describe(&self) -> String {
        let mib = |b: u64| b as f64 / 1048576.0;
        let mut s = format!("would load '{}' [{}]\n", self.entry.title, self.entry.id);
        s += &format!(
            "  kernel  {} ({} bytes, {:.1} MiB)\n",
            shown(&self.entry.kernel),
            self.kernel_bytes,
            mib(self.kernel_bytes)
        );
        for (f, b) in self.entry.initrds.iter().zip(&self.initrd_bytes) {
            s += &format!("  initrd  {} ({b} bytes, {:.1} MiB)\n", shown(f), mib(*b));
        }
        let max = self
            .cmdline_max
            .map_or(String::new(), |m| format!(", at most {m}"));
        s += &format!(
            "  cmdline {} ({} bytes{max})\n",
            super::printable(&self.cmdline),
            self.cmdline.len()
        );
        let initrd = if self.entry.initrds.is_empty() {
            "-1".to_string()
        } else {
            format!(
                "memfd({} initrd(s) concatenated, {} bytes)",
                self.entry.initrds.len(),
                self.initrd_bytes
                    .iter()
                    .map(|b| b.div_ceil(4) * 4)
                    .sum::<u64>()
            )
        };
        let flags = if self.entry.initrds.is_empty() {
            "KEXEC_FILE_NO_INITRAMFS"
        } else {
            "0"
        };
        s += &format!(
            "  call    kexec_file_load(kernel_fd=memfd({} bytes), initrd_fd={initrd}, cmdline_len={}, cmdline, flags={flags})\n",
            self.kernel_bytes,
            self.cmdline.len() + 1
        );
        s += "nothing was loaded (--dry-run)";
        s
    }

    /// The record of this plan once loaded.
    pub fn record(&self, by: &str) -> super::record::Record {
        use super::record::{Loaded, Record};
        Record {
            title: self.entry.title.clone(),
            kernel: Loaded {
                path: shown(&self.entry.kernel),
                bytes: self.kernel_bytes,
            },
            initrds: self
                .entry
                .initrds
                .iter()
                .zip(&self.initrd_bytes)
                .map(|(f, b)| Loaded {
                    path: shown(f),
                    bytes: *b,
                })
                .collect(),
            cmdline: self.cmdline.clone(),
            loaded_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            by: by.to_string(),
        }
    }
}

/// A file as people know it: its host path, or `volume:path` on a disk.
pub fn shown(f: &FileRef) -> String {
    if let Some(url) = crate::net::netfs::url_of(f) {
        return super::printable(&url.to_string());
    }
    host_path(f).map_or_else(
        || super::printable(&f.to_string()),
        |p| super::printable(&p.display().to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, System) {
        let t = tempfile::tempdir().unwrap();
        let s = System::under(t.path());
        for d in [
            "proc/sys/kernel",
            "proc/self",
            "boot",
            "etc/kernel",
            "etc/conf.d",
            "sys/kernel",
        ] {
            std::fs::create_dir_all(t.path().join(d)).unwrap();
        }
        std::fs::write(t.path().join("proc/sys/kernel/osrelease"), "6.1.0-2\n").unwrap();
        std::fs::write(
            t.path().join("proc/cmdline"),
            "BOOT_IMAGE=/boot/vmlinuz-6.1.0-1 root=/dev/vda1 ro leapboot.timeout=0 quiet\n",
        )
        .unwrap();
        std::fs::write(
            t.path().join("proc/self/mountinfo"),
            "25 1 254:1 / / rw - ext4 /dev/vda1 rw\n",
        )
        .unwrap();
        (t, s)
    }

    fn kernel(p: &Path) {
        let mut h = vec![0u8; 0x240];
        h[0x202..0x206].copy_from_slice(b"HdrS");
        h[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        h[0x238..0x23c].copy_from_slice(&2047u32.to_le_bytes());
        std::fs::write(p, h).unwrap();
    }

    #[test]
    fn command_line_precedence() {
        let (t, s) = tree();
        let none = kexecconf::parse("");
        assert_eq!(s.by_name_cmdline(&none, false), "root=/dev/vda1 ro quiet");
        std::fs::write(
            t.path().join("etc/kernel/cmdline"),
            "# c\nroot=/dev/vda2 rw\n",
        )
        .unwrap();
        assert_eq!(s.by_name_cmdline(&none, false), "root=/dev/vda2 rw");
        assert_eq!(
            s.by_name_cmdline(&none, true),
            "root=/dev/vda1 ro quiet",
            "--reuse-cmdline"
        );
        let conf = kexecconf::parse("ROOTPART=/dev/sdb3\n");
        assert_eq!(s.by_name_cmdline(&conf, false), "root=/dev/sdb3 rw");
        std::fs::write(t.path().join("etc/kernel/cmdline"), "quiet\n").unwrap();
        assert_eq!(
            s.by_name_cmdline(&none, false),
            "root=/dev/vda1 quiet",
            "root= from /"
        );
    }

    #[test]
    fn conf_kernel_latest_and_missing_initrd() {
        let (t, s) = tree();
        let boot = t.path().join("boot");
        kernel(&boot.join("vmlinuz-6.1.0-2"));
        kernel(&boot.join("vmlinuz-6.1.0-10"));
        std::fs::write(boot.join("initrd.img-6.1.0-2"), "x").unwrap();
        let none = kexecconf::parse("");
        // The running kernel's version first, as the OpenRC service does.
        assert_eq!(
            s.conf_kernel(&none).unwrap(),
            (
                boot.join("vmlinuz-6.1.0-2"),
                Some(boot.join("initrd.img-6.1.0-2"))
            )
        );
        assert_eq!(
            s.latest(&none).unwrap(),
            (boot.join("vmlinuz-6.1.0-10"), None)
        );
        let conf = kexecconf::parse("KNAME=vmlinuz-6.1.0-10\nINITRD=/boot/nope\n");
        let e = s.conf_kernel(&conf).unwrap_err();
        assert!(
            e.starts_with("initrd ") && e.contains("/boot/nope does not exist"),
            "{e}"
        );
        let conf = kexecconf::parse("KNAME=bzImage\n");
        assert!(s
            .conf_kernel(&conf)
            .unwrap_err()
            .starts_with("no kernel in"));
    }

    #[test]
    fn file_entries_refuse_non_kernels_and_missing_initrds() {
        let (t, _s) = tree();
        let k = t.path().join("boot/vmlinuz-6.1.0-2");
        kernel(&k);
        let e = file_entry(&k, &[t.path().join("boot/none.img")], "x").unwrap_err();
        assert!(e.contains("none.img does not exist"), "{e}");
        let text = t.path().join("etc/kernel/cmdline");
        std::fs::write(&text, "root=x\n").unwrap();
        let e = file_entry(&text, &[], "x").unwrap_err();
        assert!(e.contains("is not a Linux kernel image"), "{e}");
        let e = file_entry(&t.path().join("nope"), &[], "x").unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let ok = file_entry(&k, &[], "root=x").unwrap();
        assert_eq!(ok.version.as_deref(), Some("6.1.0-2"));
        // A plan: sizes, the limit from the header, the dry-run text; a command line too
        // long for the kernel is refused.
        let mut vols = crate::pipeline::Volumes::default();
        vols.add_dir(Path::new("/"));
        let p = Plan::new(ok.clone(), "root=x".into(), &vols, None).unwrap();
        assert_eq!((p.kernel_bytes, p.cmdline_max), (0x240, Some(2047)));
        let d = p.describe();
        assert!(
            d.contains("kexec_file_load(kernel_fd=memfd(576 bytes), initrd_fd=-1, cmdline_len=7"),
            "{d}"
        );
        assert!(d.ends_with("nothing was loaded (--dry-run)"));
        let e = Plan::new(ok.clone(), "x".repeat(3000), &vols, None).unwrap_err();
        assert!(e.contains("accepts at most 2047"), "{e}");
        let e = Plan::new(ok, "x".into(), &vols, Some("MemAvailable: 1 kB\n")).unwrap_err();
        assert!(e.starts_with("not enough memory"), "{e}");
    }
}
