//! `cargo xtask`: all of leapboot's automation, in Rust (no shell scripts, no Makefile).
//!
//! One file per command; this file only dispatches. Outputs go under `target/`.

mod bench;
mod build;
mod certs;
mod fuzz;
mod image;
mod initramfs;
mod kernel;
mod mdvm;
mod modinfo;
mod netboot;
mod netlab;
mod nettest;
mod prereq;
mod qemu;
mod rootfs;
mod run;
mod scenario;
mod secureboot;
mod test;
mod tpmlab;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, run and test leapboot")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the static musl /init and the target test init.
    Build,
    /// Fetch and cache the test kernel (Debian linux-image-cloud-amd64) under target/kernel.
    ///
    /// LEAPBOOT_KERNEL=/path/to/bzImage uses your own kernel instead, with its modules from
    /// LEAPBOOT_MODULES=/lib/modules/<release> if it needs any.
    Kernel,
    /// Build leapboot's initramfs (target/leapboot-initramfs.cpio.gz) and print its size.
    Initramfs,
    /// Build the disk image fixtures: the demo disk and every QEMU scenario's disks.
    Images,
    /// Boot leapboot in QEMU (TCG) with the demo disk or your own disk images.
    ///
    /// The guest's serial console is this terminal (Ctrl-A X quits). With a non-TTY stdin it
    /// still works: pipe keys in, or give it /dev/null to run unattended.
    Run {
        /// A raw disk image to attach as a virtio disk (repeatable). Default: the demo disk.
        #[arg(long, value_name = "IMG")]
        disk: Vec<PathBuf>,
        /// Extra kernel command-line arguments for leapboot's kernel (e.g. leapboot.timeout=0).
        #[arg(long, value_name = "ARGS", default_value = "")]
        append: String,
        /// Use KVM instead of TCG software emulation.
        #[arg(long)]
        kvm: bool,
    },
    /// Run every test: cargo test for the workspace, then the QEMU scenarios.
    Test {
        /// Only run QEMU scenarios whose name contains this.
        #[arg(long)]
        only: Option<String>,
        /// Skip `cargo test` and run only the QEMU scenarios.
        #[arg(long)]
        qemu_only: bool,
    },
    /// Network fetching for real, as root: `leapboot list --url`/`fetch` against dnsmasq
    /// (TFTP) and Python HTTP(S) servers in a network namespace of its own (also run by `test`).
    TestNet,
    /// Run every fuzz target (fuzz/, libFuzzer; no cargo-fuzz needed) for S seconds each,
    /// from copies of the checked-in corpora; a crash, timeout or out-of-memory fails.
    Fuzz {
        /// Seconds per target.
        #[arg(long, value_name = "S", default_value_t = 60)]
        time: u64,
        /// Only the targets whose name contains this.
        #[arg(long)]
        only: Option<String>,
    },
    /// Build (once) and cache a Debian root filesystem for the live-system scenarios:
    /// `systemd` or `openrc` (debootstrap, under target/rootfs/).
    Rootfs {
        /// `systemd` or `openrc`.
        variant: String,
    },
    /// Measure sizes, discovery cost, parser scaling and four boot arms side by side; write
    /// BENCHMARKS.md.
    ///
    /// Takes about 10 minutes (2 cores): it builds the bench disks and boots a direct boot, a
    /// busybox floor, a busybox + kexec-tools script and leapboot in QEMU, interleaved.
    Bench {
        /// Fewer rounds and runs (under 10 minutes); the results are marked as quick.
        #[arg(long)]
        quick: bool,
        /// Only this section (printed, BENCHMARKS.md left as it is).
        #[arg(long, value_enum)]
        only: Option<bench::Section>,
    },
    /// Parser scaling points, one line each (run by `bench` in a release build).
    #[command(hide = true)]
    BenchScaling {
        /// Timed runs per point.
        #[arg(long, default_value_t = 21)]
        runs: usize,
    },
    /// Regenerate src/md/testdata: md arrays made by mdadm in a helper VM (needs the kernel).
    MdFixtures,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Build => build::all().map(|_| ()),
        Command::Kernel => {
            prereq::ensure(&prereq::Need::kernel())?;
            let k = kernel::get()?;
            println!("kernel: {}", k.image.display());
            Ok(())
        }
        Command::Initramfs => {
            prereq::ensure(&prereq::Need::kernel())?;
            let k = kernel::get()?;
            let bins = build::all()?;
            initramfs::leapboot(&bins, &k).map(|_| ())
        }
        Command::Images => {
            prereq::ensure(&prereq::Need::images())?;
            let k = kernel::get()?;
            let bins = build::all()?;
            let art = image::Artifacts::new(&bins, &k)?;
            image::demo(&art)?;
            for s in scenario::load_all()? {
                let dir = paths::target().join("qemu-tests").join(&s.name);
                image::build_layout(&s.disk, &s.md, &s.lvm, &dir, &art)?;
                println!("images for {}: {}", s.name, dir.display());
            }
            Ok(())
        }
        Command::Run { disk, append, kvm } => run::run(&disk, &append, kvm),
        Command::Test { only, qemu_only } => test::run(only.as_deref(), qemu_only),
        Command::TestNet => nettest::run(),
        Command::Fuzz { time, only } => fuzz::run(time, only.as_deref()),
        Command::Bench { quick, only } => bench::run(quick, only),
        Command::BenchScaling { runs } => bench::scaling::run(runs.max(1)),
        Command::Rootfs { variant } => rootfs::get(&variant).map(|d| println!("{}", d.display())),
        Command::MdFixtures => mdvm::fixtures(),
    }
}

/// Where things live.
mod paths {
    use std::path::PathBuf;

    /// The workspace root.
    pub fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask is in the workspace")
            .to_owned()
    }

    /// `target/` of the workspace.
    pub fn target() -> PathBuf {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target"))
    }
}
