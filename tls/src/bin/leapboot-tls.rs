//! `leapboot-tls HOST CAFILE...`: the TLS helper `/init` runs for an HTTPS URL (see
//! `leapboot_tls::relay`). Standard input is the connected TCP socket, standard output a
//! `SOCK_SEQPACKET` socket to `/init`. Not for direct use.

use std::os::fd::AsFd;

use leapboot_tls::relay;

const USAGE: &str = "leapboot-tls HOST CAFILE...: the TLS helper leapboot's /init runs for \
https:// URLs. Standard input must be a connected TCP socket and standard output a \
SOCK_SEQPACKET socket to leapboot; it is not meant to be run by hand (use `leapboot list \
--url https://... --ca FILE` instead).";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 || args[0].starts_with('-') {
        eprintln!("{USAGE}");
        std::process::exit(2);
    }
    let fd = |f: std::os::fd::BorrowedFd<'_>| f.try_clone_to_owned();
    let (tcp, up) = match (fd(std::io::stdin().as_fd()), fd(std::io::stdout().as_fd())) {
        (Ok(t), Ok(u)) => (t, u),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let mut up = std::fs::File::from(up);
    let mut tcp = std::net::TcpStream::from(tcp);
    if tcp.peer_addr().is_err() {
        eprintln!("{USAGE}");
        std::process::exit(2);
    }
    // A server that stops reading must not hold the helper forever.
    let _ = tcp.set_write_timeout(Some(std::time::Duration::from_secs(30)));
    let mut conn = match leapboot_tls::client_config(&args[1..])
        .and_then(|c| leapboot_tls::connection(c, &args[0]))
    {
        Ok(c) => c,
        Err(e) => {
            relay::end(&mut up, relay::TLS_ERROR, &e);
            std::process::exit(1);
        }
    };
    // From here on only the two sockets, memory and randomness (see `sandbox`). A kernel
    // without seccomp still gets its TLS; the handshake message says which it was.
    let sandboxed = leapboot_tls::sandbox::enter().is_ok();
    let tag = relay::serve(&mut conn, &mut tcp, &mut up, sandboxed);
    std::process::exit(match tag {
        relay::CLOSED | relay::CUT => 0,
        _ => 1,
    });
}
