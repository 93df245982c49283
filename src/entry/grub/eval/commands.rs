//! The commands that load or read files: `linux*`, `initrd*`, `devicetree` (recorded for the
//! entry being run), `load_env`, `configfile` (a new menu in a new context) and `blscfg`
//! (Fedora's BLS entries as menu entries, with `expand_val` on their options).

use std::rc::Rc;

use super::super::lexer::lex;
use super::super::parse::{parse, MenuKind};
use super::words::expand_val;
use super::{Flow, Interp, Item, Loc, Stop, MAX_BLS, MAX_ITEMS};
use crate::entry::{bls, grubenv};
use crate::fs::{FileKind, MAX_CONFIG_BYTES};

impl Interp<'_, '_> {
    pub(super) fn load_env(&mut self, args: &[String]) -> bool {
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

    pub(super) fn configfile(&mut self, args: &[String]) -> Flow {
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

    pub(super) fn blscfg(&mut self, args: &[String]) -> bool {
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
            if self.over_budget() {
                break;
            }
            let path = crate::fs::normalize(&format!("{dir}/{}", f.name));
            let text = match fs.read(&path, MAX_CONFIG_BYTES) {
                Ok(b) => {
                    self.spend(b.len() as u64 + 64);
                    String::from_utf8_lossy(&b).into_owned()
                }
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

    pub(super) fn linux(&mut self, name: &str, args: &[String]) -> bool {
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

    pub(super) fn initrd(&mut self, args: &[String]) -> bool {
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

    pub(super) fn devicetree(&mut self, args: &[String]) -> bool {
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
}
