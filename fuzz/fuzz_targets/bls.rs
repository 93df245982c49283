//! Boot Loader Spec entry and loader.conf parsing on arbitrary bytes; the entries parsed from
//! NUL-separated parts of the input get systemd-boot's unique titles.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (stem, body) = text.split_once('\n').unwrap_or(("fuzz", &text));
    let _ = leapboot::entry::bls::parse_entry(stem, body);
    let _ = leapboot::entry::bls::parse_loader_conf(&text);
    let entries: Vec<_> = text
        .split('\0')
        .take(256)
        .filter_map(|part| {
            let (stem, body) = part.split_once('\n').unwrap_or(("e", part));
            leapboot::entry::bls::parse_entry(stem, body).ok().map(|(e, _)| e)
        })
        .collect();
    let titles = leapboot::entry::bls::unique_titles(entries.iter());
    assert_eq!(titles.len(), entries.len());
});
