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

impl Watch {
    /// Waits for a key on the console, a new disk, or `limit` (forever if `None`). Modalias
    /// events are handled (modules loaded) on the way.
    pub fn wait(&mut self, limit: Option<Duration>) -> Wake {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let deadline = limit.map(|l| Instant::now() + l);
        let stdin = std::io::stdin();
        let mut stdin_open = true;
        loop {
            if let Some(hp) = self.hotplug.as_mut() {
                let (events, overrun) = hp.drain_raw();
                let broken = hp.is_broken();
                if broken {
                    self.hotplug = None;
                }
                let mut disk = None;
                for e in events {
                    match e {
                        Event::DiskAdded(name) => {
                            disk.get_or_insert(name);
                        }
                        Event::DiskRemoved(name) => log::info!("disk {name} was removed"),
                        Event::Modalias(m) => {
                            self.loader.load_for_modalias(&m);
                        }
                    }
                }
                if let Some(name) = disk {
                    return Wake::Disk(name);
                }
                if overrun || broken {
                    return Wake::Rescan;
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
