//! Network discovery in PID 1, beside the disks: a thread brings the NICs up (DHCP or `ip=`),
//! follows each lease to its boot files and sends what it found; the boot loop takes the
//! results when it looks ([`Network::take`]) and never waits for them unless the session's
//! policy says so (`leapboot::session::wait_for_network`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use leapboot::config::Config;
use leapboot::entry::Found;
use leapboot::net::{boot, fetch, iface, ipcfg};

/// The network thread, seen from the boot loop.
pub struct Network {
    rx: Receiver<Found>,
    done: Arc<AtomicBool>,
    /// The latest the thread can take (its own timeouts, plus the transfers' bound).
    pub deadline: Instant,
}

/// Most time the configurations of all leases may take to fetch and parse, after the leases.
const FETCH_BOUND: Duration = Duration::from_secs(60);

impl Network {
    /// Starts the thread, or `None` when there is no network to bring up (no NIC, `ip=off`).
    pub fn start(cmdline: &str, config: &Config) -> Option<Network> {
        let (opts, problems) = ipcfg::Options::from_settings(cmdline, config);
        for p in problems {
            log::warn!("network: {p}");
        }
        if matches!(opts.config, ipcfg::IpConfig::Off) {
            log::info!("network: off (ip=off)");
            return None;
        }
        let nics = iface::list(
            std::path::Path::new("/sys/class/net"),
            &config.net_interfaces,
        );
        if nics.is_empty() {
            log::info!("network: no network interface");
            return None;
        }
        let fetch_cfg = fetch::FetchConfig::with_ca(config.ca_certificates.clone());
        fetch::set_global(fetch_cfg.clone());
        let (tx, rx) = channel();
        let done = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + opts.timeout + FETCH_BOUND;
        let flag = done.clone();
        let names: Vec<String> = nics.iter().map(|n| n.name.clone()).collect();
        log::info!("network: bringing up {}", names.join(" "));
        let spawned = std::thread::Builder::new()
            .name("network".into())
            .spawn(move || {
                let cancel = AtomicBool::new(false);
                let started = Instant::now();
                let progress = |p: ipcfg::Progress| log::debug!("network: {p:?}");
                let leases = ipcfg::bring_up(&nics, &opts, &cancel, &progress);
                if leases.is_empty() {
                    log::warn!(
                        "network: no lease on {} after {} ms",
                        names.join(" "),
                        started.elapsed().as_millis()
                    );
                }
                for lease in &leases {
                    log::info!(
                        "network: {} {} lease {} in {} ms (server {}, boot file {})",
                        lease.iface,
                        lease.source,
                        lease.addr.map_or("without an address".into(), |a| format!(
                            "{a}/{}",
                            lease.prefix
                        )),
                        started.elapsed().as_millis(),
                        lease
                            .next_server
                            .or(lease.server)
                            .map_or("none".into(), |s| s.to_string()),
                        lease
                            .boot_file_url
                            .as_deref()
                            .or(lease.boot_file.as_deref())
                            .unwrap_or("none"),
                    );
                    let found = boot::discover(lease, &fetch_cfg, "");
                    if tx.send(found).is_err() {
                        break;
                    }
                }
                flag.store(true, Ordering::Release);
            });
        if let Err(e) = spawned {
            log::error!("network: cannot start its thread: {e}");
            return None;
        }
        Some(Network { rx, done, deadline })
    }

    /// What was found since the last call.
    pub fn take(&mut self) -> Vec<Found> {
        let mut out = Vec::new();
        loop {
            match self.rx.try_recv() {
                Ok(f) => out.push(f),
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => return out,
            }
        }
    }

    /// Whether more may come.
    pub fn pending(&self) -> bool {
        !self.done.load(Ordering::Acquire) && Instant::now() < self.deadline
    }

    /// Whether the thread has ended (every lease followed, or none came).
    pub fn finished(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}
