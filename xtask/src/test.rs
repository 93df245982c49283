//! `cargo xtask test`: every test. `cargo test --workspace` (unit and property tests), then
//! every QEMU scenario, in parallel up to the number of CPUs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use anyhow::bail;

use crate::{build, image, initramfs, kernel, paths, prereq, scenario};

pub fn run(only: Option<&str>, qemu_only: bool) -> anyhow::Result<()> {
    println!("xtask: checking prerequisites (musl target, qemu-system-x86, e2fsprogs, dosfstools, mtools, dnsmasq-base, the test kernel)");
    prereq::ensure(&prereq::Need::qemu())?;
    if !qemu_only {
        println!("xtask: cargo test --workspace");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(paths::root())
            .args(["test", "--workspace"])
            .status()?;
        if !status.success() {
            bail!("cargo test failed");
        }
        if only.is_none_or(|o| "test-net".contains(o)) {
            crate::nettest::run()?;
        }
    }
    let k = kernel::get()?;
    let bins = build::all()?;
    let art = image::Artifacts::new(&bins, &k)?;
    let scenarios: Vec<scenario::Scenario> = scenario::load_all()?
        .into_iter()
        .filter(|s| only.is_none_or(|o| s.name.contains(o)))
        .collect();
    // One kernel + initramfs per flavor the chosen scenarios use (the targets they kexec
    // into are always built from the default kernel: `art`).
    let mut kernels: HashMap<kernel::Flavor, (PathBuf, PathBuf)> = HashMap::new();
    for s in &scenarios {
        if kernels.contains_key(&s.kernel) {
            continue;
        }
        let (image, initrd) = if s.kernel == kernel::Flavor::default() {
            (k.image.clone(), initramfs::leapboot(&bins, &k)?)
        } else {
            let other = kernel::get_flavor(s.kernel)?;
            let name = format!("leapboot-initramfs-{}.cpio.gz", s.kernel.name());
            let initrd = initramfs::leapboot_named(&bins, &other, &name)?;
            (other.image, initrd)
        };
        kernels.insert(s.kernel, (image, initrd));
    }
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(scenarios.len().max(1));
    println!(
        "xtask: running {} QEMU scenario(s), {workers} at a time (TCG):",
        scenarios.len()
    );
    for s in &scenarios {
        println!("  {:<32} {}", s.name, s.description);
    }
    let queue = Arc::new(Mutex::new(scenarios.iter().collect::<Vec<_>>()));
    let failures = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let queue = Arc::clone(&queue);
            let failures = Arc::clone(&failures);
            let (kernels, art) = (&kernels, &art);
            scope.spawn(move || loop {
                let Some(s) = queue.lock().expect("queue").pop() else {
                    break;
                };
                let (image, initrd) = &kernels[&s.kernel];
                let o = scenario::run(s, image, initrd, art);
                for t in &o.timings {
                    println!("     {:<32} timing {t}", s.name);
                }
                if o.passed {
                    println!("PASS {:<32} {:6.1} s", s.name, o.duration.as_secs_f64());
                } else {
                    println!(
                        "FAIL {:<32} {:6.1} s  {}\n     transcript: {}",
                        s.name,
                        o.duration.as_secs_f64(),
                        o.message,
                        o.transcript.display()
                    );
                    if let Ok(t) = std::fs::read_to_string(&o.transcript) {
                        let lines: Vec<&str> = t.lines().collect();
                        for l in &lines[lines.len().saturating_sub(25)..] {
                            println!("     | {l}");
                        }
                    }
                    failures.lock().expect("failures").push(s.name.clone());
                }
            });
        }
    });
    let failures = failures.lock().expect("failures");
    if !failures.is_empty() {
        bail!(
            "{} of {} QEMU scenario(s) failed: {}",
            failures.len(),
            scenarios.len(),
            failures.join(", ")
        );
    }
    println!("xtask: all {} QEMU scenario(s) passed", scenarios.len());
    Ok(())
}
