//! Which volumes the administrator trusts, and what that decides in locked mode.
//!
//! A USB stick is a volume anyone can write. Without this, a stick whose `grub.cfg` sets
//! `timeout=0`, `default=<id>` and an entry titled like the real one (booting the real
//! kernel, found through `root=(<the real /boot>)`, with `init=/bin/sh`) became the default
//! and autobooted; a stick enumerated first took the bare id an `allowed_entries` named. The
//! rules, all in [`decide`]:
//!
//! - Trusted volumes are named in `/etc/leapboot.toml` as `trusted_volumes = ["UUID=…",
//!   "PARTUUID=…"]`. An identity claimed by more than one volume trusts none of them (a
//!   stick can copy a UUID; it cannot make the real volume disappear, so the clash shows).
//!   Without `trusted_volumes`, when `allow_devices` is set, every volume read is trusted
//!   (the allow list already decided which are read); with neither, none is.
//! - Locked mode with `allowed_entries`: an entry may boot only if it matches a glob (id or
//!   title) *and* its configuration, kernel, initrds and devicetree are all on trusted
//!   volumes.
//! - In locked mode an untrusted volume may not set the default or the timeout
//!   ([`Verdict::may_configure`]; the pipeline drops what such a volume said,
//!   [`crate::pipeline::Volumes::boot_list_trusted`]).
//! - Bare ids go to trusted volumes first: when an untrusted entry holds an id a trusted
//!   entry also has, the trusted one gets the bare id and the other `<id>@<volume>`.
//!
//! Pure: no I/O; the volumes' identities come in as [`Identity`] values.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::entry::{BootEntry, BootList};

/// What the configuration says about trust.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Locked mode.
    pub locked: bool,
    /// `allowed_entries`: globs over ids and titles (empty: every entry, and no trust check).
    pub allowed: Vec<String>,
    /// `trusted_volumes`: `UUID=<fs uuid>` or `PARTUUID=<partition uuid>`, case-insensitive.
    pub trusted_volumes: Vec<String>,
    /// Whether `allow_devices` is set (then, without `trusted_volumes`, the volumes read are
    /// the trusted ones).
    pub allow_devices_set: bool,
}

/// One opened volume's identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// Its name (what `FileRef::volume` and `EntrySource::volume` hold).
    pub name: String,
    /// Filesystem UUID.
    pub uuid: Option<String>,
    /// Partition UUID.
    pub part_uuid: Option<String>,
}

/// What [`decide`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Names of the trusted volumes.
    pub trusted: BTreeSet<String>,
    /// Per entry of the list (after [`decide`] renamed ids): may it boot in locked mode.
    pub allowed: Vec<bool>,
    /// Problems to log (ambiguous or unmatched identities, a policy that allows nothing).
    pub problems: Vec<String>,
    locked: bool,
}

impl Verdict {
    /// Whether `volume` may set the default entry or the timeout: always when unlocked,
    /// only a trusted volume when locked.
    pub fn may_configure(&self, volume: &str) -> bool {
        !self.locked || self.trusted.contains(volume)
    }
}

/// The names of the volumes `policy` trusts, with problems found on the way.
pub fn trusted_volumes(ids: &[Identity], policy: &Policy) -> (BTreeSet<String>, Vec<String>) {
    let mut problems = Vec::new();
    if policy.trusted_volumes.is_empty() {
        if policy.allow_devices_set {
            return (ids.iter().map(|i| i.name.clone()).collect(), problems);
        }
        return (BTreeSet::new(), problems);
    }
    let mut out = BTreeSet::new();
    for spec in &policy.trusted_volumes {
        let (key, value) = spec.split_once('=').unwrap_or(("", spec));
        let value = value.trim().trim_matches('"');
        let key = key.trim().to_ascii_uppercase();
        fn pick<'i>(key: &str, i: &'i Identity) -> Option<&'i str> {
            match key {
                "UUID" => i.uuid.as_deref(),
                "PARTUUID" => i.part_uuid.as_deref(),
                _ => None,
            }
        }
        let hits: Vec<&Identity> = ids
            .iter()
            .filter(|i| pick(&key, i).is_some_and(|v| v.eq_ignore_ascii_case(value)))
            .collect();
        match hits.as_slice() {
            [] => problems.push(format!(
                "trusted_volumes: {spec}: no such volume (or the key is not UUID= or PARTUUID=)"
            )),
            [one] => {
                out.insert(one.name.clone());
            }
            many => problems.push(format!(
                "trusted_volumes: {spec} is claimed by {} volumes ({}); none of them is trusted",
                many.len(),
                many.iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    (out, problems)
}

/// Applies `policy` to `list`: renames ids so trusted volumes hold the bare ones, drops a
/// default set by an untrusted volume in locked mode, and says which entries may boot.
pub fn decide(list: &mut BootList, ids: &[Identity], policy: &Policy) -> Verdict {
    let (trusted, mut problems) = trusted_volumes(ids, policy);
    if !policy.trusted_volumes.is_empty() || policy.allow_devices_set {
        rank_bare_ids(list, &trusted);
    }
    if policy.locked {
        if let Some(d) = list.default {
            if list
                .entries
                .get(d)
                .is_some_and(|e| !trusted.contains(&e.source.volume))
            {
                list.default = None;
            }
        }
    }
    let gate = policy.locked && !policy.allowed.is_empty();
    if gate && trusted.is_empty() {
        problems.push(
            "locked mode with allowed_entries: no volume is trusted (set trusted_volumes, or allow_devices); no entry may boot without the password".into(),
        );
    }
    let allowed = list
        .entries
        .iter()
        .map(|e| !gate || (matches_allowed(e, &policy.allowed) && on_trusted(e, &trusted)))
        .collect();
    Verdict {
        trusted,
        allowed,
        problems,
        locked: policy.locked,
    }
}

/// Whether `e` matches one of `globs` by id or title.
pub fn matches_allowed(e: &BootEntry, globs: &[String]) -> bool {
    globs
        .iter()
        .any(|g| crate::glob::matches(g, &e.id) || crate::glob::matches(g, &e.title))
}

/// Whether everything `e` boots, and the configuration that defines it, is on `trusted`.
pub fn on_trusted(e: &BootEntry, trusted: &BTreeSet<String>) -> bool {
    trusted.contains(&e.source.volume)
        && trusted.contains(&e.kernel.volume)
        && e.initrds.iter().all(|i| trusted.contains(&i.volume))
        && e.devicetree
            .as_ref()
            .is_none_or(|d| trusted.contains(&d.volume))
}

/// The id an entry had before [`BootList::merge`] made it unique (`<id>@<volume>` or
/// `<id>@<volume>#<n>`).
fn base_id(e: &BootEntry) -> &str {
    let suffix = format!("@{}", e.source.volume);
    if let Some(at) = e.id.rfind(&suffix) {
        let rest = &e.id[at + suffix.len()..];
        let numbered = rest
            .strip_prefix('#')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if rest.is_empty() || numbered {
            return &e.id[..at];
        }
    }
    &e.id
}

/// Gives each bare id to its first trusted entry when an untrusted one took it.
fn rank_bare_ids(list: &mut BootList, trusted: &BTreeSet<String>) {
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, e) in list.entries.iter().enumerate() {
        groups.entry(base_id(e).to_string()).or_default().push(i);
    }
    let mut taken: HashSet<String> = list.entries.iter().map(|e| e.id.clone()).collect();
    for (base, members) in groups {
        if members.len() < 2 {
            continue;
        }
        let holder = members
            .iter()
            .copied()
            .find(|&i| list.entries[i].id == base);
        let trusted_first = members
            .iter()
            .copied()
            .find(|&i| trusted.contains(&list.entries[i].source.volume));
        let (Some(holder), Some(winner)) = (holder, trusted_first) else {
            continue;
        };
        if trusted.contains(&list.entries[holder].source.volume) {
            continue; // a trusted entry has it already
        }
        // The untrusted holder gives the bare id up: `<id>@<volume>` (numbered if taken).
        taken.remove(&list.entries[winner].id);
        let vol = list.entries[holder].source.volume.clone();
        let mut id = format!("{base}@{vol}");
        let mut n = 1;
        while taken.contains(&id) {
            n += 1;
            id = format!("{base}@{vol}#{n}");
        }
        taken.insert(id.clone());
        list.entries[holder].id = id;
        list.entries[winner].id = base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::tests::entry;
    use crate::entry::{FileRef, Found};

    fn ids() -> Vec<Identity> {
        vec![
            Identity {
                name: "usb1".into(),
                uuid: Some("STICK".into()),
                part_uuid: Some("p-stick".into()),
            },
            Identity {
                name: "vda1".into(),
                uuid: Some("BOOT".into()),
                part_uuid: Some("p-boot".into()),
            },
            Identity {
                name: "vdb1".into(),
                uuid: Some("CLONE".into()),
                part_uuid: Some("p-clone".into()),
            },
            Identity {
                name: "vdc1".into(),
                uuid: Some("CLONE".into()),
                part_uuid: Some("p-clone2".into()),
            },
        ]
    }

    fn policy(locked: bool, allowed: &[&str], trusted: &[&str]) -> Policy {
        Policy {
            locked,
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
            trusted_volumes: trusted.iter().map(|s| s.to_string()).collect(),
            allow_devices_set: false,
        }
    }

    #[test]
    fn trusted_volumes_by_identity() {
        let cases: &[(&[&str], bool, &[&str], usize)] = &[
            // (trusted_volumes, allow_devices set, trusted names, problems)
            (&["UUID=boot"], false, &["vda1"], 0),
            (&["PARTUUID=P-BOOT"], false, &["vda1"], 0),
            (&["UUID=CLONE"], false, &[], 1), // claimed twice: none
            (&["UUID=nope"], false, &[], 1),
            (&["LABEL=boot"], false, &[], 1), // labels are not identities
            (&[], true, &["usb1", "vda1", "vdb1", "vdc1"], 0),
            (&[], false, &[], 0),
        ];
        for (specs, allow_devices_set, want, problems) in cases {
            let p = Policy {
                trusted_volumes: specs.iter().map(|s| s.to_string()).collect(),
                allow_devices_set: *allow_devices_set,
                ..Policy::default()
            };
            let (got, probs) = trusted_volumes(&ids(), &p);
            let got: Vec<&str> = got.iter().map(String::as_str).collect();
            assert_eq!(&got, want, "{specs:?}");
            assert_eq!(probs.len(), *problems, "{specs:?}: {probs:?}");
        }
    }

    /// The merged list of issue 11's attack: the stick (enumerated first) took the bare id
    /// `debian` and holds an entry titled like the real one that boots the real kernel from
    /// vda1 with `init=/bin/sh`; the real entry became `debian@vda1`.
    fn attack() -> BootList {
        let mut list = BootList::default();
        let mut fake = entry("debian", "usb1");
        fake.title = "Debian GNU/Linux".into();
        fake.kernel = FileRef {
            volume: "vda1".into(),
            path: "/vmlinuz".into(),
        };
        fake.cmdline = "rw init=/bin/sh".into();
        let mut stick_own = entry("stick", "usb1");
        stick_own.title = "Debian GNU/Linux rescue".into();
        list.merge(Found {
            entries: vec![fake, stick_own],
            default: Some(crate::entry::DefaultRule::Index(0)),
            ..Found::default()
        });
        let mut real = entry("debian", "vda1");
        real.title = "Debian GNU/Linux".into();
        real.cmdline = "root=/dev/vda2 ro".into();
        list.merge(Found {
            entries: vec![real],
            ..Found::default()
        });
        assert_eq!(list.entries[2].id, "debian@vda1", "what merge did");
        list
    }

    #[test]
    fn locked_mode_policy_table() {
        // (policy, ids after, allowed per entry, default after)
        type Case = (Policy, [&'static str; 3], [bool; 3], Option<usize>);
        let cases: Vec<Case> = vec![
            // Unlocked: ids still ranked by trust, everything boots, the default stays.
            (
                policy(false, &[], &["UUID=BOOT"]),
                ["debian@usb1", "stick", "debian"],
                [true, true, true],
                Some(0),
            ),
            // Locked by title glob: only the real entry (its config and kernel on vda1).
            (
                policy(true, &["Debian GNU/Linux*"], &["UUID=BOOT"]),
                ["debian@usb1", "stick", "debian"],
                [false, false, true],
                None,
            ),
            // Locked by exact id: the bare id is the trusted volume's.
            (
                policy(true, &["debian"], &["PARTUUID=p-boot"]),
                ["debian@usb1", "stick", "debian"],
                [false, false, true],
                None,
            ),
            // Locked, allowed_entries set, nothing trusted: nothing boots without the password.
            (
                policy(true, &["debian"], &[]),
                ["debian", "stick", "debian@vda1"],
                [false, false, false],
                None,
            ),
            // Locked without allowed_entries: every entry boots, untrusted default dropped.
            (
                policy(true, &[], &["UUID=BOOT"]),
                ["debian@usb1", "stick", "debian"],
                [true, true, true],
                None,
            ),
        ];
        for (p, want_ids, want_allowed, want_default) in cases {
            let mut list = attack();
            let v = decide(&mut list, &ids(), &p);
            let got: Vec<&str> = list.entries.iter().map(|e| e.id.as_str()).collect();
            assert_eq!(got, want_ids, "{p:?}");
            assert_eq!(v.allowed, want_allowed, "{p:?}");
            assert_eq!(list.default, want_default, "{p:?}");
        }
    }

    #[test]
    fn only_trusted_volumes_configure_a_locked_boot() {
        let mut list = attack();
        let v = decide(&mut list, &ids(), &policy(true, &[], &["UUID=BOOT"]));
        assert!(v.may_configure("vda1"));
        assert!(!v.may_configure("usb1"));
        let v = decide(&mut attack(), &ids(), &policy(false, &[], &["UUID=BOOT"]));
        assert!(v.may_configure("usb1"), "unlocked: any volume");
    }

    #[test]
    fn base_ids_survive_numbered_renames() {
        let mut e = entry("x@vda1#3", "vda1");
        assert_eq!(base_id(&e), "x");
        e.id = "x@vda1".into();
        assert_eq!(base_id(&e), "x");
        e.id = "mail@vda1.example".into();
        assert_eq!(base_id(&e), "mail@vda1.example");
    }
}
