//! Kernel modules: `modules.dep` dependency resolution, `modules.alias` matching, and loading
//! with `finit_module`.
//!
//! The initramfs has no `modprobe` and no udev; [`Loader`] is their small, bounded
//! replacement: modules by name (the configured list; an alias such as `fs-vfat` works too),
//! by modalias as udev does it (every bus device's `modalias` under `/sys/bus` at start —
//! [`coldplug`] — and each `MODALIAS=` of a later uevent), each module at most once. A missing
//! module or a failed load is logged and the rest go on. It does not decide which modules the
//! initramfs carries (`cargo xtask initramfs` does).

pub mod alias;
pub mod coldplug;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

pub use alias::Aliases;

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

/// Why a module is loaded (for the log).
#[derive(Clone, Copy, Debug)]
pub enum Reason<'a> {
    /// Named in the configuration.
    Configured,
    /// A device's modalias matched one of its aliases.
    Modalias(&'a str),
}

/// Loads modules from one directory (`/lib/modules/<release>`), each at most once.
#[derive(Debug, Default)]
pub struct Loader {
    dir: PathBuf,
    dep: ModulesDep,
    aliases: Aliases,
    /// Module paths already tried (loaded, present, or failed): never tried twice.
    tried: HashSet<String>,
    /// Modaliases already looked up.
    seen: HashSet<String>,
    /// Modules newly loaded so far.
    pub loaded: usize,
    /// Time spent matching modaliases against the aliases (not loading).
    matching: std::time::Duration,
}

/// The largest index file read (a generic kernel's `modules.alias` is ~1.5 MiB).
const MAX_INDEX: u64 = 16 << 20;

fn read_index(path: &Path) -> Option<String> {
    use std::io::Read;
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            log::warn!("{}: {e}", path.display());
            return None;
        }
    };
    let mut text = String::new();
    match f.take(MAX_INDEX).read_to_string(&mut text) {
        Ok(_) => Some(text),
        Err(e) => {
            log::error!("{}: {e}", path.display());
            None
        }
    }
}

impl Loader {
    /// Reads `modules.dep` and `modules.alias` of `dir`; a missing file is logged (then only
    /// built-in drivers are available, which is fine for kernels without modules).
    pub fn open(dir: &Path) -> Loader {
        let dep = read_index(&dir.join("modules.dep"))
            .map(|t| ModulesDep::parse(&t))
            .unwrap_or_default();
        let aliases = read_index(&dir.join("modules.alias"))
            .map(|t| Aliases::parse(&t))
            .unwrap_or_default();
        Loader::new(dir, dep, aliases)
    }

    /// A loader over already parsed indexes.
    pub fn new(dir: &Path, dep: ModulesDep, aliases: Aliases) -> Loader {
        Loader {
            dir: dir.to_owned(),
            dep,
            aliases,
            ..Loader::default()
        }
    }

    /// Loads module `name` (or the modules of an alias like `fs-vfat`) with its dependencies.
    /// Returns how many modules were newly loaded.
    pub fn load(&mut self, name: &str, why: Reason<'_>) -> usize {
        if self.dep.contains(name) {
            return self.load_module(name, why);
        }
        let by_alias = self.aliases.lookup(name);
        if by_alias.is_empty() {
            if Path::new("/sys/module").join(normalize(name)).exists() {
                log::debug!("module {name}: built in or already loaded");
            } else {
                log::error!(
                    "module {name}: not in {} nor in modules.alias",
                    self.dir.join("modules.dep").display()
                );
            }
            return 0;
        }
        by_alias.iter().map(|m| self.load_module(m, why)).sum()
    }

    /// Loads every module whose alias matches `modalias` (once per modalias string).
    pub fn load_for_modalias(&mut self, modalias: &str) -> usize {
        if self.seen.contains(modalias) || self.seen.len() > 100_000 {
            return 0;
        }
        self.seen.insert(modalias.to_string());
        let t = std::time::Instant::now();
        let modules = self.aliases.lookup(modalias);
        self.matching += t.elapsed();
        modules
            .iter()
            .map(|m| self.load_module(m, Reason::Modalias(modalias)))
            .sum()
    }

    /// Matches every bus device under `sys` (`/sys`) that has no driver yet, loads what matches,
    /// and repeats while that created new devices (a bus driver such as `virtio_pci` brings
    /// the devices `virtio_blk` drives); at most [`coldplug::MAX_ROUNDS`] rounds.
    pub fn coldplug(&mut self, sys: &Path) -> usize {
        let mut total = 0;
        let mut walking = std::time::Duration::ZERO;
        let mut rounds = 0;
        for round in 1..=coldplug::MAX_ROUNDS {
            rounds = round;
            let t = std::time::Instant::now();
            let found = coldplug::modaliases(sys);
            walking += t.elapsed();
            let mut loaded = 0;
            for m in &found {
                loaded += self.load_for_modalias(m);
            }
            log::debug!(
                "coldplug round {round}: {} device(s) without a driver, {loaded} module(s) loaded",
                found.len()
            );
            total += loaded;
            if loaded == 0 {
                break;
            }
        }
        log::info!(
            "coldplug: {total} module(s) in {rounds} round(s); reading sysfs took {} ms, matching {} ms",
            walking.as_millis(),
            self.matching.as_millis()
        );
        total
    }

    fn load_module(&mut self, name: &str, why: Reason<'_>) -> usize {
        let Some(order) = self.dep.load_order(name) else {
            log::error!(
                "module {name}: not in {}",
                self.dir.join("modules.dep").display()
            );
            return 0;
        };
        let mut loaded = 0;
        for path in order {
            if !self.tried.insert(path.clone()) {
                continue;
            }
            let module = name_of(&path);
            match load_one(&self.dir.join(&path)) {
                Ok(true) => {
                    loaded += 1;
                    match why {
                        Reason::Configured => log::info!("module {module} loaded (configured)"),
                        Reason::Modalias(m) => {
                            log::info!("module {module} loaded by modalias {m}")
                        }
                    }
                }
                Ok(false) => log::debug!("module {module} was already loaded"),
                Err(e) => log::error!("module {}: {e}", self.dir.join(&path).display()),
            }
        }
        self.loaded += loaded;
        loaded
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

/// The parameters the kernel command line gives module `module`: every `module.param=value`
/// (`-` and `_` alike in the module name, values possibly double-quoted), as `modprobe` reads
/// them from /proc/cmdline (the kernel applies such parameters only to built-in drivers).
/// Returned as the space-separated `param=value` string `finit_module` takes.
pub fn cmdline_params(cmdline: &str, module: &str) -> String {
    let module = normalize(module);
    let mut out: Vec<&str> = Vec::new();
    let mut rest = cmdline.trim_start();
    while !rest.is_empty() {
        // One token: up to a space outside double quotes.
        let mut quoted = false;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    quoted = !quoted;
                }
                c.is_whitespace() && !quoted
            })
            .map_or(rest.len(), |(i, _)| i);
        let token = &rest[..end];
        rest = rest[end..].trim_start();
        let Some((name, param)) = token.split_once('.') else {
            continue;
        };
        if normalize(name) == module && param.contains('=') && !param.starts_with('=') {
            out.push(param);
        }
    }
    out.join(" ")
}

/// This kernel's command line, read once (bounded).
fn kernel_cmdline() -> &'static str {
    static CMDLINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CMDLINE.get_or_init(|| {
        use std::io::Read;
        let mut bytes = Vec::new();
        if let Ok(f) = std::fs::File::open("/proc/cmdline") {
            let _ = f.take(64 * 1024).read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Loads one module file, with the parameters the kernel command line gives it. Ok(false):
/// it was already loaded.
fn load_one(path: &Path) -> Result<bool, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let module = name_of(&path.to_string_lossy());
    let params = cmdline_params(kernel_cmdline(), &module);
    if !params.is_empty() {
        log::info!("module {module}: parameters from the kernel command line: {params}");
    }
    let params = std::ffi::CString::new(params).unwrap_or_default();
    match nix::kmod::finit_module(&file, &params, nix::kmod::ModuleInitFlags::empty()) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::EEXIST) => Ok(false),
        Err(e) => Err(format!("finit_module failed: {}", e.desc())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_parameters_come_from_the_kernel_command_line() {
        let cmdline = "console=ttyS0 usb-storage.delay_use=0 usb_storage.quirks=\"a b\" \
                       usb_storagex.y=1 usb_storage.flag usb_storage.=x leapboot.timeout=3";
        assert_eq!(
            cmdline_params(cmdline, "usb_storage"),
            "delay_use=0 quirks=\"a b\""
        );
        assert_eq!(
            cmdline_params(cmdline, "usb-storage"),
            cmdline_params(cmdline, "usb_storage")
        );
        assert_eq!(cmdline_params(cmdline, "vfat"), "");
        assert_eq!(cmdline_params("", "x"), "");
        assert_eq!(
            cmdline_params("x.a=\"unterminated b", "x"),
            "a=\"unterminated b"
        );
    }

    proptest::proptest! {
        #[test]
        fn parameters_never_panic_and_belong_to_the_module(cmdline in ".{0,200}") {
            let p = cmdline_params(&cmdline, "m");
            proptest::prop_assert!(p.is_empty() || p.contains('='));
        }
    }

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

    /// A module directory whose "modules" are not ELF: finit_module refuses them (EPERM
    /// unprivileged, ENOEXEC as root), which must be logged and survived.
    fn fake_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("kernel")).unwrap();
        for m in ["virtio_pci", "virtio_blk", "virtio"] {
            std::fs::write(d.path().join(format!("kernel/{m}.ko")), b"not a module").unwrap();
        }
        std::fs::write(
            d.path().join("modules.dep"),
            "kernel/virtio.ko:
kernel/virtio_pci.ko: kernel/virtio.ko
kernel/virtio_blk.ko: kernel/virtio.ko
",
        )
        .unwrap();
        std::fs::write(
            d.path().join("modules.alias"),
            "alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000002v* virtio_blk
alias fs-blk virtio_blk
",
        )
        .unwrap();
        d
    }

    #[test]
    fn each_module_is_tried_once_and_failures_go_on() {
        let dir = fake_dir();
        let mut l = Loader::open(dir.path());
        assert_eq!(l.load_for_modalias("virtio:d00000002v00001AF4"), 0);
        assert_eq!(
            l.tried
                .iter()
                .map(|p| name_of(p))
                .collect::<std::collections::BTreeSet<_>>(),
            ["virtio".to_string(), "virtio_blk".to_string()].into()
        );
        // The same modalias again is not even looked up; another device of the same driver
        // tries nothing new.
        assert_eq!(l.load_for_modalias("virtio:d00000002v00001AF4"), 0);
        assert_eq!(l.tried.len(), 2);
        assert_eq!(l.load("virtio_pci", Reason::Configured), 0);
        assert_eq!(l.tried.len(), 3);
        // Unknown names and aliases are logged, nothing else.
        assert_eq!(l.load("nvme", Reason::Configured), 0);
        assert_eq!(l.tried.len(), 3);
        assert_eq!(l.loaded, 0);
    }

    #[test]
    fn names_resolve_through_aliases() {
        let dir = fake_dir();
        let mut l = Loader::open(dir.path());
        l.load("fs-blk", Reason::Configured);
        assert!(l.tried.contains("kernel/virtio_blk.ko"));
    }

    #[test]
    fn coldplug_matches_sysfs_devices() {
        let dir = fake_dir();
        let sys = tempfile::tempdir().unwrap();
        let dev = sys.path().join("bus/pci/devices/0000:00:02.0");
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(
            dev.join("modalias"),
            "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00\n",
        )
        .unwrap();
        let mut l = Loader::open(dir.path());
        assert_eq!(
            l.coldplug(sys.path()),
            0,
            "nothing loads: the files are not modules"
        );
        assert!(l.tried.contains("kernel/virtio_pci.ko"));
        assert!(!l.tried.contains("kernel/virtio_blk.ko"));
    }

    #[test]
    fn a_missing_index_is_survived() {
        let mut l = Loader::open(Path::new("/nonexistent/modules"));
        assert_eq!(l.load("vfat", Reason::Configured), 0);
        assert_eq!(l.coldplug(Path::new("/nonexistent")), 0);
    }

    #[test]
    fn names_from_paths() {
        assert_eq!(name_of("kernel/fs/fat/vfat.ko.xz"), "vfat");
        assert_eq!(name_of("a/b/snd-hda.ko"), "snd_hda");
    }
}
