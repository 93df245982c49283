//! The syslinux configuration language, read line by line into labels and global settings.
//!
//! Pure: files come from a caller-supplied reader (`INCLUDE` targets too), nothing is resolved
//! against a disk and nothing is decided about what boots (that is [`super::build`]). What is
//! understood follows syslinux's own reader (`ldlinux` / `menu.c32`): keywords are matched
//! case-insensitively and must be followed by white space or the end of the line; anything
//! unknown is ignored, as syslinux does; `INCLUDE` and `MENU INCLUDE` splice the file in place;
//! `TEXT HELP` … `ENDTEXT` blocks are skipped; `MENU BEGIN`/`MENU END` open and close submenus.
//!
//! Bounded: at most [`MAX_INCLUDE_DEPTH`] nested includes, [`MAX_FILES`] files read in all,
//! [`MAX_MENU_DEPTH`] nested submenus and [`MAX_LABELS`] labels. No recursion: includes are an
//! explicit stack.

use std::rc::Rc;

use crate::budget::MAX_CMDLINE;

/// Deepest `INCLUDE` nesting followed (the main file is depth 0).
pub const MAX_INCLUDE_DEPTH: usize = 8;
/// Most files read for one configuration, the main file included (bounds include fan-out).
pub const MAX_FILES: usize = 64;
/// Deepest `MENU BEGIN` nesting whose titles are kept.
pub const MAX_MENU_DEPTH: usize = 8;
/// Most labels kept from one configuration.
pub const MAX_LABELS: usize = 1024;

/// Where something was written: file and 1-based line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loc {
    /// Volume-absolute path of the file.
    pub file: String,
    /// 1-based line.
    pub line: u32,
}

/// One `LABEL` block as written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Label {
    /// The label's name (what `DEFAULT` and `ONTIMEOUT` refer to; case-sensitive).
    pub name: String,
    /// Where `LABEL` was.
    pub loc: Loc,
    /// The boot keyword (lower case: `kernel`, `linux`, `com32`, `localboot`, `config`, …) and
    /// its argument, if the label has one.
    pub boot: Option<(String, String)>,
    /// The label's own `APPEND`.
    pub append: Option<String>,
    /// The global `APPEND` in force when the label ended (used when it has none of its own):
    /// shared with every other label, not copied (1024 labels under one large global
    /// `APPEND` were 1024 copies).
    pub global_append: Option<Rc<str>>,
    /// `INITRD`.
    pub initrd: Option<String>,
    /// `FDT` / `DEVICETREE`.
    pub fdt: Option<String>,
    /// `FDTDIR` / `DEVICETREEDIR`.
    pub fdtdir: Option<String>,
    /// `MENU LABEL`, verbatim (with `^` hotkey markers).
    pub menu_label: Option<String>,
    /// `MENU DEFAULT`.
    pub menu_default: bool,
    /// `MENU HIDE`.
    pub hidden: bool,
    /// `MENU DISABLE`, `MENU EXIT`, `MENU QUIT` or `MENU GOTO`: a menu action, not a boot.
    pub not_bootable: bool,
    /// Titles of the submenus holding the label, outermost first.
    pub menu_path: Vec<String>,
}

/// A whole configuration: labels in file order and the global settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Labels in the order they were written (includes spliced in place).
    pub labels: Vec<Label>,
    /// Last `DEFAULT` (a label name or a kernel command line).
    pub default: Option<(String, Loc)>,
    /// Last `ONTIMEOUT`.
    pub ontimeout: Option<(String, Loc)>,
    /// A `UI` module was named.
    pub ui: bool,
    /// Last `PROMPT` value.
    pub prompt: Option<bool>,
    /// Last `IMPLICIT` value (`IMPLICIT 0`: only labels boot, not kernel command lines).
    pub implicit: Option<bool>,
    /// Last `TIMEOUT`, in tenths of a second.
    pub timeout: Option<u32>,
    /// Last `TOTALTIMEOUT`, in tenths of a second.
    pub total_timeout: Option<u32>,
    /// The global `APPEND` at the end of the configuration.
    pub global_append: Option<Rc<str>>,
    /// Problems: location (line 0 when the file as a whole is meant) and message.
    pub problems: Vec<(Loc, String)>,
}

/// Joins `path` to the working directory `dir` unless it is absolute; normalised, never
/// leaving the volume.
pub fn resolve(dir: &str, path: &str) -> String {
    if path.starts_with('/') {
        crate::fs::normalize(path)
    } else {
        crate::fs::normalize(&format!("{dir}/{path}"))
    }
}

/// Splits `line` into its first word (the keyword) and the trimmed rest.
fn split_word(line: &str) -> (&str, &str) {
    let line = line.trim_start();
    match line.find(|c: char| c.is_ascii_whitespace()) {
        Some(i) => (&line[..i], line[i..].trim()),
        None => (line, ""),
    }
}

struct Frame {
    file: String,
    text: String,
    pos: usize,
    line: u32,
    /// `MENU INCLUDE file tag`: the file is a submenu closed when it ends.
    closes_menu: bool,
}

impl Frame {
    fn next_line(&mut self) -> Option<(u32, &str)> {
        if self.pos >= self.text.len() {
            return None;
        }
        let rest = &self.text[self.pos..];
        let (line, used) = match rest.find('\n') {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += used;
        self.line = self.line.saturating_add(1);
        Some((self.line, line.trim_end_matches('\r')))
    }
}

/// A submenu being read.
struct Menu {
    tag: String,
    label: Option<String>,
    title: Option<String>,
}

impl Menu {
    fn name(&self) -> String {
        let n = self.label.as_deref().or(self.title.as_deref());
        n.map(strip_hotkeys).unwrap_or_else(|| self.tag.clone())
    }
}

/// Removes `^` hotkey markers from a menu label.
pub fn strip_hotkeys(s: &str) -> String {
    s.replace('^', "").trim().to_string()
}

/// Parse state.
struct Parser<'r> {
    cfg: Config,
    stack: Vec<Frame>,
    files_read: usize,
    read: &'r mut dyn FnMut(&str) -> Result<Option<String>, String>,
    workdir: String,
    label: Option<Label>,
    menus: Vec<Menu>,
    /// `MENU BEGIN`s beyond [`MAX_MENU_DEPTH`] still open.
    menus_overflow: usize,
    in_text: bool,
    labels_full: bool,
}

/// Reads the configuration at `path` (already read as `text`), resolving relative `INCLUDE`
/// paths against `workdir` and reading included files with `read`: `Ok(None)` when a file does
/// not exist (skipped quietly, as syslinux does: Debian's menus include files that only some
/// flavours ship), `Err` with a message when it cannot be read.
pub fn parse(
    path: &str,
    text: String,
    workdir: &str,
    read: &mut dyn FnMut(&str) -> Result<Option<String>, String>,
) -> Config {
    let mut p = Parser {
        cfg: Config::default(),
        stack: vec![Frame {
            file: path.to_string(),
            text,
            pos: 0,
            line: 0,
            closes_menu: false,
        }],
        files_read: 1,
        read,
        workdir: workdir.to_string(),
        label: None,
        menus: Vec::new(),
        menus_overflow: 0,
        in_text: false,
        labels_full: false,
    };
    p.run();
    p.cfg
}

impl Parser<'_> {
    fn run(&mut self) {
        while let Some(frame) = self.stack.last_mut() {
            let Some((n, line)) = frame.next_line() else {
                let done = self.stack.pop();
                if done.is_some_and(|f| f.closes_menu) {
                    self.menu_end();
                }
                continue;
            };
            let line = line.to_string();
            let loc = Loc {
                file: frame.file.clone(),
                line: n,
            };
            self.line(&line, loc);
        }
        self.record();
    }

    fn problem(&mut self, loc: &Loc, msg: String) {
        if self.cfg.problems.len() < 256 {
            self.cfg.problems.push((loc.clone(), msg));
        }
    }

    fn line(&mut self, line: &str, loc: Loc) {
        let (kw, rest) = split_word(line);
        if self.in_text {
            if kw.eq_ignore_ascii_case("endtext") {
                self.in_text = false;
            }
            return;
        }
        if kw.is_empty() || kw.starts_with('#') {
            return;
        }
        let kw = kw.to_ascii_lowercase();
        match kw.as_str() {
            "label" => {
                self.record();
                if self.cfg.labels.len() >= MAX_LABELS {
                    if !self.labels_full {
                        self.labels_full = true;
                        self.problem(
                            &loc,
                            format!("more than {MAX_LABELS} labels; the rest are ignored"),
                        );
                    }
                    return;
                }
                self.label = Some(Label {
                    name: rest.to_string(),
                    loc,
                    ..Label::default()
                });
            }
            "kernel" | "linux" | "boot" | "bss" | "pxe" | "fdimage" | "comboot" | "com32"
            | "config" | "localboot" => match self.label.as_mut() {
                Some(l) => l.boot = Some((kw, rest.to_string())),
                None => self.problem(&loc, format!("{kw} outside a LABEL is ignored")),
            },
            "append" if rest.len() > MAX_CMDLINE => self.problem(
                &loc,
                format!(
                    "APPEND of {} bytes is longer than the {MAX_CMDLINE} bytes a kernel accepts; ignored",
                    rest.len()
                ),
            ),
            "append" => match self.label.as_mut() {
                Some(l) => l.append = Some(rest.to_string()),
                None => self.cfg.global_append = Some(Rc::from(rest)),
            },
            "initrd" => match self.label.as_mut() {
                Some(l) => l.initrd = Some(rest.to_string()),
                None => self.problem(&loc, "initrd outside a LABEL is ignored".into()),
            },
            "fdt" | "devicetree" => {
                if let Some(l) = self.label.as_mut() {
                    l.fdt = Some(rest.to_string());
                }
            }
            "fdtdir" | "devicetreedir" => {
                if let Some(l) = self.label.as_mut() {
                    l.fdtdir = Some(rest.to_string());
                }
            }
            "default" => self.cfg.default = Some((rest.to_string(), loc)),
            "ontimeout" => self.cfg.ontimeout = Some((rest.to_string(), loc)),
            "ui" => self.cfg.ui |= !rest.is_empty(),
            "prompt" | "implicit" => match number(rest) {
                Some(n) if kw == "prompt" => self.cfg.prompt = Some(n != 0),
                Some(n) => self.cfg.implicit = Some(n != 0),
                None => self.problem(&loc, format!("{kw} {rest:?} is not a number")),
            },
            "timeout" | "totaltimeout" => match number(rest) {
                Some(n) if kw == "timeout" => self.cfg.timeout = Some(n),
                Some(n) => self.cfg.total_timeout = Some(n),
                None => self.problem(&loc, format!("{kw} {rest:?} is not a number")),
            },
            "include" => self.include(rest, &loc, false),
            "text" => self.in_text = split_word(rest).0.eq_ignore_ascii_case("help"),
            "menu" => self.menu(rest, loc),
            _ => {} // DISPLAY, SAY, SERIAL, PATH, IPAPPEND, F1…: nothing to do with what boots
        }
    }

    fn menu(&mut self, rest: &str, loc: Loc) {
        let (sub, arg) = split_word(rest);
        match sub.to_ascii_lowercase().as_str() {
            "label" => match (self.label.as_mut(), self.menus.last_mut()) {
                (Some(l), _) => l.menu_label = Some(arg.to_string()),
                (None, Some(m)) if self.menus_overflow == 0 => m.label = Some(arg.to_string()),
                _ => {}
            },
            "title" if self.label.is_none() && self.menus_overflow == 0 => {
                if let Some(m) = self.menus.last_mut() {
                    m.title = Some(arg.to_string());
                }
            }
            "default" => {
                if let Some(l) = self.label.as_mut() {
                    l.menu_default = true;
                }
            }
            "hide" => {
                if let Some(l) = self.label.as_mut() {
                    l.hidden = true;
                }
            }
            "disable" | "exit" | "quit" | "goto" => {
                if let Some(l) = self.label.as_mut() {
                    l.not_bootable = true;
                }
            }
            "begin" => {
                self.record();
                self.menu_begin(arg, &loc);
            }
            "end" => {
                self.record();
                if self.menus.is_empty() && self.menus_overflow == 0 {
                    self.problem(&loc, "MENU END without MENU BEGIN".into());
                }
                self.menu_end();
            }
            "include" => {
                let (file, tag) = split_word(arg);
                let depth = self.stack.len();
                self.include(file, &loc, !tag.is_empty());
                if !tag.is_empty() && self.stack.len() > depth {
                    self.record();
                    self.menu_begin(tag, &loc);
                }
            }
            // A separator is a menu item of its own: it ends the label before it.
            "separator" => self.record(),
            _ => {} // colours, geometry, messages
        }
    }

    fn menu_begin(&mut self, tag: &str, loc: &Loc) {
        if self.menus.len() >= MAX_MENU_DEPTH {
            if self.menus_overflow == 0 {
                self.problem(
                    loc,
                    format!(
                        "submenus nested deeper than {MAX_MENU_DEPTH}: their titles are dropped"
                    ),
                );
            }
            self.menus_overflow += 1;
        } else {
            self.menus.push(Menu {
                tag: tag.to_string(),
                label: None,
                title: None,
            });
        }
    }

    fn menu_end(&mut self) {
        self.record();
        if self.menus_overflow > 0 {
            self.menus_overflow -= 1;
        } else {
            self.menus.pop();
        }
    }

    fn include(&mut self, arg: &str, loc: &Loc, closes_menu: bool) {
        let file = split_word(arg).0;
        if file.is_empty() {
            self.problem(loc, "INCLUDE without a file name".into());
            return;
        }
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            self.problem(
                loc,
                format!(
                    "INCLUDE {file}: includes nested deeper than {MAX_INCLUDE_DEPTH}; not read"
                ),
            );
            return;
        }
        if self.files_read >= MAX_FILES {
            self.problem(
                loc,
                format!("INCLUDE {file}: more than {MAX_FILES} files read; not read"),
            );
            return;
        }
        let path = resolve(&self.workdir, file);
        self.files_read += 1;
        match (self.read)(&path) {
            Ok(None) => log::debug!(
                "{}:{}: INCLUDE {file}: no such file; skipped",
                loc.file,
                loc.line
            ),
            Ok(Some(text)) => self.stack.push(Frame {
                file: path,
                text,
                pos: 0,
                line: 0,
                closes_menu,
            }),
            Err(e) => self.problem(loc, format!("INCLUDE {file}: {e}")),
        }
    }

    /// Ends the current label, if any, and keeps it.
    fn record(&mut self) {
        if let Some(mut l) = self.label.take() {
            l.global_append = self.cfg.global_append.clone();
            l.menu_path = self.menus.iter().map(Menu::name).collect();
            self.cfg.labels.push(l);
        }
    }
}

/// A non-negative decimal number as syslinux reads it (values beyond u32 saturate).
fn number(s: &str) -> Option<u32> {
    let s = split_word(s).0;
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(
        s.parse::<u64>()
            .map_or(u32::MAX, |n| n.min(u64::from(u32::MAX)) as u32),
    )
}
