//! Loading an entry with `kexec_file_load(2)` and jumping into it.
//!
//! [`load`] checks the command line against the new kernel's limit first, copies the kernel
//! into a memfd and every initrd, in order, into one memfd (each padded to 4 bytes, which the
//! kernel's initramfs unpacker expects between concatenated archives), and hands both to the
//! kernel. A refused load is an error with the errno explained; nothing is left half-done.
//! [`exec`] unmounts leapboot's mounts, syncs and reboots into the loaded kernel.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;

use crate::entry::{BootEntry, FileRef};
use crate::pipeline::Volumes;

/// Largest kernel image accepted.
pub const MAX_KERNEL_BYTES: u64 = 256 << 20;
/// Largest total of all initrds accepted.
pub const MAX_INITRD_BYTES: u64 = 2 << 30;
/// x86's COMMAND_LINE_SIZE, the running kernel's own limit (including the NUL).
const ARCH_CMDLINE_SIZE: usize = 2048;

/// Why an entry could not be loaded.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each variant is documented by its message
pub enum KexecError {
    #[error("{file}: volume not found")]
    NoVolume { file: FileRef },
    // FsError names the path itself.
    #[error("{}:{source}", file.volume)]
    Read {
        file: FileRef,
        source: crate::fs::FsError,
    },
    #[error("the command line is {len} bytes; the kernel accepts at most {max}")]
    CmdlineTooLong { len: usize, max: usize },
    #[error("the command line contains a NUL byte")]
    CmdlineNul,
    #[error("cannot create a memory file: {0}")]
    Memfd(std::io::Error),
    #[error("kexec_file_load refused {kernel}: {}", explain(*.errno))]
    Load {
        kernel: FileRef,
        errno: nix::errno::Errno,
    },
    #[error("reboot into the loaded kernel failed: {0}")]
    Reboot(nix::errno::Errno),
}

/// What an errno from `kexec_file_load` means for the user.
pub fn explain(e: nix::errno::Errno) -> String {
    use nix::errno::Errno::*;
    let why = match e {
        EPERM => "not permitted: the running kernel is locked down (Secure Boot lockdown) or leapboot lacks CAP_SYS_BOOT",
        EKEYREJECTED => "the kernel's signature was rejected: this kernel only kexecs signed images it trusts",
        EBADMSG => "the kernel's signature is malformed",
        ENOEXEC => "not a kernel image this kernel can kexec (wrong format or architecture)",
        ENOMEM => "not enough memory for the kernel and initrd",
        EINVAL => "invalid arguments (command line too long for the new kernel, or a bad image)",
        EBUSY => "a kexec image is already being loaded",
        ENOSYS => "the running kernel was built without kexec_file_load",
        _ => "",
    };
    if why.is_empty() {
        e.desc().to_string()
    } else {
        format!("{} ({})", why, e)
    }
}

/// The command-line limit of a bzImage (boot protocol ≥ 2.06 stores it in the setup header),
/// capped by the running kernel's own limit. Length excludes the NUL.
fn cmdline_limit(header: &[u8]) -> usize {
    let mut max = ARCH_CMDLINE_SIZE;
    if header.len() >= 0x23C && &header[0x202..0x206] == b"HdrS" {
        let version = u16::from_le_bytes([header[0x206], header[0x207]]);
        let size = if version >= 0x206 {
            u32::from_le_bytes([header[0x238], header[0x239], header[0x23A], header[0x23B]])
                as usize
        } else {
            255
        };
        // cmdline_size excludes the NUL; COMMAND_LINE_SIZE includes it.
        max = max.min(size.saturating_add(1));
    }
    max - 1
}

fn memfd(name: &str) -> Result<File, KexecError> {
    let name = CString::new(name).unwrap_or_default();
    let fd = nix::sys::memfd::memfd_create(name.as_c_str(), nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(|e| KexecError::Memfd(e.into()))?;
    Ok(File::from(fd))
}

fn copy_into(vols: &Volumes, f: &FileRef, out: &mut File, max: u64) -> Result<u64, KexecError> {
    let fs = vols
        .fs(&f.volume)
        .ok_or_else(|| KexecError::NoVolume { file: f.clone() })?;
    fs.copy_to(&f.path, out, max)
        .map_err(|source| KexecError::Read {
            file: f.clone(),
            source,
        })
}

/// Loads `entry` with `cmdline` as the next kernel. After `Ok`, [`exec`] boots it.
pub fn load(entry: &BootEntry, cmdline: &str, vols: &Volumes) -> Result<(), KexecError> {
    let mut kernel = memfd("leapboot-kernel")?;
    let klen = copy_into(vols, &entry.kernel, &mut kernel, MAX_KERNEL_BYTES)?;
    let mut header = vec![0u8; 0x240.min(klen as usize)];
    kernel.seek(SeekFrom::Start(0)).map_err(KexecError::Memfd)?;
    kernel.read_exact(&mut header).map_err(KexecError::Memfd)?;
    let max = cmdline_limit(&header);
    if cmdline.len() > max {
        return Err(KexecError::CmdlineTooLong {
            len: cmdline.len(),
            max,
        });
    }
    let c_cmdline = CString::new(cmdline).map_err(|_| KexecError::CmdlineNul)?;
    log::info!(
        "loaded {} ({:.1} MiB)",
        entry.kernel,
        klen as f64 / 1048576.0
    );

    let initrd = if entry.initrds.is_empty() {
        None
    } else {
        let mut out = memfd("leapboot-initrd")?;
        let mut total = 0u64;
        for f in &entry.initrds {
            let n = copy_into(vols, f, &mut out, MAX_INITRD_BYTES - total)?;
            total += n;
            let pad = (4 - total % 4) % 4;
            out.write_all(&[0u8; 3][..pad as usize])
                .map_err(KexecError::Memfd)?;
            total += pad;
            log::info!("loaded {f} ({:.1} MiB)", n as f64 / 1048576.0);
        }
        Some(out)
    };

    let flags: libc::c_ulong = if initrd.is_none() {
        0x4 // KEXEC_FILE_NO_INITRAMFS
    } else {
        0
    };
    let initrd_fd = initrd.as_ref().map_or(-1, |f| f.as_raw_fd());
    let bytes = c_cmdline.as_bytes_with_nul();
    // SAFETY: valid fds, a NUL-terminated buffer whose length includes the NUL (the kernel
    // rejects a length without it), and flags the kernel defines.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kexec_file_load,
            kernel.as_raw_fd(),
            initrd_fd,
            bytes.len() as libc::c_ulong,
            bytes.as_ptr(),
            flags,
        )
    };
    if r != 0 {
        return Err(KexecError::Load {
            kernel: entry.kernel.clone(),
            errno: nix::errno::Errno::last(),
        });
    }
    Ok(())
}

/// Unloads a loaded kernel (after a load whose boot was then abandoned).
pub fn unload() {
    // SAFETY: KEXEC_FILE_UNLOAD ignores the fds and the buffer.
    unsafe {
        libc::syscall(
            libc::SYS_kexec_file_load,
            -1,
            -1,
            0 as libc::c_ulong,
            std::ptr::null::<u8>(),
            0x1 as libc::c_ulong,
        );
    }
}

/// Unmounts everything leapboot mounted, syncs, and reboots into the loaded kernel. Returns
/// only on failure.
pub fn exec() -> KexecError {
    unmount_all(std::path::Path::new(crate::MOUNT_ROOT));
    nix::unistd::sync();
    match nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_KEXEC) {
        Ok(never) => match never {},
        Err(e) => KexecError::Reboot(e),
    }
}

/// Unmounts every mount point under `root`, deepest first.
fn unmount_all(root: &std::path::Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| std::path::Path::new(p).starts_with(root))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        if let Err(e) = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH) {
            log::warn!("unmount {p}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_limit_from_the_setup_header() {
        let mut h = vec![0u8; 0x240];
        assert_eq!(cmdline_limit(&h), 2047, "not a bzImage: the arch limit");
        h[0x202..0x206].copy_from_slice(b"HdrS");
        h[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        h[0x238..0x23C].copy_from_slice(&2047u32.to_le_bytes());
        assert_eq!(cmdline_limit(&h), 2047);
        h[0x238..0x23C].copy_from_slice(&511u32.to_le_bytes());
        assert_eq!(cmdline_limit(&h), 511);
        h[0x206..0x208].copy_from_slice(&0x0204u16.to_le_bytes());
        assert_eq!(cmdline_limit(&h), 255, "old boot protocol: 255 bytes");
        assert_eq!(cmdline_limit(&h[..10]), 2047, "short file");
    }

    #[test]
    fn errnos_are_explained() {
        assert!(explain(nix::errno::Errno::EPERM).contains("locked down"));
        assert!(explain(nix::errno::Errno::EKEYREJECTED).contains("signature"));
        assert!(explain(nix::errno::Errno::ENOEXEC).contains("not a kernel"));
        assert!(explain(nix::errno::Errno::ENOMEM).contains("memory"));
    }
}
