//! The plain scan's "already offered" rule on arbitrary command lines and kernel paths: each
//! input line is `<version>\t<kernel path>\t<command line>` of one configured entry; the first
//! line is also the scanned kernel. `root=` specs resolve against three fixed volumes.
#![no_main]

use leapboot::entry::bootdir::offered::{root_volume, Offered};
use leapboot::entry::{BootEntry, EntryKind, EntrySource, FileRef, Format, VolumeView};
use leapboot::fs::mem::MemFs;

fn entry(line: &str, vol: &str) -> BootEntry {
    let mut parts = line.splitn(3, '\t');
    let version = parts.next().filter(|v| !v.is_empty()).map(str::to_string);
    let path = parts.next().unwrap_or("").to_string();
    let cmdline = parts.next().unwrap_or("").to_string();
    BootEntry {
        id: "e".into(),
        title: "t".into(),
        version,
        kernel: FileRef { volume: vol.into(), path: path.clone() },
        initrds: vec![],
        cmdline,
        devicetree: None,
        format: Format::Bls,
        kind: EntryKind::Linux,
        source: EntrySource { volume: vol.into(), file: path, line: None },
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let fs = MemFs::new(&[]);
    let view = |name, uuid, pos| VolumeView {
        name,
        fs: &fs,
        uuid,
        label: Some("root"),
        part_uuid: Some("12-34"),
        part_type: None,
        grub_position: pos,
        root_fs: false,
    };
    let views = [
        view("a:1", Some("ab-cd"), Some((0, 1))),
        view("a:2", Some("ef"), Some((0, 2))),
        view("dir", None, None),
    ];
    let vols = ["a:1", "a:2", "dir"];
    let configured: Vec<BootEntry> = text
        .lines()
        .take(512)
        .enumerate()
        .map(|(i, l)| entry(l, vols[i % 3]))
        .collect();
    for e in &configured {
        let _ = root_volume(&e.cmdline, &views);
    }
    let offered = Offered::new(&configured, &views);
    // Reflexive: an entry with a version is offered by itself (same version, same root or
    // same disk), whatever its command line holds.
    if let Some(first) = configured.first().filter(|e| e.version.is_some()) {
        assert!(offered.offering(first).is_some());
    }
});
