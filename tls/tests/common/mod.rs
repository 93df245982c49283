//! What the relay tests and the helper-binary tests share: the certificates of `testdata/`,
//! a one-connection rustls server, a `SOCK_SEQPACKET` pair, and reading the helper's messages.
#![allow(dead_code)] // each test file uses its part

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;

use leapboot_tls::relay::{DATA, MAX_MESSAGE, READY};
use leapboot_tls::rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub fn testdata(f: &str) -> String {
    format!("{}/testdata/{f}", env!("CARGO_MANIFEST_DIR"))
}

/// How the test server ends its reply.
#[derive(Clone, Copy, PartialEq)]
pub enum Ending {
    CloseNotify,
    DropTcp,
}

/// A TLS server for one connection: reads a request head, answers `body`, ends as told.
pub fn server(body: Vec<u8>, ending: Ending) -> u16 {
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

pub fn seqpacket_pair() -> (std::fs::File, std::fs::File) {
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

/// The helper's messages on `ours`, up to and with the one that ends the stream (or until
/// the pair closes).
pub fn messages(ours: &mut std::fs::File) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let n = ours.read(&mut buf).unwrap();
        if n == 0 {
            return got;
        }
        got.push(buf[..n].to_vec());
        if ![READY, DATA].contains(&buf[0]) {
            return got;
        }
    }
}

/// The plaintext of the `DATA` messages.
pub fn data(msgs: &[Vec<u8>]) -> Vec<u8> {
    msgs.iter()
        .filter(|m| m[0] == DATA)
        .flat_map(|m| m[1..].to_vec())
        .collect()
}

/// The request the tests send.
pub fn request(ours: &mut std::fs::File) {
    // The helper may have ended already (a refused certificate): its last word still waits.
    let _ = ours.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
}
