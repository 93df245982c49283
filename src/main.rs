//! `leapboot`: the same discovery and parsing as the initramfs, on a running system or on disk
//! images; `load`, `status`, `unload`, `exec`, `reboot` and `install-service` do what
//! `kexec -l …; reboot -k` and the init systems' kexec scripts do. Argument glue only: the
//! commands are [`leapboot::host::commands`]. Never writes to any disk or image.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use leapboot::entry::BootList;
use leapboot::pipeline::Volumes;

#[derive(Parser)]
#[command(
    name = "leapboot",
    version,
    about = "Find boot entries on disks, read-only, the way leapboot's /init does"
)]
struct Cli {
    /// Log debug detail to stderr.
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

/// Where to look for boot entries (both empty: this machine's disks).
#[derive(clap::Args)]
struct Sources {
    /// A disk image file to scan (repeatable). Its partitions are named IMAGE:N.
    #[arg(long, value_name = "IMAGE")]
    disk: Vec<PathBuf>,
    /// A directory to treat as the root of one boot volume (repeatable).
    #[arg(long, value_name = "DIR")]
    root: Vec<PathBuf>,
}

/// Which kernel and with what command line.
#[derive(clap::Args)]
struct Choice {
    /// The entry: its id, its title, or a glob over either (see `leapboot list`). Default:
    /// the default entry, as the boot menu would autoboot it.
    #[arg(conflicts_with_all = ["kernel", "latest"])]
    entry: Option<String>,
    /// A kernel file that is in no configuration (like `kexec -l KERNEL`).
    #[arg(long, value_name = "PATH", conflicts_with = "latest")]
    kernel: Option<PathBuf>,
    /// An initrd for --kernel or --latest (repeatable: concatenated in order).
    #[arg(long, value_name = "PATH")]
    initrd: Vec<PathBuf>,
    /// The newest kernel installed in /boot, by version, with its initrd.
    #[arg(long)]
    latest: bool,
    /// Boot with this command line instead of the entry's own.
    #[arg(long = "command-line", visible_alias = "cmdline", value_name = "ARGS")]
    command_line: Option<String>,
    /// Boot with the running command line (/proc/cmdline without BOOT_IMAGE=, initrd= and
    /// leapboot.* options).
    #[arg(long, conflicts_with = "command_line")]
    reuse_cmdline: bool,
    /// Add these arguments to the command line (repeatable).
    #[arg(long, value_name = "ARGS")]
    append: Vec<String>,
    #[command(flatten)]
    sources: Sources,
}

impl Choice {
    fn lib(&self) -> leapboot::host::commands::Choice {
        leapboot::host::commands::Choice {
            entry: self.entry.clone(),
            kernel: self.kernel.clone(),
            initrds: self.initrd.clone(),
            latest: self.latest,
            command_line: self.command_line.clone(),
            reuse_cmdline: self.reuse_cmdline,
            append: self.append.clone(),
            disks: self.sources.disk.clone(),
            roots: self.sources.root.clone(),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// List the boot entries found, in menu order, the default marked with '*'.
    ///
    /// With no --disk or --root: this machine. Its mounted /boot, /efi and /boot/efi are read
    /// through the filesystem first; then every block device with nothing mounted, through
    /// read-only descriptors (as root; a device that cannot be opened is named with the
    /// reason). The running kernel is marked '>'. Disk images and directories need no
    /// privileges.
    List {
        #[command(flatten)]
        sources: Sources,
        /// Print JSON: {"default", "timeout", "entries": [...], "volumes": [...]}.
        #[arg(long)]
        json: bool,
        /// Print to stderr the CPU time and the peak memory (VmHWM) the scan took.
        #[arg(long)]
        stats: bool,
    },
    /// Load a kernel as the next one (kexec_file_load), without rebooting: like `kexec -l`.
    ///
    /// An entry (or the default one), a file (--kernel, --initrd), or the newest installed
    /// kernel (--latest). The kernel, its initrds (concatenated) and its command line are
    /// handed to the running kernel, which boots them on the next kexec reboot (`leapboot
    /// reboot`, `systemctl kexec`). A file that is not a kernel for this machine, a missing
    /// initrd, a command line longer than the kernel accepts or too little memory are refused
    /// before anything is loaded. Needs root (CAP_SYS_BOOT).
    Load {
        #[command(flatten)]
        choice: Choice,
        /// Print what would be loaded (files, sizes, command line, the kexec call); load
        /// nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Whether a kernel is loaded, what leapboot loaded, and how a reboot would happen here.
    Status {
        /// Print JSON: {"loaded", "record", "init", "evidence", "reboot"}.
        #[arg(long)]
        json: bool,
    },
    /// Unload the loaded kernel (like `kexec -u`).
    Unload,
    /// Jump into the loaded kernel now (like `kexec -e`): nothing is stopped or unmounted.
    ///
    /// Refused while an init system runs services, unless --force.
    Exec {
        /// Jump even though services are running.
        #[arg(long)]
        force: bool,
    },
    /// Reboot into a kernel through the init system, skipping the firmware.
    ///
    /// With nothing chosen and a kernel already loaded, boots that one; otherwise loads the
    /// choice (default: the default entry) first. The reboot goes through whatever runs the
    /// system: systemd (`systemctl kexec`), OpenRC (`openrc-shutdown --kexec`), sysvinit with
    /// or without OpenRC (`reboot`, once `leapboot install-service` put its shutdown script
    /// in place). Where there is no graceful path (busybox, runit, s6), --force syncs,
    /// remounts filesystems read-only where it can and kexecs at once.
    Reboot {
        #[command(flatten)]
        choice: Choice,
        /// Reboot with reboot(2) right away instead of asking the init system.
        #[arg(long)]
        force: bool,
    },
    /// Install the service that makes a plain `reboot` kexec (systemd unit, OpenRC service or
    /// sysvinit script, for the init detected).
    ///
    /// At shutdown, when rebooting, it loads the default entry or the kernel
    /// /etc/conf.d/kexec (/etc/kexec.conf) names, with its KPARAM, unless /nokexec exists
    /// (skipped once) or KNAME=-. The files are shipped in leapboot's dist/ directory too.
    InstallService {
        /// The init system to install for: systemd, openrc or sysvinit (default: detected).
        #[arg(long)]
        init: Option<String>,
        /// Print the files and commands; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// What the installed services run (arm, load, exec, systemd).
    #[command(hide = true)]
    ShutdownHook {
        /// arm, load, exec or systemd.
        phase: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    leapboot::logger::init(false, cli.debug);
    use leapboot::host::commands as c;
    let r = match cli.command {
        Command::List {
            sources,
            json,
            stats,
        } => {
            let r = list(&sources, json);
            if stats {
                print_stats();
            }
            r
        }
        Command::Load { choice, dry_run } => c::load(&choice.lib(), dry_run),
        Command::Status { json } => c::status(json),
        Command::Unload => c::unload(),
        Command::Exec { force } => c::exec(force),
        Command::Reboot { choice, force } => c::reboot(&choice.lib(), force),
        Command::InstallService { init, dry_run } => c::install_service(init.as_deref(), dry_run),
        Command::ShutdownHook { phase } => c::shutdown_hook(&phase),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn list(sources: &Sources, json: bool) -> Result<(), leapboot::host::commands::Failed> {
    let sys = leapboot::host::live::System::real();
    let volumes = leapboot::host::commands::open(&sources.disk, &sources.root, &sys)?;
    let (list, errors) = volumes.boot_list();
    for e in &errors {
        log::warn!("{e}");
    }
    // The running kernel is marked only for this machine.
    let running = (sources.disk.is_empty() && sources.root.is_empty())
        .then(|| leapboot::host::running_entry(&list, &sys.release(), &sys.cmdline()))
        .flatten();
    if json {
        println!("{}", to_json(&list, &volumes, running));
    } else {
        print_table(&list, running);
    }
    Ok(())
}

/// `stats: cpu_ms=N peak_rss_kib=N`: this process's CPU time (user + system) and the high-water
/// mark of its own memory (`VmHWM`, which unlike `ru_maxrss` does not inherit the parent's peak
/// across `exec`). `cargo xtask bench` reads this line.
fn print_stats() {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec.max(0) as u64 * 1_000_000 + t.tv_usec.max(0) as u64;
    let cpu_us = us(ru.ru_utime) + us(ru.ru_stime);
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    eprintln!(
        "stats: cpu_ms={}.{:03} peak_rss_kib={hwm}",
        cpu_us / 1000,
        cpu_us % 1000
    );
}

fn to_json(list: &BootList, volumes: &Volumes, running: Option<usize>) -> String {
    let entries: Vec<serde_json::Value> = list
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            serde_json::json!({
                "running": Some(i) == running,
                "id": e.id,
                "title": e.title,
                "version": e.version,
                "kernel": e.kernel.path,
                "initrd": e.initrds.iter().map(|f| &f.path).collect::<Vec<_>>(),
                "cmdline": e.cmdline,
                "devicetree": e.devicetree.as_ref().map(|f| &f.path),
                "format": e.format,
                "source": e.source,
            })
        })
        .collect();
    // The volumes opened, as blkid would describe them.
    let vols: Vec<serde_json::Value> = volumes
        .list
        .iter()
        .map(|v| {
            let p = v.partition.as_ref();
            serde_json::json!({
                "name": v.name,
                "fs": v.info.as_ref().map(|i| i.kind),
                "uuid": v.info.as_ref().and_then(|i| i.uuid.as_deref()),
                "label": v.info.as_ref().and_then(|i| i.label.as_deref()),
                "partition": p.map(|p| p.number),
                "partuuid": p.and_then(|p| p.part_uuid.as_deref()),
                "parttype": p.and_then(|p| {
                    p.type_guid
                        .clone()
                        .or_else(|| p.mbr_type.map(|t| format!("0x{t:02x}")))
                }),
                "partlabel": p.and_then(|p| p.label.as_deref()),
            })
        })
        .collect();
    let v = serde_json::json!({
        "default": list.default_entry().map(|i| &list.entries[i].id),
        "timeout": list.timeout,
        "entries": entries,
        "volumes": vols,
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

fn print_table(list: &BootList, running: Option<usize>) {
    use leapboot::host::printable as p;
    if list.entries.is_empty() {
        println!("no boot entries found");
        return;
    }
    let default = list.default_entry();
    for (i, e) in list.entries.iter().enumerate() {
        let mark = if Some(i) == default { '*' } else { ' ' };
        let run = if Some(i) == running { '>' } else { ' ' };
        let note = if Some(i) == running {
            "  (running)"
        } else {
            ""
        };
        println!("{mark}{run} {}  [{}]{note}", p(&e.title), p(&e.id));
        println!("    kernel  {}", p(&e.kernel.to_string()));
        for f in &e.initrds {
            println!("    initrd  {}", p(&f.to_string()));
        }
        println!("    cmdline {}", p(&e.cmdline));
        let line = e.source.line.map(|l| format!(":{l}")).unwrap_or_default();
        println!(
            "    from    {}:{}{line}",
            p(&e.source.volume),
            p(&e.source.file)
        );
    }
}
