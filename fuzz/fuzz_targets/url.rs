//! URLs: parse, print and parse again (the same URL), join a reference, decode the path.
#![no_main]

use leapboot::net::url::Url;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let (a, b) = s.split_once('\n').unwrap_or((&s, "x"));
    if let Ok(u) = Url::parse(a) {
        assert_eq!(Url::parse(&u.to_string()).as_ref(), Ok(&u));
        if let Ok(j) = u.join(b) {
            let _ = j.decoded_path();
        }
    }
});
