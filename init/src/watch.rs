//! Waiting in PID 1 for whatever comes first: a key on the console, a disk that appears (the
//! uevent listener), or a deadline. Modalias events met on the way load their drivers.

use std::io::Read;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use leapboot::discover::{Event, Hotplug};
use leapboot::kmod::Loader;

/// The device side of waiting: the uevent listener (if it could be opened) and the module
/// loader its `MODALIAS` events feed.
pub struct Watch {
    pub hotplug: Option<Hotplug>,
    pub loader: Loader,
}

/// What ended a [`Watch::wait`].
pub enum Wake {
    Key(u8),
    /// A whole disk appeared (kernel name).
    Disk(String),
    /// Device events were lost (socket overrun or failure): rescan sysfs.
    Rescan,
    Timeout,
}

/// What the device side reported since the last [`Watch::drain`].
#[derive(Default)]
pub struct Happened {
    /// Whole disks that appeared (kernel names).
    pub added: Vec<String>,
    /// Whole disks that went away.
    pub removed: Vec<String>,
    /// Modules loaded for new devices (more disks may follow).
    pub modules: usize,
    /// Events were lost (socket overrun or failure): rescan sysfs.
    pub lost: bool,
}

impl Watch {
    /// Takes the pending uevents: disks added and removed; `MODALIAS` events load their
    /// drivers on the way.
    pub fn drain(&mut self) -> Happened {
        let mut h = Happened::default();
        let Some(hp) = self.hotplug.as_mut() else {
            return h;
        };
        let (events, overrun) = hp.drain_raw();
        let broken = hp.is_broken();
        if broken {
            self.hotplug = None;
        }
        h.lost = overrun || broken;
        for e in events {
            match e {
                Event::DiskAdded(name) => h.added.push(name),
                Event::DiskRemoved(name) => {
                    log::info!("disk {name} was removed");
                    h.removed.push(name)
                }
                Event::Modalias(m) => h.modules += self.loader.load_for_modalias(&m),
            }
        }
        h
    }

    /// Whether devices are seen through uevents (else only by scanning sysfs).
    pub fn listening(&self) -> bool {
        self.hotplug.is_some()
    }

    /// Waits up to `limit` for a uevent; without a listener, sleeps at most 50 ms (sysfs is
    /// then polled by the caller).
    pub fn sleep(&self, limit: Duration) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let Some(hp) = &self.hotplug else {
            std::thread::sleep(limit.min(Duration::from_millis(50)));
            return;
        };
        let ms = i32::try_from(limit.as_millis().clamp(1, 60_000)).unwrap_or(60_000);
        let mut fds = [PollFd::new(hp.as_fd(), PollFlags::POLLIN)];
        if let Err(e) = poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            if e != nix::errno::Errno::EINTR {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Waits for a key on the console, a new disk, or `limit` (forever if `None`). Modalias
    /// events are handled (modules loaded) on the way.
    pub fn wait(&mut self, limit: Option<Duration>) -> Wake {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let deadline = limit.map(|l| Instant::now() + l);
        let stdin = std::io::stdin();
        let mut stdin_open = true;
        loop {
            let h = self.drain();
            if let Some(name) = h.added.into_iter().next() {
                return Wake::Disk(name);
            }
            if h.lost {
                return Wake::Rescan;
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
