//! A scenario's TPM 2.0: `swtpm socket --tpm2` in a directory of the scenario's own, QEMU's
//! `tpm-tis` device on it, and the check of what leapboot measured.
//!
//! The harness computes the expected PCR values itself, from the bytes it put on the disk
//! (the `[tpm]` table names the files): PCR 8 the entry's source file, 4 the kernel, 9 the
//! initrds concatenated (each padded with zeros to 4 bytes), 12 the command line; each
//! `SHA-256(old || SHA-256(bytes))`. The starting values: SeaBIOS extends PCRs 0-7 (PCR 4
//! among them: "Booting from ..." and the boot device), never 8-15, so PCRs 8, 9, 12 must
//! start at zero; PCR 4's value before leapboot's measurement is the one leapboot read
//! from sysfs and logged (`tpm: PCR 4 extended with ...: <before> -> <after>`). The target
//! prints the PCRs its kernel shows and the event log leapboot passed in its initrd; the
//! log's events must be the expected digests and replay to the same PCRs, and tpm2-tools'
//! `tpm2_eventlog` (an independent reader of the format) must read it and compute the same
//! values from zeros.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::image::{Artifacts, DiskSpec};

/// `[tpm]`: a TPM for the guest, and where the measured entry's files are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TpmSpec {
    /// The disk (index in `[[disk]]`, default 0) and partition (index, default 0) holding
    /// the files below.
    #[serde(default)]
    pub disk: usize,
    #[serde(default)]
    pub partition: usize,
    /// The entry's configuration file (PCR 8).
    pub source: String,
    /// The kernel (PCR 4).
    pub kernel: String,
    /// The initrds, in order (PCR 9).
    #[serde(default)]
    pub initrds: Vec<String>,
    /// The command line the entry boots with (PCR 12).
    pub cmdline: String,
    /// The booted target then runs `leapboot reboot` into the `@chain-initrd` entry with
    /// this command line (the host CLI measures it too): the PCRs the last target prints
    /// must hold both boots, and its event log all eight events.
    pub chain_cmdline: Option<String>,
}

/// A running swtpm; killed when dropped (also when the scenario fails).
pub struct Swtpm {
    child: Child,
    socket: PathBuf,
}

impl Swtpm {
    /// Starts `swtpm socket --tpm2` with its state, control socket and log in `dir`.
    pub fn start(dir: &Path) -> anyhow::Result<Swtpm> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
        let socket = dir.join("swtpm.sock");
        let child = Command::new(crate::prereq::find("swtpm").context("swtpm")?)
            .arg("socket")
            .arg("--tpm2")
            .arg("--tpmstate")
            .arg(format!("dir={}", dir.display()))
            .arg("--ctrl")
            .arg(format!("type=unixio,path={}", socket.display()))
            .arg("--log")
            .arg(format!("file={},level=20", dir.join("swtpm.log").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(
                dir.join("swtpm.stderr"),
            )?))
            .spawn()
            .context("starting swtpm")?;
        let mut t = Swtpm { child, socket };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !t.socket.exists() {
            if let Some(status) = t.child.try_wait()? {
                bail!(
                    "swtpm exited ({status}): {}",
                    std::fs::read_to_string(dir.join("swtpm.stderr")).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                bail!("swtpm did not create {}", t.socket.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(t)
    }

    /// QEMU's arguments for a TIS TPM on this swtpm.
    pub fn qemu_args(&self) -> Vec<String> {
        vec![
            "-chardev".into(),
            format!("socket,id=chrtpm,path={}", self.socket.display()),
            "-tpmdev".into(),
            "emulator,id=tpm0,chardev=chrtpm".into(),
            "-device".into(),
            "tpm-tis,tpmdev=tpm0".into(),
        ]
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

fn extend(old: &[u8; 32], digest: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(old);
    h.update(digest);
    h.finalize().into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    unhex(s)?.try_into().ok()
}

/// The measurements leapboot should make, in its order: (PCR, digest, what).
pub fn expected(
    spec: &TpmSpec,
    disks: &[DiskSpec],
    art: &Artifacts,
) -> anyhow::Result<Vec<(u32, [u8; 32], String)>> {
    let part = disks
        .get(spec.disk)
        .and_then(|d| d.partition.get(spec.partition))
        .context("[tpm]: no such disk/partition")?;
    let file = |path: &str| -> anyhow::Result<Vec<u8>> {
        let content = part
            .files
            .get(path)
            .with_context(|| format!("[tpm]: {path} is not among the partition's files"))?;
        art.content(content)
    };
    let mut out = vec![
        (8, sha256(&file(&spec.source)?), spec.source.clone()),
        (4, sha256(&file(&spec.kernel)?), spec.kernel.clone()),
    ];
    if !spec.initrds.is_empty() {
        let mut all = Vec::new();
        for i in &spec.initrds {
            all.extend(file(i)?);
            all.resize(all.len().div_ceil(4) * 4, 0);
        }
        out.push((9, sha256(&all), spec.initrds.join(" + ")));
    }
    out.push((
        12,
        sha256(spec.cmdline.as_bytes()),
        "the command line".into(),
    ));
    if let Some(c) = &spec.chain_cmdline {
        // The chain initrd's `/chain` entry (see `crate::initramfs::chain`).
        let mut initrd = art.content("@target-initrd")?;
        initrd.resize(initrd.len().div_ceil(4) * 4, 0);
        out.extend([
            (
                8,
                sha256(crate::initramfs::chain_entry(c).as_bytes()),
                "/chain/loader/entries/next.conf".into(),
            ),
            (4, sha256(&art.content("@kernel")?), "/chain/vmlinuz".into()),
            (9, sha256(&initrd), "/chain/initrd.img".into()),
            (12, sha256(c.as_bytes()), "the chained command line".into()),
        ]);
    }
    Ok(out)
}

/// Checks the run's serial lines against `want`; returns the report lines. `dir` keeps the
/// event log the target received, which tpm2-tools' `tpm2_eventlog` reads too (an
/// independent reader of the format: its PCRs, computed from zeros, must be the harness's).
pub fn check(
    lines: &[String],
    want: &[(u32, [u8; 32], String)],
    dir: &Path,
) -> anyhow::Result<Vec<String>> {
    let mut report = Vec::new();
    // What leapboot read before extending each PCR, first time per PCR.
    let mut start: Vec<(u32, [u8; 32])> = Vec::new();
    for l in lines {
        let Some(rest) = l.split("tpm: PCR ").nth(1) else {
            continue;
        };
        let Some((n, _)) = rest.split_once(' ') else {
            continue;
        };
        let (Ok(n), Some((head, _after))) = (n.parse::<u32>(), rest.rsplit_once(" -> ")) else {
            continue;
        };
        let before = head.rsplit(": ").next().and_then(hex32);
        if let Some(b) = before {
            if !start.iter().any(|s| s.0 == n) {
                start.push((n, b));
            }
        }
    }
    let mut actual: Vec<(u32, [u8; 32])> = Vec::new();
    let mut log = None;
    for l in lines {
        if let Some(rest) = l.strip_prefix("LEAPBOOT-TARGET-PCR ") {
            if let Some((n, v)) = rest.split_once(' ') {
                if let (Ok(n), Some(v)) = (n.parse::<u32>(), hex32(v.trim())) {
                    actual.push((n, v));
                }
            }
        }
        if let Some(rest) = l.strip_prefix("LEAPBOOT-TARGET-EVENTLOG ") {
            log = Some(rest.trim().to_string());
        }
    }
    let mut pcrs: Vec<u32> = Vec::new();
    for w in want {
        if !pcrs.contains(&w.0) {
            pcrs.push(w.0);
        }
    }
    let mut expect: Vec<(u32, [u8; 32])> = Vec::new();
    for &pcr in &pcrs {
        let from = match pcr {
            // SeaBIOS extended PCR 4: start where leapboot found it.
            4 => start
                .iter()
                .find(|s| s.0 == 4)
                .map(|s| s.1)
                .context("leapboot logged no value of PCR 4 before measuring")?,
            _ => {
                if let Some(s) = start.iter().find(|s| s.0 == pcr) {
                    if s.1 != [0; 32] {
                        bail!("PCR {pcr} was {} before leapboot, not zero", hex(&s.1));
                    }
                }
                [0; 32]
            }
        };
        let v = want
            .iter()
            .filter(|w| w.0 == pcr)
            .fold(from, |acc, w| extend(&acc, &w.1));
        // The last target's values (a chain prints them once per boot).
        let got = actual
            .iter()
            .rev()
            .find(|a| a.0 == pcr)
            .map(|a| a.1)
            .with_context(|| format!("the target printed no PCR {pcr}"))?;
        if got != v {
            bail!(
                "PCR {pcr}: the target read {}, the harness computed {} (from {} extended with {})",
                hex(&got),
                hex(&v),
                hex(&from),
                want.iter()
                    .filter(|w| w.0 == pcr)
                    .map(|w| format!("{} = SHA-256 of {}", hex(&w.1), w.2))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        report.push(format!(
            "PCR {pcr} = {} (expected, from {})",
            hex(&got),
            if pcr == 4 { hex(&from) } else { "zeros".into() }
        ));
        expect.push((pcr, v));
    }
    // The log passed to the target: the same digests in the same order, replaying to the
    // same values.
    let log = log.context("the target printed no event log line")?;
    let bytes = unhex(&log).with_context(|| format!("the event log is not hex: {log:.40}"))?;
    let events = leapboot::tpm::eventlog::parse(&bytes)
        .map_err(|e| anyhow::anyhow!("the event log passed to the target: {e}"))?;
    let got: Vec<(u32, [u8; 32])> = events.iter().map(|e| (e.pcr, e.digest)).collect();
    let want_seq: Vec<(u32, [u8; 32])> = want.iter().map(|w| (w.0, w.1)).collect();
    if got != want_seq {
        bail!("the event log's events {got:?} are not the expected {want_seq:?}");
    }
    let replayed = leapboot::tpm::eventlog::replay(&events, |p| {
        start
            .iter()
            .find(|s| s.0 == p && p == 4)
            .map_or([0; 32], |s| s.1)
    });
    for (pcr, v) in replayed {
        if !expect.contains(&(pcr, v)) {
            bail!(
                "the event log replays PCR {pcr} to {}, not the PCR",
                hex(&v)
            );
        }
    }
    report.push(format!(
        "event log: {} bytes, {} events, replays to the PCRs",
        bytes.len(),
        events.len()
    ));
    report.push(tpm2_eventlog(&bytes, want, dir)?);
    Ok(report)
}

/// `tpm2_eventlog` on the log: it must read it, and its PCRs (replayed from zeros) must be
/// the harness's.
fn tpm2_eventlog(
    log: &[u8],
    want: &[(u32, [u8; 32], String)],
    dir: &Path,
) -> anyhow::Result<String> {
    let file = dir.join("tpm-eventlog.bin");
    std::fs::write(&file, log)?;
    let tool = crate::prereq::find("tpm2_eventlog").context("tpm2_eventlog (tpm2-tools)")?;
    let out = Command::new(tool).arg(&file).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    std::fs::write(dir.join("tpm2_eventlog.yaml"), text.as_bytes())?;
    if !out.status.success() {
        bail!(
            "tpm2_eventlog refused the event log: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The end of its YAML: "pcrs:\n  sha256:\n    4  : 0x...".
    let mut theirs = Vec::new();
    let mut in_sha256 = false;
    for l in text.lines() {
        let t = l.trim();
        if t == "sha256:" {
            in_sha256 = true;
            continue;
        }
        if in_sha256 {
            let Some((n, v)) = t.split_once(':') else {
                break;
            };
            let (Ok(n), Some(v)) = (n.trim().parse::<u32>(), v.trim().strip_prefix("0x")) else {
                break;
            };
            theirs.push((
                n,
                hex32(&v.to_ascii_lowercase()).context("tpm2_eventlog's PCR value")?,
            ));
        }
    }
    let mut pcrs: Vec<u32> = want.iter().map(|w| w.0).collect();
    pcrs.sort();
    pcrs.dedup();
    for pcr in &pcrs {
        let v = want
            .iter()
            .filter(|w| w.0 == *pcr)
            .fold([0; 32], |acc, w| extend(&acc, &w.1));
        if !theirs.contains(&(*pcr, v)) {
            bail!(
                "tpm2_eventlog replays PCR {pcr} to {:?}, the harness to {} (both from zeros)",
                theirs.iter().find(|t| t.0 == *pcr).map(|t| hex(&t.1)),
                hex(&v)
            );
        }
    }
    Ok(format!(
        "tpm2_eventlog reads the log: PCRs {pcrs:?} from zeros as the harness computes them"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_computes_extends_and_names_a_mismatch() {
        let want = vec![
            (8, sha256(b"conf"), "conf".to_string()),
            (4, sha256(b"kernel"), "kernel".to_string()),
            (12, sha256(b"console=ttyS0"), "cmdline".to_string()),
        ];
        let s4 = [5u8; 32];
        let p4 = extend(&s4, &want[1].1);
        let p8 = extend(&[0; 32], &want[0].1);
        let p12 = extend(&[0; 32], &want[2].1);
        let events: Vec<leapboot::tpm::eventlog::Event> = want
            .iter()
            .map(|w| leapboot::tpm::eventlog::Event {
                pcr: w.0,
                kind: 13,
                digest: w.1,
                data: Vec::new(),
            })
            .collect();
        let log = hex(&leapboot::tpm::eventlog::encode(&events));
        let lines = |p12: [u8; 32]| {
            vec![
                format!(
                    "[ 1.0] tpm: PCR 4 extended with {} (k): {} -> {}",
                    hex(&want[1].1),
                    hex(&s4),
                    hex(&p4)
                ),
                format!("LEAPBOOT-TARGET-EVENTLOG {log}"),
                format!("LEAPBOOT-TARGET-PCR 4 {}", hex(&p4)),
                format!("LEAPBOOT-TARGET-PCR 8 {}", hex(&p8)),
                format!("LEAPBOOT-TARGET-PCR 12 {}", hex(&p12)),
            ]
        };
        let dir = std::env::temp_dir().join(format!("tpmlab-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        if crate::prereq::find("tpm2_eventlog").is_some() {
            let r = check(&lines(p12), &want, &dir).unwrap();
            assert_eq!(r.len(), 5, "{r:?}");
        }
        let e = check(&lines([1; 32]), &want, &dir).unwrap_err().to_string();
        assert!(e.contains("PCR 12: the target read"), "{e}");
        let mut no_log = lines(p12);
        no_log.remove(1);
        assert!(check(&no_log, &want, &dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
