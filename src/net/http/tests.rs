use super::*;
use crate::net::fetch::{fetch, Control, Limits};
use proptest::prelude::*;
use std::net::TcpListener;

#[test]
fn parses_heads_servers_send() {
    // python3 -m http.server's answer.
    let h = parse_head(
        b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\nDate: Thu, 03 Dec 2026 \
          07:00:00 GMT\r\nContent-type: application/octet-stream\r\nContent-Length: 31457280\r\n\
          Last-Modified: Thu, 03 Dec 2026 06:59:00 GMT\r\n\r\n",
    )
    .unwrap();
    assert_eq!(
        (h.status, h.content_length, h.chunked),
        (200, Some(31457280), false)
    );
    let r = parse_head(b"HTTP/1.1 302 Found\nLocation: /next.ipxe\n\n").unwrap();
    assert_eq!(
        (r.status, r.reason.as_str(), r.location.as_deref()),
        (302, "Found", Some("/next.ipxe"))
    );
    let c =
        parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
    assert_eq!((c.chunked, c.content_length), (true, None));
    for bad in [
        &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
    ] {
        assert!(parse_head(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
    let many = format!(
        "HTTP/1.1 200 OK\r\n{}\r\n",
        "X: y\r\n".repeat(MAX_HEADERS + 1)
    );
    assert!(parse_head(many.as_bytes()).is_err());
}

#[test]
fn head_end_is_found_across_reads() {
    let b = b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nBODY";
    assert_eq!(head_end(b, 0), Some(b.len() - 4));
    // Searching again from where the previous (shorter) buffer ended still finds it.
    assert_eq!(head_end(b, 22), Some(b.len() - 4));
    assert_eq!(head_end(b"HTTP/1.1 200 OK\r\nA: b\r\n", 0), None);
    assert_eq!(head_end(b"HTTP/1.1 200 OK\n\nx", 0), Some(17));
}

#[test]
fn chunked_bodies_decode_per_rfc_9112() {
    // RFC 9112 style, with an extension and a trailer.
    let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: y\r\n\r\n";
    assert_eq!(
        decode_chunked(body, 100).unwrap(),
        b"Wikipedia in\r\n\r\nchunks."
    );
    // Byte by byte gives the same.
    let mut d = Chunked::default();
    let mut out = Vec::new();
    for i in 0..body.len() {
        let (n, r) = d.step(&body[i..i + 1]).unwrap();
        assert_eq!(n, 1);
        out.extend_from_slice(&body[i..i + 1][r]);
    }
    assert!(d.done());
    assert_eq!(out, b"Wikipedia in\r\n\r\nchunks.");
    for bad in [
        &b"zz\r\n"[..],
        b"4\r\nWikiXX",
        b"4\r\nWiki\r\n",
        b"11111111111111111\r\n",
    ] {
        assert!(
            decode_chunked(bad, 100).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    assert!(decode_chunked(b"5\r\nhello\r\n0\r\n\r\n", 4).is_err());
    let long = [&b"1"[..], &b" ".repeat(2000), b"\r\n"].concat();
    assert!(decode_chunked(&long, 100).is_err());
}

/// A one-connection HTTP server on loopback answering `reply` to the first request (each
/// piece sent after `pause`).
fn serve(replies: Vec<Vec<Vec<u8>>>, pause: Duration) -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        for reply in replies {
            let Ok((mut s, _)) = l.accept() else { return };
            let mut req = [0u8; 4096];
            let _ = s.read(&mut req);
            for piece in reply {
                if s.write_all(&piece).is_err() {
                    return;
                }
                std::thread::sleep(pause);
            }
        }
    });
    (port, h)
}

fn get_url(url: &str, limits: Limits) -> Result<Vec<u8>, NetError> {
    let mut out = Vec::new();
    fetch(
        &Url::parse(url).unwrap(),
        &mut out,
        &FetchConfig::default(),
        limits,
        &mut Control::default(),
    )
    .map(|_| out)
}

#[test]
fn follows_a_redirect_and_reads_chunked_and_sized_bodies() {
    let (port, h) = serve(
        vec![
            vec![b"HTTP/1.1 301 Moved\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n".to_vec()],
            vec![
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab".to_vec(),
                b"c\r\n0\r\n\r\n".to_vec(),
            ],
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nwxyzIGNORED".to_vec()],
            vec![b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()],
        ],
        Duration::from_millis(10),
    );
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(
        get_url(&format!("{base}/a"), Limits::default()).unwrap(),
        b"abc"
    );
    assert_eq!(
        get_url(&format!("{base}/c"), Limits::default()).unwrap(),
        b"wxyz"
    );
    let e = get_url(&format!("{base}/d"), Limits::default()).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    h.join().unwrap();
}

#[test]
fn a_trickling_server_ends_within_the_overall_bound() {
    let mut pieces = vec![b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec()];
    pieces.extend((0..100).map(|_| b"x".to_vec()));
    let (port, _h) = serve(vec![pieces], Duration::from_millis(200));
    let limits = Limits {
        overall: Duration::from_secs(2),
        ..Limits::default()
    };
    let t = Instant::now();
    let e = get_url(&format!("http://127.0.0.1:{port}/slow"), limits).unwrap_err();
    assert!(matches!(e, NetError::Timeout { .. }), "{e}");
    assert!(
        t.elapsed() < Duration::from_millis(2300),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn sizes_over_the_limit_are_refused_before_the_body() {
    let (port, _h) = serve(
        vec![vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n".to_vec(),
        ]],
        Duration::from_secs(5),
    );
    let limits = Limits {
        max_bytes: 1000,
        ..Limits::default()
    };
    let t = Instant::now();
    let e = get_url(&format!("http://127.0.0.1:{port}/big"), limits).unwrap_err();
    assert!(
        matches!(e, NetError::TooLarge { len: 999999999, .. }),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[test]
fn https_without_a_ca_is_refused_saying_how_to_add_one() {
    let e = get_url("https://127.0.0.1:1/x", Limits::default()).unwrap_err();
    assert!(matches!(e, NetError::Tls { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("ca_certificates = [\"/etc/leapboot/ca.pem\"]"),
        "{e}"
    );
}

#[cfg(not(feature = "https"))]
#[test]
fn https_without_the_helper_says_how_to_get_it() {
    if crate::net::tls::helper::locate().is_some() {
        eprintln!("skipped: a leapboot-tls is installed here");
        return;
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = Url::parse(&format!(
        "https://127.0.0.1:{}/x",
        l.local_addr().unwrap().port()
    ))
    .unwrap();
    let cfg = FetchConfig::with_ca(vec!["/etc/leapboot/ca.pem".into()]);
    let mut out = Vec::new();
    let e = fetch(
        &url,
        &mut out,
        &cfg,
        Limits::default(),
        &mut Control::default(),
    )
    .unwrap_err();
    assert!(matches!(e, NetError::Tls { .. }), "{e}");
    assert!(
        e.to_string().contains("/usr/lib/leapboot/leapboot-tls"),
        "{e}"
    );
    assert!(e.to_string().contains("ca_certificates"), "{e}");
}

proptest! {
    #[test]
    fn parsers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = parse_head(&b);
        let _ = head_end(&b, 0);
        let _ = decode_chunked(&b, 1 << 20);
    }
}
