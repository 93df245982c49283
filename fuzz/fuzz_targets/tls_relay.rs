//! The TLS helper's messages as /init decodes them (`net::tls::helper`): a sequence of
//! messages, each prefixed by its length byte.
#![no_main]

use leapboot::net::tls::helper::{decode, ended, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Some((&n, tail)) = rest.split_first() {
        let n = usize::from(n).min(tail.len());
        let (msg, next) = tail.split_at(n);
        if let Message::End(tag, text) = decode(msg) {
            assert!(text.chars().count() <= 401);
            let _ = ended(tag, &text);
        }
        rest = next;
    }
});
