//! Unified kernel image section-table reading and os-release parsing on arbitrary bytes.
#![no_main]

use leapboot::entry::uki::{osrel::OsRelease, pe};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The whole input is the file; also as the head of a longer file, and cut short.
    let len = data.len() as u64;
    for (head, file_len) in [
        (data, len),
        (data, len.saturating_mul(2)),
        (&data[..data.len() / 2], len),
    ] {
        if let Ok(s) = pe::parse(head, file_len) {
            let ranges = [
                Some(s.linux),
                s.initrd,
                s.ucode,
                s.cmdline,
                s.osrel,
                s.uname,
            ];
            for r in ranges.into_iter().flatten() {
                assert!(
                    r.start <= r.end && r.end <= file_len,
                    "{r:?} outside {file_len}"
                );
            }
        }
    }
    let os = OsRelease::parse(&String::from_utf8_lossy(data));
    let _ = (os.title(), os.version(), os.sort_key());
});
