//! Boot Loader Spec entry and loader.conf parsing on arbitrary bytes; the entries parsed from
//! NUL-separated parts of the input get systemd-boot's unique titles.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| leapboot::fuzzing::bls(data));
