//! syslinux, extlinux, isolinux and pxelinux configurations (and u-boot's `extlinux.conf`,
//! which uses the same language).
//!
//! Which files: each *family* contributes the first of its locations that exists, in this
//! order (the order the loaders themselves search):
//!
//! | family   | locations                                                                  |
//! |----------|----------------------------------------------------------------------------|
//! | extlinux | `/boot/extlinux/extlinux.conf`, `/extlinux/extlinux.conf`, `/extlinux.conf` |
//! | syslinux | `/boot/syslinux/syslinux.cfg`, `/syslinux/syslinux.cfg`, `/syslinux.cfg`    |
//! | isolinux | `/boot/isolinux/isolinux.cfg`, `/isolinux/isolinux.cfg`                     |
//! | pxelinux | `/pxelinux.cfg/default` (a TFTP tree copied to a disk)                      |
//!
//! Entries of all families are listed in that order; one that boots the same as an earlier one
//! is dropped; the default and timeout come from the first family that sets them.
//!
//! Paths: relative paths (kernels, initrds, `INCLUDE`s, from any included file) are resolved
//! against the *working directory*, which is the main config file's directory, or for
//! pxelinux the directory holding `pxelinux.cfg/` (the TFTP root); absolute paths are from the
//! volume root. This is what syslinux does.
//!
//! What boots: a label whose `KERNEL` names a COM32 module, COMBOOT program, boot sector, PXE
//! image or floppy image (by its extension, as syslinux decides), or which uses `COM32`,
//! `CONFIG`, `LOCALBOOT`, `MENU EXIT`, … is not a Linux entry and is skipped; `LINUX` always
//! means a Linux kernel.
//!
//! Entries: one per Linux label, in file order (includes spliced in place); id = the label,
//! title = `MENU LABEL` without `^` hotkey markers (else the label), prefixed with the titles
//! of the submenus holding it (`Advanced options > Expert install`). A label's `APPEND`
//! replaces the global one (`APPEND -`: none). `MENU HIDE` labels are listed only when they
//! are the default. Default: `ONTIMEOUT`, else the top menu's last `MENU DEFAULT`, else
//! `DEFAULT`; each may name a label (extra words are appended to its command line, making an
//! entry of their own) or be a kernel command line (an entry when the file exists and
//! `IMPLICIT 0` is not set). Timeout: see [`timeout`].
//!
//! The parsing itself is in [`parse`]; this module turns labels into entries and decides the
//! default and timeout. It does not run `menu.c32`'s UI, multiboot (`mboot.c32`),
//! `IPAPPEND`/`SYSAPPEND`, or `FDTDIR` lookups (the board's device tree name is unknown).

pub mod parse;

use std::collections::HashSet;

use super::{
    BootEntry, DefaultRule, EntryError, EntryKind, EntrySource, FileRef, Format, Found, Timeout,
    VolumeView,
};
use crate::fs::{BootFs, FsError, MAX_CONFIG_BYTES};
use parse::{resolve, strip_hotkeys, Config, Label, Loc};

/// Config families and their locations, in search order (see the module docs).
pub const FAMILIES: &[(&str, &[&str])] = &[
    (
        "extlinux",
        &[
            "/boot/extlinux/extlinux.conf",
            "/extlinux/extlinux.conf",
            "/extlinux.conf",
        ],
    ),
    (
        "syslinux",
        &[
            "/boot/syslinux/syslinux.cfg",
            "/syslinux/syslinux.cfg",
            "/syslinux.cfg",
        ],
    ),
    (
        "isolinux",
        &["/boot/isolinux/isolinux.cfg", "/isolinux/isolinux.cfg"],
    ),
    ("pxelinux", &["/pxelinux.cfg/default"]),
];

/// Finds the syslinux-family entries of `vol`.
pub fn discover(vol: &VolumeView<'_>, _all: &[VolumeView<'_>]) -> Found {
    let mut found = Found::default();
    for (family, paths) in FAMILIES {
        let Some((path, text)) = first_config(vol, paths, &mut found.errors) else {
            continue;
        };
        log::debug!("{}: {family} configuration {path}", vol.name);
        let workdir = working_dir(&path);
        let mut read = |p: &str| match read_text(vol.fs, p) {
            Ok(t) => Ok(Some(t)),
            Err(FsError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.to_string()),
        };
        let cfg = parse::parse(&path, text, &workdir, &mut read);
        let one = build(&cfg, vol, &path, &workdir);
        merge(&mut found, one);
    }
    found
}

/// The first of `paths` that exists on `vol`, read; read errors other than "not found" are
/// reported and the next location is tried.
fn first_config(
    vol: &VolumeView<'_>,
    paths: &[&str],
    errors: &mut Vec<EntryError>,
) -> Option<(String, String)> {
    for path in paths {
        match read_text(vol.fs, path) {
            Ok(text) => return Some((path.to_string(), text)),
            Err(FsError::NotFound(_)) => {}
            Err(e) => errors.push(EntryError {
                volume: vol.name.to_string(),
                file: path.to_string(),
                line: None,
                message: e.to_string(),
            }),
        }
    }
    None
}

fn read_text(fs: &dyn BootFs, path: &str) -> Result<String, FsError> {
    fs.read(path, MAX_CONFIG_BYTES)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The directory relative paths are resolved against: the config file's, or for
/// `…/pxelinux.cfg/default` the directory above `pxelinux.cfg`.
pub fn working_dir(config: &str) -> String {
    let dir = config.rsplit_once('/').map_or("", |(d, _)| d);
    let dir = match dir.rsplit_once('/') {
        Some((up, last)) if last.eq_ignore_ascii_case("pxelinux.cfg") => up,
        _ => dir,
    };
    crate::fs::normalize(dir)
}

/// Appends `one` (a later family) to `found`.
fn merge(found: &mut Found, one: Found) {
    let default = one.default_index();
    found.errors.extend(one.errors);
    if found.timeout.is_none() {
        found.timeout = one.timeout;
    }
    let mut ids: HashSet<String> = found.entries.iter().map(|e| e.id.clone()).collect();
    for (i, mut e) in one.entries.into_iter().enumerate() {
        let at = match found.entries.iter().position(|o| o.same_boot(&e)) {
            Some(at) => at,
            None => {
                e.id = unique_id(&e.id, &ids);
                ids.insert(e.id.clone());
                found.entries.push(e);
                found.entries.len() - 1
            }
        };
        if Some(i) == default && found.default.is_none() {
            found.default = Some(DefaultRule::Index(at));
        }
    }
}

fn unique_id(id: &str, taken: &HashSet<String>) -> String {
    if !taken.contains(id) {
        return id.to_string();
    }
    (2..)
        .map(|n| format!("{id}#{n}"))
        .find(|c| !taken.contains(c))
        .unwrap_or_default()
}

/// What syslinux makes of a `KERNEL` file name, by extension.
fn is_linux_image(keyword: &str, image: &str) -> bool {
    if keyword == "linux" {
        return true;
    }
    if keyword != "kernel" {
        return false;
    }
    let name = image.rsplit('/').next().unwrap_or(image);
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    !matches!(
        ext.as_str(),
        "c32" | "com" | "cbt" | "bs" | "bss" | "bin" | "0" | "img"
    )
}

/// One Linux boot made from a label or a command line, before ids and order are settled.
struct Candidate {
    entry: BootEntry,
    hidden: bool,
}

/// A place errors are attributed to.
struct Ctx<'a> {
    vol: &'a VolumeView<'a>,
    workdir: &'a str,
}

impl Ctx<'_> {
    fn error(&self, loc: &Loc, message: String) -> EntryError {
        EntryError {
            volume: self.vol.name.to_string(),
            file: loc.file.clone(),
            line: (loc.line > 0).then_some(loc.line),
            message,
        }
    }

    fn file(&self, path: &str) -> FileRef {
        FileRef {
            volume: self.vol.name.to_string(),
            path: resolve(self.workdir, path),
        }
    }

    /// A Linux boot of `image` with `cmdline`. Initrds: the first `initrd=` option of the
    /// command line, else `initrd` (the `INITRD` keyword); comma lists in both. This is
    /// syslinux's order: `INITRD x` appends ` initrd=x` *after* `APPEND`, and the loader takes
    /// the first `initrd=` it finds. (It finds it with `strstr`, so `rd.initrd=` would match
    /// too; we take whole options only. u-boot loads `INITRD` whatever `APPEND` says; the two
    /// disagree only when a label has both.) The ` initrd=x` syslinux adds for `INITRD` is not
    /// added to the command line: kexec needs no such option and u-boot adds none.
    fn boot(
        &self,
        id: &str,
        title: String,
        image: &str,
        cmdline: String,
        initrd: Option<&str>,
        loc: &Loc,
    ) -> BootEntry {
        let list = cmdline
            .split_ascii_whitespace()
            .find_map(|w| w.strip_prefix("initrd="))
            .or(initrd)
            .map(str::to_string);
        let initrds = list
            .iter()
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| self.file(p))
            .collect();
        let kernel = self.file(image);
        let version = kernel
            .path
            .rsplit('/')
            .next()
            .and_then(crate::entry::bootdir::classify)
            .and_then(|k| k.version);
        BootEntry {
            id: id.to_string(),
            title,
            version,
            kernel,
            initrds,
            cmdline,
            devicetree: None,
            format: Format::Syslinux,
            kind: EntryKind::Linux,
            source: EntrySource {
                volume: self.vol.name.to_string(),
                file: loc.file.clone(),
                line: (loc.line > 0).then_some(loc.line),
            },
        }
    }
}

fn join_args(a: &str, b: &str) -> String {
    match (a.trim(), b.trim()) {
        ("", b) => b.to_string(),
        (a, "") => a.to_string(),
        (a, b) => format!("{a} {b}"),
    }
}

/// The command line an `APPEND` value gives: `-` means none.
fn append_value(a: Option<&str>) -> &str {
    match a.map(str::trim) {
        Some("-") | None => "",
        Some(a) => a,
    }
}

/// The entry a label makes, or why it makes none (`Err(None)`: not a Linux boot, no message).
fn label_entry(ctx: &Ctx<'_>, l: &Label) -> Result<BootEntry, Option<String>> {
    if l.not_bootable {
        return Err(None);
    }
    let (keyword, value, implicit) = match &l.boot {
        Some((k, v)) => (k.as_str(), v.as_str(), false),
        // syslinux: a label without a kernel line boots the file named like the label.
        None => ("kernel", l.name.as_str(), true),
    };
    let (image, extra) = match value.split_once(|c: char| c.is_ascii_whitespace()) {
        Some((i, e)) => (i, e.trim()),
        None => (value, ""),
    };
    if image.is_empty() {
        return Err(Some(format!("label {:?} has no kernel", l.name)));
    }
    if !is_linux_image(keyword, image) {
        return Err(None);
    }
    if implicit && !ctx.vol.fs.exists(&resolve(ctx.workdir, image)) {
        return Err(None);
    }
    let append = append_value(l.append.as_deref().or(l.global_append.as_deref()));
    let mut title = l
        .menu_label
        .as_deref()
        .map(strip_hotkeys)
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| l.name.clone());
    if !l.menu_path.is_empty() {
        title = format!("{} > {title}", l.menu_path.join(" > "));
    }
    let mut e = ctx.boot(
        &l.name,
        title,
        image,
        join_args(extra, append),
        l.initrd.as_deref(),
        &l.loc,
    );
    e.devicetree = l.fdt.as_deref().map(|f| ctx.file(f));
    if e.devicetree.is_none() {
        if let Some(d) = &l.fdtdir {
            log::debug!(
                "{}:{}:{}: FDTDIR {d}: the board's device tree name is not known; none loaded",
                ctx.vol.name,
                l.loc.file,
                l.loc.line
            );
        }
    }
    Ok(e)
}

/// What `DEFAULT`/`ONTIMEOUT` `cmd` boots: an index into `cands` (a label, possibly with extra
/// options, which makes a new candidate), a kernel command line (a new candidate, when the file
/// exists), or nothing (a COM32 UI module, a non-Linux label, a missing file: `Err` says why).
fn command(
    ctx: &Ctx<'_>,
    cfg: &Config,
    cands: &mut Vec<Candidate>,
    by_label: &[(String, Option<usize>)],
    cmd: &str,
    id: &str,
    loc: &Loc,
) -> Result<Option<usize>, String> {
    let (word, rest) = match cmd.trim().split_once(|c: char| c.is_ascii_whitespace()) {
        Some((w, r)) => (w, r.trim()),
        None => (cmd.trim(), ""),
    };
    if word.is_empty() {
        return Ok(None);
    }
    if let Some((_, at)) = by_label.iter().find(|(n, _)| n == word) {
        let Some(at) = *at else {
            return Ok(None); // a label that is not a Linux boot (LOCALBOOT, a .c32, …)
        };
        if rest.is_empty() {
            return Ok(Some(at));
        }
        let mut e = cands[at].entry.clone();
        e.id = id.to_string();
        e.cmdline = join_args(&e.cmdline, rest);
        e.title = format!("{} {rest}", e.title);
        e.source.file = loc.file.clone();
        e.source.line = Some(loc.line);
        cands.push(Candidate {
            entry: e,
            hidden: false,
        });
        return Ok(Some(cands.len() - 1));
    }
    if !is_linux_image("kernel", word) {
        return Ok(None); // DEFAULT menu.c32 and the like: the UI, not an entry
    }
    if cfg.implicit == Some(false) {
        return Err(format!(
            "{} {word:?} names no label, and IMPLICIT 0 forbids booting a kernel by file name",
            id.to_uppercase()
        ));
    }
    if !ctx.vol.fs.exists(&resolve(ctx.workdir, word)) {
        return Err(format!(
            "{} {word:?} names no label and no file",
            id.to_uppercase()
        ));
    }
    // Typed (or DEFAULT) command lines get the global APPEND in front, as syslinux does.
    let cmdline = join_args(append_value(cfg.global_append.as_deref()), rest);
    let e = ctx.boot(id, cmd.trim().to_string(), word, cmdline, None, loc);
    cands.push(Candidate {
        entry: e,
        hidden: false,
    });
    Ok(Some(cands.len() - 1))
}

/// Entries, default and timeout of one parsed configuration.
pub fn build(cfg: &Config, vol: &VolumeView<'_>, path: &str, workdir: &str) -> Found {
    let ctx = Ctx { vol, workdir };
    let mut found = Found::default();
    for (loc, msg) in &cfg.problems {
        found.errors.push(ctx.error(loc, msg.clone()));
    }
    let mut cands: Vec<Candidate> = Vec::new();
    // Every label name (first definition wins, as in syslinux) and its candidate, if any.
    let mut by_label: Vec<(String, Option<usize>)> = Vec::new();
    for l in &cfg.labels {
        let at = match label_entry(&ctx, l) {
            Ok(e) => {
                cands.push(Candidate {
                    entry: e,
                    hidden: l.hidden,
                });
                Some(cands.len() - 1)
            }
            Err(Some(msg)) => {
                found.errors.push(ctx.error(&l.loc, msg));
                None
            }
            Err(None) => None,
        };
        if !by_label.iter().any(|(n, _)| *n == l.name) {
            by_label.push((l.name.clone(), at));
        }
    }
    // What boots without a key pressed: ONTIMEOUT, else the top menu's MENU DEFAULT, else
    // DEFAULT (a label, or a kernel command line).
    let mut default = None;
    if let Some((cmd, loc)) = &cfg.ontimeout {
        match command(&ctx, cfg, &mut cands, &by_label, cmd, "ontimeout", loc) {
            Ok(d) => default = d,
            Err(msg) => found.errors.push(ctx.error(loc, msg)),
        }
    }
    if default.is_none() {
        // menu.c32: the last MENU DEFAULT of the top menu on a label that runs something; if
        // that is not a Linux boot (a COM32 module, LOCALBOOT) there is nothing to pick here.
        default = cfg
            .labels
            .iter()
            .rfind(|l| l.menu_default && !l.not_bootable && l.menu_path.is_empty())
            .and_then(|l| {
                cands.iter().position(|c| {
                    c.entry.source.file == l.loc.file && c.entry.source.line == Some(l.loc.line)
                })
            });
    }
    if default.is_none() {
        if let Some((cmd, loc)) = &cfg.default {
            match command(&ctx, cfg, &mut cands, &by_label, cmd, "default", loc) {
                Ok(d) => default = d,
                Err(msg) => found.errors.push(ctx.error(loc, msg)),
            }
        }
    }
    found.timeout = timeout(cfg);
    // Hidden labels stay out of the list unless they are what boots by default.
    let mut ids = HashSet::new();
    for (i, c) in cands.into_iter().enumerate() {
        let is_default = Some(i) == default;
        if c.hidden && !is_default {
            continue;
        }
        let mut e = c.entry;
        // A label defined twice with the same boot is one entry (includes read twice).
        if let Some(at) = found
            .entries
            .iter()
            .position(|o| o.same_boot(&e) && o.id == e.id)
        {
            if is_default {
                found.default = Some(DefaultRule::Index(at));
            }
            continue;
        }
        e.id = unique_id(&e.id, &ids);
        ids.insert(e.id.clone());
        if is_default {
            found.default = Some(DefaultRule::Index(found.entries.len()));
        }
        found.entries.push(e);
    }
    log::debug!(
        "{}:{path}: {} entries from {} labels",
        vol.name,
        found.entries.len(),
        cfg.labels.len()
    );
    found
}

/// syslinux's timeout rules: `TIMEOUT` in tenths of a second (rounded up to whole seconds);
/// `TIMEOUT 0` disables the timeout (wait for a choice) unless `TOTALTIMEOUT` sets one, or no
/// prompt or menu is shown at all (`PROMPT 0` and no `UI`/menu module: boots at once).
pub fn timeout(cfg: &Config) -> Option<Timeout> {
    let secs = |t: u32| Timeout::Secs(t.div_ceil(10));
    let menu = cfg.ui
        || cfg.default.as_ref().is_some_and(|(d, _)| {
            let w = d.split_ascii_whitespace().next().unwrap_or("");
            w.to_ascii_lowercase().ends_with(".c32")
        });
    match (cfg.timeout, cfg.total_timeout) {
        (Some(t), _) if t > 0 => Some(secs(t)),
        (_, Some(t)) if t > 0 => Some(secs(t)),
        (t, _) => {
            if cfg.prompt == Some(false) && !menu {
                Some(Timeout::Secs(0))
            } else if t.is_some() || cfg.prompt == Some(true) || menu {
                Some(Timeout::Forever)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
