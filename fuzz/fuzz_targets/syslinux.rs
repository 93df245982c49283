//! syslinux configuration parsing on arbitrary bytes: the input, split at NUL bytes, is the
//! main config and three files it may INCLUDE (or that other families read); the whole
//! `discover` runs on them (labels, includes, submenus, default and timeout resolution).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| leapboot::fuzzing::syslinux(data));
