use super::*;
use proptest::prelude::*;

fn client() -> ClientInfo {
    ClientInfo {
        mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
        uuid: Some([0x11; 16]),
        arch: 7,
    }
}

/// A BOOTREPLY laid out as RFC 2131 § 2 draws it, with the given options after the cookie.
fn reply(kind: u8, opts: &[(u8, &[u8])], file: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; HEADER];
    p[..4].copy_from_slice(&[2, 1, 6, 0]);
    p[4..8].copy_from_slice(&0xdead_beef_u32.to_be_bytes());
    p[16..20].copy_from_slice(&[10, 0, 2, 15]); // yiaddr
    p[20..24].copy_from_slice(&[10, 0, 2, 2]); // siaddr
    p[28..34].copy_from_slice(&client().mac);
    p[108..108 + file.len()].copy_from_slice(file);
    p.extend_from_slice(&COOKIE);
    p.extend_from_slice(&[53, 1, kind]);
    for (c, v) in opts {
        p.push(*c);
        p.push(v.len() as u8);
        p.extend_from_slice(v);
    }
    p.push(255);
    p
}

fn ack() -> Vec<u8> {
    reply(
        5,
        &[
            (54, &[10, 0, 2, 2]),
            (51, &[0, 0, 0x0e, 0x10]),
            (1, &[255, 255, 255, 0]),
            (3, &[10, 0, 2, 2]),
            (6, &[10, 0, 2, 3, 10, 0, 2, 4]),
            (15, b"lab.example"),
            (67, b"pxelinux.0"),
            (209, b"pxelinux.cfg/test"),
            (210, b"/tftpboot/"),
        ],
        b"ignored.0",
    )
}

#[test]
fn discover_carries_the_pxe_options() {
    let req = Request {
        kind: MsgType::Discover,
        xid: 0x01020304,
        secs: 3,
        requested: None,
        server_id: None,
    };
    let p = encode(&req, &client());
    assert!(p.len() >= 300, "at least the BOOTP minimum");
    assert_eq!(&p[..4], &[1, 1, 6, 0]);
    assert_eq!(&p[4..8], &[1, 2, 3, 4]);
    assert_eq!(&p[8..12], &[0, 3, 0x80, 0], "secs and the broadcast flag");
    assert_eq!(&p[28..34], &client().mac);
    let mut opts = Vec::new();
    parse_options(&p[HEADER + 4..], &mut opts).unwrap();
    let get = |c| find(&opts, c).unwrap().to_vec();
    assert_eq!(get(53), [1]);
    assert_eq!(get(93), [0, 7]);
    assert_eq!(get(94), [1, 3, 16]);
    assert_eq!(get(60), b"PXEClient:Arch:00007:UNDI:003016");
    assert_eq!(get(97)[0], 0);
    assert_eq!(&get(97)[1..], &[0x11; 16]);
    assert_eq!(get(55), PARAMS);
    assert!(find(&opts, 50).is_none() && find(&opts, 54).is_none());
}

#[test]
fn request_names_the_offer_and_its_server() {
    let req = Request {
        kind: MsgType::Request,
        xid: 7,
        secs: 0,
        requested: Some(Ipv4Addr::new(10, 0, 2, 15)),
        server_id: Some(Ipv4Addr::new(10, 0, 2, 2)),
    };
    let p = encode(&req, &client());
    let mut opts = Vec::new();
    parse_options(&p[HEADER + 4..], &mut opts).unwrap();
    assert_eq!(find(&opts, 53), Some(&[3u8][..]));
    assert_eq!(find(&opts, 50), Some(&[10u8, 0, 2, 15][..]));
    assert_eq!(find(&opts, 54), Some(&[10u8, 0, 2, 2][..]));
}

#[test]
fn ack_becomes_a_lease() {
    let r = decode(&ack()).unwrap();
    assert_eq!(r.kind, Some(MsgType::Ack));
    assert_eq!(r.xid, 0xdeadbeef);
    let l = r.lease("eth0", &client().mac, Some("u".into()));
    assert_eq!(l.iface, "eth0");
    assert_eq!(l.mac, "52:54:00:12:34:56");
    assert_eq!(l.addr, Some("10.0.2.15".parse().unwrap()));
    assert_eq!(l.prefix, 24);
    assert_eq!(l.router, Some("10.0.2.2".parse().unwrap()));
    assert_eq!(l.dns.len(), 2);
    assert_eq!(l.domain.as_deref(), Some("lab.example"));
    assert_eq!(l.server, Some("10.0.2.2".parse().unwrap()));
    assert_eq!(l.next_server, Some("10.0.2.2".parse().unwrap()));
    assert_eq!(
        l.boot_file.as_deref(),
        Some("pxelinux.0"),
        "option 67 wins over file"
    );
    assert_eq!(l.pxe_config_file.as_deref(), Some("pxelinux.cfg/test"));
    assert_eq!(l.path_prefix.as_deref(), Some("/tftpboot/"));
    assert_eq!(l.lease_secs, 3600);
    assert_eq!(l.client_uuid.as_deref(), Some("u"));
}

#[test]
fn file_field_and_option_66() {
    let r = decode(&reply(5, &[(66, b"10.9.8.7")], b"boot/grubx64.efi")).unwrap();
    let l = r.lease("eth0", &client().mac, None);
    assert_eq!(l.boot_file.as_deref(), Some("boot/grubx64.efi"));
    assert_eq!(
        l.next_server,
        Some("10.9.8.7".parse().unwrap()),
        "66 beats siaddr"
    );
    assert_eq!(l.prefix, 8, "classful without option 1");
    let r = decode(&reply(5, &[(66, b"tftp.lab")], b"")).unwrap();
    let l = r.lease("eth0", &client().mac, None);
    assert_eq!(l.next_server, Some("10.0.2.2".parse().unwrap()));
    assert_eq!(l.next_server_name.as_deref(), Some("tftp.lab"));
    assert_eq!(l.boot_file, None);
}

#[test]
fn split_options_concatenate_and_overload_is_read() {
    // RFC 3396: option 67 in two parts; RFC 2132 § 9.3: options continue in `file`.
    let mut p = reply(2, &[(67, b"pxe"), (52, &[1]), (67, b"linux.0")], b"");
    let file_opts = [209u8, 4, b'c', b'f', b'g', b'1', 255];
    p[108..108 + file_opts.len()].copy_from_slice(&file_opts);
    let r = decode(&p).unwrap();
    assert_eq!(r.kind, Some(MsgType::Offer));
    assert_eq!(r.option(67), Some(&b"pxelinux.0"[..]));
    assert_eq!(r.option(209), Some(&b"cfg1"[..]));
    assert_eq!(r.file, None, "an overloaded file field is not a file name");
}

#[test]
fn hostile_strings_are_made_printable() {
    let r = decode(&reply(5, &[(67, b"\x1b[2Jevil\x07")], b"")).unwrap();
    let l = r.lease("eth0", &[0; 6], None);
    assert_eq!(l.boot_file.as_deref(), Some("?[2Jevil?"));
}

#[test]
fn bad_packets_are_refused() {
    assert_eq!(decode(&[2; 100]), Err(DecodeError::Short(100)));
    let mut p = ack();
    p[0] = 1;
    assert_eq!(decode(&p), Err(DecodeError::NotReply(1, 1, 6)));
    let mut p = ack();
    p[HEADER] = 0;
    assert_eq!(decode(&p), Err(DecodeError::NoCookie));
    let mut p = ack();
    p.truncate(p.len() - 6);
    assert_eq!(decode(&p), Err(DecodeError::Truncated(210)));
}

#[test]
fn masks_and_backoff() {
    assert_eq!(mask_prefix(Ipv4Addr::new(255, 255, 252, 0)), Some(22));
    assert_eq!(mask_prefix(Ipv4Addr::new(255, 0, 255, 0)), None);
    assert_eq!(mask_prefix(Ipv4Addr::BROADCAST), Some(32));
    assert_eq!(mask_prefix(Ipv4Addr::UNSPECIFIED), Some(0));
    let b: Vec<u64> = (0..6).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(b, [1, 2, 4, 8, 8, 8]);
}

#[test]
fn option_values_are_bounded() {
    let big = [b'x'; 255];
    let opts: Vec<(u8, &[u8])> = (0..5).map(|_| (67u8, &big[..])).collect();
    let r = decode(&reply(5, &opts, b"")).unwrap();
    assert_eq!(r.option(67).unwrap().len(), MAX_OPTION);
}

proptest! {
    #[test]
    fn decoding_never_panics(p in proptest::collection::vec(any::<u8>(), 0..1600)) {
        if let Ok(r) = decode(&p) {
            let _ = r.lease("eth0", &[0; 6], None);
        }
    }

    #[test]
    fn decoding_mutated_acks_never_panics(i in 0usize..400, b: u8, cut in 0usize..400) {
        let mut p = ack();
        let i = i % p.len();
        p[i] = b;
        p.truncate(p.len() - cut % p.len());
        if let Ok(r) = decode(&p) {
            let _ = r.lease("eth0", &[0; 6], None);
        }
    }
}

#[test]
fn captured_dnsmasq_offer_and_ack() {
    let mac = [0x82, 0x9d, 0x97, 0x58, 0x73, 0x18];
    let offer = decode(include_bytes!("../testdata/dnsmasq-offer.bin")).unwrap();
    assert_eq!(offer.kind, Some(MsgType::Offer));
    assert_eq!(offer.chaddr, mac);
    assert_eq!(offer.server_id(), Some(Ipv4Addr::new(10, 77, 0, 1)));
    let ack = decode(include_bytes!("../testdata/dnsmasq-ack.bin")).unwrap();
    assert_eq!(ack.kind, Some(MsgType::Ack));
    assert_eq!(ack.xid, offer.xid);
    let l = ack.lease("veth-c", &mac, None);
    assert_eq!(l.mac, "82:9d:97:58:73:18");
    assert_eq!(l.addr, Some("10.77.0.71".parse().unwrap()));
    assert_eq!(l.prefix, 24);
    assert_eq!(l.router, Some("10.77.0.1".parse().unwrap()));
    assert_eq!(
        l.dns,
        vec!["10.77.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(l.domain.as_deref(), Some("lab.test"));
    assert_eq!(l.server, Some("10.77.0.1".parse().unwrap()));
    assert_eq!(l.next_server, Some("10.77.0.1".parse().unwrap()));
    assert_eq!(l.boot_file.as_deref(), Some("pxelinux.0"));
    assert_eq!(l.pxe_config_file.as_deref(), Some("pxelinux.cfg/test"));
    assert_eq!(l.path_prefix.as_deref(), Some("/boot/"));
    assert_eq!(l.lease_secs, 3600);
}
