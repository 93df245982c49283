//! Terminal sanitising of disk-derived strings on arbitrary text.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| leapboot::fuzzing::sanitize(data));
