//! The FAT reader (fatfs behind the read budget) on arbitrary images.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| leapboot::fuzzing::fat(data));
