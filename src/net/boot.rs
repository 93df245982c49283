//! From a lease to boot entries: where the lease points ([`source`], pure and table-tested)
//! and the entries found there ([`discover`], through [`super::source`]'s parsers on a
//! [`NetFs`]).
//!
//! What a lease points at, in this order:
//! 1. a boot file URL (DHCPv6 option 59, or an option 67 that is a URL): that file, whatever
//!    it is (pxelinux or GRUB config, iPXE script, kernel);
//! 2. on a TFTP server (option 66 / `siaddr`, else the DHCP server itself):
//!    - no boot file, a `*.0` boot file (`pxelinux.0`, `lpxelinux.0`), or option 209/210:
//!      pxelinux's configuration search;
//!    - an EFI boot file (`*.efi`: GRUB, or a shim that loads it): GRUB's network
//!      configuration, `grub/grub.cfg` then `grub.cfg` beside it (its `$prefix`);
//!    - any other boot file: that file (an iPXE script, a kernel, a config).

use std::net::IpAddr;

use super::fetch::FetchConfig;
use super::netfs::NetFs;
use super::pxe::PxeClient;
use super::url::Url;
use super::Lease;
use crate::entry::{EntryError, Found};

/// Where a lease says to look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// One file: its kind is told by its content.
    File(Url),
    /// pxelinux's search on a TFTP server.
    Pxelinux {
        /// `tftp://server/`.
        server: Url,
        /// What the search needs of the lease.
        client: PxeClient,
    },
    /// GRUB's network configuration: the first of these that exists.
    Grub(Vec<Url>),
}

fn tftp_root(server: IpAddr) -> Option<Url> {
    let host = match server {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    Url::parse(&format!("tftp://{host}/")).ok()
}

fn uuid_bytes(s: &str) -> Option<[u8; 16]> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// What pxelinux's search knows of `lease`.
pub fn pxe_client(lease: &Lease) -> PxeClient {
    PxeClient {
        mac: super::iface::parse_mac(&lease.mac).unwrap_or_default(),
        ip: match lease.addr {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        },
        uuid: lease.client_uuid.as_deref().and_then(uuid_bytes),
        boot_file: lease.boot_file.clone(),
        config_file_209: lease.pxe_config_file.clone(),
        prefix_210: lease.path_prefix.clone(),
    }
}

/// Where `lease` points, or why it points nowhere.
pub fn source(lease: &Lease) -> Result<Source, String> {
    let file = lease
        .boot_file
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty());
    let url = lease
        .boot_file_url
        .as_deref()
        .or(file.filter(|f| f.contains("://")));
    if let Some(url) = url {
        return Url::parse(url)
            .map(Source::File)
            .map_err(|e| format!("boot file URL {url}: {e}"));
    }
    let Some(server) = lease.next_server.or(lease.server) else {
        return Err("the lease names no boot server and no boot file URL".into());
    };
    let root = tftp_root(server).ok_or_else(|| format!("no TFTP URL for {server}"))?;
    let name = file.map(|f| f.rsplit('/').next().unwrap_or(f).to_ascii_lowercase());
    let pxe = lease.pxe_config_file.is_some() || lease.path_prefix.is_some();
    match name.as_deref() {
        None => Ok(Source::Pxelinux {
            server: root,
            client: pxe_client(lease),
        }),
        Some(n) if pxe || n.ends_with(".0") => Ok(Source::Pxelinux {
            server: root,
            client: pxe_client(lease),
        }),
        Some(n) if n.ends_with(".efi") => {
            let f = file.unwrap_or_default().trim_start_matches('/');
            let dir = f.rsplit_once('/').map_or("", |(d, _)| d);
            let at = |p: &str| {
                let path = if dir.is_empty() {
                    p.to_string()
                } else {
                    format!("{dir}/{p}")
                };
                root.join(&path).ok()
            };
            Ok(Source::Grub(
                [at("grub/grub.cfg"), at("grub.cfg")]
                    .into_iter()
                    .flatten()
                    .collect(),
            ))
        }
        Some(_) => root
            .join(file.unwrap_or_default().trim_start_matches('/'))
            .map(Source::File)
            .map_err(|e| format!("boot file {}: {e}", file.unwrap_or_default())),
    }
}

/// The entries `lease` leads to. `cmdline` is what a bare kernel boots with.
pub fn discover(lease: &Lease, cfg: &FetchConfig, cmdline: &str) -> Found {
    let mut found = follow(lease, cfg, cmdline);
    name_interface(&mut found, &lease.iface);
    found
}

/// Puts the interface in front of every network volume name of `found` (`tftp://10.0.2.2`
/// becomes `eth0 tftp://10.0.2.2`), so that the menu, the details and the logs say which
/// NIC an entry came through; [`super::netfs::url_of`] reads the URL from the last word.
fn name_interface(found: &mut Found, iface: &str) {
    let tag = |volume: &mut String| {
        if volume.contains("://") && !volume.contains(' ') {
            *volume = format!("{iface} {volume}");
        }
    };
    for e in &mut found.entries {
        tag(&mut e.kernel.volume);
        e.initrds.iter_mut().for_each(|f| tag(&mut f.volume));
        if let Some(d) = &mut e.devicetree {
            tag(&mut d.volume);
        }
        tag(&mut e.source.volume);
    }
    found.errors.iter_mut().for_each(|e| tag(&mut e.volume));
}

fn follow(lease: &Lease, cfg: &FetchConfig, cmdline: &str) -> Found {
    let where_ = format!("{} lease", lease.iface);
    match source(lease) {
        Err(e) => Found {
            errors: vec![EntryError {
                volume: lease.iface.clone(),
                file: where_,
                line: None,
                message: e,
            }],
            ..Found::default()
        },
        Ok(Source::File(url)) => {
            log::info!("{}: boot file {url}", lease.iface);
            discover_url(&url, cfg, cmdline, &ipxe_vars(lease))
        }
        Ok(Source::Pxelinux { server, client }) => {
            log::info!("{}: pxelinux configuration search on {server}", lease.iface);
            super::source::discover_pxe(&server, &client, cfg).0
        }
        Ok(Source::Grub(candidates)) => {
            let mut errors = Vec::new();
            for url in candidates {
                let found = discover_url(&url, cfg, cmdline, &ipxe_vars(lease));
                if !found.entries.is_empty() {
                    log::info!("{}: GRUB configuration {url}", lease.iface);
                    return found;
                }
                errors.extend(found.errors);
            }
            Found {
                errors,
                ..Found::default()
            }
        }
    }
}

/// What an iPXE script sees of `lease` (`${net0/mac}`, `${ip}`, `${filename}`,
/// `${next-server}`: the boot server, else the DHCP server; IPv4 only, as iPXE's `siaddr`).
pub fn ipxe_vars(lease: &Lease) -> super::ipxe::Vars {
    let server = lease
        .next_server
        .or(lease.server)
        .filter(IpAddr::is_ipv4)
        .map(|a| a.to_string());
    super::ipxe::Vars::client(&pxe_client(lease), server.as_deref())
}

fn discover_url(url: &Url, cfg: &FetchConfig, cmdline: &str, vars: &super::ipxe::Vars) -> Found {
    let (found, fs): (Found, NetFs) = super::source::discover_url_with(url, cfg, cmdline, vars);
    log::debug!("{}: {} transfer(s)", fs.name(), fs.fetches());
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease() -> Lease {
        Lease {
            iface: "eth0".into(),
            mac: "52:54:00:12:34:56".into(),
            source: "dhcp4",
            addr: Some("10.0.2.15".parse().unwrap()),
            prefix: 24,
            server: Some("10.0.2.2".parse().unwrap()),
            client_uuid: Some("b8945908-d6a6-41a9-611d-74a6ab80b83d".into()),
            ..Lease::default()
        }
    }

    #[test]
    fn network_entries_name_the_interface_they_came_through() {
        let server = Url::parse("tftp://10.0.2.2/").unwrap();
        let fs = NetFs::new(&server, None, FetchConfig::default());
        let mut found = super::super::source::kernel_entry(&fs, "/boot/vmlinuz", "quiet");
        let mut initrd = found.entries[0].kernel.clone();
        initrd.path = "/boot/initrd.img".into();
        found.entries[0].initrds.push(initrd);
        let failed = super::super::source::error_found(&fs, "/boot.ipxe", "timed out".into());
        found.errors = failed.errors;
        name_interface(&mut found, "eth0");
        let e = &found.entries[0];
        assert_eq!(e.kernel.to_string(), "eth0 tftp://10.0.2.2/boot/vmlinuz");
        assert_eq!(
            e.initrds[0].to_string(),
            "eth0 tftp://10.0.2.2/boot/initrd.img"
        );
        assert_eq!(e.source.location(), "eth0 tftp://10.0.2.2/boot/vmlinuz");
        assert_eq!(
            found.errors[0].to_string(),
            "eth0 tftp://10.0.2.2/boot.ipxe: timed out"
        );
        // The loader still finds the server's URL in the tagged name.
        assert_eq!(
            super::super::netfs::url_of(&e.kernel).unwrap().to_string(),
            "tftp://10.0.2.2/boot/vmlinuz"
        );
        // Tagging twice (a lease followed again) does not stack interfaces.
        name_interface(&mut found, "eth1");
        assert_eq!(found.entries[0].kernel.volume, "eth0 tftp://10.0.2.2");
    }

    #[test]
    fn where_a_lease_points() {
        // (what the lease adds, expected)
        type Case = (
            &'static str,
            fn(&mut Lease),
            Result<&'static str, &'static str>,
        );
        let cases: Vec<Case> = vec![
            ("nothing: pxelinux on the DHCP server", |_| {}, Ok("pxe tftp://10.0.2.2/")),
            (
                "pxelinux.0 on the next server",
                |l| {
                    l.next_server = Some("10.0.2.9".parse().unwrap());
                    l.boot_file = Some("debian-installer/amd64/pxelinux.0".into());
                },
                Ok("pxe tftp://10.0.2.9/"),
            ),
            (
                "option 209 makes it pxelinux whatever the boot file",
                |l| {
                    l.boot_file = Some("boot.efi".into());
                    l.pxe_config_file = Some("cfg/x".into());
                },
                Ok("pxe tftp://10.0.2.2/"),
            ),
            (
                "an EFI boot file: GRUB's config beside it",
                |l| l.boot_file = Some("debian-installer/amd64/bootnetx64.efi".into()),
                Ok("grub tftp://10.0.2.2/debian-installer/amd64/grub/grub.cfg tftp://10.0.2.2/debian-installer/amd64/grub.cfg"),
            ),
            (
                "an EFI boot file at the root",
                |l| l.boot_file = Some("/grubx64.efi".into()),
                Ok("grub tftp://10.0.2.2/grub/grub.cfg tftp://10.0.2.2/grub.cfg"),
            ),
            (
                "another boot file is fetched as it is",
                |l| l.boot_file = Some("boot.ipxe".into()),
                Ok("file tftp://10.0.2.2/boot.ipxe"),
            ),
            (
                "a URL as boot file",
                |l| l.boot_file = Some("http://10.0.2.2:8080/boot.ipxe".into()),
                Ok("file http://10.0.2.2:8080/boot.ipxe"),
            ),
            (
                "DHCPv6 option 59 wins",
                |l| {
                    l.boot_file_url = Some("http://[fd00::1]/k".into());
                    l.boot_file = Some("pxelinux.0".into());
                },
                Ok("file http://[fd00::1]/k"),
            ),
            (
                "no server at all",
                |l| l.server = None,
                Err("names no boot server"),
            ),
            (
                "a broken URL",
                |l| l.boot_file_url = Some("gopher://x/".into()),
                Err("boot file URL gopher://x/"),
            ),
        ];
        for (what, change, want) in cases {
            let mut l = lease();
            change(&mut l);
            let got = source(&l).map(|s| match s {
                Source::File(u) => format!("file {}", u.origin() + &u.path),
                Source::Pxelinux { server, .. } => {
                    format!("pxe {}", server.origin() + &server.path)
                }
                Source::Grub(v) => format!(
                    "grub {}",
                    v.iter()
                        .map(|u| u.origin() + &u.path)
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            });
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{what}"),
                (Err(g), Err(w)) => assert!(g.contains(w), "{what}: {g}"),
                (g, w) => panic!("{what}: got {g:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn the_pxe_client_of_a_lease() {
        let c = pxe_client(&lease());
        assert_eq!(c.mac, [0x52, 0x54, 0, 0x12, 0x34, 0x56]);
        assert_eq!(c.ip, Some("10.0.2.15".parse().unwrap()));
        assert_eq!(c.uuid.unwrap()[0], 0xb8);
        assert_eq!(uuid_bytes("nonsense"), None);
    }

    #[test]
    fn an_ipxe_script_from_a_lease_sees_the_clients_values() {
        let mut l = lease();
        l.boot_file = Some("http://10.0.2.2/boot.ipxe".into());
        let v = ipxe_vars(&l);
        let x = |w: &str| super::super::ipxe::expand(w, &v);
        assert_eq!(x("${net0/mac}"), "52:54:00:12:34:56");
        assert_eq!(x("${ip}"), "10.0.2.15");
        assert_eq!(x("${next-server}"), "10.0.2.2");
        assert_eq!(x("${filename}"), "http://10.0.2.2/boot.ipxe");
        l.next_server = Some("10.0.2.3".parse().unwrap());
        assert_eq!(
            super::super::ipxe::expand("${next-server}", &ipxe_vars(&l)),
            "10.0.2.3"
        );
        // DHCPv6: no IPv4 address, no next-server (iPXE's is siaddr).
        let v6 = Lease {
            source: "dhcp6",
            addr: Some("fd00::77".parse().unwrap()),
            server: Some("fd00::2".parse().unwrap()),
            ..lease()
        };
        let v = ipxe_vars(&v6);
        assert_eq!(
            super::super::ipxe::expand("[${ip}|${next-server}|${mac}]", &v),
            "[||52:54:00:12:34:56]"
        );
    }
}
