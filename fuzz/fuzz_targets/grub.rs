//! GRUB script on arbitrary bytes: the input, split at NUL bytes, is `/boot/grub/grub.cfg`, a
//! file it may `source`/`configfile`, a grubenv and a BLS entry (for `blscfg`); the whole
//! `discover` runs on them: lexer, parser, interpreter with its budget, submenus, default.
#![no_main]

use leapboot::entry::VolumeView;
use leapboot::fs::mem::MemFs;

const NAMES: [&str; 4] = [
    "/boot/grub/grub.cfg",
    "/boot/grub/a.cfg",
    "/boot/grub/grubenv",
    "/loader/entries/e.conf",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let fs = MemFs::from_chunks(data, &NAMES);
    let vol = VolumeView {
        name: "fuzz",
        fs: &fs,
        uuid: Some("1234-abcd"),
        label: Some("boot"),
        part_uuid: None,
        part_type: Some("0fc63daf-8483-4772-8e79-3d69d8e477e4"),
        grub_position: Some((0, 1)),
        root_fs: false,
    };
    let all = [vol];
    let found = leapboot::entry::grub::discover(&all[0], &all);
    let _ = found.default_index();
    for e in &found.entries {
        assert!(e.kernel.path.starts_with('/'));
        assert!(e.cmdline.starts_with("BOOT_IMAGE="));
    }
    let _ = leapboot::entry::bls::discover(&all[0], &all);
});
