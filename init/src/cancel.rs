//! Esc or Ctrl-C while an entry's network files load: a thread reads the consoles (raw) for
//! the length of the load and sets the loader's cancel flag
//! (`leapboot::net::fetch::LOADER_CANCEL`) when `leapboot::menu::keys::CancelKeys` says a
//! cancel key was pressed. What cancels is the library's decision; this is glue.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use leapboot::menu::console::Consoles;
use leapboot::menu::keys::{CancelKeys, ESC_TIMEOUT_MS};
use leapboot::net::fetch::LOADER_CANCEL;

/// Runs `load` with the cancel flag cleared and, when `watch`, the consoles read for a
/// cancel key meanwhile. Returns what `load` returned and whether a cancel key was pressed.
pub fn watching<T>(watch: bool, load: impl FnOnce() -> T) -> (T, bool) {
    LOADER_CANCEL.store(false, Ordering::Relaxed);
    if !watch {
        return (load(), false);
    }
    let stop = AtomicBool::new(false);
    let r = std::thread::scope(|s| {
        let reader = std::thread::Builder::new()
            .name("cancel-keys".into())
            .spawn_scoped(s, || read_keys(&stop));
        if let Err(e) = &reader {
            log::warn!("cannot watch the consoles for Esc/Ctrl-C during the load: {e}");
        }
        log::info!("(Esc or Ctrl-C stops the transfer)");
        let r = load();
        stop.store(true, Ordering::Relaxed);
        r
    });
    (r, LOADER_CANCEL.swap(false, Ordering::Relaxed))
}

fn read_keys(stop: &AtomicBool) {
    let mut consoles = Consoles::open();
    consoles.raw();
    let mut keys = CancelKeys::new();
    let tick = Duration::from_millis(ESC_TIMEOUT_MS / 2);
    while !stop.load(Ordering::Relaxed) {
        let input = consoles.poll(tick, None);
        if keys.feed(&input.bytes, Instant::now()) {
            log::warn!("cancel key pressed: stopping the transfer");
            LOADER_CANCEL.store(true, Ordering::Relaxed);
            break;
        }
    }
    consoles.restore();
}
