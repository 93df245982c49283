//! The TPM's reply to TPM2_PCR_Extend: length, tag, response code and session area checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| leapboot::fuzzing::tpm_response(data));
