//! Kernel uevents: the `NETLINK_KOBJECT_UEVENT` listener and its message parser.
//!
//! The kernel broadcasts one datagram per device event to multicast group 1:
//! `ACTION@DEVPATH\0KEY=VALUE\0KEY=VALUE\0...`. [`parse`] reads one (bounded: at most
//! [`MAX_MESSAGE`] bytes and [`MAX_KEYS`] keys, never panics on garbage); [`Hotplug`] owns the
//! socket, exposes its fd for `poll`, and [`Hotplug::drain`] turns what arrived into the few
//! [`Event`]s leapboot acts on: a whole disk added or removed, a device with a `MODALIAS`.
//!
//! What it does not do: load modules (see [`crate::kmod`]), read the disks, or listen to udev's
//! re-broadcasts (`libudev` messages on group 2; there is no udev in leapboot's initramfs).
//! Partitions are not events: a disk's partitions are read from its own table.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::is_ignored_name;

/// The kernel's uevent buffer is 2048 bytes; anything much longer is not from the kernel.
pub const MAX_MESSAGE: usize = 8192;
/// The kernel sends at most 64 environment keys per event (`UEVENT_NUM_ENVP`).
pub const MAX_KEYS: usize = 64;
/// Datagrams read per [`Hotplug::drain`] call, so one flood cannot stall the caller.
const MAX_PER_DRAIN: usize = 1024;

/// What happened to a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `add`
    Add,
    /// `remove`
    Remove,
    /// `change`, `move`, `online`, `offline`, `bind`, `unbind`: nothing leapboot acts on.
    Other,
}

/// One parsed kernel uevent (the keys leapboot reads; the others are skipped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uevent {
    /// `ACTION`.
    pub action: Action,
    /// `DEVPATH`, below /sys (`/devices/pci0000:00/.../block/vda`).
    pub devpath: String,
    /// `SUBSYSTEM` (`block`, `pci`, `usb`, `scsi`, `virtio`...).
    pub subsystem: String,
    /// `DEVNAME` (`vda`), for devices with a node.
    pub devname: Option<String>,
    /// `DEVTYPE` (`disk`, `partition`, `usb_interface`...).
    pub devtype: Option<String>,
    /// `MODALIAS`, for devices a driver module can bind.
    pub modalias: Option<String>,
}

/// Parses one datagram. `None` for anything that is not a well-formed kernel uevent
/// (udev's `libudev` messages, truncated or oversized data, a missing `ACTION`/`DEVPATH`).
pub fn parse(msg: &[u8]) -> Option<Uevent> {
    if msg.len() > MAX_MESSAGE {
        return None;
    }
    let mut fields = msg.split(|&b| b == 0);
    // The header: `ACTION@DEVPATH`. It must agree with the ACTION and DEVPATH keys.
    let header = std::str::from_utf8(fields.next()?).ok()?;
    let (h_action, h_devpath) = header.split_once('@')?;
    let mut action = None;
    let mut devpath = None;
    let mut subsystem = None;
    let mut devname = None;
    let mut devtype = None;
    let mut modalias = None;
    for (i, field) in fields.filter(|f| !f.is_empty()).enumerate() {
        if i >= MAX_KEYS {
            return None;
        }
        let Ok(field) = std::str::from_utf8(field) else {
            continue;
        };
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        let slot = match key {
            "ACTION" => &mut action,
            "DEVPATH" => &mut devpath,
            "SUBSYSTEM" => &mut subsystem,
            "DEVNAME" => &mut devname,
            "DEVTYPE" => &mut devtype,
            "MODALIAS" => &mut modalias,
            _ => continue,
        };
        *slot = Some(value.to_string());
    }
    let action_s = action?;
    let devpath = devpath?;
    if action_s != h_action || devpath != h_devpath || !devpath.starts_with('/') {
        return None;
    }
    let action = match action_s.as_str() {
        "add" => Action::Add,
        "remove" => Action::Remove,
        _ => Action::Other,
    };
    Some(Uevent {
        action,
        devpath,
        subsystem: subsystem.unwrap_or_default(),
        // DEVNAME may be a path below /dev (`bus/usb/001/002`); a disk's is a plain name.
        devname,
        devtype,
        modalias: modalias.filter(|m| !m.is_empty()),
    })
}

/// What leapboot acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A whole disk appeared (`vdb`, `sda`, `nvme0n1`).
    DiskAdded(String),
    /// A whole disk went away.
    DiskRemoved(String),
    /// A device a module may drive was added: its `MODALIAS`.
    Modalias(String),
}

/// The events of one uevent (a disk add is never also a modalias: block devices have none).
/// ram/loop/zram disks are left out unless `include_virtual`.
pub fn events_of(u: &Uevent, include_virtual: bool) -> Vec<Event> {
    let mut out = Vec::new();
    if u.action == Action::Add {
        if let Some(m) = &u.modalias {
            out.push(Event::Modalias(m.clone()));
        }
    }
    if u.subsystem == "block" && u.devtype.as_deref() == Some("disk") {
        // DEVNAME is the node name; fall back to the last DEVPATH component.
        let name = u
            .devname
            .clone()
            .or_else(|| u.devpath.rsplit('/').next().map(str::to_string))
            .unwrap_or_default();
        let plain = !name.is_empty() && !name.contains('/') && name != "." && name != "..";
        if plain && (include_virtual || !is_ignored_name(&name)) {
            match u.action {
                Action::Add => out.push(Event::DiskAdded(name)),
                Action::Remove => out.push(Event::DiskRemoved(name)),
                Action::Other => {}
            }
        }
    }
    out
}

/// The uevent listener: a non-blocking netlink socket bound to the kernel's multicast group.
/// Open it before the first sysfs scan so no device falls between the two.
#[derive(Debug)]
pub struct Hotplug {
    fd: OwnedFd,
    include_virtual: bool,
    buf: Vec<u8>,
    broken: bool,
}

impl Hotplug {
    /// Opens the socket. Fails on kernels without `CONFIG_NET` (or in a sandbox that forbids
    /// netlink); the caller then falls back to polling sysfs.
    pub fn open(include_virtual: bool) -> nix::Result<Hotplug> {
        use nix::sys::socket::{
            bind, setsockopt, socket, sockopt, AddressFamily, NetlinkAddr, SockFlag, SockProtocol,
            SockType,
        };
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkKObjectUEvent,
        )?;
        // Module loading can emit hundreds of events at once: ask for a large buffer (the
        // forced variant needs CAP_NET_ADMIN, which PID 1 has; the plain one is capped).
        if setsockopt(&fd, sockopt::RcvBufForce, &(1 << 20)).is_err() {
            let _ = setsockopt(&fd, sockopt::RcvBuf, &(1 << 20));
        }
        // Port 0: the kernel assigns one. Group 1: kernel uevents.
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 1))?;
        Ok(Hotplug {
            fd,
            include_virtual,
            buf: vec![0; MAX_MESSAGE + 1],
            broken: false,
        })
    }

    /// Everything that arrived since the last call, in order (at most 1024 datagrams per
    /// call; the rest stay queued). Never blocks. A receive-buffer overrun (`ENOBUFS`) is
    /// logged; callers that must not miss a disk use [`Hotplug::drain_raw`], which reports it.
    pub fn drain(&mut self) -> Vec<Event> {
        self.drain_raw().0
    }

    /// As [`Hotplug::drain`], and whether events were lost to an overrun.
    pub fn drain_raw(&mut self) -> (Vec<Event>, bool) {
        use nix::sys::socket::{recv, MsgFlags};
        let mut out = Vec::new();
        let mut overrun = false;
        for _ in 0..MAX_PER_DRAIN {
            match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty()) {
                Ok(n) => {
                    if let Some(u) = parse(&self.buf[..n.min(self.buf.len())]) {
                        log::debug!(
                            "uevent {:?} {} {}",
                            u.action,
                            u.subsystem,
                            u.devname.as_deref().unwrap_or(&u.devpath)
                        );
                        out.extend(events_of(&u, self.include_virtual));
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::ENOBUFS) => {
                    log::warn!(
                        "uevent socket overrun: some device events were lost; rescanning sysfs"
                    );
                    overrun = true;
                }
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(e) => {
                    log::error!("uevent socket: {}; no longer listening", e.desc());
                    self.broken = true;
                    break;
                }
            }
        }
        (out, overrun)
    }
}

impl Hotplug {
    /// Whether the socket failed for good (an error other than "nothing to read" or an
    /// overrun): the caller should stop polling it and fall back to rescanning sysfs.
    pub fn is_broken(&self) -> bool {
        self.broken
    }
}

impl AsFd for Hotplug {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages in the exact shape a 6.1 kernel sends (header, then the keys in the kernel's
    /// order, NUL-separated, as `udevadm monitor --kernel --property` shows them); device
    /// paths and modaliases are the ones leapboot's QEMU scenarios log.
    const VDA_ADD: &[u8] = b"add@/devices/pci0000:00/0000:00:02.0/virtio1/block/vda\0ACTION=add\0DEVPATH=/devices/pci0000:00/0000:00:02.0/virtio1/block/vda\0SUBSYSTEM=block\0MAJOR=254\0MINOR=0\0DEVNAME=vda\0DEVTYPE=disk\0DISKSEQ=1\0SEQNUM=1042\0";
    const VDA1_ADD: &[u8] = b"add@/devices/pci0000:00/0000:00:02.0/virtio1/block/vda/vda1\0ACTION=add\0DEVPATH=/devices/pci0000:00/0000:00:02.0/virtio1/block/vda/vda1\0SUBSYSTEM=block\0MAJOR=254\0MINOR=1\0DEVNAME=vda1\0DEVTYPE=partition\0DISKSEQ=1\0PARTN=1\0SEQNUM=1043\0";
    const USB_IFACE_ADD: &[u8] = b"add@/devices/pci0000:00/0000:00:03.0/usb2/2-1/2-1:1.0\0ACTION=add\0DEVPATH=/devices/pci0000:00/0000:00:03.0/usb2/2-1/2-1:1.0\0SUBSYSTEM=usb\0DEVTYPE=usb_interface\0PRODUCT=46f4/1/0\0TYPE=0/0/0\0INTERFACE=8/6/80\0MODALIAS=usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00\0SEQNUM=1201\0";
    const SDA_REMOVE: &[u8] = b"remove@/devices/pci0000:00/0000:00:03.0/usb2/2-1/2-1:1.0/host2/target2:0:0/2:0:0:0/block/sda\0ACTION=remove\0DEVPATH=/devices/pci0000:00/0000:00:03.0/usb2/2-1/2-1:1.0/host2/target2:0:0/2:0:0:0/block/sda\0SUBSYSTEM=block\0MAJOR=8\0MINOR=0\0DEVNAME=sda\0DEVTYPE=disk\0SEQNUM=1300\0";
    const LOOP_ADD: &[u8] = b"add@/devices/virtual/block/loop0\0ACTION=add\0DEVPATH=/devices/virtual/block/loop0\0SUBSYSTEM=block\0MAJOR=7\0MINOR=0\0DEVNAME=loop0\0DEVTYPE=disk\0SEQNUM=9\0";

    #[test]
    fn parses_a_disk_add() {
        let u = parse(VDA_ADD).unwrap();
        assert_eq!(u.action, Action::Add);
        assert_eq!(u.subsystem, "block");
        assert_eq!(u.devname.as_deref(), Some("vda"));
        assert_eq!(u.devtype.as_deref(), Some("disk"));
        assert_eq!(u.modalias, None);
        assert_eq!(events_of(&u, false), [Event::DiskAdded("vda".into())]);
    }

    #[test]
    fn partitions_are_not_disk_events() {
        let u = parse(VDA1_ADD).unwrap();
        assert_eq!(u.devtype.as_deref(), Some("partition"));
        assert!(events_of(&u, false).is_empty());
    }

    #[test]
    fn modalias_of_an_added_device() {
        let u = parse(USB_IFACE_ADD).unwrap();
        assert_eq!(
            events_of(&u, false),
            [Event::Modalias(
                "usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00".into()
            )]
        );
    }

    #[test]
    fn removal_and_virtual_disks() {
        let u = parse(SDA_REMOVE).unwrap();
        assert_eq!(events_of(&u, false), [Event::DiskRemoved("sda".into())]);
        let l = parse(LOOP_ADD).unwrap();
        assert!(events_of(&l, false).is_empty(), "loop devices are ignored");
        assert_eq!(events_of(&l, true), [Event::DiskAdded("loop0".into())]);
    }

    #[test]
    fn rejects_what_is_not_a_kernel_uevent() {
        // udev's re-broadcast format.
        assert_eq!(parse(b"libudev\0\xfe\xed\xca\xfe"), None);
        assert_eq!(parse(b""), None);
        // Header and keys disagree.
        assert_eq!(
            parse(b"add@/devices/x\0ACTION=remove\0DEVPATH=/devices/x\0"),
            None
        );
        // No DEVPATH key.
        assert_eq!(parse(b"add@/devices/x\0ACTION=add\0"), None);
        // Too many keys.
        let mut many = b"add@/d\0ACTION=add\0DEVPATH=/d\0".to_vec();
        for i in 0..MAX_KEYS {
            many.extend_from_slice(format!("K{i}=v\0").as_bytes());
        }
        assert_eq!(parse(&many), None);
        // Oversized.
        let mut big = VDA_ADD.to_vec();
        big.resize(MAX_MESSAGE + 1, b'x');
        assert_eq!(parse(&big), None);
    }

    #[test]
    fn a_disk_name_must_be_a_plain_name() {
        let u = parse(
            b"add@/devices/virtual/block/x\0ACTION=add\0DEVPATH=/devices/virtual/block/x\0SUBSYSTEM=block\0DEVNAME=../etc\0DEVTYPE=disk\0",
        )
        .unwrap();
        assert!(events_of(&u, false).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            if let Some(u) = parse(&data) {
                let _ = events_of(&u, true);
            }
        }

        #[test]
        fn keys_survive_any_order(order in proptest::strategy::Strategy::prop_shuffle(proptest::strategy::Just(vec![0usize, 1, 2, 3, 4]))) {
            let keys = ["SUBSYSTEM=block", "DEVNAME=vdb", "DEVTYPE=disk", "SEQNUM=7", "MAJOR=254"];
            let mut msg = b"add@/devices/v/block/vdb\0ACTION=add\0DEVPATH=/devices/v/block/vdb\0".to_vec();
            for i in order.iter().rev() {
                msg.extend_from_slice(keys[*i].as_bytes());
                msg.push(0);
            }
            let u = parse(&msg).unwrap();
            proptest::prop_assert_eq!(events_of(&u, false), vec![Event::DiskAdded("vdb".into())]);
        }
    }
}
