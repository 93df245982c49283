//! Kernel uevent datagrams: parse, then classify (both must never panic).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(u) = leapboot::discover::uevent::parse(data) {
        let _ = leapboot::discover::uevent::events_of(&u, true);
        let _ = leapboot::discover::uevent::events_of(&u, false);
    }
});
