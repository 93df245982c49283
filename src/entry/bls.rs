//! Boot Loader Specification Type #1: `/loader/entries/*.conf` and `/loader/loader.conf`
//! (<https://uapi-group.org/specifications/specs/boot_loader_specification/>).
//!
//! Reads only through [`BootFs`]; never renames or writes (boot counting is read from file
//! names, never updated). Entries are returned in the spec's sort order (§ Sorting).
//!
//! Beyond the spec, as GRUB's `blscfg` (Fedora/RHEL) reads these files: `$var`/`${var}` in
//! `options` expand from the volume's `grubenv` (`options $kernelopts`). A volume whose entries
//! a `grub.cfg` already shows through `blscfg` is left to the GRUB format (which also applies
//! the config's own `set kernelopts=...`), so no entry appears twice: GRUB reports such
//! volumes in `Found::bls_shown` and the pipeline does not run this format on them. `uki` entries
//! boot that unified kernel image; their `options`, if any, replace the image's own
//! `.cmdline` (as systemd-stub does outside Secure Boot).
//!
//! Titles are those systemd-boot shows ([`unique_titles`]), made unique among one volume's
//! entries (systemd-boot's menu spans the ESP and XBOOTLDR together; leapboot's menu shows
//! each entry's volume beside its title). A `loader.conf` without `timeout` gives timeout 0
//! (menu hidden); a volume without `loader.conf` gives none (the front end's default).

use std::cmp::Ordering;

use super::{
    BootEntry, DefaultRule, EntryError, EntryKind, EntrySource, FileRef, Format, Found, Timeout,
    VolumeView,
};
use crate::budget::MAX_CMDLINE;
use crate::fs::{FileKind, MAX_CONFIG_BYTES};
use crate::version;

const ENTRIES_DIR: &str = "/loader/entries";
const LOADER_CONF: &str = "/loader/loader.conf";
/// At most this many entry files are read from one volume.
const MAX_ENTRIES: usize = 1024;

/// The EFI architecture name of the machine leapboot runs on (BLS `architecture` key).
#[cfg(target_arch = "x86_64")]
const ARCH: &str = "x64";
#[cfg(target_arch = "aarch64")]
const ARCH: &str = "aa64";
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ARCH: &str = std::env::consts::ARCH;

/// Finds the BLS entries of `vol`.
pub fn discover(vol: &VolumeView<'_>, _all: &[VolumeView<'_>]) -> Found {
    let (volume, fs) = (vol.name, vol.fs);
    let mut found = Found::default();
    let err = |file: &str, line: Option<u32>, message: String| EntryError {
        volume: volume.to_string(),
        file: file.to_string(),
        line,
        message,
    };
    match fs.read(LOADER_CONF, MAX_CONFIG_BYTES) {
        Ok(bytes) => {
            let conf = parse_loader_conf(&String::from_utf8_lossy(&bytes));
            found.default = conf.default.map(DefaultRule::IdGlob);
            // loader.conf(5): "If the timeout is 0 (the default), the menu is hidden and the
            // default entry is booted immediately". A loader.conf without `timeout` (bootctl
            // writes `#timeout 3`, commented out) means exactly that.
            found.timeout = Some(conf.timeout.unwrap_or(Timeout::Secs(0)));
            for (line, msg) in conf.problems {
                found.errors.push(err(LOADER_CONF, Some(line), msg));
            }
        }
        Err(crate::fs::FsError::NotFound(_)) => {}
        Err(e) => found.errors.push(err(LOADER_CONF, None, e.to_string())),
    }
    let files = match fs.read_dir(ENTRIES_DIR) {
        Ok(f) => f,
        Err(crate::fs::FsError::NotFound(_)) => return found,
        Err(e) => {
            found.errors.push(err(ENTRIES_DIR, None, e.to_string()));
            return found;
        }
    };
    let grubenv = super::grubenv::load(fs, None).unwrap_or_default();
    let mut parsed = Vec::new();
    for f in files.iter().filter(|f| f.kind == FileKind::File) {
        let Some(stem) = strip_suffix_ignore_case(&f.name, ".conf") else {
            continue;
        };
        if parsed.len() == MAX_ENTRIES {
            found.errors.push(err(
                ENTRIES_DIR,
                None,
                format!("more than {MAX_ENTRIES} entries; the rest are ignored"),
            ));
            break;
        }
        let path = format!("{ENTRIES_DIR}/{}", f.name);
        let text = match fs.read(&path, MAX_CONFIG_BYTES) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                found.errors.push(err(&path, None, e.to_string()));
                continue;
            }
        };
        match parse_entry(stem, &text) {
            Ok((entry, notes)) => {
                for (line, msg) in notes {
                    log::debug!("{volume}:{path}:{line}: {msg}");
                }
                parsed.push((entry, path));
            }
            Err((line, msg)) => found.errors.push(err(&path, line, msg)),
        }
    }
    parsed.sort_by(|a, b| compare(&a.0, &b.0));
    let titles = unique_titles(parsed.iter().map(|(e, _)| e));
    found.entries = parsed
        .into_iter()
        .zip(titles)
        .map(|((mut e, path), title)| {
            e.options = expand_grub_vars(&e.options, &grubenv);
            let mut b = e.into_boot_entry(volume, path);
            b.title = title;
            b
        })
        .collect();
    found
}

/// The titles systemd-boot shows for `entries` (systemd `src/boot/boot.c`,
/// `generate_boot_entry_titles`; `config_title_generate` before v255): each entry's `title`
/// (else its id); where titles collide, those entries get ` (<version>)` appended; where they
/// still collide, ` (<first 8 characters of machine-id>)`; then ` (<file name>)` (the
/// lower-cased file name without the boot-counting suffix, as systemd-boot's entry id). An
/// entry lacking the field a step adds keeps its title for that step. Linear: collisions are
/// counted in a map, not by comparing every pair as systemd-boot does.
pub fn unique_titles<'a>(entries: impl Iterator<Item = &'a Entry> + Clone) -> Vec<String> {
    let mut shown: Vec<String> = entries
        .clone()
        .map(|e| e.title.clone().unwrap_or_else(|| e.id.clone()))
        .collect();
    type Step = fn(&Entry) -> Option<String>;
    let steps: [Step; 3] = [
        |e| e.version.clone(),
        |e| e.machine_id.as_ref().map(|m| m.chars().take(8).collect()),
        |e| Some(format!("{}.conf", e.id).to_lowercase()),
    ];
    for step in steps {
        let mut count: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for t in &shown {
            *count.entry(t.as_str()).or_default() += 1;
        }
        let collides: Vec<bool> = shown.iter().map(|t| count[t.as_str()] > 1).collect();
        if !collides.contains(&true) {
            break;
        }
        for ((t, e), c) in shown.iter_mut().zip(entries.clone()).zip(collides) {
            if let (true, Some(extra)) = (c, step(e)) {
                *t = format!("{t} ({extra})");
            }
        }
    }
    shown
}

/// `$var`/`${var}` in `options` expanded from a grubenv, as Fedora's blscfg does (unset
/// variables vanish; blanks are collapsed as GRUB's word splitting does). Lines without `$`
/// are kept as written.
pub fn expand_grub_vars(
    options: &[String],
    env: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    options
        .iter()
        .map(|o| {
            if o.contains('$') {
                let v = super::grub::eval::expand_val(o, &|n| env.get(n).cloned());
                v.split_whitespace().collect::<Vec<_>>().join(" ")
            } else {
                o.clone()
            }
        })
        .filter(|o| !o.is_empty())
        .collect()
}

fn strip_suffix_ignore_case<'a>(name: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = name.len().checked_sub(suffix.len())?;
    (name.is_char_boundary(cut) && name[cut..].eq_ignore_ascii_case(suffix)).then(|| &name[..cut])
}

/// `loader.conf` settings leapboot uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LoaderConf {
    /// `default`: a glob over entry ids.
    pub default: Option<String>,
    /// `timeout`.
    pub timeout: Option<Timeout>,
    /// (line, message) for values that could not be understood.
    pub problems: Vec<(u32, String)>,
}

/// Splits a config line into key and value: `key  value with spaces`. Comments and blank
/// lines give `None`.
fn key_value(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    match line.split_once([' ', '\t']) {
        Some((k, v)) => Some((k, v.trim())),
        None => Some((line, "")),
    }
}

/// Parses `loader.conf` (systemd-boot's `loader.conf(5)`; keys leapboot has no use for are
/// ignored).
pub fn parse_loader_conf(text: &str) -> LoaderConf {
    let mut conf = LoaderConf::default();
    for (n, line) in text.lines().enumerate() {
        let n = n as u32 + 1;
        let Some((key, value)) = key_value(line) else {
            continue;
        };
        match key {
            "default" if !value.is_empty() => conf.default = Some(value.to_string()),
            "timeout" => {
                conf.timeout = match value {
                    "menu-force" => Some(Timeout::Forever),
                    "menu-hidden" | "menu-disabled" => Some(Timeout::Secs(0)),
                    v => match v.parse::<u32>() {
                        Ok(s) => Some(Timeout::Secs(s)),
                        Err(_) => {
                            conf.problems
                                .push((n, format!("timeout {v:?} is not a number of seconds")));
                            conf.timeout
                        }
                    },
                }
            }
            _ => {}
        }
    }
    conf
}

/// One parsed entry file, before it is placed on a volume.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// File name without `.conf` and without the boot-counting suffix.
    pub id: String,
    /// File name without `.conf` (kept for the spec's final sort rule).
    pub stem: String,
    /// Boot counting: tries left, if the name carries a counter.
    pub tries_left: Option<u32>,
    /// `title`.
    pub title: Option<String>,
    /// `version`.
    pub version: Option<String>,
    /// `machine-id`.
    pub machine_id: Option<String>,
    /// `sort-key`.
    pub sort_key: Option<String>,
    /// `linux`: the kernel path.
    pub linux: Option<String>,
    /// Every `initrd`, in order.
    pub initrd: Vec<String>,
    /// Every `options` line, in order (joined with spaces for the command line).
    pub options: Vec<String>,
    /// `devicetree`.
    pub devicetree: Option<String>,
    /// `uki`: a unified kernel image to boot instead of `linux`.
    pub uki: Option<String>,
    /// Line of the `linux` (or `uki`) key.
    pub linux_line: u32,
}

/// Splits `name+LEFT-DONE` / `name+LEFT` into the id and tries left (BLS § Boot counting).
pub(crate) fn boot_counting(stem: &str) -> (&str, Option<u32>) {
    if let Some((id, counter)) = stem.rsplit_once('+') {
        let left = counter.split_once('-').map_or(counter, |(l, _)| l);
        let done_ok = counter
            .split_once('-')
            .is_none_or(|(_, d)| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()));
        if !left.is_empty() && left.bytes().all(|c| c.is_ascii_digit()) && done_ok {
            if let Ok(n) = left.parse() {
                return (id, Some(n));
            }
        }
    }
    (stem, None)
}

/// Most `initrd` lines one entry may have.
pub const MAX_INITRDS: usize = 64;

/// Parses one entry file. Err: (line, message) when the entry cannot boot. Ok also returns
/// notes about keys ignored (the first 16).
#[allow(clippy::type_complexity)]
pub fn parse_entry(
    stem: &str,
    text: &str,
) -> Result<(Entry, Vec<(u32, String)>), (Option<u32>, String)> {
    let (id, tries_left) = boot_counting(stem);
    let mut e = Entry {
        id: id.to_string(),
        stem: stem.to_string(),
        tries_left,
        ..Entry::default()
    };
    let mut notes = Vec::new();
    let mut efi_line = None;
    let mut arch = None;
    for (n, line) in text.lines().enumerate() {
        let n = n as u32 + 1;
        let Some((key, value)) = key_value(line) else {
            continue;
        };
        // One 1 MiB line must not become a 1 MiB title or command line: every value, and
        // the options together, stay within what a kernel command line may hold.
        if value.len() > MAX_CMDLINE {
            return Err((
                Some(n),
                format!(
                    "{key} of {} bytes is longer than {MAX_CMDLINE} bytes; entry not listed",
                    value.len()
                ),
            ));
        }
        let value = value.to_string();
        match key {
            "options"
                if e.options.iter().map(|o| o.len() + 1).sum::<usize>() + value.len()
                    > MAX_CMDLINE =>
            {
                return Err((
                    Some(n),
                    format!(
                        "options longer than the {MAX_CMDLINE} bytes a kernel accepts; entry not listed"
                    ),
                ));
            }
            "initrd" if e.initrd.len() >= MAX_INITRDS => {
                return Err((
                    Some(n),
                    format!("more than {MAX_INITRDS} initrd lines; entry not listed"),
                ));
            }
            "title" => e.title = Some(value),
            "version" => e.version = Some(value),
            "machine-id" => e.machine_id = Some(value),
            "sort-key" => e.sort_key = Some(value),
            "linux" => {
                e.linux = Some(value);
                e.linux_line = n;
            }
            "uki" => {
                if e.linux.is_none() {
                    e.linux_line = n;
                }
                e.uki = Some(value);
            }
            "initrd" => e.initrd.push(value),
            "options" => e.options.push(value),
            "devicetree" => e.devicetree = Some(value),
            "devicetree-overlay" => notes.push((n, "devicetree-overlay ignored".to_string())),
            "architecture" => arch = Some((n, value)),
            "efi" => efi_line = Some(n),
            k if notes.len() < 16 => notes.push((n, format!("unknown key {k:?} ignored"))),
            _ => {}
        }
    }
    if let Some((n, a)) = arch {
        if !a.eq_ignore_ascii_case(ARCH) {
            return Err((
                Some(n),
                format!("entry is for architecture {a:?}, this machine is {ARCH:?}"),
            ));
        }
    }
    if e.linux.as_deref().is_some_and(|l| !l.is_empty()) {
        if e.uki.is_some() {
            notes.push((
                e.linux_line,
                "both 'linux' and 'uki': 'linux' boots".to_string(),
            ));
            e.uki = None;
        }
    } else if e.uki.as_deref().is_some_and(|u| !u.is_empty()) {
        e.linux = None;
    } else {
        if let Some(n) = efi_line {
            return Err((
                Some(n),
                "an 'efi' program entry cannot be started with kexec".to_string(),
            ));
        }
        return Err((None, "entry has no 'linux' or 'uki' key".to_string()));
    }
    Ok((e, notes))
}

/// BLS § Sorting: bad entries last; entries with sort-key first, by sort-key, machine-id, then
/// version (newest first); finally by file name, newest version first.
pub fn compare(a: &Entry, b: &Entry) -> Ordering {
    let bad = |e: &Entry| e.tries_left == Some(0);
    bad(a)
        .cmp(&bad(b))
        .then_with(|| match (&a.sort_key, &b.sort_key) {
            (Some(ka), Some(kb)) => ka
                .cmp(kb)
                .then_with(|| alnum(&a.machine_id, &b.machine_id))
                .then_with(|| {
                    version::compare(
                        a.version.as_deref().unwrap_or(""),
                        b.version.as_deref().unwrap_or(""),
                    )
                    .reverse()
                }),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
        .then_with(|| version::compare(&a.stem, &b.stem).reverse())
}

/// "Alphanumerical order": strcmp, with an unset or empty string lower.
fn alnum(a: &Option<String>, b: &Option<String>) -> Ordering {
    let a = a.as_deref().unwrap_or("");
    let b = b.as_deref().unwrap_or("");
    a.cmp(b)
}

impl Entry {
    fn into_boot_entry(self, volume: &str, path: String) -> BootEntry {
        let file = |p: &str| FileRef {
            volume: volume.to_string(),
            path: crate::fs::normalize(p),
        };
        let (kernel, kind) = match (&self.linux, &self.uki) {
            (None, Some(uki)) => (uki.as_str(), EntryKind::Uki),
            (linux, _) => (linux.as_deref().unwrap_or_default(), EntryKind::Linux),
        };
        BootEntry {
            title: self.title.clone().unwrap_or_else(|| self.id.clone()),
            kernel: file(kernel),
            initrds: self.initrd.iter().map(|p| file(p)).collect(),
            cmdline: self.options.join(" "),
            devicetree: self.devicetree.as_deref().map(file),
            version: self.version,
            format: Format::Bls,
            kind,
            source: EntrySource {
                volume: volume.to_string(),
                file: path,
                line: Some(self.linux_line),
            },
            id: self.id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::dir::DirFs;

    fn parse(stem: &str, text: &str) -> Entry {
        parse_entry(stem, text).unwrap().0
    }

    #[test]
    fn all_keys_of_a_kernel_install_entry() {
        let e = parse(
            "6a9857a393724b7a981ebb5b8495b9ea-6.1.0-10-amd64",
            "# Boot Loader Specification type#1 entry\n\
             title      Debian GNU/Linux 12 (bookworm)\n\
             version    6.1.0-10-amd64\n\
             machine-id 6a9857a393724b7a981ebb5b8495b9ea\n\
             sort-key   debian\n\
             options    root=UUID=1234 ro\n\
             options\tquiet\n\
             linux      /6a98/6.1.0-10-amd64/linux\n\
             initrd     /6a98/6.1.0-10-amd64/microcode\n\
             initrd     /6a98/6.1.0-10-amd64/initrd.img-6.1.0-10-amd64\n",
        );
        assert_eq!(e.title.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(e.version.as_deref(), Some("6.1.0-10-amd64"));
        assert_eq!(e.sort_key.as_deref(), Some("debian"));
        assert_eq!(e.options, ["root=UUID=1234 ro", "quiet"]);
        assert_eq!(e.initrd.len(), 2);
        assert_eq!(e.linux_line, 8);
    }

    #[test]
    fn devicetree_overlay_does_not_set_devicetree() {
        let e = parse("x", "linux /k\ndevicetree-overlay /o.dtbo\n");
        assert_eq!(e.devicetree, None);
    }

    #[test]
    fn entries_that_cannot_boot_are_errors_with_a_line() {
        assert_eq!(parse_entry("x", "title t\n").unwrap_err().0, None);
        assert_eq!(
            parse_entry("x", "title t\nefi /EFI/shell.efi\n")
                .unwrap_err()
                .0,
            Some(2)
        );
        assert_eq!(
            parse_entry("x", "linux /k\narchitecture aa64\n")
                .unwrap_err()
                .0,
            Some(2)
        );
        assert!(parse_entry("x", "linux /k\narchitecture X64\n").is_ok());
    }

    #[test]
    fn boot_counting_suffixes() {
        assert_eq!(boot_counting("a+3"), ("a", Some(3)));
        assert_eq!(boot_counting("a+0-5"), ("a", Some(0)));
        assert_eq!(boot_counting("a+b"), ("a+b", None));
        assert_eq!(boot_counting("a+1-"), ("a+1-", None));
        assert_eq!(boot_counting("c++"), ("c++", None));
    }

    #[test]
    fn loader_conf() {
        let c = parse_loader_conf("# c\ndefault  fedora-*\ntimeout 7\nconsole-mode max\n");
        assert_eq!(c.default.as_deref(), Some("fedora-*"));
        assert_eq!(c.timeout, Some(Timeout::Secs(7)));
        assert_eq!(
            parse_loader_conf("timeout menu-force").timeout,
            Some(Timeout::Forever)
        );
        let bad = parse_loader_conf("timeout soon\n");
        assert_eq!(bad.timeout, None);
        assert_eq!(bad.problems[0].0, 1);
    }

    /// The order of systemd's own test (test-bootspec.c), extended with boot counting.
    #[test]
    fn sort_order_follows_the_spec() {
        let e = |stem: &str, text: &str| parse(stem, &format!("linux /k\n{text}"));
        let mut v = [
            e(
                "a-10",
                "version 10\nmachine-id dd235d00696545768f6f693bfd23b15f",
            ),
            e(
                "a-5",
                "version 5\nmachine-id dd235d00696545768f6f693bfd23b15f",
            ),
            e(
                "b",
                "version 3\nmachine-id b75451ad92f94feeab50b0b442768dbd",
            ),
            e(
                "c",
                "sort-key xxxx\nversion 5\nmachine-id 309de666fd5044268a9a26541ac93176",
            ),
            e(
                "cx",
                "sort-key xxxx\nversion 10\nmachine-id 309de666fd5044268a9a26541ac93176",
            ),
            e(
                "d",
                "sort-key kkkk\nversion 100\nmachine-id 81c6e3147cf544c19006af023e22b292",
            ),
            e("bad+0-3", "sort-key aaaa"),
        ];
        v.sort_by(compare);
        let order: Vec<&str> = v.iter().map(|e| e.stem.as_str()).collect();
        assert_eq!(order, ["d", "cx", "c", "b", "a-10", "a-5", "bad+0-3"]);
    }

    #[test]
    fn discover_reads_a_volume() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("loader/entries")).unwrap();
        std::fs::write(
            root.join("loader/loader.conf"),
            "default second.conf\ntimeout 3\n",
        )
        .unwrap();
        std::fs::write(
            root.join("loader/entries/first.conf"),
            "title One\nlinux /vmlinuz\noptions a=1\n",
        )
        .unwrap();
        std::fs::write(
            root.join("loader/entries/second.conf"),
            "title Two\nlinux vmlinuz\ninitrd /i1\ninitrd /i2\n",
        )
        .unwrap();
        std::fs::write(root.join("loader/entries/broken.conf"), "title Broken\n").unwrap();
        std::fs::write(root.join("loader/entries/notes.txt"), "linux /x\n").unwrap();
        let fs = DirFs::new(root);
        let view = crate::entry::tests::view("vol", &fs);
        let found = discover(&view, &[]);
        let ids: Vec<&str> = found.entries.iter().map(|e| e.id.as_str()).collect();
        // No sort-key: file names, newest version first.
        assert_eq!(ids, ["second", "first"]);
        assert_eq!(found.default_index(), Some(0));
        assert_eq!(found.timeout, Some(Timeout::Secs(3)));
        assert_eq!(found.entries[0].kernel.path, "/vmlinuz");
        assert_eq!(found.entries[0].initrds.len(), 2);
        assert_eq!(found.entries[1].cmdline, "a=1");
        assert_eq!(found.errors.len(), 1);
        assert_eq!(
            found.errors[0].to_string(),
            "vol:/loader/entries/broken.conf: entry has no 'linux' or 'uki' key"
        );
    }

    #[test]
    fn uki_key_boots_that_image() {
        let (e, _) = parse_entry("u", "title U\nuki /EFI/Linux/arch.efi\noptions quiet\n").unwrap();
        let b = e.into_boot_entry("v", "/loader/entries/u.conf".into());
        assert_eq!(b.kind, EntryKind::Uki);
        assert_eq!(b.kernel.path, "/EFI/Linux/arch.efi");
        assert_eq!(b.cmdline, "quiet");
        assert_eq!(b.source.line, Some(2));
        let (e, notes) = parse_entry("b", "linux /k\nuki /u.efi\n").unwrap();
        let b = e.into_boot_entry("v", "/f".into());
        assert_eq!((b.kind, b.kernel.path.as_str()), (EntryKind::Linux, "/k"));
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn grub_variables_in_options_expand_from_grubenv() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("loader/entries")).unwrap();
        std::fs::create_dir_all(root.join("grub2")).unwrap();
        let mut env =
            b"# GRUB Environment Block\nkernelopts=root=/dev/mapper/f-root ro rhgb quiet\n"
                .to_vec();
        env.resize(1024, b'#');
        std::fs::write(root.join("grub2/grubenv"), env).unwrap();
        std::fs::write(
            root.join("loader/entries/f-6.5.conf"),
            "title F\nlinux /vmlinuz-6.5\noptions $kernelopts $tuned_params\noptions ${kernelopts} x\n",
        )
        .unwrap();
        std::fs::write(
            root.join("loader/entries/plain.conf"),
            "title P\nlinux /vmlinuz\noptions a=\"b  c\"\n",
        )
        .unwrap();
        let fs = DirFs::new(root);
        let found = discover(&crate::entry::tests::view("vol", &fs), &[]);
        let by_id = |id: &str| found.entries.iter().find(|e| e.id == id).unwrap();
        assert_eq!(
            by_id("f-6.5").cmdline,
            "root=/dev/mapper/f-root ro rhgb quiet root=/dev/mapper/f-root ro rhgb quiet x"
        );
        assert_eq!(
            by_id("plain").cmdline,
            "a=\"b  c\"",
            "no $: kept as written"
        );
    }

    #[test]
    fn entries_a_grub_cfg_shows_through_blscfg_are_left_to_grub() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("loader/entries")).unwrap();
        std::fs::create_dir_all(root.join("grub2")).unwrap();
        std::fs::write(
            root.join("loader/entries/a.conf"),
            "title A\nlinux /vmlinuz\noptions $kernelopts\n",
        )
        .unwrap();
        let fs = DirFs::new(root);
        let v = crate::entry::tests::view("vol", &fs);
        assert_eq!(discover(&v, &[]).entries.len(), 1, "no grub.cfg yet");
        std::fs::write(
            root.join("grub2/grub.cfg"),
            "set kernelopts=\"root=/dev/x\"\nblscfg\n",
        )
        .unwrap();
        let grub = super::super::grub::discover(&v, &[]);
        assert_eq!(grub.bls_shown, ["vol"], "GRUB says it showed them");
        assert_eq!(grub.entries.len(), 1);
        assert_eq!(grub.entries[0].cmdline, "BOOT_IMAGE=/vmlinuz root=/dev/x");
    }

    /// systemd-boot's rule, one row per quirk: (stem, title, version, machine-id) → shown.
    #[test]
    fn colliding_titles_are_told_apart_as_systemd_boot_does() {
        type Row<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
            &'a str,
        );
        let mid_a = Some("6a9857a393724b7a981ebb5b8495b9ea");
        let mid_b = Some("3d1219c7c4c5404aaa1f6d2a48adfda4");
        let cases: &[&[Row<'_>]] = &[
            // Unique titles stay as they are.
            &[
                ("a", Some("A"), Some("1"), None, "A"),
                ("b", Some("B"), Some("1"), None, "B"),
            ],
            // kernel-install: one title, three versions.
            &[
                (
                    "m-6.1.0-25",
                    Some("Debian"),
                    Some("6.1.0-25-amd64"),
                    mid_a,
                    "Debian (6.1.0-25-amd64)",
                ),
                (
                    "m-6.1.0-18",
                    Some("Debian"),
                    Some("6.1.0-18-amd64"),
                    mid_a,
                    "Debian (6.1.0-18-amd64)",
                ),
                (
                    "other",
                    Some("Other"),
                    Some("6.1.0-18-amd64"),
                    mid_a,
                    "Other",
                ),
            ],
            // Same title and version, two installations: the machine id's first 8 characters.
            &[
                ("x", Some("D"), Some("6.1"), mid_a, "D (6.1) (6a9857a3)"),
                ("y", Some("D"), Some("6.1"), mid_b, "D (6.1) (3d1219c7)"),
            ],
            // Nothing else tells them apart: the file name (lower case, boot counter dropped).
            &[
                ("One+3-1", Some("T"), None, None, "T (one.conf)"),
                ("two", Some("T"), None, None, "T (two.conf)"),
            ],
            // A step an entry has no field for leaves it for the next step.
            &[
                ("p", Some("T"), Some("1"), None, "T (1) (p.conf)"),
                ("q", Some("T"), None, None, "T"),
                ("r", Some("T"), Some("1"), None, "T (1) (r.conf)"),
            ],
            // No title: the id is the title.
            &[
                ("same", None, None, None, "same (same.conf)"),
                ("z", Some("same"), None, None, "same (z.conf)"),
            ],
        ];
        for rows in cases {
            let entries: Vec<Entry> = rows
                .iter()
                .map(|(stem, title, version, mid, _)| {
                    let mut text = String::from("linux /k\n");
                    for (k, v) in [("title", title), ("version", version), ("machine-id", mid)] {
                        if let Some(v) = v {
                            text.push_str(&format!("{k} {v}\n"));
                        }
                    }
                    parse(stem, &text)
                })
                .collect();
            let want: Vec<&str> = rows.iter().map(|r| r.4).collect();
            assert_eq!(unique_titles(entries.iter()), want, "{rows:?}");
        }
    }

    #[test]
    fn loader_conf_without_timeout_hides_the_menu() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("loader/entries")).unwrap();
        std::fs::write(root.join("loader/entries/a.conf"), "title A\nlinux /k\n").unwrap();
        let fs = DirFs::new(root);
        let timeout = || discover(&crate::entry::tests::view("vol", &fs), &[]).timeout;
        assert_eq!(
            timeout(),
            None,
            "no loader.conf: no systemd-boot setting to follow"
        );
        for (conf, want) in [
            (
                "#timeout 3\n#console-mode keep\ndefault a\n",
                Timeout::Secs(0),
            ),
            ("", Timeout::Secs(0)),
            ("timeout 4\n", Timeout::Secs(4)),
            ("timeout menu-force\n", Timeout::Forever),
            ("timeout menu-hidden\n", Timeout::Secs(0)),
        ] {
            std::fs::write(root.join("loader/loader.conf"), conf).unwrap();
            assert_eq!(timeout(), Some(want), "{conf:?}");
        }
    }

    /// `testdata/bls/*/root` (real `kernel-install` output) against `expected.json` beside.
    #[test]
    fn real_world_fixtures() {
        crate::entry::syslinux::tests::check_fixtures("src/entry/testdata/bls", discover);
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(stem in ".{0,20}", text in ".{0,400}") {
            let _ = parse_entry(&stem, &text);
            let _ = parse_loader_conf(&text);
        }

        #[test]
        fn unique_titles_never_panic_and_keep_one_title_per_entry(
            rows in proptest::collection::vec(("[ab]{1,2}", "[tT]?", "[12]?", "[m\u{e9}]{0,10}"), 0..12)
        ) {
            let entries: Vec<Entry> = rows.iter().map(|(stem, t, v, m)| {
                let mut text = String::from("linux /k\n");
                for (k, val) in [("title", t), ("version", v), ("machine-id", m)] {
                    if !val.is_empty() {
                        text.push_str(&format!("{k} {val}\n"));
                    }
                }
                parse(stem, &text)
            }).collect();
            let titles = unique_titles(entries.iter());
            proptest::prop_assert_eq!(titles.len(), entries.len());
        }
    }
}
