//! `modules.alias`: which modules drive a device, by its modalias (`alias <glob> <module>`
//! lines, matched with fnmatch semantics as kmod does).
//!
//! Parsing is bounded ([`MAX_LINES`] lines, [`MAX_PATTERN`] bytes per pattern) and never
//! fails: malformed lines are skipped. Patterns are grouped by their bus prefix (`pci:`,
//! `usb:`, `virtio:`...), so one lookup only tries the aliases of its own bus. This module
//! does not read sysfs or load anything (see [`super::Loader`]).

use std::collections::HashMap;

/// Lines read at most (a generic distro kernel has ~30 000 aliases).
pub const MAX_LINES: usize = 200_000;
/// Longest pattern or modalias considered.
pub const MAX_PATTERN: usize = 1024;

/// The parsed alias table.
#[derive(Debug, Default, Clone)]
pub struct Aliases {
    /// Bus prefix (up to and including the first `:`) → (pattern, module), in file order.
    by_bus: HashMap<String, Vec<(String, String)>>,
    /// Patterns whose bus prefix itself has wildcards, or no `:` at all (`fs-vfat`).
    other: Vec<(String, String)>,
}

/// The literal bus prefix of a pattern or modalias: `pci:` of `pci:v00001AF4d*`; `None` if
/// there is no `:` or a wildcard comes first.
fn bus_prefix(s: &str) -> Option<&str> {
    let end = s.find(':')?;
    let prefix = &s[..=end];
    (!prefix.contains(['*', '?', '['])).then_some(prefix)
}

impl Aliases {
    /// Parses `modules.alias` text. Module names are normalised (`-` → `_`).
    pub fn parse(text: &str) -> Aliases {
        let mut a = Aliases::default();
        for line in text.lines().take(MAX_LINES) {
            let mut words = line.split_whitespace();
            if words.next() != Some("alias") {
                continue;
            }
            let (Some(pattern), Some(module), None) = (words.next(), words.next(), words.next())
            else {
                continue;
            };
            if pattern.len() > MAX_PATTERN || module.len() > MAX_PATTERN {
                continue;
            }
            let entry = (pattern.to_string(), super::normalize(module));
            match bus_prefix(pattern) {
                Some(bus) => a.by_bus.entry(bus.to_string()).or_default().push(entry),
                None => a.other.push(entry),
            }
        }
        a
    }

    /// The modules whose aliases match `modalias`, each once, in file order (kmod loads every
    /// match, and so do we).
    pub fn lookup(&self, modalias: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if modalias.len() > MAX_PATTERN {
            return out;
        }
        let bus = bus_prefix(modalias).and_then(|b| self.by_bus.get(b));
        for (pattern, module) in bus.into_iter().flatten().chain(&self.other) {
            if !out.contains(module)
                && crate::glob::matches_bytes(pattern.as_bytes(), modalias.as_bytes())
            {
                out.push(module.clone());
            }
        }
        out
    }

    /// How many aliases were read.
    pub fn len(&self) -> usize {
        self.by_bus.values().map(Vec::len).sum::<usize>() + self.other.len()
    }

    /// Whether no alias was read.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines of the Debian 6.1 cloud kernel's alias index (as xtask writes it).
    const SAMPLE: &str = "\
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000002v* virtio_blk
alias virtio:d00000008v* virtio_scsi
alias scsi:t-0x00* sd_mod
alias scsi:t-0x07* sd_mod
alias scsi:t-0x0e* sd_mod
alias pci:v*d*sv*sd*bc01sc06i01* ahci
alias pci:v00008086d00002922sv*sd*bc*sc*i* ahci
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb-storage
alias fs-vfat vfat
alias *:t-0x00* greedy
broken line
alias onlytwo
alias a b c
";

    #[test]
    fn finds_the_driver_of_each_bus() {
        let a = Aliases::parse(SAMPLE);
        assert_eq!(a.len(), 11);
        assert_eq!(
            a.lookup("pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"),
            ["virtio_pci"]
        );
        assert_eq!(a.lookup("virtio:d00000002v00001AF4"), ["virtio_blk"]);
        // Both ahci aliases match; the module is listed once.
        assert_eq!(
            a.lookup("pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01"),
            ["ahci"]
        );
        assert_eq!(
            a.lookup("usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00"),
            ["usb_storage"]
        );
        // A wildcard bus prefix is tried for every modalias.
        assert_eq!(a.lookup("scsi:t-0x00"), ["sd_mod", "greedy"]);
        assert_eq!(a.lookup("fs-vfat"), ["vfat"]);
        assert!(a.lookup("virtio:d00000001v00001AF4").is_empty());
        assert!(a.lookup("").is_empty());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "(alias [a-z:*?\\[\\]0-9-]{0,12} [a-z_-]{0,6}\n){0,8}", m in "[a-z:*0-9]{0,12}") {
            let a = Aliases::parse(&text);
            let _ = a.lookup(&m);
        }

        /// Every literal alias finds its module.
        #[test]
        fn literal_aliases_match_themselves(name in "[a-z]{1,6}:[a-z0-9]{0,8}", module in "[a-z_]{1,8}") {
            let a = Aliases::parse(&format!("alias {name} {module}\n"));
            proptest::prop_assert_eq!(a.lookup(&name), vec![module]);
        }
    }
}
