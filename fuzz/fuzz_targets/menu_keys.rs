//! Console bytes → key decoder → menu state machine → renderer: no panic, frames in bounds.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| leapboot::fuzzing::menu_keys(data));
