//! Initramfs images: cpio "newc" archives compressed with gzip, written in Rust.
//!
//! - leapboot's own: `/init`, `/etc/leapboot.toml`, `/dev/console`, and the kernel modules
//!   `initramfs/leapboot.toml` and `initramfs/bundle.toml` list, with their dependencies and
//!   a `modules.dep` and `modules.alias` trimmed to what is shipped.
//! - the target's (what scenarios boot into): the target `/init` and a marker file.
//! - marker-only initrds, to prove several initrds all arrive.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use flate2::{write::GzEncoder, Compression};

use crate::build::Binaries;
use crate::kernel::Kernel;
use crate::paths;

enum Node {
    Dir,
    File(Vec<u8>, u32),
    CharDev(u32, u32),
}

/// An archive being assembled; parents are added automatically.
#[derive(Default)]
pub struct Archive {
    nodes: Vec<(String, Node)>,
}

impl Archive {
    pub fn dir(&mut self, path: &str) {
        let mut cur = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if !cur.is_empty() {
                cur.push('/');
            }
            cur.push_str(part);
            if !self.nodes.iter().any(|(n, _)| *n == cur) {
                self.nodes.push((cur.clone(), Node::Dir));
            }
        }
    }

    fn parent(&mut self, path: &str) {
        if let Some((p, _)) = path.rsplit_once('/') {
            self.dir(p);
        }
    }

    pub fn file(&mut self, path: &str, data: Vec<u8>, mode: u32) {
        self.parent(path);
        self.nodes.push((path.to_string(), Node::File(data, mode)));
    }

    pub fn chardev(&mut self, path: &str, major: u32, minor: u32) {
        self.parent(path);
        self.nodes
            .push((path.to_string(), Node::CharDev(major, minor)));
    }

    /// The archive, gzip-compressed.
    pub fn to_gzip(&self) -> anyhow::Result<Vec<u8>> {
        let mut w = GzEncoder::new(Vec::new(), Compression::best());
        for (i, (name, node)) in self.nodes.iter().enumerate() {
            let b = cpio::newc::Builder::new(name)
                .ino(i as u32 + 1)
                .uid(0)
                .gid(0)
                .nlink(1)
                .mtime(0);
            w = match node {
                Node::Dir => b.mode(0o040755).nlink(2).write(w, 0).finish()?,
                Node::CharDev(major, minor) => b
                    .mode(0o020600)
                    .rdev_major(*major)
                    .rdev_minor(*minor)
                    .write(w, 0)
                    .finish()?,
                Node::File(data, mode) => {
                    let mut fw = b.mode(0o100000 | mode).write(w, data.len() as u32);
                    fw.write_all(data)?;
                    fw.finish()?
                }
            };
        }
        let w = cpio::newc::trailer(w)?;
        Ok(w.finish()?)
    }
}

/// `initramfs/leapboot.toml`, parsed.
fn configured() -> anyhow::Result<leapboot::config::Config> {
    let path = paths::root().join("initramfs/leapboot.toml");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let (config, problems) = leapboot::config::Config::parse(&text);
    if let Some(p) = problems.first() {
        anyhow::bail!("initramfs/leapboot.toml: {p}");
    }
    Ok(config)
}

/// The modules `initramfs/bundle.toml` lists (all its lists together).
fn bundled_modules() -> anyhow::Result<Vec<String>> {
    let path = paths::root().join("initramfs/bundle.toml");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let lists: std::collections::BTreeMap<String, Vec<String>> =
        toml::from_str(&text).with_context(|| path.display().to_string())?;
    Ok(lists.into_values().flatten().collect())
}

/// Builds `target/leapboot-initramfs.cpio.gz` for the default kernel; prints and checks its
/// size.
pub fn leapboot(bins: &Binaries, kernel: &Kernel) -> anyhow::Result<PathBuf> {
    leapboot_named(bins, kernel, "leapboot-initramfs.cpio.gz")
}

/// As [`leapboot`], written to `target/<name>` (one initramfs per kernel flavor).
pub fn leapboot_named(bins: &Binaries, kernel: &Kernel, name: &str) -> anyhow::Result<PathBuf> {
    let mut a = Archive::default();
    for d in ["dev", "proc", "sys", "run", "tmp"] {
        a.dir(d);
    }
    a.chardev("dev/console", 5, 1);
    a.file("init", std::fs::read(&bins.init)?, 0o755);
    a.file(
        "etc/leapboot.toml",
        std::fs::read(paths::root().join("initramfs/leapboot.toml"))?,
        0o644,
    );
    let without_modules = a.to_gzip()?.len();
    let config = configured()?;
    // HTTPS needs a CA configured, and /init's TLS is the helper: both or neither.
    let mut helper_bytes = 0;
    if !config.ca_certificates.is_empty() {
        let helper = std::fs::read(&bins.tls_helper)?;
        helper_bytes = helper.len();
        a.file(
            leapboot::net::tls::helper::INSTALLED.trim_start_matches('/'),
            helper,
            0o755,
        );
    }
    let names = config.modules;
    let bundle = bundled_modules()?;
    let mut module_bytes = 0usize;
    match (&kernel.modules, kernel.release()) {
        (Some(dir), Some(release)) => {
            module_bytes = add_modules(&mut a, dir, &release, &names, &bundle)?
        }
        _ if names.is_empty() => {}
        _ => println!("xtask: warning: the kernel has no modules directory; modules {names:?} are not included (set LEAPBOOT_MODULES)"),
    }
    let gz = a.to_gzip()?;
    let out = paths::target().join(name);
    std::fs::write(&out, &gz)?;
    println!(
        "xtask: initramfs {} is {} bytes ({:.2} MiB); {} bytes without modules and TLS helper (limit 1.5 MiB); modules {} bytes uncompressed; TLS helper {}",
        out.display(),
        gz.len(),
        gz.len() as f64 / 1048576.0,
        without_modules,
        module_bytes,
        if helper_bytes > 0 {
            format!("{helper_bytes} bytes uncompressed (ca_certificates is set)")
        } else {
            "left out (initramfs/leapboot.toml sets no ca_certificates)".into()
        }
    );
    if without_modules > 3 << 19 {
        anyhow::bail!(
            "the initramfs without modules is {without_modules} bytes, over the 1.5 MiB limit"
        );
    }
    Ok(out)
}

/// Adds `names` (each must exist) and `bundle` (skipped when the kernel has no such module:
/// built in or absent) with their dependencies; returns their uncompressed size.
fn add_modules(
    a: &mut Archive,
    dir: &Path,
    release: &str,
    names: &[String],
    bundle: &[String],
) -> anyhow::Result<usize> {
    let dep_text = std::fs::read_to_string(dir.join("modules.dep"))?;
    let dep = leapboot::kmod::ModulesDep::parse(&dep_text);
    let mut wanted: Vec<String> = Vec::new();
    let mut skipped: Vec<&str> = Vec::new();
    for n in names.iter().chain(bundle) {
        let order = match dep.load_order(n) {
            Some(o) => o,
            None if bundle.contains(n) && !names.contains(n) => {
                skipped.push(n);
                continue;
            }
            None => anyhow::bail!(
                "module {n} (initramfs/leapboot.toml) is not in {}",
                dir.join("modules.dep").display()
            ),
        };
        for p in order {
            if !wanted.contains(&p) {
                wanted.push(p);
            }
        }
    }
    let mut bytes = 0;
    let base = format!("lib/modules/{release}");
    for p in &wanted {
        let data = std::fs::read(dir.join(p))?;
        bytes += data.len();
        a.file(&format!("{base}/{p}"), data, 0o644);
    }
    // The trimmed index: only the lines of the modules shipped.
    let trimmed: String = dep_text
        .lines()
        .filter(|l| {
            l.split_once(':')
                .is_some_and(|(p, _)| wanted.iter().any(|w| w == p.trim()))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    a.file(&format!("{base}/modules.dep"), trimmed.into_bytes(), 0o644);
    // The aliases of the shipped modules only: leapboot matches every device against them.
    let shipped: Vec<String> = wanted.iter().map(|p| leapboot::kmod::name_of(p)).collect();
    let alias_text = std::fs::read_to_string(dir.join("modules.alias")).unwrap_or_default();
    let aliases: String = alias_text
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(2)
                .is_some_and(|m| shipped.contains(&leapboot::kmod::normalize(m)))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    a.file(
        &format!("{base}/modules.alias"),
        aliases.into_bytes(),
        0o644,
    );
    println!("xtask: modules: {}", shipped.join(" "));
    if !skipped.is_empty() {
        println!(
            "xtask: not modules in this kernel (built in or absent): {}",
            skipped.join(" ")
        );
    }
    Ok(bytes)
}

/// The target initramfs: the target `/init` plus marker `base`.
pub fn target(bins: &Binaries) -> anyhow::Result<Vec<u8>> {
    let mut a = Archive::default();
    for d in ["dev", "proc"] {
        a.dir(d);
    }
    a.chardev("dev/console", 5, 1);
    a.file("init", std::fs::read(&bins.target_init)?, 0o755);
    a.file("leapboot-markers/base", Vec::new(), 0o644);
    a.to_gzip()
}

/// An initrd that makes the booted target a "running system" for `leapboot reboot`: the
/// static `leapboot` CLI at `/bin/leapboot` and a boot volume at `/chain` (a BLS entry `next`
/// with `cmdline`, the test kernel, the target initramfs). Given after the target initramfs,
/// the target `/init` finds both and, if its command line says `target.chain`, runs
/// `leapboot reboot --force --root /chain next`.
/// The BLS entry `next` of a chain initrd's `/chain` volume.
pub fn chain_entry(cmdline: &str) -> String {
    format!("title Chained\nlinux /vmlinuz\ninitrd /initrd.img\noptions {cmdline}\n")
}

pub fn chain(cli: &[u8], kernel: &[u8], target: &[u8], cmdline: &str) -> anyhow::Result<Vec<u8>> {
    let mut a = Archive::default();
    a.file("bin/leapboot", cli.to_vec(), 0o755);
    a.file(
        "chain/loader/entries/next.conf",
        chain_entry(cmdline).into_bytes(),
        0o644,
    );
    a.file("chain/vmlinuz", kernel.to_vec(), 0o644);
    a.file("chain/initrd.img", target.to_vec(), 0o644);
    a.to_gzip()
}

/// An initrd holding only `/leapboot-markers/<name>`.
pub fn marker(name: &str) -> anyhow::Result<Vec<u8>> {
    let mut a = Archive::default();
    a.file(&format!("leapboot-markers/{name}"), Vec::new(), 0o644);
    a.to_gzip()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn archives_read_back_with_parents_first_and_a_console_node() {
        let mut a = Archive::default();
        a.chardev("dev/console", 5, 1);
        a.file("lib/modules/6.1/kernel/x.ko", b"ko".to_vec(), 0o644);
        let gz = a.to_gzip().unwrap();
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut raw)
            .unwrap();
        let mut names = Vec::new();
        let mut r = &raw[..];
        loop {
            let e = cpio::newc::Reader::new(r).unwrap();
            if e.entry().is_trailer() {
                break;
            }
            names.push((
                e.entry().name().to_string(),
                e.entry().mode(),
                e.entry().rdev_major(),
            ));
            r = e.finish().unwrap();
        }
        let just_names: Vec<&str> = names.iter().map(|n| n.0.as_str()).collect();
        assert_eq!(
            just_names,
            [
                "dev",
                "dev/console",
                "lib",
                "lib/modules",
                "lib/modules/6.1",
                "lib/modules/6.1/kernel",
                "lib/modules/6.1/kernel/x.ko"
            ]
        );
        assert_eq!(names[1].1 & 0o170000, 0o020000, "a character device");
        assert_eq!(names[1].2, 5);
    }
}
