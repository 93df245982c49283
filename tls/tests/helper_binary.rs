//! The `leapboot-tls` program itself, as `/init` runs it: a connected TCP socket as standard
//! input, a `SOCK_SEQPACKET` socket as standard output, `HOST CAFILE...` as arguments, against
//! an in-process rustls server with the certificates of `testdata/`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::Arc;

use leapboot_tls::relay;
use leapboot_tls::rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn testdata(f: &str) -> String {
    format!("{}/testdata/{f}", env!("CARGO_MANIFEST_DIR"))
}

/// A TLS server for one connection: answers any request head with `body`, then close_notify.
fn server(body: &'static [u8]) -> u16 {
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
        let _ = s.write_all(body);
        conn.send_close_notify();
        while conn.wants_write() && conn.write_tls(&mut tcp).is_ok() {}
    });
    port
}

/// Runs the helper over a connection to `port`; returns the messages it sent and its exit.
fn run(port: u16, host: &str, ca: &str) -> (Vec<Vec<u8>>, std::process::ExitStatus) {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
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
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut child = Command::new(env!("CARGO_BIN_EXE_leapboot-tls"))
        .args([host, &testdata(ca)])
        .stdin(Stdio::from(OwnedFd::from(tcp)))
        .stdout(Stdio::from(theirs))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut ours = std::fs::File::from(ours);
    let _ = ours.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut got = Vec::new();
    let mut buf = vec![0u8; relay::MAX_MESSAGE];
    loop {
        let n = ours.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.push(buf[..n].to_vec());
        if ![relay::READY, relay::DATA].contains(&buf[0]) {
            break;
        }
    }
    drop(ours);
    (got, child.wait().unwrap())
}

#[test]
fn the_helper_relays_a_verified_server_from_inside_its_sandbox() {
    let port = server(b"HTTP/1.1 200 OK\r\n\r\nhello");
    let (msgs, status) = run(port, "127.0.0.1", "ca.pem");
    let ready = String::from_utf8_lossy(&msgs[0][1..]).to_string();
    assert_eq!(msgs[0][0], relay::READY);
    assert!(ready.ends_with(", seccomp on"), "{ready}");
    let data: Vec<u8> = msgs
        .iter()
        .filter(|m| m[0] == relay::DATA)
        .flat_map(|m| m[1..].to_vec())
        .collect();
    assert_eq!(data, b"HTTP/1.1 200 OK\r\n\r\nhello");
    assert_eq!(msgs.last().unwrap(), &vec![relay::CLOSED]);
    assert!(status.success(), "{status}");
}

#[test]
fn the_helper_refuses_a_server_another_ca_signed_and_exits_non_zero() {
    let port = server(b"secret");
    let (msgs, status) = run(port, "127.0.0.1", "wrong-ca.pem");
    assert_eq!(msgs.len(), 1, "nothing relayed");
    assert_eq!(msgs[0][0], relay::TLS_ERROR);
    assert!(String::from_utf8_lossy(&msgs[0]).contains("UnknownIssuer"));
    assert_eq!(status.code(), Some(1));
}

#[test]
fn the_helper_run_by_hand_explains_itself() {
    let o = Command::new(env!("CARGO_BIN_EXE_leapboot-tls"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not meant to be run by hand"));
    // Arguments right, but standard input is no socket.
    let o = Command::new(env!("CARGO_BIN_EXE_leapboot-tls"))
        .args(["example.com", &testdata("ca.pem")])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
