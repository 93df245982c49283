//! Builds the static musl binaries: leapboot's `/init`, its TLS helper, the `leapboot` CLI
//! and the target test `/init`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::bail;

use crate::paths;

pub const MUSL: &str = "x86_64-unknown-linux-musl";

/// The built binaries.
pub struct Binaries {
    pub init: PathBuf,
    pub target_init: PathBuf,
    /// The `leapboot` CLI, built like `/init` (the benchmark runs it; a scenario's target
    /// system runs `leapboot reboot` with it).
    pub cli: PathBuf,
    /// The TLS helper `/init` runs for HTTPS (`leapboot-tls`; in an initramfs only when it
    /// configures CA certificates).
    pub tls_helper: PathBuf,
}

/// Builds both in release mode (static, stripped) and checks /init's size limit.
pub fn all() -> anyhow::Result<Binaries> {
    crate::prereq::ensure(&crate::prereq::Need::musl_only())?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(paths::root())
        .args([
            "build",
            "--release",
            "--target",
            MUSL,
            "-p",
            "leapboot-init",
            "-p",
            "leapboot-target-init",
            "-p",
            "leapboot",
        ])
        .status()?;
    if !status.success() {
        bail!("building the musl binaries failed");
    }
    // On its own: built with the others, its `client` feature (rustls) would be unified into
    // the `leapboot-tls` that /init links for the relay protocol.
    let status = Command::new(&cargo)
        .current_dir(paths::root())
        .env("CC_x86_64_unknown_linux_musl", "musl-gcc")
        .args(["build", "--release", "--target", MUSL, "-p", "leapboot-tls"])
        .status()?;
    if !status.success() {
        bail!("building the TLS helper (leapboot-tls) failed");
    }
    let dir = paths::target().join(MUSL).join("release");
    let bins = Binaries {
        init: dir.join("init"),
        target_init: dir.join("leapboot-target-init"),
        cli: dir.join("leapboot"),
        tls_helper: dir.join("leapboot-tls"),
    };
    let size = std::fs::metadata(&bins.init)?.len();
    println!(
        "xtask: /init is {} bytes ({:.2} MiB, limit 2 MiB), static, stripped",
        size,
        size as f64 / 1048576.0
    );
    if size > 2 << 20 {
        bail!("/init is {size} bytes, over the 2 MiB limit");
    }
    println!(
        "xtask: the TLS helper is {} bytes (not in /init; in an initramfs that sets ca_certificates)",
        std::fs::metadata(&bins.tls_helper)?.len()
    );
    Ok(bins)
}
