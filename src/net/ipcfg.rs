//! How interfaces get their addresses: the kernel's `ip=` syntax, applying a lease, and
//! [`bring_up`], which configures every NIC with a link in parallel within one bound.
//!
//! `ip=` follows Documentation/admin-guide/nfs/nfsroot.rst:
//! `ip=<client-ip>:<server-ip>:<gw-ip>:<netmask>:<hostname>:<device>:<autoconf>:<dns0-ip>:<dns1-ip>:<ntp0-ip>`,
//! or one of `off`/`none`/`on`/`any`/`dhcp`/`bootp`/`rarp`/`both` alone, plus `dhcp6` (as
//! dracut). A client address makes the configuration static (as the kernel does: it only
//! autoconfigures without one); without one, `off`/`none` is no network and anything else
//! is DHCPv4 (`dhcp6`: DHCPv6). `bootp` and `rarp` are served by DHCP (a DHCP server answers
//! BOOTP clients; RARP is not implemented). An IPv6 address may be written in brackets.
//! With no `ip=` at all, DHCPv4 and DHCPv6 both run (as u-root's `pxeboot` does): a lease
//! that says what to boot wins at once; one that does not waits [`BOTH_GRACE`] for the
//! other family's.

use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::iface::{self, Nic};
use super::{dhcp4, dhcp6, Lease};

/// What `ip=` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpConfig {
    /// No network configuration (`ip=off`, `ip=none`).
    Off,
    /// Autoconfiguration on `iface` (all NICs when `None`).
    Auto {
        /// The device field.
        iface: Option<String>,
        /// DHCPv4.
        v4: bool,
        /// DHCPv6.
        v6: bool,
    },
    /// Static addresses.
    Static(Static),
}

/// A static configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Static {
    /// The client address.
    pub addr: IpAddr,
    /// Its prefix (from the netmask; classful for IPv4 without one, 64 for IPv6).
    pub prefix: u8,
    /// The NFS/boot server (`server-ip`).
    pub server: Option<IpAddr>,
    /// The gateway.
    pub gateway: Option<IpAddr>,
    /// The host name.
    pub hostname: Option<String>,
    /// The device (the first NIC with a link when `None`).
    pub iface: Option<String>,
    /// DNS servers (dns0, dns1).
    pub dns: Vec<IpAddr>,
    /// The NTP server (kept, not used).
    pub ntp: Option<IpAddr>,
}

impl Default for IpConfig {
    /// DHCPv4 and DHCPv6 on every NIC.
    fn default() -> Self {
        IpConfig::Auto {
            iface: None,
            v4: true,
            v6: true,
        }
    }
}

/// Splits on `:` outside `[...]`.
fn fields(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn addr(field: &str, what: &str) -> Result<Option<IpAddr>, String> {
    let f = field.trim_start_matches('[').trim_end_matches(']');
    if f.is_empty() {
        return Ok(None);
    }
    f.parse()
        .map(Some)
        .map_err(|_| format!("ip=: {what} {field:?} is not an address"))
}

/// Parses the value of `ip=` (without `ip=`).
pub fn parse(value: &str) -> Result<IpConfig, String> {
    if value.len() > 512 {
        return Err("ip=: the value is longer than 512 bytes".into());
    }
    let auto = |proto: &str, iface: Option<String>| -> Result<IpConfig, String> {
        Ok(match proto {
            "off" | "none" => IpConfig::Off,
            "" | "on" | "any" | "dhcp" | "bootp" | "rarp" | "both" => IpConfig::Auto {
                iface,
                v4: true,
                v6: false,
            },
            "dhcp6" => IpConfig::Auto {
                iface,
                v4: false,
                v6: true,
            },
            other => {
                return Err(format!(
                    "ip=: unknown autoconf {other:?} (use off, none, on, any, dhcp, dhcp6, bootp, rarp or both)"
                ))
            }
        })
    };
    let f = fields(value);
    if f.len() == 1 && !value.contains(['.', '[']) && value.parse::<IpAddr>().is_err() {
        return auto(value, None);
    }
    if f.len() > 10 {
        return Err(format!("ip=: {} fields, at most 10", f.len()));
    }
    let get = |i: usize| f.get(i).copied().unwrap_or("");
    let iface = Some(get(5).to_string()).filter(|s| !s.is_empty());
    let Some(client) = addr(get(0), "client-ip")? else {
        return auto(get(6), iface);
    };
    // The netmask field: a dotted mask, or (dracut, and the only form for IPv6) a prefix
    // length.
    let mask = get(3);
    let prefix = if mask.is_empty() {
        match client {
            IpAddr::V4(a) => dhcp4::classful_prefix(a),
            IpAddr::V6(_) => 64,
        }
    } else if let Ok(p) = mask.parse::<u8>() {
        let max = if client.is_ipv4() { 32 } else { 128 };
        if p > max {
            return Err(format!("ip=: prefix length {p} is over {max}"));
        }
        p
    } else {
        match (client, addr(mask, "netmask")?) {
            (IpAddr::V4(_), Some(IpAddr::V4(m))) => dhcp4::mask_prefix(m)
                .ok_or_else(|| format!("ip=: netmask {m} is not contiguous"))?,
            _ => return Err(format!("ip=: netmask {mask:?} does not fit the address")),
        }
    };
    let mut dns = Vec::new();
    for (i, what) in [(7, "dns0-ip"), (8, "dns1-ip")] {
        dns.extend(addr(get(i), what)?);
    }
    Ok(IpConfig::Static(Static {
        addr: client,
        prefix,
        server: addr(get(1), "server-ip")?,
        gateway: addr(get(2), "gw-ip")?,
        hostname: Some(super::net_string(get(4).as_bytes(), 64)).filter(|s| !s.is_empty()),
        iface,
        dns,
        ntp: addr(get(9), "ntp0-ip")?,
    }))
}

/// The last `ip=` of a kernel command line (the kernel uses the last one too).
pub fn from_cmdline(cmdline: &str) -> Option<Result<IpConfig, String>> {
    cmdline
        .split_ascii_whitespace()
        .filter_map(|w| w.strip_prefix("ip="))
        .next_back()
        .map(parse)
}

impl Static {
    /// The lease this configuration amounts to on `nic`.
    pub fn lease(&self, nic: &Nic) -> Lease {
        Lease {
            iface: nic.name.clone(),
            mac: super::mac_string(&nic.mac),
            source: "static",
            addr: Some(self.addr),
            prefix: self.prefix,
            router: self.gateway,
            dns: self.dns.clone(),
            next_server: self.server,
            ..Lease::default()
        }
    }
}

/// Configures `lease.iface` with the lease's address (and the default route for IPv4).
pub fn apply(lease: &Lease, ifindex: u32) -> Result<(), String> {
    let name = &lease.iface;
    match lease.addr {
        Some(IpAddr::V4(a)) => {
            iface::set_ipv4(name, a, lease.prefix)
                .map_err(|e| format!("{name}: setting address {a}/{}: {e}", lease.prefix))?;
            if let Some(IpAddr::V4(gw)) = lease.router {
                iface::add_default_route(name, gw)
                    .map_err(|e| format!("{name}: default route via {gw}: {e}"))?;
            }
        }
        Some(IpAddr::V6(a)) => iface::add_ipv6(ifindex, a, lease.prefix)
            .map_err(|e| format!("{name}: adding address {a}/{}: {e}", lease.prefix))?,
        None => return Err(format!("{name}: the lease has no address")),
    }
    Ok(())
}

/// What [`bring_up`] reports while it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The NIC has no carrier within the bound (skipped).
    NoCarrier(String),
    /// A DHCPv4 step.
    Dhcp4(String, dhcp4::Event),
    /// A DHCPv6 step.
    Dhcp6(String, dhcp6::Event),
    /// A lease (and whether it was applied).
    Lease(Box<Lease>),
    /// A NIC failed (the message says why and what to check).
    Failed(String, String),
}

/// Options of [`bring_up`].
#[derive(Clone, Debug)]
pub struct Options {
    /// What to do.
    pub config: IpConfig,
    /// Everything ends by then: carrier waits, DHCP retries, every thread.
    pub timeout: Duration,
    /// How long to wait for carrier after link up (within `timeout`).
    pub carrier_timeout: Duration,
    /// Configure the interfaces with what was leased (false: only report leases).
    pub apply: bool,
    /// The RFC 4578 architecture sent (see [`dhcp4::native_arch`]).
    pub arch: u16,
    /// `/sys/class/dmi/id/product_uuid`'s content, for option 97.
    pub uuid: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config: IpConfig::default(),
            timeout: Duration::from_secs(30),
            carrier_timeout: Duration::from_secs(5),
            apply: true,
            arch: dhcp4::native_arch(),
            uuid: std::fs::read_to_string("/sys/class/dmi/id/product_uuid").ok(),
        }
    }
}

impl Options {
    /// The options `/etc/leapboot.toml` and the kernel command line give (`ip=` on the
    /// command line wins over the file's `ip`); a bad `ip=` is returned as a problem and
    /// the default (DHCPv4 and DHCPv6) is used.
    pub fn from_settings(cmdline: &str, cfg: &crate::config::Config) -> (Options, Vec<String>) {
        let mut problems = Vec::new();
        let mut o = Options::default();
        let ip = match from_cmdline(cmdline) {
            Some(r) => Some(r.map_err(|e| format!("kernel command line: {e}"))),
            None => cfg.ip.as_deref().map(parse),
        };
        match ip {
            Some(Ok(c)) => o.config = c,
            Some(Err(e)) => problems.push(format!("{e}; using DHCPv4 and DHCPv6")),
            None => {}
        }
        if let Some(ms) = cfg.net_timeout_ms {
            o.timeout = Duration::from_millis(ms.min(600_000));
        }
        if let Some(a) = cfg.pxe_arch {
            o.arch = a;
        }
        (o, problems)
    }
}

/// Brings the `nics` up and configures them as `opts.config` says, all in parallel: each
/// NIC's link goes up, waits for carrier (`carrier_timeout`), then runs DHCPv4 and/or
/// DHCPv6 (both in parallel when both are asked; the first lease per NIC wins) or takes the
/// static address. Returns the first good lease of each NIC, in NIC order. Returns by
/// `opts.timeout` (plus at most ~150 ms of polling), or soon after `cancel` is set; never
/// panics on a NIC's failure: it is reported through `progress` and the log.
pub fn bring_up(
    nics: &[Nic],
    opts: &Options,
    cancel: &AtomicBool,
    progress: &(dyn Fn(Progress) + Sync),
) -> Vec<Lease> {
    let deadline = Instant::now() + opts.timeout;
    let (chosen, wanted_iface) = match &opts.config {
        IpConfig::Off => return Vec::new(),
        IpConfig::Auto { iface, .. } => (nics.to_vec(), iface.clone()),
        IpConfig::Static(s) => (nics.to_vec(), s.iface.clone()),
    };
    let chosen: Vec<Nic> = chosen
        .into_iter()
        .filter(|n| wanted_iface.as_ref().is_none_or(|w| *w == n.name))
        .collect();
    if chosen.is_empty() {
        progress(Progress::Failed(
            wanted_iface.unwrap_or_else(|| "network".into()),
            "no such network interface (is its driver loaded?)".into(),
        ));
        return Vec::new();
    }
    let uuid = opts.uuid.as_deref().and_then(iface::system_uuid);
    let (tx, rx) = mpsc::channel::<(usize, Lease)>();
    // A static configuration without a device goes to the first NIC with a link only.
    let static_taken = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for (i, nic) in chosen.iter().enumerate() {
            let tx = tx.clone();
            let uuid = uuid.clone();
            let static_taken = &static_taken;
            scope.spawn(move || {
                let fail = |msg: String| {
                    log::warn!("{}: {msg}", nic.name);
                    progress(Progress::Failed(nic.name.clone(), msg));
                };
                if let Err(e) = iface::set_up(&nic.name) {
                    fail(format!("cannot bring the link up: {e}"));
                    return;
                }
                let sys = Path::new("/sys/class/net");
                let carrier_by = (Instant::now() + opts.carrier_timeout).min(deadline);
                if !iface::wait_carrier(sys, &nic.name, carrier_by, cancel) {
                    log::info!("{}: no carrier (no cable or link down); skipped", nic.name);
                    progress(Progress::NoCarrier(nic.name.clone()));
                    return;
                }
                let lease = match &opts.config {
                    IpConfig::Off => return,
                    IpConfig::Static(s) => {
                        if s.iface.is_none() && static_taken.swap(true, Ordering::SeqCst) {
                            return;
                        }
                        Some(s.lease(nic))
                    }
                    IpConfig::Auto { v4, v6, .. } => {
                        dhcp(nic, *v4, *v6, uuid, opts, deadline, cancel, progress)
                    }
                };
                let Some(lease) = lease else { return };
                if opts.apply {
                    if let Err(e) = apply(&lease, nic.ifindex) {
                        fail(e);
                        return;
                    }
                }
                progress(Progress::Lease(Box::new(lease.clone())));
                let _ = tx.send((i, lease));
            });
        }
    });
    drop(tx);
    let mut got: Vec<(usize, Lease)> = rx.into_iter().collect();
    got.sort_by_key(|(i, _)| *i);
    got.into_iter().map(|(_, l)| l).collect()
}

/// How long, with both DHCPv4 and DHCPv6 running, a lease that names no boot file waits for
/// the other family's (a dual-stack network may PXE-boot over either; DHCPv6 needs its
/// link-local address first: 2.6 s in QEMU).
pub const BOTH_GRACE: Duration = Duration::from_secs(5);

/// Whether `lease` says what to boot (a boot file, a boot file URL or a pxelinux config).
pub fn names_a_boot_file(lease: &Lease) -> bool {
    lease.boot_file.is_some() || lease.boot_file_url.is_some() || lease.pxe_config_file.is_some()
}

/// The lease a NIC keeps of those it got, in arrival order: the first that names a boot
/// file, else the first.
pub fn choose(leases: Vec<Lease>) -> Option<Lease> {
    let i = leases.iter().position(names_a_boot_file).unwrap_or(0);
    leases.into_iter().nth(i)
}

/// DHCPv4 and/or DHCPv6 on one NIC. With both, a lease that names a boot file wins and
/// stops the other; one that does not lets the other go on for [`BOTH_GRACE`] ([`choose`]
/// picks). `cancel` is mirrored into the clients' own stop flag every 20 ms.
#[allow(clippy::too_many_arguments)]
fn dhcp(
    nic: &Nic,
    v4: bool,
    v6: bool,
    uuid: Option<(String, [u8; 16])>,
    opts: &Options,
    deadline: Instant,
    cancel: &AtomicBool,
    progress: &(dyn Fn(Progress) + Sync),
) -> Option<Lease> {
    let stop = AtomicBool::new(false);
    let running = AtomicUsize::new(usize::from(v4) + usize::from(v6));
    // When a lease naming no boot file came while the other family still ran.
    let undecided = std::sync::Mutex::new(None::<Instant>);
    let (tx, rx) = mpsc::channel::<Lease>();
    let report = |r: Result<Lease, String>| {
        match r {
            Ok(l) => {
                if names_a_boot_file(&l) || !(v4 && v6) {
                    stop.store(true, Ordering::SeqCst);
                } else if let Ok(mut u) = undecided.lock() {
                    if u.is_none() {
                        log::info!(
                            "{}: the {} lease names no boot file; waiting up to {} s for the {} one",
                            nic.name,
                            l.source,
                            BOTH_GRACE.as_secs(),
                            if l.source == "dhcp4" { "DHCPv6" } else { "DHCPv4" }
                        );
                        *u = Some(Instant::now());
                    }
                }
                let _ = tx.send(l);
            }
            Err(e) if e.is_empty() => {} // cancelled
            Err(e) => {
                log::warn!("{e}");
                progress(Progress::Failed(nic.name.clone(), e));
            }
        }
        running.fetch_sub(1, Ordering::SeqCst);
    };
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while running.load(Ordering::SeqCst) > 0 {
                let waited = undecided
                    .lock()
                    .ok()
                    .and_then(|u| *u)
                    .is_some_and(|t| t.elapsed() >= BOTH_GRACE);
                if cancel.load(Ordering::Relaxed) || waited {
                    stop.store(true, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        if v4 {
            let uuid = uuid.clone();
            scope.spawn(|| {
                let client = dhcp4::ClientInfo {
                    mac: nic.mac,
                    uuid: uuid.as_ref().map(|u| u.1),
                    arch: opts.arch,
                };
                let p = |e| progress(Progress::Dhcp4(nic.name.clone(), e));
                let text = uuid.map(|u| u.0);
                report(
                    match dhcp4::acquire(&nic.name, &client, text, deadline, &stop, &p) {
                        Ok(l) => Ok(l),
                        Err(dhcp4::Error::Cancelled(_)) => Err(String::new()),
                        Err(e) => Err(e.to_string()),
                    },
                );
            });
        }
        if v6 {
            scope.spawn(|| {
                let client = dhcp6::ClientInfo {
                    mac: nic.mac,
                    arch: opts.arch,
                };
                let p = |e| progress(Progress::Dhcp6(nic.name.clone(), e));
                report(
                    match dhcp6::acquire(&nic.name, nic.ifindex, &client, deadline, &stop, &p) {
                        Ok(l) => Ok(l),
                        Err(dhcp6::Error::Cancelled(_)) => Err(String::new()),
                        Err(e) => Err(e.to_string()),
                    },
                );
            });
        }
    });
    drop(tx);
    choose(rx.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn st(addr: &str, prefix: u8) -> Static {
        Static {
            addr: addr.parse().unwrap(),
            prefix,
            server: None,
            gateway: None,
            hostname: None,
            iface: None,
            dns: Vec::new(),
            ntp: None,
        }
    }

    #[test]
    fn the_kernel_forms() {
        assert_eq!(parse("off"), Ok(IpConfig::Off));
        assert_eq!(parse("none"), Ok(IpConfig::Off));
        let v4 = IpConfig::Auto {
            iface: None,
            v4: true,
            v6: false,
        };
        for p in ["dhcp", "on", "any", "bootp", "rarp", "both"] {
            assert_eq!(parse(p), Ok(v4.clone()), "{p}");
        }
        // Only no ip= at all is dual-stack.
        assert_eq!(
            IpConfig::default(),
            IpConfig::Auto {
                iface: None,
                v4: true,
                v6: true
            }
        );
        assert_eq!(
            parse("dhcp6"),
            Ok(IpConfig::Auto {
                iface: None,
                v4: false,
                v6: true
            })
        );
        assert!(parse("dhcp7").unwrap_err().contains("dhcp7"));
    }

    #[test]
    fn static_with_gateway_mask_and_device() {
        let mut want = st("10.0.2.15", 24);
        want.gateway = Some("10.0.2.2".parse().unwrap());
        want.iface = Some("eth0".into());
        assert_eq!(
            parse("10.0.2.15::10.0.2.2:255.255.255.0::eth0:off"),
            Ok(IpConfig::Static(want.clone()))
        );
        want.server = Some("10.0.2.4".parse().unwrap());
        want.hostname = Some("node7".into());
        want.dns = vec!["10.0.2.3".parse().unwrap(), "1.1.1.1".parse().unwrap()];
        want.ntp = Some("10.0.2.5".parse().unwrap());
        assert_eq!(
            parse("10.0.2.15:10.0.2.4:10.0.2.2:255.255.255.0:node7:eth0:none:10.0.2.3:1.1.1.1:10.0.2.5"),
            Ok(IpConfig::Static(want))
        );
    }

    #[test]
    fn missing_fields_take_the_kernel_defaults() {
        assert_eq!(parse("10.1.2.3"), Ok(IpConfig::Static(st("10.1.2.3", 8))));
        assert_eq!(
            parse("172.16.0.9:::::"),
            Ok(IpConfig::Static(st("172.16.0.9", 16)))
        );
        assert_eq!(
            parse("192.168.1.9"),
            Ok(IpConfig::Static(st("192.168.1.9", 24)))
        );
        assert_eq!(
            parse(":::::eth1:dhcp"),
            Ok(IpConfig::Auto {
                iface: Some("eth1".into()),
                v4: true,
                v6: false
            })
        );
        assert_eq!(
            parse(":::::eth1:dhcp6"),
            Ok(IpConfig::Auto {
                iface: Some("eth1".into()),
                v4: false,
                v6: true
            })
        );
        assert_eq!(parse(":::::eth1:off"), Ok(IpConfig::Off));
    }

    #[test]
    fn ipv6_in_brackets() {
        let mut want = st("fd00::5", 64);
        want.gateway = Some("fd00::1".parse().unwrap());
        assert_eq!(
            parse("[fd00::5]::[fd00::1]:64::"),
            Ok(IpConfig::Static(want.clone()))
        );
        want.prefix = 64;
        assert_eq!(parse("[fd00::5]::[fd00::1]:::"), Ok(IpConfig::Static(want)));
    }

    #[test]
    fn bad_values_are_named() {
        assert!(parse("10.0.2.x").unwrap_err().contains("client-ip"));
        assert!(parse("10.0.2.15::10.0.2.2:255.0.255.0::eth0:off")
            .unwrap_err()
            .contains("not contiguous"));
        assert!(parse("10.0.2.15::::::off:1.2.3.4:5.6.7.8:9.9.9.9:extra")
            .unwrap_err()
            .contains("at most 10"));
        assert!(parse("10.0.2.15:::::::nonsense")
            .unwrap_err()
            .contains("dns0"));
    }

    #[test]
    fn the_last_ip_on_the_command_line_wins() {
        assert_eq!(
            from_cmdline("quiet ip=off root=/dev/vda ip=dhcp6"),
            parse("dhcp6").map(Some).transpose()
        );
        assert_eq!(from_cmdline("quiet"), None);
    }

    #[test]
    fn bring_up_ends_at_once_when_off_or_nothing_matches() {
        let nic = Nic {
            name: "nonexistent0".into(),
            ifindex: 999,
            mac: [2, 0, 0, 0, 0, 1],
            is_virtual: false,
        };
        let cancel = AtomicBool::new(false);
        let seen = std::sync::Mutex::new(Vec::new());
        let p = |e: Progress| seen.lock().unwrap().push(e);
        let mut o = Options {
            config: IpConfig::Off,
            timeout: Duration::from_secs(2),
            ..Options::default()
        };
        assert!(bring_up(std::slice::from_ref(&nic), &o, &cancel, &p).is_empty());
        o.config = IpConfig::Auto {
            iface: Some("eth9".into()),
            v4: true,
            v6: false,
        };
        assert!(bring_up(std::slice::from_ref(&nic), &o, &cancel, &p).is_empty());
        o.config = IpConfig::default();
        let t = Instant::now();
        assert!(bring_up(&[nic], &o, &cancel, &p).is_empty());
        assert!(t.elapsed() < Duration::from_secs(3));
        let seen = seen.lock().unwrap();
        assert!(matches!(&seen[0], Progress::Failed(n, m) if n == "eth9" && m.contains("no such")));
        assert!(
            matches!(&seen[1], Progress::Failed(n, m) if n == "nonexistent0" && m.contains("link up"))
        );
    }

    #[test]
    fn the_command_line_wins_over_the_file() {
        let (cfg, _) =
            crate::config::Config::parse("ip = \"dhcp6\"\nnet_timeout_ms = 5000\npxe_arch = 0\n");
        let (o, p) = Options::from_settings("quiet", &cfg);
        assert!(p.is_empty());
        assert!(matches!(
            o.config,
            IpConfig::Auto {
                v6: true,
                v4: false,
                ..
            }
        ));
        assert_eq!((o.timeout, o.arch), (Duration::from_secs(5), 0));
        let (o, _) = Options::from_settings("ip=off", &cfg);
        assert_eq!(o.config, IpConfig::Off);
        let (o, p) = Options::from_settings("ip=1.2.3", &cfg);
        assert_eq!(o.config, IpConfig::default());
        assert!(
            p[0].contains("kernel command line") && p[0].contains("using DHCPv4 and DHCPv6"),
            "{p:?}"
        );
    }

    #[test]
    fn a_lease_naming_a_boot_file_is_kept_over_an_earlier_one_that_does_not() {
        let lease = |source, boot: Option<&str>| Lease {
            source,
            boot_file: boot.map(str::to_string),
            ..Lease::default()
        };
        let plain4 = lease("dhcp4", None);
        let url6 = Lease {
            boot_file_url: Some("http://[fd00::2]/boot.ipxe".into()),
            ..lease("dhcp6", None)
        };
        assert_eq!(
            choose(vec![plain4.clone(), url6.clone()]),
            Some(url6.clone())
        );
        // Otherwise the first that came.
        let plain6 = lease("dhcp6", None);
        assert_eq!(choose(vec![plain6.clone(), plain4.clone()]), Some(plain6));
        let pxe4 = lease("dhcp4", Some("pxelinux.0"));
        assert_eq!(choose(vec![pxe4.clone(), url6]), Some(pxe4));
        let cfg209 = Lease {
            pxe_config_file: Some("pxelinux.cfg/x".into()),
            ..plain4.clone()
        };
        assert!(names_a_boot_file(&cfg209));
        assert!(!names_a_boot_file(&plain4));
        assert_eq!(choose(Vec::new()), None);
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in "[0-9a-f:.\\[\\]dhcpofnex]{0,80}") {
            let _ = parse(&s);
        }
    }
}
