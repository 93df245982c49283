use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::*;

fn testdata(f: &str) -> String {
    format!("{}/testdata/{f}", env!("CARGO_MANIFEST_DIR"))
}

/// How the test server ends its reply.
#[derive(Clone, Copy, PartialEq)]
enum Ending {
    CloseNotify,
    DropTcp,
}

/// A TLS server for one connection: reads a request head, answers `body`, ends as told.
fn server(body: Vec<u8>, ending: Ending) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(testdata("server.pem"))
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
        let key = PrivateKeyDer::from_pem_file(testdata("server.key")).unwrap();
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let (mut tcp, _) = l.accept().unwrap();
        let mut conn = rustls::ServerConnection::new(Arc::new(cfg)).unwrap();
        let mut s = rustls::Stream::new(&mut conn, &mut tcp);
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match s.read(&mut b) {
                Ok(1) => head.push(b[0]),
                _ => return,
            }
        }
        let _ = s.write_all(&body);
        if ending == Ending::CloseNotify {
            conn.send_close_notify();
        }
        while conn.wants_write() {
            if conn.write_tls(&mut tcp).is_err() {
                break;
            }
        }
    });
    port
}

fn seqpacket_pair() -> (std::fs::File, std::fs::File) {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two new descriptors into `fds`, which we then own.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(r, 0);
    // SAFETY: both descriptors are new and owned by nobody else.
    unsafe {
        (
            OwnedFd::from_raw_fd(fds[0]).into(),
            OwnedFd::from_raw_fd(fds[1]).into(),
        )
    }
}

/// Fetches through [`serve`] run as the helper runs it; returns the messages received.
fn fetch(port: u16, host: &str, ca: &str) -> Vec<Vec<u8>> {
    let cfg = crate::client_config(&[testdata(ca)]).unwrap();
    let mut conn = crate::connection(cfg, host).unwrap();
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (mut ours, mut theirs) = seqpacket_pair();
    // In the sandbox, as the helper runs it.
    let helper = std::thread::spawn(move || {
        crate::sandbox::enter().unwrap();
        serve(&mut conn, &mut tcp, &mut theirs, true)
    });
    // The helper may have ended already (a refused certificate): its last word still waits.
    let _ = ours.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut got = Vec::new();
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let n = ours.read(&mut buf).unwrap();
        assert!(n > 0, "the helper ended without saying how");
        got.push(buf[..n].to_vec());
        if ![READY, DATA].contains(&buf[0]) {
            break;
        }
    }
    assert_eq!(helper.join().unwrap(), got.last().unwrap()[0]);
    got
}

fn data(msgs: &[Vec<u8>]) -> Vec<u8> {
    msgs.iter()
        .filter(|m| m[0] == DATA)
        .flat_map(|m| m[1..].to_vec())
        .collect()
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
    assert!(crate::roots(&[]).unwrap_err().contains("no CA"));
    let e = crate::roots(&[testdata("README.md")]).unwrap_err();
    assert!(e.contains("no PEM certificate"), "{e}");
    let e = crate::roots(&["/nonexistent/ca.pem".into()]).unwrap_err();
    assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    assert_eq!(crate::roots(&[testdata("ca.pem")]).unwrap().len(), 1);
}
