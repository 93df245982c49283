//! The boot loop: discover → list entries → menu with the autoboot countdown → kexec, with a
//! way forward from every failure (back to the menu, next entry, rescan, reboot or power off
//! from the console).
//!
//! Devices: the uevent listener is opened first, then the configured modules and the modalias
//! coldplug load drivers, then the initial wait (settle rule). While the menu is shown (or
//! nothing bootable was found), a disk that appears later is opened and its entries merged
//! into the list; the countdown restarts only if the default entry changed.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use leapboot::cmdline::Params;
use leapboot::config::Config;
use leapboot::discover::{self, Event, Hotplug};
use leapboot::entry::{BootEntry, BootList, FileRef, Timeout};
use leapboot::kmod::{Loader, Reason};
use leapboot::menu::state::{Menu, VolumeInfo};
use leapboot::pipeline::Volumes;

use crate::menu_loop::{self, Exit, Host};
use crate::volumes::{add_disk_volumes, open_volumes};
use crate::watch::{Wake, Watch};

/// Used when no configuration sets a timeout.
const DEFAULT_TIMEOUT: Timeout = Timeout::Secs(5);
/// How long to wait for a key before rescanning when nothing could be booted.
const RESCAN_AFTER: Duration = Duration::from_secs(10);

/// Wall time since PID 1 started, less the time spent waiting (devices, timeout, keys):
/// leapboot's own time.
#[derive(Clone, Copy)]
struct Clock {
    start: Instant,
    waited_devices: Duration,
    waited_timeout: Duration,
}

impl Clock {
    fn own(&self) -> Duration {
        self.start
            .elapsed()
            .saturating_sub(self.waited_devices + self.waited_timeout)
    }
}

fn load_config() -> Config {
    match std::fs::read_to_string(leapboot::config::PATH) {
        Ok(text) => {
            let (config, problems) = Config::parse(&text);
            for p in problems {
                log::error!("{p}");
            }
            config
        }
        Err(e) => {
            log::warn!("{}: {e}; using the defaults", leapboot::config::PATH);
            Config::default()
        }
    }
}

/// Runs forever; returns only by panicking (caught in `main`).
pub fn run(start: Instant) -> ! {
    cpu_and_peak_rss(); // the baseline: the kernel's initialisation ran as this task
    let mut clock = Clock {
        start,
        waited_devices: Duration::ZERO,
        waited_timeout: Duration::ZERO,
    };
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let params = leapboot::cmdline::parse(&cmdline);
    for p in &params.problems {
        log::warn!("kernel command line: {p}");
    }
    let config = load_config();
    log::info!("leapboot {} starting", env!("CARGO_PKG_VERSION"));
    // The listener first: every device that appears from here on is seen as an event.
    let mut watch = Watch {
        hotplug: Hotplug::open(config.virtual_disks)
            .map_err(|e| {
                log::error!(
                    "cannot open the uevent socket: {}; late disks are found by rescanning only",
                    e.desc()
                )
            })
            .ok(),
        loader: Loader::open(&crate::early::modules_dir()),
    };
    for name in &config.modules {
        watch.loader.load(name, Reason::Configured);
    }
    watch.loader.coldplug(Path::new("/sys"));
    if watch.loader.loaded > 0 {
        log::info!("loaded {} kernel module(s)", watch.loader.loaded);
    }
    loop {
        let settle = params.settle.unwrap_or(config.settle());
        let max = params.device_wait.unwrap_or(config.device_wait());
        let loader = &mut watch.loader;
        let (disks, waited) = discover::wait_for_disks_hotplug(
            watch.hotplug.as_mut(),
            Path::new("/sys"),
            Path::new("/dev"),
            settle,
            max,
            config.virtual_disks,
            &mut |m| loader.load_for_modalias(m),
        );
        clock.waited_devices += waited;
        log::info!(
            "found {} disk(s) in {} ms: {}",
            disks.len(),
            waited.as_millis(),
            disks
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut known: Vec<String> = disks.iter().map(|d| d.name.clone()).collect();
        let (cpu_before, _) = cpu_and_peak_rss();
        let mut volumes = open_volumes(&disks, &config);
        let mut list = entry_list(&volumes, &params, &config, true);
        let (cpu, rss) = cpu_and_peak_rss();
        log::info!(
            "discovery done: {} disk(s), {} volume(s), {} entr{}; CPU {} ms reading them, {} ms in all so far; peak RSS {} KiB",
            disks.len(),
            volumes.list.len(),
            list.entries.len(),
            if list.entries.len() == 1 { "y" } else { "ies" },
            cpu.saturating_sub(cpu_before).as_millis(),
            cpu.as_millis(),
            rss
        );
        if list.entries.is_empty() {
            log::error!(
                "no boot entries found on {} disk(s) and {} volume(s)",
                disks.len(),
                volumes.list.len()
            );
            wait_for_rescan(&mut clock, &mut watch);
            continue;
        }
        log_entries(&list, |_| true);
        let timeout = params
            .timeout
            .or(config.timeout())
            .or(list.timeout)
            .unwrap_or(DEFAULT_TIMEOUT);
        let default = choose_default(&list, &params, &config);
        let mut lock = config.lock();
        lock.locked |= params.locked;
        let mut menu = Menu::new(list.entries.clone(), default, timeout, lock);
        menu.set_volumes(volume_infos(&volumes));
        announce(&menu, timeout);
        let colour = params.colour.or(config.colour).unwrap_or(true);
        let shown = Instant::now();
        let mut session = Session {
            clock,
            shown,
            timeout,
            watch: &mut watch,
            known: &mut known,
            volumes: &mut volumes,
            list: &mut list,
            params: &params,
            config: &config,
        };
        let exit = menu_loop::show(&mut menu, colour, &mut session);
        clock.waited_timeout += shown.elapsed();
        if let Exit::Rescan = exit {
            continue;
        }
        let order = menu.boot_order();
        for i in order.iter().copied() {
            let Some(e) = menu.entries().get(i) else {
                continue;
            };
            boot_one(e, &e.cmdline, &volumes, &clock);
            log::info!("trying the next entry");
        }
        log::error!("none of the {} entries could be booted", order.len());
        wait_for_rescan(&mut clock, &mut watch);
    }
}

/// The default entry: `leapboot.default=`, the config's `default`, the boot configuration's,
/// the first.
fn choose_default(list: &BootList, params: &Params, config: &Config) -> Option<usize> {
    match params.default.as_deref().or(config.default.as_deref()) {
        Some(p) => list.find(p).or_else(|| {
            log::warn!("default '{p}' names no entry; using the boot configuration's");
            list.default_entry()
        }),
        None => list.default_entry(),
    }
}

/// Logs when the default boots.
fn announce(menu: &Menu, timeout: Timeout) {
    let Some(d) = menu.default().and_then(|i| menu.entries().get(i)) else {
        return;
    };
    match timeout {
        Timeout::Secs(0) => log::info!("booting the default entry '{}' now", d.title),
        Timeout::Secs(n) => log::info!("booting the default entry '{}' in {n} s", d.title),
        Timeout::Forever => log::info!(
            "timeout is 'forever': choose an entry; Enter boots '{}'",
            d.title
        ),
    }
}

/// What the menu reaches of the boot loop while it is shown: booting, and late disks.
struct Session<'a> {
    clock: Clock,
    shown: Instant,
    timeout: Timeout,
    watch: &'a mut Watch,
    known: &'a mut Vec<String>,
    volumes: &'a mut Volumes,
    list: &'a mut BootList,
    params: &'a Params,
    config: &'a Config,
}

impl Host for Session<'_> {
    fn boot(&mut self, entry: &BootEntry, cmdline: &str) -> String {
        let mut c = self.clock;
        c.waited_timeout += self.shown.elapsed();
        boot_one(entry, cmdline, self.volumes, &c)
    }

    fn events_fd(&self) -> Option<BorrowedFd<'_>> {
        self.watch.hotplug.as_ref().map(|h| h.as_fd())
    }

    fn events_ready(&mut self, menu: &mut Menu) {
        let Some(hp) = self.watch.hotplug.as_mut() else {
            return;
        };
        let (events, overrun) = hp.drain_raw();
        let broken = hp.is_broken();
        if broken {
            self.watch.hotplug = None;
        }
        let mut names = Vec::new();
        for e in events {
            match e {
                Event::DiskAdded(name) => names.push(name),
                Event::DiskRemoved(name) => log::info!("disk {name} was removed"),
                Event::Modalias(m) => {
                    self.watch.loader.load_for_modalias(&m);
                }
            }
        }
        if overrun || broken {
            // Events were lost: every disk sysfs has that is not known yet.
            names.extend(
                discover::block_devices_with(
                    Path::new("/sys"),
                    Path::new("/dev"),
                    self.config.virtual_disks,
                )
                .into_iter()
                .map(|d| d.name),
            );
        }
        for name in names {
            if add_late_disk(
                &name,
                self.known,
                self.volumes,
                self.list,
                self.params,
                self.config,
            ) {
                let before = menu.default().map(|i| menu.entries()[i].id.clone());
                let default = choose_default(self.list, self.params, self.config);
                menu.replace_entries(self.list.entries.clone(), default);
                menu.set_volumes(volume_infos(self.volumes));
                let after = menu.default().map(|i| menu.entries()[i].id.clone());
                if after != before {
                    log::info!("the default entry changed; the countdown starts again");
                    announce(menu, self.timeout);
                }
            }
        }
    }
}

/// Loads and boots `e` with `cmdline`. Returns only when that failed, with the error.
fn boot_one(e: &BootEntry, cmdline: &str, volumes: &Volumes, clock: &Clock) -> String {
    log::info!(
        "booting '{}' ({}) with command line: {}",
        e.title,
        e.id,
        cmdline
    );
    let mut progress = Progress::default();
    let loaded = leapboot::kexec::load(e, cmdline, volumes, &mut |f, done, total| {
        progress.report(f, done, total)
    });
    let err = match loaded {
        Ok(()) => {
            let (cpu, max_rss) = cpu_and_peak_rss();
            log::info!(
                "leapboot time: {} ms (plus {} ms waiting for devices, {} ms timeout); CPU {} ms, peak RSS {} KiB; kexec now",
                clock.own().as_millis(),
                clock.waited_devices.as_millis(),
                clock.waited_timeout.as_millis(),
                cpu.as_millis(),
                max_rss
            );
            let err = leapboot::kexec::exec();
            leapboot::kexec::unload();
            err.to_string()
        }
        Err(err) => err.to_string(),
    };
    let msg = format!(
        "entry '{}' ({}:{}): {err}",
        e.title, e.source.volume, e.source.file
    );
    log::error!("{msg}");
    msg
}

/// Files at least this large get a percentage while they load.
const SHOW_PERCENT_FROM: u64 = 16 << 20;

/// "Loading <file> (N MiB)..." and, for large files, a percentage on the console.
#[derive(Default)]
struct Progress {
    last_percent: Option<u64>,
}

impl Progress {
    fn report(&mut self, f: &FileRef, done: u64, total: u64) {
        if done == 0 {
            log::info!("Loading {f} ({:.1} MiB)...", total as f64 / 1048576.0);
            self.last_percent = None;
            return;
        }
        if total < SHOW_PERCENT_FROM {
            return;
        }
        let pct = done.saturating_mul(100) / total.max(1);
        if self.last_percent.is_some_and(|l| pct < l + 10 && pct < 100) {
            return;
        }
        self.last_percent = Some(pct);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r  {pct:3}% of {f}");
        if done >= total {
            let _ = writeln!(err);
        }
    }
}

/// What the details view shows of each volume.
fn volume_infos(volumes: &Volumes) -> Vec<VolumeInfo> {
    volumes
        .list
        .iter()
        .map(|v| VolumeInfo {
            name: v.name.clone(),
            fs: v
                .info
                .as_ref()
                .map_or("unknown".into(), |i| i.kind.to_string()),
            uuid: v.info.as_ref().and_then(|i| i.uuid.clone()),
            label: v.info.as_ref().and_then(|i| i.label.clone()),
        })
        .collect()
}

/// CPU time (user + system) of this process and its threads since leapboot started, and its
/// peak resident set in KiB. PID 1 is the task that ran the kernel's own initialisation
/// before it exec'd `/init`, and `getrusage` counts that too: the first call (at the start of
/// [`run`]) is the baseline.
fn cpu_and_peak_rss() -> (Duration, i64) {
    static AT_START: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return (Duration::ZERO, 0);
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    let cpu = tv(ru.ru_utime) + tv(ru.ru_stime);
    let start = *AT_START.get_or_init(|| cpu);
    (cpu.saturating_sub(start), ru.ru_maxrss)
}

/// The entries of every volume, bootdir arguments applied; entry errors are logged if `log_errors`.
fn entry_list(volumes: &Volumes, params: &Params, config: &Config, log_errors: bool) -> BootList {
    let (mut list, errors) = volumes.boot_list();
    if let Some(args) = params
        .bootdir_args
        .as_deref()
        .or(config.bootdir_args.as_deref())
    {
        list.append_args(leapboot::entry::Format::Bootdir, args);
    }
    if let Some(args) = params.append.as_deref().or(config.append.as_deref()) {
        list.append_all(args);
    }
    if log_errors {
        for e in &errors {
            log::error!("{e}");
        }
    }
    list
}

/// Logs the entries `wanted` picks, with their menu numbers.
fn log_entries(list: &BootList, wanted: impl Fn(&BootEntry) -> bool) {
    for (i, e) in list.entries.iter().enumerate().filter(|(_, e)| wanted(e)) {
        log::info!(
            "entry {}: {} [{}] {} ({}:{})",
            i + 1,
            e.title,
            e.id,
            e.kernel,
            e.source.volume,
            e.source.file
        );
    }
}

/// A disk appeared after the initial wait: open it and merge its entries. Returns whether the
/// list gained entries.
fn add_late_disk(
    name: &str,
    known: &mut Vec<String>,
    volumes: &mut Volumes,
    list: &mut BootList,
    params: &Params,
    config: &Config,
) -> bool {
    if known.iter().any(|k| k == name) {
        return false;
    }
    let Some(d) = discover::block_device(
        Path::new("/sys"),
        Path::new("/dev"),
        name,
        config.virtual_disks,
    ) else {
        log::debug!("disk {name}: gone or empty");
        return false;
    };
    known.push(name.to_string());
    log::info!("disk {name} appeared; reading its entries");
    let old_ids: Vec<String> = list.entries.iter().map(|e| e.id.clone()).collect();
    add_disk_volumes(volumes, &d, config);
    let new = entry_list(volumes, params, config, false);
    let added = new
        .entries
        .iter()
        .filter(|e| !old_ids.contains(&e.id))
        .count();
    if added == 0 {
        log::info!("disk {name}: no new boot entries");
        return false;
    }
    *list = new;
    log::info!(
        "disk {name}: {added} new boot entr{}",
        if added == 1 { "y" } else { "ies" }
    );
    log_entries(list, |e| !old_ids.contains(&e.id));
    true
}

/// Nothing could be booted: offer reboot and power off on the console, rescan after a while
/// or as soon as a new disk appears.
fn wait_for_rescan(clock: &mut Clock, watch: &mut Watch) {
    log::info!(
        "rescanning in {} s (or when a disk appears); press r to reboot, p to power off, Enter to rescan now",
        RESCAN_AFTER.as_secs()
    );
    let t = Instant::now();
    let key = match watch.wait(Some(RESCAN_AFTER)) {
        Wake::Key(k) => Some(k),
        Wake::Disk(name) => {
            log::info!("disk {name} appeared; rescanning");
            None
        }
        Wake::Rescan => None,
        Wake::Timeout => None,
    };
    clock.waited_timeout += t.elapsed();
    let mode = match key {
        Some(b'r') | Some(b'R') => nix::sys::reboot::RebootMode::RB_AUTOBOOT,
        Some(b'p') | Some(b'P') => nix::sys::reboot::RebootMode::RB_POWER_OFF,
        _ => return,
    };
    log::info!(
        "{}",
        if mode == nix::sys::reboot::RebootMode::RB_AUTOBOOT {
            "rebooting"
        } else {
            "powering off"
        }
    );
    nix::unistd::sync();
    let Err(e) = nix::sys::reboot::reboot(mode);
    log::error!("reboot failed: {e}");
}
