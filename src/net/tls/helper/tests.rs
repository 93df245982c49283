use std::io::Write;
use std::os::fd::OwnedFd;

use super::*;

/// A helper connection whose other end the test plays.
fn pair() -> (Helper, File) {
    let (a, b): (OwnedFd, OwnedFd) = socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    let mut h = Helper::over(File::from(a), None);
    h.set_read_timeout(Duration::from_millis(50));
    (h, File::from(b))
}

/// A connected TCP socket (and its listener, to keep).
fn connected() -> (std::net::TcpListener, TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    (l, tcp)
}

fn say(helper: &mut File, tag: u8, body: &[u8]) {
    let mut m = vec![tag];
    m.extend_from_slice(body);
    assert_eq!(helper.write(&m).unwrap(), m.len());
}

fn read_all(h: &mut Helper) -> (Vec<u8>, std::io::Result<usize>) {
    let mut got = Vec::new();
    let mut b = [0u8; 7];
    loop {
        match h.read(&mut b) {
            Ok(0) => return (got, Ok(0)),
            Ok(n) => got.extend_from_slice(&b[..n]),
            Err(e) => return (got, Err(e)),
        }
    }
}

#[test]
fn data_is_read_across_messages_and_close_notify_is_the_end() {
    let (mut h, mut t) = pair();
    say(&mut t, relay::READY, b"TLSv1_3 TLS13_AES_256_GCM_SHA384");
    say(&mut t, relay::DATA, b"HTTP/1.1 200 OK\r\n");
    say(&mut t, relay::DATA, b"\r\nbody");
    say(&mut t, relay::CLOSED, b"");
    let (got, end) = read_all(&mut h);
    assert_eq!(got, b"HTTP/1.1 200 OK\r\n\r\nbody");
    assert_eq!(end.unwrap(), 0);
    assert_eq!(
        h.negotiated.as_deref(),
        Some("TLSv1_3 TLS13_AES_256_GCM_SHA384")
    );
    // And stays ended.
    assert_eq!(h.read(&mut [0u8; 4]).unwrap(), 0);
}

#[test]
fn each_ending_reads_as_rustls_would_say_it() {
    for (tag, kind) in [
        (relay::CUT, ErrorKind::UnexpectedEof),
        (relay::TLS_ERROR, ErrorKind::InvalidData),
        (relay::IO_ERROR, ErrorKind::Other),
    ] {
        let (mut h, mut t) = pair();
        say(&mut t, relay::DATA, b"part");
        say(&mut t, tag, b"invalid peer certificate: UnknownIssuer");
        let (got, end) = read_all(&mut h);
        assert_eq!(got, b"part");
        let e = end.unwrap_err();
        assert_eq!(e.kind(), kind);
        if tag != relay::CUT {
            assert!(e.to_string().contains("UnknownIssuer"), "{e}");
        }
    }
}

#[test]
fn a_quiet_helper_is_a_time_out_and_a_silent_end_an_error() {
    let (mut h, t) = pair();
    let start = Instant::now();
    let e = h.read(&mut [0u8; 4]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert!(start.elapsed() < Duration::from_secs(1));
    drop(t);
    let e = h.read(&mut [0u8; 4]).unwrap_err();
    assert!(e.to_string().contains("ended without saying why"), "{e}");
}

#[test]
fn text_from_the_helper_is_made_printable_and_bounded() {
    let (mut h, mut t) = pair();
    let mut body = b"bad name \x1b[2J".to_vec();
    body.extend(std::iter::repeat_n(b'x', 5000));
    say(&mut t, relay::TLS_ERROR, &body);
    let e = h.read(&mut [0u8; 4]).unwrap_err().to_string();
    assert!(!e.contains('\x1b'), "{e:?}");
    assert!(e.chars().count() <= MAX_TEXT + 1, "{}", e.len());
}

#[test]
fn a_write_after_the_helper_refused_gives_its_reason() {
    let (mut h, mut t) = pair();
    say(
        &mut t,
        relay::TLS_ERROR,
        b"invalid peer certificate: UnknownIssuer",
    );
    drop(t);
    let e = h.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidData);
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
}

#[test]
fn an_unknown_message_ends_the_stream() {
    let (mut h, mut t) = pair();
    say(&mut t, b'?', b"");
    let e = h.read(&mut [0u8; 4]).unwrap_err();
    assert!(e.to_string().contains("unknown message"), "{e}");
}

#[test]
fn a_host_that_reads_as_an_option_is_refused_before_anything_starts() {
    let (_l, tcp) = connected();
    let e = start(Path::new("/nonexistent"), tcp, "--help", &[])
        .err()
        .unwrap();
    assert!(e.contains("not a TLS server name"), "{e}");
}

#[test]
fn a_missing_helper_is_named() {
    let (_l, tcp) = connected();
    let e = start(
        Path::new("/nonexistent/leapboot-tls"),
        tcp,
        "example.com",
        &[],
    )
    .err()
    .unwrap();
    assert!(e.contains("/nonexistent/leapboot-tls"), "{e}");
}

#[test]
fn a_missing_ca_file_is_named_before_the_helper_starts() {
    let (_l, tcp) = connected();
    let ca = vec!["/nonexistent/ca.pem".to_string()];
    let e = start(
        Path::new("/nonexistent/leapboot-tls"),
        tcp,
        "example.com",
        &ca,
    )
    .err()
    .unwrap();
    assert!(e.starts_with("CA file /nonexistent/ca.pem: "), "{e}");
}
