//! Network boot sources on a running system: `list`/`load`/`reboot` with `--url URL` (one
//! pxelinux or GRUB config, iPXE script or kernel) or `--net` (DHCP on this machine's NICs,
//! then what the leases point to, as `/init` would boot them), so an operator can check a PXE
//! set-up from any Linux box and kexec into what it offers.
//!
//! `--net` leases without configuring anything (the interfaces keep their addresses and
//! routes): the transfers then go out through the system's own routing, so the host must
//! already reach the boot server.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::entry::{BootList, EntryError};
use crate::net::fetch::{self, FetchConfig};
use crate::net::{boot, iface, ipcfg, source, url::Url};

/// Where the network entries come from.
#[derive(Debug, Default, Clone)]
pub struct NetChoice {
    /// One URL.
    pub url: Option<String>,
    /// DHCP on the NICs (`iface`, or every physical NIC with a link).
    pub dhcp: bool,
    /// The NICs for `dhcp`.
    pub iface: Vec<String>,
    /// CA certificates (PEM files) for HTTPS; none: `ca_certificates` of the config file.
    pub ca: Vec<PathBuf>,
    /// How long DHCP may take, in all.
    pub timeout: Duration,
}

impl NetChoice {
    /// Whether any network source is asked for.
    pub fn is_set(&self) -> bool {
        self.url.is_some() || self.dhcp
    }
}

/// What the network offered: the entries (merged in lease order, the host policy not yet
/// applied) and the errors met on the way, each naming the server, file and line.
pub struct Offered {
    /// The entries.
    pub list: BootList,
    /// Problems (unreadable configs, failed leases).
    pub errors: Vec<EntryError>,
}

/// The fetch configuration `choice` asks for, set as the loader's global one too (so a
/// later load fetches with the same CAs). `config_cas` are the config file's.
pub fn fetch_config(choice: &NetChoice, config_cas: Vec<String>) -> FetchConfig {
    let ca = if choice.ca.is_empty() {
        config_cas
    } else {
        choice.ca.iter().map(|p| p.display().to_string()).collect()
    };
    let cfg = FetchConfig::with_ca(ca);
    fetch::set_global(cfg.clone());
    cfg
}

/// What an iPXE script read with `--url` sees of this machine (`${net0/mac}`, `${ip}`,
/// `${next-server}`...): the NIC and IPv4 address its route to the server leaves from, as a
/// client booting from that server would have them. Empty (the script sees unset values)
/// when the server has no IPv4 address or no route.
fn client_vars(url: &Url) -> crate::net::ipxe::Vars {
    use std::net::{IpAddr, ToSocketAddrs, UdpSocket};
    let server = (url.host.trim_matches(|c| c == '[' || c == ']'), url.port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.find(std::net::SocketAddr::is_ipv4));
    // Connecting a UDP socket sends nothing: it only asks the kernel for the route.
    let local = server.and_then(|s| {
        let sock = UdpSocket::bind("0.0.0.0:0").ok()?;
        sock.connect(s).ok()?;
        sock.local_addr().ok()
    });
    let (Some(server), Some(local)) = (server, local) else {
        log::info!(
            "--url {}: no IPv4 route to the server: an iPXE script sees no client values",
            url.host
        );
        return Default::default();
    };
    let IpAddr::V4(ip) = local.ip() else {
        return Default::default();
    };
    let nic = nix::ifaddrs::getifaddrs().ok().and_then(|mut all| {
        all.find(|a| {
            a.address
                .as_ref()
                .and_then(|s| s.as_sockaddr_in())
                .is_some_and(|s| s.ip() == ip)
        })
        .map(|a| a.interface_name)
    });
    let mac = nic
        .as_ref()
        .and_then(|n| std::fs::read_to_string(format!("/sys/class/net/{n}/address")).ok())
        .and_then(|m| iface::parse_mac(m.trim()))
        .unwrap_or_default();
    log::info!(
        "--url: an iPXE script sees this machine as {} {ip} (the route to {})",
        nic.as_deref().unwrap_or("?"),
        server.ip()
    );
    let client = crate::net::pxe::PxeClient {
        mac,
        ip: Some(ip),
        ..Default::default()
    };
    crate::net::ipxe::Vars::client(&client, Some(&server.ip().to_string()))
}

/// Reads what `choice` names. Fails (in words) only when nothing could be asked: a bad URL,
/// no NIC, no lease.
pub fn discover(choice: &NetChoice, cfg: &FetchConfig) -> Result<Offered, String> {
    let mut list = BootList::default();
    let mut errors = Vec::new();
    if let Some(u) = &choice.url {
        let url = Url::parse(u).map_err(|e| format!("--url {u}: {e}"))?;
        let vars = client_vars(&url);
        let (found, fs) = source::discover_url_with(&url, cfg, "", &vars);
        log::debug!("{}: {} transfer(s)", fs.name(), fs.fetches());
        errors.extend(found.errors.iter().cloned());
        list.merge(found);
    }
    if choice.dhcp {
        let nics = iface::list(std::path::Path::new("/sys/class/net"), &choice.iface);
        if nics.is_empty() {
            return Err(
                "--net: no network interface found (name one with --iface; a virtual one must \
                 be named)"
                    .into(),
            );
        }
        let opts = ipcfg::Options {
            timeout: choice.timeout,
            apply: false,
            ..ipcfg::Options::default()
        };
        let cancel = AtomicBool::new(false);
        let progress = |p: ipcfg::Progress| log::info!("{p:?}");
        let leases = ipcfg::bring_up(&nics, &opts, &cancel, &progress);
        if leases.is_empty() {
            return Err(format!(
                "--net: no DHCP lease on {} within {} s: check the cable and the DHCP server \
                 (`leapboot net-lease --debug` shows the exchange)",
                nics.iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                choice.timeout.as_secs()
            ));
        }
        for lease in &leases {
            let found = boot::discover(lease, cfg, "");
            errors.extend(found.errors.iter().cloned());
            list.merge(found);
        }
    }
    Ok(Offered { list, errors })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipxe_script_sees_the_nic_and_address_on_the_route_to_its_server() {
        // Loopback is on every machine: the route to 127.0.0.1 leaves from `lo`.
        let v = client_vars(&Url::parse("http://127.0.0.1:8080/boot.ipxe").unwrap());
        assert_eq!(v.0.get("ip").map(String::as_str), Some("127.0.0.1"));
        assert_eq!(
            v.0.get("net0/mac").map(String::as_str),
            Some("00:00:00:00:00:00")
        );
        assert_eq!(
            v.0.get("next-server").map(String::as_str),
            Some("127.0.0.1")
        );
        assert_eq!(crate::net::ipxe::expand("${net0/ip}", &v), "127.0.0.1");
        // No IPv4 route (an IPv6 literal): nothing is made up.
        assert!(client_vars(&Url::parse("http://[::1]/x").unwrap())
            .0
            .is_empty());
    }

    #[test]
    fn a_bad_url_is_refused_in_words_before_anything_is_fetched() {
        let c = NetChoice {
            url: Some("gopher://x/y".into()),
            ..NetChoice::default()
        };
        let e = discover(&c, &FetchConfig::with_ca(vec![])).err().unwrap();
        assert!(e.starts_with("--url gopher://x/y: "), "{e}");
        assert!(c.is_set() && !NetChoice::default().is_set());
    }

    #[test]
    fn cas_given_on_the_command_line_win_over_the_config_file() {
        let c = NetChoice {
            ca: vec!["/x/ca.pem".into()],
            ..NetChoice::default()
        };
        let cfg = fetch_config(&c, vec!["/etc/ca.pem".into()]);
        assert_eq!(cfg.ca_certificates, vec!["/x/ca.pem".to_string()]);
        let cfg = fetch_config(&NetChoice::default(), vec!["/etc/ca.pem".into()]);
        assert_eq!(cfg.ca_certificates, vec!["/etc/ca.pem".to_string()]);
    }
}
