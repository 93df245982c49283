//! md superblock parsing on arbitrary bytes: the first byte picks the version, the next 8 the
//! device length, the rest is the superblock (the magic forced so parsing goes deep).
#![no_main]

use leapboot::md::{parse, Version};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let v = [Version::V090, Version::V10, Version::V11, Version::V12][usize::from(data[0] % 4)];
    let len = u64::from_le_bytes(data[1..9].try_into().unwrap_or_default());
    let mut sb = data[9..].to_vec();
    if sb.len() >= 8 {
        sb[..4].copy_from_slice(&0xa92b_4efcu32.to_le_bytes());
    }
    let _ = parse(&sb, v, len);
});
