//! The boot loop, as glue: it feeds the library's session state machines
//! (`leapboot::session`: discovery, policy, preload; `leapboot::menu::state`: the menu) with
//! what happens and performs what they ask: read disks, wait, show the menu, load, kexec,
//! rescan, reboot.
//!
//! Devices: the uevent listener is opened first, then the configured modules and the modalias
//! coldplug load drivers. Each disk is read as soon as it is seen; the initial wait ends as
//! soon as the default entry is known (or by the settle rule). While the menu is shown (or
//! nothing bootable was found), a disk that appears later is opened and its entries merged
//! into the list; the countdown restarts only if the default entry changed.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use leapboot::config::Config;
use leapboot::discover;
use leapboot::entry::{BootEntry, BootList, FileRef, Timeout};
use leapboot::kmod::{Loader, Reason};
use leapboot::menu::state::{Menu, VolumeInfo};
use leapboot::pipeline::Volumes;
use leapboot::session::{self, Discovery, Next, Policy, Preload, PromptKey};

use crate::menu_loop::{self, Exit, Host};
use crate::network::Network;
use crate::volumes::{add_disks, new_volumes};
use crate::watch::{Wake, Watch};

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

/// The certificates of `require_signed`, read from the initramfs (`None`: not required).
/// A file that cannot be read or parsed is logged and skipped; with none left every
/// kernel is refused, with the reason.
fn signing_trust(config: &Config) -> Option<leapboot::pesig::Trust> {
    if !config.require_signed {
        return None;
    }
    let (trust, problems) =
        leapboot::pesig::load_trust(&config.signing_certs, |p| std::fs::read(p));
    for p in problems {
        log::error!("{}: {p}", leapboot::config::PATH);
    }
    if trust.is_empty() {
        log::error!(
            "require_signed: no signing certificate could be read: every kernel will be refused"
        );
    } else {
        log::info!(
            "require_signed: kernels must be signed by {}",
            trust.names().join(", ")
        );
    }
    Some(trust)
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
    leapboot::measure::set_mode(if params.measured_boot_required {
        leapboot::config::MeasuredBoot::Required
    } else {
        config.measured_boot()
    });
    let policy = Policy::new(&params, &config);
    log::info!("leapboot {} starting", env!("CARGO_PKG_VERSION"));
    leapboot::kexec::require_signed(signing_trust(&config));
    // The listener first: every device that appears from here on is seen as an event.
    let mut watch = Watch {
        hotplug: discover::Hotplug::open(policy.virtual_disks)
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
    // The network comes up beside the disks (its NIC drivers were loaded by the coldplug).
    let mut net = match policy.network {
        leapboot::cmdline::NetMode::Off => None,
        _ => Network::start(&cmdline, &config),
    };
    let mut net_found: Vec<leapboot::entry::Found> = Vec::new();
    let mut rescanning = false;
    loop {
        // A rescan asks the network again (a boot server that was down may be back).
        if rescanning
            && session::network_again(policy.network, net.as_ref().is_none_or(Network::finished))
        {
            log::info!("network: asking again");
            net = Network::start(&cmdline, &config);
            net_found.clear();
        }
        rescanning = true;
        let (cpu_before, _) = cpu_and_peak_rss();
        let mut found = discover_entries(&policy, &mut watch, &mut clock, &mut net, &mut net_found);
        crate::milestone("devices-ready");
        let (cpu, rss) = cpu_and_peak_rss();
        log::info!(
            "discovery done: {} disk(s), {} volume(s), {} entr{}; CPU {} ms reading them, {} ms in all so far; peak RSS {} KiB",
            found.known.len(),
            found.volumes.list.len(),
            found.list.entries.len(),
            if found.list.entries.len() == 1 { "y" } else { "ies" },
            cpu.saturating_sub(cpu_before).as_millis(),
            cpu.as_millis(),
            rss
        );
        if found.list.entries.is_empty() {
            log::error!(
                "no boot entries found on {} disk(s) and {} volume(s)",
                found.known.len(),
                found.volumes.list.len()
            );
            wait_for_rescan(&mut clock, &mut watch, policy.lock.locked);
            continue;
        }
        crate::milestone("entries-parsed");
        log_entries(&found.list, |_| true);
        let timeout = policy.timeout(&found.list);
        let default = choose_default(&found.list, &policy, true);
        let mut lock = policy.lock.clone();
        lock.trusted = found.trusted.clone();
        let mut menu = Menu::new(found.list.entries.clone(), default, timeout, lock);
        menu.set_volumes(volume_infos(&found.volumes));
        announce(&menu, timeout);
        // The menu, then its boot order unattended; a load cancelled with Esc or Ctrl-C
        // comes back to the menu (no countdown) instead of going on to the next entry.
        let mut preload = Preload::default();
        let rescan = loop {
            let shown = Instant::now();
            let mut session = Session {
                clock,
                shown,
                timeout,
                watch: &mut watch,
                found: &mut found,
                policy: &policy,
                preload: std::mem::take(&mut preload),
                net: &mut net,
                net_found: &mut net_found,
            };
            let exit = menu_loop::show(&mut menu, policy.colour, &mut session);
            preload = std::mem::take(&mut session.preload);
            clock.waited_timeout += shown.elapsed();
            if let Exit::Rescan = exit {
                break true;
            }
            let order = menu.boot_order();
            let mut cancelled = None;
            for i in order.iter().copied() {
                let Some(e) = menu.entries().get(i) else {
                    continue;
                };
                let failed = boot_one(e, &e.cmdline, &found.volumes, &clock, &mut preload);
                if failed.cancelled {
                    cancelled = Some(failed.message);
                    break;
                }
                log::info!("trying the next entry");
            }
            match cancelled {
                Some(msg) => {
                    log::info!("the load was cancelled: back to the menu");
                    menu.boot_failed(&msg);
                }
                None => {
                    log::error!("none of the {} entries could be booted", order.len());
                    break false;
                }
            }
        };
        if !rescan {
            wait_for_rescan(&mut clock, &mut watch, policy.lock.locked);
        }
    }
}

/// What discovery found: the disks read, their volumes, what the network found, and the
/// merged entry list.
struct Found {
    known: Vec<String>,
    volumes: Volumes,
    net: Vec<leapboot::entry::Found>,
    list: BootList,
    /// The trusted volumes (locked mode), for the menu's allowed-entry check.
    trusted: Option<std::collections::BTreeSet<String>>,
    /// Entry errors already logged (a list is rebuilt as disks join; each error is told once).
    logged: Vec<String>,
}

impl Found {
    /// Rebuilds the list from every volume, the policy's arguments applied; new errors logged.
    fn rebuild(&mut self, policy: &Policy) {
        // Locked: only trusted volumes set the default and the timeout, and hold the bare ids.
        let (disks, mut errors) = if policy.lock.locked {
            let (list, errors, verdict) = self
                .volumes
                .boot_list_trusted(Default::default(), &policy.trust);
            self.trusted = Some(verdict.trusted);
            (list, errors)
        } else {
            self.volumes.boot_list()
        };
        errors.extend(self.net.iter().flat_map(|f| f.errors.iter().cloned()));
        let mut list = session::with_network(disks, &self.net, policy.network);
        policy.apply(&mut list);
        for e in errors {
            let e = e.to_string();
            if !self.logged.contains(&e) {
                log::error!("{e}");
                self.logged.push(e);
            }
        }
        self.list = list;
    }

    /// The disks named were removed: their volumes and entries go, and a disk that comes
    /// later under the same name is read as new.
    fn forget_disks(&mut self, names: &[String], policy: &Policy) {
        for n in names {
            self.known.retain(|k| k != n);
            let gone = self.volumes.remove_disk(&Path::new("/dev").join(n));
            if !gone.is_empty() {
                log::info!("disk {n} removed: volume(s) {} forgotten", gone.join(" "));
            }
        }
        self.rebuild(policy);
    }

    /// Opens the disks named (those still there) and merges their entries; `sorted` puts
    /// the volumes in disk-name order (the initial discovery), else they come last (a disk
    /// that appears while the menu is shown adds its entries at the end).
    fn read_disks(&mut self, names: &[String], policy: &Policy, sorted: bool) {
        let disks: Vec<discover::BlockDevice> = names
            .iter()
            .filter_map(|n| {
                discover::block_device(
                    Path::new("/sys"),
                    Path::new("/dev"),
                    n,
                    policy.virtual_disks,
                )
                .or_else(|| {
                    log::debug!("disk {n}: gone or empty");
                    None
                })
            })
            .collect();
        self.known.extend(names.iter().cloned());
        add_disks(&mut self.volumes, &disks, policy);
        if sorted {
            self.volumes.order_by_disk_name();
        }
        self.rebuild(policy);
    }
}

/// The initial discovery: every disk is read as soon as it is seen, and waiting ends when
/// [`Discovery`] says so (the default is known, or the settle rule).
fn discover_entries(
    policy: &Policy,
    watch: &mut Watch,
    clock: &mut Clock,
    net: &mut Option<Network>,
    net_found: &mut Vec<leapboot::entry::Found>,
) -> Found {
    leapboot::fault::point("discovery");
    let t0 = Instant::now();
    let mut reading = Duration::ZERO;
    let mut d = Discovery::new(t0, policy);
    let mut found = Found {
        known: Vec::new(),
        volumes: new_volumes(),
        net: net_found.clone(),
        list: BootList::default(),
        trusted: None,
        logged: Vec::new(),
    };
    if !found.net.is_empty() {
        found.rebuild(policy);
    }
    let first = policy.network == leapboot::cmdline::NetMode::First;
    // Takes the network's new findings; whether the list changed.
    let mut from_network = |found: &mut Found, net: &mut Option<Network>| {
        let got = net.as_mut().map(Network::take).unwrap_or_default();
        if got.is_empty() {
            return false;
        }
        net_found.extend(got.iter().cloned());
        found.net.extend(got);
        found.rebuild(policy);
        true
    };
    let scan = |d: &mut Discovery| {
        let now = Instant::now();
        for disk in
            discover::block_devices_with(Path::new("/sys"), Path::new("/dev"), policy.virtual_disks)
        {
            d.seen(&disk.name, now);
        }
    };
    scan(&mut d);
    let why = loop {
        let h = watch.drain();
        let now = Instant::now();
        for name in &h.added {
            if d.seen(name, now) {
                log::debug!("disk {name} appeared after {} ms", (now - t0).as_millis());
            }
        }
        for name in &h.removed {
            d.removed(name);
        }
        if h.modules > 0 {
            d.module_loaded(now);
        }
        if h.lost || !watch.listening() {
            scan(&mut d);
        }
        let net_pending = net.as_ref().is_some_and(Network::pending);
        if from_network(&mut found, net) || first {
            // In `first` mode the network may still name the default: not known yet.
            let net_may_change = first && net_pending;
            let named = policy.default_entry(&found.list).is_named();
            d.default_named(named && !net_may_change);
            d.network_entries(!(found.net.is_empty() || net_may_change));
        }
        match d.next(Instant::now()) {
            Next::Read(names) => {
                let t = Instant::now();
                log::info!("reading disk(s) {}", names.join(" "));
                // The list is in disk-name order whatever order the disks came in.
                found.read_disks(&names, policy, true);
                for n in &names {
                    d.read(n);
                }
                d.default_named(
                    policy.default_entry(&found.list).is_named() && !(first && net_pending),
                );
                reading += t.elapsed();
            }
            // While the network may still report, look at least every 100 ms.
            Next::Wait(limit) if net_pending => watch.sleep(limit.min(Duration::from_millis(100))),
            Next::Wait(limit) => watch.sleep(limit),
            Next::Done(why) => break why,
        }
    };
    // The network's answer is awaited only where the policy says (no disk entry, or
    // `network = "first"`), and only within its own bounds.
    let mut told = false;
    while session::wait_for_network(
        policy.network,
        net.as_ref().is_some_and(Network::pending),
        !found.list.entries.is_empty(),
    ) {
        if !told {
            let left = net.as_ref().map_or(Duration::ZERO, |n| {
                n.deadline.saturating_duration_since(Instant::now())
            });
            log::info!("waiting for the network (at most {} s)", left.as_secs());
            told = true;
        }
        std::thread::sleep(Duration::from_millis(100));
        from_network(&mut found, net);
    }
    from_network(&mut found, net);
    let waited = t0.elapsed().saturating_sub(reading);
    clock.waited_devices += waited;
    log::info!(
        "found {} disk(s) in {} ms: {} ({})",
        found.known.len(),
        waited.as_millis(),
        found.known.join(" "),
        match why {
            session::Done::DefaultFound => "the default entry is known: no settle wait",
            session::Done::Settled => "no new device for the settle time",
            session::Done::MaxWait => "the longest wait for devices passed",
        },
    );
    found
}

/// The default entry by the policy; a configured pattern that names nothing is told once.
fn choose_default(list: &BootList, policy: &Policy, warn: bool) -> Option<usize> {
    let c = policy.default_entry(list);
    if let (Some(p), true) = (&c.unmatched, warn) {
        log::warn!("default '{p}' names no entry; using the boot configuration's");
    }
    c.index
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

/// What the menu reaches of the boot loop while it is shown: booting, loading the default
/// ahead, and late disks.
struct Session<'a> {
    clock: Clock,
    shown: Instant,
    timeout: Timeout,
    watch: &'a mut Watch,
    found: &'a mut Found,
    policy: &'a Policy,
    preload: Preload,
    net: &'a mut Option<Network>,
    net_found: &'a mut Vec<leapboot::entry::Found>,
}

impl Session<'_> {
    /// The entries changed while the menu is shown: the menu takes the new list (its
    /// countdown starts again only if the default entry changed).
    fn show_new_list(&mut self, menu: &mut Menu, old: &BootList, what: &str) {
        let added = session::new_entries(old, &self.found.list);
        let gone = session::new_entries(&self.found.list, old);
        let entries = |n: usize| if n == 1 { "entry" } else { "entries" };
        if !gone.is_empty() {
            log::info!("{what}: {} boot {} gone", gone.len(), entries(gone.len()));
        }
        if added.is_empty() && gone.is_empty() {
            log::info!("{what}: no new boot entries");
            return;
        }
        if !added.is_empty() {
            log::info!("{what}: {} new boot {}", added.len(), entries(added.len()));
        }
        log_entries(&self.found.list, |e| {
            !old.entries.iter().any(|o| o.id == e.id)
        });
        let before = menu.default().map(|i| menu.entries()[i].id.clone());
        let default = choose_default(&self.found.list, self.policy, false);
        // Locked: the trust verdict is the new list's (a volume that went may come back
        // under the same name as another disk: it is judged again, never by its name).
        menu.set_trusted(self.found.trusted.clone());
        menu.replace_entries(self.found.list.entries.clone(), default);
        menu.set_volumes(volume_infos(&self.found.volumes));
        let after = menu.default().map(|i| menu.entries()[i].id.clone());
        if after != before {
            log::info!("the default entry changed; the countdown starts again");
            announce(menu, self.timeout);
        }
    }
}

impl Host for Session<'_> {
    fn boot(&mut self, entry: &BootEntry, cmdline: &str) -> String {
        let mut c = self.clock;
        c.waited_timeout += self.shown.elapsed();
        boot_one(entry, cmdline, &self.found.volumes, &c, &mut self.preload).message
    }

    fn idle(&mut self, menu: &mut Menu) {
        let got = self.net.as_mut().map(Network::take).unwrap_or_default();
        if !got.is_empty() {
            let old = self.found.list.clone();
            self.net_found.extend(got.iter().cloned());
            self.found.net.extend(got);
            self.found.rebuild(self.policy);
            self.show_new_list(menu, &old, "network");
        }
        let Some(i) = self.preload.wanted(menu) else {
            return;
        };
        let e = &menu.entries()[i];
        log::info!("loading '{}' ahead while the countdown runs", e.title);
        let ok = match leapboot::kexec::load(e, &e.cmdline, &self.found.volumes, &mut |_, _, _| {})
        {
            Ok(()) => {
                crate::milestone("kexec-loaded");
                true
            }
            Err(err) => {
                log::warn!("loading '{}' ahead failed: {err}", e.title);
                false
            }
        };
        self.preload.done(e, &e.cmdline, ok);
    }

    fn events_fd(&self) -> Option<BorrowedFd<'_>> {
        self.watch.hotplug.as_ref().map(|h| h.as_fd())
    }

    fn events_ready(&mut self, menu: &mut Menu) {
        let h = self.watch.drain();
        let removed: Vec<String> = h
            .removed
            .iter()
            .filter(|n| self.found.known.contains(n))
            .cloned()
            .collect();
        if !removed.is_empty() {
            let old = self.found.list.clone();
            self.found.forget_disks(&removed, self.policy);
            self.show_new_list(
                menu,
                &old,
                &format!("disk(s) {} removed", removed.join(" ")),
            );
        }
        let mut names = h.added;
        if h.lost || !self.watch.listening() {
            // Events were lost: every disk sysfs has that is not known yet.
            names.extend(
                discover::block_devices_with(
                    Path::new("/sys"),
                    Path::new("/dev"),
                    self.policy.virtual_disks,
                )
                .into_iter()
                .map(|d| d.name),
            );
        }
        names.retain(|n| !self.found.known.contains(n));
        names.dedup();
        if names.is_empty() {
            return;
        }
        match names.as_slice() {
            [one] => log::info!("disk {one} appeared; reading its entries"),
            _ => log::info!("disks {} appeared; reading their entries", names.join(" ")),
        }
        let old = self.found.list.clone();
        self.found.read_disks(&names, self.policy, false);
        self.show_new_list(menu, &old, &format!("disk(s) {}", names.join(" ")));
    }
}

/// Why [`boot_one`] returned.
struct Failed {
    /// The error, as logged.
    message: String,
    /// The user stopped the load (Esc or Ctrl-C during a transfer).
    cancelled: bool,
}

/// Loads and boots `e` with `cmdline` (at once if `preload` holds it already). Returns only
/// when that failed, with the error. While network files load, Esc or Ctrl-C stops them.
fn boot_one(
    e: &BootEntry,
    cmdline: &str,
    volumes: &Volumes,
    clock: &Clock,
    preload: &mut Preload,
) -> Failed {
    log::info!(
        "booting '{}' ({}) with command line: {}",
        e.title,
        e.id,
        cmdline
    );
    leapboot::fault::point("loader");
    let mut cancelled = false;
    let loaded = if preload.is_loaded(e, cmdline) {
        log::info!("'{}' was loaded during the countdown", e.title);
        Ok(())
    } else {
        preload.forget();
        let mut progress = Progress::default();
        let (prepared, cancel) =
            crate::cancel::watching(leapboot::net::netfs::from_network(e), || {
                leapboot::kexec::prepare(e, cmdline, volumes, &mut |f, done, total| {
                    progress.report(f, done, total)
                })
            });
        // Cancelled: the key was pressed and the load stopped for it (not a key pressed just
        // as the last byte came, nor another error).
        cancelled = cancel
            && matches!(
                prepared,
                Err(leapboot::kexec::KexecError::Net {
                    source: leapboot::net::fetch::NetError::Cancelled { .. },
                    ..
                })
            );
        prepared
            .and_then(|p| {
                crate::milestone("kernel-read");
                p.load(e)
            })
            .inspect(|()| crate::milestone("kexec-loaded"))
    };
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
            preload.forget();
            err.to_string()
        }
        Err(err) => err.to_string(),
    };
    let msg = format!("entry '{}' ({}): {err}", e.title, e.source.location());
    log::error!("{msg}");
    Failed {
        message: msg,
        cancelled,
    }
}

/// Files at least this large get a percentage while they load.
const SHOW_PERCENT_FROM: u64 = 16 << 20;

/// "Loading <file> (N MiB)..." and, for large files, a percentage on the console; a network
/// file gets a line with bytes, percent and rate at each report (the loader paces them).
struct Progress {
    last_percent: Option<u64>,
    started: Instant,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            last_percent: None,
            started: Instant::now(),
        }
    }
}

impl Progress {
    fn report(&mut self, f: &FileRef, done: u64, total: u64) {
        if done == 0 {
            self.started = Instant::now();
            if total == 0 {
                // A network file whose size is not known before its transfer starts.
                log::info!("Loading {f}...");
            } else {
                log::info!("Loading {f} ({:.1} MiB)...", total as f64 / 1048576.0);
            }
            self.last_percent = None;
            return;
        }
        if leapboot::net::netfs::url_of(f).is_some() {
            // The loader logs the end ("fetched <url>: ...") itself.
            if total == 0 || done < total {
                let p = leapboot::net::fetch::Progress {
                    bytes: done,
                    total: (total > 0).then_some(total),
                    elapsed: self.started.elapsed(),
                    done: false,
                };
                log::info!("  {f}: {}", p.line());
            }
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

/// Logs the entries `wanted` picks, with their menu numbers.
fn log_entries(list: &BootList, wanted: impl Fn(&BootEntry) -> bool) {
    for (i, e) in list.entries.iter().enumerate().filter(|(_, e)| wanted(e)) {
        log::info!(
            "entry {}: {} [{}] {} ({})",
            i + 1,
            e.title,
            e.id,
            e.kernel,
            e.source.location()
        );
    }
}

/// Nothing could be booted: offer reboot and power off on the console (not in locked mode),
/// rescan after a while or as soon as a new disk appears.
fn wait_for_rescan(clock: &mut Clock, watch: &mut Watch, locked: bool) {
    log::info!("{}", session::prompt_text(locked, RESCAN_AFTER));
    let t = Instant::now();
    let deadline = t + RESCAN_AFTER;
    let key = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match watch.wait(Some(left)) {
            Wake::Key(k) => match session::prompt_key(k, locked) {
                PromptKey::Ignored => continue,
                PromptKey::Refused => {
                    log::warn!("locked mode: reboot and power off are not offered here");
                    continue;
                }
                k => break Some(k),
            },
            Wake::Disk(name) => {
                log::info!("disk {name} appeared; rescanning");
                break None;
            }
            Wake::Rescan | Wake::Timeout => break None,
        }
    };
    clock.waited_timeout += t.elapsed();
    match key {
        Some(PromptKey::Reboot) => {
            menu_loop::machine(false);
        }
        Some(PromptKey::PowerOff) => {
            menu_loop::machine(true);
        }
        _ => {}
    }
}
