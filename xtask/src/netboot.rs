//! Real network boot trees from Debian packages (`[network] tree = "<package>"`): the package
//! is fetched with `apt-get download` (after an `apt-get update` if apt's lists are stale),
//! unpacked with `dpkg-deb -x` and cached under `target/netboot/<package>_<version>/root`,
//! like the test kernels in `kernel.rs`. The version is apt's candidate; offline, the newest
//! cached version is used. Provenance (package, version) is printed and written beside the
//! TFTP root each scenario builds from it.
//!
//! `debian-installer-12-netboot-amd64` is the model: its TFTP trees are
//! `usr/lib/debian-installer/images/12/amd64/{text,gtk}` (what `netboot.tar.gz` holds).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::paths;

/// An unpacked package.
pub struct Tree {
    /// `package_version` (`debian-installer-12-netboot-amd64_20230607+deb12u15`).
    pub name: String,
    /// Where `dpkg-deb -x` put it.
    pub root: PathBuf,
}

/// apt's candidate version of `package`, if apt knows it.
fn candidate(package: &str) -> anyhow::Result<Option<String>> {
    let out = Command::new("apt-cache")
        .args(["policy", package])
        .output()
        .context("running apt-cache")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Candidate:"))
        .map(str::trim)
        .find(|v| !v.is_empty() && *v != "(none)")
        .map(str::to_string))
}

fn newest_cached(package: &str) -> Option<String> {
    let mut v: Vec<String> = std::fs::read_dir(paths::target().join("netboot"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join(".complete").exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.strip_prefix(package).is_some_and(|r| r.starts_with('_')))
        .collect();
    v.sort_by(|a, b| leapboot::version::compare(a, b));
    v.pop()
}

/// `package`, unpacked (fetched and cached if needed).
pub fn get(package: &str) -> anyhow::Result<Tree> {
    if package.is_empty()
        || !package
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        bail!("[network] tree = {package:?}: not a Debian package name");
    }
    let version = match candidate(package)? {
        Some(v) => Some(v),
        None => {
            println!("xtask: {package} is unknown to apt; running apt-get update");
            crate::prereq::apt(&["update"])?;
            candidate(package)?
        }
    };
    let cached = |n: String| Tree {
        root: paths::target().join("netboot").join(&n).join("root"),
        name: n,
    };
    let Some(version) = version else {
        return newest_cached(package)
            .map(cached)
            .with_context(|| format!("apt knows no package {package} (is this Debian?)"));
    };
    let name = format!("{package}_{version}");
    if paths::target()
        .join("netboot")
        .join(&name)
        .join(".complete")
        .exists()
    {
        return Ok(cached(name));
    }
    match fetch(package, &version) {
        Ok(name) => Ok(cached(name)),
        Err(e) => match newest_cached(package) {
            Some(n) => {
                println!("xtask: {e:#}; using the cached {n}");
                Ok(cached(n))
            }
            None => Err(e),
        },
    }
}

fn download(package: &str, version: &str, dir: &Path) -> anyhow::Result<bool> {
    Ok(Command::new("apt-get")
        .arg("download")
        .arg(format!("{package}={version}"))
        .current_dir(dir)
        .status()
        .context("running apt-get")?
        .success())
}

/// Downloads and unpacks `package` `version` (or, when apt's lists were stale, the version
/// the mirror has after an update); returns the cache directory's name.
fn fetch(package: &str, version: &str) -> anyhow::Result<String> {
    let mut version = version.to_string();
    let mut dir = paths::target()
        .join("netboot")
        .join(format!("{package}_{version}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    println!(
        "xtask: downloading {package} {version} (apt-get download) into {}",
        dir.display()
    );
    if !download(package, &version, &dir)? {
        // Stale lists name a version the mirror no longer has (a 404): refresh once.
        println!("xtask: apt-get download failed; running apt-get update and trying again");
        let _ = std::fs::remove_dir_all(&dir);
        crate::prereq::apt(&["update"])?;
        version = candidate(package)?.unwrap_or(version);
        dir = paths::target()
            .join("netboot")
            .join(format!("{package}_{version}"));
        std::fs::create_dir_all(&dir)?;
        if !download(package, &version, &dir)? {
            bail!("apt-get download {package}={version} failed");
        }
    }
    unpack_deb(&dir, &dir.join("root"))?;
    let name = format!("{package}_{version}");
    std::fs::write(dir.join(".complete"), &name)?;
    Ok(name)
}

/// Unpacks the one `.deb` that `apt-get download` left in `dir` into `root` (`dpkg-deb -x`),
/// then removes the `.deb`.
pub fn unpack_deb(dir: &Path, root: &Path) -> anyhow::Result<()> {
    let deb = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .context("apt-get download left no .deb")?;
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(root)
        .status()?;
    if !status.success() {
        bail!("dpkg-deb -x {} failed", deb.display());
    }
    std::fs::remove_file(&deb)?;
    Ok(())
}

/// Copies the directory `from` to `to` (which must not exist yet): symlinks stay symlinks
/// (the netboot trees link `pxelinux.cfg` and `pxelinux.0` into their subdirectories), and
/// the files in `skip` (paths relative to `from`, `/`-separated) are left out because the
/// scenario replaces them.
pub fn copy_tree(from: &Path, to: &Path, skip: &[String]) -> anyhow::Result<u64> {
    fn walk(from: &Path, to: &Path, rel: &str, skip: &[String]) -> anyhow::Result<u64> {
        std::fs::create_dir_all(to)?;
        let mut bytes = 0;
        for e in std::fs::read_dir(from)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let dest = to.join(e.file_name());
            let t = e.file_type()?;
            if t.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(e.path())?, &dest)?;
            } else if t.is_dir() {
                bytes += walk(&e.path(), &dest, &r, skip)?;
            } else if !skip.contains(&r) {
                bytes += std::fs::copy(e.path(), &dest)
                    .with_context(|| format!("copying {}", e.path().display()))?;
            }
        }
        Ok(bytes)
    }
    walk(from, to, "", skip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_keeps_symlinks_and_leaves_out_replaced_files() {
        let t = std::env::temp_dir().join(format!("xtask-netboot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        let src = t.join("src");
        std::fs::create_dir_all(src.join("d/amd64/pxelinux.cfg")).unwrap();
        std::fs::write(src.join("d/amd64/syslinux.cfg"), "default x\n").unwrap();
        std::fs::write(src.join("d/amd64/linux"), "big kernel").unwrap();
        std::os::unix::fs::symlink("../syslinux.cfg", src.join("d/amd64/pxelinux.cfg/default"))
            .unwrap();
        std::os::unix::fs::symlink("d/amd64/pxelinux.cfg", src.join("pxelinux.cfg")).unwrap();
        let dst = t.join("dst");
        let n = copy_tree(&src, &dst, &["d/amd64/linux".into()]).unwrap();
        assert_eq!(n, 10);
        assert!(!dst.join("d/amd64/linux").exists());
        assert_eq!(
            std::fs::read_to_string(dst.join("pxelinux.cfg/default")).unwrap(),
            "default x\n"
        );
        assert!(std::fs::symlink_metadata(dst.join("pxelinux.cfg"))
            .unwrap()
            .file_type()
            .is_symlink());
        let _ = std::fs::remove_dir_all(&t);
    }

    #[test]
    fn package_names_are_checked() {
        assert!(get("../etc").is_err());
        assert!(get("").is_err());
    }
}
