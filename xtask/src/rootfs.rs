//! Real Debian root filesystems for the live-system scenarios, made by `debootstrap` and cached
//! under `target/rootfs/<variant>/` (built on first use; a `.leapboot-complete` stamp marks a
//! finished build, so an interrupted one is redone).
//!
//! Variants (Debian 12, `--variant=minbase`):
//! - `systemd`: `systemd-sysv` and `udev` as init;
//! - `openrc`: `sysvinit-core` first (debootstrap's `--include=openrc` fails on the sysv-rc
//!   conflict), then `apt-get install openrc` in the chroot: sysvinit as PID 1, OpenRC as rc.
//!
//! Each gets the test hook: at the end of boot, `/usr/local/sbin/leapboot-test` (a script the
//! scenario puts into the partition) runs with its output on `/dev/ttyS0` — a systemd unit
//! (`leapboot-test.service`) or, under sysvinit, an `inittab` `once` line (it starts after the
//! rc `wait` line, i.e. when OpenRC has reached the default runlevel). No login is involved.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};

use crate::paths;

const SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";

/// The runner the hooks start: the scenario's script, if the image has one.
const RUNNER: &str = "#!/bin/sh\n\
# leapboot test hook: runs the scenario's script with its output on the serial console.\n\
[ -x /usr/local/sbin/leapboot-test ] || exit 0\n\
exec /usr/local/sbin/leapboot-test </dev/null >/dev/ttyS0 2>&1\n";

const SYSTEMD_UNIT: &str = "[Unit]\n\
Description=leapboot test hook (the scenario's script)\n\
After=multi-user.target\n\
\n\
[Service]\n\
Type=simple\n\
ExecStart=/usr/local/sbin/leapboot-test-run\n\
\n\
[Install]\n\
WantedBy=multi-user.target\n";

/// Packages debootstrap installs, per variant.
fn includes(variant: &str) -> anyhow::Result<&'static str> {
    Ok(match variant {
        "systemd" => "systemd-sysv,udev,kmod,e2fsprogs,procps",
        "openrc" => "sysvinit-core,kmod,e2fsprogs,procps",
        _ => bail!("unknown Debian rootfs variant {variant:?}: expected systemd or openrc"),
    })
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The cached root filesystem of `variant`, built now if missing.
pub fn get(variant: &str) -> anyhow::Result<PathBuf> {
    let packages = includes(variant)?;
    let dir = paths::target().join("rootfs").join(variant);
    let stamp = dir.join(".leapboot-complete");
    if stamp.is_file() {
        return Ok(dir);
    }
    crate::prereq::ensure(&crate::prereq::Need::rootfs())?;
    if unsafe { libc::geteuid() } != 0 {
        bail!("building the Debian root filesystem needs root (debootstrap); run as root");
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let start = Instant::now();
    println!("xtask: building the Debian {SUITE} '{variant}' root filesystem with debootstrap (once; cached in {})", dir.display());
    run(
        Command::new(crate::prereq::find("debootstrap").context("debootstrap")?)
            .args(["--variant=minbase", &format!("--include={packages}"), SUITE])
            .arg(&dir)
            .arg(MIRROR),
    )?;
    if variant == "openrc" {
        std::fs::copy("/etc/resolv.conf", dir.join("etc/resolv.conf")).ok();
        run(Command::new("chroot")
            .arg(&dir)
            .args([
                "apt-get",
                "install",
                "-y",
                "--no-install-recommends",
                "openrc",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    configure(&dir, variant)?;
    // The package cache and lists are not needed in the image.
    run(Command::new("chroot").arg(&dir).args(["apt-get", "clean"]))?;
    let _ = std::fs::remove_dir_all(dir.join("var/lib/apt/lists"));
    std::fs::create_dir_all(dir.join("var/lib/apt/lists/partial"))?;
    std::fs::write(&stamp, format!("{:.0} s\n", start.elapsed().as_secs_f64()))?;
    println!(
        "xtask: Debian '{variant}' root filesystem built in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    Ok(dir)
}

fn write(dir: &Path, path: &str, text: &str, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().expect("a file path has a parent"))?;
    std::fs::write(&p, text)?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// What every test system needs: a root that is mounted rw by the kernel (`rw` on the command
/// line) and never checked, a host name, a serial console, and the test hook.
fn configure(dir: &Path, variant: &str) -> anyhow::Result<()> {
    write(dir, "etc/hostname", "leapboot-test\n", 0o644)?;
    write(
        dir,
        "etc/fstab",
        "# The root is mounted rw by the kernel (root=... rw); no fsck pass.\n/dev/root / ext4 defaults 0 0\n",
        0o644,
    )?;
    write(dir, "usr/local/sbin/leapboot-test-run", RUNNER, 0o755)?;
    match variant {
        "systemd" => {
            write(
                dir,
                "etc/systemd/system/leapboot-test.service",
                SYSTEMD_UNIT,
                0o644,
            )?;
            let wants = dir.join("etc/systemd/system/multi-user.target.wants");
            std::fs::create_dir_all(&wants)?;
            let link = wants.join("leapboot-test.service");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink("/etc/systemd/system/leapboot-test.service", link)?;
        }
        _ => {
            let inittab = dir.join("etc/inittab");
            let mut text = std::fs::read_to_string(&inittab).context("the image's /etc/inittab")?;
            text.push_str(
                "\n# leapboot test hook\nlt:2345:once:/usr/local/sbin/leapboot-test-run\n",
            );
            std::fs::write(&inittab, text)?;
        }
    }
    Ok(())
}
