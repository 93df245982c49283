//! GRUB script on arbitrary bytes: the input, split at NUL bytes, is `/boot/grub/grub.cfg`, a
//! file it may `source`/`configfile`, a grubenv and a BLS entry (for `blscfg`); the whole
//! `discover` runs on them: lexer, parser, interpreter with its budget, submenus, default.
#![no_main]

use std::collections::BTreeMap;
use std::io::Write;

use leapboot::entry::VolumeView;
use leapboot::fs::{BootFs, DirEntry, FileKind, FsError, Metadata};

struct Mem(BTreeMap<String, Vec<u8>>);

impl BootFs for Mem {
    fn metadata(&self, path: &str) -> Result<Metadata, FsError> {
        let p = leapboot::fs::normalize(path);
        if let Some(c) = self.0.get(&p) {
            return Ok(Metadata {
                kind: FileKind::File,
                len: c.len() as u64,
            });
        }
        let prefix = format!("{}/", p.trim_end_matches('/'));
        if self.0.keys().any(|k| k.starts_with(&prefix)) {
            return Ok(Metadata {
                kind: FileKind::Dir,
                len: 0,
            });
        }
        Err(FsError::NotFound(p))
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let p = leapboot::fs::normalize(path);
        let prefix = format!("{}/", p.trim_end_matches('/'));
        let mut out: Vec<DirEntry> = Vec::new();
        for k in self.0.keys() {
            if let Some(rest) = k.strip_prefix(&prefix) {
                let (name, kind) = match rest.split_once('/') {
                    Some((d, _)) => (d, FileKind::Dir),
                    None => (rest, FileKind::File),
                };
                if !out.iter().any(|e| e.name == name) {
                    out.push(DirEntry {
                        name: name.to_string(),
                        kind,
                    });
                }
            }
        }
        if out.is_empty() {
            return Err(FsError::NotFound(p));
        }
        Ok(out)
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

const NAMES: [&str; 4] = [
    "/boot/grub/grub.cfg",
    "/boot/grub/a.cfg",
    "/boot/grub/grubenv",
    "/loader/entries/e.conf",
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
