//! Which init system runs this machine, and how it is asked for a kexec reboot. Detection
//! reads only `/proc/1` and `/run` (given as paths, so tests use a temporary directory), and
//! every answer carries the evidence, which `leapboot status` prints.
//!
//! | init | evidence | graceful kexec reboot |
//! | --- | --- | --- |
//! | systemd | `/run/systemd/system` (systemd's own test) | `systemctl kexec` |
//! | OpenRC as PID 1 | `/proc/1/comm` is `openrc-init` | `openrc-shutdown --kexec now` |
//! | sysvinit + OpenRC | `/run/openrc` exists, PID 1 is `init` | `reboot` (runlevel 6); leapboot's `off`-runlevel service kexecs after `mount-ro` |
//! | sysvinit | PID 1 is `init` (not busybox) | `reboot` (runlevel 6); leapboot's rc6 script kexecs after `umountroot` |
//! | busybox init, runit, s6 | PID 1's name or busybox as its program | none: `--force` |
//!
//! A reboot through sysvinit only kexecs if leapboot's shutdown script is installed
//! (`leapboot install-service`); [`Init::graceful`] says what to run and whether that holds.

use std::path::Path;

/// The init system found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// systemd.
    Systemd,
    /// OpenRC's own PID 1 (`openrc-init`).
    OpenrcInit,
    /// sysvinit as PID 1 with OpenRC as its rc (Gentoo's classic setup; Debian's `openrc`).
    SysvinitOpenrc,
    /// sysvinit with its own rc scripts.
    Sysvinit,
    /// busybox `init`.
    Busybox,
    /// runit.
    Runit,
    /// s6 (`s6-svscan` as PID 1).
    S6,
    /// Something else (a container's shell, leapboot's own initramfs...).
    Unknown,
}

/// An init system and why leapboot thinks so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// The init system.
    pub init: Init,
    /// The evidence, in words.
    pub evidence: String,
}

/// How `leapboot reboot` asks the init system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Graceful {
    /// Run this command: the init stops services, unmounts, then kexecs.
    Run(Vec<String>),
    /// Run this command, but only once leapboot's shutdown script is installed (it does the
    /// kexec at the end of the runlevel-6 path); the script's path.
    RunWithHook(Vec<String>, &'static str),
    /// There is none: only `--force` (the reason).
    None(&'static str),
}

fn read_small(p: &Path) -> Option<String> {
    use std::io::Read;
    let f = std::fs::File::open(p).ok()?;
    let mut s = String::new();
    f.take(4096).read_to_string(&mut s).ok()?;
    Some(s.trim().to_string())
}

/// Detects the init system from `proc` (normally `/proc`) and `run` (normally `/run`).
pub fn detect(proc: &Path, run: &Path) -> Detected {
    let d = |init, evidence: String| Detected { init, evidence };
    if run.join("systemd/system").is_dir() {
        return d(
            Init::Systemd,
            format!("{} exists", run.join("systemd/system").display()),
        );
    }
    let comm = read_small(&proc.join("1/comm")).unwrap_or_default();
    let exe = std::fs::read_link(proc.join("1/exe"))
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let shown = if exe.is_empty() {
        format!("PID 1 is {comm:?}")
    } else {
        format!("PID 1 is {comm:?} ({exe})")
    };
    match comm.as_str() {
        "openrc-init" => d(Init::OpenrcInit, shown),
        "runit" | "runit-init" => d(Init::Runit, shown),
        "s6-svscan" => d(Init::S6, shown),
        _ if exe.ends_with("/busybox") || comm == "busybox" => d(Init::Busybox, shown),
        "init" if run.join("openrc").is_dir() => d(
            Init::SysvinitOpenrc,
            format!("{shown} and {} exists", run.join("openrc").display()),
        ),
        "init" => d(Init::Sysvinit, shown),
        _ => d(Init::Unknown, shown),
    }
}

/// Where `leapboot install-service` puts the sysvinit/OpenRC shutdown script.
pub const INITD_SCRIPT: &str = "/etc/init.d/leapboot-kexec";

impl Init {
    /// The name shown to people.
    pub fn name(self) -> &'static str {
        match self {
            Init::Systemd => "systemd",
            Init::OpenrcInit => "OpenRC (openrc-init)",
            Init::SysvinitOpenrc => "sysvinit with OpenRC",
            Init::Sysvinit => "sysvinit",
            Init::Busybox => "busybox init",
            Init::Runit => "runit",
            Init::S6 => "s6",
            Init::Unknown => "an unknown init",
        }
    }

    /// How this init is asked for a clean kexec reboot.
    pub fn graceful(self) -> Graceful {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect();
        match self {
            Init::Systemd => Graceful::Run(v(&["systemctl", "kexec"])),
            Init::OpenrcInit => Graceful::Run(v(&["openrc-shutdown", "--kexec", "now"])),
            Init::SysvinitOpenrc | Init::Sysvinit => {
                Graceful::RunWithHook(v(&["reboot"]), INITD_SCRIPT)
            }
            Init::Busybox => Graceful::None(
                "busybox init has no kexec reboot (its reboot ends in reboot(2) through the firmware)",
            ),
            Init::Runit => Graceful::None("runit's stage 3 has no kexec reboot"),
            Init::S6 => Graceful::None("s6-linux-init has no kexec reboot"),
            Init::Unknown => Graceful::None("leapboot does not know how to ask this init for a kexec reboot"),
        }
    }
}

/// Whether the system is shutting down to reboot, as the rc environment says: OpenRC's
/// `RC_REBOOT=YES`, sysvinit's `RUNLEVEL=6`. `None`: the environment does not say.
pub fn rebooting_from_env(get: &dyn Fn(&str) -> Option<String>) -> Option<bool> {
    if let Some(v) = get("RC_REBOOT") {
        return Some(v == "YES");
    }
    if let Some(l) = get("RUNLEVEL") {
        return Some(l == "6");
    }
    if let Some(l) = get("RC_RUNLEVEL") {
        if l == "reboot" {
            return Some(true);
        }
    }
    None
}

/// Whether sysvinit is switching to runlevel 6, from the output of `runlevel` (`2 6`: from 2
/// to 6). `None` in a steady runlevel or on anything else.
pub fn rebooting_from_runlevel(out: &str) -> Option<bool> {
    let mut w = out.split_whitespace();
    let (_prev, now) = (w.next()?, w.next()?);
    match now {
        "6" => Some(true),
        "0" | "1" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(comm: &str, run_dirs: &[&str]) -> (tempfile::TempDir, Detected) {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("proc/1")).unwrap();
        std::fs::write(t.path().join("proc/1/comm"), format!("{comm}\n")).unwrap();
        for d in run_dirs {
            std::fs::create_dir_all(t.path().join("run").join(d)).unwrap();
        }
        let d = detect(&t.path().join("proc"), &t.path().join("run"));
        (t, d)
    }

    #[test]
    fn table_of_inits() {
        let cases: &[(&str, &[&str], Init)] = &[
            ("systemd", &["systemd/system"], Init::Systemd),
            ("init", &["systemd/system"], Init::Systemd),
            ("openrc-init", &["openrc"], Init::OpenrcInit),
            ("init", &["openrc"], Init::SysvinitOpenrc),
            ("init", &[], Init::Sysvinit),
            ("busybox", &[], Init::Busybox),
            ("runit", &[], Init::Runit),
            ("s6-svscan", &[], Init::S6),
            ("sh", &[], Init::Unknown),
        ];
        for (comm, run, want) in cases {
            let (_t, d) = fake(comm, run);
            assert_eq!(d.init, *want, "{comm} {run:?}: {}", d.evidence);
            assert!(!d.evidence.is_empty());
        }
    }

    #[test]
    fn reboot_methods() {
        assert_eq!(
            Init::Systemd.graceful(),
            Graceful::Run(vec!["systemctl".into(), "kexec".into()])
        );
        assert!(
            matches!(Init::OpenrcInit.graceful(), Graceful::Run(c) if c[0] == "openrc-shutdown")
        );
        assert!(
            matches!(Init::SysvinitOpenrc.graceful(), Graceful::RunWithHook(c, INITD_SCRIPT) if c == ["reboot"])
        );
        for i in [Init::Busybox, Init::Runit, Init::S6, Init::Unknown] {
            assert!(matches!(i.graceful(), Graceful::None(_)), "{i:?}");
        }
    }

    #[test]
    fn rebooting_or_not() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            rebooting_from_env(&env(&[("RC_REBOOT", "YES")])),
            Some(true)
        );
        assert_eq!(
            rebooting_from_env(&env(&[("RC_REBOOT", "NO"), ("RUNLEVEL", "6")])),
            Some(false)
        );
        assert_eq!(rebooting_from_env(&env(&[("RUNLEVEL", "6")])), Some(true));
        assert_eq!(rebooting_from_env(&env(&[("RUNLEVEL", "0")])), Some(false));
        assert_eq!(rebooting_from_env(&env(&[])), None);
        assert_eq!(rebooting_from_runlevel("2 6\n"), Some(true));
        assert_eq!(rebooting_from_runlevel("2 0\n"), Some(false));
        assert_eq!(rebooting_from_runlevel("N 2\n"), None);
        assert_eq!(rebooting_from_runlevel("unknown"), None);
    }
}
