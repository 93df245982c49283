//! TFTP datagrams: decode, negotiate an OACK, and feed DATA blocks to a receive window.
#![no_main]

use leapboot::net::tftp::{decode, negotiate, Negotiated, Options, Packet, Window};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let o = Options::default();
    let mut w = Window::new(&Negotiated::plain(&o));
    // The input is a sequence of datagrams, each prefixed by its length byte.
    let mut rest = data;
    while let Some((&n, tail)) = rest.split_first() {
        let n = usize::from(n).min(tail.len());
        let (pkt, next) = tail.split_at(n);
        match decode(pkt) {
            Ok(Packet::Oack { options }) => {
                if let Ok(agreed) = negotiate(&o, &options) {
                    w = Window::new(&agreed);
                }
            }
            Ok(Packet::Data { block, data }) => {
                let _ = w.on_data(block, data.len());
            }
            _ => {}
        }
        rest = next;
    }
});
