//! Unified kernel image section-table reading and os-release parsing on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| leapboot::fuzzing::uki(data));
