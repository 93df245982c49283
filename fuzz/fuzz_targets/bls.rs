//! Boot Loader Spec entry and loader.conf parsing on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (stem, body) = text.split_once('\n').unwrap_or(("fuzz", &text));
    let _ = leapboot::entry::bls::parse_entry(stem, body);
    let _ = leapboot::entry::bls::parse_loader_conf(&text);
});
