//! The plain scan is a fallback: a kernel it finds is not listed when a boot configuration on
//! the same machine already offers it (a Debian system booted by systemd-boot keeps its
//! kernels both in the ESP, through `kernel-install`, and as plain files in its own `/boot`).
//!
//! The matching rule: a scanned kernel is *already offered* when some configured entry (any
//! format, any volume) has **the same kernel version** and boots **the same root
//! filesystem**. File identity cannot work (kernel-install copies the kernel to another
//! volume), and version alone is too wide (two disks with two installations of one Debian
//! release run the same kernel version). The root is the volume a `root=` names: `UUID=`,
//! `PARTUUID=`, `LABEL=` or their `/dev/disk/by-*/` links, matched against the volumes'
//! identities; for a scanned kernel, its own command line (derived from its volume
//! or from `/etc/kernel/cmdline`). When either root is unknown (`root=/dev/sda2`, LVM, no
//! `root=` at all), the same disk stands in for the same root: the configured entry's config
//! file is on the disk of the scanned kernel (volumes of no disk, `--root` directories, count
//! as one machine). Versions: the entry's own (BLS `version`, GRUB's from the file name),
//! else the kernel file's name as the plain scan reads it.
//!
//! Linear: the configured entries are grouped by version once; each scanned kernel looks at
//! its version's group only.

use std::collections::HashMap;

use super::classify;
use crate::entry::{BootEntry, VolumeView};

/// What the configured entries offer, grouped by kernel version.
pub struct Offered<'a> {
    by_version: HashMap<String, Vec<&'a BootEntry>>,
    views: &'a [VolumeView<'a>],
}

/// A configured or scanned entry's kernel version.
fn version(e: &BootEntry) -> Option<String> {
    e.version.clone().or_else(|| {
        let base = e.kernel.path.rsplit('/').next()?;
        classify(base)?.version
    })
}

impl<'a> Offered<'a> {
    /// Indexes `configured` (the entries boot configurations produced) over `views`.
    pub fn new(
        configured: impl IntoIterator<Item = &'a BootEntry>,
        views: &'a [VolumeView<'a>],
    ) -> Offered<'a> {
        let mut by_version: HashMap<String, Vec<&BootEntry>> = HashMap::new();
        for e in configured {
            if let Some(v) = version(e) {
                by_version.entry(v).or_default().push(e);
            }
        }
        Offered { by_version, views }
    }

    /// The configured entry that already offers scanned kernel `e`, if any.
    pub fn offering(&self, e: &BootEntry) -> Option<&'a BootEntry> {
        let group = self.by_version.get(&version(e)?)?;
        let root = root_volume(&e.cmdline, self.views);
        let disk = self.disk_of(&e.kernel.volume);
        group
            .iter()
            .copied()
            .find(|c| match (root, root_volume(&c.cmdline, self.views)) {
                (Some(a), Some(b)) => a == b,
                _ => self.disk_of(&c.source.volume) == disk,
            })
    }

    /// The disk index of volume `name` (None: not on a disk, or unknown).
    fn disk_of(&self, name: &str) -> Option<u32> {
        self.views
            .iter()
            .find(|v| v.name == name)
            .and_then(|v| v.grub_position.map(|(d, _)| d))
    }
}

/// The volume the last `root=` of `cmdline` names, by UUID, PARTUUID or LABEL.
pub fn root_volume<'v>(cmdline: &str, views: &'v [VolumeView<'v>]) -> Option<&'v str> {
    let spec = cmdline
        .split_ascii_whitespace()
        .rev()
        .find_map(|w| w.strip_prefix("root="))?;
    let (kind, value) = if let Some(rest) = spec.strip_prefix("/dev/disk/by-") {
        let (k, v) = rest.split_once('/')?;
        match k {
            "uuid" => ("UUID", v),
            "partuuid" => ("PARTUUID", v),
            "label" => ("LABEL", v),
            _ => return None,
        }
    } else {
        spec.split_once('=')?
    };
    let eq = |a: Option<&str>| a.is_some_and(|a| a.eq_ignore_ascii_case(value));
    let v = views.iter().find(|v| match kind {
        "UUID" => eq(v.uuid),
        "PARTUUID" => eq(v.part_uuid),
        "LABEL" => v.label == Some(value),
        _ => false,
    })?;
    Some(v.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::syslinux::tests::MemFs;
    use crate::entry::tests::{entry, view};
    use crate::entry::Format;

    fn e(vol: &str, path: &str, version: Option<&str>, cmdline: &str) -> BootEntry {
        let mut e = entry("x", vol);
        e.kernel.path = path.into();
        e.version = version.map(str::to_string);
        e.cmdline = cmdline.into();
        e
    }

    /// One row per case of the rule: (scanned kernel, configured entry) → offered?
    #[test]
    fn a_scanned_kernel_is_offered_by_the_same_version_for_the_same_root() {
        let fs = MemFs::new(&[]);
        let mut esp = view("a:1", &fs);
        esp.grub_position = Some((0, 1));
        let mut root = view("a:2", &fs);
        root.grub_position = Some((0, 2));
        root.uuid = Some("0f5c3a6e-4b8e-4d43-9c1a-7b2d8e1f6a01");
        root.part_uuid = Some("11111111-2222-3333-4444-555555555555");
        root.label = Some("root");
        let mut other = view("b:2", &fs);
        other.grub_position = Some((1, 2));
        other.uuid = Some("99999999-4b8e-4d43-9c1a-7b2d8e1f6a01");
        let views = [esp, root, other];
        let scanned_uuid = e(
            "a:2",
            "/boot/vmlinuz-6.1.0-25-amd64",
            Some("6.1.0-25-amd64"),
            "root=UUID=0f5c3a6e-4b8e-4d43-9c1a-7b2d8e1f6a01 ro quiet",
        );
        let scanned_partuuid = e(
            "a:2",
            "/boot/vmlinuz-6.1.0-25-amd64",
            Some("6.1.0-25-amd64"),
            "root=PARTUUID=11111111-2222-3333-4444-555555555555 ro",
        );
        let scanned_other_disk = e(
            "b:2",
            "/boot/vmlinuz-6.1.0-25-amd64",
            Some("6.1.0-25-amd64"),
            "root=UUID=99999999-4b8e-4d43-9c1a-7b2d8e1f6a01 ro",
        );
        let kernel_install = "/6a98/6.1.0-25-amd64/linux";
        let bls = |cmdline: &str, version: Option<&str>| e("a:1", kernel_install, version, cmdline);
        let uuid = "root=UUID=0F5C3A6E-4B8E-4D43-9C1A-7B2D8E1F6A01 ro quiet";
        let cases: &[(&str, &BootEntry, BootEntry, bool)] = &[
            (
                "same version, root by UUID",
                &scanned_uuid,
                bls(uuid, Some("6.1.0-25-amd64")),
                true,
            ),
            (
                "UUID vs PARTUUID of one volume",
                &scanned_partuuid,
                bls(uuid, Some("6.1.0-25-amd64")),
                true,
            ),
            (
                "by-label link",
                &scanned_uuid,
                bls("root=/dev/disk/by-label/root", Some("6.1.0-25-amd64")),
                true,
            ),
            (
                "another version",
                &scanned_uuid,
                bls(uuid, Some("6.1.0-18-amd64")),
                false,
            ),
            (
                "no version key: none from 'linux' either",
                &scanned_uuid,
                bls(uuid, None),
                false,
            ),
            (
                "another root",
                &scanned_other_disk,
                bls(uuid, Some("6.1.0-25-amd64")),
                false,
            ),
            (
                "root unknown, same disk",
                &scanned_uuid,
                bls("root=/dev/sda2 ro", Some("6.1.0-25-amd64")),
                true,
            ),
            (
                "root unknown, other disk",
                &scanned_other_disk,
                bls("root=/dev/sda2", Some("6.1.0-25-amd64")),
                false,
            ),
            (
                "GRUB: version from the file name",
                &scanned_uuid,
                e(
                    "a:2",
                    "/boot/vmlinuz-6.1.0-25-amd64",
                    None,
                    &format!("BOOT_IMAGE=/boot/vmlinuz-6.1.0-25-amd64 {uuid}"),
                ),
                true,
            ),
        ];
        for (what, scanned, configured, want) in cases {
            let offered = Offered::new([configured], &views);
            assert_eq!(offered.offering(scanned).is_some(), *want, "{what}");
        }
    }

    #[test]
    fn root_specs() {
        let fs = MemFs::new(&[]);
        let mut v = view("v", &fs);
        v.uuid = Some("ab-cd");
        v.part_uuid = Some("12-34");
        v.label = Some("Root");
        let views = [v];
        for (cmdline, want) in [
            ("root=UUID=AB-CD", Some("v")),
            ("root=PARTUUID=12-34", Some("v")),
            ("root=/dev/disk/by-partuuid/12-34", Some("v")),
            ("root=LABEL=Root", Some("v")),
            ("root=LABEL=root", None),
            ("root=UUID=zz root=UUID=ab-cd", Some("v")),
            ("root=/dev/vda2", None),
            ("root=/dev/disk/by-id/x", None),
            ("ro quiet", None),
            ("root=", None),
        ] {
            assert_eq!(root_volume(cmdline, &views), want, "{cmdline}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(cmdline in ".{0,80}", path in "[a-z/.0-9-]{0,30}", version in proptest::option::of("[0-9.]{0,6}")) {
            let fs = MemFs::new(&[]);
            let mut v = view("v", &fs);
            v.uuid = Some("u");
            let views = [v];
            let mut c = e("v", &path, version.as_deref(), &cmdline);
            c.format = Format::Grub;
            let offered = Offered::new([&c], &views);
            let _ = offered.offering(&c);
            let _ = root_volume(&cmdline, &views);
        }
    }
}
