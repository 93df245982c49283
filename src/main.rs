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

/// A network boot source for `list`, instead of disks.
#[derive(clap::Args)]
struct NetSource {
    /// A network boot source instead of disks: a pxelinux or GRUB config, an iPXE script or a
    /// kernel, by tftp://, http:// or https:// URL.
    #[arg(long, value_name = "URL", conflicts_with_all = ["disk", "root"])]
    url: Option<String>,
    /// The boot servers DHCP names, as /init would boot from them: leases on the NICs
    /// (--iface, or every physical NIC with a link) without configuring them, then the
    /// pxelinux search, the GRUB config or the boot file each lease points to. Needs root
    /// (ports 68, 546) and a host that already reaches the servers.
    #[arg(long, conflicts_with_all = ["disk", "root"])]
    net: bool,
    /// The interface for --net (repeatable; may name a virtual one).
    #[arg(long, value_name = "IF", requires = "net")]
    iface: Vec<String>,
    /// How long --net waits for DHCP, in seconds.
    #[arg(long, value_name = "S", default_value_t = 20, requires = "net")]
    net_timeout: u64,
    /// A CA certificate (PEM) HTTPS servers are verified against (repeatable); default: the
    /// `ca_certificates` of /etc/leapboot.toml. Without any, HTTPS is refused.
    #[arg(long, value_name = "FILE")]
    ca: Vec<PathBuf>,
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
    #[command(flatten)]
    net: NetSource,
}

impl NetSource {
    fn lib(&self) -> leapboot::host::netsource::NetChoice {
        leapboot::host::netsource::NetChoice {
            url: self.url.clone(),
            dhcp: self.net,
            iface: self.iface.clone(),
            ca: self.ca.clone(),
            timeout: std::time::Duration::from_secs(self.net_timeout),
        }
    }
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
            net: self.net.lib(),
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
        #[command(flatten)]
        net: NetSource,
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
    use leapboot::host::commands as c;
    let r = match cli.command {
        Command::List {
            sources,
            net,
            json,
            stats,
        } => {
            let net = net.lib();
            let r = if net.is_set() {
                list_net(&net, json)
            } else {
                list(&sources, json)
            };
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
        Command::NetLease {
            iface,
            ip,
            timeout,
            apply,
        } => return net_lease(&iface, &ip, timeout, apply),
        Command::Fetch {
            url,
            output,
            ca,
            timeout,
        } => return fetch(&url, output.as_deref(), &ca, timeout),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn list(sources: &Sources, json: bool) -> Result<(), leapboot::host::commands::Failed> {
    let sys = leapboot::host::live::System::real();
    let volumes = leapboot::host::commands::open(&sources.disk, &sources.root, &sys)?;
    let (mut list, errors) = volumes.boot_list();
    host_policy().resolve(&mut list);
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

/// `list --url`/`--net`: the entries a boot server gives, through the same parsers.
fn list_net(
    net: &leapboot::host::netsource::NetChoice,
    json: bool,
) -> Result<(), leapboot::host::commands::Failed> {
    use leapboot::host::commands::Failed;
    let config_cas = std::fs::read_to_string(leapboot::config::PATH)
        .map(|t| leapboot::config::Config::parse(&t).0.ca_certificates)
        .unwrap_or_default();
    let cfg = leapboot::host::netsource::fetch_config(net, config_cas);
    let got = leapboot::host::netsource::discover(net, &cfg).map_err(|e| {
        log::error!("{e}");
        Failed
    })?;
    for e in &got.errors {
        log::warn!("{e}");
    }
    let mut list = got.list;
    host_policy().resolve(&mut list);
    let volumes = Volumes::default();
    if json {
        println!("{}", to_json(&list, &volumes, None));
    } else {
        print_table(&list, None);
    }
    if list.entries.is_empty() {
        log::error!("no boot entries from the network source");
        return Err(Failed);
    }
    Ok(())
}

/// The boot policy `/init` would apply, from this system's `/etc/leapboot.toml` if any.
fn host_policy() -> leapboot::session::Policy {
    let text = std::fs::read_to_string(leapboot::config::PATH).ok();
    leapboot::session::Policy::for_host(text.as_deref())
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
            let url = |f: &leapboot::entry::FileRef| {
                leapboot::net::netfs::url_of(f).map(|u| u.to_string())
            };
            let mut v = serde_json::json!({
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
    leapboot::sanitize::json_escape_terminal_controls(
        &serde_json::to_string_pretty(&v).unwrap_or_default(),
    )
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
        // A network file is shown as its URL.
        let name = |f: &leapboot::entry::FileRef| {
            leapboot::net::netfs::url_of(f).map_or_else(|| f.to_string(), |u| u.to_string())
        };
        println!("    kernel  {}", p(&name(&e.kernel)));
        for f in &e.initrds {
            println!("    initrd  {}", p(&name(f)));
        }
        println!("    cmdline {}", p(&e.cmdline));
        println!("    from    {}", p(&e.source.location()));
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
