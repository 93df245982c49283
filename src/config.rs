//! `/etc/leapboot.toml`: the initramfs' configuration (serde + toml).
//!
//! An invalid file never stops a boot: the problem is reported naming the key, and defaults
//! are used for what could not be read.

use std::time::Duration;

use serde::Deserialize;

use crate::entry::Timeout;

/// Where the initramfs keeps its configuration.
pub const PATH: &str = "/etc/leapboot.toml";

/// The configuration. Every key is optional; see README.md § Configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Autoboot timeout in seconds; -1 waits forever. Overrides the boot configs' timeouts.
    pub timeout: Option<i64>,
    /// Kernel modules to load at start, by name (dependencies from `modules.dep` come along).
    #[serde(default)]
    pub modules: Vec<String>,
    /// Discovery ends once no new block device appeared for this long (default 500).
    pub settle_ms: Option<u64>,
    /// Discovery never waits longer than this for block devices (default 10000).
    pub device_wait_ms: Option<u64>,
    /// Also scan RAM, loop and zram block devices (ignored by default).
    #[serde(default)]
    pub virtual_disks: bool,
    /// Arguments appended to kernels found by name in `/boot` without any configuration
    /// (after `root=` and the root filesystem's `/etc/kernel/cmdline`).
    pub bootdir_args: Option<String>,
}

impl Config {
    /// Parses `text`. On error, returns the defaults and a message naming the problem.
    pub fn parse(text: &str) -> (Config, Option<String>) {
        match toml::from_str(text) {
            Ok(c) => (c, None),
            Err(e) => {
                // One line naming the place: `/etc/leapboot.toml:2: timeout = "soon": invalid type...`
                let at = e.span().map_or(0, |s| s.start).min(text.len());
                let line_no = text[..at].matches('\n').count() + 1;
                let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
                let msg = format!(
                    "{PATH}:{line_no}: {line}: {}; using the defaults",
                    e.message()
                );
                (Config::default(), Some(msg))
            }
        }
    }

    /// The configured timeout.
    pub fn timeout(&self) -> Option<Timeout> {
        self.timeout.map(Timeout::from_secs)
    }

    /// Settle time for device discovery.
    pub fn settle(&self) -> Duration {
        Duration::from_millis(self.settle_ms.unwrap_or(500))
    }

    /// Longest wait for block devices.
    pub fn device_wait(&self) -> Duration {
        Duration::from_millis(self.device_wait_ms.unwrap_or(10_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_shipped_config() {
        let text = include_str!("../initramfs/leapboot.toml");
        let (c, err) = Config::parse(text);
        assert_eq!(err, None);
        assert!(c.modules.contains(&"vfat".to_string()));
    }

    #[test]
    fn bad_config_names_the_key_and_falls_back() {
        let (c, err) = Config::parse("timeout = \"soon\"\n");
        assert_eq!(c, Config::default());
        assert!(err.unwrap().contains("timeout"), "message names the key");
        let (_, err) = Config::parse("colour = true\n");
        assert!(err.unwrap().contains("colour"));
    }
}
