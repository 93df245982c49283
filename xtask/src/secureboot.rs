//! A real UEFI Secure Boot chain for scenarios with `firmware = "ovmf-secureboot"`: Debian's
//! OVMF (secboot build, SMM), keys of our own making enrolled in a copy of its variables file,
//! and the test kernel re-signed with our `db` key, so the first kernel boots as an EFI stub
//! under Secure Boot, locks itself down and loads our `db` certificate into its platform
//! keyring: `kexec_file_load` then takes exactly the kernels our key signed. The first
//! kernel is loaded by OVMF's boot manager from a disk of its own ([`Chain::boot_disk`]), not
//! by `-kernel`: OVMF's QEMU kernel loader, when LoadImage refuses an image, falls back to its
//! legacy Linux loader and boots it anyway (seen here with an unsigned kernel), so only the
//! boot manager's path shows the firmware enforcing db.
//!
//! Made once and kept under `target/secureboot/`: `PK`, `KEK`, `db` (openssl, RSA 2048),
//! `VARS.fd` (enrolled by `virt-fw-vars` of the `virt-firmware` Python package, in a venv
//! there: Debian 12 does not package it). The kernels are made again for every run from the
//! test kernel: `unsigned.vmlinuz` (Debian's signature removed by `sbattach --remove`: the
//! kernel verifies only the first signature), `signed.vmlinuz` (`sbsign` with `db`),
//! `tampered.vmlinuz` (the signed file with one byte of its payload flipped).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::{paths, prereq};

/// OVMF's Secure Boot build (4 MiB flash, SMM required) and its empty variables store.
const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// The owner GUID of our enrolled certificates (any fixed GUID does).
const OWNER: &str = "6c656170-626f-6f74-2d74-657374000001";
/// The `virt-firmware` release used for enrolling (a pinned version: reproducible stores).
const VIRT_FIRMWARE: &str = "virt-firmware==26.10";

/// The files of one chain.
#[derive(Clone, Debug)]
pub struct Chain {
    /// OVMF's code flash (read-only).
    pub code: PathBuf,
    /// The enrolled variables store: copy it per run (the firmware writes to it).
    pub vars: PathBuf,
    pub signed: PathBuf,
    pub unsigned: PathBuf,
    pub tampered: PathBuf,
    /// The `db` certificate (PEM) and its key: what signed `signed`.
    pub db_cert: PathBuf,
    pub db_key: PathBuf,
    /// `virt-fw-vars` (in the venv).
    pub virt_fw_vars: PathBuf,
}

impl Chain {
    /// The firmware's boot disk and variables store for one run in `dir`: a FAT volume (no
    /// partition table) with `\EFI\leapboot\kernel.efi` (`kernel`) and `initrd.img`, and a
    /// copy of the enrolled store with one boot entry, `Boot0000`, whose options are the
    /// kernel's command line (`initrd=` for the EFI stub first). The boot manager loads the
    /// kernel with LoadImage: under Secure Boot a kernel that db did not sign is refused.
    pub fn boot_disk(
        &self,
        dir: &Path,
        kernel: &Path,
        initrd: &Path,
        cmdline: &str,
    ) -> anyhow::Result<(PathBuf, PathBuf)> {
        let esp = dir.join("firmware-esp.img");
        let _ = std::fs::remove_file(&esp);
        let kib = (std::fs::metadata(kernel)?.len() + std::fs::metadata(initrd)?.len()) / 1024;
        let kib = (kib + 4096).max(32768).to_string();
        run(Command::new("mkfs.vfat")
            .args(["-C", "-n", "FWESP"])
            .arg(&esp)
            .arg(&kib))?;
        let img = esp.as_os_str();
        run(Command::new("mmd")
            .arg("-i")
            .arg(img)
            .args(["::/EFI", "::/EFI/leapboot"]))?;
        for (from, to) in [(kernel, "kernel.efi"), (initrd, "initrd.img")] {
            run(Command::new("mcopy")
                .arg("-i")
                .arg(img)
                .arg(from)
                .arg(format!("::/EFI/leapboot/{to}")))?;
        }
        let vars = dir.join("OVMF_VARS.fd");
        let entry =
            format!("\\EFI\\leapboot\\kernel.efi initrd=\\EFI\\leapboot\\initrd.img {cmdline}");
        run(Command::new(&self.virt_fw_vars)
            .arg("-i")
            .arg(&self.vars)
            .arg("-o")
            .arg(&vars)
            .arg("--append-boot-filepath")
            .arg(entry))?;
        Ok((esp, vars))
    }
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Makes (or reuses) the keys and the enrolled store, and signs `kernel` afresh.
pub fn prepare(kernel: &Path) -> anyhow::Result<Chain> {
    prereq::ensure(&prereq::Need::secureboot())?;
    if !Path::new(OVMF_CODE).is_file() {
        println!("xtask: installing OVMF: apt-get install -y ovmf");
        prereq::apt(&["install", "-y", "--no-install-recommends", "ovmf"])?;
    }
    let dir = paths::target().join("secureboot");
    std::fs::create_dir_all(&dir)?;
    for k in ["PK", "KEK", "db"] {
        let (key, crt) = (dir.join(format!("{k}.key")), dir.join(format!("{k}.crt")));
        if key.is_file() && crt.is_file() {
            continue;
        }
        run(Command::new("openssl")
            .args([
                "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
            ])
            .args(["-days", "3650", "-subj", &format!("/CN=leapboot test {k}/")])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&crt))?;
    }
    let tool = virt_fw_vars(&dir)?;
    let vars = dir.join("VARS.fd");
    if !vars.is_file() {
        let tmp = dir.join("VARS.fd.tmp");
        run(Command::new(&tool)
            .args(["-i", OVMF_VARS, "-o"])
            .arg(&tmp)
            .args(["--set-pk", OWNER])
            .arg(dir.join("PK.crt"))
            .args(["--add-kek", OWNER])
            .arg(dir.join("KEK.crt"))
            .args(["--add-db", OWNER])
            .arg(dir.join("db.crt"))
            .args(["--no-microsoft", "--secure-boot"]))?;
        std::fs::rename(&tmp, &vars)?;
    }
    let unsigned = dir.join("unsigned.vmlinuz");
    std::fs::copy(kernel, &unsigned)?;
    run(Command::new("sbattach").arg("--remove").arg(&unsigned))?;
    let signed = dir.join("signed.vmlinuz");
    run(Command::new("sbsign")
        .arg("--key")
        .arg(dir.join("db.key"))
        .arg("--cert")
        .arg(dir.join("db.crt"))
        .arg("--output")
        .arg(&signed)
        .arg(&unsigned))?;
    let tampered = dir.join("tampered.vmlinuz");
    let mut bytes = std::fs::read(&signed)?;
    let at = tampered_offset(&bytes)?;
    bytes[at] ^= 0x01;
    std::fs::write(&tampered, &bytes)?;
    Ok(Chain {
        code: PathBuf::from(OVMF_CODE),
        vars,
        signed,
        unsigned,
        tampered,
        db_cert: dir.join("db.crt"),
        db_key: dir.join("db.key"),
        virt_fw_vars: tool,
    })
}

impl Chain {
    /// `image` signed with `db` by `sbsign` (a UKI, say).
    pub fn sign(&self, image: &[u8]) -> anyhow::Result<Vec<u8>> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = self.db_cert.parent().context("the chain's directory")?;
        let tag = format!("{}-{n}", std::process::id());
        let (from, to) = (
            dir.join(format!("sign-{tag}.in")),
            dir.join(format!("sign-{tag}.out")),
        );
        std::fs::write(&from, image)?;
        run(Command::new("sbsign")
            .arg("--key")
            .arg(&self.db_key)
            .arg("--cert")
            .arg(&self.db_cert)
            .arg("--output")
            .arg(&to)
            .arg(&from))?;
        let signed = std::fs::read(&to);
        let _ = std::fs::remove_file(&from);
        let _ = std::fs::remove_file(&to);
        Ok(signed?)
    }
}

/// A byte inside the image's signed payload: the middle of the file, well before the
/// signature table at its end (the table is a few KiB; a kernel is megabytes).
fn tampered_offset(image: &[u8]) -> anyhow::Result<usize> {
    if image.len() < 1 << 20 {
        bail!("the signed kernel is only {} bytes", image.len());
    }
    Ok(image.len() / 2)
}

/// `virt-fw-vars`, installed into a venv under `dir` on first use.
fn virt_fw_vars(dir: &Path) -> anyhow::Result<PathBuf> {
    let venv = dir.join("venv");
    let tool = venv.join("bin/virt-fw-vars");
    if tool.is_file() {
        return Ok(tool);
    }
    // Debian's python3 has venv only with python3-venv (ensurepip comes with it).
    let has_venv = Command::new("python3")
        .args(["-c", "import venv, ensurepip"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_venv {
        println!("xtask: installing python3-venv: apt-get install -y python3-venv");
        prereq::apt(&["install", "-y", "--no-install-recommends", "python3-venv"])?;
    }
    println!(
        "xtask: installing {VIRT_FIRMWARE} (virt-fw-vars) into {}",
        venv.display()
    );
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    run(Command::new(venv.join("bin/pip")).args(["install", "-q", VIRT_FIRMWARE]))?;
    if !tool.is_file() {
        bail!(
            "{} is missing after installing {VIRT_FIRMWARE}",
            tool.display()
        );
    }
    Ok(tool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tampered_byte_is_inside_the_payload() {
        assert!(tampered_offset(&[0u8; 1000]).is_err());
        let img = vec![0u8; 8 << 20];
        assert_eq!(tampered_offset(&img).unwrap(), 4 << 20);
    }
}
