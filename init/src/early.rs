//! What PID 1 sets up before anything else: pseudo filesystems, the console on fds 0-2, the
//! logger, kernel console verbosity, and a reaper for orphaned children.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use sys_mount::{Mount, MountFlags};

/// Mounts, console, logger, reaper. Every step logs and carries on when it fails.
pub fn setup() {
    let mut problems = Vec::new();
    for (fstype, target, flags) in [
        (
            "proc",
            "/proc",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        ),
        (
            "sysfs",
            "/sys",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        ),
        // For /sys/kernel/security/lockdown: a refused kexec then says it was lockdown.
        (
            "securityfs",
            "/sys/kernel/security",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        ),
        ("devtmpfs", "/dev", MountFlags::NOSUID),
        ("tmpfs", "/run", MountFlags::NOSUID | MountFlags::NODEV),
    ] {
        let _ = std::fs::create_dir_all(target);
        if let Err(e) = Mount::builder()
            .fstype(fstype)
            .flags(flags)
            .mount(fstype, target)
        {
            // EBUSY: already mounted (e.g. by a kernel with DEVTMPFS_MOUNT).
            // ENODEV: a kernel without that filesystem (securityfs is optional).
            if !matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENODEV)) {
                problems.push(format!("mount {fstype} on {target}: {e}"));
            }
        }
    }
    console_on_stdio();
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let params = leapboot::cmdline::parse(&cmdline);
    leapboot::logger::init(true, params.debug);
    mirror_log_to_other_consoles();
    for p in problems {
        log::error!("{p}");
    }
    // Our own lines reach the console directly; keep kernel chatter (and the copies of our
    // lines in /dev/kmsg) off it unless the user asked for a loglevel.
    if !params.has_loglevel {
        let _ = std::fs::write("/proc/sys/kernel/printk", "3");
    }
    let _ = std::fs::write("/proc/sys/kernel/printk_devkmsg", "on");
    std::thread::Builder::new()
        .name("reaper".into())
        .spawn(reap_forever)
        .map_err(|e| log::error!("cannot start the zombie reaper: {e}"))
        .ok();
}

/// Makes /dev/console fds 0, 1 and 2 (the kernel does it only if the initramfs had a
/// /dev/console node), and puts it in a mode where single keys can be read.
fn console_on_stdio() {
    let Ok(console) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/console")
    else {
        return;
    };
    for fd in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors of this process.
        unsafe { libc::dup2(console.as_raw_fd(), fd) };
    }
    if let Ok(mut t) = nix::sys::termios::tcgetattr(std::io::stdin()) {
        t.local_flags
            .remove(nix::sys::termios::LocalFlags::ICANON | nix::sys::termios::LocalFlags::ECHO);
        let _ =
            nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, &t);
    }
}

/// Plain log lines go to stderr (`/dev/console`, the last `console=`); copy them to the
/// other consoles too, so a VGA screen and a serial line both show the boot.
fn mirror_log_to_other_consoles() {
    use std::os::unix::fs::OpenOptionsExt;
    let text = std::fs::read_to_string("/proc/consoles").unwrap_or_default();
    for name in leapboot::menu::console::secondary_consoles(&text) {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(Path::new("/dev").join(&name))
        {
            Ok(f) => leapboot::logger::add_mirror(f),
            Err(e) => log::debug!("console {name}: {e}"),
        }
    }
}

/// PID 1 inherits every orphan; reap them so none stays a zombie.
fn reap_forever() {
    loop {
        match nix::sys::wait::waitpid(None, None) {
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}

/// The running kernel's module directory.
pub fn modules_dir() -> std::path::PathBuf {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    Path::new("/lib/modules").join(release)
}

/// Time since the kernel started (`CLOCK_MONOTONIC`), for the `pid1-start` milestone.
pub fn uptime() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}
