//! The host commands themselves (`load`, `status`, `unload`, `exec`, `reboot`,
//! `install-service`, and `shutdown-hook`, which the shipped services run), over the decisions
//! of the sibling modules. `src/main.rs` only turns arguments into a [`Choice`] and calls
//! these. Every failure is logged with what to do and returned as `Err(Failed)`.

use std::path::{Path, PathBuf};

use super::initsys::{self, Graceful, Init};
use super::live::{self, Plan, System};
use super::{kexecconf::KexecConf, preflight, record};
use crate::disk::{Disk, RoPolicy};
use crate::entry::Format;
use crate::pipeline::{DiskRef, Volumes};

/// What the user chose to load.
#[derive(Debug, Default, Clone)]
pub struct Choice {
    /// An entry by id, title or glob (none: the default entry).
    pub entry: Option<String>,
    /// A kernel file that is in no configuration.
    pub kernel: Option<PathBuf>,
    /// Initrds for `kernel` (or instead of the found ones for `--latest`), in order.
    pub initrds: Vec<PathBuf>,
    /// The newest installed kernel by version.
    pub latest: bool,
    /// The command line instead of the entry's own.
    pub command_line: Option<String>,
    /// The running command line instead of the entry's own.
    pub reuse_cmdline: bool,
    /// Arguments added at the end.
    pub append: Vec<String>,
    /// Disk images to read instead of this machine.
    pub disks: Vec<PathBuf>,
    /// Directories to read as boot volumes instead of this machine.
    pub roots: Vec<PathBuf>,
    /// A boot server instead of this machine's disks (`--url`, `--net`).
    pub net: super::netsource::NetChoice,
}

impl Choice {
    /// Nothing chosen: no entry, no file, no command-line change.
    pub fn is_empty(&self) -> bool {
        self.entry.is_none()
            && self.kernel.is_none()
            && !self.latest
            && self.command_line.is_none()
            && !self.reuse_cmdline
            && self.append.is_empty()
            && self.initrds.is_empty()
            && !self.net.is_set()
    }
}

/// A command failed; what and why was logged already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed;

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failed (see the log)")
    }
}

impl std::error::Error for Failed {}

/// Logs `e` as an error: the way every failure here ends.
fn logged(e: impl std::fmt::Display) -> Failed {
    log::error!("{e}");
    Failed
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// Opens the volumes the user named, or this machine's: its mounted boot directories
/// (`/boot`, `/efi`, `/boot/efi`) through the filesystem first, then every block device that
/// has nothing mounted (a mounted one is read through its mounts). A device that cannot be
/// opened is named with the reason and skipped. Errors are logged.
pub fn open(disks: &[PathBuf], roots: &[PathBuf], sys: &System) -> Result<Volumes, Failed> {
    let mut volumes = Volumes::default();
    if disks.is_empty() && roots.is_empty() {
        for d in sys.boot_dirs() {
            log::debug!("reading {} through the filesystem", d.display());
            volumes.add_dir(&d);
        }
        let mounted = sys.mounted_devices();
        let devnum = |name: &str| {
            live::read_text(&sys.sys.join("class/block").join(name).join("dev"))
                .map(|s| s.trim().to_string())
        };
        let mut unreadable = Vec::new();
        for d in crate::discover::block_devices(&sys.sys, Path::new("/dev")) {
            let busy = std::iter::once(&d.name)
                .chain(&d.partitions)
                .find(|n| devnum(n).is_some_and(|dn| mounted.contains(&dn)));
            if let Some(p) = busy {
                log::debug!("{}: {p} is mounted; read through its mounts", d.name);
                continue;
            }
            match Disk::open_with(&d.node, RoPolicy::Leave) {
                Ok(disk) => volumes.add_disk(&disk, &d.name, &|n| {
                    crate::discover::partition_name(&d.name, n)
                }),
                Err(e) => {
                    log::warn!(
                        "cannot read {}: {e}; listing what else could be read",
                        d.node.display()
                    );
                    unreadable.push(d.name.clone());
                }
            }
        }
        if !unreadable.is_empty() && euid() != 0 {
            log::warn!(
                "not root: block devices {} were not read (run as root to read them)",
                unreadable.join(", ")
            );
        }
    }
    let mut opened = Vec::new();
    for path in disks {
        match Disk::open(path) {
            Ok(disk) => opened.push((disk, path.display().to_string())),
            Err(e) => {
                log::error!("{e}");
                return Err(Failed);
            }
        }
    }
    let namers: Vec<Box<dyn Fn(u32) -> String + Sync>> = opened
        .iter()
        .map(|(_, name)| {
            let name = name.clone();
            Box::new(move |n| format!("{name}:{n}")) as Box<dyn Fn(u32) -> String + Sync>
        })
        .collect();
    let refs: Vec<DiskRef<'_>> = opened
        .iter()
        .zip(&namers)
        .map(|((disk, name), namer)| DiskRef {
            disk,
            name,
            part_name: namer.as_ref(),
        })
        .collect();
    volumes.add_disks(&refs);
    for r in roots {
        if !r.is_dir() {
            log::error!("{}: not a directory", r.display());
            return Err(Failed);
        }
        volumes.add_dir(r);
    }
    Ok(volumes)
}

/// `/etc/leapboot.toml` on the running system: its `default` and `append` apply to the host
/// commands too.
fn host_config(sys: &System) -> crate::config::Config {
    let Some(text) = live::read_text(&sys.path(crate::config::PATH)) else {
        return crate::config::Config::default();
    };
    let (c, problems) = crate::config::Config::parse(&text);
    for p in problems {
        log::warn!("{p}");
    }
    c
}

/// What `choice` loads, checked: see [`live`] for the command-line rules. `openrc_conf`: an
/// `/etc/conf.d/kexec` (or `/etc/kexec.conf`) exists, so with nothing chosen its `KNAME` or,
/// without one, the OpenRC service's naming rules pick the kernel (falling back to the
/// default entry when they find none).
pub fn plan(
    choice: &Choice,
    sys: &System,
    conf: &KexecConf,
    openrc_conf: bool,
) -> Result<(Plan, Volumes), Failed> {
    let fail = |e: String| logged(e);
    let cfg = host_config(sys);
    let finish = |own: String, by_name: bool| -> String {
        let base = match (&choice.command_line, by_name) {
            (Some(c), _) => c.clone(),
            (None, _) if choice.reuse_cmdline => super::reuse_cmdline(&sys.cmdline()),
            (None, true) => sys.by_name_cmdline(conf, false),
            (None, false) => own,
        };
        let mut extra: Vec<String> = conf.kparam.iter().cloned().collect();
        extra.extend(cfg.append.iter().cloned());
        extra.extend(choice.append.iter().cloned());
        super::compose_cmdline(&base, None, &extra)
    };
    let files = if let Some(k) = &choice.kernel {
        Some((k.clone(), choice.initrds.clone()))
    } else if choice.latest {
        let (k, i) = sys.latest(conf).map_err(fail)?;
        let initrds = if choice.initrds.is_empty() {
            i.into_iter().collect()
        } else {
            choice.initrds.clone()
        };
        Some((k, initrds))
    } else if choice.is_empty() && openrc_conf && !conf.disabled() {
        match sys.conf_kernel(conf) {
            Ok((k, i)) => Some((k, i.into_iter().collect())),
            Err(e) if conf.kname.is_none() => {
                log::info!("{e}; using the default entry");
                None
            }
            Err(e) => return Err(fail(e)),
        }
    } else {
        None
    };
    let meminfo = live::read_text(&sys.proc.join("meminfo"));
    if let Some((k, initrds)) = files {
        let cmdline = finish(String::new(), true);
        let entry = live::file_entry(&k, &initrds, &cmdline).map_err(fail)?;
        let mut vols = Volumes::default();
        vols.add_dir(Path::new(live::HOST_VOLUME));
        let p = Plan::new(entry, cmdline, &vols, meminfo.as_deref()).map_err(fail)?;
        return Ok((p, vols));
    }
    let (vols, list, errors) = if choice.net.is_set() {
        let fetch = super::netsource::fetch_config(&choice.net, cfg.ca_certificates.clone());
        let got = super::netsource::discover(&choice.net, &fetch).map_err(fail)?;
        let mut list = got.list;
        let text = live::read_text(&sys.path(crate::config::PATH));
        crate::session::Policy::for_host(text.as_deref()).resolve(&mut list);
        (Volumes::default(), list, got.errors)
    } else {
        let vols = open(&choice.disks, &choice.roots, sys)?;
        let (list, errors) = vols.boot_list();
        (vols, list, errors)
    };
    for e in &errors {
        log::warn!("{e}");
    }
    let pattern = choice.entry.as_deref().or(cfg.default.as_deref());
    let i = super::choose(&list, pattern).map_err(logged)?;
    let e = list.entries[i].clone();
    // A kernel the plain /boot scan found on a mounted directory has no root= of its own.
    let by_name = e.format == Format::Bootdir
        && !super::words(&e.cmdline)
            .iter()
            .any(|w| w.starts_with("root="))
        && live::host_path(&e.kernel).is_some();
    let cmdline = finish(e.cmdline.clone(), by_name);
    let p = Plan::new(e, cmdline, &vols, meminfo.as_deref()).map_err(fail)?;
    Ok((p, vols))
}

/// The words for a refused `kexec_file_load`, with what this system says about it.
fn refusal(err: &crate::kexec::KexecError, p: &Plan, sys: &System) -> String {
    use crate::kexec::KexecError;
    use nix::errno::Errno;
    // Locked carries the loader's words; here they are said again with the path as the
    // running system shows it (`/boot/vmlinuz`, not `volume:/vmlinuz`).
    let (KexecError::Load { errno, .. } | KexecError::Locked { errno, .. }) = err else {
        return err.to_string();
    };
    let shown = live::shown(&p.entry.kernel);
    match errno {
        Errno::EPERM | Errno::EKEYREJECTED | Errno::EBADMSG | Errno::ENODATA | Errno::ENOKEY => {
            let lock = preflight::lockdown(
                live::read_text(&sys.sys.join("kernel/security/lockdown")).as_deref(),
            );
            match lock {
                Some(mode) => {
                    let signed = live::host_path(&p.entry.kernel)
                        .and_then(|h| std::fs::read(h).ok())
                        .and_then(|b| preflight::signed(&b[..b.len().min(4096)]));
                    format!(
                        "kexec_file_load refused {shown}: {}",
                        preflight::lockdown_refusal(&shown, &mode, signed)
                    )
                }
                None => err.to_string(),
            }
        }
        Errno::ENOSYS => preflight::no_kexec_file(&sys.release()),
        Errno::ENOMEM => {
            let total = p.kernel_bytes + p.initrd_bytes.iter().sum::<u64>();
            let avail = live::read_text(&sys.proc.join("meminfo"))
                .as_deref()
                .and_then(preflight::mem_available);
            preflight::not_enough_memory(total, avail)
        }
        _ => err.to_string(),
    }
}

/// Loads `plan`, records it; errors logged in words.
fn do_load(p: &Plan, vols: &Volumes, sys: &System, by: &str) -> Result<(), Failed> {
    log::info!(
        "loading '{}' [{}] with command line: {}",
        super::printable(&p.entry.title),
        super::printable(&p.entry.id),
        super::printable(&p.cmdline)
    );
    // Measured boot and require_signed as /etc/leapboot.toml says (default: measure when
    // there is a TPM; no signature required).
    let config = live::read_text(&sys.root.join("etc/leapboot.toml"))
        .map(|t| crate::config::Config::parse(&t).0)
        .unwrap_or_default();
    crate::measure::set_mode(config.measured_boot());
    let trust = config.require_signed.then(|| {
        let read = |p: &str| std::fs::read(sys.path(p));
        let (trust, problems) = crate::pesig::load_trust(&config.signing_certs, read);
        problems
            .iter()
            .for_each(|p| log::error!("{}: {p}", crate::config::PATH));
        trust
    });
    crate::kexec::require_signed(trust);
    crate::kexec::load(&p.entry, &p.cmdline, vols, &mut |_, _, _| {})
        .map_err(|e| logged(refusal(&e, p, sys)))?;
    // The kexec itself comes later (the init system's): what is loaded is measured now.
    if let Err(e) = crate::kexec::measure_loaded() {
        let _ = crate::kexec::try_unload();
        return Err(logged(format!("{e}; the kernel was unloaded")));
    }
    if let Err(e) = record::save(&sys.run, &p.record(by)) {
        log::warn!(
            "loaded, but cannot record what under {}: {e}",
            sys.run.display()
        );
    }
    Ok(())
}

/// The checks before any load: root, and a kernel with `kexec_file_load`.
fn can_load(sys: &System, what: &str) -> Result<(), Failed> {
    preflight::root(euid(), what).map_err(logged)?;
    let rel = sys.release();
    let config = live::read_text(&sys.path(&format!("boot/config-{rel}")));
    preflight::kexec_file(config.as_deref(), &rel).map_err(logged)
}

/// `leapboot load`.
pub fn load(choice: &Choice, dry_run: bool) -> Result<(), Failed> {
    let sys = System::real();
    let (conf, from) = sys.kexec_conf();
    if !dry_run {
        can_load(&sys, "load")?;
    }
    let (p, vols) = plan(choice, &sys, &conf, from.is_some())?;
    if dry_run {
        println!("{}", p.describe());
        return Ok(());
    }
    do_load(&p, &vols, &sys, "leapboot load")?;
    println!(
        "loaded '{}' [{}]: {} with {} initrd(s); `leapboot reboot` or `systemctl kexec` boots it",
        super::printable(&p.entry.title),
        super::printable(&p.entry.id),
        live::shown(&p.entry.kernel),
        p.entry.initrds.len()
    );
    Ok(())
}

/// `leapboot status`: loaded or not, what, and how a reboot would happen.
pub fn status(json: bool) -> Result<(), Failed> {
    let sys = System::real();
    let loaded = sys.kexec_loaded();
    let rec = record::read(&sys.run);
    let init = initsys::detect(&sys.proc, &sys.run);
    let how = reboot_words(init.init, &sys);
    if json {
        let v = serde_json::json!({
            "loaded": loaded,
            "record": rec.as_ref().ok().and_then(|r| r.as_ref()),
            "init": init.init.name(),
            "evidence": init.evidence,
            "reboot": how,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    println!(
        "kexec: {}",
        if loaded {
            "a kernel is loaded (/sys/kernel/kexec_loaded = 1)"
        } else {
            "nothing is loaded (/sys/kernel/kexec_loaded = 0)"
        }
    );
    match rec {
        Ok(Some(r)) if loaded => {
            println!("  loaded by {} at {} (unix time)", r.by, r.loaded_at);
            println!("  entry   {}", super::printable(&r.title));
            println!("  kernel  {} ({} bytes)", r.kernel.path, r.kernel.bytes);
            for i in &r.initrds {
                println!("  initrd  {} ({} bytes)", i.path, i.bytes);
            }
            println!("  cmdline {}", super::printable(&r.cmdline));
        }
        Ok(Some(_)) => println!("  (a leapboot record exists, but the kernel was unloaded since)"),
        Ok(None) if loaded => {
            println!("  loaded by something else (kexec -l?): leapboot has no record of what")
        }
        Ok(None) => {}
        Err(e) => println!("  {e}"),
    }
    println!("init: {} ({})", init.init.name(), init.evidence);
    println!("reboot: {how}");
    Ok(())
}

fn hook_installed(init: Init, sys: &System) -> bool {
    match init {
        Init::Systemd => sys
            .path("etc/systemd/system/reboot.target.wants/leapboot-kexec.service")
            .exists(),
        _ => sys.path(initsys::INITD_SCRIPT).exists(),
    }
}

fn reboot_words(init: Init, sys: &System) -> String {
    match init.graceful() {
        Graceful::Run(cmd) => format!(
            "`leapboot reboot` runs `{}`{}",
            cmd.join(" "),
            if init == Init::Systemd {
                if hook_installed(init, sys) {
                    "; a plain `reboot` also kexecs (leapboot-kexec.service is installed)"
                } else {
                    "; a plain `reboot` goes through the firmware (`leapboot install-service` changes that)"
                }
            } else {
                ""
            }
        ),
        Graceful::RunWithHook(cmd, script) if hook_installed(init, sys) => format!(
            "`leapboot reboot` and a plain `reboot` run `{}`; {script} kexecs at the end of runlevel 6",
            cmd.join(" ")
        ),
        Graceful::RunWithHook(_, script) => format!(
            "no graceful kexec yet: {script} is not installed (run `leapboot install-service`), so `reboot` goes through the firmware; `leapboot reboot --force` kexecs at once"
        ),
        Graceful::None(why) => format!("no graceful kexec: {why}; `leapboot reboot --force` syncs, remounts read-only what it can and kexecs"),
    }
}

/// `leapboot unload`.
pub fn unload() -> Result<(), Failed> {
    let sys = System::real();
    preflight::root(euid(), "unload").map_err(logged)?;
    let was = sys.kexec_loaded();
    crate::kexec::try_unload().map_err(logged)?;
    if let Err(e) = record::clear(&sys.run) {
        log::warn!("cannot remove {}: {e}", record::path(&sys.run).display());
    }
    println!(
        "{}",
        if was {
            "unloaded: /sys/kernel/kexec_loaded is now 0"
        } else {
            "nothing was loaded"
        }
    );
    Ok(())
}

/// `leapboot exec`: the immediate jump.
pub fn exec(force: bool) -> Result<(), Failed> {
    let sys = System::real();
    preflight::root(euid(), "exec").map_err(logged)?;
    if !sys.kexec_loaded() {
        log::error!("nothing is loaded (/sys/kernel/kexec_loaded = 0): load a kernel first with `leapboot load`, or use `leapboot reboot`, which loads the default entry");
        return Err(Failed);
    }
    let init = initsys::detect(&sys.proc, &sys.run);
    if !force && init.init != Init::Unknown {
        log::error!(
            "services are running ({} runs this system): `leapboot exec` would jump into the new kernel without stopping them or unmounting anything; use `leapboot reboot` for a clean kexec, or `leapboot exec --force`",
            init.init.name()
        );
        return Err(Failed);
    }
    log::warn!("kexec now: nothing is stopped and nothing is unmounted");
    force_kexec();
    Err(Failed)
}

/// `sync`, remount what can be remounted read-only, `reboot(RB_KEXEC)`. Returns only on
/// failure (logged).
fn force_kexec() {
    nix::unistd::sync();
    remount_ro_all();
    log::error!("{}", crate::kexec::exec());
}

/// Remounts every mounted filesystem read-only, deepest first (best effort: a busy one stays
/// as it is and is named).
fn remount_ro_all() {
    let Some(mi) = live::read_text(Path::new("/proc/self/mountinfo")) else {
        return;
    };
    let mut points: Vec<&str> = mi
        .lines()
        .filter(|l| {
            l.split_once(" - ").is_some_and(|(_, post)| {
                // Real filesystems only: no proc, sysfs, tmpfs, devtmpfs...
                post.split_whitespace()
                    .nth(1)
                    .is_some_and(|s| s.starts_with("/dev/"))
            })
        })
        .filter_map(|l| l.split_whitespace().nth(4))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let flags = nix::mount::MsFlags::MS_REMOUNT | nix::mount::MsFlags::MS_RDONLY;
        if let Err(e) = nix::mount::mount(None::<&str>, p, None::<&str>, flags, None::<&str>) {
            log::warn!("could not remount {p} read-only: {e}");
        }
    }
}

/// `leapboot reboot`.
pub fn reboot(choice: &Choice, force: bool) -> Result<(), Failed> {
    let sys = System::real();
    let init = initsys::detect(&sys.proc, &sys.run);
    // Decide first: loading a kernel and then refusing to reboot helps nobody.
    let cmd = if force {
        None
    } else {
        match init.init.graceful() {
            Graceful::Run(cmd) => Some(cmd),
            Graceful::RunWithHook(cmd, _) if hook_installed(init.init, &sys) => Some(cmd),
            _ => {
                log::error!("{}", reboot_words(init.init, &sys));
                return Err(Failed);
            }
        }
    };
    if choice.is_empty() && sys.kexec_loaded() {
        println!("a kernel is already loaded; rebooting into it");
    } else {
        can_load(&sys, "reboot")?;
        let (conf, from) = sys.kexec_conf();
        let (p, vols) = plan(choice, &sys, &conf, from.is_some())?;
        do_load(&p, &vols, &sys, "leapboot reboot")?;
    }
    match cmd {
        Some(cmd) => {
            println!("rebooting through {}: {}", init.init.name(), cmd.join(" "));
            match std::process::Command::new(&cmd[0]).args(&cmd[1..]).status() {
                Ok(s) if s.success() => Ok(()),
                Ok(s) => {
                    log::error!("{} failed ({s}); the kernel stays loaded", cmd.join(" "));
                    Err(Failed)
                }
                Err(e) => {
                    log::error!("cannot run {}: {e}; the kernel stays loaded", cmd[0]);
                    Err(Failed)
                }
            }
        }
        None => {
            println!("rebooting now (--force): sync, then kexec");
            force_kexec();
            Err(Failed)
        }
    }
}

/// The service files, embedded: (init, path installed, contents, mode).
pub const SERVICES: &[(&str, &str, &str, u32)] = &[
    (
        "systemd",
        "etc/systemd/system/leapboot-kexec.service",
        include_str!("../../dist/systemd/leapboot-kexec.service"),
        0o644,
    ),
    (
        "openrc",
        "etc/init.d/leapboot-kexec",
        include_str!("../../dist/openrc/leapboot-kexec"),
        0o755,
    ),
    (
        "openrc",
        "etc/init.d/leapboot-kexec-exec",
        include_str!("../../dist/openrc/leapboot-kexec-exec"),
        0o755,
    ),
    (
        "sysvinit",
        "etc/init.d/leapboot-kexec",
        include_str!("../../dist/sysvinit/leapboot-kexec"),
        0o755,
    ),
];

/// The service family for an init system.
pub fn service_family(init: Init) -> Option<&'static str> {
    match init {
        Init::Systemd => Some("systemd"),
        Init::OpenrcInit | Init::SysvinitOpenrc => Some("openrc"),
        Init::Sysvinit => Some("sysvinit"),
        _ => None,
    }
}

/// The commands that enable the installed files for `family` (`shutdown`: the OpenRC
/// runlevel name there: Debian's `off`, Gentoo's `shutdown`).
pub fn enable_commands(family: &str, shutdown: &str) -> Vec<Vec<String>> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match family {
        "systemd" => vec![
            v(&["systemctl", "daemon-reload"]),
            v(&["systemctl", "enable", "leapboot-kexec.service"]),
        ],
        "openrc" => vec![
            v(&["rc-update", "add", "leapboot-kexec", "default"]),
            v(&["rc-update", "add", "leapboot-kexec-exec", shutdown]),
            v(&["rc-service", "leapboot-kexec", "start"]),
        ],
        "sysvinit" => vec![v(&["update-rc.d", "leapboot-kexec", "defaults"])],
        _ => Vec::new(),
    }
}

/// `leapboot install-service`.
pub fn install_service(init: Option<&str>, dry_run: bool) -> Result<(), Failed> {
    let sys = System::real();
    let family = match init {
        Some(f @ ("systemd" | "openrc" | "sysvinit")) => f,
        Some(other) => {
            log::error!("--init {other}: expected systemd, openrc or sysvinit");
            return Err(Failed);
        }
        None => {
            let d = initsys::detect(&sys.proc, &sys.run);
            match service_family(d.init) {
                Some(f) => f,
                None => {
                    log::error!("{} runs this system ({}): leapboot ships no service for it; `leapboot reboot --force` is the way to kexec here", d.init.name(), d.evidence);
                    return Err(Failed);
                }
            }
        }
    };
    if !dry_run {
        preflight::root(euid(), "install-service").map_err(logged)?;
    }
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "/usr/local/sbin/leapboot".into());
    let shutdown = if sys.path("etc/runlevels/off").is_dir() {
        "off"
    } else {
        "shutdown"
    };
    for (f, path, text, mode) in SERVICES.iter().filter(|s| s.0 == family) {
        let dest = sys.path(path);
        let text = text.replace("@LEAPBOOT@", &exe);
        if dry_run {
            println!("would write {} (mode {mode:o}):\n{text}", dest.display());
            continue;
        }
        let written = dest
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| std::fs::write(&dest, &text))
            .and_then(|_| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(*mode))
            });
        if let Err(e) = written {
            log::error!("cannot write {} ({f} service): {e}", dest.display());
            return Err(Failed);
        }
        println!("installed {}", dest.display());
    }
    let mut failed = false;
    for cmd in enable_commands(family, shutdown) {
        if dry_run {
            println!("would run: {}", cmd.join(" "));
            continue;
        }
        println!("running: {}", cmd.join(" "));
        match std::process::Command::new(&cmd[0]).args(&cmd[1..]).status() {
            Ok(s) if s.success() => {}
            Ok(s) => {
                log::error!(
                    "{} failed ({s}): fix what it says and run it again",
                    cmd.join(" ")
                );
                failed = true;
            }
            Err(e) => {
                log::error!(
                    "cannot run {}: {e}; run `{}` yourself",
                    cmd[0],
                    cmd.join(" ")
                );
                failed = true;
            }
        }
    }
    if failed {
        return Err(Failed);
    }
    if !dry_run {
        println!("a plain `reboot` now kexecs into the default entry (/etc/conf.d/kexec and /etc/leapboot.toml apply; `touch /nokexec` skips it once)");
    }
    Ok(())
}

/// A `/boot` mounted read-only by the hook, unmounted when dropped.
struct TempMount(PathBuf);

impl Drop for TempMount {
    fn drop(&mut self) {
        if let Err(e) = nix::mount::umount(&self.0) {
            log::warn!("could not unmount {}: {e}", self.0.display());
        }
    }
}

/// Mounts the boot directory read-only if fstab has it and it is not mounted.
fn ensure_boot(sys: &System, conf: &KexecConf) -> Result<Option<TempMount>, Failed> {
    let dir = conf.bootpart.clone().unwrap_or_else(|| "/boot".into());
    let fstab = live::read_text(&sys.path("etc/fstab")).unwrap_or_default();
    let mi = live::read_text(&sys.proc.join("self/mountinfo")).unwrap_or_default();
    match preflight::boot_mount(&dir, &fstab, &mi) {
        preflight::BootMount::Ready => Ok(None),
        preflight::BootMount::NotMounted(dev, _) if conf.dont_mount_boot => {
            log::error!(
                "{}",
                preflight::boot_not_mounted(&dir, &dev, "DONT_MOUNT_BOOT=yes forbids mounting it")
            );
            Err(Failed)
        }
        preflight::BootMount::NotMounted(dev, fstype) => {
            let opts = preflight::ro_options(&fstype);
            log::info!("mounting {dir} ({dev}) read-only for the load: {opts}");
            let ok = std::process::Command::new("mount")
                .args(["-o", opts, "-t", &fstype, &dev])
                .arg(sys.path(&dir))
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                Ok(Some(TempMount(sys.path(&dir))))
            } else {
                log::error!(
                    "{}",
                    preflight::boot_not_mounted(&dir, &dev, "mounting it read-only failed")
                );
                Err(Failed)
            }
        }
    }
}

/// `leapboot shutdown-hook PHASE`, run by the shipped services: `arm` (boot: loads only with
/// `LOAD_DURING_SHUTDOWN=no`), `load` (shutdown: loads when rebooting), `exec` (the end of
/// the shutdown: kexecs when rebooting and loaded), `systemd` (load, then turn the reboot
/// into `systemctl --force kexec`). Never fails the shutdown: problems are logged.
pub fn shutdown_hook(phase: &str) -> Result<(), Failed> {
    let sys = System::real();
    let (conf, from) = sys.kexec_conf();
    let from = from.map_or("the defaults".to_string(), |p| p.display().to_string());
    let rebooting = match phase {
        "systemd" => Some(true), // the unit is wanted by reboot.target only
        _ => initsys::rebooting_from_env(&|k| std::env::var(k).ok()).or_else(|| {
            // OpenRC clears the environment of its services: ask sysvinit (utmp).
            std::process::Command::new("runlevel")
                .output()
                .ok()
                .and_then(|o| initsys::rebooting_from_runlevel(&String::from_utf8_lossy(&o.stdout)))
        }),
    };
    match phase {
        "arm" => {
            if conf.load_during_shutdown || conf.disabled() {
                println!("leapboot: kexec reboot armed (loads during shutdown; {from})");
                return Ok(());
            }
            println!("leapboot: LOAD_DURING_SHUTDOWN=no: loading now");
            hook_load(&sys, &conf, true)
        }
        "load" | "systemd" => {
            if rebooting == Some(false) {
                println!("leapboot: not rebooting: no kexec");
                return Ok(());
            }
            let nokexec = sys.nokexec();
            if nokexec.exists() {
                let removed = std::fs::remove_file(&nokexec).is_ok();
                if sys.kexec_loaded() {
                    crate::kexec::unload();
                }
                println!(
                    "leapboot: {} exists: no kexec this time, the firmware reboots ({})",
                    nokexec.display(),
                    if removed {
                        "removed: the next reboot kexecs again"
                    } else {
                        "could not remove it"
                    }
                );
                return Ok(());
            }
            if conf.disabled() {
                println!("leapboot: KNAME=- in {from}: kexec is off");
                return Ok(());
            }
            if !sys.kexec_loaded() {
                if !conf.load_during_shutdown {
                    println!("leapboot: LOAD_DURING_SHUTDOWN=no and nothing is loaded: the firmware reboots");
                    return Ok(());
                }
                hook_load(&sys, &conf, from != "the defaults")?;
            } else {
                println!("leapboot: a kernel is already loaded: kexec into it");
            }
            if phase == "systemd" {
                println!("leapboot: rebooting through kexec: systemctl --force kexec");
                let _ = std::process::Command::new("systemctl")
                    .args(["--force", "kexec"])
                    .status();
            }
            Ok(())
        }
        "exec" => {
            if rebooting == Some(false) || !sys.kexec_loaded() {
                return Ok(());
            }
            let what = match record::read(&sys.run) {
                Ok(Some(r)) => format!("{} ({})", r.kernel.path, super::printable(&r.cmdline)),
                _ => "the loaded kernel".into(),
            };
            println!("leapboot: kexec into {what}");
            // The init system should have made the filesystems read-only by now; where its
            // ordering did not (Debian's LSB scripts under OpenRC), do it here so the next
            // boot finds them clean.
            nix::unistd::sync();
            remount_ro_all();
            log::error!("{}", crate::kexec::exec());
            Err(Failed)
        }
        other => {
            log::error!("shutdown-hook {other}: expected arm, load, exec or systemd");
            Err(Failed)
        }
    }
}

fn hook_load(sys: &System, conf: &KexecConf, openrc_conf: bool) -> Result<(), Failed> {
    let _boot = ensure_boot(sys, conf)?;
    let (p, vols) = plan(&Choice::default(), sys, conf, openrc_conf)?;
    do_load(&p, &vols, sys, "leapboot shutdown-hook")?;
    println!(
        "leapboot: loaded {} for the reboot: {}",
        live::shown(&p.entry.kernel),
        super::printable(&p.cmdline)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_files_and_commands() {
        for f in ["systemd", "openrc", "sysvinit"] {
            let files: Vec<_> = SERVICES.iter().filter(|s| s.0 == f).collect();
            assert!(!files.is_empty(), "{f}");
            for (_, path, text, _) in files {
                assert!(
                    text.contains("@LEAPBOOT@ shutdown-hook"),
                    "{path} runs the hook"
                );
            }
            assert!(!enable_commands(f, "off").is_empty());
        }
        assert_eq!(
            enable_commands("openrc", "off")[1],
            vec!["rc-update", "add", "leapboot-kexec-exec", "off"]
        );
        assert_eq!(service_family(Init::SysvinitOpenrc), Some("openrc"));
        assert_eq!(service_family(Init::Busybox), None);
    }

    #[test]
    fn choice_emptiness() {
        assert!(Choice::default().is_empty());
        assert!(!Choice {
            latest: true,
            ..Choice::default()
        }
        .is_empty());
    }
}
