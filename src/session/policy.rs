//! The boot policy: what the kernel command line (`leapboot.*`) and `/etc/leapboot.toml` say,
//! merged once by precedence, and applied to a [`BootList`].
//!
//! Precedence, everywhere: a `leapboot.*` kernel parameter, then the configuration file, then
//! what the boot configurations on the disks say (`loader.conf`, `grub.cfg`, ...), then the
//! built-in default. `/init` and the host CLI use this one policy, so `leapboot list` marks the
//! default that `/init` would boot.

use std::time::Duration;

use crate::cmdline::{NetMode, Params};
use crate::config::Config;
use crate::entry::{BootList, Format, Timeout};
use crate::menu::state::Lock;

/// Used when neither the command line, the configuration nor a boot configuration sets one.
pub const DEFAULT_TIMEOUT: Timeout = Timeout::Secs(5);

/// Everything the boot session decides by, merged from the kernel command line and the
/// configuration file.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Autoboot timeout that overrides the boot configurations' own.
    pub timeout: Option<Timeout>,
    /// The default entry's pattern (id, title or glob) that overrides the boot configurations'.
    pub default: Option<String>,
    /// Arguments appended to every entry.
    pub append: Option<String>,
    /// Arguments appended to kernels found in `/boot` without a configuration.
    pub bootdir_args: Option<String>,
    /// Locked mode.
    pub lock: Lock,
    /// Which volumes are trusted, and what that decides in locked mode.
    pub trust: crate::trust::Policy,
    /// The initial wait ends once nothing new appeared for this long (while no default is known).
    pub settle: Duration,
    /// The longest initial wait for disks.
    pub device_wait: Duration,
    /// Wait for the settle rule even when the default entry is already known.
    pub settle_always: bool,
    /// Read ram, loop and zram devices too.
    pub virtual_disks: bool,
    /// Colour in the menu.
    pub colour: bool,
    /// Network boot.
    pub network: NetMode,
    /// Globs over disk and volume names: when not empty, only these are read.
    pub allow_devices: Vec<String>,
    /// Globs over disk and volume names never read.
    pub deny_devices: Vec<String>,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy::new(&Params::default(), &Config::default())
    }
}

/// Where the default entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultSource {
    /// `leapboot.default=` or the configuration's `default` named it.
    Configured,
    /// A boot configuration on a disk named it (`loader.conf`, `set default=`, `DEFAULT`).
    BootConfig,
    /// Nothing named one (or what was named matches nothing yet): the first entry.
    First,
}

/// The default entry and why it is the one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultChoice {
    /// Index into the list's entries; `None` only for an empty list.
    pub index: Option<usize>,
    /// Why.
    pub source: DefaultSource,
    /// A configured pattern that names no entry (yet): worth a warning once the list is final.
    pub unmatched: Option<String>,
}

impl DefaultChoice {
    /// Whether a rule (not the fallback to the first entry) picked the default: then a disk
    /// appearing later cannot change which entry boots, and waiting for it is pointless.
    pub fn is_named(&self) -> bool {
        self.index.is_some() && self.source != DefaultSource::First
    }
}

impl Policy {
    /// Merges the kernel command line over the configuration file.
    pub fn new(params: &Params, config: &Config) -> Policy {
        let mut lock = config.lock();
        lock.locked |= params.locked;
        Policy {
            timeout: params.timeout.or(config.timeout()),
            default: params.default.clone().or(config.default.clone()),
            append: params.append.clone().or(config.append.clone()),
            bootdir_args: params.bootdir_args.clone().or(config.bootdir_args.clone()),
            trust: crate::trust::Policy {
                locked: lock.locked,
                ..config.trust_policy()
            },
            lock,
            settle: params.settle.unwrap_or(config.settle()),
            device_wait: params.device_wait.unwrap_or(config.device_wait()),
            settle_always: params.settle_always || config.settle_always,
            virtual_disks: config.virtual_disks,
            colour: params.colour.or(config.colour).unwrap_or(true),
            network: params.network.or(config.network).unwrap_or_default(),
            allow_devices: config.allow_devices.clone(),
            deny_devices: config.deny_devices.clone(),
        }
    }

    fn any_match(globs: &[String], names: &[&str]) -> bool {
        globs
            .iter()
            .any(|g| names.iter().any(|n| crate::glob::matches(g, n)))
    }

    /// Whether a volume may be read: checked by its own name and its disk's; not denied, and
    /// allowed when an allow list exists.
    pub fn volume_wanted(&self, volume: &str, disk: &str) -> bool {
        let names = [volume, disk];
        !Self::any_match(&self.deny_devices, &names)
            && (self.allow_devices.is_empty() || Self::any_match(&self.allow_devices, &names))
    }

    /// Whether disk `name` must be opened at all: it is allowed itself, or (not denied
    /// itself) one of its `partitions` is. The volumes are then checked one by one with
    /// [`Policy::volume_wanted`].
    pub fn disk_wanted(&self, name: &str, partitions: &[String]) -> bool {
        self.volume_wanted(name, name)
            || (!Self::any_match(&self.deny_devices, &[name])
                && partitions.iter().any(|p| self.volume_wanted(p, p)))
    }

    /// Adds the configured arguments to the entries: `bootdir_args` to kernels found without
    /// a configuration, then `append` to every entry.
    pub fn apply(&self, list: &mut BootList) {
        if let Some(args) = &self.bootdir_args {
            list.append_args(Format::Bootdir, args);
        }
        if let Some(args) = &self.append {
            list.append_all(args);
        }
    }

    /// The default entry: the configured pattern's first match, else the boot
    /// configurations' default, else the first entry.
    pub fn default_entry(&self, list: &BootList) -> DefaultChoice {
        let mut unmatched = None;
        if let Some(p) = &self.default {
            match list.find(p) {
                Some(i) => {
                    return DefaultChoice {
                        index: Some(i),
                        source: DefaultSource::Configured,
                        unmatched: None,
                    }
                }
                None => unmatched = Some(p.clone()),
            }
        }
        match list.default {
            Some(i) if i < list.entries.len() => DefaultChoice {
                index: Some(i),
                source: DefaultSource::BootConfig,
                unmatched,
            },
            _ => DefaultChoice {
                index: (!list.entries.is_empty()).then_some(0),
                source: DefaultSource::First,
                unmatched,
            },
        }
    }

    /// The policy of a running system's `leapboot` command: `/etc/leapboot.toml` if it
    /// exists (problems in it are logged as warnings), never the running kernel's command line
    /// (its `leapboot.*` parameters were meant for the boot that already happened).
    pub fn for_host(config_text: Option<&str>) -> Policy {
        let config = match config_text {
            Some(text) => {
                let (config, problems) = Config::parse(text);
                for p in problems {
                    log::warn!("{p}");
                }
                config
            }
            None => Config::default(),
        };
        Policy::new(&Params::default(), &config)
    }

    /// Applies the policy to a list as `/init` would boot it: arguments added, and the
    /// list's `default` and `timeout` replaced by the policy's choice, so that whoever reads
    /// the list (`leapboot list`, `load`) sees what `/init` would do.
    pub fn resolve(&self, list: &mut BootList) {
        self.apply(list);
        list.default = self.default_entry(list).index;
        list.timeout = Some(self.timeout(list));
    }

    /// The autoboot timeout: the configured one, else the boot configurations', else 5 s.
    pub fn timeout(&self, list: &BootList) -> Timeout {
        self.timeout.or(list.timeout).unwrap_or(DEFAULT_TIMEOUT)
    }
}
