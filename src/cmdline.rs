//! The kernel command line leapboot runs under: its `leapboot.*` parameters.
//!
//! Parameters override `/etc/leapboot.toml`. Unknown `leapboot.*` keys and bad values are
//! reported (by name) and otherwise ignored.

use std::time::Duration;

use crate::entry::Timeout;

/// Whether network entries are looked for and what they may become.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetMode {
    /// No network at all.
    Off,
    /// The network is brought up beside the disks; its entries join the menu after the
    /// disks' and become the default only when no disk has an entry. A disk default boots
    /// without waiting for the network.
    #[default]
    On,
    /// Network entries first: the network's default is the default, and the boot waits for
    /// the network (within its timeout) before it decides.
    First,
}

impl NetMode {
    /// Parses `off`, `on` or `first`.
    pub fn parse(s: &str) -> Option<NetMode> {
        match s {
            "off" | "0" | "false" => Some(NetMode::Off),
            "on" | "1" | "true" => Some(NetMode::On),
            "first" => Some(NetMode::First),
            _ => None,
        }
    }
}

/// `leapboot.*` settings from the kernel command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    /// `leapboot.timeout=N`: autoboot timeout in seconds (-1: wait forever).
    pub timeout: Option<Timeout>,
    /// `leapboot.settle_ms=N`: how long no new block device must appear before discovery ends.
    pub settle: Option<Duration>,
    /// `leapboot.device_wait_ms=N`: the longest wait for block devices.
    pub device_wait: Option<Duration>,
    /// `leapboot.bootdir_args="..."`: arguments for kernels found without a configuration.
    pub bootdir_args: Option<String>,
    /// `leapboot.default=...`: the default entry (id, title or glob).
    pub default: Option<String>,
    /// `leapboot.colour=0|1`: colour in the menu.
    pub colour: Option<bool>,
    /// `leapboot.locked`: locked mode (the command line can lock, never unlock).
    pub locked: bool,
    /// `leapboot.append="..."`: arguments appended to every entry's command line.
    pub append: Option<String>,
    /// `leapboot.debug`: log at debug level.
    pub debug: bool,
    /// `leapboot.settle_always`: wait for the settle rule even when the default is known.
    pub settle_always: bool,
    /// `leapboot.network=off|on|first`.
    pub network: Option<NetMode>,
    /// `leapboot.measured_boot=required`: refuse to boot unmeasured (the command line can
    /// require measured boot, never relax `/etc/leapboot.toml`'s `measured_boot`).
    pub measured_boot_required: bool,
    /// Whether `loglevel=` was given (then leapboot leaves the console log level alone).
    pub has_loglevel: bool,
    /// Problems to report once logging is up.
    pub problems: Vec<String>,
}

/// Splits a command line into words, honouring double quotes as the kernel does.
pub fn split(cmdline: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(cur);
    }
    words
}

/// Parses the `leapboot.*` parameters of `cmdline`.
pub fn parse(cmdline: &str) -> Params {
    let mut p = Params::default();
    for word in split(cmdline) {
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word.as_str(), None),
        };
        if key == "loglevel" {
            p.has_loglevel = true;
        }
        let Some(name) = key.strip_prefix("leapboot.") else {
            continue;
        };
        let ms = |v: Option<&str>| {
            v.and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_millis)
        };
        match name {
            "timeout" => match value.and_then(|v| v.parse::<i64>().ok()) {
                Some(n) => p.timeout = Some(Timeout::from_secs(n)),
                None => p.problems.push(format!(
                    "{word}: expected leapboot.timeout=<seconds, -1 for forever>"
                )),
            },
            "settle_ms" => match ms(value) {
                Some(d) => p.settle = Some(d),
                None => p.problems.push(format!(
                    "{word}: expected leapboot.settle_ms=<milliseconds>"
                )),
            },
            "device_wait_ms" => match ms(value) {
                Some(d) => p.device_wait = Some(d),
                None => p.problems.push(format!(
                    "{word}: expected leapboot.device_wait_ms=<milliseconds>"
                )),
            },
            "bootdir_args" => p.bootdir_args = Some(value.unwrap_or_default().to_string()),
            "debug" => p.debug = !matches!(value, Some("0") | Some("false") | Some("off")),
            "network" => match value.and_then(NetMode::parse) {
                Some(m) => p.network = Some(m),
                None => p.problems.push(format!(
                    "{word}: expected leapboot.network=off, on or first"
                )),
            },
            "settle_always" => {
                p.settle_always = !matches!(value, Some("0") | Some("false") | Some("off"))
            }
            "default" => match value.filter(|v| !v.is_empty()) {
                Some(v) => p.default = Some(v.to_string()),
                None => p.problems.push(format!(
                    "{word}: expected leapboot.default=<id, title or glob>"
                )),
            },
            "colour" | "color" => match value {
                None | Some("1") | Some("on") | Some("true") => p.colour = Some(true),
                Some("0") | Some("off") | Some("false") => p.colour = Some(false),
                Some(_) => p
                    .problems
                    .push(format!("{word}: expected leapboot.colour=0 or 1")),
            },
            "locked" => match value {
                None | Some("1") | Some("on") | Some("true") => p.locked = true,
                Some(_) => p.problems.push(format!(
                    "{word}: leapboot.locked can only lock (leapboot.locked or =1)"
                )),
            },
            "append" => p.append = Some(value.unwrap_or_default().to_string()),
            "measured_boot" => match value {
                Some("required") => p.measured_boot_required = true,
                _ => p.problems.push(format!(
                    "{word}: leapboot.measured_boot can only require (=required)"
                )),
            },
            _ => p
                .problems
                .push(format!("{word}: unknown leapboot parameter, ignored")),
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_the_kernel() {
        assert_eq!(split(r#" a b="c d"  e "#), ["a", "b=c d", "e"]);
        assert_eq!(split(""), Vec::<String>::new());
    }

    #[test]
    fn leapboot_parameters() {
        let p = parse(
            "console=ttyS0 leapboot.timeout=0 leapboot.settle_ms=250 leapboot.debug loglevel=7",
        );
        assert_eq!(p.timeout, Some(Timeout::Secs(0)));
        assert_eq!(p.settle, Some(Duration::from_millis(250)));
        assert!(p.debug && p.has_loglevel);
        assert!(p.problems.is_empty());
        assert_eq!(parse("leapboot.timeout=-1").timeout, Some(Timeout::Forever));
        let q = parse(r#"leapboot.bootdir_args="console=ttyS0 quiet" x"#);
        assert_eq!(q.bootdir_args.as_deref(), Some("console=ttyS0 quiet"));
        let bad = parse("leapboot.timeout=soon leapboot.nosuch=on");
        assert_eq!(bad.timeout, None);
        assert_eq!(bad.problems.len(), 2);
        assert!(bad.problems[0].contains("leapboot.timeout=soon"));
    }

    #[test]
    fn menu_parameters() {
        let p = parse(
            r#"leapboot.default="Debian GNU/Linux*" leapboot.colour=0 leapboot.locked leapboot.append="quiet splash""#,
        );
        assert_eq!(p.default.as_deref(), Some("Debian GNU/Linux*"));
        assert_eq!(p.colour, Some(false));
        assert!(p.locked);
        assert_eq!(p.append.as_deref(), Some("quiet splash"));
        assert!(p.problems.is_empty());
        assert!(parse("leapboot.measured_boot=required").measured_boot_required);
        let off = parse("leapboot.measured_boot=off");
        assert!(!off.measured_boot_required && off.problems.len() == 1);
        let bad = parse("leapboot.default= leapboot.locked=0 leapboot.colour=blue");
        assert_eq!(bad.problems.len(), 3, "{:?}", bad.problems);
        assert!(!bad.locked && bad.default.is_none() && bad.colour.is_none());
    }
}
