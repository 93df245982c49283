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
    /// A network boot source instead of disks: a pxelinux or GRUB config, an iPXE script or a
    /// kernel, by tftp://, http:// or https:// URL. Its files are fetched when loading.
    #[arg(long, value_name = "URL", conflicts_with_all = ["disk", "root"])]
    url: Option<String>,
    /// A CA certificate (PEM) HTTPS servers are verified against (repeatable); default: the
    /// `ca_certificates` of /etc/leapboot.toml. Without any, HTTPS is refused.
    #[arg(long, value_name = "FILE")]
    ca: Vec<PathBuf>,
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
    /// Fetch one file by URL as the loader would (bounded, with retries), printing progress
    /// and the rate to stderr: checks a TFTP/HTTP(S) server.
    Fetch {
        /// tftp://, http:// or https:// URL.
        url: String,
        /// Write the file here (default: discard it).
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// A CA certificate (PEM) HTTPS servers are verified against (repeatable).
        #[arg(long, value_name = "FILE")]
        ca: Vec<PathBuf>,
        /// Give up after this many seconds in all.
        #[arg(long, value_name = "SECONDS", default_value_t = 600)]
        timeout: u64,
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
    /// Get a DHCP lease (or parse an `ip=` setting) and print it as JSON, for diagnosis.
    ///
    /// Runs leapboot's own DHCPv4/DHCPv6 clients on the NICs (every physical NIC with a link,
    /// or --iface, which may name a virtual one), sending the PXE options firmware sends,
    /// and prints `[{"iface", "mac", "source", "addr", "prefix", "router", "dns", "domain",
    /// "server", "next_server", "next_server_name", "boot_file", "pxe_config_file",
    /// "path_prefix", "boot_file_url", "client_uuid", "lease_secs"}]`. Needs root (ports 67/68,
    /// 546). The interfaces are left unconfigured unless --apply is given.
    NetLease {
        /// The interface to use (repeatable); default: every physical NIC.
        #[arg(long, value_name = "IF")]
        iface: Vec<String>,
        /// What to do, in the kernel's `ip=` syntax (`dhcp`, `dhcp6`, `addr::gw:mask::if:off`).
        #[arg(long, value_name = "SPEC", default_value = "dhcp")]
        ip: String,
        /// Give up after this many seconds.
        #[arg(long, value_name = "S", default_value_t = 20)]
        timeout: u64,
        /// Configure the interfaces with the leases (address, default route).
        #[arg(long)]
        apply: bool,
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
        Command::NetLease {
            iface,
            ip,
            timeout,
            apply,
        } => net_lease(&iface, &ip, timeout, apply),
        Command::Fetch {
            url,
            output,
            ca,
            timeout,
        } => fetch(&url, output.as_deref(), &ca, timeout),
    }
}

fn net_lease(ifaces: &[String], ip: &str, timeout: u64, apply: bool) -> ExitCode {
    use leapboot::net::{iface, ipcfg};
    let config = match ipcfg::parse(ip) {
        Ok(c) => c,
        Err(e) => {
            log::error!("--ip {ip}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let nics = iface::list(std::path::Path::new("/sys/class/net"), ifaces);
    if nics.is_empty() {
        log::error!("no network interface found (give one with --iface)");
        return ExitCode::FAILURE;
    }
    let opts = ipcfg::Options {
        config,
        timeout: std::time::Duration::from_secs(timeout),
        apply,
        ..ipcfg::Options::default()
    };
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let started = std::time::Instant::now();
    let progress = |p: ipcfg::Progress| log::info!("{p:?}");
    let leases = ipcfg::bring_up(&nics, &opts, &cancel, &progress);
    log::info!(
        "{} lease(s) in {:.3} s",
        leases.len(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&leases).unwrap_or_else(|_| "[]".into())
    );
    if leases.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn fetch(url: &str, output: Option<&std::path::Path>, ca: &[PathBuf], timeout: u64) -> ExitCode {
    use leapboot::net::fetch::{Control, FetchConfig, Limits, Progress};
    let url = match leapboot::net::url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            log::error!("{url}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out: Box<dyn std::io::Write> = match output {
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Box::new(std::io::BufWriter::new(f)),
            Err(e) => {
                log::error!("{}: {e}", p.display());
                return ExitCode::FAILURE;
            }
        },
        None => Box::new(std::io::sink()),
    };
    let cfg = FetchConfig::with_ca(ca.iter().map(|p| p.display().to_string()).collect());
    let limits = Limits {
        overall: std::time::Duration::from_secs(timeout),
        ..Limits::default()
    };
    let mut last_line = std::time::Instant::now();
    let mut report = |p: &Progress| {
        if p.done || last_line.elapsed().as_secs() >= 1 {
            last_line = std::time::Instant::now();
            eprintln!("{url}: {}", p.line());
        }
    };
    let mut ctl = Control {
        cancel: None,
        progress: Some(&mut report),
    };
    let t = std::time::Instant::now();
    match leapboot::net::fetch::fetch(&url, &mut out, &cfg, limits, &mut ctl) {
        Ok(n) if out.flush().is_ok() => {
            let s = t.elapsed().as_secs_f64();
            println!(
                "fetched {n} bytes in {s:.3} s ({:.1} MiB/s)",
                n as f64 / 1048576.0 / s.max(1e-9)
            );
            ExitCode::SUCCESS
        }
        Ok(_) => {
            log::error!("writing the output failed");
            ExitCode::FAILURE
        }
        Err(e) => {
            log::error!("{e} (after {:.1} s)", t.elapsed().as_secs_f64());
            ExitCode::FAILURE
        }
    }
}

fn list(sources: &Sources, json: bool) -> ExitCode {
    let Ok((volumes, list)) = scan(sources) else {
        return ExitCode::FAILURE;
    };
    if sources.url.is_some() && list.entries.is_empty() {
        if json {
            println!("{}", to_json(&list, &volumes));
        }
        log::error!(
            "no boot entries at {}",
            sources.url.as_deref().unwrap_or("")
        );
        return ExitCode::FAILURE;
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
    let (volumes, list) = scan(&choice.sources)?;
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
    let t = |s: &str| leapboot::sanitize::for_terminal(s).into_owned();
    println!(
        "loaded '{}' [{}]: {} with {} initrd(s); `leapboot reboot` or `systemctl kexec` boots it",
        t(&e.title),
        t(&e.id),
        t(&e.kernel.to_string()),
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

/// The entries of `sources` (disks, directories or a URL), problems logged as warnings.
fn scan(sources: &Sources) -> Result<(Volumes, BootList), ()> {
    let Some(url) = &sources.url else {
        let volumes = open(sources)?;
        let (mut list, errors) = volumes.boot_list();
        host_policy().resolve(&mut list);
        for e in &errors {
            log::warn!("{e}");
        }
        return Ok((volumes, list));
    };
    let url = leapboot::net::url::Url::parse(url).map_err(|e| log::error!("--url {url}: {e}"))?;
    let ca: Vec<String> = if sources.ca.is_empty() {
        std::fs::read_to_string(leapboot::config::PATH)
            .map(|t| leapboot::config::Config::parse(&t).0.ca_certificates)
            .unwrap_or_default()
    } else {
        sources.ca.iter().map(|p| p.display().to_string()).collect()
    };
    let cfg = leapboot::net::fetch::FetchConfig::with_ca(ca);
    leapboot::net::fetch::set_global(cfg.clone());
    let (found, fs) = leapboot::net::source::discover_url(&url, &cfg, "");
    log::debug!("{}: {} transfers", fs.name(), fs.fetches());
    for e in &found.errors {
        log::warn!("{e}");
    }
    let mut list = BootList::default();
    list.merge(found);
    host_policy().resolve(&mut list);
    Ok((Volumes::default(), list))
}

/// Opens the volumes `sources` names, or this machine's disks if it names none. Errors are
/// logged.
/// The boot policy `/init` would apply, from this system's `/etc/leapboot.toml` if any.
fn host_policy() -> leapboot::session::Policy {
    let text = std::fs::read_to_string(leapboot::config::PATH).ok();
    leapboot::session::Policy::for_host(text.as_deref())
}

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
            let url = |f: &leapboot::entry::FileRef| {
                leapboot::net::netfs::url_of(f).map(|u| u.to_string())
            };
            let mut v = serde_json::json!({
                "id": e.id,
                "title": e.title,
                "version": e.version,
                "kernel": e.kernel.path,
                "initrd": e.initrds.iter().map(|f| &f.path).collect::<Vec<_>>(),
                "cmdline": e.cmdline,
                "devicetree": e.devicetree.as_ref().map(|f| &f.path),
                "format": e.format,
                "source": e.source,
            });
            // Network entries: where the loader fetches each file.
            if let (Some(k), Some(obj)) = (url(&e.kernel), v.as_object_mut()) {
                obj.insert("kernel_url".into(), k.into());
                let i: Vec<Option<String>> = e.initrds.iter().map(url).collect();
                obj.insert("initrd_url".into(), serde_json::json!(i));
            }
            v
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
    leapboot::sanitize::json_escape_terminal_controls(
        &serde_json::to_string_pretty(&v).unwrap_or_default(),
    )
}

fn print_table(list: &BootList) {
    if list.entries.is_empty() {
        println!("no boot entries found");
        return;
    }
    // Titles, ids, paths and command lines come from disks: shown, never obeyed.
    let t = |s: &str| leapboot::sanitize::for_terminal(s).into_owned();
    let default = list.default_entry();
    for (i, e) in list.entries.iter().enumerate() {
        let mark = if Some(i) == default { '*' } else { ' ' };
        println!("{mark} {}  [{}]", t(&e.title), t(&e.id));
        // A network file is shown as its URL.
        let name = |f: &leapboot::entry::FileRef| {
            leapboot::net::netfs::url_of(f).map_or_else(|| f.to_string(), |u| u.to_string())
        };
        println!("    kernel  {}", t(&name(&e.kernel)));
        for f in &e.initrds {
            println!("    initrd  {}", t(&name(f)));
        }
        println!("    cmdline {}", t(&e.cmdline));
        let line = e.source.line.map(|l| format!(":{l}")).unwrap_or_default();
        println!(
            "    from    {}:{}{line}",
            t(&e.source.volume),
            t(&e.source.file)
        );
    }
}
