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
//! unmounts everything under the root before kexec. The mounted tree is read through
//! [`DirFs`], whose symlinks cannot leave the mount point.

use std::path::{Path, PathBuf};

use super::dir::DirFs;
use super::OpenError;
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

/// Mounts block device `node` (volume `name`, holding `kind`) read-only and returns a
/// [`DirFs`] over it.
pub fn mount(
    name: &str,
    node: &Path,
    kind: FsKind,
    config: &MountConfig,
) -> Result<DirFs, OpenError> {
    // BLKROSET on the node the kernel will mount (the partition itself, not only its disk).
    Disk::open(node).map_err(|e| OpenError(e.to_string()))?;
    if !kernel_knows(kind.name()) {
        let m = module(kind);
        if crate::kmod::load_all(&config.modules_dir, &[m.to_string()]) > 0 {
            log::info!("{name}: loaded kernel module {m} for {kind}");
        }
        if !kernel_knows(kind.name()) {
            return Err(OpenError(format!(
                "the kernel has no {kind} support (module {m} missing or failed to load)"
            )));
        }
    }
    let target = mount_point(&config.root, name);
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
    Ok(DirFs::new(&target))
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
    fn journals_are_never_replayed_by_a_mount() {
        assert_eq!(options(FsKind::Ext4), "noload");
        assert_eq!(options(FsKind::Ext3), "noload");
        assert_eq!(options(FsKind::Xfs), "norecovery");
        assert_eq!(options(FsKind::Btrfs), "nologreplay");
    }
}
