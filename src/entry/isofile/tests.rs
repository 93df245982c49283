//! One real ISO per distribution convention: the configs under `testdata/` (provenance in
//! `testdata/README.md`) packed by the real `xorriso`, kept as a file on a volume, read back
//! through [`IsoFs`] as the pipeline does.

use std::path::Path;
use std::rc::Rc;

use super::*;
use crate::entry::{BootEntry, VolumeView};
use crate::fs::iso::{IsoFs, Shared};
use crate::fs::mem::MemFs;
use crate::fs::BootFs;

const PARENT_UUID: &str = "2f1c7a52-93b4-4e8e-9d52-6c1e0f0e5a11";

/// The entries of `testdata/<distro>` as an ISO labelled `label` at `/isos/<distro>.iso` of
/// volume `vdb1`.
fn discover_distro(distro: &str, label: &str) -> (Found, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/entry/isofile/testdata")
        .join(distro);
    let img = crate::testutil::iso_image_of(&dir, &[], &[], &["-R", "-J", "-V", label]);
    let path = format!("/isos/{distro}.iso");
    let parent: Rc<dyn BootFs> = Rc::new(MemFs([(path.clone(), img)].into()));
    let iso = IsoFs::open(parent.clone(), &path).unwrap();
    assert_eq!(iso.label(), Some(label));
    let shared = Shared(parent);
    let iso_name = format!("vdb1{path}");
    let plain = |name, fs, uuid, label| VolumeView {
        name,
        fs,
        uuid,
        label,
        part_uuid: None,
        part_type: None,
        grub_position: None,
        root_fs: false,
    };
    let mut pv = plain("vdb1", &shared, Some(PARENT_UUID), Some("DATA"));
    pv.grub_position = Some((1, 1));
    pv.part_type = Some("0fc63daf-8483-4772-8e79-3d69d8477de4");
    let iv = plain(&iso_name, &iso, iso.uuid(), iso.label());
    let origin = IsoOrigin {
        volume: "vdb1".into(),
        path: path.clone(),
        volume_uuid: Some(PARENT_UUID.into()),
    };
    let found = discover(&iv, &[pv, iv], &origin);
    // Every kernel and initrd named is read from inside the ISO.
    for e in &found.entries {
        for f in std::iter::once(&e.kernel).chain(&e.initrds) {
            assert_eq!(f.volume, iso_name, "{}", e.title);
            assert!(
                iso.read(&f.path, 1 << 20).is_ok(),
                "{}: {}",
                e.title,
                f.path
            );
        }
    }
    (found, path)
}

fn titles(f: &Found) -> Vec<&str> {
    f.entries.iter().map(|e| e.title.as_str()).collect()
}

fn by_title<'a>(f: &'a Found, title: &str) -> &'a BootEntry {
    f.entries
        .iter()
        .find(|e| e.title == title)
        .unwrap_or_else(|| panic!("no entry {title:?} in {:?}", titles(f)))
}

#[test]
fn ubuntu_casper_uses_its_loopback_cfg() {
    let (f, path) = discover_distro("ubuntu-24.04-desktop", "Ubuntu 24.04 LTS amd64");
    assert!(f.errors.is_empty(), "{:?}", f.errors);
    assert_eq!(
        titles(&f),
        [
            "Try or Install Ubuntu (ubuntu-24.04-desktop.iso)",
            "Ubuntu (safe graphics) (ubuntu-24.04-desktop.iso)"
        ]
    );
    let e = &f.entries[0];
    assert_eq!(e.kernel.path, "/casper/vmlinuz");
    assert_eq!(e.initrds[0].path, "/casper/initrd");
    assert!(
        e.cmdline
            .ends_with(&format!("iso-scan/filename={path} --- quiet splash")),
        "{}",
        e.cmdline
    );
}

#[test]
fn arch_loopback_cfg_finds_the_iso_volume_by_file_and_its_uuid() {
    let (f, path) = discover_distro("archlinux-2024.06.01", "ARCH_202406");
    let e = by_title(
        &f,
        "Arch Linux install medium (x86_64, BIOS) (archlinux-2024.06.01.iso)",
    );
    assert_eq!(e.kernel.path, "/arch/boot/x86_64/vmlinuz-linux");
    assert!(
        e.cmdline.ends_with(&format!(
            "archisobasedir=arch img_dev=UUID={PARENT_UUID} img_loop={path}"
        )),
        "{}",
        e.cmdline
    );
    // Its `default=archlinux` and `timeout=15` are the ISO's menu, not the machine's.
    assert_eq!((f.timeout, f.default_index()), (None, None));
}

#[test]
fn debian_live_loopback_cfg_sources_grub_cfg_with_findiso() {
    let (f, path) = discover_distro(
        "debian-live-12.5.0-amd64-standard",
        "d-live 12.5.0 st amd64",
    );
    let t = "(debian-live-12.5.0-amd64-standard.iso)";
    let live = by_title(&f, &format!("Live system (amd64) {t}"));
    assert_eq!(live.kernel.path, "/live/vmlinuz-6.1.0-18-amd64");
    assert!(
        live.cmdline
            .ends_with(&format!("boot=live components quiet splash findiso={path}")),
        "{}",
        live.cmdline
    );
    // The installer on the live image is offered as the image's own config has it.
    let inst = by_title(&f, &format!("Start installer {t}"));
    assert_eq!(inst.kernel.path, "/install/vmlinuz");
    assert!(by_title(
        &f,
        &format!("Advanced install options...>Start installer with speech synthesis {t}")
    )
    .cmdline
    .contains("speakup.synth=soft"));
}

#[test]
fn debian_installer_without_loopback_cfg_gets_iso_scan_before_the_separator() {
    let (f, path) = discover_distro("debian-12.5.0-amd64-netinst", "Debian 12.5.0 amd64 n");
    let t = "(debian-12.5.0-amd64-netinst.iso)";
    let e = by_title(&f, &format!("Install {t}"));
    assert_eq!(e.kernel.path, "/install.amd/vmlinuz");
    assert_eq!(e.initrds[0].path, "/install.amd/initrd.gz");
    assert!(
        e.cmdline
            .ends_with(&format!("vga=788 iso-scan/filename={path} --- quiet")),
        "{}",
        e.cmdline
    );
    let expert = by_title(
        &f,
        &format!("Advanced options ...>... Graphical expert install {t}"),
    );
    assert!(
        expert.cmdline.ends_with(&format!(
            "priority=low vga=788 iso-scan/filename={path} ---"
        )),
        "{}",
        expert.cmdline
    );
    assert_eq!(f.entries.len(), 5);
}

#[test]
fn fedora_live_gets_iso_scan_and_keeps_rd_live_image_once() {
    let (f, path) = discover_distro("fedora-40-workstation-live", "Fedora-WS-Live-40-1-14");
    assert_eq!(f.entries.len(), 3, "{:?}", titles(&f));
    let e = &f.entries[1];
    assert_eq!(
        e.title,
        "Test this media & start Fedora-Workstation-Live 40 (fedora-40-workstation-live.iso)"
    );
    assert_eq!(e.kernel.path, "/images/pxeboot/vmlinuz");
    assert_eq!(
        e.cmdline,
        format!(
            "BOOT_IMAGE=/images/pxeboot/vmlinuz root=live:CDLABEL=Fedora-WS-Live-40-1-14 \
             rd.live.image rd.live.check quiet iso-scan/filename={path}"
        )
    );
}

#[test]
fn opensuse_gets_isofrom_device_and_system() {
    let (f, path) = discover_distro("opensuse-tumbleweed-dvd", "openSUSE-Tumbleweed-DVD-x86_64");
    let e = by_title(&f, "Installation (opensuse-tumbleweed-dvd.iso)");
    assert_eq!(e.kernel.path, "/boot/x86_64/loader/linux");
    assert!(
        e.cmdline.ends_with(&format!(
            "splash=silent isofrom_device=/dev/disk/by-uuid/{PARENT_UUID} isofrom_system={path}"
        )),
        "{}",
        e.cmdline
    );
    assert!(
        by_title(&f, "More ...>Rescue System (opensuse-tumbleweed-dvd.iso)")
            .cmdline
            .contains("rescue=1 isofrom_device=")
    );
}

#[test]
fn nixos_isolinux_gets_findiso() {
    let (f, path) = discover_distro("nixos-minimal-24.05-x86_64", "nixos-minimal-24.05-x86_64");
    assert_eq!(f.entries.len(), 3);
    let e = &f.entries[0];
    assert_eq!(
        e.title,
        "NixOS 24.05.20240601.abcdef0 Installer (nixos-minimal-24.05-x86_64.iso)"
    );
    assert_eq!(e.kernel.path, "/boot/bzImage");
    assert!(
        e.cmdline
            .ends_with(&format!("boot.shell_on_fail loglevel=4 findiso={path}")),
        "{}",
        e.cmdline
    );
}

#[test]
fn conventions_by_layout_and_their_arguments() {
    let o = IsoOrigin {
        volume: "sda1".into(),
        path: "/a.iso".into(),
        volume_uuid: None,
    };
    let layouts: &[(&str, Option<Convention>)] = &[
        ("/casper/vmlinuz", Some(Convention::Casper)),
        ("/live/vmlinuz", Some(Convention::DebianLive)),
        ("/install.amd/vmlinuz", Some(Convention::DebianInstaller)),
        ("/arch/boot/x86_64/vmlinuz-linux", Some(Convention::Arch)),
        ("/LiveOS/squashfs.img", Some(Convention::Dracut)),
        ("/images/pxeboot/vmlinuz", Some(Convention::Dracut)),
        ("/boot/x86_64/loader/linux", Some(Convention::Suse)),
        ("/nix-store.squashfs", Some(Convention::NixOs)),
        ("/boot/vmlinuz", None),
    ];
    for (file, want) in layouts {
        assert_eq!(convention(&MemFs::new(&[(file, "x")])), *want, "{file}");
    }
    let err = iso_args(Convention::Arch, &o).unwrap_err();
    assert!(err.contains("sda1") && err.contains("UUID"), "{err}");
    assert_eq!(
        iso_args(Convention::Dracut, &o).unwrap(),
        ["iso-scan/filename=/a.iso", "rd.live.image"]
    );
}

#[test]
fn arguments_go_before_the_separator_and_never_twice() {
    let a = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        add_args("vga=788 --- quiet", &a(&["iso-scan/filename=/x.iso"])),
        "vga=788 iso-scan/filename=/x.iso --- quiet"
    );
    assert_eq!(add_args("", &a(&["findiso=/x.iso"])), "findiso=/x.iso");
    assert_eq!(
        add_args(
            "rd.live.image quiet",
            &a(&["iso-scan/filename=/x", "rd.live.image"])
        ),
        "rd.live.image quiet iso-scan/filename=/x"
    );
    assert_eq!(
        add_args("findiso=/other.iso", &a(&["findiso=/x.iso"])),
        "findiso=/other.iso",
        "the config's own value stays"
    );
}

#[test]
fn an_unknown_layout_is_offered_with_a_warning() {
    let img = crate::testutil::iso_image(
        &["-R"],
        &[
            (
                "boot/grub/grub.cfg",
                b"menuentry Mystery { linux /vmlinuz x=1 }\n",
            ),
            ("vmlinuz", b"K"),
        ],
        &[],
    );
    let parent: Rc<dyn BootFs> = Rc::new(MemFs([("/m.iso".to_string(), img)].into()));
    let iso = IsoFs::open(parent, "/m.iso").unwrap();
    let v = crate::entry::tests::view("sda1/m.iso", &iso);
    let o = IsoOrigin {
        volume: "sda1".into(),
        path: "/m.iso".into(),
        volume_uuid: None,
    };
    let f = discover(&v, &[v], &o);
    assert_eq!(titles(&f), ["Mystery (m.iso)"]);
    assert!(f.errors[0].message.contains("no known distribution layout"));
}
