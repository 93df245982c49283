//! Prerequisites: checks for the tools each command needs, installs what is missing when it
//! can (root on Debian: rustup target, apt-get), and otherwise says exactly what to run.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

/// What a command needs.
pub struct Need {
    musl: bool,
    tools: Vec<(&'static str, &'static str)>, // (program, Debian package)
}

impl Need {
    /// The musl Rust target, and musl's C compiler (ring's C and assembly in the TLS
    /// helper).
    pub fn musl_only() -> Need {
        Need {
            musl: true,
            tools: vec![("musl-gcc", "musl-tools")],
        }
    }

    pub fn kernel() -> Need {
        let mut tools = Vec::new();
        if std::env::var_os("LEAPBOOT_KERNEL").is_none() {
            tools.extend([
                ("apt-get", "apt"),
                ("apt-cache", "apt"),
                ("dpkg-deb", "dpkg"),
            ]);
        }
        Need { musl: true, tools }
    }

    pub fn images() -> Need {
        let mut n = Need::kernel();
        n.tools.extend([
            ("mkfs.ext4", "e2fsprogs"),
            ("mkfs.vfat", "dosfstools"),
            ("mcopy", "mtools"),
            ("debugfs", "e2fsprogs"),
            ("sfdisk", "fdisk"),
            ("xorriso", "xorriso"),
        ]);
        n.tools.extend(Need::md().tools);
        n
    }

    /// md RAID and LVM fixtures: mdadm runs in a helper VM of static busybox; LVM's tools
    /// write PVs on loop devices without activation.
    pub fn md() -> Need {
        let mut n = Need::kernel();
        n.tools.extend([
            ("mdadm", "mdadm"),
            ("busybox", "busybox-static"),
            ("mkfs.ext4", "e2fsprogs"),
            ("pvcreate", "lvm2"),
            ("losetup", "mount"),
            ("qemu-system-x86_64", "qemu-system-x86"),
        ]);
        n
    }

    /// `cargo xtask test-net`: TFTP and HTTP(S) servers in a network namespace.
    pub fn net() -> Need {
        Need {
            musl: false,
            tools: vec![
                ("dnsmasq", "dnsmasq-base"),
                ("python3", "python3"),
                ("openssl", "openssl"),
                ("ip", "iproute2"),
            ],
        }
    }

    /// The Debian root filesystems of the live-system scenarios.
    pub fn rootfs() -> Need {
        Need {
            musl: false,
            tools: vec![("debootstrap", "debootstrap"), ("chroot", "coreutils")],
        }
    }

    pub fn qemu() -> Need {
        let mut n = Need::images();
        n.tools.push(("qemu-system-x86_64", "qemu-system-x86"));
        // The DHCP/TFTP server of the network tests (tests/net_dnsmasq.rs, [network]
        // scenarios) and the tool that makes their namespaces.
        n.tools.push(("dnsmasq", "dnsmasq-base"));
        n.tools.push(("ip", "iproute2"));
        // The HTTP server of `[network] http = true` (netlab.rs).
        n.tools.push(("python3", "python3"));
        // The TPM 2.0 of `[tpm]` scenarios.
        n.tools.push(("swtpm", "swtpm"));
        // An independent reader of the event log the target receives.
        n.tools.push(("tpm2_eventlog", "tpm2-tools"));
        n
    }

    /// `firmware = "ovmf-secureboot"` scenarios: keys, signing, and a venv for
    /// `virt-fw-vars` (OVMF itself is a file: `crate::secureboot` installs `ovmf`).
    pub fn secureboot() -> Need {
        Need {
            musl: false,
            tools: vec![
                ("openssl", "openssl"),
                ("sbsign", "sbsigntool"),
                ("sbattach", "sbsigntool"),
                ("python3", "python3"),
                ("mkfs.vfat", "dosfstools"),
                ("mcopy", "mtools"),
                ("mmd", "mtools"),
            ],
        }
    }

    /// `cargo xtask bench`: QEMU, and `ldd` to copy kexec-tools' libraries into the
    /// initramfs of the hand-written arm.
    pub fn bench() -> Need {
        let mut n = Need::qemu();
        n.tools.push(("ldd", "libc-bin"));
        n
    }
}

/// Finds `program` in PATH or the sbin directories (mkfs.* live there).
pub fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| PathBuf::from(d).join(program))
        .find(|p| p.is_file());
    found
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Makes sure everything in `need` is present, installing it if possible.
pub fn ensure(need: &Need) -> anyhow::Result<()> {
    if need.musl {
        let out = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output();
        let have = out.as_ref().is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout).contains("x86_64-unknown-linux-musl")
        });
        if !have {
            println!("xtask: installing the Rust target for the static /init: rustup target add x86_64-unknown-linux-musl");
            let ok = Command::new("rustup")
                .args(["target", "add", "x86_64-unknown-linux-musl"])
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                bail!("could not install the musl target; run: rustup target add x86_64-unknown-linux-musl");
            }
        }
    }
    let mut missing: Vec<&str> = need
        .tools
        .iter()
        .filter(|(p, _)| find(p).is_none())
        .map(|(_, pkg)| *pkg)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    let cmd = format!(
        "apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if !is_root() || find("apt-get").is_none() {
        bail!("missing tools; install them with: sudo apt-get update && sudo {cmd}");
    }
    println!("xtask: installing missing packages: apt-get update && {cmd}");
    apt(&["update"])?;
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    args.extend(missing.iter().copied());
    apt(&args)?;
    for (p, pkg) in &need.tools {
        if find(p).is_none() {
            bail!("{p} is still missing after installing {pkg}");
        }
    }
    Ok(())
}

/// Runs apt-get non-interactively.
pub fn apt(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get")?;
    if !status.success() {
        bail!("apt-get {} failed ({status})", args.join(" "));
    }
    Ok(())
}
