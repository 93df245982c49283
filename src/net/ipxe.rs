//! iPXE scripts (`#!ipxe`): a parser and an interpreter of the part common scripts use,
//! producing [`BootEntry`] values instead of booting.
//!
//! Commands: `kernel`/`imgfetch`/`module`/`initrd`/`imgargs`/`imgfree`/`boot` (and
//! `--name`), `chain` (another script, run with relative URLs against its own URL, at most
//! [`MAX_CHAIN_DEPTH`] deep; or a kernel, which is then booted), `set`/`clear`, `isset`,
//! `iseq`, `goto`/`:label`, `echo`, `exit`, `&&`/`||`, `${name}` and `${name:type}`
//! expansion (`${net0/mac}`, `${ip}`, ...: the client's values, see [`Vars::client`]), and
//! `menu`/`item`/`choose`: every item becomes an entry, titled by its text, the `--default`
//! item the default. Commands that touch hardware or wait (`dhcp`, `ifopen`, `sleep`,
//! `prompt`, `console`, `colour`, ...) do nothing; `sanboot` and unknown commands fail (so
//! `|| goto` branches run). A step budget ([`MAX_STEPS`], over all menu branches) bounds
//! everything; `goto` loops end there. The interpreter is pure: files come through the
//! `fetch` function it is given.

use std::collections::BTreeMap;

use crate::entry::{
    BootEntry, DefaultRule, EntryError, EntryKind, EntrySource, FileRef, Format, Found,
};
use crate::net::url::Url;

/// Commands run at most, all menu branches together.
pub const MAX_STEPS: usize = 10_000;
/// `chain` to another script nests at most this deep.
pub const MAX_CHAIN_DEPTH: usize = 4;
/// Lines per script.
pub const MAX_LINES: usize = 10_000;
/// Menu items turned into entries at most.
pub const MAX_ITEMS: usize = 64;
/// Longest variable value and expanded line.
const MAX_VALUE: usize = 4096;

/// One line of a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number.
    pub no: u32,
    /// The label a `:label` line defines.
    pub label: Option<String>,
    /// The words, not yet expanded (empty for labels, comments and blank lines).
    pub words: Vec<String>,
}

/// A parsed script.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script {
    /// Its lines, in order.
    pub lines: Vec<Line>,
}

/// Parses `text` (which should start with `#!ipxe`) into lines of words. Quoting: none (iPXE
/// splits on white space; `${...}` is expanded later). Bounded to [`MAX_LINES`].
pub fn parse(text: &str) -> Script {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().take(MAX_LINES).enumerate() {
        let t = raw.trim();
        let no = (i + 1) as u32;
        if let Some(l) = t.strip_prefix(':') {
            let l = l.split_whitespace().next().unwrap_or("");
            lines.push(Line {
                no,
                label: Some(l.to_string()),
                words: Vec::new(),
            });
            continue;
        }
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        lines.push(Line {
            no,
            label: None,
            words: t.split_whitespace().map(str::to_string).collect(),
        });
    }
    Script { lines }
}

/// The variables (iPXE "settings").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vars(pub BTreeMap<String, String>);

impl Vars {
    /// The settings iPXE has for a client after DHCP: `net0/mac`, `net0/ip`, `mac`, `ip`,
    /// `uuid`, `filename`, `next-server`, `platform` (`pcbios`), `buildarch` (`x86_64`).
    pub fn client(c: &crate::net::pxe::PxeClient, server: Option<&str>) -> Vars {
        let mut v = BTreeMap::new();
        let mac = c
            .mac
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        let mut put = |k: &str, val: String| {
            v.insert(k.to_string(), val.clone());
            v.insert(format!("net0/{k}"), val);
        };
        put("mac", mac);
        if let Some(ip) = c.ip {
            put("ip", ip.to_string());
        }
        if let Some(f) = &c.boot_file {
            put("filename", f.clone());
        }
        if let Some(s) = server {
            put("next-server", s.to_string());
        }
        if let Some(u) = &c.uuid {
            v.insert("uuid".into(), crate::net::pxe::uuid_name(u));
        }
        v.insert("platform".into(), "pcbios".into());
        v.insert("buildarch".into(), "x86_64".into());
        v.insert("asset".into(), String::new());
        Vars(v)
    }

    fn get(&self, name: &str) -> Option<&str> {
        // `net0.dhcp/ip` and `net0/ip` are the same setting for our purposes.
        let n = name.replace(".dhcp/", "/");
        self.0
            .get(&n)
            .or_else(|| {
                n.strip_prefix("netX/")
                    .and_then(|k| self.0.get(&format!("net0/{k}")))
            })
            .map(String::as_str)
    }
}

/// Expands `${name}` and `${name:type}` in `w` (unset: empty).
pub fn expand(w: &str, vars: &Vars) -> String {
    let mut out = String::new();
    let mut rest = w;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(j) => {
                let (name, ty) = after[..j].split_once(':').unwrap_or((&after[..j], ""));
                out.push_str(&typed(vars.get(name).unwrap_or(""), ty));
                rest = &after[j + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
        if out.len() > MAX_VALUE {
            break;
        }
    }
    out.push_str(rest);
    out.truncate(floor_boundary(&out, MAX_VALUE));
    out
}

/// A value shown as iPXE's `:type` says: `hex` (`52:54:00:12:34:56`), `hexhyp`
/// (`52-54-00-12-34-56`, pxelinux's `BOOTIF` form) or `hexraw` (`525400123456`) of its bytes
/// (a MAC's, an IPv4 address's octets, else the text's); any other type leaves it as it is.
fn typed(value: &str, ty: &str) -> String {
    let sep = match ty {
        "hex" => ":",
        "hexhyp" => "-",
        "hexraw" => "",
        _ => return value.to_string(),
    };
    let hex_bytes: Option<Vec<u8>> = if value.contains(':') {
        value
            .split(':')
            .map(|b| {
                (b.len() == 2)
                    .then(|| u8::from_str_radix(b, 16).ok())
                    .flatten()
            })
            .collect()
    } else {
        None
    };
    let bytes = match (hex_bytes, value.parse::<std::net::Ipv4Addr>()) {
        (Some(b), _) => b,
        (None, Ok(ip)) => ip.octets().to_vec(),
        _ => value.as_bytes()[..value.len().min(MAX_VALUE)].to_vec(),
    };
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(sep)
}

fn floor_boundary(s: &str, max: usize) -> usize {
    let mut n = s.len().min(max);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    n
}

/// What a fetched `chain` target is.
pub enum Fetched {
    /// An iPXE script (its text).
    Script(String),
    /// Anything else: booted as a kernel.
    Kernel,
}

/// Gets a `chain` target: `Err` with a message when it cannot be read.
pub type FetchFn<'a> = &'a mut dyn FnMut(&Url) -> Result<Fetched, String>;

#[derive(Clone, Debug, Default)]
struct Image {
    url: Option<Url>,
    name: String,
    args: Vec<String>,
}

/// Interpreter state of one branch.
#[derive(Clone)]
struct State {
    vars: Vars,
    kernel: Image,
    initrds: Vec<Image>,
    /// The item text when this branch comes from a menu choice.
    title: Option<String>,
    /// Menu items declared so far: (label, text).
    items: Vec<(String, String)>,
    forked: bool,
}

struct Interp<'f, 'a> {
    fetch: FetchFn<'f>,
    steps: usize,
    found: Found,
    echo: Vec<String>,
    _p: std::marker::PhantomData<&'a ()>,
}

/// How a run of a script ended.
enum End {
    /// It ran out of lines or `exit`ed without booting.
    Fell,
    /// It booted (an entry was added).
    Booted,
    /// A menu forked the run; the branches added their entries.
    Forked,
    /// The budget is spent.
    Budget,
}

impl Interp<'_, '_> {
    fn error(&mut self, base: &Url, line: u32, message: String) {
        if self.found.errors.len() < 100 {
            self.found.errors.push(EntryError {
                volume: base.origin(),
                file: base.path.clone(),
                line: Some(line),
                message,
            });
        }
    }

    /// Runs `script` (at `base`) from line index `pc`; `resume` continues that line from a
    /// part (after a `choose`), with the status so far.
    fn run(
        &mut self,
        base: &Url,
        script: &Script,
        mut pc: usize,
        mut resume: Option<(usize, bool)>,
        st: &mut State,
        depth: usize,
    ) -> End {
        while pc < script.lines.len() {
            let line = &script.lines[pc];
            if line.words.is_empty() {
                pc += 1;
                continue;
            }
            let (start, mut ok) = resume.take().unwrap_or((0, true));
            if start == 0 {
                self.steps += 1;
                if self.steps > MAX_STEPS {
                    self.error(
                        base,
                        line.no,
                        format!("more than {MAX_STEPS} commands; stopped"),
                    );
                    return End::Budget;
                }
            }
            // `a && b || c`: each part runs or not by the status so far; each is expanded
            // just before it runs (so `choose t && goto ${t}` works).
            let parts: Vec<(&[String], &str)> = line
                .words
                .split_inclusive(|w| w == "&&" || w == "||")
                .map(|part| match part.last().map(String::as_str) {
                    Some(o @ ("&&" | "||")) => (&part[..part.len() - 1], o),
                    _ => (part, ""),
                })
                .collect();
            let mut op = if start == 0 {
                ""
            } else {
                parts.get(start - 1).map_or("", |p| p.1)
            };
            let mut next = pc + 1;
            for (k, (raw, after)) in parts.iter().enumerate().skip(start) {
                let run_it = match op {
                    "&&" => ok,
                    "||" => !ok,
                    _ => true,
                };
                op = after;
                if !run_it || raw.is_empty() {
                    continue;
                }
                let cmd: Vec<String> = raw.iter().map(|w| expand(w, &st.vars)).collect();
                match self.command(base, line.no, &cmd, st, depth) {
                    Step::Status(s) => ok = s,
                    Step::Goto(label) => {
                        match script
                            .lines
                            .iter()
                            .position(|l| l.label.as_deref() == Some(&label))
                        {
                            Some(i) => {
                                next = i + 1;
                                break;
                            }
                            None => {
                                self.error(
                                    base,
                                    line.no,
                                    format!("goto: no label '{}'", clean(&label)),
                                );
                                ok = false;
                            }
                        }
                    }
                    Step::Choose { var, default } => {
                        return self.fork(base, script, (pc, k + 1), st, depth, var, default);
                    }
                    Step::End(e) => return e,
                }
            }
            pc = next;
        }
        End::Fell
    }

    #[allow(clippy::too_many_arguments)]
    fn fork(
        &mut self,
        base: &Url,
        script: &Script,
        (pc, part): (usize, usize),
        st: &mut State,
        depth: usize,
        var: String,
        default: Option<String>,
    ) -> End {
        let items: Vec<(String, String)> = std::mem::take(&mut st.items);
        if st.forked || items.is_empty() {
            // A menu inside a menu branch (or an empty one): take its default (or first) item.
            let pick = default
                .or_else(|| items.first().map(|i| i.0.clone()))
                .unwrap_or_default();
            let ok = !pick.is_empty();
            st.vars.0.insert(var, pick);
            return self.run(base, script, pc, Some((part, ok)), st, depth);
        }
        let first_entry = self.found.entries.len();
        for (label, text) in items.into_iter().take(MAX_ITEMS) {
            let mut b = st.clone();
            b.forked = true;
            b.title = Some(text);
            b.vars.0.insert(var.clone(), label.clone());
            let before = self.found.entries.len();
            if let End::Budget = self.run(base, script, pc, Some((part, true)), &mut b, depth) {
                return End::Budget;
            }
            if default.as_deref() == Some(label.as_str()) && self.found.entries.len() > before {
                self.found.default = Some(DefaultRule::Index(before));
            }
        }
        if self.found.default.is_none() && self.found.entries.len() > first_entry {
            self.found.default = Some(DefaultRule::Index(first_entry));
        }
        End::Forked
    }

    fn command(
        &mut self,
        base: &Url,
        line: u32,
        argv: &[String],
        st: &mut State,
        depth: usize,
    ) -> Step {
        let (cmd, args) = (argv[0].as_str(), &argv[1..]);
        // Options like `--name x`, `--autofree`, `--timeout 5000` before the operands.
        let (opts, rest) = options(args);
        match cmd {
            "kernel" | "imgexec" | "imgselect" | "imgfetch" | "module" | "initrd" | "chain" => {
                let Some(target) = rest.first() else {
                    self.error(base, line, format!("{cmd}: no image URL"));
                    return Step::Status(false);
                };
                let url = match base.join(target) {
                    Ok(u) => u,
                    Err(e) => {
                        self.error(base, line, format!("{cmd} {}: {e}", clean(target)));
                        return Step::Status(false);
                    }
                };
                let name = opts
                    .get("name")
                    .cloned()
                    .unwrap_or_else(|| url.path.rsplit('/').next().unwrap_or("").to_string());
                let img = Image {
                    url: Some(url.clone()),
                    name,
                    args: rest[1..].to_vec(),
                };
                match cmd {
                    "initrd" | "module" | "imgfetch" => {
                        if st.initrds.len() < 32 {
                            st.initrds.push(img);
                        }
                        Step::Status(true)
                    }
                    "chain" | "imgexec" => self.chain(base, line, img, st, depth),
                    _ => {
                        st.kernel = img;
                        Step::Status(true)
                    }
                }
            }
            "imgargs" => {
                let Some(name) = rest.first() else {
                    return Step::Status(false);
                };
                if st.kernel.name == *name
                    || st
                        .kernel
                        .url
                        .as_ref()
                        .is_some_and(|u| u.path.ends_with(name.as_str()))
                {
                    st.kernel.args = rest[1..].to_vec();
                    Step::Status(true)
                } else {
                    self.error(base, line, format!("imgargs: no image '{}'", clean(name)));
                    Step::Status(false)
                }
            }
            "imgfree" => {
                st.kernel = Image::default();
                st.initrds.clear();
                Step::Status(true)
            }
            "boot" => {
                if st.kernel.url.is_none() {
                    self.error(base, line, "boot: no kernel selected".into());
                    return Step::Status(false);
                }
                self.entry(base, line, st);
                Step::End(End::Booted)
            }
            "set" => {
                if let Some(k) = rest.first() {
                    let v = rest[1..].join(" ");
                    let v = v[..floor_boundary(&v, MAX_VALUE)].to_string();
                    if st.vars.0.len() < 1024 || st.vars.0.contains_key(k) {
                        st.vars.0.insert(k.replace(".dhcp/", "/"), v);
                    }
                }
                Step::Status(true)
            }
            "clear" => {
                if let Some(k) = rest.first() {
                    st.vars.0.remove(k);
                }
                Step::Status(true)
            }
            // After expansion `isset ${x}` has a word only when x is set and not empty.
            "isset" => Step::Status(rest.first().is_some_and(|w| !w.is_empty())),
            "iseq" => Step::Status(rest.len() >= 2 && rest[0] == rest[1]),
            "goto" => match rest.first() {
                Some(l) => Step::Goto(l.clone()),
                None => Step::Status(false),
            },
            "echo" => {
                if self.echo.len() < 100 {
                    self.echo.push(clean(&rest.join(" ")));
                }
                Step::Status(true)
            }
            "exit" => Step::End(End::Fell),
            "menu" => {
                st.items.clear();
                Step::Status(true)
            }
            "item" => {
                if opts.contains_key("gap") {
                    return Step::Status(true);
                }
                if let Some(label) = rest.first() {
                    if st.items.len() < MAX_ITEMS {
                        let text = rest[1..].join(" ");
                        st.items.push((
                            label.clone(),
                            if text.is_empty() { label.clone() } else { text },
                        ));
                    }
                }
                Step::Status(true)
            }
            "choose" => match rest.first() {
                Some(var) => Step::Choose {
                    var: var.clone(),
                    default: opts.get("default").cloned(),
                },
                None => Step::Status(false),
            },
            "dhcp" | "ifopen" | "ifconf" | "ifstat" | "sleep" | "prompt" | "console" | "colour"
            | "cpair" | "ntp" | "route" | "sync" | "cpuid" | "shell" | "login" => {
                Step::Status(true)
            }
            "sanboot" | "sanhook" => {
                self.error(base, line, format!("{cmd}: SAN boot is not supported"));
                Step::Status(false)
            }
            other => {
                self.error(base, line, format!("unknown command '{}'", clean(other)));
                Step::Status(false)
            }
        }
    }

    fn chain(&mut self, base: &Url, line: u32, img: Image, st: &mut State, depth: usize) -> Step {
        let Some(url) = img.url.clone() else {
            return Step::Status(false);
        };
        match (self.fetch)(&url) {
            Ok(Fetched::Script(text)) => {
                if depth + 1 > MAX_CHAIN_DEPTH {
                    self.error(
                        base,
                        line,
                        format!("chain {url}: more than {MAX_CHAIN_DEPTH} scripts deep"),
                    );
                    return Step::Status(false);
                }
                let script = parse(&text);
                Step::End(self.run(&url, &script, 0, None, st, depth + 1))
            }
            Ok(Fetched::Kernel) => {
                st.kernel = img;
                self.entry(base, line, st);
                Step::End(End::Booted)
            }
            Err(m) => {
                self.error(base, line, format!("chain {url}: {}", clean(&m)));
                Step::Status(false)
            }
        }
    }

    fn entry(&mut self, base: &Url, line: u32, st: &State) {
        let Some(k) = &st.kernel.url else { return };
        let fref = |u: &Url| FileRef {
            volume: u.origin(),
            path: u.path.clone(),
        };
        let n = self.found.entries.len() + 1;
        let title = st
            .title
            .clone()
            .unwrap_or_else(|| format!("iPXE: {}", k.path));
        self.found.entries.push(BootEntry {
            id: format!("ipxe-{n}"),
            title: clean(&title),
            version: None,
            kernel: fref(k),
            initrds: st
                .initrds
                .iter()
                .filter_map(|i| i.url.as_ref())
                .map(fref)
                .collect(),
            cmdline: st.kernel.args.join(" "),
            devicetree: None,
            format: Format::Ipxe,
            kind: EntryKind::Linux,
            source: EntrySource {
                volume: base.origin(),
                file: base.path.clone(),
                line: Some(line),
            },
        });
    }
}

enum Step {
    Status(bool),
    Goto(String),
    Choose {
        var: String,
        default: Option<String>,
    },
    End(End),
}

/// Splits leading `--opt value` / `--flag` / `-n value` options off `args`.
fn options(args: &[String]) -> (BTreeMap<String, String>, &[String]) {
    let mut opts = BTreeMap::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let Some(o) = a
            .strip_prefix("--")
            .or_else(|| a.strip_prefix('-').filter(|o| o.len() == 1))
        else {
            break;
        };
        let (k, v) = match o.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (o.to_string(), None),
        };
        let takes_value = matches!(
            k.as_str(),
            "name" | "n" | "timeout" | "t" | "default" | "d" | "key" | "k" | "menu" | "m"
        );
        let k = match k.as_str() {
            "n" => "name".to_string(),
            "d" => "default".to_string(),
            "t" => "timeout".to_string(),
            _ => k,
        };
        match v {
            Some(v) => {
                opts.insert(k, v);
                i += 1;
            }
            None if takes_value && i + 1 < args.len() => {
                opts.insert(k, args[i + 1].clone());
                i += 2;
            }
            None => {
                opts.insert(k, String::new());
                i += 1;
            }
        }
    }
    (opts, &args[i..])
}

/// A string from a script made printable (control characters become `?`), at most 200 chars.
fn clean(s: &str) -> String {
    crate::net::fetch::printable(s, 200)
}

/// Runs the script `text` found at `base` with `vars`; `chain` targets come from `fetch`.
/// Returns the entries, errors, default (a menu's `--default`, else the first entry).
pub fn interpret(base: &Url, text: &str, vars: &Vars, fetch: FetchFn<'_>) -> Found {
    let mut it = Interp {
        fetch,
        steps: 0,
        found: Found::default(),
        echo: Vec::new(),
        _p: std::marker::PhantomData,
    };
    let mut st = State {
        vars: vars.clone(),
        kernel: Image::default(),
        initrds: Vec::new(),
        title: None,
        items: Vec::new(),
        forked: false,
    };
    let script = parse(text);
    it.run(base, &script, 0, None, &mut st, 0);
    for e in &it.echo {
        log::info!("{}: echo: {e}", base);
    }
    if it.found.default.is_none() && !it.found.entries.is_empty() {
        it.found.default = Some(DefaultRule::Index(0));
    }
    it.found
}

/// The entries of the iPXE script at `path` on `fs` (already read as `bytes`); `chain`
/// targets are fetched from wherever their URL points (on `fs` when it is the same server).
pub fn discover(fs: &crate::net::netfs::NetFs, path: &str, bytes: &[u8]) -> Found {
    discover_with(fs, path, bytes, &Vars::default())
}

/// As [`discover`], with the client's variables.
pub fn discover_with(
    fs: &crate::net::netfs::NetFs,
    path: &str,
    bytes: &[u8],
    vars: &Vars,
) -> Found {
    use crate::fs::BootFs;
    use crate::net::source::{classify, Kind};
    let Ok(base) = fs.url(path) else {
        return Found::default();
    };
    let same = |u: &Url| fs.url("/").is_ok_and(|r| r.origin() == u.origin());
    let mut fetch = |u: &Url| -> Result<Fetched, String> {
        let text = if same(u) {
            fs.read(&u.path, crate::fs::MAX_CONFIG_BYTES)
                .map_err(|e| e.to_string())
        } else {
            let other = crate::net::netfs::NetFs::new(u, None, crate::net::fetch::global());
            other
                .read(&u.path, crate::fs::MAX_CONFIG_BYTES)
                .map_err(|e| e.to_string())
        };
        match text {
            Ok(b) if classify(&u.path, &b) == Kind::Ipxe => {
                Ok(Fetched::Script(String::from_utf8_lossy(&b).into_owned()))
            }
            Ok(_) => Ok(Fetched::Kernel),
            // Too large for a script: a kernel.
            Err(m) if m.contains("larger than") => Ok(Fetched::Kernel),
            Err(m) => Err(m),
        }
    };
    interpret(&base, &String::from_utf8_lossy(bytes), vars, &mut fetch)
}

#[cfg(test)]
mod tests;
