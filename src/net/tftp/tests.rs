use super::*;
use proptest::prelude::*;

#[test]
fn decodes_rfc_packets() {
    // RFC 2347's example request: RRQ "foobar" octet blksize 1428 ... (with tsize 0).
    let rrq = b"\x00\x01foobar\x00octet\x00blksize\x001428\x00tsize\x000\x00";
    assert_eq!(
        decode(rrq),
        Ok(Packet::Request {
            write: false,
            file: b"foobar",
            mode: b"octet",
            options: vec![(&b"blksize"[..], &b"1428"[..]), (b"tsize", b"0")],
        })
    );
    assert_eq!(
        encode_rrq(
            "foobar",
            &[("blksize", "1428".into()), ("tsize", "0".into())]
        ),
        rrq
    );
    assert_eq!(
        decode(b"\x00\x03\x00\x07abc"),
        Ok(Packet::Data {
            block: 7,
            data: b"abc"
        })
    );
    assert_eq!(decode(&encode_ack(65535)), Ok(Packet::Ack { block: 65535 }));
    assert_eq!(
        decode(&encode_error(1, "File not found")),
        Ok(Packet::Error {
            code: 1,
            message: b"File not found"
        })
    );
    // dnsmasq's OACK for blksize 1468 and tsize.
    assert_eq!(
        decode(b"\x00\x06blksize\x001468\x00tsize\x0031457280\x00"),
        Ok(Packet::Oack {
            options: vec![(&b"blksize"[..], &b"1468"[..]), (b"tsize", b"31457280")]
        })
    );
    for (bad, e) in [
        (&b"\x00"[..], DecodeError::Short),
        (b"\x00\x04\x01", DecodeError::Short),
        (b"\x00\x09", DecodeError::Opcode(9)),
        (b"\x00\x06blksize\x001468", DecodeError::Unterminated),
        (b"\x00\x06blksize\x00", DecodeError::Unterminated),
        (b"\x00\x01file\x00", DecodeError::Unterminated),
    ] {
        assert_eq!(decode(bad), Err(e), "{bad:?}");
    }
    let many: Vec<u8> = [&b"\x00\x06"[..], &b"a\x00b\x00".repeat(MAX_OPTIONS + 1)].concat();
    assert_eq!(decode(&many), Err(DecodeError::TooManyOptions));
}

#[test]
fn options_may_shrink_never_grow() {
    let asked = Options::default();
    let n = negotiate(
        &asked,
        &[
            (b"blksize", b"1024"),
            (b"tsize", b"100"),
            (b"windowsize", b"4"),
            (b"timeout", b"2"),
        ],
    )
    .unwrap();
    assert_eq!(
        n,
        Negotiated {
            blksize: 1024,
            windowsize: 4,
            tsize: Some(100),
            timeout: Duration::from_secs(2)
        }
    );
    // Without windowsize in the OACK the server does lock-step.
    assert_eq!(
        negotiate(&asked, &[(b"BLKSIZE", b"1468")])
            .unwrap()
            .windowsize,
        1
    );
    for bad in [
        &[(&b"blksize"[..], &b"9000"[..])][..],
        &[(b"windowsize", b"17")],
        &[(b"windowsize", b"0")],
        &[(b"tsize", b"-1")],
        &[(b"timeout", b"0")],
        &[(b"multicast", b"1")],
    ] {
        assert!(negotiate(&asked, bad).is_err(), "{bad:?}");
    }
}

fn agreed(blksize: u16, windowsize: u16) -> Negotiated {
    Negotiated {
        blksize,
        windowsize,
        tsize: None,
        timeout: Duration::from_secs(1),
    }
}

#[test]
fn windows_ack_every_nth_block_and_the_last() {
    let mut w = Window::new(&agreed(512, 3));
    let acks: Vec<Verdict> = (1..=4).map(|b| w.on_data(b, 512)).collect();
    assert_eq!(
        acks,
        [
            Verdict::Accept {
                ack: None,
                last: false
            },
            Verdict::Accept {
                ack: None,
                last: false
            },
            Verdict::Accept {
                ack: Some(3),
                last: false
            },
            Verdict::Accept {
                ack: None,
                last: false
            },
        ]
    );
    assert_eq!(
        w.on_data(5, 10),
        Verdict::Accept {
            ack: Some(5),
            last: true
        }
    );
}

#[test]
fn a_gap_is_acked_once_and_old_blocks_are_ignored() {
    let mut w = Window::new(&agreed(512, 4));
    assert!(matches!(w.on_data(1, 512), Verdict::Accept { .. }));
    // Block 2 lost: 3 and 4 arrive.
    assert_eq!(w.on_data(3, 512), Verdict::Gap { ack: 1 });
    assert_eq!(w.on_data(4, 512), Verdict::Old);
    // The server resends from 2; a stale copy of 1 is ignored.
    assert_eq!(w.on_data(1, 512), Verdict::Old);
    assert!(matches!(w.on_data(2, 512), Verdict::Accept { .. }));
    assert_eq!(w.count, 2);
}

#[test]
fn block_numbers_roll_over_past_65535() {
    let mut w = Window::new(&agreed(8, 1));
    for i in 1..=70_000u64 {
        let v = w.on_data(i as u16, 8);
        assert_eq!(
            v,
            Verdict::Accept {
                ack: Some(i as u16),
                last: false
            },
            "{i}"
        );
    }
    assert_eq!(w.count, 70_000);
    assert_eq!(w.on_data(70_000u64 as u16, 8), Verdict::Old);
}

#[test]
fn no_server_and_a_silent_server_end_within_their_bound() {
    use crate::net::fetch::{fetch, Control, FetchConfig, Limits};
    // A bound UDP port that never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let url = Url::parse(&format!("tftp://127.0.0.1:{port}/x")).unwrap();
    let limits = Limits {
        retries: 2,
        ..Limits::default()
    };
    let t = Instant::now();
    let err = fetch(
        &url,
        &mut Vec::new(),
        &FetchConfig::default(),
        limits,
        &mut Control::default(),
    )
    .unwrap_err();
    assert!(matches!(err, NetError::Timeout { .. }), "{err}");
    assert!(
        err.to_string().contains("no answer from the TFTP server"),
        "{err}"
    );
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(5),
        "{took:?}"
    );
    drop(silent);
}

#[test]
fn cancel_is_seen_within_a_tick() {
    use crate::net::fetch::{fetch, Control, FetchConfig, Limits};
    use std::sync::atomic::{AtomicBool, Ordering};
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let url = Url::parse(&format!("tftp://127.0.0.1:{port}/x")).unwrap();
    let cancel = AtomicBool::new(false);
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            cancel.store(true, Ordering::Relaxed);
        });
        let mut ctl = Control {
            cancel: Some(&cancel),
            progress: None,
        };
        let err = fetch(
            &url,
            &mut Vec::new(),
            &FetchConfig::default(),
            Limits::default(),
            &mut ctl,
        )
        .unwrap_err();
        assert!(matches!(err, NetError::Cancelled { .. }), "{err}");
    });
    assert!(
        t.elapsed() < Duration::from_millis(300 + 250),
        "{:?}",
        t.elapsed()
    );
}

proptest! {
    #[test]
    fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(Packet::Oack { options }) = decode(&b) {
            let _ = negotiate(&Options::default(), &options);
        }
    }

    #[test]
    fn windows_never_panic(blocks in proptest::collection::vec((any::<u16>(), 0usize..600), 0..200), ws in 1u16..20) {
        let mut w = Window::new(&agreed(512, ws));
        for (b, len) in blocks {
            let _ = w.on_data(b, len);
        }
    }
}
