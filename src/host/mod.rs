//! The host CLI's side of booting: on a running system, `leapboot load` and `leapboot reboot`
//! automate `kexec -l …; reboot -k`. This module holds the decisions, kept apart from the
//! command-line parsing so they can be tested: which entry a user's words name, what command
//! line it boots with, and how the running system is asked to reboot into the loaded kernel.
//!
//! It does not discover anything (that is [`crate::pipeline`]) and never writes to a disk.
//! The submodules hold one decision each: [`initsys`] (which init, how it reboots),
//! [`kexecconf`] (the OpenRC `/etc/conf.d/kexec`), [`naming`] (the `/boot` naming rules),
//! [`kernelfile`] (is this file a kernel for this machine), [`preflight`] (the checks before
//! a load and the words for refusals), [`record`] (what was loaded, under `/run/leapboot/`),
//! [`live`] (the running system's files those decisions read), and [`netsource`] (entries
//! from a boot server: `--url`, `--net`).

use std::path::Path;

pub mod commands;
pub mod initsys;
pub mod kernelfile;
pub mod kexecconf;
pub mod live;
pub mod naming;
pub mod netsource;
pub mod preflight;
pub mod record;

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

/// `s` safe for a terminal: control characters (escape sequences included) shown as `?`.
/// Everything read from a disk passes through this before it is printed.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Splits a command line into words as the kernel does, keeping each word's text as it was
/// (quotes included), so a rewritten command line passes quoted values on unchanged.
pub fn words(cmdline: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut quoted = false;
    for (i, c) in cmdline.char_indices() {
        if c == '"' {
            quoted = !quoted;
        }
        if c.is_whitespace() && !quoted {
            if let Some(s) = start.take() {
                out.push(&cmdline[s..i]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(&cmdline[s..]);
    }
    out
}

/// The parameter name of a command-line word (`root` of `root=/dev/sda1`, `ro` of `ro`).
fn key(word: &str) -> &str {
    let word = word.trim_start_matches('"');
    word.split_once('=').map_or(word, |(k, _)| k)
}

/// `--reuse-cmdline`: the running `/proc/cmdline` without what belongs to the boot that ran
/// it: `BOOT_IMAGE=` (GRUB's), `initrd=` (EFI stub, syslinux), leapboot's own `leapboot.*`
/// options, and `kexec`'s `--`-less leftovers none. Everything else stays, in order.
pub fn reuse_cmdline(proc_cmdline: &str) -> String {
    words(proc_cmdline)
        .into_iter()
        .filter(|w| {
            let k = key(w);
            k != "BOOT_IMAGE" && k != "initrd" && !k.starts_with("leapboot.") && k != "leapboot"
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `cmdline` with `root=` set to `root` (the OpenRC service's `ROOTPART`): an existing
/// `root=` is replaced in place, otherwise it goes first.
pub fn with_root(cmdline: &str, root: &str) -> String {
    let mut ws: Vec<String> = words(cmdline).into_iter().map(str::to_string).collect();
    let new = format!("root={root}");
    match ws.iter().position(|w| key(w) == "root") {
        Some(i) => {
            ws[i] = new;
            ws.retain({
                let mut seen = false;
                move |w| {
                    if key(w) != "root" {
                        return true;
                    }
                    let keep = !seen;
                    seen = true;
                    keep
                }
            });
        }
        None => ws.insert(0, new),
    }
    ws.join(" ")
}

/// The device mounted at `/` (`/proc/self/mountinfo`'s mount source), for `root=` when the
/// running command line has none.
pub fn root_device(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if pre.split_whitespace().nth(4)? != "/" {
            return None;
        }
        let src = post.split_whitespace().nth(1)?;
        src.starts_with('/').then(|| src.to_string())
    })
}

/// The entry of the running kernel: the one whose kernel file is `BOOT_IMAGE=` of the
/// running command line (GRUB's path, compared by file name), else the one whose version is
/// `release` (`uname -r`).
pub fn running_entry(list: &BootList, release: &str, cmdline: &str) -> Option<usize> {
    let base = |p: &str| p.rsplit(['/', '\\']).next().unwrap_or(p).to_string();
    let image = words(cmdline)
        .into_iter()
        .find_map(|w| w.strip_prefix("BOOT_IMAGE="))
        .map(|p| base(p.trim_start_matches(|c| c != '/' && c != '\\')));
    if let Some(img) = image.filter(|i| !i.is_empty()) {
        if let Some(i) = list
            .entries
            .iter()
            .position(|e| base(&e.kernel.path) == img)
        {
            return Some(i);
        }
    }
    list.entries
        .iter()
        .position(|e| !release.is_empty() && e.version.as_deref() == Some(release))
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
    fn reuse_drops_boot_image_initrd_and_leapboot_options() {
        let cases: &[(&str, &str)] = &[
            (
                "BOOT_IMAGE=/boot/vmlinuz-6.1 root=UUID=x ro quiet",
                "root=UUID=x ro quiet",
            ),
            (
                "initrd=\\initrd.img root=/dev/sda1 leapboot.timeout=0 leapboot.debug a=\"b c\"",
                "root=/dev/sda1 a=\"b c\"",
            ),
            ("  ", ""),
            ("BOOT_IMAGE=x", ""),
            ("root=/dev/vda initrdx=1", "root=/dev/vda initrdx=1"),
            ("\"leapboot.x=1 2\" y", "y"),
        ];
        for (input, want) in cases {
            assert_eq!(reuse_cmdline(input), *want, "{input}");
        }
    }

    #[test]
    fn words_keep_quotes() {
        assert_eq!(
            words(" a \"b c\"  d=\"e f\" "),
            vec!["a", "\"b c\"", "d=\"e f\""]
        );
        assert_eq!(words("\"unterminated x"), vec!["\"unterminated x"]);
    }

    #[test]
    fn root_is_replaced_once_or_put_first() {
        assert_eq!(
            with_root("ro root=/dev/sda1 quiet", "/dev/vda2"),
            "ro root=/dev/vda2 quiet"
        );
        assert_eq!(
            with_root("ro quiet", "/dev/vda2"),
            "root=/dev/vda2 ro quiet"
        );
        assert_eq!(with_root("root=a root=b x", "c"), "root=c x");
        assert_eq!(with_root("", "c"), "root=c");
    }

    #[test]
    fn root_device_from_mountinfo() {
        let mi = "21 26 0:20 / /sys rw - sysfs sysfs rw\n\
                  25 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw\n";
        assert_eq!(root_device(mi).as_deref(), Some("/dev/nvme0n1p1"));
        assert_eq!(root_device("25 1 0:1 / / rw - overlay overlay rw\n"), None);
        assert_eq!(root_device(""), None);
    }

    proptest::proptest! {
        #[test]
        fn cmdline_rewrites_never_panic(s in "\\PC{0,200}") {
            let r = reuse_cmdline(&s);
            proptest::prop_assert!(r.len() <= s.len());
            let _ = with_root(&s, "x");
            let _ = root_device(&s);
        }
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
