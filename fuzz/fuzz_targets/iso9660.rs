//! The ISO 9660 reader on arbitrary bytes: the input is an ISO image file on a volume; it is
//! opened, every directory reachable within a bound is listed, and every file is looked up,
//! read whole (bounded) and at an offset, and the ISO-file discovery runs on it (loopback.cfg
//! through the GRUB interpreter, or a config plus the distribution's parameter). Short inputs
//! get a primary volume descriptor header at sector 16 so the fuzzer reaches the directories.
#![no_main]

use std::rc::Rc;

use leapboot::entry::isofile::{self, IsoOrigin};
use leapboot::entry::VolumeView;
use leapboot::fs::iso::IsoFs;
use leapboot::fs::mem::MemFs;
use leapboot::fs::{BootFs, FileKind};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut img = data.to_vec();
    if img.len() < 16 * 2048 + 6 {
        let mut head = vec![0u8; 16 * 2048];
        head.extend_from_slice(&[1, b'C', b'D', b'0', b'0', b'1']);
        head.extend_from_slice(data);
        img = head;
    }
    let parent: Rc<dyn BootFs> = Rc::new(MemFs([("/f.iso".to_string(), img)].into()));
    let Ok(iso) = IsoFs::open(parent, "/f.iso") else {
        return;
    };
    let mut todo = vec!["/".to_string()];
    let mut dirs = 0;
    while let Some(d) = todo.pop() {
        dirs += 1;
        if dirs > 64 {
            break;
        }
        for e in iso.read_dir(&d).unwrap_or_default() {
            let p = format!("{}/{}", d.trim_end_matches('/'), e.name);
            let _ = iso.metadata(&p);
            let _ = iso.read(&p, 1 << 16);
            let mut b = [0u8; 32];
            let _ = iso.read_at(&p, 7, &mut b);
            if e.kind == FileKind::Dir && p.len() < 512 {
                todo.push(p);
            }
        }
    }
    let v = VolumeView {
        name: "fuzz/f.iso",
        fs: &iso,
        uuid: iso.uuid(),
        label: iso.label(),
        part_uuid: None,
        part_type: None,
        grub_position: None,
        root_fs: false,
    };
    let origin = IsoOrigin {
        volume: "fuzz".into(),
        path: "/f.iso".into(),
        volume_uuid: Some("0000-0000".into()),
    };
    let found = isofile::discover(&v, &[v], &origin);
    for e in &found.entries {
        assert!(e.title.ends_with("(f.iso)"));
    }
});
