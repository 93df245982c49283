//! `cargo xtask bench`: the speed and size numbers leapboot promises, measured the same way
//! every time, written into the results section of BENCHMARKS.md (the method is described
//! there). Benchmarks are never timed tests: nothing here fails because a number is high,
//! except the hard size limits `build` and `initramfs` already enforce. Each goal is printed
//! as met or missed.
//!
//! Four measurements:
//! 1. sizes: the static `/init` and the gzip'd initramfs;
//! 2. discovery cost: the static musl `leapboot list --disk` (the same library code `/init`
//!    runs, minus the kernel mounts) over 1 disk and over 16 disks of 4 partitions each, CPU
//!    time (user + system, from `wait4`) and peak RSS, median of N runs;
//! 3. parser scaling on the host ([`scaling`], in a release build);
//! 4. end to end in QEMU (TCG), side by side ([`arms`], [`e2e`]): a direct boot, a busybox
//!    floor, a busybox + kexec-tools script and leapboot, interleaved, on one Debian 12 disk.
//!
//! `--quick` runs fewer rounds (under 10 minutes on 2 cores) and marks the results as quick.

mod arms;
mod e2e;
pub mod scaling;
mod stats;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::image::{self, Artifacts, DiskSpec};
use crate::{build, initramfs, kernel, paths, prereq};

/// How much of everything to run.
#[derive(Clone, Copy)]
struct Plan {
    quick: bool,
    /// Runs per discovery measurement.
    runs: usize,
    /// Runs per parser-scaling point.
    scaling_runs: usize,
    /// Interleaved rounds of the four end-to-end arms.
    rounds: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                runs: 5,
                scaling_runs: 7,
                rounds: 2,
            }
        } else {
            Plan {
                quick,
                runs: 15,
                scaling_runs: 21,
                rounds: 5,
            }
        }
    }
}
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

/// The sections `--only` can pick (sizes are always measured: they cost nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    Discovery,
    Scaling,
    E2e,
}

/// Runs the bench; with `only`, just that section, printed and not written to BENCHMARKS.md.
pub fn run(quick: bool, only: Option<Section>) -> anyhow::Result<()> {
    let plan = Plan::new(quick);
    let want = |s: Section| only.is_none_or(|o| o == s);
    prereq::ensure(&prereq::Need::bench())?;
    let load_before = loadavg();
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
    if want(Section::Discovery) {
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
        let small = measure(&cli, std::slice::from_ref(&one), plan.runs)?;
        let large = measure(&cli, &many, plan.runs)?;
        report += &format!(
            "| discovery, 1 disk × 4 partitions ({entries} entries): CPU time, median of {} | {:.1} ms |\n",
            plan.runs,
            ms(small.cpu)
        );
        report += &format!(
            "| discovery, {MANY_DISKS} disks × 4 partitions: CPU time, median of {} | {:.1} ms |\n",
            plan.runs,
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
    }

    // 3. Parser scaling, in a release build of this program.
    let mut bls_10k = None;
    if want(Section::Scaling) {
        let points = scaling_points(plan.scaling_runs)?;
        let (scaling_md, bls) = render_scaling(&points);
        bls_10k = bls;
        report += "\n";
        report += &scaling_md;
    }

    // 4. End to end, side by side.
    let mut fig = e2e::Figures::default();
    if want(Section::E2e) {
        let setup = arms::prepare(&k.image, &initrd, &art, &crate::initramfs::target(&bins)?)?;
        let runs = e2e::run(&setup, plan.rounds)?;
        let (e2e_md, f) = e2e::render(&runs);
        fig = f;
        report += "\n";
        report += &e2e_md;
    }

    let goals = goals(&fig, bls_10k);
    report += "\nGoals (benchmark figures, never timed tests):\n\n";
    report += &goals;
    let load_after = loadavg();
    let note = format!(
        "{}Load average (1, 5, 15 min) at the start: {load_before}; at the end: {load_after}. A load above the CPU count means other work competed for the CPUs: compare the arms within one run (they are interleaved for that), not with other runs.\n",
        if plan.quick {
            format!(
                "**Quick run** (`cargo xtask bench --quick`: {} round(s) of the arms, {} runs per discovery case, {} per scaling point); a full `cargo xtask bench` runs {} rounds.\n\n",
                plan.rounds,
                plan.runs,
                plan.scaling_runs,
                Plan::new(false).rounds
            )
        } else {
            String::new()
        }
    );
    println!("\n{report}\n{note}");
    if only.is_some() {
        println!("xtask: --only: BENCHMARKS.md left as it was");
        return Ok(());
    }
    write_results(&report, &note)?;
    println!("xtask: results written to BENCHMARKS.md");
    Ok(())
}

/// Runs `bench-scaling` in a release build (the library optimised as `/init` is) and reads
/// its points.
fn scaling_points(runs: usize) -> anyhow::Result<Vec<scaling::Point>> {
    println!("xtask: parser scaling (cargo run --release -p xtask -- bench-scaling)");
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["run", "--release", "--quiet", "--package", "xtask", "--"])
        .args(["bench-scaling", "--runs", &runs.to_string()])
        .current_dir(paths::root())
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo")?;
    if !out.status.success() {
        bail!("bench-scaling failed ({})", out.status);
    }
    let points: Vec<scaling::Point> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(scaling::Point::from_line)
        .collect();
    if points.is_empty() {
        bail!("bench-scaling printed no points");
    }
    Ok(points)
}

/// The scaling table, each case's growth exponent, and the 10 000-entry BLS time (ms).
fn render_scaling(points: &[scaling::Point]) -> (String, Option<f64>) {
    let mut md = String::from(
        "Parser scaling on the host: discovery over one in-memory volume (`pipeline::Volumes::boot_list`, every format), release build, thread CPU time, median of the runs; the growth exponent k of t ≈ c·n^k fitted over the three sizes.\n\n| input | size | entries listed | problems reported | median | growth |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    let mut bls_10k = None;
    for c in &scaling::CASES {
        let mine: Vec<&scaling::Point> = points.iter().filter(|p| p.case == c.name).collect();
        let k = stats::growth_exponent(
            &mine
                .iter()
                .map(|p| (p.size as f64, p.median.as_secs_f64()))
                .collect::<Vec<_>>(),
        );
        for (i, p) in mine.iter().enumerate() {
            let growth = match (i + 1 == mine.len(), k) {
                (true, Some(k)) => format!("k = {k:.2}: {}", stats::growth_words(k)),
                (true, None) => "–".into(),
                _ => String::new(),
            };
            md += &format!(
                "| {} | {} {} | {} | {} | {:.2} ms | {growth} |\n",
                c.name,
                p.size,
                c.unit,
                p.entries,
                p.errors,
                ms(p.median)
            );
            if c.name == "bls" && p.size == 10_000 {
                bls_10k = Some(ms(p.median));
            }
        }
    }
    (md, bls_10k)
}

/// One line per goal, met or missed.
fn goals(fig: &e2e::Figures, bls_10k: Option<f64>) -> String {
    let verdict = |v: Option<f64>, limit: f64| match v {
        Some(v) if v <= limit => "**met**",
        Some(_) => "**missed**",
        None => "not measured",
    };
    let mut md = String::new();
    md += &format!(
        "- leapboot end to end ≤ 0.95× the manual script: (d)/(c) = {}: {}\n",
        fig.vs_script.map_or("–".into(), |v| format!("{v:.3}")),
        verdict(fig.vs_script, 0.95)
    );
    md += &format!(
        "- leapboot's own time ≤ 100 ms (PID 1 start to the kexec_file_load call): {}: {}\n",
        fig.own
            .map_or("–".into(), |(v, how)| format!("{v:.0} ms ({how})")),
        verdict(fig.own.map(|o| o.0), 100.0)
    );
    md += &format!(
        "- first menu frame ≤ 150 ms after PID 1 starts: {}: {}\n",
        fig.first_frame.map_or(
            "– (this `/init` logs no `first-frame` milestone)".into(),
            |v| format!("{v:.0} ms")
        ),
        verdict(fig.first_frame, 150.0)
    );
    md += &format!(
        "- 10 000 BLS entries ≤ 50 ms on the host: {}: {}\n",
        bls_10k.map_or("–".into(), |v| format!("{v:.1} ms")),
        verdict(bls_10k, 50.0)
    );
    md += &format!(
        "- for reference, (d)/(b), leapboot over the floor: {}\n",
        fig.vs_floor.map_or("–".into(), |v| format!("{v:.3}"))
    );
    md
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
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

/// Runs `leapboot list` over `disks` `runs` times, after one warm-up run (page cache).
fn measure(cli: &Path, disks: &[PathBuf], runs: usize) -> anyhow::Result<Cost> {
    run_once(cli, disks)?;
    let mut cpu = Vec::with_capacity(runs);
    let mut max_rss_kib = 0;
    for _ in 0..runs {
        let (t, rss) = run_once(cli, disks)?;
        cpu.push(t);
        max_rss_kib = max_rss_kib.max(rss);
    }
    cpu.sort_unstable();
    Ok(Cost {
        cpu: cpu[runs / 2],
        max_rss_kib,
    })
}

const BEGIN: &str = "<!-- bench results: written by `cargo xtask bench` -->";
const END: &str = "<!-- end of bench results -->";

/// The first line of a command's output, or "unknown".
fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim().to_string())
        })
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Replaces the results section of BENCHMARKS.md: the machine, the tables, the note.
fn write_results(table: &str, note: &str) -> anyhow::Result<()> {
    let path = paths::root().join("BENCHMARKS.md");
    let text = std::fs::read_to_string(&path).context("BENCHMARKS.md")?;
    let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
        bail!("BENCHMARKS.md lacks the results markers {BEGIN:?} … {END:?}");
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let nproc = first_line("nproc", &[]);
    let date = first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let kernel = first_line("uname", &["-sr"]);
    let qemu = first_line("qemu-system-x86_64", &["--version"]);
    let new = format!(
        "{}{BEGIN}\n\nMeasured {date} on {cpu}, nproc {nproc}, host kernel {kernel}, {qemu} (TCG).\n\n{note}\n{table}\n{}",
        &text[..b],
        &text[e..]
    );
    std::fs::write(&path, new)?;
    Ok(())
}
