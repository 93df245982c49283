//! syslinux configuration parsing on arbitrary bytes: the input, split at NUL bytes, is the
//! main config and three files it may INCLUDE (or that other families read); the whole
//! `discover` runs on them (labels, includes, submenus, default and timeout resolution).
#![no_main]

use std::collections::BTreeMap;
use std::io::Write;

use leapboot::entry::VolumeView;
use leapboot::fs::{BootFs, DirEntry, FileKind, FsError, Metadata};

struct Mem(BTreeMap<String, Vec<u8>>);

impl BootFs for Mem {
    fn metadata(&self, path: &str) -> Result<Metadata, FsError> {
        let p = leapboot::fs::normalize(path);
        match self.0.get(&p) {
            Some(c) => Ok(Metadata {
                kind: FileKind::File,
                len: c.len() as u64,
            }),
            None => Err(FsError::NotFound(p)),
        }
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        Err(FsError::NotFound(path.to_string()))
    }

    fn copy_to(&self, path: &str, out: &mut dyn Write, max: u64) -> Result<u64, FsError> {
        let p = leapboot::fs::normalize(path);
        let c = self.0.get(&p).ok_or_else(|| FsError::NotFound(p.clone()))?;
        if c.len() as u64 > max {
            return Err(FsError::TooLarge {
                path: p,
                len: c.len() as u64,
                max,
            });
        }
        out.write_all(c).map_err(|e| FsError::Io {
            path: p,
            message: e.to_string(),
        })?;
        Ok(c.len() as u64)
    }
}

const NAMES: [&str; 5] = [
    "/syslinux/syslinux.cfg",
    "/syslinux/a.cfg",
    "/b.cfg",
    "/pxelinux.cfg/default",
    "/syslinux/vmlinuz",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let files = data
        .split(|&b| b == 0)
        .zip(NAMES)
        .map(|(c, n)| (n.to_string(), c.to_vec()))
        .collect();
    let fs = Mem(files);
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
