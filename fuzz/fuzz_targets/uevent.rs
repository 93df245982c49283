//! Kernel uevent datagrams: parse, then classify (both must never panic).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| leapboot::fuzzing::uevent(data));
