//! This side of the `leapboot-tls` relay (the protocol is `leapboot_tls::relay`): `/init`
//! connects the TCP socket itself, so DNS, connect time-outs and the route stay its own;
//! starts the helper with that socket as its standard input and a `SOCK_SEQPACKET` socket
//! pair as its standard output; and reads and writes plaintext through [`Helper`], which
//! behaves as rustls's `StreamOwned` does (a certificate refusal is `InvalidData`, a stream
//! cut without close_notify is `UnexpectedEof`).
//!
//! The helper holds all the TLS parsing of what a server sends: a bug there ends the
//! helper, not PID 1. Every wait here is bounded by the caller's time-out; the helper ends
//! by itself when its socket pair closes (it is killed only if it does not, soon after).

use std::ffi::CString;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use leapboot_tls::relay;
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::net::fetch::printable;

/// The helper's file name.
pub const NAME: &str = "leapboot-tls";
/// Where an initramfs carries it (`cargo xtask initramfs` adds it when
/// `initramfs/leapboot.toml` sets `ca_certificates`).
pub const INSTALLED: &str = "/usr/lib/leapboot/leapboot-tls";

/// What is said when HTTPS is asked for and no helper is there.
pub const NO_HELPER: &str = "this leapboot has no TLS of its own (the 2 MiB /init cannot \
hold it) and the TLS helper /usr/lib/leapboot/leapboot-tls is not there: `cargo xtask \
initramfs` adds it when initramfs/leapboot.toml sets `ca_certificates` (on a running system, \
build leapboot with `--features https`)";

/// Longest message kept from the helper (its errors quote the server's certificate).
const MAX_TEXT: usize = 400;
/// How long a helper may take to end once its socket pair is closed.
const END_WAIT: Duration = Duration::from_millis(200);

/// The helper to run: `leapboot-tls` beside this program's binary, else [`INSTALLED`].
pub fn locate() -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join(NAME)));
    [beside, Some(PathBuf::from(INSTALLED))]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
}

/// A TLS connection through the helper.
pub struct Helper {
    sock: File,
    child: Option<Pid>,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    /// How the stream ended: the helper's last tag and its text.
    end: Option<(u8, String)>,
    timeout: Duration,
    /// The protocol version and cipher suite, once the handshake is done.
    pub negotiated: Option<String>,
}

/// Starts `helper` for a TLS connection over `tcp` to `host`, trusting the CA certificates
/// of `ca` (PEM files).
pub fn start(helper: &Path, tcp: TcpStream, host: &str, ca: &[String]) -> Result<Helper, String> {
    // A DNS name or an IP address never starts with '-': nothing here reads as an option.
    if host.is_empty() || host.starts_with('-') {
        return Err(format!(
            "'{}' is not a TLS server name",
            printable(host, 64)
        ));
    }
    // The helper reads them; a missing one is said plainly here, not as a TLS failure.
    for f in ca {
        std::fs::metadata(f).map_err(|e| format!("CA file {f}: {e}"))?;
    }
    let (ours, theirs) = socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| format!("socket pair for the TLS helper: {e}"))?;
    // Both at 3 or above, so the child's dup2s onto 0 and 1 cannot clobber each other (a
    // host command run with standard input or output closed gets low descriptors).
    let high = |fd: &dyn AsFd| {
        nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))
            .map_err(|e| format!("socket for the TLS helper: {e}"))
            // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
            .map(|fd| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
    };
    let (tcp, theirs) = (high(&tcp)?, high(&theirs)?);
    let child = spawn(helper, host, ca, tcp.as_raw_fd(), theirs.as_raw_fd())
        .map_err(|e| format!("cannot start the TLS helper {}: {e}", helper.display()))?;
    // The child has its copies; this process keeps only its end of the pair.
    drop((tcp, theirs));
    Ok(Helper::over(File::from(ours), Some(child)))
}

/// Starts `helper HOST CA...` with `tcp` as standard input, `up` as standard output,
/// standard error on /dev/null and an empty environment. `posix_spawn`, not `fork`: PID 1
/// has threads, and std's `Command` costs /init ~49 KB.
fn spawn(helper: &Path, host: &str, ca: &[String], tcp: i32, up: i32) -> std::io::Result<Pid> {
    let cstr =
        |b: &[u8]| CString::new(b).map_err(|_| std::io::Error::from(ErrorKind::InvalidInput));
    let path = cstr(helper.as_os_str().as_bytes())?;
    let mut args = vec![path.clone(), cstr(host.as_bytes())?];
    for c in ca {
        args.push(cstr(c.as_bytes())?);
    }
    let mut argv: Vec<*mut libc::c_char> = args.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argv.push(std::ptr::null_mut());
    let envp: [*mut libc::c_char; 1] = [std::ptr::null_mut()];
    let null = c"/dev/null";
    let mut pid: libc::pid_t = 0;
    // SAFETY: the file actions object is initialised before use and destroyed after; every
    // pointer passed (path, argv, envp, /dev/null) outlives the call and argv and envp are
    // null-terminated. The caller gives descriptors >= 3, so the dup2s do not clobber each
    // other; every other descriptor is close-on-exec.
    let r = unsafe {
        let mut fa: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        let mut r = libc::posix_spawn_file_actions_init(&mut fa);
        if r == 0 {
            r = libc::posix_spawn_file_actions_adddup2(&mut fa, tcp, 0);
        }
        if r == 0 {
            r = libc::posix_spawn_file_actions_adddup2(&mut fa, up, 1);
        }
        if r == 0 {
            r = libc::posix_spawn_file_actions_addopen(
                &mut fa,
                2,
                null.as_ptr(),
                libc::O_WRONLY,
                0,
            );
        }
        if r == 0 {
            r = libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                &fa,
                std::ptr::null(),
                argv.as_ptr(),
                envp.as_ptr(),
            );
        }
        libc::posix_spawn_file_actions_destroy(&mut fa);
        r
    };
    if r != 0 {
        return Err(std::io::Error::from_raw_os_error(r));
    }
    Ok(Pid::from_raw(pid))
}

/// The helper's exit, if it has ended (`None` too when PID 1's reaper took it first).
fn ended_status(pid: Pid) -> Option<String> {
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Some(format!("exit status {code}")),
        Ok(WaitStatus::Signaled(_, sig, _)) => Some(format!("killed by {sig}")),
        _ => None,
    }
}

impl Helper {
    /// A connection over `sock`, the socket pair's end (tests play the helper on the other).
    pub fn over(sock: File, child: Option<Pid>) -> Helper {
        Helper {
            sock,
            child,
            buf: vec![0u8; relay::MAX_MESSAGE],
            pos: 0,
            len: 0,
            end: None,
            timeout: Duration::from_secs(1),
            negotiated: None,
        }
    }

    /// How long one [`Helper::read`] waits for the helper (then `WouldBlock`).
    pub fn set_read_timeout(&mut self, d: Duration) {
        self.timeout = d.max(Duration::from_millis(1));
    }

    /// Reads plaintext: `Ok(0)` after close_notify, `UnexpectedEof` for a cut stream,
    /// `InvalidData` for a TLS failure (a certificate refused), `WouldBlock` on time-out.
    pub fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if self.pos < self.len {
                let n = out.len().min(self.len - self.pos);
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if let Some((tag, text)) = &self.end {
                return ended(*tag, text);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if !self.wait(left)? {
                return Err(ErrorKind::WouldBlock.into());
            }
            self.receive()?;
        }
    }

    /// Sends plaintext (in messages of at most a TLS record's size). When the helper has
    /// ended, its own reason is the error.
    pub fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        for chunk in data.chunks(relay::MAX_DATA) {
            let sent = socket::send(self.sock.as_raw_fd(), chunk, MsgFlags::MSG_NOSIGNAL);
            match sent {
                Ok(n) if n == chunk.len() => {}
                Ok(_) => return Err(ErrorKind::WriteZero.into()),
                Err(e) => {
                    // A refused certificate ends the helper before the request is sent:
                    // its last word says why, better than "broken pipe".
                    if self.end.is_none() && self.wait(END_WAIT).unwrap_or(false) {
                        let _ = self.receive();
                    }
                    return match &self.end {
                        Some((tag, text)) if *tag != relay::CLOSED => ended(*tag, text).map(|_| ()),
                        _ => Err(std::io::Error::from(e)),
                    };
                }
            }
        }
        Ok(())
    }

    /// Whether a message is waiting, within `d`.
    fn wait(&self, d: Duration) -> std::io::Result<bool> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let ms = d.as_millis().min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(n) => Ok(n > 0),
            Err(nix::errno::Errno::EINTR) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes one message from the helper.
    fn receive(&mut self) -> std::io::Result<()> {
        let n = match (&self.sock).read(&mut self.buf) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        };
        if n == 0 {
            // Let it finish ending, so the status can be told.
            std::thread::sleep(Duration::from_millis(10));
            let status = match self.child.and_then(ended_status) {
                Some(s) => {
                    self.child = None; // reaped
                    format!(" ({s})")
                }
                None => String::new(),
            };
            self.end = Some((
                relay::IO_ERROR,
                format!("the TLS helper ended without saying why{status}"),
            ));
            return Ok(());
        }
        match decode(&self.buf[..n]) {
            Message::Data => {
                self.pos = 1;
                self.len = n;
            }
            Message::Ready(t) => {
                log::debug!("TLS: {t}");
                self.negotiated = Some(t);
            }
            Message::End(tag, text) => self.end = Some((tag, text)),
        }
        Ok(())
    }
}

/// One message from the helper, decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    /// Plaintext: the message's bytes after the tag.
    Data,
    /// The handshake is done: the protocol version and cipher suite, printable.
    Ready(String),
    /// How the stream ended (its tag: `CLOSED`, `CUT`, `TLS_ERROR` or `IO_ERROR`) and the
    /// helper's text, printable and at most [`MAX_TEXT`] characters.
    End(u8, String),
}

/// Decodes a non-empty message (an unknown tag ends the stream as an I/O error).
pub fn decode(msg: &[u8]) -> Message {
    let Some((&tag, body)) = msg.split_first() else {
        return Message::End(
            relay::IO_ERROR,
            "the TLS helper sent an empty message".into(),
        );
    };
    let text = || printable(&String::from_utf8_lossy(body), MAX_TEXT);
    match tag {
        relay::DATA => Message::Data,
        relay::READY => Message::Ready(text()),
        relay::CLOSED | relay::CUT | relay::TLS_ERROR | relay::IO_ERROR => {
            Message::End(tag, text())
        }
        other => Message::End(
            relay::IO_ERROR,
            format!("the TLS helper sent an unknown message (tag {other})"),
        ),
    }
}

/// What reading gives once the helper said how the stream ended.
pub fn ended(tag: u8, text: &str) -> std::io::Result<usize> {
    match tag {
        relay::CLOSED => Ok(0),
        relay::CUT => Err(std::io::Error::new(
            ErrorKind::UnexpectedEof,
            "the server closed the connection without a TLS close_notify",
        )),
        relay::TLS_ERROR => Err(std::io::Error::new(
            ErrorKind::InvalidData,
            text.to_string(),
        )),
        _ => Err(std::io::Error::other(text.to_string())),
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        // The helper ends when its end of the pair reads end-of-file.
        let _ = socket::shutdown(self.sock.as_raw_fd(), socket::Shutdown::Both);
        let Some(pid) = self.child.take() else {
            return;
        };
        let until = Instant::now() + END_WAIT;
        loop {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) if Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(WaitStatus::StillAlive) => break,
                // Ended, or already reaped (PID 1's reaper waits for every child).
                _ => return,
            }
        }
        // Still there (not reaped, so the pid is still its own): end it.
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
    }
}

#[cfg(test)]
mod tests;
