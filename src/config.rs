//! `/etc/leapboot.toml`: the initramfs' configuration (serde + toml).
//!
//! An invalid file never stops a boot: a syntax error is reported with its line and the
//! defaults are used; a key with a bad value (or an unknown key) is reported by name and
//! only that key falls back to its default.

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
    /// Network boot: `"off"`, `"on"` (default: network entries join the menu, a disk default
    /// never waits for them) or `"first"` (the network's default wins; the boot waits for it).
    pub network: Option<crate::cmdline::NetMode>,
    /// Wait for the settle rule even when the default entry is already known (off: boot
    /// the default as soon as every disk seen so far has been read).
    #[serde(default)]
    pub settle_always: bool,
    /// Also scan RAM, loop and zram block devices (ignored by default).
    #[serde(default)]
    pub virtual_disks: bool,
    /// Arguments appended to kernels found by name in `/boot` without any configuration
    /// (after `root=` and the root filesystem's `/etc/kernel/cmdline`).
    pub bootdir_args: Option<String>,
    /// The default entry: an id, a title or a glob over either. Overrides the boot configs'.
    pub default: Option<String>,
    /// Whether the menu uses colour and reverse video (default true).
    pub colour: Option<bool>,
    /// Globs over disk and volume names (`vda`, `nvme0n1p*`): when not empty, only these
    /// are read.
    #[serde(default)]
    pub allow_devices: Vec<String>,
    /// Globs over disk and volume names never read.
    #[serde(default)]
    pub deny_devices: Vec<String>,
    /// Arguments appended to every entry's command line.
    pub append: Option<String>,
    /// Locked mode: editing, rescan, reboot and power off need `password_hash` (refused
    /// without one), and only `allowed_entries` boot.
    #[serde(default)]
    pub locked: bool,
    /// `sha256:<salt>:<hex>` (see [`crate::menu::password`]); setting it also locks.
    pub password_hash: Option<String>,
    /// Globs over entry ids and titles that may boot in locked mode; empty: all.
    #[serde(default)]
    pub allowed_entries: Vec<String>,
    /// Network configuration in the kernel's `ip=` syntax (`dhcp`, `dhcp6`, `off`,
    /// `addr::gw:mask::iface:off`); `ip=` on the command line wins. See [`crate::net::ipcfg`].
    pub ip: Option<String>,
    /// Globs over interface names to use for network boot; virtual interfaces only when
    /// named here. Empty: every physical NIC.
    #[serde(default)]
    pub net_interfaces: Vec<String>,
    /// The longest the network bring-up (carrier, DHCP) may take, in ms (default 30000).
    pub net_timeout_ms: Option<u64>,
    /// The RFC 4578 client architecture sent in DHCP option 93/61 (default: this build's,
    /// 7 = x64 UEFI on x86_64).
    pub pxe_arch: Option<u16>,
    /// PEM files of the CA certificates HTTPS servers are verified against; none: no HTTPS.
    #[serde(default)]
    pub ca_certificates: Vec<String>,
    /// Volumes the administrator trusts (`"UUID=…"`, `"PARTUUID=…"`): in locked mode with
    /// `allowed_entries`, allowed entries must come from them, and only they set the
    /// default and the timeout (see [`crate::trust`]).
    #[serde(default)]
    pub trusted_volumes: Vec<String>,
    /// Measured boot with a TPM 2.0 (see [`crate::measure`]): `"auto"` (default: measure
    /// when a TPM is present, a TPM error is logged and the boot goes on), `"off"`, or
    /// `"required"` (no TPM, or a failed measurement, refuses the boot). Read through
    /// [`Config::measured_boot`]; a plain string because a serde enum costs /init 2.5 KB.
    pub measured_boot: Option<String>,
    /// Boot only kernels (and UKIs) whose Authenticode signature verifies against
    /// `signing_certs`, even when the running kernel is not locked down (see
    /// [`crate::pesig`]). Without a readable certificate nothing boots.
    #[serde(default)]
    pub require_signed: bool,
    /// PEM (or DER) files in the initramfs of the certificates `require_signed` trusts:
    /// the signing certificates themselves or the CAs that issued them.
    #[serde(default)]
    pub signing_certs: Vec<String>,
}

/// The `measured_boot` setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MeasuredBoot {
    /// Measure when a TPM is there; errors are logged, the boot goes on.
    #[default]
    Auto,
    /// Never measure.
    Off,
    /// Measure, or refuse to boot.
    Required,
}

impl MeasuredBoot {
    /// `auto`, `off`, `required`.
    pub fn parse(s: &str) -> Option<MeasuredBoot> {
        match s {
            "auto" => Some(MeasuredBoot::Auto),
            "off" => Some(MeasuredBoot::Off),
            "required" => Some(MeasuredBoot::Required),
            _ => None,
        }
    }
}

impl Config {
    /// Parses `text`. Returns the configuration and the problems found, each naming the
    /// key (or the line, for a syntax error); what is wrong falls back to its default.
    pub fn parse(text: &str) -> (Config, Vec<String>) {
        let table: toml::Table = match toml::from_str(text) {
            Ok(t) => t,
            Err(e) => {
                // One line naming the place: `/etc/leapboot.toml:2: timeout = = 1: ...`
                let at = e.span().map_or(0, |s| s.start).min(text.len());
                let line_no = text[..at].matches('\n').count() + 1;
                let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
                let msg = format!(
                    "{PATH}:{line_no}: {line}: {}; using the defaults",
                    e.message()
                );
                return (Config::default(), vec![msg]);
            }
        };
        let mut good = toml::Table::new();
        let mut problems = Vec::new();
        for (key, value) in table {
            let mut one = toml::Table::new();
            one.insert(key.clone(), value.clone());
            match Config::deserialize(one) {
                Ok(_) => {
                    good.insert(key, value);
                }
                Err(e) => {
                    let line_no = text
                        .lines()
                        .position(|l| {
                            let l = l.trim_start();
                            l.strip_prefix(key.as_str())
                                .is_some_and(|r| r.trim_start().starts_with('='))
                        })
                        .map_or(String::new(), |n| format!("{}:", n + 1));
                    problems.push(format!(
                        "{PATH}:{line_no} key '{key}': {}; using its default",
                        e.message().trim()
                    ));
                }
            }
        }
        let mut c = Config::deserialize(good).unwrap_or_default();
        if let Some(v) = c.measured_boot.take() {
            match MeasuredBoot::parse(&v) {
                Some(_) => c.measured_boot = Some(v),
                None => problems.push(format!(
                    "{PATH}: key 'measured_boot': {v:?} is not \"auto\", \"off\" or \"required\"; using \"auto\""
                )),
            }
        }
        if let Some(h) = &c.password_hash {
            if let Err(e) = crate::menu::password::PasswordHash::parse(h) {
                problems.push(format!(
                    "{PATH}: key 'password_hash': {e}; locked with no password"
                ));
                c.locked = true;
                c.password_hash = None;
            }
        }
        (c, problems)
    }

    /// Whether a disk or volume may be read: not denied, and allowed when an allow list
    /// exists. A volume is checked by its own name and its disk's.
    pub fn device_allowed(&self, names: &[&str]) -> bool {
        let any = |globs: &[String]| {
            globs
                .iter()
                .any(|g| names.iter().any(|n| crate::glob::matches(g, n)))
        };
        !any(&self.deny_devices) && (self.allow_devices.is_empty() || any(&self.allow_devices))
    }

    /// The locked-mode settings for the menu.
    pub fn lock(&self) -> crate::menu::state::Lock {
        let hash = self
            .password_hash
            .as_deref()
            .and_then(|h| crate::menu::password::PasswordHash::parse(h).ok());
        crate::menu::state::Lock {
            locked: self.locked || hash.is_some(),
            hash,
            allowed: self.allowed_entries.clone(),
            trusted: None,
        }
    }

    /// What [`crate::trust::decide`] needs from the configuration.
    pub fn trust_policy(&self) -> crate::trust::Policy {
        crate::trust::Policy {
            locked: self.lock().locked,
            allowed: self.allowed_entries.clone(),
            trusted_volumes: self.trusted_volumes.clone(),
            allow_devices_set: !self.allow_devices.is_empty(),
        }
    }

    /// The `measured_boot` setting (default `auto`).
    pub fn measured_boot(&self) -> MeasuredBoot {
        self.measured_boot
            .as_deref()
            .and_then(MeasuredBoot::parse)
            .unwrap_or_default()
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
        assert_eq!(err, Vec::<String>::new());
        assert!(
            c.modules.is_empty(),
            "filesystem modules load on demand only"
        );
    }

    #[test]
    fn every_key() {
        let text = r#"
timeout = 7
default = "debian-*"
colour = false
allow_devices = ["vd*"]
deny_devices = ["vdb*"]
append = "quiet"
locked = true
password_hash = "sha256:s:13601bda4ea78e55a07b98866d2be6be0744e3866f13c00c811cab608a28f322"
allowed_entries = ["debian*"]
modules = ["virtio_blk"]
settle_ms = 100
device_wait_ms = 2000
bootdir_args = "root=/dev/vda2"
measured_boot = "required"
require_signed = true
signing_certs = ["/etc/leapboot/db.pem"]
"#;
        let (c, err) = Config::parse(text);
        assert!(err.is_empty(), "{err:?}");
        assert_eq!(c.measured_boot(), MeasuredBoot::Required);
        assert!(c.require_signed);
        assert_eq!(c.signing_certs, ["/etc/leapboot/db.pem"]);
        let (off, _) = Config::parse("");
        assert!(!off.require_signed && off.signing_certs.is_empty());
        let (bad, problems) = Config::parse("measured_boot = \"maybe\"\ntimeout = 3\n");
        assert_eq!(bad.measured_boot(), MeasuredBoot::Auto);
        assert_eq!(bad.timeout, Some(3), "only the bad key falls back");
        assert!(problems[0].contains("'measured_boot'"), "{problems:?}");
        assert_eq!(c.timeout(), Some(Timeout::Secs(7)));
        assert_eq!(c.default.as_deref(), Some("debian-*"));
        assert_eq!(c.colour, Some(false));
        assert_eq!(c.append.as_deref(), Some("quiet"));
        let lock = c.lock();
        assert!(lock.locked && lock.hash.is_some());
        assert_eq!(lock.allowed, ["debian*"]);
        assert!(c.device_allowed(&["vda1", "vda"]));
        assert!(!c.device_allowed(&["vdb1", "vdb"]), "denied");
        assert!(!c.device_allowed(&["nvme0n1p1", "nvme0n1"]), "not allowed");
        assert!(Config::default().device_allowed(&["anything"]));
    }

    #[test]
    fn a_bad_key_is_named_and_only_it_falls_back() {
        let (c, err) = Config::parse("settle_ms = 100\ntimeout = \"soon\"\n");
        assert_eq!(c.settle_ms, Some(100), "the good key is kept");
        assert_eq!(c.timeout, None);
        assert_eq!(err.len(), 1);
        assert!(err[0].contains("key 'timeout'"), "{}", err[0]);
        assert!(err[0].contains(":2:"), "names the line: {}", err[0]);
        let (_, err) = Config::parse("colour_scheme = true\n");
        assert!(err[0].contains("colour_scheme"), "{err:?}");
        // `ip` is kept as text here: the network's start (`net::ipcfg::Options::from_settings`)
        // parses it and names a bad value (config sits below net in the layers).
        let (c, err) = Config::parse("ip = \"10.0.0.x\"\nnet_interfaces = [\"eth*\"]\n");
        assert_eq!(c.ip.as_deref(), Some("10.0.0.x"));
        assert_eq!(c.net_interfaces, ["eth*"]);
        assert!(err.is_empty(), "{err:?}");
        let (_, problems) = crate::net::ipcfg::Options::from_settings("", &c);
        assert!(
            problems.iter().any(|p| p.contains("client-ip")),
            "{problems:?}"
        );
        let (c, err) = Config::parse("timeout = = 1\n");
        assert_eq!(c, Config::default());
        assert!(err[0].contains(":1:"), "{err:?}");
    }

    #[test]
    fn a_malformed_password_hash_locks_without_a_password() {
        let (c, err) = Config::parse("password_hash = \"hunter2\"\n");
        assert!(err[0].contains("password_hash"), "{err:?}");
        let lock = c.lock();
        assert!(lock.locked && lock.hash.is_none());
        assert!(!Config::default().lock().locked);
    }
}
