//! iPXE scripts: parse and interpret (with a chained second script from the same input)
//! within the step and chain bounds, with a client's values, never panicking.
#![no_main]

use leapboot::net::ipxe::{interpret, Fetched, Vars};
use leapboot::net::url::Url;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (first, second) = text
        .split_once('\0')
        .unwrap_or((&text, "#!ipxe\nchain x.ipxe\n"));
    let Ok(base) = Url::parse("http://10.0.2.2/boot/start.ipxe") else {
        return;
    };
    let second = second.to_string();
    let mut fetch = |u: &Url| -> Result<Fetched, String> {
        if u.path.ends_with(".ipxe") {
            Ok(Fetched::Script(second.clone()))
        } else if u.path.ends_with("missing") {
            Err("not found".into())
        } else {
            Ok(Fetched::Kernel)
        }
    };
    // The client's values as a DHCPv4 lease gives them (`${net0/mac:hexhyp}`, `${ip}`...).
    let client = leapboot::net::pxe::PxeClient {
        mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
        ip: Some(std::net::Ipv4Addr::new(10, 0, 2, 15)),
        boot_file: Some("http://10.0.2.2/boot/start.ipxe".into()),
        ..Default::default()
    };
    let vars = Vars::client(&client, Some("10.0.2.2"));
    let _ = interpret(&base, first, &vars, &mut fetch);
});
