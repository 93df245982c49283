//! DNS answers (the id and name come from the input's first bytes) and the `ip=` parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() >= 2 {
        let id = u16::from_be_bytes([data[0], data[1]]);
        let _ = leapboot::net::dns::decode_answer(&data[2..], id, "boot.example.com");
        let _ = leapboot::net::dns::decode_name(&data[2..], 0);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = leapboot::net::ipcfg::parse(s);
    }
});
