//! HTTP response heads and chunked bodies: the head parser, the head-end search and the
//! chunked decoder (whole and split at every fuzz-chosen point) must never panic.
#![no_main]

use leapboot::net::http::{decode_chunked, head_end, parse_head, Chunked};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(end) = head_end(data, 0) {
        let _ = parse_head(&data[..end]);
        let _ = decode_chunked(&data[end..], 1 << 20);
    }
    let _ = parse_head(data);
    let mut d = Chunked::default();
    let mut rest = data;
    while !rest.is_empty() && !d.done() {
        let take = (usize::from(rest[0]) % 7 + 1).min(rest.len());
        match d.step(&rest[..take]) {
            Ok((0, _)) | Err(_) => break,
            Ok((n, _)) => rest = &rest[n..],
        }
    }
});
