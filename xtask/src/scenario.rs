//! QEMU end-to-end scenarios: data files in `qemu-tests/scenarios/*.toml` (disk layout, kernel
//! arguments, expected serial lines), run by the one harness here.
//!
//! A scenario passes when every `expect` item is seen on the serial console, in order, before
//! the time limit; nothing in `reject` (plus a kernel panic or a leapboot crash) appears; and
//! every disk image's SHA-256 is the same after the run as before.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Deserialize;
use sha2::Digest;

use crate::image::{self, Artifacts, DiskSpec};
use crate::paths;
use crate::qemu::{Vm, VmDisk};

/// Lines that fail every scenario.
const ALWAYS_REJECT: &[&str] = &[
    "Kernel panic",
    "Attempted to kill init",
    "leapboot hit an internal error",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(skip)]
    pub name: String,
    /// What it shows, in one sentence.
    pub description: String,
    /// Extra arguments for leapboot's kernel command line.
    #[serde(default)]
    pub append: String,
    /// Seconds before the scenario fails.
    #[serde(default = "default_limit")]
    pub time_limit_s: u64,
    /// Serial output to see, in order.
    pub expect: Vec<Expect>,
    /// PID 1's restart after an internal error is what this scenario shows (fault
    /// injection): "leapboot hit an internal error" does not fail it.
    #[serde(default)]
    pub restarts: bool,
    /// Serial output that must not appear.
    #[serde(default)]
    pub reject: Vec<String>,
    /// Disks attached, in order (each with its `bus`; `hotplug = true` ones later).
    #[serde(default)]
    pub disk: Vec<DiskSpec>,
    /// The kernel leapboot runs on: `cloud` (default) or `generic` (AHCI, USB as modules).
    #[serde(default)]
    pub kernel: crate::kernel::Flavor,
    /// A network for the guest: a namespace, a tap, dnsmasq (see `crate::netlab`).
    #[serde(default)]
    pub network: Option<crate::netlab::NetworkSpec>,
    /// md RAID arrays over the disks' `fs = "md"` partitions (made by mdadm).
    #[serde(default)]
    pub md: Vec<image::MdSpec>,
    /// LVM2 volume groups over the disks' `fs = "lvm"` partitions (made by the LVM tools).
    #[serde(default)]
    pub lvm: Vec<image::VgSpec>,
    /// What QEMU boots: `leapboot` (the kernel with leapboot's initramfs, default) or
    /// `kernel` (the kernel alone, no initramfs: `append` gives its `root=`; a real system).
    #[serde(default)]
    pub boot: BootKind,
    /// A guest reboot goes through the firmware (SeaBIOS) and boots again, instead of ending
    /// QEMU (`-no-reboot` off).
    #[serde(default)]
    pub firmware_reboot: bool,
    /// The firmware: `seabios` (QEMU's default) or `ovmf-secureboot` (OVMF with our own
    /// Secure Boot keys enrolled; leapboot's kernel is the `db`-signed test kernel, booted as
    /// an EFI stub, so it locks itself down and trusts `db` for kexec).
    #[serde(default)]
    pub firmware: Firmware,
    /// With `ovmf-secureboot`: the kernel the firmware is asked to boot, `signed` (with our
    /// db key, the default) or `unsigned` (the firmware must refuse it).
    #[serde(default)]
    pub first_kernel: FirstKernel,
    /// Durations to measure and report: from the first line containing `from` to the next
    /// line containing `to`.
    #[serde(default)]
    pub timing: Vec<Timing>,
    /// A TPM 2.0 (swtpm) for the guest, and the files whose measurements the harness checks
    /// against the PCRs the target prints (see `crate::tpmlab`).
    #[serde(default)]
    pub tpm: Option<crate::tpmlab::TpmSpec>,
    /// Files added to leapboot's initramfs for this scenario (path → content, as a disk
    /// file's: text or `@generated`), such as `etc/leapboot.toml`: a second cpio archive
    /// appended to the shared one (the kernel unpacks both; later files win).
    #[serde(default)]
    pub initramfs_files: std::collections::BTreeMap<String, String>,
}

/// What QEMU boots.
#[derive(Debug, Default, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BootKind {
    #[default]
    Leapboot,
    Kernel,
}

/// The guest's firmware.
#[derive(Debug, Default, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Firmware {
    #[default]
    Seabios,
    OvmfSecureboot,
}

/// The first kernel under `firmware = "ovmf-secureboot"`.
#[derive(Debug, Default, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FirstKernel {
    #[default]
    Signed,
    Unsigned,
}

/// A duration measured on the serial console.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    pub name: String,
    pub from: String,
    pub to: String,
}

fn default_limit() -> u64 {
    240
}

/// One step of the script: a substring of a line to see, `{ line = "..." }` for a whole line
/// exactly, or an action done when the script reaches it: `{ monitor = "device_add ..." }`
/// sends a command to QEMU's human monitor (an error reply fails the scenario);
/// `{ send = "..." }` types bytes on the guest's serial console (TOML escapes: `"\r"` for
/// Enter, `"\u001b[B"` for Down); `{ net = "stop-dnsmasq" }` does something to the
/// scenario's `[network]` (kills dnsmasq: a TFTP transfer running then is cut off;
/// `"start-dnsmasq"` starts it again).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Expect {
    Contains(String),
    Line { line: String },
    Monitor { monitor: String },
    Send { send: String },
    Net { net: String },
}

impl Expect {
    fn matches(&self, line: &str) -> bool {
        match self {
            Expect::Contains(s) => line.contains(s.as_str()),
            Expect::Line { line: l } => line == l,
            Expect::Monitor { .. } | Expect::Send { .. } | Expect::Net { .. } => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            Expect::Contains(s) => format!("a line containing {s:?}"),
            Expect::Line { line } => format!("the line {line:?}"),
            Expect::Monitor { monitor } => format!("the monitor command {monitor:?}"),
            Expect::Send { send } => format!("sending {send:?}"),
            Expect::Net { net } => format!("the network step {net:?}"),
        }
    }

    /// Whether this step is something to do rather than something to see.
    #[cfg(test)]
    fn is_action(&self) -> bool {
        matches!(
            self,
            Expect::Monitor { .. } | Expect::Send { .. } | Expect::Net { .. }
        )
    }
}

/// QEMU's human monitor on a unix socket: one command, its reply up to the next prompt.
struct Monitor {
    stream: std::os::unix::net::UnixStream,
}

impl Monitor {
    fn connect(path: &Path) -> anyhow::Result<Monitor> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => {
                    return Err(e).with_context(|| format!("connecting to {}", path.display()))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut m = Monitor { stream };
        m.until_prompt()?; // the banner
        Ok(m)
    }

    fn until_prompt(&mut self) -> anyhow::Result<String> {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.ends_with(b"(qemu) ") {
            let n = std::io::Read::read(&mut self.stream, &mut buf)
                .context("reading QEMU's monitor")?;
            if n == 0 {
                anyhow::bail!("QEMU's monitor closed");
            }
            got.extend_from_slice(&buf[..n]);
        }
        Ok(String::from_utf8_lossy(&got).into_owned())
    }

    /// Runs `cmd`; the reply (without the echo and prompt), or an error if QEMU refused it.
    fn run(&mut self, cmd: &str) -> anyhow::Result<String> {
        self.stream.write_all(format!("{cmd}\n").as_bytes())?;
        let reply = self.until_prompt()?;
        // Readline echoes the command with terminal escapes; keep the lines after it.
        let text: String = reply
            .lines()
            .skip(1)
            .filter(|l| !l.starts_with("(qemu)"))
            .collect::<Vec<_>>()
            .join("\n");
        if text.contains("Error") || text.contains("error") {
            anyhow::bail!("QEMU monitor: {cmd}: {}", text.trim());
        }
        Ok(text)
    }
}

/// Every scenario in `qemu-tests/scenarios`, by file name.
pub fn load_all() -> anyhow::Result<Vec<Scenario>> {
    let dir = paths::root().join("qemu-tests/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| dir.display().to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f)?;
            let mut s: Scenario = toml::from_str(&text).with_context(|| f.display().to_string())?;
            s.disk = expand_repeats(std::mem::take(&mut s.disk))
                .with_context(|| f.display().to_string())?;
            s.name = f
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            Ok(s)
        })
        .collect()
}

/// Disks with `repeat = N` become N copies of themselves.
fn expand_repeats(disks: Vec<DiskSpec>) -> anyhow::Result<Vec<DiskSpec>> {
    let mut out = Vec::new();
    for d in disks {
        let n = d.repeat.unwrap_or(1);
        if !(1..=32).contains(&n) {
            anyhow::bail!("repeat = {n}: expected 1 to 32 disks");
        }
        for _ in 0..n {
            out.push(DiskSpec {
                repeat: None,
                ..d.clone()
            });
        }
    }
    Ok(out)
}

/// The result of one scenario.
pub struct Outcome {
    pub passed: bool,
    pub message: String,
    pub transcript: PathBuf,
    pub duration: Duration,
    /// The `timing` results, one line each.
    pub timings: Vec<String>,
}

pub fn sha256(p: &Path) -> anyhow::Result<String> {
    let mut h = sha2::Sha256::new();
    let mut f = std::fs::File::open(p)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Runs one scenario: builds its disks, boots QEMU, watches the serial console.
pub fn run(s: &Scenario, kernel: &Path, initrd: &Path, art: &Artifacts) -> Outcome {
    let start = Instant::now();
    let dir = paths::target().join("qemu-tests").join(&s.name);
    let transcript = dir.join("serial.log");
    let mut timings = Vec::new();
    let result = run_inner(s, kernel, initrd, art, &dir, &transcript, &mut timings);
    let (passed, message) = match result {
        Ok(()) => (true, String::new()),
        Err(e) => (false, format!("{e:#}")),
    };
    Outcome {
        passed,
        message,
        transcript,
        duration: start.elapsed(),
        timings,
    }
}

fn run_inner(
    s: &Scenario,
    kernel: &Path,
    initrd: &Path,
    art: &Artifacts,
    dir: &Path,
    transcript: &Path,
    timings: &mut Vec<String>,
) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    let mut disks =
        image::build_layout(&s.disk, &s.md, &s.lvm, dir, art).context("building disk images")?;
    let mut before: Vec<String> = disks.iter().map(|d| sha256(d)).collect::<Result<_, _>>()?;
    let monitor_path = s
        .expect
        .iter()
        .any(|e| matches!(e, Expect::Monitor { .. }))
        .then(|| dir.join("monitor.sock"));
    let own_initrd;
    let initrd = if s.initramfs_files.is_empty() {
        initrd
    } else {
        own_initrd = dir.join("initrd.img");
        let mut extra = crate::initramfs::Archive::default();
        for (path, content) in &s.initramfs_files {
            let mode = if image::is_program(content) {
                0o755
            } else {
                0o644
            };
            extra.file(path, art.content(content)?, mode);
        }
        let mut bytes = std::fs::read(initrd)?;
        bytes.extend(extra.to_gzip()?);
        std::fs::write(&own_initrd, bytes)?;
        own_initrd.as_path()
    };
    let mut vm = Vm {
        kernel: kernel.to_owned(),
        initrd: (s.boot == BootKind::Leapboot).then(|| initrd.to_owned()),
        append: s.append.clone(),
        disks: disks
            .iter()
            .zip(&s.disk)
            .map(|(path, spec)| VmDisk {
                path: path.clone(),
                bus: spec.bus,
                hotplug: spec.hotplug,
                snapshot: spec.snapshot,
            })
            .collect(),
        kvm: false,
        monitor: monitor_path.clone(),
        firmware_reboot: s.firmware_reboot,
        ovmf: None,
    };
    if s.firmware == Firmware::OvmfSecureboot {
        if s.kernel != crate::kernel::Flavor::default() || s.boot != BootKind::Leapboot {
            anyhow::bail!(
                "firmware = \"ovmf-secureboot\" boots leapboot on the default (cloud) kernel only"
            );
        }
        let chain = art.secureboot()?;
        let first = match s.first_kernel {
            FirstKernel::Signed => &chain.signed,
            FirstKernel::Unsigned => &chain.unsigned,
        };
        let (esp, vars) = chain
            .boot_disk(dir, first, initrd, &vm.kernel_cmdline())
            .context("making the firmware's boot disk")?;
        // The last disk: the scenario's own disks keep their names (vda...).
        before.push(sha256(&esp)?);
        vm.disks.push(VmDisk::virtio(esp.clone()));
        disks.push(esp);
        vm.ovmf = Some(crate::qemu::Ovmf {
            code: chain.code,
            vars,
        });
    }
    let mut cmd = vm.command(false);
    // The expected measurements first (a bad [tpm] table fails before QEMU starts); the
    // TPM declared before the child: dropped (swtpm killed) after it, also on failure.
    let tpm_want = match &s.tpm {
        Some(t) => Some(crate::tpmlab::expected(t, &s.disk, art).context("[tpm]")?),
        None => None,
    };
    let swtpm = match &s.tpm {
        Some(_) => Some(crate::tpmlab::Swtpm::start(&dir.join("swtpm")).context("[tpm]")?),
        None => None,
    };
    if let Some(t) = &swtpm {
        cmd.args(t.qemu_args());
    }
    // Declared before the child: dropped (dnsmasq killed, namespace deleted) after it.
    let mut lab = match &s.network {
        Some(n) => {
            cmd.args(n.qemu_args()?);
            let netns = format!("lb-{}", s.name);
            Some(crate::netlab::Lab::start(n, &netns, dir, art).context("setting up [network]")?)
        }
        None => None,
    };
    let mut cmd = match &lab {
        Some(l) => l.wrap(&cmd),
        None => cmd,
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(dir.join("qemu.stderr"))?))
        .spawn()
        .context("starting qemu-system-x86_64")?;
    let stdout = child.stdout.take().expect("piped");
    let mut stdin = child.stdin.take().expect("piped");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        while r
            .read_until(b'\n', &mut buf)
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\n', '\r'])
                .to_string();
            if tx.send(line).is_err() {
                break;
            }
            buf.clear();
        }
    });
    let mut log = std::fs::File::create(transcript)?;
    // Every line seen, for the checks after the run (`[tpm]`).
    let mut seen: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(s.time_limit_s);
    let mut next = 0;
    let mut monitor: Option<Monitor> = None;
    // For each timing: when its `from` was seen, and whether it is done.
    let mut started: Vec<Option<Instant>> = s.timing.iter().map(|_| None).collect();
    let mut done = vec![false; s.timing.len()];
    let verdict: anyhow::Result<()> = loop {
        if next == s.expect.len() {
            break Ok(());
        }
        if let Expect::Send { send } = &s.expect[next] {
            writeln!(log, "<<< xtask sends {send:?}")?;
            if let Err(e) = stdin.write_all(send.as_bytes()).and_then(|_| stdin.flush()) {
                break Err(anyhow::anyhow!("writing to QEMU's serial input: {e}"));
            }
            next += 1;
            continue;
        }
        if let Expect::Net { net } = &s.expect[next] {
            let r = match (net.as_str(), lab.as_mut()) {
                ("stop-dnsmasq", Some(l)) => l.stop_dnsmasq(),
                ("start-dnsmasq", Some(l)) => l.start_dnsmasq(),
                (_, None) => Err(anyhow::anyhow!(
                    "{{ net = {net:?} }} needs a [network] table"
                )),
                _ => Err(anyhow::anyhow!(
                    "unknown network step {net:?} (known: \"stop-dnsmasq\", \"start-dnsmasq\")"
                )),
            };
            if let Err(e) = r {
                break Err(e);
            }
            writeln!(log, "[xtask] network: {net}")?;
            next += 1;
            continue;
        }
        if let Expect::Monitor { monitor: cmd } = &s.expect[next] {
            let result = match (&mut monitor, &monitor_path) {
                (Some(m), _) => m.run(cmd),
                (None, Some(p)) => Monitor::connect(p).and_then(|mut m| {
                    let r = m.run(cmd);
                    monitor = Some(m);
                    r
                }),
                (None, None) => Err(anyhow::anyhow!("no monitor socket")),
            };
            match result {
                Ok(reply) => {
                    writeln!(log, "[xtask] monitor: {cmd} -> {}", reply.trim())?;
                    next += 1;
                    continue;
                }
                Err(e) => break Err(e),
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                writeln!(log, "{line}")?;
                seen.push(line.clone());
                for (i, t) in s.timing.iter().enumerate() {
                    match started[i] {
                        None if line.contains(&t.from) => started[i] = Some(Instant::now()),
                        Some(at) if !done[i] && line.contains(&t.to) => {
                            done[i] = true;
                            let r = format!(
                                "{}: {:.1} s (from {:?} to {:?})",
                                t.name,
                                at.elapsed().as_secs_f64(),
                                t.from,
                                t.to
                            );
                            writeln!(log, "[xtask] timing {r}")?;
                            timings.push(r);
                        }
                        _ => {}
                    }
                }
                if let Some(bad) = ALWAYS_REJECT
                    .iter()
                    .copied()
                    .filter(|r| !(s.restarts && *r == "leapboot hit an internal error"))
                    .chain(s.reject.iter().map(String::as_str))
                    .find(|r| line.contains(r))
                {
                    break Err(anyhow::anyhow!("rejected output {bad:?} in: {line}"));
                }
                if s.expect[next].matches(&line) {
                    next += 1;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                break Err(anyhow::anyhow!(
                    "time limit of {} s passed waiting for {}",
                    s.time_limit_s,
                    s.expect[next].describe()
                ))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Err(anyhow::anyhow!(
                    "QEMU exited while waiting for {}",
                    s.expect[next].describe()
                ))
            }
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    // Keep the rest of the output in the transcript.
    while let Ok(line) = rx.try_recv() {
        writeln!(log, "{line}")?;
        seen.push(line);
    }
    drop(swtpm);
    verdict?;
    if let Some(want) = &tpm_want {
        let report = crate::tpmlab::check(&seen, want, dir).context("[tpm] measurements")?;
        for r in &report {
            writeln!(log, "[xtask] tpm: {r}")?;
            println!("[xtask] tpm: {r}");
        }
    }
    for (d, b) in disks.iter().zip(&before) {
        let after = sha256(d)?;
        if &after != b {
            anyhow::bail!(
                "{} changed during the run: SHA-256 {b} before, {after} after",
                d.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_file_parses_and_expects_something() {
        let all = load_all().unwrap();
        assert!(all.len() >= 5);
        for s in all {
            assert!(
                s.expect.iter().any(|e| !e.is_action()),
                "{} expects nothing: it could never fail",
                s.name
            );
            assert!(!s.description.is_empty(), "{} has no description", s.name);
        }
    }

    #[test]
    fn monitor_steps_parse_and_never_match_a_line() {
        let s: Scenario = toml::from_str(
            "description = \"d\"\nkernel = \"generic\"\nexpect = [\"a\", { monitor = \"device_add usb-storage,drive=d0\" }, { line = \"b\" }]\n[[disk]]\nbus = \"usb\"\nhotplug = true\n",
        )
        .unwrap();
        assert_eq!(s.kernel, crate::kernel::Flavor::Generic);
        assert!(s.expect[1].is_action());
        assert!(!s.expect[1].matches("device_add usb-storage,drive=d0"));
        assert!(!s.expect[0].is_action() && !s.expect[2].is_action());
        assert!(s.disk[0].hotplug);
        let many = expand_repeats(vec![DiskSpec {
            repeat: Some(3),
            ..s.disk[0].clone()
        }])
        .unwrap();
        assert_eq!(many.len(), 3);
        assert!(expand_repeats(vec![DiskSpec {
            repeat: Some(0),
            ..s.disk[0].clone()
        }])
        .is_err());
        assert_eq!(s.disk[0].bus, crate::qemu::Bus::Usb);
    }

    #[test]
    fn expectations_match_substrings_or_whole_lines() {
        let c = Expect::Contains("TARGET-OK".into());
        assert!(c.matches("LEAPBOOT-TARGET-OK cmdline=x"));
        let l = Expect::Line {
            line: "LEAPBOOT-TARGET-OK cmdline=x".into(),
        };
        assert!(l.matches("LEAPBOOT-TARGET-OK cmdline=x"));
        assert!(
            !l.matches("LEAPBOOT-TARGET-OK cmdline=x y"),
            "a longer command line is not the expected one"
        );
    }

    #[test]
    fn send_items_carry_toml_escapes_and_match_no_line() {
        let s: Scenario = toml::from_str(
            r#"
description = "d"
expect = ["menu", { send = "\u001b[B\r" }, { line = "x" }]
"#,
        )
        .unwrap();
        match &s.expect[1] {
            Expect::Send { send } => assert_eq!(send, "\x1b[B\r"),
            other => panic!("{other:?}"),
        }
        assert!(!s.expect[1].matches("\x1b[B\r"));
        assert!(s.expect[1].is_action() && !s.expect[0].is_action());
    }

    #[test]
    fn network_steps_parse_and_match_no_line() {
        let s: Scenario = toml::from_str(
            r#"
description = "d"
expect = ["Loading", { net = "stop-dnsmasq" }]
[network]
http = true
[network.files]
"slow.img" = "@zeros 10"
[network.http_slow]
"slow.img" = 1000
"#,
        )
        .unwrap();
        match &s.expect[1] {
            Expect::Net { net } => assert_eq!(net, "stop-dnsmasq"),
            other => panic!("{other:?}"),
        }
        assert!(s.expect[1].is_action() && !s.expect[1].matches("stop-dnsmasq"));
        let n = s.network.unwrap();
        assert!(n.http);
        assert_eq!(n.http_slow["slow.img"], 1000);
    }
}
