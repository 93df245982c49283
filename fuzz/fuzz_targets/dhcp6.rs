//! DHCPv6 server messages: decode, then turn into a lease (both must never panic).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = leapboot::net::dhcp6::decode(data) {
        let _ = r.lease("eth0", &[2, 0, 0, 0, 0, 1], None);
    }
});
