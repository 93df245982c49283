//! The checks made before anything is loaded, and the words for what the kernel refuses:
//! not root, a kernel without `CONFIG_KEXEC_FILE`, lockdown refusing an unsigned kernel, not
//! enough memory, `/boot` not mounted. Each takes the text it judges (`/proc/meminfo`,
//! `/etc/fstab`...) as an argument so tests give it directly; [`crate::host`]'s callers read
//! the real files.

/// `Err` with what to do when `euid` is not root.
pub fn root(euid: u32, what: &str) -> Result<(), String> {
    if euid == 0 {
        Ok(())
    } else {
        Err(format!(
            "{what} needs root (CAP_SYS_BOOT, and /boot may be readable by root only): run it as root, e.g. `sudo leapboot {what}`"
        ))
    }
}

/// `Err` when the running kernel's config (`/boot/config-<release>`, if the text is there)
/// says it was built without `kexec_file_load`.
pub fn kexec_file(config: Option<&str>, release: &str) -> Result<(), String> {
    let Some(c) = config else { return Ok(()) };
    if c.lines()
        .any(|l| l.trim() == "# CONFIG_KEXEC_FILE is not set")
    {
        return Err(no_kexec_file(release));
    }
    Ok(())
}

/// The words for a kernel without `CONFIG_KEXEC_FILE` (also `ENOSYS` from the syscall).
pub fn no_kexec_file(release: &str) -> String {
    format!(
        "the running kernel ({release}) was built without CONFIG_KEXEC_FILE, so it has no \
         kexec_file_load(2), the only loader leapboot uses: boot a kernel built with \
         CONFIG_KEXEC_FILE=y (Debian's, Fedora's and Ubuntu's are), or load with kexec-tools' \
         `kexec -l` (the older kexec_load), which lockdown refuses"
    )
}

pub use crate::lockdown::{lockdown, lockdown_refusal, signed};

/// `MemAvailable` from `/proc/meminfo`, in bytes.
pub fn mem_available(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let v = l.strip_prefix("MemAvailable:")?;
        let kb: u64 = v.trim().trim_end_matches("kB").trim().parse().ok()?;
        kb.checked_mul(1024)
    })
}

/// `Err` when loading `files` bytes cannot fit: leapboot holds each file in a memory file
/// while the kernel copies it into its segments, so about twice the size is needed, plus a
/// margin for the running system.
pub fn memory(files: u64, available: Option<u64>) -> Result<(), String> {
    let Some(avail) = available else {
        return Ok(());
    };
    let need = files.saturating_mul(2).saturating_add(32 << 20);
    if need > avail {
        return Err(not_enough_memory(files, Some(avail)));
    }
    Ok(())
}

/// The words for too little memory (also `ENOMEM` from the syscall).
pub fn not_enough_memory(files: u64, available: Option<u64>) -> String {
    let mib = |b: u64| b.div_ceil(1 << 20);
    let avail = available.map_or("unknown".to_string(), |a| format!("{} MiB", mib(a)));
    format!(
        "not enough memory: the kernel and initrds are {} MiB and loading holds them twice \
         (memory files, then the kernel's segments), about {} MiB, with {avail} available \
         (MemAvailable in /proc/meminfo): free memory, or use a smaller initrd",
        mib(files),
        mib(files.saturating_mul(2).saturating_add(32 << 20))
    )
}

/// How `/boot` (or `BOOTPART`) stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootMount {
    /// Mounted, or not a mount of its own (a directory of `/`): read it as it is.
    Ready,
    /// In `/etc/fstab` but not mounted: (device, filesystem type) to mount read-only.
    NotMounted(String, String),
}

/// Whether `dir` needs mounting: it has an `fstab` line (not `noauto`-only matters not) and
/// no line of `/proc/self/mountinfo` has it as its mount point.
pub fn boot_mount(dir: &str, fstab: &str, mountinfo: &str) -> BootMount {
    let dir = dir.trim_end_matches('/');
    let mounted = mountinfo.lines().any(|l| {
        l.split_whitespace()
            .nth(4)
            .is_some_and(|m| m.trim_end_matches('/') == dir)
    });
    if mounted {
        return BootMount::Ready;
    }
    for l in fstab.lines() {
        let l = l.trim();
        if l.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 3 && f[1].trim_end_matches('/') == dir {
            return BootMount::NotMounted(f[0].to_string(), f[2].to_string());
        }
    }
    BootMount::Ready
}

/// The words for a `/boot` that must be mounted but may not be (`DONT_MOUNT_BOOT`), or whose
/// mount failed.
pub fn boot_not_mounted(dir: &str, device: &str, why: &str) -> String {
    format!(
        "{dir} is not mounted ({device} in /etc/fstab): {why}; mount it (`mount -o ro {dir}`) \
         and try again, or give the kernel with --kernel"
    )
}

/// Mount options for a read-only look at `/boot` of type `fstype`: journal replay off where
/// the filesystem has one.
pub fn ro_options(fstype: &str) -> &'static str {
    match fstype {
        "ext3" | "ext4" => "ro,nosuid,nodev,noexec,noload",
        "xfs" => "ro,nosuid,nodev,noexec,norecovery",
        "btrfs" => "ro,nosuid,nodev,noexec,nologreplay",
        _ => "ro,nosuid,nodev,noexec",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn not_root_says_sudo() {
        assert!(root(0, "load").is_ok());
        let e = root(1000, "load").unwrap_err();
        assert!(
            e.starts_with("load needs root") && e.contains("sudo leapboot load"),
            "{e}"
        );
    }

    #[test]
    fn kernel_without_kexec_file() {
        assert!(kexec_file(Some("CONFIG_KEXEC_FILE=y\n"), "6.1").is_ok());
        assert!(kexec_file(None, "6.1").is_ok());
        let e = kexec_file(Some("# CONFIG_KEXEC_FILE is not set\n"), "6.1.0-x").unwrap_err();
        assert!(
            e.contains("(6.1.0-x) was built without CONFIG_KEXEC_FILE"),
            "{e}"
        );
    }

    #[test]
    fn lockdown_modes_and_signatures() {
        assert_eq!(lockdown(Some("[none] integrity confidentiality\n")), None);
        assert_eq!(
            lockdown(Some("none [integrity] confidentiality\n")).as_deref(),
            Some("integrity")
        );
        assert_eq!(lockdown(Some("garbage")), None);
        assert_eq!(lockdown(None), None);
        // A PE32+ header with a certificate table of 0x100 bytes, then without one.
        let mut h = vec![0u8; 512];
        h[0..2].copy_from_slice(b"MZ");
        h[0x3c] = 0x40;
        h[0x40..0x44].copy_from_slice(b"PE\0\0");
        h[0x58..0x5a].copy_from_slice(&0x20bu16.to_le_bytes());
        let cert = 0x58 + 112 + 32 + 4;
        assert_eq!(signed(&h), Some(false));
        h[cert] = 1;
        assert_eq!(signed(&h), Some(true));
        assert_eq!(signed(b"\x7fELF"), None);
        let e = lockdown_refusal("/boot/vmlinuz", "integrity", Some(false));
        assert!(
            e.contains("locked down (integrity") && e.contains("/boot/vmlinuz is not signed"),
            "{e}"
        );
    }

    #[test]
    fn memory_is_checked_against_mem_available() {
        let mi = "MemTotal: 1000000 kB\nMemAvailable:     204800 kB\n";
        assert_eq!(mem_available(mi), Some(200 << 20));
        assert!(memory(50 << 20, mem_available(mi)).is_ok());
        let e = memory(100 << 20, mem_available(mi)).unwrap_err();
        assert!(
            e.starts_with("not enough memory: the kernel and initrds are 100 MiB"),
            "{e}"
        );
        assert!(memory(u64::MAX, Some(1)).is_err());
        assert!(memory(1 << 40, None).is_ok());
    }

    #[test]
    fn boot_needs_mounting_only_when_fstab_has_it_and_it_is_not_mounted() {
        let fstab = "# c\nUUID=abc / ext4 defaults 0 1\nUUID=b00t /boot ext4 defaults 0 2\n";
        let mi_root = "22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw\n";
        let mi_boot = "23 22 259:2 / /boot rw shared:2 - ext4 /dev/nvme0n1p2 rw\n";
        assert_eq!(
            boot_mount("/boot", fstab, mi_root),
            BootMount::NotMounted("UUID=b00t".into(), "ext4".into())
        );
        assert_eq!(
            boot_mount("/boot/", fstab, &format!("{mi_root}{mi_boot}")),
            BootMount::Ready
        );
        assert_eq!(
            boot_mount("/boot", "UUID=abc / ext4 defaults 0 1\n", mi_root),
            BootMount::Ready
        );
        let e = boot_not_mounted("/boot", "UUID=b00t", "DONT_MOUNT_BOOT=yes");
        assert!(
            e.starts_with("/boot is not mounted (UUID=b00t in /etc/fstab): DONT_MOUNT_BOOT"),
            "{e}"
        );
        assert_eq!(ro_options("ext4"), "ro,nosuid,nodev,noexec,noload");
    }

    proptest! {
        #[test]
        fn never_panic(s in "\\PC{0,200}", h in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = lockdown(Some(&s));
            let _ = mem_available(&s);
            let _ = boot_mount("/boot", &s, &s);
            let _ = signed(&h);
        }
    }
}
