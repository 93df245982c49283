//! The initial wait for disks, as a clock-free state machine: disks seen, disks read, modules
//! loaded and the default entry found go in; "read these disks", "wait this long" or "done"
//! comes out. `/init` performs the reads and the waiting.
//!
//! The rule (README § "When leapboot stops waiting for disks"):
//! 1. every disk seen is read as soon as it is seen, while waiting goes on;
//! 2. once at least one disk is there, every disk seen so far has been read, and the entries
//!    read name a default entry (a configured pattern that matches, or a boot configuration's
//!    own default), waiting ends at once: no later disk could change what boots;
//! 3. otherwise waiting ends when nothing new (no disk, no module loaded for a new device)
//!    happened for `settle`, or after `device_wait` in all.
//!
//! 4. with no disk at all, entries from the network end the wait by the settle rule (not
//!    `device_wait`), whether or not they name a default, as a disk does in rule 3: a
//!    diskless machine boots from the network promptly. (Debian's netboot menus name none:
//!    vesamenu and GRUB highlight their first entry.)
//!
//! Rule 2's one risk: a disk that appears after the default was found cannot take the
//! default (it still joins the menu). `settle_always` turns rule 2 off.

use std::time::{Duration, Instant};

use super::policy::Policy;

/// Why the initial wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Done {
    /// The default entry is known and every disk seen has been read.
    DefaultFound,
    /// Nothing new for the settle time.
    Settled,
    /// The longest wait passed.
    MaxWait,
}

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Open these disks and read their entries, then report each with [`Discovery::read`].
    Read(Vec<String>),
    /// Wait for an event at most this long, then ask again.
    Wait(Duration),
    /// Stop waiting.
    Done(Done),
}

/// The initial wait's state.
#[derive(Clone, Debug)]
pub struct Discovery {
    start: Instant,
    last_change: Instant,
    settle: Duration,
    max: Duration,
    settle_always: bool,
    seen: Vec<String>,
    read: Vec<String>,
    default_named: bool,
    network_entries: bool,
}

impl Discovery {
    /// Starts waiting at `now` under `policy`'s settle rule.
    pub fn new(now: Instant, policy: &Policy) -> Discovery {
        Discovery {
            start: now,
            last_change: now,
            settle: policy.settle,
            max: policy.device_wait,
            settle_always: policy.settle_always,
            seen: Vec::new(),
            read: Vec::new(),
            default_named: false,
            network_entries: false,
        }
    }

    /// A whole disk exists (from the first sysfs scan or a uevent). Returns whether it is new.
    pub fn seen(&mut self, name: &str, now: Instant) -> bool {
        if self.seen.iter().any(|s| s == name) {
            return false;
        }
        self.seen.push(name.to_string());
        self.last_change = now;
        true
    }

    /// A disk went away before it was read.
    pub fn removed(&mut self, name: &str) {
        if !self.read.iter().any(|r| r == name) {
            self.seen.retain(|s| s != name);
        }
    }

    /// A module was loaded for a new device: more disks may follow.
    pub fn module_loaded(&mut self, now: Instant) {
        self.last_change = now;
    }

    /// Disk `name` was read (or could not be): its entries are in the list.
    pub fn read(&mut self, name: &str) {
        if !self.read.iter().any(|r| r == name) {
            self.read.push(name.to_string());
        }
    }

    /// Whether the entries read so far name a default (see [`super::DefaultChoice::is_named`]).
    pub fn default_named(&mut self, named: bool) {
        self.default_named = named;
    }

    /// Whether the network gave entries (that may still change the default: not yet, in
    /// `network = "first"` mode while it is pending). With no disk (or none seen yet) that
    /// ends the wait once nothing new happened for the settle time, instead of waiting the
    /// whole `device_wait` for a disk a diskless machine will never have.
    pub fn network_entries(&mut self, some: bool) {
        self.network_entries = some;
    }

    /// The disks seen so far, in the order they were seen.
    pub fn disks(&self) -> &[String] {
        &self.seen
    }

    /// What to do at `now`.
    pub fn next(&self, now: Instant) -> Next {
        let unread: Vec<String> = self
            .seen
            .iter()
            .filter(|s| !self.read.contains(s))
            .cloned()
            .collect();
        if !unread.is_empty() {
            return Next::Read(unread);
        }
        let waited = now.saturating_duration_since(self.start);
        if waited >= self.max {
            return Next::Done(Done::MaxWait);
        }
        let have_disks = !self.seen.is_empty();
        if have_disks && self.default_named && !self.settle_always {
            return Next::Done(Done::DefaultFound);
        }
        let quiet = now.saturating_duration_since(self.last_change);
        if (have_disks || self.network_entries) && quiet >= self.settle {
            return Next::Done(Done::Settled);
        }
        let to_max = self.max - waited;
        Next::Wait(if have_disks || self.network_entries {
            to_max.min(self.settle - quiet)
        } else {
            to_max
        })
    }
}
