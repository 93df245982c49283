//! Measured boot: what leapboot extends into which TPM PCR before a kexec, and the log.
//!
//! PCRs, after the UAPI group's Linux TPM PCR Registry (SECURITY.md says why each):
//!
//! | PCR | what | digest (SHA-256 of) |
//! | --- | --- | --- |
//! | 8  | the entry's source: `leapboot entry '<id>' from <volume>:<file>[:<line>]` | the source configuration file's bytes (≤ 1 MiB); the event text itself when there is no readable file (a network source, a plain `/boot` scan) |
//! | 4  | the kernel: `leapboot kernel <volume>:<path>` | the kernel memfd: exactly the bytes `kexec_file_load` gets (a UKI's `.linux`) |
//! | 9  | the initrds: `leapboot initrds <file> <file>...` | the initrd memfd: every initrd concatenated, each padded with zeros to 4 bytes (a UKI's `.ucode` and `.initrd` first) |
//! | 12 | the command line: the command line itself | its bytes as passed, without the trailing NUL, after every edit |
//!
//! [`prepare`] hashes the memfds (only when a TPM is present: no TPM, no cost), after the
//! command line is final, and appends the event log to the initrd (below). The kernel keeps
//! one loaded image, so the planned events follow the loaded one ([`set_pending`]): a
//! default loaded ahead during the countdown and then not booted is never measured.
//! [`extend_pending`] extends them right before `reboot(RB_KEXEC)` (the initramfs) or right
//! after the load (the host CLI, whose kexec is done later by the init system). Each PCR's
//! value is read from sysfs before and after, logged, and the TPM's result checked against
//! the value computed here.
//!
//! The log ([`crate::tpm::eventlog`], TCG binary format) holds leapboot's events only; the
//! firmware's own events are the firmware log (`/sys/kernel/security/tpm0/
//! binary_bios_measurements`). It is kept in [`LOG_PATH`] (extended events only) and passed
//! to the next kernel: a small uncompressed newc archive holding [`NEXT_LOG`] is appended to
//! the initrd after the measured bytes (an event log is never measured itself: replaying it
//! against the PCRs is what vouches for it). An entry without initrds gets no log (an
//! initramfs would change how that kernel boots). A leapboot that finds such a log
//! (`/leapboot/tpm-eventlog.bin`, e.g. the host CLI run from that initramfs) continues it.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::config::MeasuredBoot;
use crate::entry::BootEntry;
use crate::pipeline::Volumes;
use crate::tpm::eventlog::{self, Event, EV_IPL};
use crate::tpm::{Tpm, TpmError};

/// The entry's source (GRUB's PCR for the commands it ran).
pub const PCR_SOURCE: u32 = 8;
/// The kernel image (the boot loader's PCR for the next image it runs).
pub const PCR_KERNEL: u32 = 4;
/// The initrds (the Linux EFI stub's PCR for the initrds it is passed).
pub const PCR_INITRD: u32 = 9;
/// The command line (systemd-boot's PCR for the command line it passes).
pub const PCR_CMDLINE: u32 = 12;
/// Where the log of what this system extended is kept.
pub const LOG_PATH: &str = "/run/leapboot/tpm-eventlog.bin";
/// Where the next kernel's initramfs holds the log.
pub const NEXT_LOG: &str = "leapboot/tpm-eventlog.bin";
/// The largest source file hashed for PCR 8 (the configuration parsers' own bound).
pub const MAX_SOURCE_BYTES: u64 = 1 << 20;

static MODE: Mutex<MeasuredBoot> = Mutex::new(MeasuredBoot::Auto);
/// The events planned for the kernel loaded now (none: not measured).
static PENDING: Mutex<Option<Vec<Event>>> = Mutex::new(None);
/// Events extended so far (read from [`LOG_PATH`] on first use).
static DONE: Mutex<Option<Vec<Event>>> = Mutex::new(None);

/// Sets the `measured_boot` mode (from `/etc/leapboot.toml`).
pub fn set_mode(m: MeasuredBoot) {
    *MODE.lock().unwrap_or_else(|e| e.into_inner()) = m;
}

/// The `measured_boot` mode.
pub fn mode() -> MeasuredBoot {
    *MODE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why measuring failed (a refusal when measured boot is required).
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// `measured_boot = "required"` and no TPM.
    #[error("measured boot is required (measured_boot = \"required\" or leapboot.measured_boot=required) but {0}: not booting this entry unmeasured")]
    NoTpm(TpmError),
    /// Reading back what is to be measured failed.
    #[error("cannot hash the {what} to measure it: {source}")]
    Hash {
        /// Which file.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The TPM failed.
    #[error("measuring into the TPM failed: {0}")]
    Tpm(TpmError),
}

/// When measured boot is required, whether a TPM is there at all: checked before any file
/// is read, so a refused entry costs no reading.
pub fn check_required() -> Result<(), MeasureError> {
    if mode() == MeasuredBoot::Required && crate::tpm::find(crate::tpm::DEVICES).is_none() {
        return Err(MeasureError::NoTpm(TpmError::Absent));
    }
    Ok(())
}

/// What to measure for `entry`, if measuring is on and a TPM is there: `Ok(None)` when not
/// measuring. `kernel` and `initrd` are the memfds for `kexec_file_load`, `cmdline` its
/// final command line. With a TPM, the log (earlier events and these) is appended to
/// `initrd`, after the measured bytes.
pub fn prepare(
    entry: &BootEntry,
    kernel: &File,
    initrd: Option<&File>,
    cmdline: &[u8],
    vols: &Volumes,
) -> Result<Option<Vec<Event>>, MeasureError> {
    let m = mode();
    if m == MeasuredBoot::Off {
        return Ok(None);
    }
    if crate::tpm::find(crate::tpm::DEVICES).is_none() {
        if m == MeasuredBoot::Required {
            return Err(MeasureError::NoTpm(TpmError::Absent));
        }
        log::debug!("no TPM: the boot is not measured");
        return Ok(None);
    }
    let t = std::time::Instant::now();
    let events = plan(entry, kernel, initrd, cmdline, vols)?;
    log::info!(
        "tpm: {} measurements planned ({} ms to hash)",
        events.len(),
        t.elapsed().as_millis()
    );
    if let Some(f) = initrd {
        let mut all = done_events();
        all.extend(events.iter().cloned());
        let archive = newc(NEXT_LOG, &eventlog::encode(&all));
        let end = f.metadata().map_err(hash_err("initrd"))?.len();
        f.write_all_at(&archive, end).map_err(hash_err("initrd"))?;
    }
    Ok(Some(events))
}

fn hash_err(what: &'static str) -> impl Fn(std::io::Error) -> MeasureError {
    move |source| MeasureError::Hash { what, source }
}

/// SHA-256 of a whole file, read from offset 0 (the file position is left alone).
pub fn hash_file(f: &File) -> std::io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    loop {
        let n = f.read_at(&mut buf, at)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        at += n as u64;
    }
    Ok(h.finalize().into())
}

/// The events for `entry`, in the order they are extended (PCR 8, 4, 9, 12).
pub fn plan(
    entry: &BootEntry,
    kernel: &File,
    initrd: Option<&File>,
    cmdline: &[u8],
    vols: &Volumes,
) -> Result<Vec<Event>, MeasureError> {
    let s = &entry.source;
    let mut text = format!(
        "leapboot entry '{}' from {}",
        entry.id,
        crate::entry::place(&s.volume, &s.file)
    );
    if let Some(line) = s.line {
        text.push_str(&format!(":{line}"));
    }
    let source = vols
        .fs(&s.volume)
        .filter(|_| !s.file.is_empty())
        .and_then(|fs| fs.read(&s.file, MAX_SOURCE_BYTES).ok());
    let source_digest: [u8; 32] = match &source {
        Some(bytes) => Sha256::digest(bytes).into(),
        None => Sha256::digest(text.as_bytes()).into(),
    };
    let mut events = vec![Event {
        pcr: PCR_SOURCE,
        kind: EV_IPL,
        digest: source_digest,
        data: text.into_bytes(),
    }];
    events.push(Event {
        pcr: PCR_KERNEL,
        kind: EV_IPL,
        digest: hash_file(kernel).map_err(hash_err("kernel"))?,
        data: format!("leapboot kernel {}", entry.kernel).into_bytes(),
    });
    if let Some(f) = initrd {
        let mut names = Vec::new();
        if entry.kind == crate::entry::EntryKind::Uki {
            names.push(format!("{} .ucode .initrd", entry.kernel));
        }
        names.extend(entry.initrds.iter().map(|f| f.to_string()));
        events.push(Event {
            pcr: PCR_INITRD,
            kind: EV_IPL,
            digest: hash_file(f).map_err(hash_err("initrd"))?,
            data: format!("leapboot initrds {}", names.join(" ")).into_bytes(),
        });
    }
    events.push(Event {
        pcr: PCR_CMDLINE,
        kind: EV_IPL,
        digest: Sha256::digest(cmdline).into(),
        data: cmdline.to_vec(),
    });
    Ok(events)
}

/// The events of the kernel now loaded (`None`: it is not measured).
pub fn set_pending(events: Option<Vec<Event>>) {
    *PENDING.lock().unwrap_or_else(|e| e.into_inner()) = events;
}

/// The events extended so far: this process's, after those of [`LOG_PATH`] when it
/// existed (a running system where an earlier `leapboot load` measured), else of
/// `/`[`NEXT_LOG`] (the log an earlier leapboot handed to this system's initramfs).
fn done_events() -> Vec<Event> {
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    done.get_or_insert_with(|| {
        // Only leapboot writes it, on a tmpfs only root may write; parse bounds it. None
        // yet: the log the loader before us passed in our initramfs, so a chain of kexecs
        // keeps one log.
        let read = std::fs::read(LOG_PATH).or_else(|_| std::fs::read(format!("/{NEXT_LOG}")));
        match read.map(|b| eventlog::parse(&b)) {
            Ok(Ok(events)) => events,
            Ok(Err(e)) => {
                log::warn!("{LOG_PATH}: {e}; starting a new log");
                Vec::new()
            }
            Err(_) => Vec::new(),
        }
    })
    .clone()
}

/// Extends the pending events (see [`set_pending`]) into the TPM and records them in
/// [`LOG_PATH`]. Nothing pending: `Ok`. An error is the caller's to log, or, when measured
/// boot is required, to refuse the boot with.
pub fn extend_pending() -> Result<(), MeasureError> {
    let Some(events) = PENDING.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return Ok(());
    };
    let mut tpm = Tpm::open().map_err(MeasureError::Tpm)?;
    let sysfs = std::path::Path::new(crate::tpm::SYSFS_TPM);
    let mut done = done_events();
    let mut result = Ok(());
    for e in &events {
        let before = crate::tpm::read_pcr(sysfs, e.pcr);
        if let Err(err) = tpm.extend(e.pcr, &e.digest) {
            // The log keeps what was extended before the failure, nothing after it.
            result = Err(MeasureError::Tpm(err));
            break;
        }
        done.push(e.clone());
        let after = crate::tpm::read_pcr(sysfs, e.pcr);
        let show = |v: Option<[u8; 32]>| v.map_or("unknown".into(), |v| eventlog::hex(&v));
        log::info!(
            "tpm: PCR {} extended with {} ({}): {} -> {}",
            e.pcr,
            eventlog::hex(&e.digest),
            String::from_utf8_lossy(&e.data),
            show(before),
            show(after)
        );
        if let (Some(b), Some(a)) = (before, after) {
            if eventlog::extend(&b, &e.digest) != a {
                log::warn!(
                    "tpm: PCR {} is not what extending it should give: something else extended it meanwhile",
                    e.pcr
                );
            }
        }
    }
    *DONE.lock().unwrap_or_else(|e| e.into_inner()) = Some(done.clone());
    if let Err(e) = write_log(&done) {
        log::warn!("tpm: cannot keep the event log in {LOG_PATH}: {e}");
    }
    result
}

fn write_log(events: &[Event]) -> std::io::Result<()> {
    let path = std::path::Path::new(LOG_PATH);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, eventlog::encode(events))
}

/// A newc (`070701`) cpio archive holding `path` (its parent directories first) with
/// `data`, mode 0444, and the trailer: what the kernel's initramfs unpacker reads.
pub fn newc(path: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ino = 1;
    let mut entry = |out: &mut Vec<u8>, name: &str, mode: u32, body: &[u8]| {
        let fields = [
            ino,
            mode,
            0,
            0,
            1,
            0,
            body.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        ino += 1;
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(body);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    };
    let parts: Vec<&str> = path.split('/').collect();
    for i in 1..parts.len() {
        entry(&mut out, &parts[..i].join("/"), 0o040755, &[]);
    }
    entry(&mut out, path, 0o100444, data);
    entry(&mut out, "TRAILER!!!", 0, &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{EntryKind, EntrySource, FileRef, Format};
    use std::io::Write;

    fn entry(vol: &str) -> BootEntry {
        BootEntry {
            id: "a".into(),
            title: "A".into(),
            version: None,
            kernel: FileRef {
                volume: vol.into(),
                path: "/vmlinuz".into(),
            },
            initrds: vec![
                FileRef {
                    volume: vol.into(),
                    path: "/one".into(),
                },
                FileRef {
                    volume: vol.into(),
                    path: "/two".into(),
                },
            ],
            cmdline: "console=ttyS0".into(),
            devicetree: None,
            format: Format::Bls,
            kind: EntryKind::Linux,
            source: EntrySource {
                volume: vol.into(),
                file: "/loader/entries/a.conf".into(),
                line: None,
            },
        }
    }

    fn file(bytes: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    #[test]
    fn the_plan_measures_the_memfd_bytes_into_the_registry_s_pcrs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("loader/entries")).unwrap();
        let conf = b"title A\nlinux /vmlinuz\n";
        std::fs::write(dir.path().join("loader/entries/a.conf"), conf).unwrap();
        let mut vols = Volumes::default();
        vols.add_dir(dir.path());
        let vol = dir.path().display().to_string();
        let e = entry(&vol);
        let (k, i) = (file(b"KERNEL"), file(b"ONE\0TWO\0"));
        let events = plan(&e, &k, Some(&i), b"console=ttyS0 x=1", &vols).unwrap();
        let pcrs: Vec<u32> = events.iter().map(|e| e.pcr).collect();
        assert_eq!(pcrs, [8, 4, 9, 12]);
        let sha = |b: &[u8]| -> [u8; 32] { Sha256::digest(b).into() };
        assert_eq!(events[0].digest, sha(conf), "the source file's bytes");
        assert_eq!(
            String::from_utf8_lossy(&events[0].data),
            format!("leapboot entry 'a' from {vol}:/loader/entries/a.conf")
        );
        assert_eq!(events[1].digest, sha(b"KERNEL"));
        assert_eq!(events[2].digest, sha(b"ONE\0TWO\0"));
        assert_eq!(
            String::from_utf8_lossy(&events[2].data),
            format!("leapboot initrds {vol}:/one {vol}:/two")
        );
        assert_eq!(events[3].digest, sha(b"console=ttyS0 x=1"));
        assert_eq!(events[3].data, b"console=ttyS0 x=1");
        assert!(events.iter().all(|e| e.kind == EV_IPL));
        // No initrd: no PCR 9 event. No readable source: the text is the digest.
        let events = plan(&entry("nowhere"), &k, None, b"", &vols).unwrap();
        assert_eq!(events.iter().map(|e| e.pcr).collect::<Vec<_>>(), [8, 4, 12]);
        assert_eq!(events[0].digest, sha(&events[0].data));
    }

    #[test]
    fn measuring_is_off_or_refused_without_a_tpm() {
        // This machine's test run has no TPM device nodes (checked, so the test is honest).
        if crate::tpm::find(crate::tpm::DEVICES).is_some() {
            return;
        }
        let vols = Volumes::default();
        let (k, i) = (file(b"K"), file(b"I"));
        let e = entry("v");
        set_mode(MeasuredBoot::Auto);
        assert!(prepare(&e, &k, Some(&i), b"", &vols).unwrap().is_none());
        assert_eq!(i.metadata().unwrap().len(), 1, "no log appended");
        set_mode(MeasuredBoot::Required);
        assert!(check_required().is_err());
        let err = prepare(&e, &k, Some(&i), b"", &vols).unwrap_err();
        assert!(err.to_string().contains("required"), "{err}");
        assert!(err.to_string().contains("no TPM found"), "{err}");
        set_mode(MeasuredBoot::Off);
        assert!(prepare(&e, &k, Some(&i), b"", &vols).unwrap().is_none());
        set_mode(MeasuredBoot::Auto);
        // Nothing pending: extending is a no-op.
        set_pending(None);
        assert!(extend_pending().is_ok());
    }

    #[test]
    fn the_log_archive_is_a_newc_cpio_with_its_directory() {
        let a = newc("leapboot/tpm-eventlog.bin", b"LOG");
        assert_eq!(a.len() % 4, 0);
        let text = String::from_utf8_lossy(&a);
        assert_eq!(text.matches("070701").count(), 3);
        let dir = text.find("leapboot\0").unwrap();
        let file = text.find("leapboot/tpm-eventlog.bin\0").unwrap();
        assert!(dir < file);
        assert!(text.ends_with("TRAILER!!!\0\0\0\0"));
        // The file's header (6 + 13 fields of 8 hex digits): mode 0100444, 3 bytes, a name
        // of 26 bytes with its NUL; the name, then the data at a 4-byte boundary.
        let h = &text[file - 110..file];
        assert_eq!(&h[..6], "070701");
        assert_eq!(&h[14..22], "00008124");
        assert_eq!(&h[54..62], "00000003");
        assert_eq!(&h[94..102], "0000001A");
        assert_eq!((file - 110) % 4, 0);
        assert!(text[file..].starts_with("leapboot/tpm-eventlog.bin\0LOG\0"));
    }
}
