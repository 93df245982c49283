//! Console bytes → key decoder → menu state machine → renderer: no panic, frames in bounds.
#![no_main]

use leapboot::entry::{BootEntry, EntryKind, EntrySource, FileRef, Format, Timeout};
use leapboot::menu::keys::Decoder;
use leapboot::menu::render::{render, Screen};
use leapboot::menu::state::{Lock, Menu};
use libfuzzer_sys::fuzz_target;

fn entry(i: usize) -> BootEntry {
    BootEntry {
        id: format!("e{i}"),
        title: format!("Entry>{i}"),
        version: None,
        kernel: FileRef {
            volume: "vda1".into(),
            path: "/vmlinuz".into(),
        },
        initrds: vec![],
        cmdline: "console=ttyS0".into(),
        devicetree: None,
        format: Format::Grub,
        kind: EntryKind::Linux,
        source: EntrySource {
            volume: "vda1".into(),
            file: "/grub.cfg".into(),
            line: Some(1),
        },
    }
}

fuzz_target!(|data: &[u8]| {
    let n = data.first().map_or(0, |b| usize::from(b % 30));
    let lock = Lock {
        locked: data.get(1).is_some_and(|b| b & 1 == 1),
        ..Lock::default()
    };
    let mut menu = Menu::new((0..n).map(entry).collect(), Some(1), Timeout::Secs(3), lock);
    let mut d = Decoder::new();
    let screen = Screen {
        width: 40,
        height: 12,
        colour: true,
    };
    menu.set_page(screen.page());
    for chunk in data.chunks(7) {
        for k in d.feed(chunk) {
            let _ = menu.key(k);
        }
        let _ = menu.tick();
        let f = render(&menu, &[], screen);
        assert!(f.rows.len() < 12);
    }
    for k in d.flush() {
        let _ = menu.key(k);
    }
});
