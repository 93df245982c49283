//! The host CLI's side of booting: on a running system, `leapboot load` and `leapboot reboot`
//! automate `kexec -l …; reboot -k`. This module holds the decisions, kept apart from the
//! command-line parsing so they can be tested: which entry a user's words name, what command
//! line it boots with, and how the running system is asked to reboot into the loaded kernel.
//!
//! It does not discover anything (that is [`crate::pipeline`]) and never writes to a disk.

use std::path::Path;

use crate::entry::BootList;

/// Why an entry could not be chosen.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChooseError {
    /// Nothing was found to choose from.
    #[error("no boot entries found")]
    NoEntries,
    /// The pattern matched nothing; the ids are listed to help.
    #[error("no entry is named {pattern:?} (by id, title or glob); the entries are: {ids}")]
    NoMatch {
        /// What the user asked for.
        pattern: String,
        /// The ids there are, comma-separated.
        ids: String,
    },
}

/// The entry `pattern` names (its id, its title, or a glob over either; an exact id wins
/// over an earlier glob or title match), or the default entry when there is no pattern.
pub fn choose(list: &BootList, pattern: Option<&str>) -> Result<usize, ChooseError> {
    if list.entries.is_empty() {
        return Err(ChooseError::NoEntries);
    }
    let Some(p) = pattern else {
        return list.default_entry().ok_or(ChooseError::NoEntries);
    };
    list.entries
        .iter()
        .position(|e| e.id == p)
        .or_else(|| list.find(p))
        .ok_or_else(|| ChooseError::NoMatch {
            pattern: p.to_string(),
            ids: list
                .entries
                .iter()
                .map(|e| e.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The command line to boot: `replace` instead of the entry's own if given, then every
/// `append` in order, whitespace-normalised at the joins only.
pub fn compose_cmdline(own: &str, replace: Option<&str>, append: &[String]) -> String {
    let mut parts: Vec<&str> = vec![replace.unwrap_or(own).trim()];
    parts.extend(append.iter().map(|a| a.trim()));
    parts.retain(|p| !p.is_empty());
    parts.join(" ")
}

/// How the running system is rebooted into the loaded kernel.
#[derive(Debug, PartialEq, Eq)]
pub enum RebootMethod {
    /// `systemctl kexec`: systemd stops every service and unmounts cleanly, then kexecs.
    Systemd,
    /// `reboot(LINUX_REBOOT_CMD_KEXEC)` right away after `sync`: nothing is stopped.
    Immediate,
}

/// Which method to use: systemd when it runs this system (the test systemd itself uses:
/// `/run/systemd/system` exists), the immediate reboot only when forced. `None`: the system
/// has no init leapboot knows how to ask, and the user did not force.
pub fn reboot_method(run: &Path, force: bool) -> Option<RebootMethod> {
    if force {
        Some(RebootMethod::Immediate)
    } else if run.join("systemd/system").is_dir() {
        Some(RebootMethod::Systemd)
    } else {
        None
    }
}

/// Whether a kernel is loaded for kexec (`/sys/kernel/kexec_loaded`).
pub fn kexec_loaded(sys: &Path) -> bool {
    std::fs::read_to_string(sys.join("kernel/kexec_loaded")).is_ok_and(|s| s.trim() == "1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{BootEntry, Found};

    fn list(ids: &[(&str, &str)], default: Option<usize>) -> BootList {
        let mut l = BootList::default();
        l.merge(Found {
            entries: ids
                .iter()
                .map(|(id, title)| BootEntry {
                    title: title.to_string(),
                    ..crate::entry::tests::entry(id, "v")
                })
                .collect(),
            default: default.map(crate::entry::DefaultRule::Index),
            ..Found::default()
        });
        l
    }

    #[test]
    fn choose_by_exact_id_before_globs_and_titles() {
        let l = list(
            &[
                ("debian-old", "debian"),
                ("debian", "Debian"),
                ("fedora", "F"),
            ],
            Some(2),
        );
        assert_eq!(choose(&l, None), Ok(2));
        assert_eq!(choose(&l, Some("debian")), Ok(1), "exact id beats a title");
        assert_eq!(choose(&l, Some("fed*")), Ok(2));
        assert_eq!(choose(&l, Some("Debian")), Ok(1), "by title");
        assert_eq!(
            choose(&l, Some("arch")),
            Err(ChooseError::NoMatch {
                pattern: "arch".into(),
                ids: "debian-old, debian, fedora".into()
            })
        );
        assert_eq!(
            choose(&BootList::default(), None),
            Err(ChooseError::NoEntries)
        );
    }

    #[test]
    fn command_line_replaced_then_appended() {
        assert_eq!(
            compose_cmdline("root=/dev/sda1 ro", None, &[]),
            "root=/dev/sda1 ro"
        );
        assert_eq!(
            compose_cmdline(" root=x ", None, &["quiet".into(), " a=1 ".into()]),
            "root=x quiet a=1"
        );
        assert_eq!(
            compose_cmdline("root=x", Some("init=/bin/sh"), &["rw".into()]),
            "init=/bin/sh rw"
        );
        assert_eq!(compose_cmdline("", Some(""), &["".into()]), "");
    }

    #[test]
    fn reboot_goes_through_systemd_unless_forced() {
        let run = tempfile::tempdir().unwrap();
        assert_eq!(reboot_method(run.path(), false), None);
        assert_eq!(
            reboot_method(run.path(), true),
            Some(RebootMethod::Immediate)
        );
        std::fs::create_dir_all(run.path().join("systemd/system")).unwrap();
        assert_eq!(
            reboot_method(run.path(), false),
            Some(RebootMethod::Systemd)
        );
        assert_eq!(
            reboot_method(run.path(), true),
            Some(RebootMethod::Immediate)
        );
    }

    #[test]
    fn kexec_loaded_reads_sysfs() {
        let sys = tempfile::tempdir().unwrap();
        assert!(!kexec_loaded(sys.path()));
        std::fs::create_dir_all(sys.path().join("kernel")).unwrap();
        std::fs::write(sys.path().join("kernel/kexec_loaded"), "1\n").unwrap();
        assert!(kexec_loaded(sys.path()));
        std::fs::write(sys.path().join("kernel/kexec_loaded"), "0\n").unwrap();
        assert!(!kexec_loaded(sys.path()));
    }
}
