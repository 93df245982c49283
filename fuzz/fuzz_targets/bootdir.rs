//! The plain /boot scan's name classifier and kernel/initrd pairing on arbitrary names: each
//! input line is a file name; the first line is classified alone, then all are scanned as
//! `/boot`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| leapboot::fuzzing::bootdir(data));
