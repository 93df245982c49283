//! The terminals: every console the kernel writes to, in raw mode, read and drawn at once.
//!
//! `/dev/console` is only the last `console=` device, so each device in `/proc/consoles` is
//! opened (falling back to `/dev/console`, then to the process' stdin/stdout). Input is
//! polled on all of them; the first console a key comes from owns the session and keys from
//! the others are ignored until [`Consoles::release`]. Frames are written to all. Size comes
//! from `TIOCGWINSZ`, or 80×24 when the tty does not know (a serial line reports 0×0).
//!
//! It does no decoding and no drawing of its own: bytes in, bytes out. A console whose write
//! fails is dropped from the set (and logged), never a reason to stop.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, SetArg, Termios};

/// Size used when a terminal does not report one.
pub const DEFAULT_SIZE: (usize, usize) = (80, 24);

/// One opened console.
pub struct Console {
    /// Device name (`ttyS0`, `tty0`, `console`, `stdio`).
    pub name: String,
    file: File,
    saved: Option<Termios>,
}

/// All consoles.
pub struct Consoles {
    list: Vec<Console>,
    owner: Option<usize>,
}

/// What a poll found.
#[derive(Debug, Default)]
pub struct Input {
    /// Bytes from the owning console (or the first to send), if any.
    pub bytes: Vec<u8>,
    /// Whether the extra fd given to [`Consoles::poll`] is readable.
    pub extra_ready: bool,
}

/// The device names listed in `/proc/consoles` text (first word of each line).
pub fn parse_proc_consoles(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in text.lines().filter_map(|l| l.split_whitespace().next()) {
        // Names come from the kernel, but stay inside /dev.
        if name.contains('/') || name.contains("..") || names.iter().any(|n| n == name) {
            continue;
        }
        names.push(name.to_string());
    }
    names
}

/// The consoles of `/proc/consoles` text that are not `/dev/console` (which has the `C`
/// flag): where plain log lines must be copied so every console shows them.
pub fn secondary_consoles(text: &str) -> Vec<String> {
    let primary: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.split_once('(')
                .and_then(|(_, r)| r.split_once(')'))
                .is_some_and(|(flags, _)| flags.contains('C'))
        })
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    parse_proc_consoles(text)
        .into_iter()
        .filter(|n| !primary.contains(&n.as_str()))
        .collect()
}

/// The size from a `TIOCGWINSZ` answer, or the default when it is 0×0.
pub fn size_or_default(cols: u16, rows: u16) -> (usize, usize) {
    if cols == 0 || rows == 0 {
        DEFAULT_SIZE
    } else {
        (usize::from(cols), usize::from(rows))
    }
}

impl Console {
    fn open(name: &str, path: &str) -> Option<Console> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags_noctty()
            .open(path)
            .map_err(|e| log::debug!("console {path}: {e}"))
            .ok()?;
        Some(Console {
            name: name.to_string(),
            file,
            saved: None,
        })
    }

    /// Raw input (no line buffering, echo or signals; CR kept as CR), output processing kept
    /// so plain log lines still get CR LF.
    fn raw(&mut self) {
        let Ok(t) = termios::tcgetattr(self.file.as_fd()) else {
            return;
        };
        let mut r = t.clone();
        use termios::{InputFlags as I, LocalFlags as L};
        r.local_flags
            .remove(L::ICANON | L::ECHO | L::ECHONL | L::ISIG | L::IEXTEN);
        r.input_flags
            .remove(I::ICRNL | I::INLCR | I::IGNCR | I::IXON | I::ISTRIP);
        r.control_chars[termios::SpecialCharacterIndices::VMIN as usize] = 1;
        r.control_chars[termios::SpecialCharacterIndices::VTIME as usize] = 0;
        if termios::tcsetattr(self.file.as_fd(), SetArg::TCSANOW, &r).is_ok() {
            self.saved = Some(t);
        }
    }

    fn restore(&mut self) {
        if let Some(t) = self.saved.take() {
            let _ = termios::tcsetattr(self.file.as_fd(), SetArg::TCSANOW, &t);
        }
    }

    /// Columns and rows.
    pub fn size(&self) -> (usize, usize) {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes a winsize into the pointed-to struct.
        let r = unsafe { libc::ioctl(self.file.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        if r != 0 {
            return DEFAULT_SIZE;
        }
        size_or_default(ws.ws_col, ws.ws_row)
    }
}

/// `O_NOCTTY` on open: PID 1 must not get a controlling terminal by accident.
trait NoCtty {
    fn custom_flags_noctty(&mut self) -> &mut Self;
}

impl NoCtty for std::fs::OpenOptions {
    fn custom_flags_noctty(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NOCTTY)
    }
}

impl Consoles {
    /// Opens every console of `/proc/consoles`, else `/dev/console`, else stdin/stdout.
    pub fn open() -> Consoles {
        let text = std::fs::read_to_string("/proc/consoles").unwrap_or_default();
        let mut list: Vec<Console> = parse_proc_consoles(&text)
            .iter()
            .filter_map(|n| Console::open(n, &format!("/dev/{n}")))
            .collect();
        if list.is_empty() {
            list.extend(Console::open("console", "/dev/console"));
        }
        if list.is_empty() {
            if let Ok(fd) = std::io::stdin().as_fd().try_clone_to_owned() {
                list.push(Console {
                    name: "stdio".into(),
                    file: File::from(fd),
                    saved: None,
                });
            }
        }
        log::debug!(
            "menu consoles: {}",
            list.iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
        Consoles { list, owner: None }
    }

    /// Whether any console is open.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Puts every console in raw mode.
    pub fn raw(&mut self) {
        for c in &mut self.list {
            c.raw();
        }
    }

    /// Restores every console's mode.
    pub fn restore(&mut self) {
        for c in &mut self.list {
            c.restore();
        }
    }

    /// Forgets which console owns the session.
    pub fn release(&mut self) {
        self.owner = None;
    }

    /// The consoles, in order.
    pub fn list(&self) -> &[Console] {
        &self.list
    }

    /// Writes `bytes` to console `i`; a console that fails is dropped.
    pub fn write_to(&mut self, i: usize, bytes: &[u8]) {
        let Some(c) = self.list.get_mut(i) else {
            return;
        };
        if let Err(e) = c.file.write_all(bytes).and_then(|_| c.file.flush()) {
            log::warn!("console {}: {e}; no longer drawing on it", c.name);
            self.list.remove(i);
            self.owner = match self.owner {
                Some(o) if o == i => None,
                Some(o) if o > i => Some(o - 1),
                o => o,
            };
        }
    }

    /// Waits up to `timeout` for input on any console (and on `extra`, if given). Returns the
    /// bytes of the console that owns the session (the first one to send anything).
    pub fn poll(&mut self, timeout: Duration, extra: Option<BorrowedFd<'_>>) -> Input {
        let mut input = Input::default();
        let mut fds: Vec<PollFd<'_>> = self
            .list
            .iter()
            .map(|c| PollFd::new(c.file.as_fd(), PollFlags::POLLIN))
            .collect();
        if let Some(e) = extra {
            fds.push(PollFd::new(e, PollFlags::POLLIN));
        }
        if fds.is_empty() {
            std::thread::sleep(timeout);
            return input;
        }
        let ms = timeout.as_millis().min(60_000) as i32;
        let t = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        match nix::poll::poll(&mut fds, t) {
            Ok(n) if n > 0 => {}
            Ok(_) | Err(nix::errno::Errno::EINTR) => return input,
            Err(e) => {
                log::debug!("poll: {e}");
                std::thread::sleep(timeout);
                return input;
            }
        }
        let ready: Vec<(bool, bool)> = fds
            .iter()
            .map(|f| {
                let r = f.revents().unwrap_or(PollFlags::empty());
                (
                    r.contains(PollFlags::POLLIN),
                    r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL),
                )
            })
            .collect();
        drop(fds);
        let n = self.list.len();
        if extra.is_some() {
            input.extra_ready = ready.get(n).is_some_and(|r| r.0);
        }
        let mut hung_up = false;
        for (i, (readable, hup)) in ready.iter().take(n).enumerate() {
            if !readable {
                hung_up |= *hup;
                continue;
            }
            let mut buf = [0u8; 256];
            let got = nix::unistd::read(self.list[i].file.as_fd(), &mut buf);
            match got {
                Ok(0) | Err(_) => hung_up = true,
                Ok(k) => {
                    if self.owner.is_none() {
                        self.owner = Some(i);
                        log::debug!("console {} owns the menu", self.list[i].name);
                    }
                    if self.owner == Some(i) {
                        input.bytes.extend_from_slice(&buf[..k]);
                    }
                }
            }
        }
        if hung_up && input.bytes.is_empty() {
            // A console at EOF (stdin of a pipe) would wake poll at once forever: wait out
            // the time instead so the loop does not spin.
            std::thread::sleep(timeout);
        }
        input
    }

    /// The size of the console owning the session, else the smallest of all.
    pub fn size(&self) -> (usize, usize) {
        if let Some(c) = self.owner.and_then(|o| self.list.get(o)) {
            return c.size();
        }
        self.list
            .iter()
            .map(Console::size)
            .min()
            .unwrap_or(DEFAULT_SIZE)
    }
}

impl Drop for Consoles {
    fn drop(&mut self) {
        self.restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_consoles_lists_every_device_once() {
        let text = "ttyS0                -W- (EC p a)    4:64\ntty0                 -WU (E  p  )    4:1\nhvc0 -W- (E) 229:0\nttyS0 -W- (E) 4:64\n../x -W- 1:1\n";
        assert_eq!(parse_proc_consoles(text), ["ttyS0", "tty0", "hvc0"]);
        assert!(parse_proc_consoles("").is_empty());
    }

    #[test]
    fn secondary_consoles_are_those_without_the_c_flag() {
        let text = "tty0                 -WU (E  p  )    4:1\nttyS0                -W- (EC p a)    4:64\nhvc0 -W- (E) 229:0\n";
        assert_eq!(secondary_consoles(text), ["tty0", "hvc0"]);
        assert!(secondary_consoles("ttyS0 -W- (EC p a) 4:64\n").is_empty());
    }

    #[test]
    fn unknown_size_is_80x24() {
        assert_eq!(size_or_default(0, 0), (80, 24));
        assert_eq!(size_or_default(132, 0), (80, 24));
        assert_eq!(size_or_default(132, 43), (132, 43));
    }

    #[test]
    fn the_first_console_to_send_owns_the_session_and_frames_go_to_all() {
        let (r0, w0) = nix::unistd::pipe().unwrap();
        let (r1, w1) = nix::unistd::pipe().unwrap();
        let (out_r, out_w) = nix::unistd::pipe().unwrap();
        let mut cons = Consoles {
            list: vec![
                Console {
                    name: "a".into(),
                    file: File::from(r0),
                    saved: None,
                },
                Console {
                    name: "b".into(),
                    file: File::from(r1),
                    saved: None,
                },
                Console {
                    name: "out".into(),
                    file: File::from(out_w),
                    saved: None,
                },
            ],
            owner: None,
        };
        let (mut w0, mut w1) = (File::from(w0), File::from(w1));
        w1.write_all(b"j").unwrap();
        assert_eq!(cons.poll(Duration::from_millis(100), None).bytes, b"j");
        w0.write_all(b"k").unwrap();
        w1.write_all(b"x").unwrap();
        assert_eq!(
            cons.poll(Duration::from_millis(100), None).bytes,
            b"x",
            "console b owns the session: a's key is ignored"
        );
        cons.release();
        w0.write_all(b"k").unwrap();
        assert_eq!(cons.poll(Duration::from_millis(100), None).bytes, b"k");
        // Writing to the read end of a pipe fails: that console is dropped, the others stay.
        cons.write_to(1, b"frame");
        assert_eq!(cons.list().len(), 2);
        cons.write_to(1, b"frame");
        let mut got = [0u8; 5];
        std::io::Read::read_exact(&mut File::from(out_r), &mut got).unwrap();
        assert_eq!(&got, b"frame");
    }

    #[test]
    fn a_pipe_console_reads_bytes_and_eof_does_not_spin() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut cons = Consoles {
            list: vec![Console {
                name: "pipe".into(),
                file: File::from(r),
                saved: None,
            }],
            owner: None,
        };
        let mut w = File::from(w);
        w.write_all(b"\x1b[B").unwrap();
        let got = cons.poll(Duration::from_millis(100), None);
        assert_eq!(got.bytes, b"\x1b[B");
        assert_eq!(cons.owner, Some(0));
        drop(w);
        let t = std::time::Instant::now();
        let got = cons.poll(Duration::from_millis(50), None);
        assert!(got.bytes.is_empty());
        assert!(
            t.elapsed() >= Duration::from_millis(50),
            "EOF waits out the time"
        );
    }
}
