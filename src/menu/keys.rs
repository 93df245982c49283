//! Decoding the bytes a VT100/xterm/Linux console sends into keys.
//!
//! Handles arrows in both CSI (`ESC [ A`) and SS3 (`ESC O A`) forms, the Home/End variants
//! (`ESC [ H`, `ESC [ 1 ~`, `ESC [ 7 ~`, `ESC O H`, `ESC [ F`, `ESC [ 4 ~`, `ESC [ 8 ~`,
//! `ESC O F`), PgUp/PgDn, Delete, modifier parameters (`ESC [ 1 ; 5 A` is still Up), the Linux
//! console's function keys (`ESC [ [ A`), Ctrl keys, UTF-8 text, and CR, LF or CR LF as one
//! Enter. A lone ESC cannot be told from the start of a sequence by bytes alone: the caller
//! calls [`Decoder::flush`] when no byte followed within a short time (see [`ESC_TIMEOUT_MS`]).
//!
//! It does not read from anything: bytes in, keys out. Sequences are bounded
//! ([`MAX_SEQUENCE`] bytes); anything unrecognised becomes [`Key::Unknown`], never an error.

/// How long to wait after an ESC before taking it as the Escape key.
pub const ESC_TIMEOUT_MS: u64 = 100;
/// The longest escape sequence kept; longer ones are dropped as [`Key::Unknown`].
pub const MAX_SEQUENCE: usize = 16;

/// One key press.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// Ctrl with a letter: `Ctrl('a')` for Ctrl-A (byte 0x01).
    Ctrl(char),
    /// Enter (CR, LF, or CR LF).
    Enter,
    /// Tab.
    Tab,
    /// Backspace (DEL 0x7f or BS 0x08).
    Backspace,
    /// Delete (`ESC [ 3 ~`).
    Delete,
    /// Escape on its own.
    Esc,
    /// Arrow up.
    Up,
    /// Arrow down.
    Down,
    /// Arrow left.
    Left,
    /// Arrow right.
    Right,
    /// Home.
    Home,
    /// End.
    End,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// A sequence or byte with no meaning here (function keys, Insert...).
    Unknown,
}

/// Turns a byte stream into keys, keeping an incomplete sequence for the next call.
#[derive(Debug, Default)]
pub struct Decoder {
    pending: Vec<u8>,
    /// The previous byte was CR: a following LF is part of the same Enter.
    after_cr: bool,
}

/// What the bytes at the front of the buffer are.
enum Step {
    /// A key, and how many bytes it used.
    Key(Key, usize),
    /// Skip these bytes without a key (the LF of CR LF).
    Skip(usize),
    /// The bytes so far may be the start of a longer sequence.
    Incomplete,
}

impl Decoder {
    /// A decoder with nothing pending.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Decodes `bytes` (appended to what was pending) into keys.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Key> {
        self.pending.extend_from_slice(bytes);
        let mut keys = Vec::new();
        let mut at = 0;
        while at < self.pending.len() {
            match self.step(&self.pending[at..]) {
                Step::Key(k, n) => {
                    self.after_cr = self.pending[at + n - 1] == b'\r';
                    keys.push(k);
                    at += n;
                }
                Step::Skip(n) => {
                    self.after_cr = false;
                    at += n;
                }
                Step::Incomplete => break,
            }
        }
        self.pending.drain(..at);
        keys
    }

    /// Whether bytes are waiting for the rest of a sequence (the caller should call
    /// [`flush`](Decoder::flush) if nothing more arrives within [`ESC_TIMEOUT_MS`]).
    pub fn is_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// No more bytes came: a pending lone ESC is the Escape key, an incomplete sequence is
    /// unknown (ESC, then what followed decoded on its own).
    pub fn flush(&mut self) -> Vec<Key> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        let rest: Vec<u8> = std::mem::take(&mut self.pending);
        let mut keys = Vec::new();
        if rest[0] == 0x1b {
            keys.push(Key::Esc);
            let tail = &rest[1..];
            if !tail.is_empty() {
                let more = self.feed(tail);
                keys.extend(more);
                // A tail that is itself incomplete (a UTF-8 prefix) is dropped.
                if !self.pending.is_empty() {
                    self.pending.clear();
                    keys.push(Key::Unknown);
                }
            }
        } else {
            // An incomplete UTF-8 character.
            keys.push(Key::Unknown);
        }
        keys
    }

    fn step(&self, b: &[u8]) -> Step {
        match b[0] {
            0x1b => escape(b),
            b'\r' => Step::Key(Key::Enter, 1),
            b'\n' if self.after_cr => Step::Skip(1),
            b'\n' => Step::Key(Key::Enter, 1),
            b'\t' => Step::Key(Key::Tab, 1),
            0x7f | 0x08 => Step::Key(Key::Backspace, 1),
            c @ 0x01..=0x1a => Step::Key(Key::Ctrl(char::from(b'a' + c - 1)), 1),
            0x00 | 0x1c..=0x1f => Step::Key(Key::Unknown, 1),
            c if c < 0x80 => Step::Key(Key::Char(char::from(c)), 1),
            c => utf8(b, c),
        }
    }
}

/// Whether `k` stops a running transfer: Esc on its own, or Ctrl-C.
pub fn is_cancel(k: Key) -> bool {
    matches!(k, Key::Esc | Key::Ctrl('c'))
}

/// What cancels a network load, from console bytes: [`is_cancel`] keys, with a lone ESC told
/// from an escape sequence (an arrow key cancels nothing) by [`ESC_TIMEOUT_MS`]. Bytes and
/// the time in, a verdict out; the caller polls its consoles at least every
/// [`ESC_TIMEOUT_MS`] and calls [`CancelKeys::feed`] also when nothing came (`&[]`).
#[derive(Debug, Default)]
pub struct CancelKeys {
    decoder: Decoder,
    esc_since: Option<std::time::Instant>,
}

impl CancelKeys {
    /// Nothing seen yet.
    pub fn new() -> CancelKeys {
        CancelKeys::default()
    }

    /// Takes what was read at `now` (maybe nothing); whether a cancel key was pressed.
    pub fn feed(&mut self, bytes: &[u8], now: std::time::Instant) -> bool {
        let mut keys = self.decoder.feed(bytes);
        if self.decoder.is_pending() {
            let since = *self.esc_since.get_or_insert(now);
            if now.saturating_duration_since(since)
                >= std::time::Duration::from_millis(ESC_TIMEOUT_MS)
            {
                keys.extend(self.decoder.flush());
                self.esc_since = None;
            }
        } else {
            self.esc_since = None;
        }
        keys.into_iter().any(is_cancel)
    }
}

/// A UTF-8 character starting with byte `c` (≥ 0x80).
fn utf8(b: &[u8], c: u8) -> Step {
    let len = match c {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return Step::Key(Key::Unknown, 1),
    };
    if b.len() < len {
        // Only continuation bytes may follow; anything else ends it now.
        if b[1..].iter().all(|&x| x & 0xc0 == 0x80) {
            return Step::Incomplete;
        }
        return Step::Key(Key::Unknown, 1);
    }
    match std::str::from_utf8(&b[..len]) {
        Ok(s) => match s.chars().next() {
            Some(ch) if !ch.is_control() => Step::Key(Key::Char(ch), len),
            _ => Step::Key(Key::Unknown, len),
        },
        Err(_) => Step::Key(Key::Unknown, 1),
    }
}

/// A sequence starting with ESC.
fn escape(b: &[u8]) -> Step {
    let Some(&second) = b.get(1) else {
        return Step::Incomplete;
    };
    match second {
        b'[' => csi(b),
        b'O' => match b.get(2) {
            None => Step::Incomplete,
            // b'M': keypad Enter in application mode.
            Some(&c) => Step::Key(
                cursor_key(c).unwrap_or(if c == b'M' { Key::Enter } else { Key::Unknown }),
                3,
            ),
        },
        // ESC ESC: the first is a lone Escape.
        0x1b => Step::Key(Key::Esc, 1),
        // Alt+key or Escape typed quickly before a key: Escape, then the key on its own.
        _ => Step::Key(Key::Esc, 1),
    }
}

/// `ESC [` parameters... final byte.
fn csi(b: &[u8]) -> Step {
    // The Linux console's F1-F5: ESC [ [ A..E.
    if b.get(2) == Some(&b'[') {
        return match b.get(3) {
            None => Step::Incomplete,
            Some(_) => Step::Key(Key::Unknown, 4),
        };
    }
    let mut i = 2;
    while i < b.len() {
        let c = b[i];
        match c {
            0x20..=0x3f => {
                if i + 1 >= MAX_SEQUENCE {
                    return Step::Key(Key::Unknown, i + 1);
                }
                i += 1;
            }
            0x40..=0x7e => {
                let params = &b[2..i];
                return Step::Key(csi_key(params, c), i + 1);
            }
            // A control byte or non-ASCII inside a sequence: the sequence is broken.
            _ => return Step::Key(Key::Unknown, i),
        }
    }
    Step::Incomplete
}

/// The final byte of a cursor key, the same after `ESC [` (normal mode) and `ESC O`
/// (application mode).
fn cursor_key(fin: u8) -> Option<Key> {
    Some(match fin {
        b'A' => Key::Up,
        b'B' => Key::Down,
        b'C' => Key::Right,
        b'D' => Key::Left,
        b'H' => Key::Home,
        b'F' => Key::End,
        _ => return None,
    })
}

fn csi_key(params: &[u8], fin: u8) -> Key {
    // The first parameter; modifiers after ';' are ignored.
    let first = params
        .split(|&c| c == b';')
        .next()
        .and_then(|p| std::str::from_utf8(p).ok())
        .and_then(|p| p.parse::<u32>().ok());
    if let Some(k) = cursor_key(fin) {
        return k;
    }
    match fin {
        b'~' => match first {
            Some(1) | Some(7) => Key::Home,
            Some(4) | Some(8) => Key::End,
            Some(3) => Key::Delete,
            Some(5) => Key::PageUp,
            Some(6) => Key::PageDown,
            _ => Key::Unknown,
        },
        _ => Key::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn esc_alone_and_ctrl_c_cancel_a_transfer_other_keys_do_not() {
        use std::time::{Duration, Instant};
        let t = Instant::now();
        let later = |ms| t + Duration::from_millis(ms);
        // Ctrl-C at once, wherever it is in a read.
        assert!(CancelKeys::new().feed(b"ab\x03", t));
        // A lone ESC: only once nothing followed for ESC_TIMEOUT_MS.
        let mut c = CancelKeys::new();
        assert!(!c.feed(b"\x1b", t));
        assert!(!c.feed(b"", later(ESC_TIMEOUT_MS / 2)));
        assert!(c.feed(b"", later(ESC_TIMEOUT_MS)));
        // Two ESCs: the first is a key of its own at once (ESC ESC is no sequence).
        assert!(CancelKeys::new().feed(b"\x1b\x1b[A", t));
        // Arrows, also split across reads, Enter, letters, Ctrl-D: nothing.
        let mut c = CancelKeys::new();
        for (bytes, ms) in [(&b"\x1b"[..], 0), (b"[", 10), (b"B", 20), (b"\r q\x04", 30)] {
            assert!(!c.feed(bytes, later(ms)), "{bytes:?}");
        }
        assert!(!c.feed(b"", later(1000)));
        assert!(!CancelKeys::new().feed(b"\x1bOA\x1b[1;5B", t));
    }

    fn keys(bytes: &[u8]) -> Vec<Key> {
        let mut d = Decoder::new();
        let mut k = d.feed(bytes);
        k.extend(d.flush());
        k
    }

    #[test]
    fn the_sequences_of_common_terminals() {
        let table: &[(&[u8], Key)] = &[
            (b"\x1b[A", Key::Up),
            (b"\x1b[B", Key::Down),
            (b"\x1b[C", Key::Right),
            (b"\x1b[D", Key::Left),
            (b"\x1bOA", Key::Up),
            (b"\x1bOB", Key::Down),
            (b"\x1bOC", Key::Right),
            (b"\x1bOD", Key::Left),
            (b"\x1b[H", Key::Home),
            (b"\x1b[1~", Key::Home),
            (b"\x1b[7~", Key::Home),
            (b"\x1bOH", Key::Home),
            (b"\x1b[F", Key::End),
            (b"\x1b[4~", Key::End),
            (b"\x1b[8~", Key::End),
            (b"\x1bOF", Key::End),
            (b"\x1b[5~", Key::PageUp),
            (b"\x1b[6~", Key::PageDown),
            (b"\x1b[3~", Key::Delete),
            (b"\x1b[1;5A", Key::Up),
            (b"\x1b[3;2~", Key::Delete),
            (b"\x1b[[A", Key::Unknown),
            (b"\x1b[2~", Key::Unknown),
            (b"\x1b[15~", Key::Unknown),
            (b"\x1bOP", Key::Unknown),
            (b"\r", Key::Enter),
            (b"\n", Key::Enter),
            (b"\t", Key::Tab),
            (b"\x7f", Key::Backspace),
            (b"\x08", Key::Backspace),
            (b"\x01", Key::Ctrl('a')),
            (b"\x05", Key::Ctrl('e')),
            (b"\x0b", Key::Ctrl('k')),
            (b"\x15", Key::Ctrl('u')),
            (b"\x03", Key::Ctrl('c')),
            (b"j", Key::Char('j')),
            ("é".as_bytes(), Key::Char('é')),
            ("→".as_bytes(), Key::Char('→')),
            (b"\x1b", Key::Esc),
        ];
        for (bytes, key) in table {
            assert_eq!(keys(bytes), vec![*key], "{bytes:?}");
        }
    }

    #[test]
    fn cr_lf_is_one_enter_but_two_crs_are_two() {
        assert_eq!(keys(b"\r\n"), vec![Key::Enter]);
        assert_eq!(keys(b"\r\r"), vec![Key::Enter, Key::Enter]);
        assert_eq!(keys(b"\n\n"), vec![Key::Enter, Key::Enter]);
        let mut d = Decoder::new();
        assert_eq!(d.feed(b"\r"), vec![Key::Enter]);
        assert_eq!(d.feed(b"\nx"), vec![Key::Char('x')], "split across reads");
    }

    #[test]
    fn sequences_split_across_reads_wait_for_their_end() {
        let mut d = Decoder::new();
        assert_eq!(d.feed(b"a\x1b"), vec![Key::Char('a')]);
        assert!(d.is_pending());
        assert_eq!(d.feed(b"["), vec![]);
        assert_eq!(d.feed(b"6"), vec![]);
        assert_eq!(d.feed(b"~b"), vec![Key::PageDown, Key::Char('b')]);
        assert!(!d.is_pending());
        assert_eq!(d.feed(&"é".as_bytes()[..1]), vec![]);
        assert_eq!(d.feed(&"é".as_bytes()[1..]), vec![Key::Char('é')]);
    }

    #[test]
    fn a_lone_escape_after_the_timeout_and_escape_before_a_key() {
        let mut d = Decoder::new();
        assert_eq!(d.feed(b"\x1b"), vec![]);
        assert_eq!(d.flush(), vec![Key::Esc]);
        assert_eq!(keys(b"\x1b\x1b[A"), vec![Key::Esc, Key::Up]);
        assert_eq!(keys(b"\x1bq"), vec![Key::Esc, Key::Char('q')]);
        // ESC [ then silence: Escape and '['.
        assert_eq!(keys(b"\x1b["), vec![Key::Esc, Key::Char('[')]);
    }

    #[test]
    fn long_or_broken_sequences_are_unknown_and_bounded() {
        let mut long = b"\x1b[".to_vec();
        long.extend(std::iter::repeat_n(b'1', 100));
        long.push(b'~');
        let k = keys(&long);
        assert_eq!(k[0], Key::Unknown);
        assert!(k.len() < 100);
        assert_eq!(keys(b"\x1b[1\x01"), vec![Key::Unknown, Key::Ctrl('a')]);
        assert_eq!(keys(&[0xff, b'x']), vec![Key::Unknown, Key::Char('x')]);
        assert_eq!(keys(&[0xc3, b'x']), vec![Key::Unknown, Key::Char('x')]);
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panic_and_leave_nothing_after_flush(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..10)
        ) {
            let mut d = Decoder::new();
            let mut n = 0;
            for c in &chunks {
                n += d.feed(c).len();
                prop_assert!(d.pending.len() <= MAX_SEQUENCE);
            }
            n += d.flush().len();
            prop_assert!(!d.is_pending());
            let total: usize = chunks.iter().map(Vec::len).sum();
            prop_assert!(n <= total);
        }
    }
}
