//! `cargo xtask fuzz --time S`: every fuzz target of `fuzz/` (libFuzzer, built as cargo-fuzz
//! builds it, minus ASan, so no cargo-fuzz install is needed) run for S seconds each, one
//! after the other, each from a copy of its checked-in corpus (`fuzz/corpus/<target>/`, when
//! there is one) so the tree is not changed. A crash, a timeout or an out-of-memory input
//! fails the run; its input is kept under `target/fuzz-runs/<target>/` and named.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};

use crate::paths;

/// The sanitizer-coverage instrumentation libFuzzer needs (what `cargo fuzz` passes).
const RUSTFLAGS: &str = "-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks";

/// The target names: the `[[bin]]`s of fuzz/Cargo.toml.
fn targets(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_bin = l == "[[bin]]";
            continue;
        }
        if in_bin {
            if let Some(v) = l.strip_prefix("name").map(str::trim) {
                if let Some(v) = v.strip_prefix('=') {
                    out.push(v.trim().trim_matches('"').to_string());
                }
            }
        }
    }
    out
}

/// One target's run, from libFuzzer's last status line.
struct Outcome {
    name: String,
    ok: bool,
    runs: String,
    cov: String,
    corpus: String,
    what: String,
}

fn field(line: &str, key: &str) -> String {
    let mut it = line.split_whitespace();
    while let Some(w) = it.next() {
        if w == key {
            return it.next().unwrap_or("?").to_string();
        }
    }
    "?".into()
}

pub fn run(secs: u64, only: Option<&str>) -> anyhow::Result<()> {
    let fuzz = paths::root().join("fuzz");
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml"))?;
    let all = targets(&manifest);
    let chosen: Vec<String> = all
        .into_iter()
        .filter(|t| only.is_none_or(|o| t.contains(o)))
        .collect();
    if chosen.is_empty() {
        bail!("no fuzz target matches {only:?}");
    }
    let target_dir = paths::target().join("fuzz");
    println!(
        "xtask: building {} fuzz target(s) with libFuzzer instrumentation",
        chosen.len()
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(&fuzz)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTFLAGS", RUSTFLAGS)
        .args(["build", "--release", "--target", "x86_64-unknown-linux-gnu"])
        .arg("--target-dir")
        .arg(&target_dir);
    for t in &chosen {
        build.args(["--bin", t]);
    }
    if !build.status().context("running cargo build")?.success() {
        bail!("building the fuzz targets failed (a C++ compiler is needed for libFuzzer)");
    }
    let bins = target_dir.join("x86_64-unknown-linux-gnu/release");
    let runs = paths::target().join("fuzz-runs");
    let mut outcomes = Vec::new();
    for t in &chosen {
        println!("xtask: fuzzing {t} for {secs} s");
        let work = runs.join(t);
        let _ = std::fs::remove_dir_all(&work);
        let corpus = work.join("corpus");
        std::fs::create_dir_all(&corpus)?;
        let seed = fuzz.join("corpus").join(t);
        if seed.is_dir() {
            for e in std::fs::read_dir(&seed)? {
                let p = e?.path();
                if p.is_file() {
                    std::fs::copy(&p, corpus.join(p.file_name().unwrap_or_default()))?;
                }
            }
        }
        let started = Instant::now();
        let out = Command::new(bins.join(t))
            .arg(format!("-max_total_time={secs}"))
            .arg("-rss_limit_mb=2048")
            .arg("-timeout=10")
            .arg("-print_final_stats=1")
            .arg(format!("-artifact_prefix={}/", work.display()))
            .arg(&corpus)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running fuzz target {t}"))?;
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        std::fs::write(work.join("fuzz.log"), &log)?;
        let last = log
            .lines()
            .rev()
            .find(|l| l.starts_with('#') && l.contains("cov:"))
            .unwrap_or("");
        let artifact = artifact_of(&log, &work);
        let ok = out.status.success() && artifact.is_none();
        outcomes.push(Outcome {
            name: t.clone(),
            ok,
            runs: last
                .split_whitespace()
                .next()
                .unwrap_or("#?")
                .trim_start_matches('#')
                .to_string(),
            cov: field(last, "cov:"),
            corpus: field(last, "corp:"),
            what: if ok {
                format!("{:.0} s", started.elapsed().as_secs_f64())
            } else {
                format!(
                    "FAILED: {} (log {})",
                    artifact.unwrap_or_else(|| format!("exit {}", out.status)),
                    work.join("fuzz.log").display()
                )
            },
        });
    }
    println!("\n| target | runs | coverage | corpus | result |\n|---|---:|---:|---:|---|");
    for o in &outcomes {
        println!(
            "| {} | {} | {} | {} | {} |",
            o.name, o.runs, o.cov, o.corpus, o.what
        );
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.ok)
        .map(|o| o.name.as_str())
        .collect();
    if !failed.is_empty() {
        bail!("fuzz target(s) failed: {}", failed.join(", "));
    }
    println!(
        "xtask: {} fuzz target(s), {secs} s each: no crash, no timeout, no out-of-memory",
        outcomes.len()
    );
    Ok(())
}

/// The input libFuzzer saved for a crash, timeout or out-of-memory, if it says so.
fn artifact_of(log: &str, work: &Path) -> Option<String> {
    let line = log.lines().find(|l| l.contains("Test unit written to "))?;
    let path = line.split("Test unit written to ").nth(1)?.trim();
    let kind = ["crash-", "timeout-", "oom-", "slow-unit-", "leak-"]
        .into_iter()
        .find(|k| path.contains(k))
        .unwrap_or("failure ");
    Some(format!(
        "{}input {path} (under {})",
        kind.trim_end_matches('-').to_string() + " ",
        work.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bin_of_the_fuzz_manifest_is_a_target() {
        let m = "[package]\nname = \"leapboot-fuzz\"\n[dependencies]\n[[bin]]\nname = \"bls\"\npath = \"a\"\n\n[[bin]]\nname = \"dhcp4\"\n";
        assert_eq!(targets(m), vec!["bls", "dhcp4"]);
        let real = std::fs::read_to_string(paths::root().join("fuzz/Cargo.toml")).unwrap();
        assert!(targets(&real).len() >= 25);
    }

    #[test]
    fn the_last_status_line_gives_runs_coverage_and_corpus() {
        let l =
            "#1048576\tDONE   cov: 812 ft: 2900 corp: 311/40Kb lim: 4096 exec/s: 34952 rss: 61Mb";
        assert_eq!(
            (field(l, "cov:"), field(l, "corp:")),
            ("812".into(), "311/40Kb".into())
        );
        let log = "==1== ERROR: libFuzzer: deadly signal\nartifact_prefix='x/'; Test unit written to x/crash-abc\n";
        assert!(artifact_of(log, Path::new("x"))
            .unwrap()
            .starts_with("crash input x/crash-abc"));
        assert!(artifact_of("#5 DONE cov: 1", Path::new("x")).is_none());
    }
}
