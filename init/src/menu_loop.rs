//! The menu's event loop: polls every console and a one-second timer, feeds the library's
//! state machine (`leapboot::menu::state`), draws its frames and performs its actions.
//!
//! All decisions live in the library; this file only waits, reads, writes and calls. While
//! the menu is shown the logger prints nothing on the console (lines go to the menu's log
//! pane); booting leaves the menu so the boot's own lines print plainly, and a failed boot
//! comes back to the menu with the error in the status line.

use std::time::{Duration, Instant};

use leapboot::entry::BootEntry;
use leapboot::menu::console::Consoles;
use leapboot::menu::keys::{Decoder, ESC_TIMEOUT_MS};
use leapboot::menu::render::{self, Frame, Screen};
use leapboot::menu::state::{Action, Menu};

/// What the menu needs from the boot loop: booting an entry, and an optional source of
/// events (the hotplug listener) polled with the consoles.
pub trait Host {
    /// Loads and boots `entry` with `cmdline`; returns only when that failed, with the error.
    fn boot(&mut self, entry: &BootEntry, cmdline: &str) -> String;
    /// Called after each frame is drawn: time for work the menu need not wait for (loading
    /// the default entry ahead while the countdown runs).
    fn idle(&mut self, menu: &mut Menu);
    /// An fd to poll with the consoles (the uevent socket), if any.
    fn events_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>>;
    /// `events_fd` is readable: handle it and update `menu` (new entries go in with
    /// `Menu::replace_entries`, which keeps the countdown unless the default changes).
    fn events_ready(&mut self, menu: &mut Menu);
}

/// Why the menu closed.
pub enum Exit {
    /// The countdown ran out: boot the menu's boot order unattended.
    Autoboot,
    /// The user asked for a rescan.
    Rescan,
}

/// Shows `menu` until it autoboots or a rescan is asked for. A boot the user chose is done
/// here (through `host`, which returns only when the boot failed, with the error).
pub fn show(menu: &mut Menu, colour: bool, host: &mut dyn Host) -> Exit {
    let mut consoles = Consoles::open();
    consoles.raw();
    if let Some(Action::Autoboot) = menu.due() {
        // The menu is hidden (timeout 0): only a key already typed shows it.
        let mut decoder = Decoder::new();
        let mut typed = decoder.feed(&consoles.poll(Duration::ZERO, None).bytes);
        typed.extend(decoder.flush());
        if !menu.reveal_hidden(&typed) {
            consoles.restore();
            return Exit::Autoboot;
        }
        log::info!("a key was pressed: showing the menu that the timeout of 0 hid");
    }
    let mut shown = Shown::default();
    let mut decoder = Decoder::new();
    let mut next_tick = Instant::now() + Duration::from_secs(1);
    let mut esc_since: Option<Instant> = None;
    leapboot::logger::set_console(false);
    loop {
        let (w, h) = consoles.size();
        let screen = Screen {
            width: w,
            height: h,
            colour,
        };
        menu.set_page(screen.page());
        shown.draw(&mut consoles, menu, screen);
        FIRST_FRAME.get_or_init(crate::since_start);
        leapboot::fault::point("menu");
        host.idle(menu);

        let now = Instant::now();
        let mut wait = next_tick.saturating_duration_since(now);
        if let Some(t) = esc_since {
            let esc_left =
                (t + Duration::from_millis(ESC_TIMEOUT_MS)).saturating_duration_since(now);
            wait = wait.min(esc_left);
        }
        // Redraw for new log lines at least twice a second.
        wait = wait.min(Duration::from_millis(500));
        let input = consoles.poll(wait, host.events_fd());
        if input.extra_ready {
            host.events_ready(menu);
        }

        let mut keys = decoder.feed(&input.bytes);
        if decoder.is_pending() {
            let since = *esc_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_millis(ESC_TIMEOUT_MS) {
                keys.extend(decoder.flush());
                esc_since = None;
            }
        } else {
            esc_since = None;
        }
        let mut actions: Vec<Action> = keys.into_iter().filter_map(|k| menu.key(k)).collect();
        if Instant::now() >= next_tick {
            next_tick += Duration::from_secs(1);
            if Instant::now() > next_tick {
                // Fell behind (a slow console write): no burst of ticks.
                next_tick = Instant::now() + Duration::from_secs(1);
            }
            actions.extend(menu.tick());
        }
        // Only the first action counts: the keys after it were typed before its result.
        let Some(action) = actions.into_iter().next() else {
            continue;
        };
        match action {
            Action::Autoboot => return leave(consoles, Exit::Autoboot),
            Action::Rescan => {
                let exit = leave(consoles, Exit::Rescan);
                log::info!("rescan asked from the menu");
                return exit;
            }
            Action::Boot { index, cmdline } => {
                consoles.restore();
                leave_screen(&mut consoles);
                leapboot::logger::set_console(true);
                let err = match menu.entries().get(index).cloned() {
                    Some(e) => host.boot(&e, &cmdline),
                    None => "that entry is gone".to_string(),
                };
                leapboot::logger::set_console(false);
                consoles.raw();
                menu.boot_failed(&err);
                shown.forget();
            }
            Action::Reboot | Action::PowerOff => {
                let off = action == Action::PowerOff;
                consoles.restore();
                leave_screen(&mut consoles);
                leapboot::logger::set_console(true);
                let err = machine(off);
                leapboot::logger::set_console(false);
                consoles.raw();
                menu.set_status(err);
                shown.forget();
            }
        }
    }
}

/// Closes the menu and turns plain logging back on.
fn leave(mut consoles: Consoles, exit: Exit) -> Exit {
    leave_screen(&mut consoles);
    consoles.restore();
    leapboot::logger::set_console(true);
    // Logged once the console shows log lines again (while the menu is up they go only to
    // /dev/kmsg, and the benchmark reads the console); the time is the frame's own.
    static LOGGED: std::sync::Once = std::sync::Once::new();
    if let Some(&at) = FIRST_FRAME.get() {
        LOGGED.call_once(|| leapboot::session::milestone("first-frame", at));
    }
    exit
}

/// When the menu's first frame was drawn, since PID 1 started.
static FIRST_FRAME: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

fn leave_screen(consoles: &mut Consoles) {
    for i in (0..consoles.list().len()).rev() {
        consoles.write_to(i, render::leave().as_bytes());
    }
}

/// Reboots or powers off; returns only on failure, with the message.
pub fn machine(power_off: bool) -> String {
    use nix::sys::reboot::{reboot, RebootMode};
    log::info!(
        "{}",
        if power_off {
            "powering off"
        } else {
            "rebooting"
        }
    );
    nix::unistd::sync();
    let mode = if power_off {
        RebootMode::RB_POWER_OFF
    } else {
        RebootMode::RB_AUTOBOOT
    };
    let Err(e) = reboot(mode);
    let msg = format!("reboot failed: {e}");
    log::error!("{msg}");
    msg
}

/// What each console shows, so only changed rows are sent.
#[derive(Default)]
struct Shown {
    frame: Option<Frame>,
    screen: Option<Screen>,
    log_generation: u64,
    log: Vec<String>,
}

impl Shown {
    fn forget(&mut self) {
        self.frame = None;
    }

    fn draw(&mut self, consoles: &mut Consoles, menu: &Menu, screen: Screen) {
        let g = leapboot::logger::generation();
        // Lines logged since the last frame: each gets drawn once at the bottom of the log
        // pane (a frame per line), so a burst of lines is not skipped over.
        let mut fresh = 0;
        if g != self.log_generation || self.frame.is_none() {
            if self.frame.is_some() {
                fresh = usize::try_from(g.saturating_sub(self.log_generation)).unwrap_or(0);
            }
            self.log = leapboot::logger::recent();
            self.log_generation = g;
        }
        let fresh = fresh.min(self.log.len()).min(MAX_FRAMES_PER_DRAW);
        let ends: Vec<usize> = (0..=fresh).rev().map(|k| self.log.len() - k).collect();
        for end in ends {
            if end < self.log.len() && !matches!(menu.view(), leapboot::menu::state::View::List) {
                continue;
            }
            let next = render::render(menu, &self.log[..end], screen);
            // A changed size (a resized terminal) redraws everything.
            let prev = self.frame.as_ref().filter(|_| self.screen == Some(screen));
            self.screen = Some(screen);
            let bytes = render::update(prev, &next);
            if !bytes.is_empty() {
                for i in (0..consoles.list().len()).rev() {
                    consoles.write_to(i, bytes.as_bytes());
                }
            }
            self.frame = Some(next);
        }
    }
}

/// At most this many frames are drawn for one burst of log lines.
const MAX_FRAMES_PER_DRAW: usize = 32;
