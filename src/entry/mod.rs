//! Boot entries: the plain data every format parser produces, and the list the front ends use.
//!
//! A format module is pure: it sees one volume only through [`BootFs`](crate::fs::BootFs) and
//! returns a [`Found`]; it never opens devices, never kexecs, never writes. One broken entry
//! becomes an [`EntryError`] beside its siblings, never hides them.

pub mod bls;

use std::fmt;

use serde::Serialize;

/// A file on a named volume (`vda1`, `disk.img:1`, or a `--root` directory).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct FileRef {
    /// Volume name.
    pub volume: String,
    /// Volume-absolute path.
    pub path: String,
}

impl fmt::Display for FileRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.volume, self.path)
    }
}

/// The configuration format an entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Boot Loader Specification Type #1 (`/loader/entries/*.conf`).
    Bls,
}

/// Where an entry was defined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntrySource {
    /// Volume holding the config file.
    pub volume: String,
    /// Config file path on that volume.
    pub file: String,
    /// Line of the entry's definition (1-based), where the format has one.
    pub line: Option<u32>,
}

/// One bootable entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BootEntry {
    /// Stable identifier (BLS: the file name without `.conf` and boot-counting suffix).
    pub id: String,
    /// Title shown to people.
    pub title: String,
    /// Version, if the format gives one.
    pub version: Option<String>,
    /// The kernel image.
    pub kernel: FileRef,
    /// Initrds, loaded concatenated in this order.
    pub initrds: Vec<FileRef>,
    /// Kernel command line.
    pub cmdline: String,
    /// Device tree blob, if any (unused on x86).
    pub devicetree: Option<FileRef>,
    /// Configuration format.
    pub format: Format,
    /// Where it was defined.
    pub source: EntrySource,
}

/// Autoboot timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// Boot the default after this many seconds (0: at once).
    Secs(u32),
    /// Wait for a choice forever.
    Forever,
}

impl Timeout {
    /// Parses a number of seconds; negative means forever.
    pub fn from_secs(n: i64) -> Timeout {
        if n < 0 {
            Timeout::Forever
        } else {
            Timeout::Secs(n.min(i64::from(u32::MAX)) as u32)
        }
    }
}

impl Serialize for Timeout {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Timeout::Secs(n) => s.serialize_u32(*n),
            Timeout::Forever => s.serialize_i32(-1),
        }
    }
}

/// A problem with one entry or config file, located as precisely as known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryError {
    /// Volume name.
    pub volume: String,
    /// File on the volume.
    pub file: String,
    /// Line (1-based), if known.
    pub line: Option<u32>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.volume, self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What a format found on one volume.
#[derive(Clone, Debug, Default)]
pub struct Found {
    /// Entries in the format's own order.
    pub entries: Vec<BootEntry>,
    /// The format's default rule (e.g. a glob from `loader.conf`), resolved by [`Found::default_index`].
    pub default: Option<DefaultRule>,
    /// The format's timeout.
    pub timeout: Option<Timeout>,
    /// Problems found on the way.
    pub errors: Vec<EntryError>,
}

/// How a format names its default entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DefaultRule {
    /// A glob over entry ids (BLS `loader.conf`: the id with or without `.conf`).
    IdGlob(String),
}

impl Found {
    /// The index of the default entry by the format's rule, if it names one that exists.
    pub fn default_index(&self) -> Option<usize> {
        match &self.default {
            Some(DefaultRule::IdGlob(g)) => self.entries.iter().position(|e| {
                crate::glob::matches(g, &e.id) || crate::glob::matches(g, &format!("{}.conf", e.id))
            }),
            None => None,
        }
    }
}

/// The merged list over all volumes, in menu order.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BootList {
    /// Entries in menu order.
    pub entries: Vec<BootEntry>,
    /// Index of the default entry.
    #[serde(skip)]
    pub default: Option<usize>,
    /// Autoboot timeout from the configs, if any set one.
    pub timeout: Option<Timeout>,
}

impl BootList {
    /// Appends one volume's findings: the first volume that names a default (or a timeout) sets it.
    pub fn merge(&mut self, found: Found) {
        let default = found.default_index();
        if self.default.is_none() {
            self.default = default.map(|i| i + self.entries.len());
        }
        if self.timeout.is_none() {
            self.timeout = found.timeout;
        }
        for mut e in found.entries {
            // Ids are unique per volume; keep them unique over all volumes too.
            if self.entries.iter().any(|o| o.id == e.id) {
                e.id = format!("{}@{}", e.id, e.source.volume);
            }
            self.entries.push(e);
        }
    }

    /// The entry to autoboot: the configured default, else the first.
    pub fn default_entry(&self) -> Option<usize> {
        self.default.or((!self.entries.is_empty()).then_some(0))
    }

    /// Boot order for unattended boot: the default first, then the others in menu order.
    pub fn boot_order(&self) -> Vec<usize> {
        let first = self.default_entry();
        first
            .into_iter()
            .chain((0..self.entries.len()).filter(|&i| Some(i) != first))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, vol: &str) -> BootEntry {
        BootEntry {
            id: id.into(),
            title: id.into(),
            version: None,
            kernel: FileRef {
                volume: vol.into(),
                path: "/k".into(),
            },
            initrds: vec![],
            cmdline: String::new(),
            devicetree: None,
            format: Format::Bls,
            source: EntrySource {
                volume: vol.into(),
                file: "/f".into(),
                line: None,
            },
        }
    }

    #[test]
    fn default_goes_first_in_boot_order_and_ids_stay_unique() {
        let mut list = BootList::default();
        list.merge(Found {
            entries: vec![entry("a", "vda1"), entry("b", "vda1")],
            default: Some(DefaultRule::IdGlob("b.conf".into())),
            ..Found::default()
        });
        list.merge(Found {
            entries: vec![entry("a", "vdb1")],
            default: Some(DefaultRule::IdGlob("a".into())),
            ..Found::default()
        });
        assert_eq!(list.default, Some(1));
        assert_eq!(list.boot_order(), vec![1, 0, 2]);
        assert_eq!(list.entries[2].id, "a@vdb1");
    }

    #[test]
    fn without_a_default_the_first_entry_boots() {
        let mut list = BootList::default();
        list.merge(Found {
            entries: vec![entry("a", "v"), entry("b", "v")],
            default: Some(DefaultRule::IdGlob("nomatch".into())),
            ..Found::default()
        });
        assert_eq!(list.boot_order(), vec![0, 1]);
        assert_eq!(BootList::default().boot_order(), Vec::<usize>::new());
    }
}
