//! Boot entries: the plain data every format parser produces, and the list the front ends use.
//!
//! A format module is pure: it sees one volume only through [`BootFs`](crate::fs::BootFs) and
//! returns a [`Found`]; it never opens devices, never kexecs, never writes. One broken entry
//! becomes an [`EntryError`] beside its siblings, never hides them.

pub mod bls;
pub mod bootdir;
pub mod grub;
pub mod grubenv;
pub mod isofile;
pub mod syslinux;
pub mod uki;

use std::fmt;

use serde::Serialize;

use crate::fs::BootFs;

/// What a format parser sees of a volume: its files and its identity. Parsers get the volume
/// they read and the list of all volumes (GRUB's `search` picks among them).
#[derive(Clone, Copy)]
pub struct VolumeView<'a> {
    /// Volume name (`vda1`, `disk.img:1`, a `--root` path): what `FileRef::volume` holds.
    pub name: &'a str,
    /// Read-only file access.
    pub fs: &'a dyn BootFs,
    /// Filesystem UUID as blkid prints it.
    pub uuid: Option<&'a str>,
    /// Filesystem label.
    pub label: Option<&'a str>,
    /// GPT partition GUID (PARTUUID), lower case.
    pub part_uuid: Option<&'a str>,
    /// GPT partition type GUID, lower case.
    pub part_type: Option<&'a str>,
    /// Position among all discovered disks and its partition number, for GRUB's
    /// `(hdN,gptM)`/`(hdN,msdosM)` names: (disk index from 0, partition number from 1).
    pub grub_position: Option<(u32, u32)>,
    /// It holds `/etc/os-release` or `/usr/lib/os-release`: a root filesystem. Looked up once
    /// per volume ([`is_root_fs`]) so that formats asking it of every volume stay linear.
    pub root_fs: bool,
}

/// Whether `fs` is a root filesystem (it has an os-release file).
pub fn is_root_fs(fs: &dyn BootFs) -> bool {
    fs.exists("/etc/os-release") || fs.exists("/usr/lib/os-release")
}

/// A format parser: reads `volume` (and may resolve files on any of `all`) and reports what it found.
pub type DiscoverFn = fn(volume: &VolumeView<'_>, all: &[VolumeView<'_>]) -> Found;

/// Every format, in the order their findings are merged (and duplicates dropped): the
/// configuration a distro's own bootloader reads comes before what is found by convention.
pub const FORMATS: &[(Format, DiscoverFn)] = &[
    (Format::Grub, grub::discover),
    (Format::Bls, bls::discover),
    (Format::Syslinux, syslinux::discover),
    (Format::Uki, uki::discover),
];

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
        f.write_str(&place(&self.volume, &self.path))
    }
}

/// A file on a volume, for people: `vda1:/boot/vmlinuz` on a disk; on a network volume
/// (whose name ends in the server's URL, after the interface that reached it: `eth0
/// tftp://10.0.2.2`) the file's URL, `eth0 tftp://10.0.2.2/pxelinux.cfg/default`.
pub fn place(volume: &str, path: &str) -> String {
    let url = volume
        .rsplit(' ')
        .next()
        .is_some_and(|last| last.contains("://"));
    if url {
        format!(
            "{}/{}",
            volume.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    } else {
        format!("{volume}:{path}")
    }
}

/// The configuration format an entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Boot Loader Specification Type #1 (`/loader/entries/*.conf`).
    Bls,
    /// GRUB2 `grub.cfg`.
    Grub,
    /// syslinux / extlinux / isolinux / pxelinux configuration.
    Syslinux,
    /// Unified kernel image (Boot Loader Specification Type #2, `/EFI/Linux/*.efi`).
    Uki,
    /// Kernels found by name in `/boot` or the volume root, without any configuration (or a
    /// network boot file that is itself a kernel).
    Bootdir,
    /// An iPXE script (`#!ipxe`).
    Ipxe,
}

/// How an entry's kernel is started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// `kernel` is a Linux kernel image; `initrds` are loaded with it.
    #[default]
    Linux,
    /// `kernel` is a unified kernel image: the kernel, initrd and command line are its PE
    /// sections (`.linux`, `.initrd` after `.ucode`, `.cmdline`); `initrds` are appended.
    Uki,
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

impl EntrySource {
    /// Where the entry is defined, for people: `vda1:/loader/entries/a.conf:3`, or for a
    /// network volume the interface and the file's URL,
    /// `eth0 tftp://10.0.2.2/pxelinux.cfg/default:12` (see [`place`]).
    pub fn location(&self) -> String {
        let mut s = place(&self.volume, &self.file);
        if let Some(l) = self.line {
            s += &format!(":{l}");
        }
        s
    }
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
    /// How the kernel is started.
    pub kind: EntryKind,
    /// Where it was defined.
    pub source: EntrySource,
}

impl BootEntry {
    /// Whether two entries boot the same thing.
    pub fn same_boot(&self, other: &BootEntry) -> bool {
        self.kind == other.kind
            && self.kernel == other.kernel
            && self.initrds == other.initrds
            && self
                .cmdline
                .split_whitespace()
                .eq(other.cmdline.split_whitespace())
    }
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
        f.write_str(&place(&self.volume, &self.file))?;
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
    /// Volumes whose BLS entries this configuration showed (GRUB's `blscfg`): the BLS format
    /// leaves them alone, or every entry would be listed twice.
    pub bls_shown: Vec<String>,
}

/// How a format names its default entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DefaultRule {
    /// A glob over entry ids (BLS `loader.conf`: the id with or without `.conf`).
    IdGlob(String),
    /// The format resolved its default itself (GRUB `set default=`, syslinux `DEFAULT`).
    Index(usize),
}

impl Found {
    /// The index of the default entry by the format's rule, if it names one that exists.
    pub fn default_index(&self) -> Option<usize> {
        match &self.default {
            Some(DefaultRule::IdGlob(g)) => self.entries.iter().position(|e| {
                crate::glob::matches(g, &e.id) || crate::glob::matches(g, &format!("{}.conf", e.id))
            }),
            Some(DefaultRule::Index(i)) => (*i < self.entries.len()).then_some(*i),
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
    /// Appends one format's findings on one volume. The first findings that name a default
    /// (or a timeout) set it; an entry that boots the same as one merged by an earlier call (a
    /// different config) is dropped, and if it was the default, that one becomes the default.
    pub fn merge(&mut self, found: Found) {
        let default = found.default_index();
        if self.timeout.is_none() {
            self.timeout = found.timeout;
        }
        // Duplicates are looked for only among earlier findings: within one configuration
        // the distro's own bootloader shows twins too (Debian's "Debian GNU/Linux" and
        // "Advanced options>Debian GNU/Linux, with Linux ..." boot the same), and so do we.
        let earlier = self.entries.len();
        // Ids in use, and the next number to try per renamed base: renaming stays linear
        // however many entries share one id (a search per candidate name was cubic).
        let mut ids: std::collections::HashSet<String> =
            self.entries.iter().map(|o| o.id.clone()).collect();
        let mut next: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
        for (i, mut e) in found.entries.into_iter().enumerate() {
            let is_default = Some(i) == default && self.default.is_none();
            // The same kernel, initrds and command line from two configs (grub.cfg with
            // blscfg and the BLS entries themselves, say) is one entry: the first one kept.
            if let Some(at) = self.entries[..earlier].iter().position(|o| o.same_boot(&e)) {
                log::debug!(
                    "entry {} ({}) duplicates {}; dropped",
                    e.id,
                    e.source.file,
                    self.entries[at].id
                );
                if is_default {
                    self.default = Some(at);
                }
                continue;
            }
            // Ids are unique per volume by most formats' rules, but not by all (two GRUB
            // entries with one title): keep them unique over the whole list.
            if ids.contains(&e.id) {
                let base = format!("{}@{}", e.id, e.source.volume);
                let n = next.entry(base.clone()).or_insert(1);
                let mut id = if *n == 1 {
                    base.clone()
                } else {
                    format!("{base}#{n}")
                };
                while ids.contains(&id) {
                    *n += 1;
                    id = format!("{base}#{n}");
                }
                *n += 1;
                e.id = id;
            }
            ids.insert(e.id.clone());
            if is_default {
                self.default = Some(self.entries.len());
            }
            self.entries.push(e);
        }
    }

    /// Appends `args` to the command line of every entry of `format` (the configured default
    /// arguments of kernels found without a configuration).
    pub fn append_args(&mut self, format: Format, args: &str) {
        let args = args.trim();
        if args.is_empty() {
            return;
        }
        for e in self.entries.iter_mut().filter(|e| e.format == format) {
            if !e.cmdline.is_empty() {
                e.cmdline.push(' ');
            }
            e.cmdline.push_str(args);
        }
    }

    /// The first entry `pattern` names: a glob over the id (with or without `.conf`) or the
    /// title, as `leapboot.default=` and the config's `default` take it.
    pub fn find(&self, pattern: &str) -> Option<usize> {
        self.entries.iter().position(|e| {
            crate::glob::matches(pattern, &e.id)
                || crate::glob::matches(pattern, &format!("{}.conf", e.id))
                || crate::glob::matches(pattern, &e.title)
        })
    }

    /// Appends `args` to every entry's command line.
    pub fn append_all(&mut self, args: &str) {
        let args = args.trim();
        if args.is_empty() {
            return;
        }
        for e in &mut self.entries {
            if !e.cmdline.is_empty() {
                e.cmdline.push(' ');
            }
            e.cmdline.push_str(args);
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
pub(crate) mod tests {
    use super::*;

    /// A view of `fs` named `name` with no identity, for parser tests.
    pub(crate) fn view<'a>(name: &'a str, fs: &'a dyn BootFs) -> VolumeView<'a> {
        VolumeView {
            name,
            fs,
            uuid: None,
            label: None,
            part_uuid: None,
            part_type: None,
            grub_position: None,
            root_fs: is_root_fs(fs),
        }
    }

    /// A BLS entry `id` on volume `vol`, titled `id`, booting `/vmlinuz-<id>`.
    pub(crate) fn entry(id: &str, vol: &str) -> BootEntry {
        BootEntry {
            id: id.into(),
            title: id.into(),
            version: None,
            kernel: FileRef {
                volume: vol.into(),
                path: format!("/vmlinuz-{id}"),
            },
            initrds: vec![],
            cmdline: String::new(),
            devicetree: None,
            format: Format::Bls,
            kind: EntryKind::Linux,
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
    fn the_same_boot_from_two_configs_is_one_entry_and_keeps_the_default() {
        let mut list = BootList::default();
        let mut grub = entry("grub-debian", "vda1");
        grub.format = Format::Grub;
        grub.kernel.path = "/vmlinuz".into();
        let mut bls = entry("debian", "vda1");
        bls.kernel.path = "/vmlinuz".into();
        bls.cmdline = "  ".into(); // whitespace differences do not matter
        let other = entry("other", "vda1");
        list.merge(Found {
            entries: vec![grub],
            ..Found::default()
        });
        list.merge(Found {
            entries: vec![other, bls],
            default: Some(DefaultRule::Index(1)),
            ..Found::default()
        });
        let ids: Vec<&str> = list.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["grub-debian", "other"]);
        assert_eq!(
            list.default,
            Some(0),
            "the default was the duplicate: its twin is the default"
        );
    }

    #[test]
    fn twins_within_one_configuration_both_stay_with_unique_ids() {
        let mut list = BootList::default();
        let a = entry("same", "vda1");
        let b = entry("same", "vda1");
        let c = entry("same", "vda1");
        list.merge(Found {
            entries: vec![a, b, c],
            default: Some(DefaultRule::Index(1)),
            ..Found::default()
        });
        let ids: Vec<&str> = list.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["same", "same@vda1", "same@vda1#2"]);
        assert_eq!(list.default, Some(1));
    }

    #[test]
    fn the_same_boot_twice_in_one_config_stays_twice() {
        let mut list = BootList::default();
        let mut a = entry("simple", "v");
        a.kernel.path = "/vmlinuz".into();
        let mut b = entry("advanced", "v");
        b.kernel.path = "/vmlinuz".into();
        list.merge(Found {
            entries: vec![a.clone(), b],
            default: Some(DefaultRule::Index(1)),
            ..Found::default()
        });
        assert_eq!(list.entries.len(), 2);
        assert_eq!(list.default, Some(1));
        list.merge(Found {
            entries: vec![a],
            ..Found::default()
        });
        assert_eq!(
            list.entries.len(),
            2,
            "the same boot from another config is dropped"
        );
    }

    #[test]
    fn default_args_go_only_to_kernels_found_without_a_config() {
        let mut list = BootList::default();
        let mut scanned = entry("scanned", "v");
        scanned.format = Format::Bootdir;
        scanned.cmdline = "root=PARTUUID=x ro".into();
        list.merge(Found {
            entries: vec![entry("bls", "v"), scanned],
            ..Found::default()
        });
        list.append_args(Format::Bootdir, " console=ttyS0 ");
        assert_eq!(list.entries[0].cmdline, "");
        assert_eq!(list.entries[1].cmdline, "root=PARTUUID=x ro console=ttyS0");
    }

    #[test]
    fn find_by_id_title_or_glob_and_append_to_all() {
        let mut list = BootList::default();
        let mut b = entry("debian-6.1", "v");
        b.title = "Debian GNU/Linux 12".into();
        b.cmdline = "quiet".into();
        list.merge(Found {
            entries: vec![entry("a", "v"), b],
            ..Found::default()
        });
        assert_eq!(list.find("debian-6.1"), Some(1));
        assert_eq!(list.find("debian-6.1.conf"), Some(1));
        assert_eq!(list.find("Debian GNU/Linux 12"), Some(1));
        assert_eq!(list.find("debian-*"), Some(1));
        assert_eq!(list.find("*"), Some(0));
        assert_eq!(list.find("fedora"), None);
        list.append_all(" x=1 ");
        assert_eq!(list.entries[0].cmdline, "x=1");
        assert_eq!(list.entries[1].cmdline, "quiet x=1");
    }

    #[test]
    fn many_entries_with_one_id_are_renamed_in_linear_time() {
        let mut list = BootList::default();
        let t = std::time::Instant::now();
        list.merge(Found {
            entries: (0..4096).map(|_| entry("same", "vda1")).collect(),
            ..Found::default()
        });
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
        let ids: std::collections::HashSet<&str> =
            list.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), 4096);
        assert_eq!(list.entries[4095].id, "same@vda1#4095");
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

    #[test]
    fn a_source_location_names_volume_file_and_line_or_the_url() {
        let src = |volume: &str, file: &str, line| EntrySource {
            volume: volume.into(),
            file: file.into(),
            line,
        };
        assert_eq!(
            src("vda1", "/loader/entries/a.conf", Some(2)).location(),
            "vda1:/loader/entries/a.conf:2"
        );
        assert_eq!(
            src("vda1", "/boot/grub/grub.cfg", None).location(),
            "vda1:/boot/grub/grub.cfg"
        );
        assert_eq!(
            src("tftp://10.0.2.2", "/pxelinux.cfg/default", Some(12)).location(),
            "tftp://10.0.2.2/pxelinux.cfg/default:12"
        );
        assert_eq!(
            src("eth0 tftp://10.0.2.2", "/pxelinux.cfg/default", Some(12)).location(),
            "eth0 tftp://10.0.2.2/pxelinux.cfg/default:12"
        );
        assert_eq!(
            src("enp1s0 http://boot.example:8080/", "/a/boot.ipxe", None).location(),
            "enp1s0 http://boot.example:8080/a/boot.ipxe"
        );
        // A disk volume whose label looks like a URL is still a disk volume: only the last
        // word of the name counts, and a disk volume's name has no space.
        assert_eq!(src("sda1", "/x://y", None).location(), "sda1:/x://y");
    }

    #[test]
    fn files_and_errors_are_shown_where_they_are() {
        let f = |volume: &str, path: &str| FileRef {
            volume: volume.into(),
            path: path.into(),
        };
        assert_eq!(f("vda2", "/vmlinuz").to_string(), "vda2:/vmlinuz");
        assert_eq!(
            f("eth0 tftp://10.0.2.2", "/debian-installer/amd64/linux").to_string(),
            "eth0 tftp://10.0.2.2/debian-installer/amd64/linux"
        );
        let e = EntryError {
            volume: "eth0 tftp://10.0.2.2".into(),
            file: "/pxelinux.cfg/default".into(),
            line: Some(3),
            message: "no KERNEL".into(),
        };
        assert_eq!(
            e.to_string(),
            "eth0 tftp://10.0.2.2/pxelinux.cfg/default:3: no KERNEL"
        );
    }
}
