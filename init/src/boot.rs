//! The boot loop: discover → list entries → menu with the autoboot countdown → kexec, with a
//! way forward from every failure (back to the menu, next entry, rescan, reboot or power off
//! from the console).

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use leapboot::config::Config;
use leapboot::discover;
use leapboot::disk::Disk;
use leapboot::entry::{BootEntry, FileRef, Timeout};
use leapboot::menu::state::{Menu, VolumeInfo};
use leapboot::pipeline::Volumes;

use crate::menu_loop::{self, Exit};

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
    let modules = leapboot::kmod::load_all(&crate::early::modules_dir(), &config.modules);
    if modules > 0 {
        log::info!("loaded {modules} kernel module(s)");
    }
    loop {
        let settle = params.settle.unwrap_or(config.settle());
        let max = params.device_wait.unwrap_or(config.device_wait());
        let (disks, waited) =
            discover::wait_for_disks(Path::new("/sys"), Path::new("/dev"), settle, max);
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
        let volumes = open_volumes(&disks, &config);
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
        for e in &errors {
            log::error!("{e}");
        }
        if list.entries.is_empty() {
            log::error!(
                "no boot entries found on {} disk(s) and {} volume(s)",
                disks.len(),
                volumes.list.len()
            );
            wait_for_rescan(&mut clock);
            continue;
        }
        for (i, e) in list.entries.iter().enumerate() {
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
        let timeout = params
            .timeout
            .or(config.timeout())
            .or(list.timeout)
            .unwrap_or(DEFAULT_TIMEOUT);
        let default = match params.default.as_deref().or(config.default.as_deref()) {
            Some(p) => list.find(p).or_else(|| {
                log::warn!("default '{p}' names no entry; using the boot configuration's");
                list.default_entry()
            }),
            None => list.default_entry(),
        };
        let mut lock = config.lock();
        lock.locked |= params.locked;
        let mut menu = Menu::new(list.entries.clone(), default, timeout, lock);
        menu.set_volumes(volume_infos(&volumes));
        if let Some(d) = menu.default().map(|i| &list.entries[i]) {
            match timeout {
                Timeout::Secs(0) => log::info!("booting the default entry '{}' now", d.title),
                Timeout::Secs(n) => {
                    log::info!("booting the default entry '{}' in {n} s", d.title)
                }
                Timeout::Forever => log::info!(
                    "timeout is 'forever': choose an entry, Enter boots '{}'",
                    d.title
                ),
            }
        }
        let colour = params.colour.or(config.colour).unwrap_or(true);
        let shown = Instant::now();
        let before = clock;
        let exit = menu_loop::show(
            &mut menu,
            &volumes,
            colour,
            &mut |e, cmdline, vols| {
                let mut c = before;
                c.waited_timeout += shown.elapsed();
                boot_one(e, cmdline, vols, &c)
            },
            None,
        );
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
        wait_for_rescan(&mut clock);
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
            log::info!(
                "leapboot time: {} ms (plus {} ms waiting for devices, {} ms timeout); kexec now",
                clock.own().as_millis(),
                clock.waited_devices.as_millis(),
                clock.waited_timeout.as_millis()
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

/// Opens every disk read-only (partitions first set read-only too) and its volumes, leaving
/// out what the configuration's `allow_devices`/`deny_devices` exclude.
fn open_volumes(disks: &[discover::BlockDevice], config: &Config) -> Volumes {
    let mut volumes = Volumes::default();
    for d in disks {
        let wanted = config.device_allowed(&[&d.name])
            || (!config
                .deny_devices
                .iter()
                .any(|g| leapboot::glob::matches(g, &d.name))
                && d.partitions.iter().any(|p| config.device_allowed(&[p])));
        if !wanted {
            log::info!("{}: left alone (allow_devices/deny_devices)", d.name);
            continue;
        }
        for p in &d.partitions {
            // BLKROSET on each partition node as well, so even a kernel mount of it is read-only.
            if let Err(e) = Disk::open(&Path::new("/dev").join(p)) {
                log::warn!("{e}");
            }
        }
        match Disk::open(&d.node) {
            Ok(disk) => volumes.add_disk(&disk, &d.name, &|n| discover::partition_name(&d.name, n)),
            Err(e) => log::error!("{e}"),
        }
    }
    volumes.list.retain(|v| {
        let disk = v
            .disk
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let keep = config.device_allowed(&[&v.name, &disk]);
        if !keep {
            log::info!("{}: left alone (allow_devices/deny_devices)", v.name);
        }
        keep
    });
    volumes
}

/// Nothing could be booted: offer reboot and power off on the console, rescan after a while.
fn wait_for_rescan(clock: &mut Clock) {
    log::info!(
        "rescanning in {} s; press r to reboot, p to power off, Enter to rescan now",
        RESCAN_AFTER.as_secs()
    );
    let t = Instant::now();
    let key = wait_key(Some(RESCAN_AFTER));
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

/// Waits for one key on the console, up to `limit` (forever if `None`).
fn wait_key(limit: Option<Duration>) -> Option<u8> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = limit.map(|l| Instant::now() + l);
    let stdin = std::io::stdin();
    loop {
        let timeout = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                PollTimeout::try_from(left.as_millis().min(60_000) as i32)
                    .unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(n) if n > 0 => {
                let mut b = [0u8; 1];
                match stdin.lock().read(&mut b) {
                    Ok(1) => return Some(b[0]),
                    // EOF or error on the console: nobody can type; just wait out the time.
                    _ => {
                        std::thread::sleep(deadline.map_or(Duration::from_secs(60), |d| {
                            d.saturating_duration_since(Instant::now())
                        }));
                        if deadline.is_some() {
                            return None;
                        }
                    }
                }
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}
