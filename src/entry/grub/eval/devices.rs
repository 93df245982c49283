//! Devices and files: GRUB's names for volumes (`hdN,gptM` from `grub_position`, else the
//! volume name), resolving `(dev)/path` and `$root`, and the `search` and `probe` commands.

use super::{Interp, Loc};
use crate::entry::{FileRef, VolumeView};

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
pub(super) fn parse_hd(dev: &str) -> Option<(u32, u32)> {
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

impl Interp<'_, '_> {
    /// The volume index of GRUB device `dev` (without parentheses); empty means `$root`.
    pub(super) fn find_device(&self, dev: &str) -> Option<usize> {
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
        // GRUB's network devices, `(tftp)`, `(http)`, `(tftp,HOST)`, `(http,HOST)`: the
        // server the config itself came from (leapboot reads one server per config).
        let scheme = dev.split(',').next().unwrap_or("");
        if matches!(scheme, "tftp" | "http" | "https" | "pxe")
            && self
                .vols
                .get(self.loc.vol)
                .is_some_and(|v| v.name.contains("://"))
        {
            return Some(self.loc.vol);
        }
        self.vols.iter().position(|v| v.name == dev).or_else(|| {
            self.vols
                .iter()
                .position(|v| v.uuid.is_some_and(|u| u.eq_ignore_ascii_case(dev)))
        })
    }

    /// Resolves a GRUB file name (`/p`, `(dev)/p`, `()/p`) to a volume and path.
    pub(super) fn resolve(&self, name: &str) -> Result<Loc, String> {
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

    pub(super) fn file_ref(&self, loc: &Loc) -> FileRef {
        FileRef {
            volume: self
                .vols
                .get(loc.vol)
                .map_or_else(String::new, |v| v.name.to_string()),
            path: loc.path.clone(),
        }
    }

    pub(super) fn search(&mut self, cmd: &str, args: &[String]) -> bool {
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

    pub(super) fn probe(&mut self, args: &[String]) -> bool {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
