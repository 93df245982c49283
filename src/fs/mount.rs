//! Read-only kernel mounts, for filesystems without a userspace reader (xfs, btrfs, iso9660,
//! squashfs, f2fs) and for ext2/3/4 that `ext4-view` refuses (inline_data, casefold, meta_bg,
//! a journal without checksums...).
//!
//! Only in the initramfs (the host CLI never mounts; it says so). The device node is set
//! read-only (`BLKROSET`, through [`Disk::open`]) before the mount, so even a filesystem driver
//! that wanted to replay a journal cannot write; on top, the mount is `ro,nosuid,nodev,noexec`
//! and journal replay is switched off where the filesystem has one (`noload` for ext3/4,
//! `norecovery` for xfs and f2fs, `nologreplay` for btrfs). The probed type is always passed:
//! never a trial of every type in `/proc/filesystems`. The filesystem's module is loaded first
//! when the kernel does not know the type yet (filesystems are not modalias-driven).
//!
//! Mount points are `<root>/<volume name>` (`/run/leapboot/vda2`); [`crate::kexec::exec`]
//! unmounts everything under the root before kexec, and dropping a [`MountedFs`] (a rescan
//! drops its volumes) unmounts it. The mounted tree is read through [`DirFs`], whose symlinks
//! cannot leave the mount point.

use std::path::{Path, PathBuf};

use super::dir::DirFs;
use super::{BootFs, DirEntry, FsError, Metadata, OpenError};
use crate::disk::Disk;
use crate::probe::FsKind;

/// Where and how kernel mounts are made.
#[derive(Clone, Debug)]
pub struct MountConfig {
    /// Directory holding one mount point per volume (`/run/leapboot`).
    pub root: PathBuf,
    /// `/lib/modules/<release>`: where filesystem modules are loaded from.
    pub modules_dir: PathBuf,
}

/// The mount options for `kind` beyond the flags (`ro,nosuid,nodev,noexec`).
pub fn options(kind: FsKind) -> &'static str {
    match kind {
        FsKind::Ext3 | FsKind::Ext4 => "noload",
        FsKind::Xfs | FsKind::F2fs => "norecovery",
        FsKind::Btrfs => "nologreplay",
        FsKind::Ext2 | FsKind::Vfat | FsKind::Iso9660 | FsKind::Squashfs => "",
    }
}

/// The kernel module providing `kind` (Debian names).
pub fn module(kind: FsKind) -> &'static str {
    match kind {
        FsKind::Ext2 | FsKind::Ext3 | FsKind::Ext4 => "ext4",
        FsKind::Vfat => "vfat",
        FsKind::Xfs => "xfs",
        FsKind::Btrfs => "btrfs",
        FsKind::Iso9660 => "isofs",
        FsKind::Squashfs => "squashfs",
        FsKind::F2fs => "f2fs",
    }
}

/// Modules the kernel asks for on demand while mounting `kind` (`request_module`, which needs
/// a modprobe the initramfs does not have), loaded with the filesystem's own module: FAT's
/// default code page and character set (Debian: `codepage=437`, `iocharset=ascii`).
pub fn helpers(kind: FsKind) -> &'static [&'static str] {
    match kind {
        FsKind::Vfat => &["nls_cp437", "nls_ascii"],
        _ => &[],
    }
}

/// The mount point of volume `name` under `root`: `/` in names becomes `_`, and a name that
/// would be empty or a dot-name is prefixed, so the point always stays directly in `root`.
pub fn mount_point(root: &Path, name: &str) -> PathBuf {
    let mut n: String = name
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    if n.is_empty() || n.starts_with('.') {
        n.insert(0, '_');
    }
    root.join(n)
}

/// Whether the running kernel already knows filesystem type `name`.
fn kernel_knows(name: &str) -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .map(|t| t.lines().any(|l| l.split_whitespace().last() == Some(name)))
        .unwrap_or(false)
}

/// A read-only kernel mount seen as a volume; unmounted (lazily, `MNT_DETACH`) when dropped.
/// The mount point is named after the volume, so the volumes of one scan must be dropped
/// before the next scan mounts (init's boot loop drops them at the end of each pass).
pub struct MountedFs {
    dir: DirFs,
    target: PathBuf,
}

impl MountedFs {
    /// The mount point.
    pub fn target(&self) -> &Path {
        &self.target
    }
}

impl BootFs for MountedFs {
    fn metadata(&self, path: &str) -> Result<Metadata, FsError> {
        self.dir.metadata(path)
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        self.dir.read_dir(path)
    }

    fn copy_to(&self, path: &str, out: &mut dyn std::io::Write, max: u64) -> Result<u64, FsError> {
        self.dir.copy_to(path, out, max)
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        self.dir.read_at(path, offset, buf)
    }

    fn copy_range_to(
        &self,
        path: &str,
        offset: u64,
        len: u64,
        out: &mut dyn std::io::Write,
    ) -> Result<u64, FsError> {
        self.dir.copy_range_to(path, offset, len, out)
    }
}

impl Drop for MountedFs {
    fn drop(&mut self) {
        unmount(&self.target);
    }
}

/// Detaches whatever is mounted at `target` (nothing: ignored) and removes the empty mount
/// point.
fn unmount(target: &Path) {
    match nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) => log::debug!("{}: unmounted", target.display()),
        Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
        Err(e) => log::warn!("unmount {}: {e}", target.display()),
    }
    let _ = std::fs::remove_dir(target);
}

/// Mounts block device `node` (volume `name`, holding `kind`) read-only and returns it as a
/// volume.
pub fn mount(
    name: &str,
    node: &Path,
    kind: FsKind,
    config: &MountConfig,
) -> Result<MountedFs, OpenError> {
    // BLKROSET on the node the kernel will mount (the partition itself, not only its disk).
    Disk::open(node).map_err(|e| OpenError(e.to_string()))?;
    if !kernel_knows(kind.name()) {
        let m = module(kind);
        let mut wanted = vec![m.to_string()];
        wanted.extend(helpers(kind).iter().map(|h| h.to_string()));
        if crate::kmod::load_all(&config.modules_dir, &wanted) > 0 {
            log::info!(
                "{name}: loaded kernel module(s) {} for {kind}",
                wanted.join(" ")
            );
        }
        if !kernel_knows(kind.name()) {
            return Err(OpenError(format!(
                "the kernel has no {kind} support (module {m} missing or failed to load)"
            )));
        }
    }
    let target = mount_point(&config.root, name);
    // A mount left behind (a volume of an earlier scan not dropped yet) must not be stacked on.
    unmount(&target);
    std::fs::create_dir_all(&target)
        .map_err(|e| OpenError(format!("{}: cannot create: {e}", target.display())))?;
    let data = options(kind);
    use sys_mount::MountFlags;
    let flags = MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    sys_mount::Mount::builder()
        .fstype(kind.name())
        .flags(flags)
        .data(data)
        .mount(node, &target)
        .map_err(|e| {
            let _ = std::fs::remove_dir(&target);
            OpenError(format!(
                "mount -t {kind} -o ro,nosuid,nodev,noexec{}{data} {} {}: {e}",
                if data.is_empty() { "" } else { "," },
                node.display(),
                target.display()
            ))
        })?;
    log::info!(
        "{name}: {kind} mounted read-only at {} ({}ro,nosuid,nodev,noexec)",
        target.display(),
        if data.is_empty() {
            String::new()
        } else {
            format!("{data},")
        }
    );
    Ok(MountedFs {
        dir: DirFs::new(&target),
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_stay_directly_under_the_root() {
        let root = Path::new("/run/leapboot");
        assert_eq!(mount_point(root, "vda2"), root.join("vda2"));
        assert_eq!(mount_point(root, "../etc"), root.join("_.._etc"));
        assert_eq!(mount_point(root, ".."), root.join("_.."));
        assert_eq!(mount_point(root, ""), root.join("_"));
        for name in ["a/b", "/x", "..", ".", "nvme0n1p1"] {
            let p = mount_point(root, name);
            assert_eq!(p.parent(), Some(root), "{name}");
        }
    }

    #[test]
    fn dropping_a_volume_removes_its_mount_point_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        let target = mount_point(root.path(), "vdz1");
        std::fs::create_dir_all(&target).unwrap();
        let fs = MountedFs {
            dir: DirFs::new(&target),
            target: target.clone(),
        };
        assert_eq!(fs.read_dir("/").unwrap(), Vec::new());
        drop(fs);
        assert!(!target.exists());
        assert!(root.path().exists());
    }

    #[test]
    fn journals_are_never_replayed_by_a_mount() {
        assert_eq!(options(FsKind::Ext4), "noload");
        assert_eq!(options(FsKind::Ext3), "noload");
        assert_eq!(options(FsKind::Xfs), "norecovery");
        assert_eq!(options(FsKind::Btrfs), "nologreplay");
    }
}
