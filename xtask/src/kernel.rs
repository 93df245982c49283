//! The test kernels: Debian's `linux-image-cloud-amd64` (the default) and, for scenarios that
//! need drivers the cloud kernel lacks (AHCI, USB), the generic `linux-image-amd64`, where
//! every storage driver is a module. Each is resolved to its versioned package with
//! apt-cache, fetched with `apt-get download`, unpacked with `dpkg-deb -x` and cached under
//! `target/kernel/<package>/`. `LEAPBOOT_KERNEL` (+ `LEAPBOOT_MODULES`) overrides the cloud
//! kernel.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::paths;

/// Which Debian kernel a scenario boots leapboot with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// `linux-image-cloud-amd64`: NVMe and ext4 built in, virtio as modules; no AHCI, no USB.
    #[default]
    Cloud,
    /// `linux-image-amd64`: every storage driver, USB and filesystem as a module.
    Generic,
}

impl Flavor {
    fn meta_package(self) -> &'static str {
        match self {
            Flavor::Cloud => "linux-image-cloud-amd64",
            Flavor::Generic => "linux-image-amd64",
        }
    }

    /// Whether a cached package directory name belongs to this flavor.
    fn owns(self, package: &str) -> bool {
        package.ends_with("-cloud-amd64") == (self == Flavor::Cloud)
    }

    /// A short name for file names and messages.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Cloud => "cloud",
            Flavor::Generic => "generic",
        }
    }
}

/// A kernel to boot, and its modules.
pub struct Kernel {
    /// The bzImage.
    pub image: PathBuf,
    /// `lib/modules/<release>` with `modules.dep`, if the kernel has modules.
    pub modules: Option<PathBuf>,
}

impl Kernel {
    /// The kernel release (`6.1.0-56-cloud-amd64`), from the modules directory name.
    pub fn release(&self) -> Option<String> {
        self.modules
            .as_ref()?
            .file_name()?
            .to_str()
            .map(str::to_string)
    }
}

/// Returns the default (cloud) kernel, fetching and caching it if needed.
pub fn get() -> anyhow::Result<Kernel> {
    get_flavor(Flavor::Cloud)
}

/// Returns the kernel of `flavor`, fetching and caching it if needed.
pub fn get_flavor(flavor: Flavor) -> anyhow::Result<Kernel> {
    if flavor == Flavor::Cloud {
        if let Some(k) = from_env()? {
            return Ok(k);
        }
    }
    let package = match resolve_package(flavor) {
        Ok(p) => p,
        Err(e) => match newest_cached(flavor) {
            Some(p) => {
                println!("xtask: {e:#}; using the cached {p}");
                p
            }
            None => return Err(e),
        },
    };
    let dir = paths::target().join("kernel").join(&package);
    if !dir.join(".complete").exists() {
        fetch(&package, &dir)?;
    }
    find_in(&dir.join("root"))
}

fn from_env() -> anyhow::Result<Option<Kernel>> {
    if let Some(image) = std::env::var_os("LEAPBOOT_KERNEL") {
        let image = PathBuf::from(image);
        if !image.is_file() {
            bail!("LEAPBOOT_KERNEL={}: no such file", image.display());
        }
        let modules = std::env::var_os("LEAPBOOT_MODULES").map(PathBuf::from);
        if let Some(m) = &modules {
            if !m.join("modules.dep").is_file() {
                crate::modinfo::write_index(m)
                    .with_context(|| format!("indexing modules in {}", m.display()))?;
            }
        }
        return Ok(Some(Kernel { image, modules }));
    }
    Ok(None)
}

fn apt_cache_depends(meta: &str) -> anyhow::Result<Option<String>> {
    let out = Command::new("apt-cache")
        .args(["depends", meta])
        .output()
        .context("running apt-cache")?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-") && !p.starts_with('<'))
        .map(str::to_string))
}

/// `linux-image-cloud-amd64` → `linux-image-6.1.0-56-cloud-amd64`.
fn resolve_package(flavor: Flavor) -> anyhow::Result<String> {
    let meta = flavor.meta_package();
    if let Some(p) = apt_cache_depends(meta)? {
        return Ok(p);
    }
    println!("xtask: {meta} is unknown to apt; running apt-get update");
    crate::prereq::apt(&["update"])?;
    apt_cache_depends(meta)?
        .with_context(|| format!("apt-cache knows no package {meta} (is this Debian?)"))
}

fn newest_cached(flavor: Flavor) -> Option<String> {
    let mut v: Vec<String> = std::fs::read_dir(paths::target().join("kernel"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join(".complete").exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|p| flavor.owns(p))
        .collect();
    v.sort_by(|a, b| leapboot::version::compare(a, b));
    v.pop()
}

fn fetch(package: &str, dir: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    println!(
        "xtask: downloading {package} (apt-get download) into {}",
        dir.display()
    );
    let status = Command::new("apt-get")
        .arg("download")
        .arg(package)
        .current_dir(dir)
        .status()?;
    if !status.success() {
        bail!("apt-get download {package} failed");
    }
    let deb = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .context("apt-get download left no .deb")?;
    let root = dir.join("root");
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&root)
        .status()?;
    if !status.success() {
        bail!("dpkg-deb -x {} failed", deb.display());
    }
    std::fs::remove_file(&deb)?;
    let k = find_in(&root)?;
    if let Some(m) = &k.modules {
        println!(
            "xtask: indexing modules of {} (modules.dep, modules.alias)",
            m.display()
        );
        crate::modinfo::write_index(m)?;
    }
    std::fs::write(dir.join(".complete"), package)?;
    Ok(())
}

fn find_in(root: &Path) -> anyhow::Result<Kernel> {
    let image = std::fs::read_dir(root.join("boot"))
        .with_context(|| format!("{}: no boot/ directory", root.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .with_context(|| format!("{}: no boot/vmlinuz-*", root.display()))?;
    let release = image
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .unwrap_or_default();
    let modules = root.join("lib/modules").join(release);
    Ok(Kernel {
        image,
        modules: modules.is_dir().then_some(modules),
    })
}
