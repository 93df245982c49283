//! `leapboot`: the same discovery and parsing as the initramfs, on a running system or on disk
//! images; `load` and `reboot` automate `kexec -l …; reboot -k`. Never writes to any disk or
//! image.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use leapboot::disk::{Disk, RoPolicy};
use leapboot::entry::BootList;
use leapboot::pipeline::{DiskRef, Volumes};

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

/// Which entry and with what command line.
#[derive(clap::Args)]
struct Choice {
    /// The entry: its id, its title, or a glob over either (see `leapboot list`). Default:
    /// the default entry, as the boot menu would autoboot it.
    entry: Option<String>,
    /// Boot with this command line instead of the entry's own.
    #[arg(long, value_name = "ARGS")]
    cmdline: Option<String>,
    /// Add these arguments to the command line (repeatable).
    #[arg(long, value_name = "ARGS")]
    append: Vec<String>,
    #[command(flatten)]
    sources: Sources,
}

#[derive(Subcommand)]
enum Command {
    /// List the boot entries found, in menu order, the default marked with '*'.
    ///
    /// With no --disk or --root, scans the block devices of this machine (as root), through
    /// read-only descriptors; their kernel read-only flag is left alone, since the running
    /// system uses them. Disk images and directories need no privileges.
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
    /// Load an entry as the next kernel (kexec_file_load), without rebooting.
    ///
    /// Like `kexec -l`: the kernel, its initrds (concatenated) and its command line are handed
    /// to the running kernel, which boots them on the next kexec reboot (`leapboot reboot`,
    /// `systemctl kexec`). Needs root (CAP_SYS_BOOT); a kernel locked down by Secure Boot
    /// accepts only signed kernels it trusts.
    Load {
        #[command(flatten)]
        choice: Choice,
    },
    /// Reboot into an entry now, skipping the firmware: load it, then kexec.
    ///
    /// With no ENTRY and a kernel already loaded (`leapboot load`, `kexec -l`), boots that one;
    /// with no ENTRY and nothing loaded, loads the default entry. The reboot goes through
    /// systemd (`systemctl kexec`: services stop, filesystems unmount cleanly). Without
    /// systemd, --force reboots at once after a sync, stopping nothing.
    Reboot {
        #[command(flatten)]
        choice: Choice,
        /// Reboot with reboot(2) right away instead of asking the init system.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    leapboot::logger::init(false, cli.debug);
    match cli.command {
        Command::List {
            sources,
            json,
            stats,
        } => {
            let code = list(&sources, json);
            if stats {
                print_stats();
            }
            code
        }
        Command::Load { choice } => match load(&choice) {
            Ok(()) => ExitCode::SUCCESS,
            Err(()) => ExitCode::FAILURE,
        },
        Command::Reboot { choice, force } => reboot(&choice, force),
    }
}

fn list(sources: &Sources, json: bool) -> ExitCode {
    let Ok(volumes) = open(sources) else {
        return ExitCode::FAILURE;
    };
    let (list, errors) = volumes.boot_list();
    for e in &errors {
        log::warn!("{e}");
    }
    if json {
        println!("{}", to_json(&list, &volumes));
    } else {
        print_table(&list);
    }
    ExitCode::SUCCESS
}

/// Finds the chosen entry and loads it; errors are logged.
fn load(choice: &Choice) -> Result<(), ()> {
    let volumes = open(&choice.sources)?;
    let (list, errors) = volumes.boot_list();
    for e in &errors {
        log::warn!("{e}");
    }
    let i =
        leapboot::host::choose(&list, choice.entry.as_deref()).map_err(|e| log::error!("{e}"))?;
    let e = &list.entries[i];
    let cmdline =
        leapboot::host::compose_cmdline(&e.cmdline, choice.cmdline.as_deref(), &choice.append);
    log::info!(
        "loading '{}' [{}] with command line: {cmdline}",
        e.title,
        e.id
    );
    leapboot::kexec::load(e, &cmdline, &volumes, &mut |_, _, _| {}).map_err(|err| {
        log::error!(
            "entry '{}' ({}:{}): {err}",
            e.title,
            e.source.volume,
            e.source.file
        );
    })?;
    println!(
        "loaded '{}' [{}]: {} with {} initrd(s); `leapboot reboot` or `systemctl kexec` boots it",
        e.title,
        e.id,
        e.kernel,
        e.initrds.len()
    );
    Ok(())
}

fn reboot(choice: &Choice, force: bool) -> ExitCode {
    use leapboot::host::{kexec_loaded, reboot_method, RebootMethod};
    // Decide first: loading a kernel and then refusing to reboot helps nobody.
    let Some(method) = reboot_method("/run".as_ref(), force) else {
        log::error!(
            "this system is not run by systemd, and leapboot knows no other init to ask for a \
             clean kexec reboot; stop your services and run `leapboot reboot --force`, or load \
             with `leapboot load` and use your init's kexec reboot"
        );
        return ExitCode::FAILURE;
    };
    let nothing_chosen =
        choice.entry.is_none() && choice.cmdline.is_none() && choice.append.is_empty();
    if nothing_chosen && kexec_loaded("/sys".as_ref()) {
        println!("a kernel is already loaded; rebooting into it");
    } else if load(choice).is_err() {
        return ExitCode::FAILURE;
    }
    match method {
        RebootMethod::Systemd => {
            println!("rebooting through systemd: systemctl kexec");
            match std::process::Command::new("systemctl")
                .arg("kexec")
                .status()
            {
                Ok(s) if s.success() => ExitCode::SUCCESS,
                Ok(s) => {
                    log::error!("systemctl kexec failed ({s}); the kernel stays loaded");
                    ExitCode::FAILURE
                }
                Err(e) => {
                    log::error!("cannot run systemctl: {e}; the kernel stays loaded");
                    ExitCode::FAILURE
                }
            }
        }
        RebootMethod::Immediate => {
            println!("rebooting now (--force): sync, then kexec");
            log::error!("{}", leapboot::kexec::exec());
            ExitCode::FAILURE
        }
    }
}

/// Opens the volumes `sources` names, or this machine's disks if it names none. Errors are
/// logged.
fn open(sources: &Sources) -> Result<Volumes, ()> {
    let (disks, roots) = (&sources.disk, &sources.root);
    let mut volumes = Volumes::default();
    if disks.is_empty() && roots.is_empty() {
        // A running system writes to its own disks: read them through read-only descriptors
        // but leave the kernel's read-only flag alone (the initramfs sets it; we must not).
        for d in leapboot::discover::block_devices("/sys".as_ref(), "/dev".as_ref()) {
            match Disk::open_with(&d.node, RoPolicy::Leave) {
                Ok(disk) => volumes.add_disk(&disk, &d.name, &|n| {
                    leapboot::discover::partition_name(&d.name, n)
                }),
                Err(e) => log::error!("{e}"),
            }
        }
    }
    let mut opened = Vec::new();
    for path in disks {
        match Disk::open(path) {
            Ok(disk) => opened.push((disk, path.display().to_string())),
            Err(e) => {
                log::error!("{e}");
                return Err(());
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
            return Err(());
        }
        volumes.add_dir(r);
    }
    Ok(volumes)
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

fn to_json(list: &BootList, volumes: &Volumes) -> String {
    let entries: Vec<serde_json::Value> = list
        .entries
        .iter()
        .map(|e| {
            serde_json::json!({
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
                "device": v.device,
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

fn print_table(list: &BootList) {
    if list.entries.is_empty() {
        println!("no boot entries found");
        return;
    }
    let default = list.default_entry();
    for (i, e) in list.entries.iter().enumerate() {
        let mark = if Some(i) == default { '*' } else { ' ' };
        println!("{mark} {}  [{}]", e.title, e.id);
        println!("    kernel  {}", e.kernel);
        for f in &e.initrds {
            println!("    initrd  {f}");
        }
        println!("    cmdline {}", e.cmdline);
        let line = e.source.line.map(|l| format!(":{l}")).unwrap_or_default();
        println!("    from    {}:{}{line}", e.source.volume, e.source.file);
    }
}
