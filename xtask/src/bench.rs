//! `cargo xtask bench`: the speed and size numbers leapboot promises, measured the same way
//! every time, written into the results section of BENCHMARKS.md (the method is described
//! there). Benchmarks are never timed tests: nothing here fails because a number is high,
//! except the hard size limits `build` and `initramfs` already enforce.
//!
//! Three measurements:
//! 1. sizes: the static `/init` and the gzip'd initramfs;
//! 2. discovery cost: the static musl `leapboot list --disk` (the same library code `/init`
//!    runs, minus the kernel mounts) over 1 disk and over 16 disks of 4 partitions each, CPU
//!    time (user + system, from `getrusage(RUSAGE_CHILDREN)`) and peak RSS, median of N runs;
//! 3. a real boot: the demo disk in QEMU (TCG) with `leapboot.timeout=0`, leapboot's own time
//!    as it logs it before the kexec ("leapboot time: N ms"), median of a few boots.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::image::{self, Artifacts, DiskSpec};
use crate::{build, initramfs, kernel, paths, prereq, qemu::Vm};

/// Runs per discovery measurement.
const RUNS: usize = 15;
/// QEMU boots of the demo disk.
const BOOTS: usize = 3;
/// Disks in the large discovery case.
const MANY_DISKS: usize = 16;

/// The bench disk: four partitions, each with a different format to parse.
const BENCH_DISK: &str = r#"
[[disk]]
[[disk.partition]]
fs = "vfat"
type = "esp"
size_mib = 16
[disk.partition.files]
"loader/loader.conf" = "default b-*\ntimeout 3\n"
"loader/entries/a-6.1.conf" = "title A\nversion 6.1\nlinux /vmlinuz-a\ninitrd /initrd-a\noptions root=/dev/vda2 quiet\n"
"loader/entries/b-6.6.conf" = "title B\nversion 6.6\nlinux /vmlinuz-b\ninitrd /initrd-b\noptions root=/dev/vda2 quiet\n"
"vmlinuz-a" = "@garbage 65536"
"vmlinuz-b" = "@garbage 65536"
"initrd-a" = "@garbage 4096"
"initrd-b" = "@garbage 4096"

[[disk.partition]]
fs = "ext4"
type = "xbootldr"
size_mib = 16
[disk.partition.files]
"loader/entries/c-6.8.conf" = "title C\nversion 6.8\nlinux /vmlinuz-c\noptions root=/dev/vda3\n"
"vmlinuz-c" = "@garbage 65536"

[[disk.partition]]
fs = "ext4"
size_mib = 16
[disk.partition.files]
"boot/vmlinuz-6.1.0-13-amd64" = "@garbage 65536"
"boot/initrd.img-6.1.0-13-amd64" = "@garbage 4096"
"boot/vmlinuz-6.1.0-9-amd64" = "@garbage 65536"
"boot/initrd.img-6.1.0-9-amd64" = "@garbage 4096"
"etc/os-release" = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"

[[disk.partition]]
fs = "vfat"
size_mib = 16
[disk.partition.files]
"syslinux/syslinux.cfg" = "DEFAULT second\nLABEL first\n  KERNEL /vmlinuz\n  APPEND quiet\nLABEL second\n  KERNEL /vmlinuz\n  INITRD /initrd.img\n  APPEND console=ttyS0\n"
"vmlinuz" = "@garbage 65536"
"initrd.img" = "@garbage 4096"
"#;

pub fn run() -> anyhow::Result<()> {
    prereq::ensure(&prereq::Need::qemu())?;
    let k = kernel::get()?;
    let bins = build::all()?;
    let initrd = initramfs::leapboot(&bins, &k)?;
    let art = Artifacts::new(&bins, &k)?;
    let mut report = String::new();

    // 1. Sizes.
    let init_size = std::fs::metadata(&bins.init)?.len();
    let initrd_size = std::fs::metadata(&initrd)?.len();
    report += "| measurement | result |\n| --- | --- |\n";
    report += &format!(
        "| `/init` static musl binary, stripped | {} bytes ({:.2} MiB; limit 2 MiB) |\n",
        init_size,
        mib(init_size)
    );
    report += &format!(
        "| leapboot initramfs (gzip, with the kernel modules of initramfs/leapboot.toml and bundle.toml) | {} bytes ({:.2} MiB) |\n",
        initrd_size,
        mib(initrd_size)
    );

    // 2. Discovery cost on the host, static musl build of the CLI.
    let cli = bins.cli.clone();
    let dir = paths::target().join("bench");
    let spec: Bench = toml::from_str(BENCH_DISK).context("the bench disk layout")?;
    let one = image::build_disks(&spec.disk, &dir, &art)?.remove(0);
    let mut many = vec![one.clone()];
    for i in 1..MANY_DISKS {
        let copy = dir.join(format!("copy{i}.img"));
        std::fs::copy(&one, &copy)?;
        many.push(copy);
    }
    let entries = count_entries(&cli, std::slice::from_ref(&one))?;
    println!("xtask: bench disk: 4 partitions, {entries} entries");
    let small = measure(&cli, std::slice::from_ref(&one))?;
    let large = measure(&cli, &many)?;
    report += &format!(
        "| discovery, 1 disk × 4 partitions ({entries} entries): CPU time, median of {RUNS} | {:.1} ms |\n",
        ms(small.cpu)
    );
    report += &format!(
        "| discovery, {MANY_DISKS} disks × 4 partitions: CPU time, median of {RUNS} | {:.1} ms |\n",
        ms(large.cpu)
    );
    report += &format!(
        "| added CPU time for {} more disks (limit 50 ms) | {:.1} ms |\n",
        MANY_DISKS - 1,
        ms(large.cpu.saturating_sub(small.cpu))
    );
    report += &format!(
        "| peak RSS through discovery of {MANY_DISKS} disks (limit 16 MiB) | {:.1} MiB |\n",
        large.max_rss_kib as f64 / 1024.0
    );

    // 3. Real boots.
    let demo = image::demo(&art)?;
    let mut own = Vec::new();
    let mut wall = Vec::new();
    for i in 0..BOOTS {
        let b = boot(&k.image, &initrd, &demo)
            .with_context(|| format!("demo boot {} of {BOOTS}", i + 1))?;
        println!(
            "xtask: boot {}: leapboot time {} ms, target reached after {:.1} s",
            i + 1,
            b.own_ms,
            b.wall.as_secs_f64()
        );
        own.push(b.own_ms);
        wall.push(b.wall);
    }
    own.sort_unstable();
    wall.sort_unstable();
    report += &format!(
        "| demo boot in QEMU TCG: leapboot's own time from PID 1 start to the kexec (excl. waiting for devices), median of {BOOTS} | {} ms |\n",
        own[BOOTS / 2]
    );
    report += &format!(
        "| demo boot in QEMU TCG: QEMU start to the booted target's first line, median of {BOOTS} | {:.1} s |\n",
        wall[BOOTS / 2].as_secs_f64()
    );

    println!("\n{report}");
    write_results(&report)?;
    println!("xtask: results written to BENCHMARKS.md");
    Ok(())
}

#[derive(serde::Deserialize)]
struct Bench {
    disk: Vec<DiskSpec>,
}

fn mib(b: u64) -> f64 {
    b as f64 / 1048576.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn list_command(cli: &Path, disks: &[PathBuf]) -> Command {
    let mut c = Command::new(cli);
    c.args(["list", "--json", "--stats"]);
    for d in disks {
        c.arg("--disk").arg(d);
    }
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn count_entries(cli: &Path, disks: &[PathBuf]) -> anyhow::Result<usize> {
    let out = list_command(cli, disks).output()?;
    if !out.status.success() {
        bail!("leapboot list failed on the bench disk");
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // Count entries by their "id" keys: enough for a report line, no JSON crate needed here.
    let n = text.matches("\"id\":").count();
    if n == 0 {
        bail!("leapboot list found no entries on the bench disk: {text}");
    }
    Ok(n)
}

struct Cost {
    /// Median CPU time (user + system) of one run.
    cpu: Duration,
    /// Largest peak RSS of any run.
    max_rss_kib: u64,
}

/// Runs `leapboot list` once: its CPU time from `wait4`, its peak RSS as it reports it
/// (`--stats`: VmHWM; `ru_maxrss` would include xtask's own peak, inherited across exec).
fn run_once(cli: &Path, disks: &[PathBuf]) -> anyhow::Result<(Duration, u64)> {
    let mut child = list_command(cli, disks).spawn()?;
    // Drain stdout on a thread so a large JSON cannot block the child while stderr is read.
    let mut stdout = child.stdout.take().context("stdout")?;
    let drain = std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().context("stderr")?, &mut err)?;
    let _ = drain.join();
    let pid = i32::try_from(child.id()).context("pid")?;
    let mut status = 0;
    // SAFETY: wait4 on our own child, filling `u`; std's Child is not waited on afterwards.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::wait4(pid, &mut status, 0, &mut u) } != pid {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("leapboot list failed during the benchmark (status {status:#x}): {err}");
    }
    let rss = err
        .lines()
        .find_map(|l| l.strip_prefix("stats: "))
        .and_then(|l| l.split(' ').find_map(|kv| kv.strip_prefix("peak_rss_kib=")))
        .and_then(|v| v.parse().ok())
        .context("leapboot list --stats printed no peak_rss_kib")?;
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Ok((tv(u.ru_utime) + tv(u.ru_stime), rss))
}

/// Runs `leapboot list` over `disks` RUNS times, after one warm-up run (page cache).
fn measure(cli: &Path, disks: &[PathBuf]) -> anyhow::Result<Cost> {
    run_once(cli, disks)?;
    let mut cpu = Vec::with_capacity(RUNS);
    let mut max_rss_kib = 0;
    for _ in 0..RUNS {
        let (t, rss) = run_once(cli, disks)?;
        cpu.push(t);
        max_rss_kib = max_rss_kib.max(rss);
    }
    cpu.sort_unstable();
    Ok(Cost {
        cpu: cpu[RUNS / 2],
        max_rss_kib,
    })
}

struct Boot {
    own_ms: u64,
    wall: Duration,
}

/// Boots the demo disk unattended and reads leapboot's own time from its log line.
fn boot(kernel: &Path, initrd: &Path, disk: &Path) -> anyhow::Result<Boot> {
    let copy = disk.with_extension("bench.img");
    std::fs::copy(disk, &copy)?;
    let vm = Vm {
        kernel: kernel.to_owned(),
        initrd: Some(initrd.to_owned()),
        append: "leapboot.timeout=0".into(),
        disks: vec![crate::qemu::VmDisk::virtio(copy.clone())],
        kvm: false,
        monitor: None,
        firmware_reboot: false,
    };
    let mut cmd = vm.command(false);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut child = cmd.spawn().context("starting QEMU")?;
    let stdout = child.stdout.take().context("QEMU's stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = start + Duration::from_secs(180);
    let mut own_ms = None;
    let result = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(rest) = line.split("leapboot time: ").nth(1) {
                    own_ms = rest.split(' ').next().and_then(|n| n.parse::<u64>().ok());
                }
                if line.starts_with("LEAPBOOT-TARGET-OK") {
                    let wall = start.elapsed();
                    break match own_ms {
                        Some(own_ms) => Ok(Boot { own_ms, wall }),
                        None => Err(anyhow::anyhow!(
                            "the target booted but leapboot never logged its time"
                        )),
                    };
                }
            }
            Err(_) => break Err(anyhow::anyhow!("no booted target within 180 s")),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&copy);
    result
}

const BEGIN: &str = "<!-- bench results: written by `cargo xtask bench` -->";
const END: &str = "<!-- end of bench results -->";

/// Replaces the results section of BENCHMARKS.md.
fn write_results(table: &str) -> anyhow::Result<()> {
    let path = paths::root().join("BENCHMARKS.md");
    let text = std::fs::read_to_string(&path).context("BENCHMARKS.md")?;
    let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
        bail!("BENCHMARKS.md lacks the results markers {BEGIN:?} … {END:?}");
    };
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let date = Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let new = format!(
        "{}{BEGIN}\n\nMeasured {date} on {machine} ({cpus} CPUs).\n\n{table}\n{}",
        &text[..b],
        &text[e..]
    );
    std::fs::write(&path, new)?;
    Ok(())
}
