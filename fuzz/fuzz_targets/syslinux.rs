//! syslinux configuration parsing on arbitrary bytes: the input, split at NUL bytes, is the
//! main config and three files it may INCLUDE (or that other families read); the whole
//! `discover` runs on them (labels, includes, submenus, default and timeout resolution).
#![no_main]

use leapboot::entry::VolumeView;
use leapboot::fs::mem::MemFs;

const NAMES: [&str; 5] = [
    "/syslinux/syslinux.cfg",
    "/syslinux/a.cfg",
    "/b.cfg",
    "/pxelinux.cfg/default",
    "/syslinux/vmlinuz",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let fs = MemFs::from_chunks(data, &NAMES);
    let vol = VolumeView {
        name: "fuzz",
        fs: &fs,
        uuid: None,
        label: None,
        part_uuid: None,
        part_type: None,
        grub_position: None,
        root_fs: false,
    };
    let found = leapboot::entry::syslinux::discover(&vol, &[]);
    let _ = found.default_index();
    for e in &found.entries {
        assert!(e.kernel.path.starts_with('/'));
    }
});
