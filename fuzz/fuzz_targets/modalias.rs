//! `modules.alias` text and a modalias: parse, then look the modalias up (the first line of
//! the input is the modalias, the rest the alias file).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| leapboot::fuzzing::modalias(data));
