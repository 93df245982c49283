//! The TCG binary (crypto-agile) event log: parse, re-encode, replay.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| leapboot::fuzzing::tpm_eventlog(data));
