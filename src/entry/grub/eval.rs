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

mod commands;
mod devices;
mod test_expr;
mod words;

pub use devices::device_name;
use words::expand_word;
pub use words::{expand_val, loader_cmdline, script_words};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use super::lexer::{lex, Word};
use super::parse::{parse, Cmd, MenuKind};
use crate::entry::{EntryError, FileRef, VolumeView};
use crate::fs::MAX_CONFIG_BYTES;

/// Commands (and loop iterations) one configuration may run, menu entries included.
pub const MAX_STEPS: u64 = 50_000;
/// Work one configuration may do beyond its steps, in bytes: bytes lexed (each file once:
/// parsed files are cached), word parts expanded and bytes they produced, BLS files read by
/// `blscfg`. Commands are cheap to count but not to run; this is what their running costs.
pub const MAX_WORK: u64 = 32 << 20;
/// Steps between two looks at the clock (the scan's wall-clock budget, [`crate::budget`]).
const CLOCK_EVERY: u64 = 256;
/// `source`/`configfile` nest at most this deep.
pub const MAX_SOURCE_DEPTH: usize = 10;
/// Function calls nest at most this deep.
pub const MAX_CALL_DEPTH: usize = 32;
/// One loop runs at most this many times.
pub const MAX_LOOP: usize = 1000;
/// One menu holds at most this many items.
pub const MAX_ITEMS: usize = 1024;
/// A variable value is cut at this length.
pub const MAX_VALUE: usize = 4 * 1024;
/// A command's expanded words hold at most this many bytes together.
pub const MAX_ARGV_BYTES: usize = 64 * 1024;
/// All variables of one context together hold at most this many bytes; a `set` beyond is
/// ignored (each menu entry runs on a copy of the environment).
pub const MAX_ENV_BYTES: usize = 128 * 1024;
/// At most this many errors are reported per config (a loop must not flood the console).
pub const MAX_ERRORS: usize = 64;
/// BLS entries `blscfg` reads from one directory.
const MAX_BLS: usize = 1024;
/// Different files one configuration may source (each read and parsed once).
const MAX_PARSED_FILES: usize = 64;

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
    bytes: usize,
}

impl Env {
    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Sets `name`; `false` if the environment is full ([`MAX_ENV_BYTES`]). `root` loses
    /// surrounding parentheses, as GRUB's write hook does.
    pub fn set(&mut self, name: &str, value: &str) -> bool {
        let value = match (
            name,
            value.strip_prefix('(').and_then(|v| v.strip_suffix(')')),
        ) {
            ("root", Some(inner)) => inner,
            _ => value,
        };
        let mut cut = value.len().min(MAX_VALUE);
        while !value.is_char_boundary(cut) {
            cut -= 1;
        }
        let value = &value[..cut];
        let old = self.vars.get(name).map_or(0, |v| name.len() + v.len());
        let new = name.len() + value.len();
        if self.bytes - old + new > MAX_ENV_BYTES {
            log::debug!("grub: variable {name} not set: the environment is full");
            return false;
        }
        self.bytes = self.bytes - old + new;
        self.vars.insert(name.to_string(), value.to_string());
        true
    }

    fn unset(&mut self, name: &str) {
        if let Some(v) = self.vars.remove(name) {
            self.bytes -= name.len() + v.len();
        }
    }

    /// Marks `name` exported (submenus and `configfile` see it).
    pub fn export(&mut self, name: &str) {
        // Names are words of the config; bounded so a loop cannot grow the set forever.
        if name.len() <= 256 && self.exported.len() < 4096 {
            self.exported.insert(name.to_string());
        }
    }

    /// What a new context (submenu, configfile) starts with: the exported variables.
    fn exported_only(&self) -> Env {
        let vars: BTreeMap<String, String> = self
            .vars
            .iter()
            .filter(|(k, _)| self.exported.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Env {
            bytes: vars.iter().map(|(k, v)| k.len() + v.len()).sum(),
            vars,
            exported: self.exported.clone(),
        }
    }
}

/// A file location: volume index and path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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
    /// Work done so far ([`MAX_WORK`]).
    work: u64,
    /// The scan's wall-clock budget ran out.
    late: bool,
    /// The clock is not looked at (the menu phase, [`Interp::start_menu`]).
    clockless: bool,
    /// Files read and parsed once: `source` of the same file (even of itself) reuses them.
    parsed: HashMap<Loc, Rc<Vec<Cmd>>>,
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
    menu_full_reported: bool,
    calls_reported: bool,
    /// Volumes whose BLS entries `blscfg` read.
    pub bls_read: BTreeSet<usize>,
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
            work: 0,
            late: false,
            clockless: false,
            parsed: HashMap::new(),
            status: true,
            errors: Vec::new(),
            loc,
            line: 0,
            depth: 0,
            calls: 0,
            menu: Vec::new(),
            loaded: None,
            budget_reported: false,
            menu_full_reported: false,
            calls_reported: false,
            bls_read: BTreeSet::new(),
        }
    }

    fn error_at(&mut self, loc: &Loc, line: Option<u32>, message: String) {
        let volume = self
            .vols
            .get(loc.vol)
            .map_or_else(String::new, |v| v.name.to_string());
        if self.errors.len() > MAX_ERRORS {
            return;
        }
        let message = if self.errors.len() == MAX_ERRORS {
            format!("{message} (and further errors, not reported)")
        } else {
            message
        };
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

    fn read_script(&mut self, loc: &Loc) -> Option<Rc<Vec<Cmd>>> {
        if let Some(cmds) = self.parsed.get(loc) {
            let cmds = Rc::clone(cmds);
            self.spend(cmds.len() as u64);
            return Some(cmds);
        }
        if self.parsed.len() >= MAX_PARSED_FILES {
            self.error(format!(
                "{}: not read: more than {MAX_PARSED_FILES} files sourced",
                loc.path
            ));
            return None;
        }
        let fs = self.vols.get(loc.vol)?.fs;
        let bytes = match fs.read(&loc.path, MAX_CONFIG_BYTES) {
            Ok(b) => b,
            Err(e) => {
                let (l, line) = (self.loc.clone(), self.line);
                self.error_at(&l, (line > 0).then_some(line), e.to_string());
                return None;
            }
        };
        self.spend(bytes.len() as u64);
        let (cmds, errs) = parse(&lex(&String::from_utf8_lossy(&bytes)));
        for e in errs {
            self.error_at(loc, Some(e.line), format!("syntax error: {}", e.message));
        }
        let cmds = Rc::new(cmds);
        self.parsed.insert(loc.clone(), Rc::clone(&cmds));
        Some(cmds)
    }

    /// Charges `n` units of work; once [`MAX_WORK`] is spent the next step stops the script.
    pub(super) fn spend(&mut self, n: u64) {
        self.work = self.work.saturating_add(n);
    }

    /// Whether the work budget, the step budget or the scan's clock is spent.
    pub(super) fn over_budget(&self) -> bool {
        self.work > MAX_WORK || self.steps > MAX_STEPS || self.late
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
        if self.steps % CLOCK_EVERY == 0 && !self.clockless && crate::budget::expired() {
            self.late = true;
        }
        if self.over_budget() {
            if !self.budget_reported {
                self.budget_reported = true;
                let why = if self.late {
                    "the scan's time budget ran out".to_string()
                } else if self.work > MAX_WORK {
                    format!("its work exceeded {MAX_WORK} bytes lexed and expanded")
                } else {
                    format!("{MAX_STEPS} steps (a loop?)")
                };
                self.error(format!("stopped: {why}; the menu so far is kept"));
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

    /// Expands a command's words; the result is cut at [`MAX_ARGV_BYTES`] (a line of many
    /// `$big` words must not become gigabytes).
    fn expand(&mut self, words: &[Word]) -> Vec<String> {
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut parts = 0;
        for w in words {
            let from = out.len();
            parts += w.parts.len();
            expand_word(w, &|n| self.lookup(n), &mut out);
            bytes += out[from..].iter().map(String::len).sum::<usize>();
            if bytes > MAX_ARGV_BYTES {
                self.debug("command line expanded beyond its bound; the rest is dropped");
                out.truncate(from);
                break;
            }
        }
        self.spend((parts + bytes) as u64);
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
            if !std::mem::replace(&mut self.menu_full_reported, true) {
                self.error(format!(
                    "more than {MAX_ITEMS} menu items; the rest are ignored"
                ));
            }
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
                if !std::mem::replace(&mut self.calls_reported, true) {
                    self.error(format!("{name}: calls nested deeper than {MAX_CALL_DEPTH}"));
                }
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
                    Some((k, v)) => self.env.set(k, v),
                    None => {
                        self.debug(&format!("set {a}: not an assignment"));
                        false
                    }
                },
            },
            "unset" => {
                for a in args {
                    self.env.unset(a);
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
                        return Ok(self.env.set(k, v));
                    }
                }
                self.debug(&format!("unknown command {n:?} skipped"));
                false
            }
        })
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

    /// The script has run; what follows is running the menu's entries (each block once, as
    /// GRUB does when it is chosen). That phase gets fresh step and work budgets and no
    /// clock, so a script stopped by a budget still lists the menu it built; it is bounded
    /// by [`MAX_ITEMS`] entries and those budgets.
    pub fn start_menu(&mut self) {
        self.steps = 0;
        self.work = 0;
        self.late = false;
        self.clockless = true;
        self.budget_reported = false;
    }

    /// Whether the step, work or time budget is spent.
    pub fn exhausted(&self) -> bool {
        self.over_budget()
    }
}
