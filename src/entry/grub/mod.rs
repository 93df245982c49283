//! GRUB2 `grub.cfg`: the entries, default and timeout GRUB itself would show for a volume.
//!
//! Pipeline: [`lexer`] (GRUB's quoting rules) → [`parse`] (commands, `if`/loops/functions,
//! `menuentry`/`submenu` blocks; a syntax error loses only the command or entry it is in) →
//! [`eval`] (an interpreter with a step budget that runs the file as GRUB's normal mode does,
//! then runs each entry's block as GRUB does when the entry is chosen, recording
//! `linux`/`initrd`/`devicetree` instead of loading them).
//!
//! Where the config is: on each volume, the first of [`LOCATIONS`] that exists, then
//! `/EFI/<vendor>/grub.cfg` (names without case; vendors in name order, `BOOT` last), then
//! `/grub.cfg`. One config per volume,
//! like petitboot; a stub that `configfile`s the real one (Ubuntu's ESP) shows the real
//! menu, and the same entries found again from the real config's own volume are merged away
//! by [`BootList::merge`](crate::entry::BootList::merge).
//!
//! What an entry is: a `menuentry` whose block ran `linux`/`linuxefi`/`linux16`. Its command
//! line is what GRUB's Linux loader builds: `BOOT_IMAGE=<path as written>` then the
//! arguments, quoted as `grub_create_loader_cmdline` does. Paths resolve on `$root` (first:
//! the config's own volume) or on the `(device)` written before them. Entries in a `submenu`
//! are titled `Parent>Child`. Ids: `--id` if given, else the title (path). Entries that boot
//! something kexec cannot (multiboot, chainloader) are errors; blocks without `linux`
//! (firmware setup, reboot) are dropped quietly.
//!
//! Default: GRUB's `default` variable after the file ran: an index, a title or id, or a
//! `Parent>Child` path of those (`1>gnulinux-...`); `saved` means `$saved_entry`. Unset or
//! naming nothing: none (the first entry boots). Timeout: the `timeout` variable (negative,
//! unset or not a number: wait forever, as GRUB's menu does; no entries: none given).
//!
//! `blscfg` (Fedora/RHEL) adds the BLS entries of `$root`'s `/loader/entries` (or
//! `/boot/loader/entries`, or `$blsdir`) at that point of the menu, options expanded from the
//! GRUB environment; those volumes are reported in [`Found::bls_shown`](super::Found) and the
//! pipeline leaves them out of the BLS format.
//! Not done: `regexp` (taken as not matching), menus drawn by themes, `--users` password
//! checks (every entry is offered), GRUB's device names for volumes without a known disk
//! position (their leapboot name stands in inside the interpreter, but never reaches a
//! command line: [`boot_image`]).

pub mod eval;
pub mod lexer;
pub mod parse;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use self::eval::{Env, Interp, Item, Loc};
use self::parse::MenuKind;
use super::{BootEntry, DefaultRule, EntryKind, EntrySource, Format, Found, Timeout, VolumeView};
use crate::fs::FileKind;

/// Where a volume's `grub.cfg` may be, in the order tried (then `/EFI/*/grub.cfg`).
pub const LOCATIONS: &[&str] = &[
    "/boot/grub/grub.cfg",
    "/grub/grub.cfg",
    "/boot/grub2/grub.cfg",
    "/grub2/grub.cfg",
];

/// Tried after everything else: a `grub.cfg` at the volume root (petitboot reads it too).
pub const LAST_RESORT: &str = "/grub.cfg";

/// At most this many entries come from one volume's config (submenus included).
pub const MAX_ENTRIES: usize = 1024;

/// Submenus nest at most this deep.
pub const MAX_MENU_DEPTH: usize = 8;

/// The config file GRUB would read on `fs`, if any.
pub fn find_config(fs: &dyn crate::fs::BootFs) -> Option<String> {
    let is_file = |p: &str| fs.metadata(p).is_ok_and(|m| m.kind == FileKind::File);
    if let Some(p) = LOCATIONS.iter().find(|p| is_file(p)) {
        return Some(p.to_string());
    }
    // /EFI/<vendor>/grub.cfg, names compared without case (FAT, or a copy of it).
    let entries = |dir: &str| fs.read_dir(dir).unwrap_or_default();
    let efi = entries("/")
        .into_iter()
        .find(|d| d.kind == FileKind::Dir && d.name.eq_ignore_ascii_case("efi"));
    if let Some(efi) = efi {
        let mut vendors: Vec<String> = entries(&format!("/{}", efi.name))
            .into_iter()
            .filter(|d| d.kind == FileKind::Dir)
            .map(|d| d.name)
            .collect();
        vendors.sort_by_key(|d| (d.eq_ignore_ascii_case("boot"), d.clone()));
        for v in vendors {
            let dir = format!("/{}/{v}", efi.name);
            if let Some(f) = entries(&dir)
                .into_iter()
                .find(|f| f.kind == FileKind::File && f.name.eq_ignore_ascii_case("grub.cfg"))
            {
                return Some(format!("{dir}/{}", f.name));
            }
        }
    }
    is_file(LAST_RESORT).then(|| LAST_RESORT.to_string())
}

/// The volume list the interpreter searches: `all`, with `vol` added if it is not among them.
fn volumes<'v>(vol: &VolumeView<'v>, all: &[VolumeView<'v>]) -> (Vec<VolumeView<'v>>, usize) {
    let mut vols = all.to_vec();
    let home = match vols.iter().position(|v| v.name == vol.name) {
        Some(i) => i,
        None => {
            vols.push(*vol);
            vols.len() - 1
        }
    };
    (vols, home)
}

/// One node of the evaluated menu.
enum Node {
    Entry {
        title: String,
        id: Option<String>,
        index: Option<usize>,
    },
    Sub {
        title: String,
        id: Option<String>,
        children: Vec<Node>,
    },
}

impl Node {
    fn names(&self) -> (&str, Option<&str>) {
        match self {
            Node::Entry { title, id, .. } | Node::Sub { title, id, .. } => (title, id.as_deref()),
        }
    }

    fn first_entry(&self) -> Option<usize> {
        match self {
            Node::Entry { index, .. } => *index,
            Node::Sub { children, .. } => children.first().and_then(Node::first_entry),
        }
    }
}

/// Finds GRUB's entries on `vol` (files may come from any of `all`).
pub fn discover(vol: &VolumeView<'_>, all: &[VolumeView<'_>]) -> Found {
    let Some(path) = find_config(vol.fs) else {
        return Found::default();
    };
    discover_file(vol, all, &path, &[])
}

/// Runs config file `path` of `vol` as GRUB would, with the exported variables `vars` set
/// first (an ISO's `loopback.cfg` is run with `iso_path`, as GRUB's loopback convention
/// says).
pub fn discover_file(
    vol: &VolumeView<'_>,
    all: &[VolumeView<'_>],
    path: &str,
    vars: &[(&str, &str)],
) -> Found {
    let (vols, home) = volumes(vol, all);
    let loc = Loc {
        vol: home,
        path: path.to_string(),
    };
    let mut it = Interp::new(&vols, loc.clone());
    for (k, v) in vars {
        it.env.set(k, v);
        it.env.export(k);
    }
    it.run_file(loc);
    it.start_menu();
    let env = it.env.clone();
    let items = std::mem::take(&mut it.menu);
    let mut out = Out::default();
    let tree = build(&mut it, &vols, items, &env, "", 0, &mut out);
    let mut found = out.found;
    let spec = match env.get("default") {
        Some("saved") => env.get("saved_entry"),
        d => d,
    };
    found.default = spec
        .filter(|s| !s.is_empty())
        .and_then(|s| pick(&tree, s, 0))
        .map(DefaultRule::Index);
    // GRUB's `grub_menu_get_timeout` (normal/menu.c): `timeout` unset or not a number means
    // -1, a menu that waits for a choice (Debian's netboot grub.cfg sets none). A config
    // that shows no entries sets nothing.
    found.timeout = match env.get("timeout") {
        _ if found.entries.is_empty() => None,
        None => Some(Timeout::Forever),
        Some(t) => Some(
            t.trim()
                .parse::<i64>()
                .map_or(Timeout::Forever, Timeout::from_secs),
        ),
    };
    found.errors.append(&mut it.errors);
    found.bls_shown = it
        .bls_read
        .iter()
        .filter_map(|&i| vols.get(i).map(|v| v.name.to_string()))
        .collect();
    found
}

/// What the menu walk collects.
#[derive(Default)]
struct Out {
    found: Found,
    /// Ids given so far (kept unique).
    ids: BTreeSet<String>,
    /// Whether the [`MAX_ENTRIES`] error was reported.
    full: bool,
}

fn build(
    it: &mut Interp<'_, '_>,
    vols: &[VolumeView<'_>],
    items: Vec<Item>,
    env: &Env,
    parent: &str,
    depth: usize,
    out: &mut Out,
) -> Vec<Node> {
    let mut nodes = Vec::new();
    for item in items {
        let title = if parent.is_empty() {
            item.title.clone()
        } else {
            format!("{parent}>{}", item.title)
        };
        match item.kind {
            MenuKind::Submenu => {
                if depth >= MAX_MENU_DEPTH {
                    it.item_error(
                        &item,
                        format!("submenus nested deeper than {MAX_MENU_DEPTH}; not read"),
                    );
                    continue;
                }
                let (children, sub_env) = it.run_submenu(&item, env);
                let children = build(it, vols, children, &sub_env, &title, depth + 1, out);
                nodes.push(Node::Sub {
                    title: item.title.clone(),
                    id: item.id.clone(),
                    children,
                });
            }
            MenuKind::Entry => {
                let index = entry(it, vols, &item, env, title, out);
                nodes.push(Node::Entry {
                    title: item.title.clone(),
                    id: item.id.clone(),
                    index,
                });
            }
        }
    }
    nodes
}

/// Runs one entry's block; adds the entry to `found` if it loads a Linux kernel.
fn entry(
    it: &mut Interp<'_, '_>,
    vols: &[VolumeView<'_>],
    item: &Item,
    env: &Env,
    title: String,
    out: &mut Out,
) -> Option<usize> {
    if out.found.entries.len() >= MAX_ENTRIES {
        if !std::mem::replace(&mut out.full, true) {
            it.item_error(
                item,
                format!(
                    "more than {MAX_ENTRIES} entries; {:?} and the rest are ignored",
                    item.title
                ),
            );
        }
        return None;
    }
    let loaded = it.run_entry(item, env);
    if let Some(why) = loaded.unusable {
        it.item_error(item, format!("entry {:?} skipped: {why}", item.title));
        return None;
    }
    let Some((kernel, written, args)) = loaded.linux else {
        log::debug!(
            "{}:{}: entry {:?} loads no Linux kernel; not listed",
            item.loc.path,
            item.line,
            item.title
        );
        return None;
    };
    let mut argv = vec![boot_image(&written, vols)];
    argv.extend(args);
    let cmdline = format!("BOOT_IMAGE={}", eval::loader_cmdline(&argv));
    let base = item.id.clone().unwrap_or_else(|| title.clone());
    let mut id = base.clone();
    let mut n = 1;
    while !out.ids.insert(id.clone()) {
        n += 1;
        id = format!("{base}~{n}");
    }
    let version = kernel
        .path
        .rsplit('/')
        .next()
        .and_then(|b| {
            b.strip_prefix("vmlinuz-")
                .or_else(|| b.strip_prefix("vmlinux-"))
        })
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let volume = vols
        .get(item.loc.vol)
        .map_or_else(String::new, |v| v.name.to_string());
    let found = &mut out.found;
    found.entries.push(BootEntry {
        id,
        title,
        version,
        kernel,
        initrds: loaded.initrds,
        cmdline,
        devicetree: loaded.devicetree,
        format: Format::Grub,
        kind: EntryKind::Linux,
        source: EntrySource {
            volume,
            file: item.loc.path.clone(),
            line: Some(item.line),
        },
    });
    Some(found.entries.len() - 1)
}

/// The kernel path as `BOOT_IMAGE=` carries it: as written, except that a `(device)` that is
/// a leapboot volume name (`$root` of a volume without a GRUB disk position: `--root` paths,
/// blscfg's `($root)` on such a volume) is never passed on. It becomes the volume's
/// `(hdN,gptM)` name if it has one, else it is left out, as GRUB itself writes either
/// `(hdN,gptM)/path` or the bare path.
pub fn boot_image(written: &str, vols: &[VolumeView<'_>]) -> String {
    let Some((dev, path)) = written
        .strip_prefix('(')
        .and_then(|rest| rest.split_once(')'))
    else {
        return written.to_string();
    };
    match vols.iter().find(|v| v.name == dev) {
        Some(v) if v.grub_position.is_some() => format!("({}){path}", eval::device_name(v)),
        Some(_) => path.to_string(),
        None => written.to_string(),
    }
}

/// GRUB's default lookup (normal/menu.c `get_entry_number`, then the part after `>` inside a
/// submenu): an index (leading digits), else the first item whose title or id equals it.
fn pick(nodes: &[Node], spec: &str, depth: usize) -> Option<usize> {
    if depth > MAX_MENU_DEPTH {
        return None;
    }
    let by_name = |name: &str| {
        nodes.iter().find(|n| {
            let (t, id) = n.names();
            t == name || id == Some(name)
        })
    };
    // A title that itself contains '>' matches whole.
    if let Some(n) = by_name(spec) {
        return n.first_entry();
    }
    let (head, rest) = match spec.split_once('>') {
        Some((h, r)) => (h, Some(r)),
        None => (spec, None),
    };
    let digits: String = head.chars().take_while(char::is_ascii_digit).collect();
    let node = if !digits.is_empty() {
        digits.parse::<usize>().ok().and_then(|i| nodes.get(i))
    } else {
        by_name(head)
    }?;
    match (node, rest) {
        (Node::Sub { children, .. }, Some(r)) if !r.is_empty() => pick(children, r, depth + 1),
        (n, _) => n.first_entry(),
    }
}
