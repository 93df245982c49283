//! Glob patterns (loader.conf default, modules.alias) on arbitrary patterns and texts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| leapboot::fuzzing::glob(data));
