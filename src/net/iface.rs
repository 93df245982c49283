//! Network interfaces: which NICs there are (sysfs), links up, carrier, addresses, the
//! default route, and sockets bound to one interface.
//!
//! By ioctl (`SIOCSIFFLAGS`, `SIOCSIFADDR`, `SIOCSIFNETMASK`, `SIOCADDRT`, and the IPv6
//! `SIOCSIFADDR` with `in6_ifreq`): a dozen lines each, no netlink library. `lo` is never a
//! NIC; virtual interfaces (no `device` link in sysfs: bridges, veth, tun...) are NICs only
//! when a configured glob names them. Every wait is bounded by a deadline and a cancel flag.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// At most this many interfaces are looked at.
const MAX_IFACES: usize = 256;

/// One network interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nic {
    /// `eth0`, `enp0s3`...
    pub name: String,
    /// The kernel's interface index.
    pub ifindex: u32,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// No `device` in sysfs: a software interface.
    pub is_virtual: bool,
}

/// Lists Ethernet interfaces under `sys_class_net` (`/sys/class/net`), sorted by name:
/// not `lo`, not anything but ARPHRD_ETHER, and virtual ones only when `allow` matches them.
/// A non-empty `allow` also limits the physical ones to the names it matches.
pub fn list(sys_class_net: &Path, allow: &[String]) -> Vec<Nic> {
    let Ok(dir) = fs::read_dir(sys_class_net) else {
        log::warn!(
            "{}: cannot list network interfaces",
            sys_class_net.display()
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in dir.flatten().take(MAX_IFACES) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "lo" || name.len() >= libc::IFNAMSIZ || name.contains(['/', '\0']) {
            continue;
        }
        let p = e.path();
        let read = |f: &str| {
            fs::read_to_string(p.join(f))
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        if read("type") != "1" {
            continue; // not Ethernet (lo, sit, ipip, wireguard...)
        }
        let is_virtual = !p.join("device").exists();
        let allowed = allow.iter().any(|g| crate::glob::matches(g, &name));
        if (is_virtual || !allow.is_empty()) && !allowed {
            continue;
        }
        let Some(mac) = parse_mac(&read("address")) else {
            continue;
        };
        let Ok(ifindex) = read("ifindex").parse() else {
            continue;
        };
        out.push(Nic {
            name,
            ifindex,
            mac,
            is_virtual,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// `52:54:00:12:34:56` → bytes.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    if name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name {name:?}"),
        ));
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in r.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    Ok(r)
}

fn socket(domain: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned by the result.
    let fd = unsafe { libc::socket(domain, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ioctl<T>(fd: &OwnedFd, req: libc::c_ulong, arg: &mut T) -> io::Result<()> {
    // SAFETY: every caller passes the structure its request expects.
    if unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg as *mut T) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets IFF_UP on `name` (no-op if it is up).
pub fn set_up(name: &str) -> io::Result<()> {
    let s = socket(libc::AF_INET)?;
    let mut r = ifreq(name)?;
    ioctl(&s, libc::SIOCGIFFLAGS, &mut r)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member.
    let flags = unsafe { r.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short != 0 {
        return Ok(());
    }
    r.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    ioctl(&s, libc::SIOCSIFFLAGS, &mut r)
}

/// Whether `name` has carrier (`/sys/class/net/<name>/carrier` is 1).
pub fn has_carrier(sys_class_net: &Path, name: &str) -> bool {
    fs::read_to_string(sys_class_net.join(name).join("carrier")).is_ok_and(|s| s.trim() == "1")
}

/// Waits until `name` has carrier, the deadline or `cancel`, polling every 50 ms.
pub fn wait_carrier(
    sys_class_net: &Path,
    name: &str,
    deadline: Instant,
    cancel: &AtomicBool,
) -> bool {
    loop {
        if has_carrier(sys_class_net, name) {
            return true;
        }
        if Instant::now() >= deadline || cancel.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sockaddr4(a: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(a).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size; this is how the API is used.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

/// The prefix length as a netmask.
pub fn prefix_mask(prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(
        u32::MAX
            .checked_shl(32 - u32::from(prefix.min(32)))
            .unwrap_or(0),
    )
}

/// Gives `name` the address `addr/prefix` (replacing its IPv4 address).
pub fn set_ipv4(name: &str, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
    let s = socket(libc::AF_INET)?;
    let mut r = ifreq(name)?;
    r.ifr_ifru.ifru_addr = sockaddr4(addr);
    ioctl(&s, libc::SIOCSIFADDR, &mut r)?;
    let mut r = ifreq(name)?;
    r.ifr_ifru.ifru_netmask = sockaddr4(prefix_mask(prefix));
    ioctl(&s, libc::SIOCSIFNETMASK, &mut r)
}

/// `struct rtentry` (linux/route.h), for SIOCADDRT.
#[repr(C)]
struct RtEntry {
    rt_pad1: libc::c_ulong,
    rt_dst: libc::sockaddr,
    rt_gateway: libc::sockaddr,
    rt_genmask: libc::sockaddr,
    rt_flags: libc::c_ushort,
    rt_pad2: libc::c_short,
    rt_pad3: libc::c_ulong,
    rt_pad4: *mut libc::c_void,
    rt_metric: libc::c_short,
    rt_dev: *mut libc::c_char,
    rt_mtu: libc::c_ulong,
    rt_window: libc::c_ulong,
    rt_irtt: libc::c_ushort,
}

/// Adds a default route through `gw` on `name`; an existing one (EEXIST) is fine.
pub fn add_default_route(name: &str, gw: Ipv4Addr) -> io::Result<()> {
    let s = socket(libc::AF_INET)?;
    let mut dev: Vec<libc::c_char> = name.bytes().map(|b| b as libc::c_char).collect();
    dev.push(0);
    let mut rt = RtEntry {
        rt_pad1: 0,
        rt_dst: sockaddr4(Ipv4Addr::UNSPECIFIED),
        rt_gateway: sockaddr4(gw),
        rt_genmask: sockaddr4(Ipv4Addr::UNSPECIFIED),
        rt_flags: (libc::RTF_UP | libc::RTF_GATEWAY) as libc::c_ushort,
        rt_pad2: 0,
        rt_pad3: 0,
        rt_pad4: std::ptr::null_mut(),
        rt_metric: 0,
        rt_dev: dev.as_mut_ptr(),
        rt_mtu: 0,
        rt_window: 0,
        rt_irtt: 0,
    };
    match ioctl(&s, libc::SIOCADDRT, &mut rt) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        r => r,
    }
}

/// Adds the IPv6 address `addr/prefix` to the interface `ifindex`; EEXIST is fine.
pub fn add_ipv6(ifindex: u32, addr: Ipv6Addr, prefix: u8) -> io::Result<()> {
    let s = socket(libc::AF_INET6)?;
    let mut r = libc::in6_ifreq {
        ifr6_addr: libc::in6_addr {
            s6_addr: addr.octets(),
        },
        ifr6_prefixlen: u32::from(prefix.min(128)),
        ifr6_ifindex: ifindex as libc::c_int,
    };
    match ioctl(&s, libc::SIOCSIFADDR, &mut r) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        r => r,
    }
}

/// The interface's link-local IPv6 address once duplicate address detection is done
/// (`/proc/net/if_inet6`: not tentative), or `None`.
pub fn link_local(if_inet6: &str, ifindex: u32) -> Option<Ipv6Addr> {
    if_inet6.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 6 || u32::from_str_radix(f[1], 16).ok()? != ifindex {
            return None;
        }
        let flags = u32::from_str_radix(f[4], 16).ok()?;
        let hex = f[0];
        if hex.len() != 32 || flags & 0x40 != 0 {
            return None; // IFA_F_TENTATIVE
        }
        let v = u128::from_str_radix(hex, 16).ok()?;
        let a = Ipv6Addr::from(v);
        (a.segments()[0] & 0xffc0 == 0xfe80).then_some(a)
    })
}

/// Waits for a usable link-local address on `ifindex` (DAD takes about a second).
pub fn wait_link_local(ifindex: u32, deadline: Instant, cancel: &AtomicBool) -> Option<Ipv6Addr> {
    loop {
        let Ok(t) = fs::read_to_string("/proc/net/if_inet6") else {
            return None; // no IPv6 in this kernel
        };
        if let Some(a) = link_local(&t, ifindex) {
            return Some(a);
        }
        if Instant::now() >= deadline || cancel.load(Ordering::Relaxed) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn setsockopt<T>(fd: &impl AsRawFd, level: libc::c_int, opt: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: v points at a value of the size given.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn bind_to_device(fd: &impl AsRawFd, name: &str) -> io::Result<()> {
    let r = ifreq(name)?;
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_BINDTODEVICE, &r.ifr_name)
}

fn bound_udp(domain: libc::c_int, name: &str, addr: SocketAddr) -> io::Result<UdpSocket> {
    let fd = socket(domain)?;
    let one: libc::c_int = 1;
    setsockopt(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &one)?;
    if domain == libc::AF_INET {
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_BROADCAST, &one)?;
    } else {
        setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, &one)?;
    }
    bind_to_device(&fd, name)?;
    let sock = UdpSocket::from(fd);
    // std's bind only exists on a fresh socket; bind(2) by hand keeps our options.
    let (storage, len) = sockaddr_storage(addr);
    // SAFETY: storage holds a sockaddr of length len.
    let r = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sock)
}

fn sockaddr_storage(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero sockaddr_storage is valid.
    let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write((&mut st as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&mut st as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (st, len as libc::socklen_t)
}

/// A UDP socket on `0.0.0.0:port` that sends and receives only through `name`, broadcast
/// allowed (DHCPv4 before the interface has an address).
pub fn udp4_socket(name: &str, port: u16) -> io::Result<UdpSocket> {
    bound_udp(
        libc::AF_INET,
        name,
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)),
    )
}

/// A UDP socket on `[::]:port` that sends and receives only through `name` (DHCPv6).
pub fn udp6_socket(name: &str, port: u16) -> io::Result<UdpSocket> {
    bound_udp(
        libc::AF_INET6,
        name,
        SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0)),
    )
}

/// After a failed `recv`: a timeout returns at once (the caller's loop checks its deadline);
/// any other error (the interface went down...) waits 20 ms, so a socket failing at once
/// cannot make the loop spin.
pub fn pause_after(e: &io::Error) {
    if !matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    ) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The system UUID as pxelinux writes it (lower case, dashes) and as the 16 bytes of
/// option 97, from `/sys/class/dmi/id/product_uuid` (root only); `None` without DMI or for
/// the all-zero/all-ones placeholders firmware leaves.
pub fn system_uuid(text: &str) -> Option<(String, [u8; 16])> {
    let t = text.trim().to_ascii_lowercase();
    let hex: String = t.chars().filter(|&c| c != '-').collect();
    if hex.len() != 32 || t.len() != 36 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let v = u128::from_str_radix(&hex, 16).ok()?;
    if v == 0 || v == u128::MAX {
        return None;
    }
    Some((t, v.to_be_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_strictly() {
        assert_eq!(
            parse_mac("52:54:00:12:34:ab"),
            Some([0x52, 0x54, 0, 0x12, 0x34, 0xab])
        );
        assert_eq!(parse_mac("52:54:00:12:34"), None);
        assert_eq!(parse_mac("52:54:00:12:34:ab:cd"), None);
        assert_eq!(parse_mac("5:54:00:12:34:ab"), None);
    }

    #[test]
    fn masks_from_prefixes() {
        assert_eq!(prefix_mask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(prefix_mask(0), Ipv4Addr::UNSPECIFIED);
        assert_eq!(prefix_mask(32), Ipv4Addr::BROADCAST);
        assert_eq!(prefix_mask(99), Ipv4Addr::BROADCAST);
    }

    #[test]
    fn link_local_skips_tentative_and_global_addresses() {
        let t = "fd000000000000000000000000000010 02 80 00 80 eth0\n\
                 fe80000000000000505400fffe123456 02 40 20 c0 eth0\n\
                 fe80000000000000505400fffe654321 03 40 20 80 eth1\n";
        assert_eq!(link_local(t, 2), None, "eth0's is tentative");
        assert_eq!(
            link_local(t, 3),
            Some("fe80::5054:ff:fe65:4321".parse().unwrap())
        );
    }

    #[test]
    fn uuids_from_dmi() {
        let (t, b) = system_uuid("4C4C4544-0042-3510-8052-B4C04F4E3732\n").unwrap();
        assert_eq!(t, "4c4c4544-0042-3510-8052-b4c04f4e3732");
        assert_eq!(b[0..4], [0x4c, 0x4c, 0x45, 0x44]);
        assert_eq!(system_uuid("00000000-0000-0000-0000-000000000000"), None);
        assert_eq!(system_uuid("not a uuid"), None);
    }

    #[test]
    fn lists_nics_from_a_sysfs_tree() {
        let d = tempfile::tempdir().unwrap();
        let mk = |name: &str, ty: &str, mac: &str, idx: &str, dev: bool| {
            let p = d.path().join(name);
            fs::create_dir(&p).unwrap();
            fs::write(p.join("type"), ty).unwrap();
            fs::write(p.join("address"), mac).unwrap();
            fs::write(p.join("ifindex"), idx).unwrap();
            if dev {
                fs::create_dir(p.join("device")).unwrap();
            }
        };
        mk("lo", "772\n", "00:00:00:00:00:00\n", "1\n", false);
        mk("eth0", "1\n", "52:54:00:12:34:56\n", "2\n", true);
        mk("veth0", "1\n", "aa:bb:cc:dd:ee:ff\n", "3\n", false);
        mk("sit0", "776\n", "00:00:00:00\n", "4\n", false);
        let names = |allow: &[&str]| {
            let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
            list(d.path(), &allow)
                .into_iter()
                .map(|n| n.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&[]), ["eth0"]);
        assert_eq!(names(&["veth*"]), ["veth0"]);
        assert_eq!(names(&["veth*", "eth*"]), ["eth0", "veth0"]);
        let eth0 = &list(d.path(), &[])[0];
        assert_eq!(eth0.ifindex, 2);
        assert!(!eth0.is_virtual);
    }
}
