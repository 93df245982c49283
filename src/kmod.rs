//! Kernel modules: `modules.dep` dependency resolution and loading with `finit_module`.
//!
//! The initramfs has no `modprobe`; this module is its small, bounded replacement. A missing
//! module or a failed load is reported and the rest go on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The parsed `modules.dep` of one kernel: module name → (path, dependency paths in load
/// order, dependencies first).
#[derive(Debug, Default, Clone)]
pub struct ModulesDep {
    by_name: HashMap<String, (String, Vec<String>)>,
}

/// A module's name from its path: `kernel/fs/fat/vfat.ko.xz` → `vfat`, with `-` as `_`.
pub fn name_of(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    normalize(stem)
}

/// Module names treat `-` and `_` alike; `_` is canonical.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

impl ModulesDep {
    /// Parses `modules.dep` text (`path: dep dep ...`, dependencies listed so that the last is
    /// loaded first, as depmod writes them).
    pub fn parse(text: &str) -> ModulesDep {
        let mut by_name = HashMap::new();
        for line in text.lines() {
            let Some((path, deps)) = line.split_once(':') else {
                continue;
            };
            let path = path.trim();
            if path.is_empty() {
                continue;
            }
            let deps: Vec<String> = deps.split_whitespace().map(str::to_string).collect();
            by_name.insert(name_of(path), (path.to_string(), deps));
        }
        ModulesDep { by_name }
    }

    /// The module paths to load for `name`, dependencies first; `None` if unknown.
    pub fn load_order(&self, name: &str) -> Option<Vec<String>> {
        let (path, deps) = self.by_name.get(&normalize(name))?;
        let mut order: Vec<String> = deps.iter().rev().cloned().collect();
        order.push(path.clone());
        Some(order)
    }

    /// Whether `name` is listed.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(&normalize(name))
    }
}

/// Loads `names` (and their dependencies) from `dir` (`/lib/modules/<release>`). Returns how
/// many modules were newly loaded. Failures are logged, never fatal.
pub fn load_all(dir: &Path, names: &[String]) -> usize {
    let dep = match std::fs::read_to_string(dir.join("modules.dep")) {
        Ok(t) => ModulesDep::parse(&t),
        Err(e) => {
            if !names.is_empty() {
                log::error!(
                    "{}: {e}; cannot load modules {names:?}",
                    dir.join("modules.dep").display()
                );
            }
            return 0;
        }
    };
    let mut loaded = 0;
    let mut done: Vec<String> = Vec::new();
    for name in names {
        let Some(order) = dep.load_order(name) else {
            log::error!(
                "module {name}: not in {}",
                dir.join("modules.dep").display()
            );
            continue;
        };
        for path in order {
            if done.contains(&path) {
                continue;
            }
            done.push(path.clone());
            match load_one(&dir.join(&path)) {
                Ok(true) => {
                    loaded += 1;
                    log::debug!("module {} loaded", name_of(&path));
                }
                Ok(false) => log::debug!("module {} was already loaded", name_of(&path)),
                Err(e) => log::error!("module {}: {e}", PathBuf::from(&path).display()),
            }
        }
    }
    loaded
}

/// Loads one module file. Ok(false): it was already loaded.
fn load_one(path: &Path) -> Result<bool, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    match nix::kmod::finit_module(&file, c"", nix::kmod::ModuleInitFlags::empty()) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::EEXIST) => Ok(false),
        Err(e) => Err(format!("finit_module failed: {}", e.desc())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_load_first() {
        let dep = ModulesDep::parse(
            "kernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko\n\
             kernel/fs/fat/fat.ko:\n\
             kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko\n\
             garbage line without colon\n",
        );
        assert_eq!(
            dep.load_order("vfat").unwrap(),
            ["kernel/fs/fat/fat.ko", "kernel/fs/fat/vfat.ko"]
        );
        assert_eq!(
            dep.load_order("virtio-blk").unwrap(),
            [
                "kernel/drivers/virtio/virtio.ko",
                "kernel/drivers/virtio/virtio_ring.ko",
                "kernel/drivers/block/virtio_blk.ko"
            ]
        );
        assert!(dep.load_order("nvme").is_none());
    }

    #[test]
    fn names_from_paths() {
        assert_eq!(name_of("kernel/fs/fat/vfat.ko.xz"), "vfat");
        assert_eq!(name_of("a/b/snd-hda.ko"), "snd_hda");
    }
}
