//! The OpenRC `kexec` service's configuration (`/etc/conf.d/kexec`, also read from
//! `/etc/kexec.conf`): shell `KEY=VALUE` assignments, of which leapboot understands `KNAME`,
//! `INITRD`, `KPARAM`, `ROOTPART`, `BOOTPART`, `DONT_MOUNT_BOOT` and `LOAD_DURING_SHUTDOWN`.
//!
//! This is not a shell: no expansion, no command substitution, nothing is run. A line is
//! `[export ]KEY=VALUE` with VALUE unquoted, `'single'` or `"double"` quoted (backslash escapes
//! `"`, `\`, `$` and `` ` `` inside double quotes), with `#` comments. A line that is not an
//! assignment, a value using `$`/`` ` `` expansion, and unknown keys are reported with their
//! line number and otherwise ignored, so one odd line never disables the rest. The input is
//! bounded ([`MAX_BYTES`]) and read in one linear pass.

/// Largest configuration read; the rest is ignored with a warning.
pub const MAX_BYTES: usize = 64 << 10;

/// What the configuration says. `None`: not set (the default applies).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KexecConf {
    /// `KNAME`: the kernel file (absolute, or relative to `BOOTPART`). `KNAME=-`: kexec off.
    pub kname: Option<String>,
    /// `INITRD`: the initrd file (absolute, or relative to `BOOTPART`).
    pub initrd: Option<String>,
    /// `KPARAM`: extra kernel parameters (added to the reused or configured command line).
    pub kparam: Option<String>,
    /// `ROOTPART`: the `root=` device (default: the device mounted at `/`).
    pub rootpart: Option<String>,
    /// `BOOTPART`: where the kernels are (default `/boot`).
    pub bootpart: Option<String>,
    /// `DONT_MOUNT_BOOT=yes`: never mount `/boot` even if it is not mounted.
    pub dont_mount_boot: bool,
    /// `LOAD_DURING_SHUTDOWN` (default yes): load at shutdown; `no` leaves loading to the user.
    pub load_during_shutdown: bool,
    /// Lines that were not understood: (line number, why).
    pub warnings: Vec<(usize, String)>,
}

impl KexecConf {
    /// `KNAME=-`: the administrator turned kexec off.
    pub fn disabled(&self) -> bool {
        self.kname.as_deref() == Some("-")
    }
}

fn yes(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "yes" | "y" | "true" | "1" | "on"
    )
}

/// Parses the text of `/etc/conf.d/kexec`.
pub fn parse(text: &str) -> KexecConf {
    let mut c = KexecConf {
        load_during_shutdown: true,
        ..KexecConf::default()
    };
    let text = if text.len() > MAX_BYTES {
        let mut end = MAX_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        c.warnings.push((
            0,
            format!("longer than {MAX_BYTES} bytes: the rest is ignored"),
        ));
        &text[..end]
    } else {
        text
    };
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, rest)) = line.split_once('=') else {
            c.warnings.push((n, "not a KEY=VALUE assignment".into()));
            continue;
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            c.warnings
                .push((n, format!("{:?} is not a variable name", key)));
            continue;
        }
        let value = match value(rest) {
            Ok(v) => v,
            Err(why) => {
                c.warnings.push((n, format!("{key}: {why}")));
                continue;
            }
        };
        match key {
            "KNAME" => c.kname = Some(value),
            "INITRD" => c.initrd = Some(value),
            "KPARAM" => c.kparam = Some(value),
            "ROOTPART" => c.rootpart = Some(value),
            "BOOTPART" => c.bootpart = Some(value),
            "DONT_MOUNT_BOOT" => c.dont_mount_boot = yes(&value),
            "LOAD_DURING_SHUTDOWN" => c.load_during_shutdown = yes(&value),
            _ => c
                .warnings
                .push((n, format!("{key} is not a setting leapboot uses"))),
        }
    }
    c
}

/// One shell word of literal text (quotes removed), then optionally a `#` comment.
fn value(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\'' => loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => out.push(c),
                    None => return Err("unterminated single quote".into()),
                }
            },
            '"' => loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c @ ('"' | '\\' | '$' | '`')) => out.push(c),
                        Some(c) => {
                            out.push('\\');
                            out.push(c);
                        }
                        None => return Err("unterminated double quote".into()),
                    },
                    Some('$' | '`') => {
                        return Err(
                            "shell expansion ($ or `) is not supported: write the value out".into(),
                        )
                    }
                    Some(c) => out.push(c),
                    None => return Err("unterminated double quote".into()),
                }
            },
            '\\' => match chars.next() {
                Some(c) => out.push(c),
                None => {
                    return Err("a trailing backslash (line continuation) is not supported".into())
                }
            },
            '$' | '`' => {
                return Err("shell expansion ($ or `) is not supported: write the value out".into())
            }
            c if c.is_whitespace() => {
                let rest: String = chars.collect();
                let rest = rest.trim_start();
                if rest.is_empty() || rest.starts_with('#') {
                    return Ok(out);
                }
                return Err("more than one word: quote the value".into());
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn gentoo_default_file_and_its_keys() {
        let c = parse(
            "# /etc/conf.d/kexec\n\
             # Load kexec kernel image into memory during shutdown\n\
             LOAD_DURING_SHUTDOWN=\"yes\"\n\
             #KNAME=\"bzImage\"\n\
             KNAME=\"vmlinuz-6.6.13-gentoo\"\n\
             INITRD='initramfs-6.6.13-gentoo.img'\n\
             export KPARAM=\"quiet  marker=\\\"x\\\"\"   # comment\n\
             ROOTPART=/dev/sda3\n\
             BOOTPART=\"/boot\"\n\
             DONT_MOUNT_BOOT=\"no\"\n",
        );
        assert_eq!(c.kname.as_deref(), Some("vmlinuz-6.6.13-gentoo"));
        assert_eq!(c.initrd.as_deref(), Some("initramfs-6.6.13-gentoo.img"));
        assert_eq!(c.kparam.as_deref(), Some("quiet  marker=\"x\""));
        assert_eq!(c.rootpart.as_deref(), Some("/dev/sda3"));
        assert_eq!(c.bootpart.as_deref(), Some("/boot"));
        assert!(!c.dont_mount_boot && c.load_during_shutdown && !c.disabled());
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn table_of_lines() {
        // (line, key's value or the start of the warning)
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("KPARAM=a", Ok("a")),
            ("KPARAM=", Ok("")),
            ("KPARAM=''", Ok("")),
            ("KPARAM=\"a b\"", Ok("a b")),
            ("KPARAM='a \"b\"'", Ok("a \"b\"")),
            ("KPARAM=a\\ b", Ok("a b")),
            ("KPARAM=\"a\"'b'c", Ok("abc")),
            ("  export   KPARAM=x # note", Ok("x")),
            ("KPARAM=a b", Err("KPARAM: more than one word")),
            (
                "KPARAM=\"$(cat /proc/cmdline)\"",
                Err("KPARAM: shell expansion"),
            ),
            ("KPARAM=$X", Err("KPARAM: shell expansion")),
            ("KPARAM=\"open", Err("KPARAM: unterminated double quote")),
            ("KPARAM='open", Err("KPARAM: unterminated single quote")),
            ("KPARAM=end\\", Err("KPARAM: a trailing backslash")),
            ("rm -rf /", Err("not a KEY=VALUE")),
            ("A-B=1", Err("\"A-B\" is not a variable name")),
            ("FOO=1", Err("FOO is not a setting")),
        ];
        for (line, want) in cases {
            let c = parse(line);
            match want {
                Ok(v) => {
                    assert_eq!(c.kparam.as_deref(), Some(*v), "{line}");
                    assert!(c.warnings.is_empty(), "{line}: {:?}", c.warnings);
                }
                Err(w) => {
                    assert_eq!(c.kparam, None, "{line}");
                    assert_eq!(c.warnings.len(), 1, "{line}");
                    assert_eq!(c.warnings[0].0, 1);
                    assert!(c.warnings[0].1.starts_with(w), "{line}: {:?}", c.warnings);
                }
            }
        }
    }

    #[test]
    fn kname_dash_disables_and_booleans() {
        let c = parse("KNAME=-\nLOAD_DURING_SHUTDOWN=no\nDONT_MOUNT_BOOT=YES\n");
        assert!(c.disabled());
        assert!(!c.load_during_shutdown);
        assert!(c.dont_mount_boot);
        assert!(parse("").load_during_shutdown, "yes by default");
    }

    #[test]
    fn a_bad_line_keeps_the_others_and_names_its_line() {
        let c = parse("KNAME=a\nKPARAM=\"$x\"\nINITRD=b\n");
        assert_eq!(c.kname.as_deref(), Some("a"));
        assert_eq!(c.initrd.as_deref(), Some("b"));
        assert_eq!(c.warnings[0].0, 2);
    }

    #[test]
    fn oversized_input_is_cut() {
        let big = format!("KNAME=a\n{}", "#".repeat(MAX_BYTES * 2));
        let c = parse(&big);
        assert_eq!(c.kname.as_deref(), Some("a"));
        assert_eq!(c.warnings[0].0, 0);
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,300}") {
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_on_shellish(s in "[A-Z_=\"'\\\\$` #\n a-z]{0,200}") {
            let c = parse(&s);
            prop_assert!(c.warnings.len() <= s.lines().count() + 1);
        }
    }
}
