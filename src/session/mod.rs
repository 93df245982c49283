//! The boot session's policy, as pure state machines with no I/O: `/init` feeds them events
//! (disk seen, disk read, entries found, keys, ticks, load finished) and performs what they
//! ask (read disks, wait, show the menu, load, kexec, rescan).
//!
//! - [`policy`]: the kernel command line over `/etc/leapboot.toml` over the boot
//!   configurations: timeout, default entry, appended arguments, lock, settle rule. The host
//!   CLI uses it too, so `leapboot list` marks the default `/init` boots.
//! - [`discovery`]: the initial wait for disks (read each disk as it appears; stop as soon
//!   as the default is known).
//! - [`Preload`]: which entry to load into the kernel while the countdown runs, so that the
//!   countdown's end (or Enter on that entry) kexecs at once.
//! - [`prompt_key`]: the keys of the "nothing could be booted" prompt, locked mode included.
//! - [`new_entries`]: what a late disk added.
//!
//! The menu itself (keys, countdown, views, locked mode) is [`crate::menu::state`].

pub mod discovery;
pub mod policy;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use discovery::{Discovery, Done, Next};
pub use policy::{DefaultChoice, DefaultSource, Policy, DEFAULT_TIMEOUT};

use crate::cmdline::NetMode;
use crate::entry::{BootEntry, BootList, DefaultRule, Found};
use crate::menu::state::Menu;

/// Logs a named point of the boot for the benchmark (`cargo xtask bench` reads these):
/// `leapboot milestone <name> <ms>`, `at` counted from PID 1's start.
pub fn milestone(name: &str, at: Duration) {
    log::info!("leapboot milestone {name} {}", at.as_millis());
}

/// The disks' list with what the network found, as `mode` says: `On` puts network entries
/// after the disks' and lets them name the default (and timeout) only when no disk has an
/// entry; `First` puts them first, their default winning; `Off` ignores them.
pub fn with_network(disks: BootList, net: &[Found], mode: NetMode) -> BootList {
    match mode {
        NetMode::Off => disks,
        NetMode::On => {
            let mut list = disks;
            let disks_have_entries = !list.entries.is_empty();
            for f in net {
                let mut f = f.clone();
                if disks_have_entries {
                    f.default = None;
                    f.timeout = None;
                }
                list.merge(f);
            }
            list
        }
        NetMode::First => {
            let mut list = BootList::default();
            for f in net {
                list.merge(f.clone());
            }
            list.merge(Found {
                entries: disks.entries,
                default: disks.default.map(DefaultRule::Index),
                timeout: disks.timeout,
                ..Found::default()
            });
            list
        }
    }
}

/// Whether the boot must wait for the network (still `pending`) before it decides: always
/// in `First` mode, and in `On` mode when the disks gave no entry at all.
pub fn wait_for_network(mode: NetMode, pending: bool, disks_have_entries: bool) -> bool {
    pending
        && match mode {
            NetMode::Off => false,
            NetMode::On => !disks_have_entries,
            NetMode::First => true,
        }
}

/// Whether a rescan brings the network up again: when network boot is on and the last
/// bring-up has `finished` (or never started: no NIC then). Leases, servers and their
/// configurations are asked anew, so a boot server that was down (no lease, no config, a
/// cut transfer) is found once it is back; a bring-up still running is left to finish.
pub fn network_again(mode: NetMode, finished: bool) -> bool {
    mode != NetMode::Off && finished
}

/// The entries of `new` whose ids `old` does not have: what a late disk added.
pub fn new_entries<'a>(old: &BootList, new: &'a BootList) -> Vec<&'a BootEntry> {
    new.entries
        .iter()
        .filter(|e| !old.entries.iter().any(|o| o.id == e.id))
        .collect()
}

/// The entry already loaded into the kernel (`kexec_file_load`) while the menu counts down.
///
/// The kernel keeps one loaded image and a new load replaces it, so loading the default
/// ahead costs nothing when another entry is chosen: that one is loaded when it is chosen.
/// An entry is loaded ahead only while the countdown runs (an unattended boot is coming) and
/// only once per id and command line, failed or not (a failure is reported when it boots).
/// An entry with network files is never loaded ahead: its transfer would hold the menu (keys,
/// countdown) for as long as the server takes, and Esc could not stop it; it loads when it
/// boots, where Esc and Ctrl-C cancel.
#[derive(Clone, Debug, Default)]
pub struct Preload {
    tried: Option<(String, String)>,
    loaded: bool,
}

impl Preload {
    /// What to load now, if anything: the default entry with its own command line, while the
    /// countdown runs and it is allowed to boot.
    pub fn wanted(&self, menu: &Menu) -> Option<usize> {
        menu.countdown()?;
        let i = menu.default()?;
        let e = menu.entries().get(i)?;
        if !menu.allowed(i) || crate::net::netfs::from_network(e) {
            return None;
        }
        match &self.tried {
            Some((id, cmdline)) if *id == e.id && *cmdline == e.cmdline => None,
            _ => Some(i),
        }
    }

    /// `entry` with `cmdline` was loaded ahead (`ok`) or its load failed.
    pub fn done(&mut self, entry: &BootEntry, cmdline: &str, ok: bool) {
        self.tried = Some((entry.id.clone(), cmdline.to_string()));
        self.loaded = ok;
    }

    /// Whether booting `entry` with `cmdline` needs no load: it is the one in the kernel.
    pub fn is_loaded(&self, entry: &BootEntry, cmdline: &str) -> bool {
        self.loaded
            && self
                .tried
                .as_ref()
                .is_some_and(|(id, c)| *id == entry.id && c == cmdline)
    }

    /// The loaded image is gone (unloaded, or replaced by another load).
    pub fn forget(&mut self) {
        self.loaded = false;
    }
}

/// What a key at the "nothing could be booted" prompt does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptKey {
    /// Reboot through the firmware.
    Reboot,
    /// Power off.
    PowerOff,
    /// Rescan now.
    Rescan,
    /// Refused: locked mode (reboot and power off need the menu's password, and there is no
    /// menu without entries).
    Refused,
    /// Not a prompt key.
    Ignored,
}

/// The prompt shown when nothing could be booted, for the console.
pub fn prompt_text(locked: bool, rescan_after: Duration) -> String {
    if locked {
        format!(
            "rescanning in {} s (or when a disk appears); press Enter to rescan now (locked: reboot and power off are not offered)",
            rescan_after.as_secs()
        )
    } else {
        format!(
            "rescanning in {} s (or when a disk appears); press r to reboot, p to power off, Enter to rescan now",
            rescan_after.as_secs()
        )
    }
}

/// The meaning of `key` at the prompt. In locked mode nothing but a rescan is possible: the
/// password guards reboot and power off in the menu, and this prompt has no password entry.
pub fn prompt_key(key: u8, locked: bool) -> PromptKey {
    let wanted = match key {
        b'r' | b'R' => PromptKey::Reboot,
        b'p' | b'P' => PromptKey::PowerOff,
        b'\r' | b'\n' => return PromptKey::Rescan,
        _ => return PromptKey::Ignored,
    };
    if locked {
        PromptKey::Refused
    } else {
        wanted
    }
}
