//! leapboot's PID 1: the `/init` of the leapboot initramfs.
//!
//! Thin on purpose: early set-up ([`early`]) and the boot loop ([`boot`]); everything that can
//! be tested without being PID 1 lives in the `leapboot` library. This process must never
//! exit: the kernel would panic ("Attempted to kill init"). Every failure is logged and leads
//! somewhere: the next entry, a rescan, or the reboot/power-off offered on the console. A
//! panic is caught here and the boot loop starts over.

mod boot;
mod cancel;
mod early;
mod menu_loop;
mod network;
mod volumes;
mod watch;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// When PID 1 started.
static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// The last panic's message, for the restart loop's line.
static LAST_PANIC: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// Logs a milestone of the boot (`leapboot milestone <name> <ms since PID 1 started>`).
pub fn milestone(name: &str) {
    leapboot::session::milestone(name, since_start());
}

/// Time since PID 1 started.
pub fn since_start() -> std::time::Duration {
    START.get_or_init(Instant::now).elapsed()
}

fn main() {
    let start = *START.get_or_init(Instant::now);
    std::panic::set_hook(Box::new(|info| {
        log::error!("internal error: {info}");
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = info.to_string();
        }
    }));
    // Early set-up is guarded too: a panic there must not end PID 1. Each step of it carries
    // on when it fails; what did not happen is logged once the logger is up (or never, if
    // the logger itself is what failed: the boot goes on regardless).
    if catch_unwind(early::setup).is_err() {
        log::error!("early set-up hit an internal error; carrying on");
    }
    leapboot::session::milestone("pid1-start", early::uptime());
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    for name in leapboot::fault::arm_from_cmdline(&cmdline) {
        log::warn!(
            "leapboot.fault={}: no such point (they are {})",
            leapboot::sanitize::for_terminal(&name),
            leapboot::fault::POINTS.join(", ")
        );
    }
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let result = catch_unwind(AssertUnwindSafe(|| boot::run(start)));
        // `boot::run` only returns by panicking.
        let _ = result;
        // A panic inside the menu left the log off the consoles (the menu draws there).
        leapboot::logger::set_console(true);
        let pause = Duration::from_secs(u64::from(attempt.min(6)) * 5);
        // Said again here: a panic while the menu was drawn was logged to its pane only.
        let what = LAST_PANIC
            .lock()
            .map(|l| l.replace('\n', " "))
            .unwrap_or_default();
        log::error!(
            "leapboot hit an internal error (attempt {attempt}): {what}; starting over in {} s",
            pause.as_secs()
        );
        std::thread::sleep(pause);
    }
}
