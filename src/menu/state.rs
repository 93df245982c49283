//! The menu's state machine: keys and clock ticks in, state and [`Action`]s out.
//!
//! Pure: no terminal, no clock, no I/O. The event loop (init/src/menu_loop.rs) feeds it
//! [`Key`]s, calls [`Menu::tick`] once a second, hands it new entries found while it is shown
//! ([`Menu::replace_entries`]) and performs the actions it returns. [`render`](super::render)
//! draws it.
//!
//! Rules kept here: any key stops the countdown; a countdown reaching 0 asks for
//! [`Action::Autoboot`] (the default first, then the others, as an unattended boot does);
//! entries added while shown keep the countdown unless the default changes; in locked mode
//! editing, reboot, power off and rescan need the password (or are refused when there is no
//! password) and only allowed entries boot.

use super::editor::{LineEditor, Outcome};
use super::keys::Key;
use super::password::PasswordHash;
use crate::entry::{BootEntry, Format, Timeout};

/// Wrong passwords allowed without any wait; from the next one on, each wrong password
/// makes the prompt wait [`lockout_secs`] before it asks again. Never a permanent lock: a
/// permanent lock would leave the machine unusable until a reboot, which itself needs the
/// password.
const MAX_PASSWORD_TRIES: u32 = 3;
/// The longest wait between password attempts, in seconds.
pub const MAX_LOCKOUT_SECS: u32 = 300;

/// The wait after `failed` wrong passwords in a row: none for the first
/// [`MAX_PASSWORD_TRIES`] - 1, then 5 s doubling per failure, at most [`MAX_LOCKOUT_SECS`].
pub fn lockout_secs(failed: u32) -> u32 {
    if failed < MAX_PASSWORD_TRIES {
        return 0;
    }
    let doublings = (failed - MAX_PASSWORD_TRIES).min(16);
    (5u32 << doublings).min(MAX_LOCKOUT_SECS)
}

/// What the loop must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Boot entry `index` with `cmdline` (a person chose it); on failure, call
    /// [`Menu::boot_failed`].
    Boot {
        /// Index into the entries.
        index: usize,
        /// The command line, possibly edited.
        cmdline: String,
    },
    /// The countdown ran out: boot [`Menu::boot_order`], each with its own command line.
    Autoboot,
    /// Discover devices and entries again.
    Rescan,
    /// Reboot the machine.
    Reboot,
    /// Power the machine off.
    PowerOff,
}

/// What a locked session protects.
#[derive(Clone, Debug, Default)]
pub struct Lock {
    /// Locked mode (`locked = true`, or a password hash configured).
    pub locked: bool,
    /// The password that unlocks the session; without one, locked actions are refused.
    pub hash: Option<PasswordHash>,
    /// Globs over entry ids and titles that may boot while locked; empty: all.
    pub allowed: Vec<String>,
    /// The trusted volumes ([`crate::trust::decide`]'s verdict): when set, an allowed entry
    /// must also have its configuration and every file it boots on one of them. `None`:
    /// not decided by the caller (globs alone).
    pub trusted: Option<std::collections::BTreeSet<String>>,
}

/// Identity of a volume, for the details view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VolumeInfo {
    /// Volume name as entries name it (`vda1`).
    pub name: String,
    /// Filesystem type.
    pub fs: String,
    /// Filesystem UUID.
    pub uuid: Option<String>,
    /// Filesystem label.
    pub label: Option<String>,
}

/// Something the password unlocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guarded {
    /// Editing the command line.
    Edit,
    /// Rescanning.
    Rescan,
    /// Rebooting.
    Reboot,
    /// Powering off.
    PowerOff,
    /// Booting an entry outside `allowed_entries`.
    Boot,
}

/// What is on the screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum View {
    /// The entry list.
    List,
    /// Details of the selected entry.
    Details,
    /// Editing the selected entry's command line.
    Edit(LineEditor),
    /// The log, scrolled `scroll` lines up from its end.
    Log {
        /// Lines above the newest.
        scroll: usize,
    },
    /// The key help.
    Help,
    /// Asking the password for `then`.
    Password {
        /// The typed password (never shown).
        editor: LineEditor,
        /// What it unlocks.
        then: Guarded,
    },
}

/// The menu.
#[derive(Clone, Debug)]
pub struct Menu {
    entries: Vec<BootEntry>,
    volumes: Vec<VolumeInfo>,
    default: Option<usize>,
    selected: usize,
    /// First entry line shown.
    top: usize,
    /// Entry lines that fit on the screen (set by the loop from the terminal size).
    page: usize,
    timeout: Timeout,
    countdown: Option<u32>,
    view: View,
    status: Option<String>,
    lock: Lock,
    unlocked: bool,
    failed_tries: u32,
    /// Seconds before the password prompt may be shown again (counted down by ticks).
    lockout: u32,
    /// The command line last edited per entry index (kept when a boot fails).
    edited: Option<(usize, String)>,
}

impl Menu {
    /// A menu over `entries` with `default` selected and the countdown at `timeout`.
    pub fn new(
        entries: Vec<BootEntry>,
        default: Option<usize>,
        timeout: Timeout,
        lock: Lock,
    ) -> Menu {
        let mut m = Menu {
            entries,
            volumes: Vec::new(),
            default: None,
            selected: 0,
            top: 0,
            page: 10,
            timeout,
            countdown: match timeout {
                Timeout::Secs(n) => Some(n),
                Timeout::Forever => None,
            },
            view: View::List,
            status: None,
            lock,
            unlocked: false,
            failed_tries: 0,
            lockout: 0,
            edited: None,
        };
        m.default = m.resolve_default(default);
        m.selected = m.default.unwrap_or(0);
        m
    }

    /// Sets what the details view knows about volumes.
    pub fn set_volumes(&mut self, volumes: Vec<VolumeInfo>) {
        self.volumes = volumes;
    }

    /// Sets how many entry lines fit on the screen.
    pub fn set_page(&mut self, lines: usize) {
        self.page = lines.max(1);
        self.scroll_to_selected();
    }

    /// The default, moved to the first allowed entry when locked mode forbids it.
    fn resolve_default(&self, default: Option<usize>) -> Option<usize> {
        let d = default.filter(|&i| i < self.entries.len());
        match d {
            Some(i) if self.allowed(i) => Some(i),
            _ => (0..self.entries.len()).find(|&i| self.allowed(i)),
        }
    }

    /// The entries shown.
    pub fn entries(&self) -> &[BootEntry] {
        &self.entries
    }
    /// Volume identities for the details view.
    pub fn volumes(&self) -> &[VolumeInfo] {
        &self.volumes
    }
    /// The default entry, if any may boot.
    pub fn default(&self) -> Option<usize> {
        self.default
    }
    /// The selected entry.
    pub fn selected(&self) -> usize {
        self.selected
    }
    /// The first entry line on screen.
    pub fn top(&self) -> usize {
        self.top
    }
    /// Seconds left before autoboot; `None` when stopped or waiting forever.
    pub fn countdown(&self) -> Option<u32> {
        self.countdown
    }
    /// The configured timeout.
    pub fn timeout(&self) -> Timeout {
        self.timeout
    }
    /// What is shown.
    pub fn view(&self) -> &View {
        &self.view
    }
    /// The status line (the last error or notice).
    pub fn status(&self) -> Option<&str> {
        self.status.as_deref()
    }
    /// Seconds before a password may be tried again (0: now).
    pub fn lockout(&self) -> u32 {
        self.lockout
    }
    /// Whether the session is locked (locked mode and not unlocked by the password).
    pub fn is_locked(&self) -> bool {
        self.lock.locked && !self.unlocked
    }

    /// Sets the status line.
    pub fn set_status(&mut self, s: impl Into<String>) {
        self.status = Some(s.into());
    }

    /// Whether entry `i` may boot in the current lock state.
    pub fn allowed(&self, i: usize) -> bool {
        if !self.is_locked() || self.lock.allowed.is_empty() {
            return true;
        }
        let Some(e) = self.entries.get(i) else {
            return false;
        };
        crate::trust::matches_allowed(e, &self.lock.allowed)
            && self
                .lock
                .trusted
                .as_ref()
                .is_none_or(|t| crate::trust::on_trusted(e, t))
    }

    /// Unattended boot order: the default, then the other allowed entries in menu order.
    pub fn boot_order(&self) -> Vec<usize> {
        self.default
            .into_iter()
            .chain((0..self.entries.len()).filter(|&i| Some(i) != self.default))
            .filter(|&i| self.allowed(i))
            .collect()
    }

    /// The action due without any key: autoboot when the countdown is at 0.
    pub fn due(&self) -> Option<Action> {
        (self.countdown == Some(0) && self.default.is_some()).then_some(Action::Autoboot)
    }

    /// The trusted volumes changed (disks came or went): allowed entries are judged by
    /// this verdict from now on.
    pub fn set_trusted(&mut self, trusted: Option<std::collections::BTreeSet<String>>) {
        self.lock.trusted = trusted;
    }

    /// One second passed.
    pub fn tick(&mut self) -> Option<Action> {
        self.lockout = self.lockout.saturating_sub(1);
        if let Some(n) = self.countdown {
            self.countdown = Some(n.saturating_sub(1));
        }
        self.due()
    }

    /// The countdown is 0, so the menu is hidden (systemd-boot's `timeout 0`, a `loader.conf`
    /// without `timeout`, `leapboot.timeout=0`): keys typed before the autoboot show it
    /// instead, with the countdown stopped, as systemd-boot does. Line noise on a serial
    /// console (NUL or 0xFF bytes, which decode as [`Key::Unknown`]) shows nothing.
    /// Returns whether the menu is now shown.
    pub fn reveal_hidden(&mut self, typed: &[Key]) -> bool {
        if self.due().is_none() || typed.iter().all(|k| *k == Key::Unknown) {
            return false;
        }
        self.countdown = None;
        self.status = Some("a key was pressed: the menu is shown (its timeout of 0 hid it)".into());
        true
    }

    /// Stops the countdown (any key does).
    pub fn stop_countdown(&mut self) {
        self.countdown = None;
    }

    /// Entries changed while the menu is shown (a disk appeared or went). The selection
    /// follows its entry by id; the countdown goes on, and starts over only if the default
    /// is now a different entry.
    pub fn replace_entries(&mut self, entries: Vec<BootEntry>, default: Option<usize>) {
        let id_of = |list: &[BootEntry], i: Option<usize>| {
            i.and_then(|i| list.get(i)).map(|e| e.id.clone())
        };
        let old_default = id_of(&self.entries, self.default);
        let old_selected = id_of(&self.entries, Some(self.selected));
        let old_edit = self
            .edited
            .take()
            .and_then(|(i, c)| Some((self.entries.get(i)?.id.clone(), c)));
        self.entries = entries;
        self.default = self.resolve_default(default);
        let find = |id: &Option<String>| {
            id.as_ref()
                .and_then(|id| self.entries.iter().position(|e| &e.id == id))
        };
        self.selected = find(&old_selected)
            .or(self.default)
            .unwrap_or(0)
            .min(self.entries.len().saturating_sub(1));
        self.edited = old_edit.and_then(|(id, c)| Some((find(&Some(id))?, c)));
        let new_default = id_of(&self.entries, self.default);
        if new_default != old_default && self.countdown.is_some() {
            if let Timeout::Secs(n) = self.timeout {
                self.countdown = Some(n);
            }
        }
        if matches!(self.view, View::Edit(_) | View::Details) && find(&old_selected).is_none() {
            self.view = View::List;
        }
        self.scroll_to_selected();
    }

    /// A boot chosen in the menu failed: back to the list with the error shown.
    pub fn boot_failed(&mut self, error: &str) {
        self.view = View::List;
        self.countdown = None;
        self.status = Some(error.to_string());
    }

    /// One key.
    pub fn key(&mut self, k: Key) -> Option<Action> {
        self.countdown = None;
        match std::mem::replace(&mut self.view, View::List) {
            View::List => self.list_key(k),
            View::Details => match k {
                Key::Enter => self.boot_selected(),
                Key::Char('e') => self.guarded(Guarded::Edit),
                Key::Up | Key::Down | Key::Char('j') | Key::Char('k') => {
                    self.move_by(if matches!(k, Key::Up | Key::Char('k')) {
                        -1
                    } else {
                        1
                    });
                    self.view = View::Details;
                    None
                }
                _ => None, // Esc, q, d, Tab, anything: back to the list
            },
            View::Edit(mut ed) => match ed.key(k) {
                Outcome::Editing => {
                    self.view = View::Edit(ed);
                    None
                }
                Outcome::Cancel => {
                    self.status = Some("edit cancelled".into());
                    None
                }
                Outcome::Accept => {
                    let cmdline = ed.text();
                    self.edited = Some((self.selected, cmdline.clone()));
                    self.boot(self.selected, cmdline)
                }
            },
            View::Log { scroll } => {
                let scroll = match k {
                    Key::Up | Key::Char('k') => scroll + 1,
                    Key::Down | Key::Char('j') => scroll.saturating_sub(1),
                    Key::PageUp => scroll + self.page,
                    Key::PageDown => scroll.saturating_sub(self.page),
                    Key::Home => usize::MAX / 2,
                    Key::End => 0,
                    _ => return None,
                };
                self.view = View::Log { scroll };
                None
            }
            View::Help => None,
            View::Password { mut editor, then } => match editor.key(k) {
                Outcome::Editing => {
                    self.view = View::Password { editor, then };
                    None
                }
                Outcome::Cancel => None,
                Outcome::Accept => self.check_password(&editor.text(), then),
            },
        }
    }

    fn list_key(&mut self, k: Key) -> Option<Action> {
        match k {
            Key::Up | Key::Char('k') => self.move_by(-1),
            Key::Down | Key::Char('j') => self.move_by(1),
            Key::PageUp => self.move_by(-(self.page as isize)),
            Key::PageDown => self.move_by(self.page as isize),
            Key::Home | Key::Char('g') => self.move_to(0),
            Key::End | Key::Char('G') => self.move_to(self.entries.len().saturating_sub(1)),
            Key::Char(c @ '1'..='9') => {
                let i = c as usize - '1' as usize;
                if i < self.entries.len() {
                    self.move_to(i);
                }
            }
            Key::Char('0') if self.entries.len() >= 10 => self.move_to(9),
            Key::Enter => return self.boot_selected(),
            Key::Char('e') => return self.guarded(Guarded::Edit),
            Key::Char('d') | Key::Tab if !self.entries.is_empty() => self.view = View::Details,
            Key::Char('r') => return self.guarded(Guarded::Rescan),
            Key::Char('l') => self.view = View::Log { scroll: 0 },
            Key::Char('b') => return self.guarded(Guarded::Reboot),
            Key::Char('p') => return self.guarded(Guarded::PowerOff),
            Key::Char('?') | Key::Char('h') => self.view = View::Help,
            _ => {}
        }
        None
    }

    fn move_by(&mut self, d: isize) {
        let last = self.entries.len().saturating_sub(1) as isize;
        let to = (self.selected as isize)
            .saturating_add(d)
            .clamp(0, last.max(0));
        self.move_to(to as usize);
    }

    fn move_to(&mut self, i: usize) {
        self.selected = i.min(self.entries.len().saturating_sub(1));
        self.scroll_to_selected();
    }

    fn scroll_to_selected(&mut self) {
        if self.selected < self.top {
            self.top = self.selected;
        } else if self.selected >= self.top + self.page {
            self.top = self.selected + 1 - self.page;
        }
        let max_top = self.entries.len().saturating_sub(self.page);
        self.top = self.top.min(max_top);
    }

    /// The command line the selected entry boots with: an earlier edit, or its own.
    fn cmdline_of(&self, i: usize) -> String {
        match &self.edited {
            Some((j, c)) if *j == i => c.clone(),
            _ => self
                .entries
                .get(i)
                .map(|e| e.cmdline.clone())
                .unwrap_or_default(),
        }
    }

    fn boot_selected(&mut self) -> Option<Action> {
        let c = self.cmdline_of(self.selected);
        self.boot(self.selected, c)
    }

    fn boot(&mut self, index: usize, cmdline: String) -> Option<Action> {
        if index >= self.entries.len() {
            return None;
        }
        if !self.allowed(index) {
            return self.guarded(Guarded::Boot);
        }
        Some(Action::Boot { index, cmdline })
    }

    /// A protected action: done when unlocked, a password prompt when a password exists,
    /// refused otherwise.
    fn guarded(&mut self, what: Guarded) -> Option<Action> {
        if !self.is_locked() {
            return self.perform(what);
        }
        if self.entries.is_empty() && what == Guarded::Edit {
            return None;
        }
        if self.lock.hash.is_none() {
            self.status = Some(format!(
                "locked: {} is not allowed (no password is configured)",
                describe(what)
            ));
            return None;
        }
        if self.lockout > 0 {
            self.status = Some(format!(
                "locked: too many wrong passwords; try again in {} s",
                self.lockout
            ));
            return None;
        }
        self.view = View::Password {
            editor: LineEditor::new(""),
            then: what,
        };
        None
    }

    fn perform(&mut self, what: Guarded) -> Option<Action> {
        match what {
            Guarded::Edit => {
                if !self.entries.is_empty() {
                    self.view = View::Edit(LineEditor::new(&self.cmdline_of(self.selected)));
                }
                None
            }
            Guarded::Rescan => Some(Action::Rescan),
            Guarded::Reboot => Some(Action::Reboot),
            Guarded::PowerOff => Some(Action::PowerOff),
            Guarded::Boot => self.boot_selected(),
        }
    }

    fn check_password(&mut self, pw: &str, then: Guarded) -> Option<Action> {
        let ok = self.lock.hash.as_ref().is_some_and(|h| h.verify(pw));
        if ok {
            self.unlocked = true;
            self.failed_tries = 0;
            self.status = Some("unlocked".into());
            self.perform(then)
        } else {
            self.failed_tries = self.failed_tries.saturating_add(1);
            self.lockout = lockout_secs(self.failed_tries);
            self.status = Some(if self.lockout > 0 {
                format!("locked: wrong password; try again in {} s", self.lockout)
            } else {
                "locked: wrong password".into()
            });
            None
        }
    }
}

fn describe(what: Guarded) -> &'static str {
    match what {
        Guarded::Edit => "editing",
        Guarded::Rescan => "rescanning",
        Guarded::Reboot => "rebooting",
        Guarded::PowerOff => "powering off",
        Guarded::Boot => "booting this entry",
    }
}

/// The title as shown: GRUB submenu paths (`Parent>Child`) get spaces around the `>`.
pub fn display_title(e: &BootEntry) -> String {
    if e.format == Format::Grub && e.title.contains('>') {
        e.title
            .split('>')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" > ")
    } else {
        e.title.clone()
    }
}

#[cfg(test)]
pub(crate) mod tests;
