//! Filesystem/container identification on arbitrary superblock bytes: the first input bytes
//! are the volume head, the last 512 (if the input is longer than 1 KiB) an md tail sector.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| leapboot::fuzzing::probe(data));
