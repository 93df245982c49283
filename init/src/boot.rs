//! The boot loop: discover → list entries → autoboot countdown → kexec, with a way forward
//! from every failure (next entry, rescan, reboot or power off from the console).

use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use leapboot::config::Config;
use leapboot::discover;
use leapboot::disk::Disk;
use leapboot::entry::Timeout;
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
        let volumes = open_volumes(&disks);
        let (mut list, errors) = volumes.boot_list();
        if let Some(args) = params
            .bootdir_args
            .as_deref()
            .or(config.bootdir_args.as_deref())
        {
            list.append_args(leapboot::entry::Format::Bootdir, args);
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
        let default = list.default_entry().map(|i| &list.entries[i]);
        if let Some(d) = default {
            match timeout {
                Timeout::Secs(0) => log::info!("booting the default entry '{}' now", d.title),
                Timeout::Secs(n) => {
                    log::info!("booting the default entry '{}' in {n} s", d.title);
                    let t = Instant::now();
                    std::thread::sleep(Duration::from_secs(u64::from(n)));
                    clock.waited_timeout += t.elapsed();
                }
                Timeout::Forever => {
                    log::info!("timeout is 'forever': press Enter to boot '{}'", d.title);
                    let t = Instant::now();
                    wait_key(None);
                    clock.waited_timeout += t.elapsed();
                }
            }
        }
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
                    log::info!(
                        "leapboot time: {} ms (plus {} ms waiting for devices, {} ms timeout); kexec now",
                        clock.own().as_millis(),
                        clock.waited_devices.as_millis(),
                        clock.waited_timeout.as_millis()
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
        wait_for_rescan(&mut clock);
    }
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
        for p in &d.partitions {
            // BLKROSET on each partition node as well, so even a kernel mount of it is read-only.
            if let Err(e) = Disk::open(&Path::new("/dev").join(p)) {
                log::warn!("{e}");
            }
        }
        match Disk::open(&d.node) {
            Ok(disk) => opened.push((disk, d)),
            Err(e) => log::error!("{e}"),
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
