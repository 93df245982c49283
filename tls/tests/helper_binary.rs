//! The `leapboot-tls` program itself, as `/init` runs it: a connected TCP socket as standard
//! input, a `SOCK_SEQPACKET` socket as standard output, `HOST CAFILE...` as arguments, against
//! an in-process rustls server with the certificates of `testdata/`.

mod common;

use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};

use common::{data, messages, request, seqpacket_pair, server, testdata, Ending};
use leapboot_tls::relay;

/// Runs the helper over a connection to `port`; returns the messages it sent and its exit.
fn run(port: u16, host: &str, ca: &str) -> (Vec<Vec<u8>>, std::process::ExitStatus) {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (mut ours, theirs) = seqpacket_pair();
    let mut child = Command::new(env!("CARGO_BIN_EXE_leapboot-tls"))
        .args([host, &testdata(ca)])
        .stdin(Stdio::from(OwnedFd::from(tcp)))
        .stdout(Stdio::from(theirs))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    request(&mut ours);
    let got = messages(&mut ours);
    drop(ours);
    (got, child.wait().unwrap())
}

#[test]
fn the_helper_relays_a_verified_server_from_inside_its_sandbox() {
    let port = server(
        b"HTTP/1.1 200 OK\r\n\r\nhello".to_vec(),
        Ending::CloseNotify,
    );
    let (msgs, status) = run(port, "127.0.0.1", "ca.pem");
    let ready = String::from_utf8_lossy(&msgs[0][1..]).to_string();
    assert_eq!(msgs[0][0], relay::READY);
    assert!(ready.ends_with(", seccomp on"), "{ready}");
    assert_eq!(data(&msgs), b"HTTP/1.1 200 OK\r\n\r\nhello");
    assert_eq!(msgs.last().unwrap(), &vec![relay::CLOSED]);
    assert!(status.success(), "{status}");
}

#[test]
fn the_helper_refuses_a_server_another_ca_signed_and_exits_non_zero() {
    let port = server(b"secret".to_vec(), Ending::CloseNotify);
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
