//! Boot entries of an ISO image kept as a file on another volume (`/isos/debian-live.iso`).
//!
//! The ISO's own `/boot/grub/loopback.cfg` is what the distribution wrote for exactly this
//! (the loopback.cfg convention): it is run through the GRUB interpreter with `iso_path` set
//! to the file's path on its volume. Without one, the ISO's GRUB or isolinux configuration is
//! read as it is and the distribution's documented parameter for finding its ISO at boot is
//! added to every entry's command line (see [`Convention`]). Titles end with the ISO's file
//! name. An ISO never names the default entry or the timeout. Pure: the ISO is read only through its [`BootFs`](crate::fs::BootFs); the pipeline
//! makes it a volume.

use super::{grub, syslinux, EntryError, Found, VolumeView};
use crate::fs::FileKind;

/// The config GRUB's loopback convention reads from an ISO.
pub const LOOPBACK_CFG: &str = "/boot/grub/loopback.cfg";

/// Where an ISO volume came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsoOrigin {
    /// The volume holding the ISO file.
    pub volume: String,
    /// The ISO file's path on that volume.
    pub path: String,
    /// That volume's filesystem UUID (for `img_dev=`/`isofrom_device=`).
    pub volume_uuid: Option<String>,
}

impl IsoOrigin {
    /// The ISO's file name.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// How a distribution's initramfs finds the ISO file it was booted from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Convention {
    /// Ubuntu's casper (`/casper`): `iso-scan/filename=`.
    Casper,
    /// Debian live (`/live`, live-boot): `findiso=`.
    DebianLive,
    /// The Debian installer (`/install.amd`, d-i's iso-scan): `iso-scan/filename=`.
    DebianInstaller,
    /// Arch Linux (`/arch`, archiso): `img_dev=` and `img_loop=`.
    Arch,
    /// Fedora and other dracut live media (`/LiveOS`, `/images/pxeboot`):
    /// `iso-scan/filename=` with `rd.live.image`.
    Dracut,
    /// openSUSE (`/boot/<arch>/loader`): `isofrom_device=` and `isofrom_system=`.
    Suse,
    /// NixOS (`/nix-store.squashfs`): `findiso=`.
    NixOs,
}

/// Which convention the ISO on `fs` follows, from the directories its distribution puts there.
pub fn convention(fs: &dyn crate::fs::BootFs) -> Option<Convention> {
    let dir = |p: &str| fs.metadata(p).is_ok_and(|m| m.kind == FileKind::Dir);
    let file = |p: &str| fs.metadata(p).is_ok_and(|m| m.kind == FileKind::File);
    if dir("/casper") {
        Some(Convention::Casper)
    } else if file("/nix-store.squashfs") {
        Some(Convention::NixOs)
    } else if dir("/live") {
        Some(Convention::DebianLive)
    } else if dir("/install.amd") || dir("/install.a64") || dir("/install.386") {
        Some(Convention::DebianInstaller)
    } else if dir("/arch") {
        Some(Convention::Arch)
    } else if dir("/LiveOS") || dir("/images/pxeboot") {
        Some(Convention::Dracut)
    } else if ["x86_64", "aarch64", "i386", "ppc64le", "s390x"]
        .iter()
        .any(|a| dir(&format!("/boot/{a}/loader")))
    {
        Some(Convention::Suse)
    } else {
        None
    }
}

/// The arguments `convention` needs to find the ISO at `origin`, or why there are none.
pub fn iso_args(convention: Convention, origin: &IsoOrigin) -> Result<Vec<String>, String> {
    let path = &origin.path;
    let uuid = || {
        origin.volume_uuid.as_deref().ok_or_else(|| {
            format!(
                "{}: the volume has no filesystem UUID, which {convention:?} needs to find the ISO",
                origin.volume
            )
        })
    };
    Ok(match convention {
        Convention::Casper | Convention::DebianInstaller => {
            vec![format!("iso-scan/filename={path}")]
        }
        Convention::Dracut => vec![format!("iso-scan/filename={path}"), "rd.live.image".into()],
        Convention::DebianLive | Convention::NixOs => vec![format!("findiso={path}")],
        Convention::Arch => vec![
            format!("img_dev=/dev/disk/by-uuid/{}", uuid()?),
            format!("img_loop={path}"),
        ],
        Convention::Suse => vec![
            format!("isofrom_device=/dev/disk/by-uuid/{}", uuid()?),
            format!("isofrom_system={path}"),
        ],
    })
}

/// `cmdline` with `args` added: before a `---` or `--` separator (what follows it is
/// copied to the installed system by Debian's installers), else at the end. An argument whose
/// key the command line already has is left out.
pub fn add_args(cmdline: &str, args: &[String]) -> String {
    let words: Vec<&str> = cmdline.split_whitespace().collect();
    let key = |w: &str| w.split_once('=').map_or(w, |(k, _)| k).to_string();
    let new: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !words.iter().any(|w| key(w) == key(a)))
        .collect();
    let at = words
        .iter()
        .position(|w| *w == "---" || *w == "--")
        .unwrap_or(words.len());
    let mut out: Vec<&str> = words[..at].to_vec();
    out.extend(new);
    out.extend(&words[at..]);
    out.join(" ")
}

/// The entries of the ISO volume `iso`, which is file `origin` of another volume.
pub fn discover(iso: &VolumeView<'_>, all: &[VolumeView<'_>], origin: &IsoOrigin) -> Found {
    let name = origin.file_name();
    let mut found = if iso
        .fs
        .metadata(LOOPBACK_CFG)
        .is_ok_and(|m| m.kind == FileKind::File)
    {
        log::info!(
            "{}: {LOOPBACK_CFG} run with iso_path={}",
            iso.name,
            origin.path
        );
        grub::discover_file(iso, all, LOOPBACK_CFG, &[("iso_path", &origin.path)])
    } else {
        let mut found = grub::discover(iso, all);
        if found.entries.is_empty() {
            let errors = std::mem::take(&mut found.errors);
            found = syslinux::discover(iso, all);
            found.errors.splice(0..0, errors);
        }
        let problem = match convention(iso.fs).map(|c| (c, iso_args(c, origin))) {
            _ if found.entries.is_empty() => None,
            Some((c, Ok(args))) => {
                log::info!(
                    "{}: no {LOOPBACK_CFG}; {c:?} finds its ISO with {}",
                    iso.name,
                    args.join(" ")
                );
                for e in &mut found.entries {
                    e.cmdline = add_args(&e.cmdline, &args);
                }
                None
            }
            Some((_, Err(message))) => Some(message),
            None => Some(
                "no loopback.cfg and no known distribution layout: its entries are offered \
                 as written, but its initramfs may not find the ISO"
                    .to_string(),
            ),
        };
        if let Some(message) = problem {
            found.errors.push(EntryError {
                volume: iso.name.to_string(),
                file: "/".into(),
                line: None,
                message,
            });
        }
        found
    };
    for e in &mut found.entries {
        e.title = format!("{} ({name})", e.title);
    }
    // An ISO's menu is one a person opens on purpose (GRUB's loopback submenu): its default
    // and timeout never become the machine's, or a data disk full of installers could make
    // the machine autoboot one of them.
    found.default = None;
    found.timeout = None;
    found.bls_shown.clear();
    found
}

#[cfg(test)]
mod tests;
