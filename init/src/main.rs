//! leapboot's PID 1: the `/init` of the leapboot initramfs.
//!
//! Thin on purpose: early set-up ([`early`]) and the boot loop ([`boot`]); everything that can
//! be tested without being PID 1 lives in the `leapboot` library. This process must never
//! exit: the kernel would panic ("Attempted to kill init"). Every failure is logged and leads
//! somewhere: the next entry, a rescan, or the reboot/power-off offered on the console. A
//! panic is caught here and the boot loop starts over.

mod boot;
mod early;
mod menu_loop;
mod volumes;
mod watch;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

fn main() {
    let start = Instant::now();
    early::setup();
    std::panic::set_hook(Box::new(|info| {
        log::error!("internal error: {info}");
    }));
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let result = catch_unwind(AssertUnwindSafe(|| boot::run(start)));
        // `boot::run` only returns by panicking.
        let _ = result;
        let pause = Duration::from_secs(u64::from(attempt.min(6)) * 5);
        log::error!(
            "leapboot hit an internal error (attempt {attempt}); starting over in {} s",
            pause.as_secs()
        );
        std::thread::sleep(pause);
    }
}
