//! The TLS helper's protocol: `/init` connects the TCP socket itself (its DNS, its timeouts,
//! its interface), starts `leapboot-tls HOST CAFILE...` with that socket as standard input
//! and one end of a `SOCK_SEQPACKET` socket pair as standard output, and speaks plaintext
//! HTTP over the pair. Each message from `/init` is plaintext to send. Each message to
//! `/init` starts with a tag byte:
//!
//! | tag | rest | then |
//! |---|---|---|
//! | [`READY`] | the protocol version, the cipher suite, whether seccomp is on | data follows |
//! | [`DATA`] | plaintext from the server (at most [`MAX_DATA`] bytes) | more |
//! | [`CLOSED`] | — | the server ended the stream with close_notify |
//! | [`CUT`] | — | the TCP connection ended without close_notify |
//! | [`TLS_ERROR`] | what failed (a certificate, an alert, a bad record) | the end |
//! | [`IO_ERROR`] | what failed on the TCP socket | the end |
//!
//! The helper ends when the server's stream ends, on any error, and when `/init` closes its
//! end of the pair; `/init` bounds every wait itself and never has to kill it.

#[cfg(feature = "client")]
use std::io::{ErrorKind, Read, Write};
#[cfg(feature = "client")]
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

pub const READY: u8 = b'R';
pub const DATA: u8 = b'D';
pub const CLOSED: u8 = b'C';
pub const CUT: u8 = b'U';
pub const TLS_ERROR: u8 = b'T';
pub const IO_ERROR: u8 = b'I';

/// Most plaintext bytes in one message (a TLS record's).
pub const MAX_DATA: usize = 16 * 1024;
/// The largest message either way: a tag and [`MAX_DATA`] bytes.
pub const MAX_MESSAGE: usize = MAX_DATA + 1;
/// The helper gives up after this long with nothing happening on either socket (`/init`'s
/// own bounds are far shorter; this only ends a helper whose parent forgot it).
pub const IDLE: Duration = Duration::from_secs(600);

#[cfg(feature = "client")]
const HANDSHAKE_CUT: &str = "the server closed the connection during the TLS handshake";

#[cfg(feature = "client")]
/// Relays between `conn` over `tcp` and `up` (the socket pair to `/init`) until the stream
/// ends; returns the tag it ended with.
/// `sandboxed` is said in the `READY` message.
pub fn serve<T, U>(
    conn: &mut rustls::ClientConnection,
    tcp: &mut T,
    up: &mut U,
    sandboxed: bool,
) -> u8
where
    T: Read + Write + AsFd,
    U: Read + Write + AsFd,
{
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut ready = false;
    let mut tcp_open = true;
    loop {
        while conn.wants_write() {
            if let Err(e) = conn.write_tls(tcp) {
                return end(up, IO_ERROR, &format!("sending to the server: {e}"));
            }
        }
        if !ready && !conn.is_handshaking() {
            ready = true;
            let what = format!(
                "{} {}{}",
                conn.protocol_version()
                    .map(|v| format!("{v:?}"))
                    .unwrap_or_default(),
                conn.negotiated_cipher_suite()
                    .map(|s| format!("{:?}", s.suite()))
                    .unwrap_or_default(),
                if sandboxed {
                    ", seccomp on"
                } else {
                    ", no seccomp"
                }
            );
            if send(up, READY, what.as_bytes()).is_err() {
                return READY;
            }
        }
        // Hand on what was decrypted.
        loop {
            match conn.reader().read(&mut buf[1..]) {
                Ok(0) => return end(up, CLOSED, ""),
                Ok(n) => {
                    if send(up, DATA, &buf[1..1 + n]).is_err() {
                        return DATA;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::UnexpectedEof && !ready => {
                    return end(up, TLS_ERROR, HANDSHAKE_CUT)
                }
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return end(up, CUT, ""),
                Err(e) => return end(up, TLS_ERROR, &e.to_string()),
            }
        }
        if !tcp_open {
            // The reader said neither "closed" nor "cut": the handshake never finished.
            return end(up, TLS_ERROR, HANDSHAKE_CUT);
        }
        let mut fds = [
            libc::pollfd {
                fd: tcp.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: up.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, IDLE.as_millis() as libc::c_int) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return end(up, IO_ERROR, &format!("poll: {e}"));
        }
        if r == 0 {
            return end(
                up,
                IO_ERROR,
                &format!("nothing happened for {} s", IDLE.as_secs()),
            );
        }
        if fds[1].revents != 0 {
            match up.read(&mut buf) {
                // `/init` is done with this connection (or gone).
                Ok(0) | Err(_) => return CLOSED,
                Ok(n) => {
                    if let Err(e) = conn.writer().write_all(&buf[..n]) {
                        return end(up, IO_ERROR, &format!("buffering the request: {e}"));
                    }
                }
            }
        }
        if fds[0].revents != 0 {
            match conn.read_tls(tcp) {
                Ok(0) => tcp_open = false,
                Ok(_) => {
                    if let Err(e) = conn.process_new_packets() {
                        // Tell the server why (the alert), then `/init`.
                        let _ = conn.write_tls(tcp);
                        return end(up, TLS_ERROR, &e.to_string());
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) => return end(up, IO_ERROR, &format!("receiving from the server: {e}")),
            }
        }
    }
}

#[cfg(feature = "client")]
fn send<U: Write>(up: &mut U, tag: u8, body: &[u8]) -> std::io::Result<()> {
    let mut m = Vec::with_capacity(1 + body.len());
    m.push(tag);
    m.extend_from_slice(&body[..body.len().min(MAX_DATA)]);
    // One write is one message on a SOCK_SEQPACKET socket.
    let n = up.write(&m)?;
    if n != m.len() {
        return Err(std::io::Error::new(ErrorKind::WriteZero, "message cut"));
    }
    Ok(())
}

/// Tells `/init` how the stream ended (`tag`, with `message`); returns `tag`.
#[cfg(feature = "client")]
pub fn end<U: Write>(up: &mut U, tag: u8, message: &str) -> u8 {
    let _ = send(up, tag, message.as_bytes());
    tag
}
