//! Boot Loader Spec entry and loader.conf parsing on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| leapboot::fuzzing::bls(data));
