//! The GRUB script interpreter: runs a parsed `grub.cfg` the way GRUB's normal mode does and
//! records the menu it builds, then runs each entry's block as GRUB would when it is chosen,
//! recording `linux`/`initrd`/`devicetree` instead of loading anything.
//!
//! Semantics kept from GRUB (grub-core/script/execute.c, normal/menu.c, kern/corecmd.c):
//! one global environment; `export` marks variables a `submenu` (or `configfile`) context
//! inherits (`root`, `prefix` and the `feature_*` flags start exported); menu entry blocks
//! run after the whole file ran, with `$1` = title and `$2..` = the extra arguments; `set`
//! uses its first argument only; unquoted expansions split into words; `search` sets the
//! variable only when something matched. Everything is bounded: a step budget
//! ([`MAX_STEPS`]), loop iterations, function call depth, `source` depth, menu size.
//! It never writes (`save_env` does nothing) and opens files only through [`BootFs`].
//!
//! Devices: a volume is named `hdN,gptM` (or `hdN,msdosM`, `hdN`) from its `grub_position`,
//! else by its leapboot name; `(hdN,gptM)`, `(hdN,msdosM)`, `(hdN,M)`, a volume name or a
//! filesystem UUID in parentheses find it again.
//!
//! [`BootFs`]: crate::fs::BootFs

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use super::lexer::{lex, Part, Word};
use super::parse::{parse, Cmd, MenuKind};
use crate::entry::{bls, grubenv, EntryError, FileRef, VolumeView};
use crate::fs::{FileKind, MAX_CONFIG_BYTES};

/// Commands (and loop iterations) one configuration may run, menu entries included.
pub const MAX_STEPS: u64 = 200_000;
/// `source`/`configfile` nest at most this deep.
pub const MAX_SOURCE_DEPTH: usize = 10;
/// Function calls nest at most this deep.
pub const MAX_CALL_DEPTH: usize = 32;
/// One loop runs at most this many times.
pub const MAX_LOOP: usize = 1000;
/// One menu holds at most this many items.
pub const MAX_ITEMS: usize = 1024;
/// A variable value is cut at this length.
pub const MAX_VALUE: usize = 64 * 1024;
/// BLS entries `blscfg` reads from one directory.
const MAX_BLS: usize = 1024;

/// Commands that only change what GRUB shows or loads for itself: skipped, successfully.
const HARMLESS: &[&str] = &[
    "insmod",
    "rmmod",
    "font",
    "loadfont",
    "gfxmode",
    "terminal",
    "terminal_input",
    "terminal_output",
    "terminfo",
    "echo",
    "play",
    "sleep",
    "serial",
    "background_image",
    "background_color",
    "clear",
    "save_env",
    "savedefault",
    "set_background_image",
    "load_video",
    "gettext",
    "cmosclean",
    "hiddenmenu",
    "fwsetup",
    "boot",
    "tr",
    "videoinfo",
];

/// A variable environment (one GRUB context).
#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
    exported: BTreeSet<String>,
}

impl Env {
    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Sets `name`. `root` loses surrounding parentheses, as GRUB's write hook does.
    pub fn set(&mut self, name: &str, value: &str) {
        let value = match (
            name,
            value.strip_prefix('(').and_then(|v| v.strip_suffix(')')),
        ) {
            ("root", Some(inner)) => inner,
            _ => value,
        };
        let mut v = value.to_string();
        if v.len() > MAX_VALUE {
            let mut cut = MAX_VALUE;
            while !v.is_char_boundary(cut) {
                cut -= 1;
            }
            v.truncate(cut);
        }
        self.vars.insert(name.to_string(), v);
    }

    fn export(&mut self, name: &str) {
        self.exported.insert(name.to_string());
    }

    /// What a new context (submenu, configfile) starts with: the exported variables.
    fn exported_only(&self) -> Env {
        Env {
            vars: self
                .vars
                .iter()
                .filter(|(k, _)| self.exported.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            exported: self.exported.clone(),
        }
    }
}

/// A file location: volume index and path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loc {
    /// Index into the volume list.
    pub vol: usize,
    /// Path on it.
    pub path: String,
}

/// One item of a menu, as `menuentry`/`submenu`/`blscfg` registered it.
#[derive(Clone, Debug)]
pub struct Item {
    /// `menuentry` or `submenu`.
    pub kind: MenuKind,
    /// Title.
    pub title: String,
    /// `--id`, if given.
    pub id: Option<String>,
    /// Positional parameters for the block: the title, then the extra arguments.
    pub params: Vec<String>,
    /// The block.
    pub body: Rc<Vec<Cmd>>,
    /// Where it was defined.
    pub loc: Loc,
    /// Line of the definition.
    pub line: u32,
}

/// What running an entry's block loaded.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    /// Kernel, and the path as written (for `BOOT_IMAGE=`), and the arguments after it.
    pub linux: Option<(FileRef, String, Vec<String>)>,
    /// Initrds in order.
    pub initrds: Vec<FileRef>,
    /// Device tree.
    pub devicetree: Option<FileRef>,
    /// Why the entry cannot be started with kexec, if it cannot.
    pub unusable: Option<String>,
}

enum Stop {
    /// The step budget ran out.
    Budget,
    /// `configfile` replaced the menu; the current script ends.
    Replaced,
}

type Flow = Result<bool, Stop>;

/// The interpreter state.
pub struct Interp<'a, 'v> {
    vols: &'a [VolumeView<'v>],
    /// Variables.
    pub env: Env,
    funcs: HashMap<String, Rc<Vec<Cmd>>>,
    frames: Vec<Vec<String>>,
    steps: u64,
    status: bool,
    /// Problems met, located.
    pub errors: Vec<EntryError>,
    loc: Loc,
    line: u32,
    depth: usize,
    calls: usize,
    /// The menu being built.
    pub menu: Vec<Item>,
    loaded: Option<Loaded>,
    budget_reported: bool,
    /// Volumes whose BLS entries `blscfg` read.
    pub bls_read: BTreeSet<usize>,
}

/// GRUB's device name for volume `v`.
pub fn device_name(v: &VolumeView<'_>) -> String {
    match v.grub_position {
        Some((d, 0)) => format!("hd{d}"),
        Some((d, p)) if v.part_type.is_some() => format!("hd{d},gpt{p}"),
        Some((d, p)) => format!("hd{d},msdos{p}"),
        None => v.name.to_string(),
    }
}

/// Parses `hdN`, `hdN,M`, `hdN,gptM`, `hdN,msdosM` into (disk, partition; 0 = whole disk).
fn parse_hd(dev: &str) -> Option<(u32, u32)> {
    let rest = dev.strip_prefix("hd")?;
    let (disk, part) = match rest.split_once(',') {
        Some((d, p)) => (d, Some(p)),
        None => (rest, None),
    };
    let disk: u32 = disk.parse().ok()?;
    let part = match part {
        None => 0,
        Some(p) => {
            let digits = p.trim_start_matches(|c: char| c.is_ascii_alphabetic());
            digits.parse().ok()?
        }
    };
    Some((disk, part))
}

/// GRUB's `grub_create_loader_cmdline` (grub-core/lib/cmdline.c): arguments joined by
/// spaces, an argument holding a space put in double quotes. (Some distribution builds also
/// backslash-escape quotes and backslashes there; upstream no longer does.)
pub fn loader_cmdline(args: &[String]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if a.contains(' ') {
            out.push('"');
            out.push_str(a);
            out.push('"');
        } else {
            out.push_str(a);
        }
    }
    out
}

/// Fedora blscfg's `expand_val`: `$name` and `${name}` replaced by their values (unset: empty).
pub fn expand_val(text: &str, get: &dyn Fn(&str) -> Option<String>) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '$' {
            let braced = chars.get(i + 1) == Some(&'{');
            let start = if braced { i + 2 } else { i + 1 };
            let mut end = start;
            while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_') {
                end += 1;
            }
            let closed = !braced || chars.get(end) == Some(&'}');
            if end > start && closed {
                let name: String = chars[start..end].iter().collect();
                out.push_str(&get(&name).unwrap_or_default());
                i = if braced { end + 1 } else { end };
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// The words GRUB would pass to a command for `text` (quotes removed, variables from `get`
/// expanded and split): how a BLS `options` line reaches `linux` through `blscfg`.
pub fn script_words(text: &str, get: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let mut out = Vec::new();
    for t in lex(text) {
        if let super::lexer::Kind::Word(w) = t.kind {
            expand_word(&w, &|n| get(n), &mut out);
        }
    }
    out
}

/// Expands one word into fields (GRUB splits unquoted variable values on blanks).
fn expand_word(w: &Word, get: &dyn Fn(&str) -> Option<String>, out: &mut Vec<String>) {
    let mut cur = String::new();
    let mut have = false;
    for p in &w.parts {
        match p {
            Part::Lit { text, quoted } => {
                cur.push_str(text);
                have |= *quoted || !text.is_empty();
            }
            Part::Var { name, quoted: true } => {
                cur.push_str(&get(name).unwrap_or_default());
                have = true;
            }
            Part::Var {
                name,
                quoted: false,
            } => {
                let v = get(name).unwrap_or_default();
                let starts_blank = v.starts_with([' ', '\t', '\n']);
                let ends_blank = v.ends_with([' ', '\t', '\n']);
                let mut fields = v.split([' ', '\t', '\n']).filter(|f| !f.is_empty());
                if starts_blank && have {
                    out.push(std::mem::take(&mut cur));
                    have = false;
                }
                if let Some(first) = fields.next() {
                    cur.push_str(first);
                    have = true;
                    for f in fields {
                        out.push(std::mem::take(&mut cur));
                        cur.push_str(f);
                    }
                    if ends_blank {
                        out.push(std::mem::take(&mut cur));
                        have = false;
                    }
                }
            }
        }
    }
    if have {
        out.push(cur);
    }
}

impl<'a, 'v> Interp<'a, 'v> {
    /// An interpreter for a config at `loc` on `vols[loc.vol]`.
    pub fn new(vols: &'a [VolumeView<'v>], loc: Loc) -> Self {
        let mut env = Env::default();
        let dev = vols.get(loc.vol).map(device_name).unwrap_or_default();
        let dir = match loc.path.rsplit_once('/') {
            Some((d, _)) => d.to_string(),
            None => String::new(),
        };
        env.set("root", &dev);
        env.set("prefix", &format!("({dev}){dir}"));
        env.set("cmdpath", &format!("({dev}){dir}"));
        let efi = loc.path.to_ascii_lowercase().starts_with("/efi/");
        env.set("grub_platform", if efi { "efi" } else { "pc" });
        env.set(
            "grub_cpu",
            match (std::env::consts::ARCH, efi) {
                ("x86_64", true) => "x86_64",
                ("x86_64", false) | ("x86", _) => "i386",
                ("aarch64", _) => "arm64",
                (a, _) => a,
            },
        );
        for v in ["root", "prefix", "cmdpath", "grub_platform", "grub_cpu"] {
            env.export(v);
        }
        // normal mode's feature flags (grub-core/normal/main.c), all present.
        for f in [
            "feature_chainloader_bpb",
            "feature_ntldr",
            "feature_platform_search_hint",
            "feature_default_font_path",
            "feature_all_video_module",
            "feature_menuentry_id",
            "feature_menuentry_options",
            "feature_200_final",
            "feature_nativedisk_cmd",
            "feature_timeout_style",
        ] {
            env.set(f, "y");
            env.export(f);
        }
        Interp {
            vols,
            env,
            funcs: HashMap::new(),
            frames: Vec::new(),
            steps: 0,
            status: true,
            errors: Vec::new(),
            loc,
            line: 0,
            depth: 0,
            calls: 0,
            menu: Vec::new(),
            loaded: None,
            budget_reported: false,
            bls_read: BTreeSet::new(),
        }
    }

    fn error_at(&mut self, loc: &Loc, line: Option<u32>, message: String) {
        let volume = self
            .vols
            .get(loc.vol)
            .map_or_else(String::new, |v| v.name.to_string());
        self.errors.push(EntryError {
            volume,
            file: loc.path.clone(),
            line,
            message,
        });
    }

    fn error(&mut self, message: String) {
        let (loc, line) = (self.loc.clone(), self.line);
        self.error_at(&loc, Some(line), message);
    }

    fn debug(&self, message: &str) {
        let vol = self.vols.get(self.loc.vol).map_or("", |v| v.name);
        log::debug!("{vol}:{}:{}: {message}", self.loc.path, self.line);
    }

    /// Runs the file at `loc` (read, parsed, executed in the current environment).
    pub fn run_file(&mut self, loc: Loc) {
        let _ = self.source(loc);
    }

    fn read_script(&mut self, loc: &Loc) -> Option<Vec<Cmd>> {
        let fs = self.vols.get(loc.vol)?.fs;
        let bytes = match fs.read(&loc.path, MAX_CONFIG_BYTES) {
            Ok(b) => b,
            Err(e) => {
                let (l, line) = (self.loc.clone(), self.line);
                self.error_at(&l, (line > 0).then_some(line), e.to_string());
                return None;
            }
        };
        let (cmds, errs) = parse(&lex(&String::from_utf8_lossy(&bytes)));
        for e in errs {
            self.error_at(loc, Some(e.line), format!("syntax error: {}", e.message));
        }
        Some(cmds)
    }

    fn source(&mut self, loc: Loc) -> Flow {
        if self.depth >= MAX_SOURCE_DEPTH {
            self.error(format!(
                "{}: not read: source/configfile nested deeper than {MAX_SOURCE_DEPTH}",
                loc.path
            ));
            return Ok(false);
        }
        let Some(cmds) = self.read_script(&loc) else {
            return Ok(false);
        };
        let saved = (std::mem::replace(&mut self.loc, loc), self.line);
        self.depth += 1;
        let r = self.block(&cmds);
        self.depth -= 1;
        self.loc = saved.0;
        self.line = saved.1;
        r
    }

    fn block(&mut self, cmds: &[Cmd]) -> Flow {
        let mut ok = true;
        for c in cmds {
            ok = self.exec(c)?;
        }
        Ok(ok)
    }

    fn tick(&mut self) -> Result<(), Stop> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            if !self.budget_reported {
                self.budget_reported = true;
                self.error(format!("stopped after {MAX_STEPS} steps (a loop?)"));
            }
            return Err(Stop::Budget);
        }
        Ok(())
    }

    fn lookup(&self, name: &str) -> Option<String> {
        let frame = self.frames.last();
        match name {
            "#" => Some(frame.map_or(0, Vec::len).to_string()),
            "@" | "*" => Some(frame.map(|f| f.join(" ")).unwrap_or_default()),
            "?" => Some(if self.status { "0" } else { "1" }.to_string()),
            n if n.bytes().all(|b| b.is_ascii_digit()) => {
                let i: usize = n.parse().ok()?;
                if i == 0 {
                    return Some("grub".into());
                }
                frame.and_then(|f| f.get(i - 1)).cloned()
            }
            n => self.env.get(n).map(str::to_string),
        }
    }

    fn expand(&self, words: &[Word]) -> Vec<String> {
        let mut out = Vec::new();
        for w in words {
            expand_word(w, &|n| self.lookup(n), &mut out);
        }
        out
    }

    fn exec(&mut self, c: &Cmd) -> Flow {
        self.tick()?;
        let ok = match c {
            Cmd::Simple { words, line } => {
                self.line = *line;
                let argv = self.expand(words);
                if argv.is_empty() {
                    return Ok(self.status);
                }
                self.command(&argv)?
            }
            Cmd::If { arms, otherwise } => {
                let mut taken = None;
                for (cond, body) in arms {
                    if self.block(cond)? {
                        taken = Some(self.block(body)?);
                        break;
                    }
                }
                match taken {
                    Some(s) => s,
                    None => self.block(otherwise)?,
                }
            }
            Cmd::While { cond, body, until } => {
                let mut n = 0;
                let mut last = true;
                while self.block(cond)? != *until {
                    n += 1;
                    if n > MAX_LOOP {
                        self.error(format!("loop stopped after {MAX_LOOP} iterations"));
                        break;
                    }
                    last = self.block(body)?;
                }
                last
            }
            Cmd::For { var, items, body } => {
                let items = self.expand(items);
                let mut last = true;
                for it in items.iter().take(MAX_LOOP) {
                    self.tick()?;
                    self.env.set(var, it);
                    last = self.block(body)?;
                }
                last
            }
            Cmd::Function { name, body } => {
                self.funcs.insert(name.clone(), Rc::clone(body));
                true
            }
            Cmd::Menu {
                kind,
                args,
                body,
                line,
            } => {
                self.line = *line;
                let argv = self.expand(args);
                self.menu_item(*kind, &argv, body, *line)
            }
        };
        self.status = ok;
        Ok(ok)
    }

    fn menu_item(
        &mut self,
        kind: MenuKind,
        argv: &[String],
        body: &Rc<Vec<Cmd>>,
        line: u32,
    ) -> bool {
        if self.loaded.is_some() {
            self.debug("menu definitions inside an entry's block are not followed");
            return true;
        }
        let mut params = Vec::new();
        let mut id = None;
        let mut i = 0;
        let mut options_done = false;
        while i < argv.len() {
            let a = &argv[i];
            i += 1;
            if options_done || !a.starts_with("--") || a == "--" {
                if a == "--" && !options_done {
                    options_done = true;
                    continue;
                }
                params.push(a.clone());
                continue;
            }
            let (opt, inline) = match a.split_once('=') {
                Some((o, v)) => (o, Some(v.to_string())),
                None => (a.as_str(), None),
            };
            let takes_value = matches!(
                opt,
                "--class" | "--users" | "--hotkey" | "--id" | "--source"
            );
            let value = if takes_value {
                match inline {
                    Some(v) => Some(v),
                    None => {
                        i += 1;
                        argv.get(i - 1).cloned()
                    }
                }
            } else {
                None
            };
            match opt {
                "--id" => id = value,
                "--class" | "--users" | "--hotkey" | "--source" | "--unrestricted" => {}
                o => self.debug(&format!("menuentry option {o} ignored")),
            }
        }
        let Some(title) = params.first().cloned() else {
            self.error("menuentry without a title".into());
            return false;
        };
        if self.menu.len() >= MAX_ITEMS {
            self.error(format!(
                "more than {MAX_ITEMS} menu items; the rest are ignored"
            ));
            return false;
        }
        self.menu.push(Item {
            kind,
            title,
            id,
            params,
            body: Rc::clone(body),
            loc: self.loc.clone(),
            line,
        });
        true
    }

    fn command(&mut self, argv: &[String]) -> Flow {
        let name = argv[0].as_str();
        let args = &argv[1..];
        if let Some(body) = self.funcs.get(name).cloned() {
            if self.calls >= MAX_CALL_DEPTH {
                self.error(format!("{name}: calls nested deeper than {MAX_CALL_DEPTH}"));
                return Ok(false);
            }
            self.calls += 1;
            self.frames.push(args.to_vec());
            let r = self.block(&body);
            self.frames.pop();
            self.calls -= 1;
            return r;
        }
        Ok(match name {
            "set" => match args.first() {
                None => true,
                Some(a) => match a.split_once('=') {
                    Some((k, v)) => {
                        self.env.set(k, v);
                        true
                    }
                    None => {
                        self.debug(&format!("set {a}: not an assignment"));
                        false
                    }
                },
            },
            "unset" => {
                for a in args {
                    self.env.vars.remove(a);
                }
                true
            }
            "export" => {
                for a in args {
                    self.env.export(a);
                }
                true
            }
            "setparams" => {
                match self.frames.last_mut() {
                    Some(f) => *f = args.to_vec(),
                    None => self.frames.push(args.to_vec()),
                }
                true
            }
            "shift" => {
                if let Some(f) = self.frames.last_mut() {
                    if !f.is_empty() {
                        f.remove(0);
                    }
                }
                true
            }
            "true" => true,
            "false" => false,
            "[" => {
                if args.last().map(String::as_str) != Some("]") {
                    self.debug("'[' without ']'");
                    false
                } else {
                    self.test(&args[..args.len() - 1])
                }
            }
            "test" => self.test(args),
            "search" | "search.fs_uuid" | "search.fs_label" | "search.file" => {
                self.search(name, args)
            }
            "probe" => self.probe(args),
            "load_env" => self.load_env(args),
            "source" | "." => match args.first() {
                Some(f) => match self.resolve(f) {
                    Ok(loc) => return self.source(loc),
                    Err(e) => {
                        self.error(format!("source {f}: {e}"));
                        false
                    }
                },
                None => false,
            },
            "configfile" | "normal" => return self.configfile(args),
            "blscfg" | "bls_import" => self.blscfg(args),
            "linux" | "linuxefi" | "linux16" => self.linux(name, args),
            "initrd" | "initrdefi" | "initrd16" => self.initrd(args),
            "devicetree" => self.devicetree(args),
            "multiboot" | "multiboot2" | "module" | "module2" | "chainloader" | "kfreebsd"
            | "knetbsd" | "kopenbsd" | "appleloader" | "xnu_kernel" | "xnu_kernel64"
            | "legacy_kernel" | "ntldr" | "freedos" | "truecrypt" => {
                if let Some(l) = self.loaded.as_mut() {
                    if l.unusable.is_none() {
                        l.unusable = Some(format!("'{name}' cannot be started with kexec"));
                    }
                }
                true
            }
            "regexp" => {
                self.debug("regexp is not evaluated; taken as not matching");
                false
            }
            "keystatus" => false,
            n if HARMLESS.contains(&n) => true,
            n => {
                // GRUB's bare assignment: NAME=VALUE as the whole command.
                if let Some((k, v)) = n.split_once('=') {
                    if args.is_empty()
                        && !k.is_empty()
                        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    {
                        self.env.set(k, v);
                        return Ok(true);
                    }
                }
                self.debug(&format!("unknown command {n:?} skipped"));
                false
            }
        })
    }

    /// The volume index of GRUB device `dev` (without parentheses); empty means `$root`.
    fn find_device(&self, dev: &str) -> Option<usize> {
        if dev.is_empty() {
            let root = self.env.get("root").unwrap_or("");
            if root.is_empty() {
                return Some(self.loc.vol);
            }
            let root = root.trim_start_matches('(').trim_end_matches(')');
            if root.is_empty() {
                return Some(self.loc.vol);
            }
            // `$root` naming no known volume (a `search` that found nothing, a disk
            // position leapboot cannot know): the config's own volume, as a way forward.
            return self.find_device(root).or_else(|| {
                self.debug(&format!(
                    "root device {root:?} not found; using the config's own volume"
                ));
                Some(self.loc.vol)
            });
        }
        if let Some((d, p)) = parse_hd(dev) {
            if let Some(i) = self
                .vols
                .iter()
                .position(|v| v.grub_position == Some((d, p)))
            {
                return Some(i);
            }
        }
        self.vols.iter().position(|v| v.name == dev).or_else(|| {
            self.vols
                .iter()
                .position(|v| v.uuid.is_some_and(|u| u.eq_ignore_ascii_case(dev)))
        })
    }

    /// Resolves a GRUB file name (`/p`, `(dev)/p`, `()/p`) to a volume and path.
    fn resolve(&self, name: &str) -> Result<Loc, String> {
        let (dev, path) = if let Some(rest) = name.strip_prefix('(') {
            match rest.split_once(')') {
                Some((d, p)) => (d, p),
                None => return Err(format!("{name:?}: unterminated device name")),
            }
        } else {
            ("", name)
        };
        if path.is_empty() {
            return Err(format!("{name:?}: no file name after the device"));
        }
        let vol = self.find_device(dev).ok_or_else(|| {
            let d = if dev.is_empty() {
                self.env.get("root").unwrap_or("").to_string()
            } else {
                dev.to_string()
            };
            format!("{name:?}: device {d:?} not found")
        })?;
        Ok(Loc {
            vol,
            path: crate::fs::normalize(path),
        })
    }

    fn file_ref(&self, loc: &Loc) -> FileRef {
        FileRef {
            volume: self
                .vols
                .get(loc.vol)
                .map_or_else(String::new, |v| v.name.to_string()),
            path: loc.path.clone(),
        }
    }

    fn test(&mut self, args: &[String]) -> bool {
        let mut pos = 0;
        self.test_or(args, &mut pos, 0)
    }

    fn test_or(&mut self, a: &[String], pos: &mut usize, depth: usize) -> bool {
        let mut r = self.test_and(a, pos, depth);
        while a.get(*pos).map(String::as_str) == Some("-o") {
            *pos += 1;
            let rhs = self.test_and(a, pos, depth);
            r = r || rhs;
        }
        r
    }

    fn test_and(&mut self, a: &[String], pos: &mut usize, depth: usize) -> bool {
        let mut r = self.test_not(a, pos, depth);
        while a.get(*pos).map(String::as_str) == Some("-a") {
            *pos += 1;
            let rhs = self.test_not(a, pos, depth);
            r = r && rhs;
        }
        r
    }

    fn test_not(&mut self, a: &[String], pos: &mut usize, depth: usize) -> bool {
        let mut neg = false;
        while a.get(*pos).map(String::as_str) == Some("!") && *pos + 1 < a.len() {
            neg = !neg;
            *pos += 1;
        }
        self.test_primary(a, pos, depth) != neg
    }

    fn test_primary(&mut self, a: &[String], pos: &mut usize, depth: usize) -> bool {
        let Some(first) = a.get(*pos) else {
            return false;
        };
        if first == "(" && depth < 16 {
            *pos += 1;
            let r = self.test_or(a, pos, depth + 1);
            if a.get(*pos).map(String::as_str) == Some(")") {
                *pos += 1;
            }
            return r;
        }
        if let (Some(op), Some(rhs)) = (a.get(*pos + 1), a.get(*pos + 2)) {
            let num = |s: &str| -> i64 {
                let t = s.trim();
                let (neg, digits) = match t.strip_prefix('-') {
                    Some(d) => (true, d),
                    None => (false, t),
                };
                let end = digits
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(digits.len());
                let n: i64 = digits[..end].parse().unwrap_or(0);
                if neg {
                    -n
                } else {
                    n
                }
            };
            let r = match op.as_str() {
                "=" | "==" => Some(first == rhs),
                "!=" => Some(first != rhs),
                "<" => Some(first < rhs),
                "<=" => Some(first <= rhs),
                ">" => Some(first > rhs),
                ">=" => Some(first >= rhs),
                "-eq" => Some(num(first) == num(rhs)),
                "-ne" => Some(num(first) != num(rhs)),
                "-lt" => Some(num(first) < num(rhs)),
                "-le" => Some(num(first) <= num(rhs)),
                "-gt" => Some(num(first) > num(rhs)),
                "-ge" => Some(num(first) >= num(rhs)),
                "-nt" | "-ot" => Some(false),
                _ => None,
            };
            if let Some(r) = r {
                *pos += 3;
                return r;
            }
        }
        if let Some(arg) = a.get(*pos + 1) {
            let r = match first.as_str() {
                "-n" => Some(!arg.is_empty()),
                "-z" => Some(arg.is_empty()),
                "-e" | "-f" | "-d" | "-s" => Some(self.file_test(first, arg)),
                _ => None,
            };
            if let Some(r) = r {
                *pos += 2;
                return r;
            }
        }
        *pos += 1;
        !first.is_empty()
    }

    fn file_test(&self, op: &str, name: &str) -> bool {
        // `(dev)` alone: whether the device exists.
        if let Some(dev) = name.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
            return op == "-e" && self.find_device(dev).is_some();
        }
        let Ok(loc) = self.resolve(name) else {
            return false;
        };
        let Some(v) = self.vols.get(loc.vol) else {
            return false;
        };
        match v.fs.metadata(&loc.path) {
            Ok(m) => match op {
                "-f" => m.kind == FileKind::File,
                "-d" => m.kind == FileKind::Dir,
                "-s" => m.kind == FileKind::Dir || m.len > 0,
                _ => true,
            },
            Err(_) => false,
        }
    }

    fn search(&mut self, cmd: &str, args: &[String]) -> bool {
        #[derive(PartialEq)]
        enum By {
            Uuid,
            Label,
            File,
        }
        let mut by = match cmd {
            "search.fs_uuid" => Some(By::Uuid),
            "search.fs_label" => Some(By::Label),
            "search.file" => Some(By::File),
            _ => None,
        };
        let legacy = by.is_some();
        let mut var: Option<String> = None;
        let mut pos: Vec<&str> = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let a = args[i].as_str();
            i += 1;
            match a {
                "--fs-uuid" | "-u" => by = Some(By::Uuid),
                "--label" | "-l" => by = Some(By::Label),
                "--file" | "-f" => by = Some(By::File),
                "--set" | "-s" => {
                    // `--set VAR KEY`: GRUB proper only takes `--set=VAR`; accept the
                    // spaced form when a key still follows.
                    let next_is_var = args.get(i).is_some_and(|n| {
                        !n.starts_with('-')
                            && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    }) && args[i + 1..].iter().any(|n| !n.starts_with('-'));
                    if next_is_var {
                        var = Some(args[i].clone());
                        i += 1;
                    } else {
                        var = Some("root".into());
                    }
                }
                a if a.starts_with("--set=") => var = Some(a["--set=".len()..].to_string()),
                a if a.starts_with("--hint") => {
                    if !a.contains('=') {
                        i += 1;
                    }
                }
                a if a.starts_with('-') && a.len() > 1 => {}
                a => pos.push(a),
            }
        }
        if legacy && var.is_none() {
            var = Some(pos.get(1).map_or("root", |v| *v).to_string());
        }
        let Some(key) = pos.first().copied() else {
            self.debug("search without a name");
            return false;
        };
        let Some(by) = by else {
            self.debug("search without --fs-uuid, --label or --file: unspecified search type");
            return false;
        };
        let hit = self.vols.iter().position(|v| match by {
            By::Uuid => v.uuid.is_some_and(|u| u.eq_ignore_ascii_case(key)),
            By::Label => v.label == Some(key),
            By::File => v.fs.exists(key),
        });
        match hit {
            Some(h) => {
                if let Some(var) = var {
                    let name = device_name(&self.vols[h]);
                    self.env.set(&var, &name);
                }
                true
            }
            None => {
                self.debug(&format!("search: no volume has {key:?}"));
                false
            }
        }
    }

    fn probe(&mut self, args: &[String]) -> bool {
        let mut var = None;
        let mut what = None;
        let mut dev = None;
        let mut i = 0;
        while i < args.len() {
            let a = args[i].as_str();
            i += 1;
            match a {
                "--set" | "-s" => {
                    var = args.get(i).cloned();
                    i += 1;
                }
                a if a.starts_with("--set=") => var = Some(a["--set=".len()..].to_string()),
                "--fs-uuid" | "-u" | "--label" | "-l" | "--fs" | "-f" | "--part-uuid" => {
                    what = Some(a.to_string())
                }
                a => dev = Some(a.trim_start_matches('(').trim_end_matches(')').to_string()),
            }
        }
        let (Some(dev), Some(what)) = (dev, what) else {
            return false;
        };
        let Some(v) = self.find_device(&dev).and_then(|i| self.vols.get(i)) else {
            return false;
        };
        let value = match what.as_str() {
            "--fs-uuid" | "-u" => v.uuid,
            "--label" | "-l" => v.label,
            "--part-uuid" => v.part_uuid,
            _ => None,
        };
        match (value, var) {
            (Some(val), Some(var)) => {
                let val = val.to_string();
                self.env.set(&var, &val);
                true
            }
            (Some(_), None) => true,
            _ => false,
        }
    }

    fn load_env(&mut self, args: &[String]) -> bool {
        let mut file = None;
        let mut names = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let a = args[i].as_str();
            i += 1;
            match a {
                "-f" | "--file" => {
                    file = args.get(i).cloned();
                    i += 1;
                }
                a if a.starts_with("--file=") => file = Some(a["--file=".len()..].to_string()),
                "-s" | "--skip-sig" => {}
                a => names.push(a.to_string()),
            }
        }
        let file = file.unwrap_or_else(|| {
            format!("{}/grubenv", self.env.get("prefix").unwrap_or("/boot/grub"))
        });
        let loc = match self.resolve(&file) {
            Ok(l) => l,
            Err(e) => {
                self.debug(&format!("load_env: {e}"));
                return false;
            }
        };
        let Some(fs) = self.vols.get(loc.vol).map(|v| v.fs) else {
            return false;
        };
        match grubenv::load(fs, Some(&loc.path)) {
            Some(vars) => {
                for (k, v) in vars {
                    if names.is_empty() || names.contains(&k) {
                        self.env.set(&k, &v);
                    }
                }
                true
            }
            None => {
                self.debug(&format!("load_env: {file}: no environment block"));
                false
            }
        }
    }

    fn configfile(&mut self, args: &[String]) -> Flow {
        let Some(f) = args.first() else {
            return Ok(false);
        };
        if self.loaded.is_some() {
            if let Some(l) = self.loaded.as_mut() {
                l.unusable
                    .get_or_insert_with(|| "it opens another menu (configfile)".into());
            }
            return Ok(true);
        }
        let loc = match self.resolve(f) {
            Ok(l) => l,
            Err(e) => {
                self.error(format!("configfile {f}: {e}"));
                return Ok(false);
            }
        };
        // A new context with a new menu that replaces this one.
        let fresh = self.env.exported_only();
        let old_env = std::mem::replace(&mut self.env, fresh);
        let old_menu = std::mem::take(&mut self.menu);
        self.source(loc)?;
        if self.menu.is_empty() {
            // Nothing to show: GRUB would come back to the old menu.
            self.env = old_env;
            self.menu = old_menu;
            return Ok(false);
        }
        Err(Stop::Replaced)
    }

    fn blscfg(&mut self, args: &[String]) -> bool {
        if self.loaded.is_some() {
            return true;
        }
        let only = args
            .first()
            .filter(|a| *a != "default" && *a != "non-default")
            .cloned();
        let Some(vol) = self.find_device("") else {
            self.error(format!(
                "blscfg: root device {:?} not found",
                self.env.get("root").unwrap_or("")
            ));
            return false;
        };
        let fs = self.vols[vol].fs;
        self.bls_read.insert(vol);
        let dirs: Vec<String> = match self.env.get("blsdir") {
            Some(d) => vec![d.to_string()],
            None => vec!["/loader/entries".into(), "/boot/loader/entries".into()],
        };
        let Some((dir, files)) = dirs
            .iter()
            .find_map(|d| fs.read_dir(d).ok().map(|f| (d.clone(), f)))
        else {
            self.debug("blscfg: no BLS entries directory");
            return true;
        };
        let mut parsed = Vec::new();
        for f in files
            .iter()
            .filter(|f| f.kind == FileKind::File)
            .take(MAX_BLS)
        {
            let Some(stem) = f.name.strip_suffix(".conf") else {
                continue;
            };
            let path = crate::fs::normalize(&format!("{dir}/{}", f.name));
            let text = match fs.read(&path, MAX_CONFIG_BYTES) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => {
                    self.error_at(&Loc { vol, path }, None, e.to_string());
                    continue;
                }
            };
            match bls::parse_entry(stem, &text) {
                Ok((e, _)) => parsed.push((e, path)),
                Err((line, msg)) => self.error_at(&Loc { vol, path }, line, msg),
            }
        }
        parsed.sort_by(|a, b| bls::compare(&a.0, &b.0));
        for (e, path) in parsed {
            if only.as_deref().is_some_and(|o| o != e.stem) {
                continue;
            }
            let get = |n: &str| self.lookup(n);
            let options = if e.options.is_empty() {
                expand_val(self.env.get("default_kernelopts").unwrap_or(""), &get)
            } else {
                expand_val(&e.options.join(" "), &get)
            };
            let linux = e.linux.clone().unwrap_or_default();
            let mut src = format!("linux ($root){linux}");
            if !options.is_empty() {
                src.push(' ');
                src.push_str(&options);
            }
            src.push('\n');
            if !e.initrd.is_empty() {
                src.push_str("initrd");
                for i in &e.initrd {
                    src.push_str(" ($root)");
                    src.push_str(i);
                }
                src.push('\n');
            }
            if let Some(dt) = &e.devicetree {
                src.push_str(&format!("devicetree ($root){}\n", expand_val(dt, &get)));
            }
            let (body, errs) = parse(&lex(&src));
            let loc = Loc { vol, path };
            for er in errs {
                self.error_at(
                    &loc,
                    Some(e.linux_line),
                    format!("syntax error: {}", er.message),
                );
            }
            let title = e.title.clone().unwrap_or_else(|| linux.clone());
            if self.menu.len() >= MAX_ITEMS {
                break;
            }
            self.menu.push(Item {
                kind: MenuKind::Entry,
                title: title.clone(),
                id: Some(e.stem.clone()),
                params: vec![title],
                body: Rc::new(body),
                loc,
                line: e.linux_line,
            });
        }
        true
    }

    fn linux(&mut self, name: &str, args: &[String]) -> bool {
        if self.loaded.is_none() {
            self.debug(&format!("{name} outside a menu entry ignored"));
            return true;
        }
        let Some(path) = args.first() else {
            self.error(format!("{name} without a file"));
            return false;
        };
        match self.resolve(path) {
            Ok(loc) => {
                let f = self.file_ref(&loc);
                if let Some(l) = self.loaded.as_mut() {
                    l.linux = Some((f, path.clone(), args[1..].to_vec()));
                    l.initrds.clear();
                }
                true
            }
            Err(e) => {
                self.error(format!("{name}: {e}"));
                false
            }
        }
    }

    fn initrd(&mut self, args: &[String]) -> bool {
        if self.loaded.is_none() {
            return true;
        }
        let mut files = Vec::new();
        for a in args {
            if a.starts_with("--") {
                continue;
            }
            // newc:NAME:PATH puts PATH into the cpio under NAME.
            let p = match a.strip_prefix("newc:") {
                Some(r) => r.split_once(':').map_or(r, |(_, p)| p),
                None => a,
            };
            match self.resolve(p) {
                Ok(loc) => files.push(self.file_ref(&loc)),
                Err(e) => {
                    self.error(format!("initrd: {e}"));
                    return false;
                }
            }
        }
        if let Some(l) = self.loaded.as_mut() {
            l.initrds = files;
        }
        true
    }

    fn devicetree(&mut self, args: &[String]) -> bool {
        if self.loaded.is_none() {
            return true;
        }
        let Some(p) = args.first() else {
            return false;
        };
        match self.resolve(p) {
            Ok(loc) => {
                let f = self.file_ref(&loc);
                if let Some(l) = self.loaded.as_mut() {
                    l.devicetree = Some(f);
                }
                true
            }
            Err(e) => {
                self.error(format!("devicetree: {e}"));
                false
            }
        }
    }

    /// Runs a menu entry's block in `env` (a copy of the environment the menu was shown in)
    /// and returns what it loaded.
    pub fn run_entry(&mut self, item: &Item, env: &Env) -> Loaded {
        self.env = env.clone();
        self.loaded = Some(Loaded::default());
        let saved = (
            std::mem::replace(&mut self.loc, item.loc.clone()),
            self.line,
        );
        self.line = item.line;
        self.frames.push(item.params.clone());
        let _ = self.block(&item.body);
        self.frames.pop();
        self.loc = saved.0;
        self.line = saved.1;
        self.loaded.take().unwrap_or_default()
    }

    /// Runs a submenu's block in a new context made from `env`; returns its items and the
    /// environment they run in.
    pub fn run_submenu(&mut self, item: &Item, env: &Env) -> (Vec<Item>, Env) {
        self.env = env.exported_only();
        let outer = std::mem::take(&mut self.menu);
        let saved = (
            std::mem::replace(&mut self.loc, item.loc.clone()),
            self.line,
        );
        self.frames.push(item.params.clone());
        let _ = self.block(&item.body);
        self.frames.pop();
        self.loc = saved.0;
        self.line = saved.1;
        let items = std::mem::replace(&mut self.menu, outer);
        (items, self.env.clone())
    }

    /// Reports an error located at an item's definition.
    pub fn item_error(&mut self, item: &Item, message: String) {
        self.error_at(&item.loc, Some(item.line), message);
    }

    /// Whether the step budget is spent.
    pub fn exhausted(&self) -> bool {
        self.steps > MAX_STEPS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str, vars: &[(&str, &str)]) -> Vec<String> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        script_words(text, &|n| vars.get(n).cloned())
    }

    #[test]
    fn expansion_splits_unquoted_values_only() {
        let v = [("a", "x y"), ("e", ""), ("s", " p q ")];
        assert_eq!(words("$a", &v), ["x", "y"]);
        assert_eq!(words("\"$a\"", &v), ["x y"]);
        assert_eq!(words("k=$a", &v), ["k=x", "y"]);
        assert_eq!(words("$e", &v), Vec::<String>::new());
        assert_eq!(words("\"$e\"", &v), [""]);
        assert_eq!(words("a${s}b", &v), ["a", "p", "q", "b"]);
        assert_eq!(words("x$unset", &v), ["x"]);
    }

    #[test]
    fn loader_cmdline_quotes_like_grub() {
        let a = |v: &[&str]| loader_cmdline(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(a(&["BOOT_IMAGE=/k", "ro"]), "BOOT_IMAGE=/k ro");
        assert_eq!(a(&["x=a b"]), "\"x=a b\"");
        assert_eq!(a(&["q=\\x20"]), "q=\\x20");
    }

    #[test]
    fn expand_val_like_blscfg() {
        let get = |n: &str| (n == "k").then(|| "root=/dev/x ro".to_string());
        assert_eq!(
            expand_val("$k quiet ${k} $none$", &get),
            "root=/dev/x ro quiet root=/dev/x ro $"
        );
        assert_eq!(expand_val("${k", &get), "${k");
    }

    #[test]
    fn hd_names() {
        assert_eq!(parse_hd("hd0,gpt2"), Some((0, 2)));
        assert_eq!(parse_hd("hd1,msdos5"), Some((1, 5)));
        assert_eq!(parse_hd("hd3,1"), Some((3, 1)));
        assert_eq!(parse_hd("hd2"), Some((2, 0)));
        assert_eq!(parse_hd("hdx"), None);
        assert_eq!(parse_hd("cd0"), None);
    }
}
