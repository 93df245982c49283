//! require_signed's Authenticode check (PE digest, PKCS#7, X.509, RSA) on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| leapboot::fuzzing::pesig(data));
