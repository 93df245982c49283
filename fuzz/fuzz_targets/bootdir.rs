//! The plain /boot scan's name classifier and kernel/initrd pairing on arbitrary names: each
//! input line is a file name; the first line is classified alone, then all are scanned as
//! `/boot`.
#![no_main]

use std::io::Write;

use leapboot::entry::VolumeView;
use leapboot::fs::{BootFs, DirEntry, FileKind, FsError, Metadata};

struct Names(Vec<String>);

impl BootFs for Names {
    fn metadata(&self, path: &str) -> Result<Metadata, FsError> {
        let name = path.strip_prefix("/boot/").unwrap_or("");
        match self.0.iter().position(|n| n == name) {
            Some(i) => Ok(Metadata {
                kind: FileKind::File,
                len: i as u64 % 3,
            }),
            None => Err(FsError::NotFound(path.to_string())),
        }
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        if path != "/boot" {
            return Err(FsError::NotFound(path.to_string()));
        }
        Ok(self
            .0
            .iter()
            .map(|n| DirEntry {
                name: n.clone(),
                kind: FileKind::File,
            })
            .collect())
    }

    fn copy_to(&self, path: &str, _out: &mut dyn Write, _max: u64) -> Result<u64, FsError> {
        Err(FsError::NotFound(path.to_string()))
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let names: Vec<String> = text.lines().take(200).map(str::to_string).collect();
    if let Some(k) = names
        .first()
        .and_then(|n| leapboot::entry::bootdir::classify(n))
    {
        let _ = leapboot::entry::bootdir::initrd_names(&k);
    }
    let fs = Names(names);
    let vol = VolumeView {
        name: "fuzz",
        fs: &fs,
        uuid: Some("u"),
        label: None,
        part_uuid: None,
        part_type: None,
        grub_position: None,
        root_fs: false,
    };
    let found = leapboot::entry::bootdir::discover(&vol, &[]);
    for w in found.entries.windows(2) {
        if let (Some(a), Some(b)) = (&w[0].version, &w[1].version) {
            assert!(leapboot::version::compare(a, b) != std::cmp::Ordering::Less);
        }
    }
});
