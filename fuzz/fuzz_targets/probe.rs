//! Filesystem/container identification on arbitrary superblock bytes: the first input bytes
//! are the volume head, the last 512 (if the input is longer than 1 KiB) an md tail sector.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (head, tails) = if data.len() > 1024 {
        let (h, t) = data.split_at(data.len() - 512);
        (h, vec![t.to_vec()])
    } else {
        (data, Vec::new())
    };
    let _ = leapboot::probe::identify(head, &tails);
});
