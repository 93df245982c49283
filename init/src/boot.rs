//! The boot loop: discover → list entries → autoboot countdown → kexec, with a way forward
//! from every failure (next entry, rescan, reboot or power off from the console).
//!
//! Devices: the uevent listener is opened first, then the configured modules and the modalias
//! coldplug load drivers, then the initial wait (settle rule). While the countdown runs (or
//! nothing bootable was found), a disk that appears later is opened and its entries merged
//! into the list; the countdown restarts only if the default entry changed.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use leapboot::cmdline::Params;
use leapboot::config::Config;
use leapboot::discover::{self, Event, Hotplug};
use leapboot::disk::Disk;
use leapboot::entry::{BootList, Timeout};
use leapboot::kmod::{Loader, Reason};
use leapboot::pipeline::Volumes;

/// Used when no configuration sets a timeout.
const DEFAULT_TIMEOUT: Timeout = Timeout::Secs(5);
/// How long to wait for a key before rescanning when nothing could be booted.
const RESCAN_AFTER: Duration = Duration::from_secs(10);

/// Wall time since PID 1 started, less the time spent waiting (devices, timeout, keys):
/// leapboot's own time.
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
            let (config, problem) = Config::parse(&text);
            if let Some(p) = problem {
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
        let mut volumes = open_volumes(&disks);
        let mut list = entry_list(&volumes, &params, &config, true);
        let (cpu, rss) = cpu_and_peak_rss();
        log::info!(
            "discovery done: {} disk(s), {} volume(s), {} entr{}; CPU so far {} ms, peak RSS {} KiB",
            disks.len(),
            volumes.list.len(),
            list.entries.len(),
            if list.entries.len() == 1 { "y" } else { "ies" },
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
        log_entries(&list, 0);
        let timeout = params
            .timeout
            .or(config.timeout())
            .or(list.timeout)
            .unwrap_or(DEFAULT_TIMEOUT);
        countdown(
            timeout,
            &mut clock,
            &mut watch,
            &mut known,
            &mut volumes,
            &mut list,
            &params,
            &config,
        );
        for i in list.boot_order() {
            let e = &list.entries[i];
            log::info!(
                "booting '{}' ({}) with command line: {}",
                e.title,
                e.id,
                e.cmdline
            );
            match leapboot::kexec::load(e, &e.cmdline, &volumes) {
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
                    log::error!("{err}");
                    leapboot::kexec::unload();
                }
                Err(err) => log::error!(
                    "entry '{}' ({}:{}): {err}",
                    e.title,
                    e.source.volume,
                    e.source.file
                ),
            }
            log::info!("trying the next entry");
        }
        log::error!("none of the {} entries could be booted", list.entries.len());
        wait_for_rescan(&mut clock, &mut watch);
    }
}

/// CPU time (user + system) of this process and its threads, and its peak resident set in KiB.
fn cpu_and_peak_rss() -> (Duration, i64) {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return (Duration::ZERO, 0);
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    (tv(ru.ru_utime) + tv(ru.ru_stime), ru.ru_maxrss)
}

/// The device side of waiting: the uevent listener (if it could be opened) and the module
/// loader its `MODALIAS` events feed.
struct Watch {
    hotplug: Option<Hotplug>,
    loader: Loader,
}

/// What ended a [`Watch::wait`].
enum Wake {
    Key(u8),
    /// A whole disk appeared (kernel name).
    Disk(String),
    Timeout,
}

impl Watch {
    /// Waits for a key on the console, a new disk, or `limit` (forever if `None`). Modalias
    /// events are handled (modules loaded) on the way.
    fn wait(&mut self, limit: Option<Duration>) -> Wake {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let deadline = limit.map(|l| Instant::now() + l);
        let stdin = std::io::stdin();
        let mut stdin_open = true;
        loop {
            if let Some(hp) = self.hotplug.as_mut() {
                for e in hp.drain() {
                    match e {
                        Event::DiskAdded(name) => return Wake::Disk(name),
                        Event::DiskRemoved(name) => log::info!("disk {name} was removed"),
                        Event::Modalias(m) => {
                            self.loader.load_for_modalias(&m);
                        }
                    }
                }
            }
            let timeout = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Wake::Timeout;
                    }
                    PollTimeout::try_from(left.as_millis().clamp(1, 60_000) as i32)
                        .unwrap_or(PollTimeout::MAX)
                }
                None => PollTimeout::NONE,
            };
            let mut fds = Vec::with_capacity(2);
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
            if let Some(hp) = &self.hotplug {
                fds.push(PollFd::new(hp.as_fd(), PollFlags::POLLIN));
            }
            if fds.is_empty() {
                // Nothing to watch: nobody can type and no device can be seen; wait out the time.
                std::thread::sleep(deadline.map_or(Duration::from_secs(60), |d| {
                    d.saturating_duration_since(Instant::now())
                }));
                continue;
            }
            let key_ready = match poll(&mut fds, timeout) {
                Ok(n) if n > 0 => stdin_open && fds[0].revents().is_some_and(|r| !r.is_empty()),
                Ok(_) | Err(nix::errno::Errno::EINTR) => false,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(200));
                    false
                }
            };
            drop(fds);
            if key_ready {
                let mut b = [0u8; 1];
                match stdin.lock().read(&mut b) {
                    Ok(1) => return Wake::Key(b[0]),
                    // EOF or error on the console: nobody can type; stop watching it.
                    _ => stdin_open = false,
                }
            }
        }
    }
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
    if log_errors {
        for e in &errors {
            log::error!("{e}");
        }
    }
    list
}

/// Logs the entries from index `from` on.
fn log_entries(list: &BootList, from: usize) {
    for (i, e) in list.entries.iter().enumerate().skip(from) {
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

/// Waits out the autoboot timeout (or for Enter when it is 'forever'), merging the entries of
/// disks that appear meanwhile. The countdown restarts when the default entry changes.
#[allow(clippy::too_many_arguments)]
fn countdown(
    timeout: Timeout,
    clock: &mut Clock,
    watch: &mut Watch,
    known: &mut Vec<String>,
    volumes: &mut Volumes,
    list: &mut BootList,
    params: &Params,
    config: &Config,
) {
    let announce = |list: &BootList| {
        let Some(d) = list.default_entry().map(|i| &list.entries[i]) else {
            return;
        };
        match timeout {
            Timeout::Secs(0) => log::info!("booting the default entry '{}' now", d.title),
            Timeout::Secs(n) => log::info!("booting the default entry '{}' in {n} s", d.title),
            Timeout::Forever => {
                log::info!("timeout is 'forever': press Enter to boot '{}'", d.title)
            }
        }
    };
    announce(list);
    let limit = match timeout {
        Timeout::Secs(0) => return,
        Timeout::Secs(n) => Some(Duration::from_secs(u64::from(n))),
        Timeout::Forever => None,
    };
    let t = Instant::now();
    let mut deadline = limit.map(|l| Instant::now() + l);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            break;
        }
        match watch.wait(left) {
            Wake::Timeout => break,
            Wake::Key(b'\n') | Wake::Key(b'\r') if limit.is_none() => break,
            Wake::Key(_) => {}
            Wake::Disk(name) => {
                let before = list.default_entry().map(|i| list.entries[i].id.clone());
                if add_late_disk(&name, known, volumes, list, params, config) {
                    let after = list.default_entry().map(|i| list.entries[i].id.clone());
                    if after != before {
                        log::info!("the default entry changed; the countdown starts again");
                        announce(list);
                        deadline = limit.map(|l| Instant::now() + l);
                    }
                }
            }
        }
    }
    clock.waited_timeout += t.elapsed();
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
    add_disk_volumes(volumes, &d);
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
    for (i, e) in list.entries.iter().enumerate() {
        if !old_ids.contains(&e.id) {
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
    true
}

/// Opens every disk read-only (partitions first set read-only too) and its volumes; volumes
/// are probed in parallel, and those without a userspace reader are kernel-mounted read-only
/// under /run/leapboot.
fn open_volumes(disks: &[discover::BlockDevice]) -> Volumes {
    let mut volumes = Volumes::with_mounts(leapboot::fs::mount::MountConfig {
        root: Path::new(leapboot::MOUNT_ROOT).to_path_buf(),
        modules_dir: crate::early::modules_dir(),
    });
    let mut opened = Vec::new();
    for d in disks {
        if let Some(disk) = open_disk(d) {
            opened.push((disk, d));
        }
    }
    let namers: Vec<Box<dyn Fn(u32) -> String + Sync>> = opened
        .iter()
        .map(|(_, d)| {
            let name = d.name.clone();
            Box::new(move |n| discover::partition_name(&name, n))
                as Box<dyn Fn(u32) -> String + Sync>
        })
        .collect();
    let refs: Vec<leapboot::pipeline::DiskRef<'_>> = opened
        .iter()
        .zip(&namers)
        .map(|((disk, d), namer)| leapboot::pipeline::DiskRef {
            disk,
            name: &d.name,
            part_name: namer.as_ref(),
        })
        .collect();
    volumes.add_disks(&refs);
    volumes
}

/// Opens one disk read-only (partitions first) and adds its volumes.
fn add_disk_volumes(volumes: &mut Volumes, d: &discover::BlockDevice) {
    if let Some(disk) = open_disk(d) {
        volumes.add_disk(&disk, &d.name, &|n| discover::partition_name(&d.name, n));
    }
}

/// Opens a disk read-only (BLKROSET), its partition nodes first, so that even a kernel mount
/// of a partition is read-only.
fn open_disk(d: &discover::BlockDevice) -> Option<Disk> {
    for p in &d.partitions {
        if let Err(e) = Disk::open(&Path::new("/dev").join(p)) {
            log::warn!("{e}");
        }
    }
    Disk::open(&d.node).map_err(|e| log::error!("{e}")).ok()
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
