//! The fuzz targets' bodies: each `fuzz/fuzz_targets/<name>.rs` calls the function of the
//! same name here, and `cargo test` replays every checked-in corpus file
//! (`fuzz/corpus/<name>/*`) through it on stable Rust, without cargo-fuzz
//! ([`tests::fuzz_corpora_replay`]): each defect's input found once stays a test.
//! Each function must never panic on any input (the asserts are the properties fuzzing checks).

#![allow(missing_docs)]

use std::io::Write;

use crate::disk::Disk;
use crate::entry::uki::{osrel::OsRelease, pe};
use crate::entry::{BootEntry, EntryKind, EntrySource, FileRef, Format, Timeout, VolumeView};
use crate::fs::mem::MemFs;
use crate::fs::{BootFs, DirEntry, FileKind, FsError, Metadata};
use crate::menu::keys::Decoder;
use crate::menu::render::{render, Screen};
use crate::menu::state::{Lock, Menu};

/// Boot Loader Spec entry and loader.conf parsing on arbitrary bytes.
pub fn bls(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (stem, body) = text.split_once('\n').unwrap_or(("fuzz", &text));
    let _ = crate::entry::bls::parse_entry(stem, body);
    let _ = crate::entry::bls::parse_loader_conf(&text);
}

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

/// The plain /boot scan's name classifier and kernel/initrd pairing on arbitrary names: each
/// input line is a file name; the first line is classified alone, then all are scanned as
/// `/boot`.
pub fn bootdir(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let names: Vec<String> = text.lines().take(200).map(str::to_string).collect();
    if let Some(k) = names
        .first()
        .and_then(|n| crate::entry::bootdir::classify(n))
    {
        let _ = crate::entry::bootdir::initrd_names(&k);
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
    let found = crate::entry::bootdir::discover(&vol, &[]);
    for w in found.entries.windows(2) {
        if let (Some(a), Some(b)) = (&w[0].version, &w[1].version) {
            assert!(crate::version::compare(a, b) != std::cmp::Ordering::Less);
        }
    }
}

const GRUB_NAMES: [&str; 4] = [
    "/boot/grub/grub.cfg",
    "/boot/grub/a.cfg",
    "/boot/grub/grubenv",
    "/loader/entries/e.conf",
];

/// GRUB script on arbitrary bytes: the input, split at NUL bytes, is `/boot/grub/grub.cfg`, a
/// file it may `source`/`configfile`, a grubenv and a BLS entry (for `blscfg`); the whole
/// `discover` runs on them: lexer, parser, interpreter with its budget, submenus, default.
pub fn grub(data: &[u8]) {
    let fs = MemFs::from_chunks(data, &GRUB_NAMES);
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
    let found = crate::entry::grub::discover(&all[0], &all);
    let _ = found.default_index();
    for e in &found.entries {
        assert!(e.kernel.path.starts_with('/'));
        assert!(e.cmdline.starts_with("BOOT_IMAGE="));
    }
    let _ = crate::entry::bls::discover(&all[0], &all);
}

fn menu_entry(i: usize) -> BootEntry {
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

/// Console bytes → key decoder → menu state machine → renderer, and the same bytes through
/// the cancel-key rule of network loads: no panic, frames in bounds.
pub fn menu_keys(data: &[u8]) {
    let n = data.first().map_or(0, |b| usize::from(b % 30));
    let lock = Lock {
        locked: data.get(1).is_some_and(|b| b & 1 == 1),
        ..Lock::default()
    };
    let mut menu = Menu::new(
        (0..n).map(menu_entry).collect(),
        Some(1),
        Timeout::Secs(3),
        lock,
    );
    let mut d = Decoder::new();
    // The same bytes as keys during a network load: what cancels it (time steps of 30 ms).
    let mut cancel = crate::menu::keys::CancelKeys::new();
    let t0 = std::time::Instant::now();
    let screen = Screen {
        width: 40,
        height: 12,
        colour: true,
    };
    menu.set_page(screen.page());
    for (i, chunk) in data.chunks(7).enumerate() {
        let _ = cancel.feed(chunk, t0 + std::time::Duration::from_millis(30 * i as u64));
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
}

/// `modules.alias` text and a modalias: parse, then look the modalias up (the first line of
/// the input is the modalias, the rest the alias file).
pub fn modalias(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (modalias, aliases) = text.split_once('\n').unwrap_or((&text, ""));
    let a = crate::kmod::Aliases::parse(aliases);
    let _ = a.lookup(modalias);
}

/// Partition tables (MBR with EBR chains, protective/hybrid MBR, GPT behind its guard) on an
/// in-memory disk of arbitrary bytes: never a panic or a hang, every partition inside the disk.
pub fn partition(data: &[u8]) {
    let disk = Disk::from_bytes("fuzz", data.to_vec());
    if let Ok(table) = crate::partition::read(&disk) {
        for p in table.partitions() {
            assert!(p
                .start
                .checked_add(p.len)
                .is_some_and(|end| end <= disk.size()));
        }
    }
}

/// Filesystem/container identification on arbitrary superblock bytes: the first input bytes
/// are the volume head, the last 512 (if the input is longer than 1 KiB) an md tail sector.
pub fn probe(data: &[u8]) {
    let (head, tails) = if data.len() > 1024 {
        let (h, t) = data.split_at(data.len() - 512);
        (h, vec![t.to_vec()])
    } else {
        (data, Vec::new())
    };
    let _ = crate::probe::identify(head, &tails);
}

const SYSLINUX_NAMES: [&str; 5] = [
    "/syslinux/syslinux.cfg",
    "/syslinux/a.cfg",
    "/b.cfg",
    "/pxelinux.cfg/default",
    "/syslinux/vmlinuz",
];

/// syslinux configuration parsing on arbitrary bytes: the input, split at NUL bytes, is the
/// main config and three files it may INCLUDE (or that other families read); the whole
/// `discover` runs on them (labels, includes, submenus, default and timeout resolution).
pub fn syslinux(data: &[u8]) {
    let fs = MemFs::from_chunks(data, &SYSLINUX_NAMES);
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
    let found = crate::entry::syslinux::discover(&vol, &[]);
    let _ = found.default_index();
    for e in &found.entries {
        assert!(e.kernel.path.starts_with('/'));
    }
}

/// Kernel uevent datagrams: parse, then classify (both must never panic).
pub fn uevent(data: &[u8]) {
    if let Some(u) = crate::discover::uevent::parse(data) {
        let _ = crate::discover::uevent::events_of(&u, true);
        let _ = crate::discover::uevent::events_of(&u, false);
    }
}

/// Unified kernel image section-table reading and os-release parsing on arbitrary bytes.
pub fn uki(data: &[u8]) {
    // The whole input is the file; also as the head of a longer file, and cut short.
    let len = data.len() as u64;
    for (head, file_len) in [
        (data, len),
        (data, len.saturating_mul(2)),
        (&data[..data.len() / 2], len),
    ] {
        if let Ok(s) = pe::parse(head, file_len) {
            let ranges = [
                Some(s.linux),
                s.initrd,
                s.ucode,
                s.cmdline,
                s.osrel,
                s.uname,
            ];
            for r in ranges.into_iter().flatten() {
                assert!(
                    r.start <= r.end && r.end <= file_len,
                    "{r:?} outside {file_len}"
                );
            }
        }
    }
    let os = OsRelease::parse(&String::from_utf8_lossy(data));
    let _ = (os.title(), os.version(), os.sort_key());
}

/// Glob matching on arbitrary patterns and texts: the first line is the pattern, the rest the
/// text; also `BootList::find`-style matching of `<text>.conf`.
pub fn glob(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (pattern, subject) = text.split_once('\n').unwrap_or((&text, ""));
    let _ = crate::glob::matches(pattern, subject);
    let _ = crate::glob::matches(pattern, &format!("{subject}.conf"));
    let _ = crate::glob::matches_bytes(pattern.as_bytes(), subject.as_bytes());
}

/// The FAT reader on an arbitrary image: open, list the root and `/loader/entries`, read
/// every file found there (looping cluster chains must end: the read budget).
pub fn fat(data: &[u8]) {
    let disk = Disk::from_bytes("fuzz", data.to_vec());
    let Ok(fs) = crate::fs::fat::FatFs::open(disk.slice(0, disk.size())) else {
        return;
    };
    for dir in ["/", "/loader", "/loader/entries", "/EFI/BOOT"] {
        if let Ok(list) = fs.read_dir(dir) {
            for e in list.iter().take(64) {
                let path = format!("{}/{}", dir.trim_end_matches('/'), e.name);
                let _ = fs.metadata(&path);
                let _ = fs.read(&path, 1 << 20);
            }
        }
    }
}

/// Terminal sanitising: nothing that acts on a terminal survives, in text or JSON.
pub fn sanitize(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let out = crate::sanitize::for_terminal(&text);
    assert!(!out
        .chars()
        .any(|c| c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)));
    let json = serde_json::json!({ "s": text }).to_string();
    let safe = crate::sanitize::json_escape_terminal_controls(&json);
    assert!(!safe.chars().any(|c| c.is_control()));
}

/// The TPM's reply to `TPM2_PCR_Extend`: checked, never panicking, `Ok` only for a
/// well-formed success.
pub fn tpm_response(data: &[u8]) {
    if crate::tpm::command::parse_response(data).is_ok() {
        assert!(data.len() >= 19 && data[6..10] == [0, 0, 0, 0]);
    }
}

/// The TCG binary event log: parsed, bounded, and a parsed log written again reads back the
/// same (SHA-256 only) events.
pub fn tpm_eventlog(data: &[u8]) {
    use crate::tpm::eventlog;
    if let Ok(events) = eventlog::parse(data) {
        assert!(events.len() <= eventlog::MAX_EVENTS);
        let again = eventlog::parse(&eventlog::encode(&events));
        assert_eq!(again.as_ref(), Ok(&events));
        let _ = eventlog::replay(&events, |_| [0; 32]);
    }
}

/// `require_signed`'s Authenticode check on arbitrary bytes: as an image (trusting the
/// test root, so that a signed seed reaches the RSA and chain checks), as a PKCS#7 blob,
/// as a certificate and as a PEM/DER certificate file.
pub fn pesig(data: &[u8]) {
    use crate::pesig::{self, Trust};
    let mut trust = Trust::default();
    let root = include_bytes!("pesig/testdata/root.pem");
    assert!(trust.add("root.pem", root).is_ok());
    let _ = pesig::verify(&data.to_vec(), &trust);
    let _ = pesig::authenticode::parse(data);
    let _ = pesig::x509::Cert::parse(data);
    let _ = Trust::default().add("input", data);
}

/// A fuzz target's function.
pub type Target = fn(&[u8]);

/// Every fuzz target: its name (the corpus directory) and its function.
pub const TARGETS: &[(&str, Target)] = &[
    ("bls", bls),
    ("bootdir", bootdir),
    ("fat", fat),
    ("glob", glob),
    ("grub", grub),
    ("menu_keys", menu_keys),
    ("modalias", modalias),
    ("partition", partition),
    ("pesig", pesig),
    ("probe", probe),
    ("sanitize", sanitize),
    ("syslinux", syslinux),
    ("tpm_eventlog", tpm_eventlog),
    ("tpm_response", tpm_response),
    ("uevent", uevent),
    ("uki", uki),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Replays `fuzz/corpus/<target>/*` through each target. Every target has a corpus, and
    /// no input may take longer than a generous bound even in a debug build (the corpora
    /// hold the inputs of issue 11's CPU blow-ups).
    #[test]
    fn fuzz_corpora_replay() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        let mut total = 0;
        for (name, f) in TARGETS {
            let dir = root.join(name);
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}: every target needs a corpus", dir.display()))
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            assert!(!files.is_empty(), "{}: empty corpus", dir.display());
            for file in files {
                let data = std::fs::read(&file).unwrap();
                let t = Instant::now();
                let r = std::panic::catch_unwind(|| f(&data));
                assert!(r.is_ok(), "{name}: {} panicked", file.display());
                assert!(
                    t.elapsed() < Duration::from_secs(20),
                    "{name}: {} took {:?}",
                    file.display(),
                    t.elapsed()
                );
                total += 1;
            }
        }
        assert!(total >= TARGETS.len());
    }
}
