//! `modules.alias` text and a modalias: parse, then look the modalias up (the first line of
//! the input is the modalias, the rest the alias file).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (modalias, aliases) = text.split_once('\n').unwrap_or((&text, ""));
    let a = leapboot::kmod::Aliases::parse(aliases);
    let _ = a.lookup(modalias);
});
