//! `relay::serve` in a thread of its own, inside the sandbox, as the helper runs it.

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};

use common::{data, messages, request, seqpacket_pair, server, testdata, Ending};
use leapboot_tls::relay::{serve, CLOSED, CUT, MAX_MESSAGE, READY, TLS_ERROR};

/// Fetches through [`serve`] run as the helper runs it; returns the messages received.
fn fetch(port: u16, host: &str, ca: &str) -> Vec<Vec<u8>> {
    let cfg = leapboot_tls::client_config(&[testdata(ca)]).unwrap();
    let mut conn = leapboot_tls::connection(cfg, host).unwrap();
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (mut ours, mut theirs) = seqpacket_pair();
    let helper = std::thread::spawn(move || {
        leapboot_tls::sandbox::enter().unwrap();
        serve(&mut conn, &mut tcp, &mut theirs, true)
    });
    request(&mut ours);
    let got = messages(&mut ours);
    assert!(!got.is_empty(), "the helper ended without saying how");
    assert_eq!(helper.join().unwrap(), got.last().unwrap()[0]);
    got
}

#[test]
fn a_server_signed_by_the_configured_ca_is_relayed_whole_in_bounded_messages() {
    let body: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    let port = server(body.clone(), Ending::CloseNotify);
    let msgs = fetch(port, "127.0.0.1", "ca.pem");
    assert_eq!(msgs[0][0], READY);
    let ready = String::from_utf8_lossy(&msgs[0][1..]).to_string();
    assert!(
        ready.starts_with("TLSv1_3") && ready.ends_with(", seccomp on"),
        "{ready}"
    );
    assert!(msgs.iter().all(|m| m.len() <= MAX_MESSAGE));
    assert_eq!(data(&msgs), body);
    assert_eq!(msgs.last().unwrap(), &vec![CLOSED]);
}

#[test]
fn a_stream_cut_without_close_notify_is_told_apart() {
    let port = server(b"partial".to_vec(), Ending::DropTcp);
    let msgs = fetch(port, "localhost", "ca.pem");
    assert_eq!(data(&msgs), b"partial");
    assert_eq!(msgs.last().unwrap(), &vec![CUT]);
}

#[test]
fn a_server_signed_by_another_ca_is_refused_before_any_data() {
    let port = server(b"secret".to_vec(), Ending::CloseNotify);
    let msgs = fetch(port, "127.0.0.1", "wrong-ca.pem");
    assert_eq!(msgs.len(), 1, "nothing relayed");
    assert_eq!(msgs[0][0], TLS_ERROR);
    let m = String::from_utf8_lossy(&msgs[0][1..]).to_string();
    assert!(m.contains("UnknownIssuer"), "{m}");
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let port = server(b"secret".to_vec(), Ending::CloseNotify);
    let msgs = fetch(port, "boot.example.com", "ca.pem");
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0][0], TLS_ERROR);
    let m = String::from_utf8_lossy(&msgs[0][1..]).to_string();
    assert!(m.contains("not valid for name \"boot.example.com\""), "{m}");
}

#[test]
fn a_server_that_is_not_tls_ends_in_a_tls_error() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    let msgs = fetch(port, "127.0.0.1", "ca.pem");
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0][0], TLS_ERROR);
}

#[test]
fn ca_files_are_checked() {
    assert!(leapboot_tls::roots(&[]).unwrap_err().contains("no CA"));
    let e = leapboot_tls::roots(&[testdata("README.md")]).unwrap_err();
    assert!(e.contains("no PEM certificate"), "{e}");
    let e = leapboot_tls::roots(&["/nonexistent/ca.pem".into()]).unwrap_err();
    assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    assert_eq!(leapboot_tls::roots(&[testdata("ca.pem")]).unwrap().len(), 1);
}
