//! The network: interfaces, addresses and the leases that say where to boot from.
//!
//! Everything here is bounded in time (deadlines, cancel flags) and in size (packet
//! buffers, option lengths, counts); every packet decoder is a pure function with a fuzz
//! target. Nothing here decides what to boot: a [`Lease`] is plain data that the fetchers
//! and the PXE/iPXE logic read.
//!
//! Fetching: `url` parses locations, `fetch` holds what every transfer shares (limits,
//! progress, cancel, errors) and dispatches to `tftp` and `http`; `netfs` is a read-only
//! [`BootFs`](crate::fs::BootFs) over a server so the existing parsers read configs from it;
//! `pxe` is pxelinux's config-file search order; `source` turns a URL or a lease into entries.
//!
//! Strings in a [`Lease`] come from the network: control characters are replaced with `?`
//! when decoded, so they are safe to log and show.

use std::net::IpAddr;

use serde::Serialize;

pub mod boot;
pub mod dhcp4;
pub mod dhcp6;
pub mod dns;
pub mod fetch;
pub mod http;
pub mod iface;
pub mod ipcfg;
pub mod ipxe;
pub mod netfs;
pub mod pxe;
pub mod source;
pub mod tftp;
pub mod tls;
pub mod url;

/// What one interface was given: by a DHCPv4 ACK, a DHCPv6 REPLY or a static `ip=`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// The interface (`eth0`).
    pub iface: String,
    /// Its MAC address, `52:54:00:12:34:56` (lower case).
    pub mac: String,
    /// `"dhcp4"`, `"dhcp6"` or `"static"`.
    pub source: &'static str,
    /// The address given (none: the lease carried no usable address).
    pub addr: Option<IpAddr>,
    /// Its prefix length (24 for 255.255.255.0; 128 for a DHCPv6 address).
    pub prefix: u8,
    /// The default gateway (DHCPv4 option 3; DHCPv6 has none, routes come from RAs).
    pub router: Option<IpAddr>,
    /// DNS servers (DHCPv4 option 6, DHCPv6 option 23), at most 8.
    pub dns: Vec<IpAddr>,
    /// The domain (DHCPv4 option 15, or the first of DHCPv6 option 24).
    pub domain: Option<String>,
    /// The DHCP server that gave the lease (option 54 / DHCPv6 server address).
    pub server: Option<IpAddr>,
    /// The boot server: DHCPv4 option 66 when it is an address, else `siaddr` when set.
    pub next_server: Option<IpAddr>,
    /// Option 66 when it is a host name rather than an address (resolve it with [`dns`]).
    pub next_server_name: Option<String>,
    /// The boot file: option 67, else the BOOTP `file` field.
    pub boot_file: Option<String>,
    /// The pxelinux configuration file (option 209).
    pub pxe_config_file: Option<String>,
    /// The pxelinux path prefix (option 210).
    pub path_prefix: Option<String>,
    /// The DHCPv6 boot file URL (option 59).
    pub boot_file_url: Option<String>,
    /// The client UUID sent in option 97 (from `/sys/class/dmi/id/product_uuid`), lower case
    /// with dashes, as pxelinux names `pxelinux.cfg/<uuid>`.
    pub client_uuid: Option<String>,
    /// The lease time in seconds (0: unknown or infinite).
    pub lease_secs: u32,
}

/// `52:54:00:12:34:56`.
pub fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Bytes from the network as a printable string: up to the first NUL, invalid UTF-8 and
/// control characters replaced, at most `max` bytes of input.
pub(crate) fn net_string(bytes: &[u8], max: usize) -> String {
    let bytes = &bytes[..bytes.len().min(max)];
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end])
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Fills `buf` from the kernel's random source (transaction ids); falls back to the clock
/// and the process id, which is enough to tell our exchanges apart on a LAN.
pub(crate) fn random_bytes(buf: &mut [u8]) {
    // SAFETY: getrandom writes at most buf.len() bytes into buf.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), libc::GRND_NONBLOCK) };
    if n != buf.len() as isize {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()).rotate_left(32);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (t.rotate_left((i as u32 * 8) % 64) & 0xff) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_strings_stop_at_nul_and_lose_control_characters() {
        assert_eq!(net_string(b"pxelinux.0\0garbage", 128), "pxelinux.0");
        assert_eq!(net_string(b"a\x1b[2Jb", 128), "a?[2Jb");
        assert_eq!(net_string(b"abcdef", 3), "abc");
        assert_eq!(
            mac_string(&[0x52, 0x54, 0, 0x12, 0x34, 0xab]),
            "52:54:00:12:34:ab"
        );
    }
}
