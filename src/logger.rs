//! The one logger: `log` records to the console (stderr), to a bounded ring of recent lines
//! (the menu's log pane and log view) and, in the initramfs, to /dev/kmsg.
//!
//! Console lines carry the time since leapboot started, so a serial transcript shows where
//! boot time goes. /dev/kmsg lines carry the syslog level, so `dmesg` after a kexec-less
//! reboot has them too. While the menu owns the screen ([`set_console`]`(false)`) lines go
//! only to the ring and /dev/kmsg, so they never garble the menu; the menu shows them.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Lines kept for the menu's log view.
pub const RING_LINES: usize = 500;

static RING: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());
/// Bumped for every line added to the ring (the menu redraws when it changes).
static GENERATION: AtomicU64 = AtomicU64::new(0);
/// Whether lines are printed on the console (false while the menu is shown).
static CONSOLE: AtomicBool = AtomicBool::new(true);
/// Other consoles that get a copy of every console line (`/dev/console` is only the last
/// `console=`).
static MIRRORS: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// Copies console lines to `f` as well (another console). A mirror whose write fails is
/// dropped.
pub fn add_mirror(f: File) {
    if let Ok(mut m) = MIRRORS.lock() {
        m.push(f);
    }
}

/// Adds `line` to the ring, dropping the oldest beyond [`RING_LINES`].
fn remember(line: String) {
    if let Ok(mut r) = RING.lock() {
        if r.len() >= RING_LINES {
            r.pop_front();
        }
        r.push_back(line);
    }
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// The recent log lines, oldest first.
pub fn recent() -> Vec<String> {
    RING.lock()
        .map(|r| r.iter().cloned().collect())
        .unwrap_or_default()
}

/// A number that changes whenever a line is logged.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

/// Turns printing on the console on or off (the ring and /dev/kmsg always get the lines).
pub fn set_console(on: bool) {
    CONSOLE.store(on, Ordering::Relaxed);
}

/// Crates whose own logging is about their internals, not about the boot.
const QUIET_CRATES: &[&str] = &["fatfs", "ext4_view", "gpt"];

struct Logger {
    start: Instant,
    kmsg: Option<Mutex<File>>,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        // The filesystem and table crates log their own internals (fatfs even warns about
        // valid volumes); show only their errors unless debugging.
        if r.level() > log::Level::Error
            && QUIET_CRATES.iter().any(|c| r.target().starts_with(c))
            && log::max_level() < log::LevelFilter::Debug
        {
            return;
        }
        self.write(r);
    }

    fn flush(&self) {}
}

impl Logger {
    /// Writes one record everywhere it goes.
    fn write(&self, r: &log::Record) {
        let t = self.start.elapsed();
        let tag = match r.level() {
            log::Level::Error => "ERROR ",
            log::Level::Warn => "WARN ",
            log::Level::Info => "",
            log::Level::Debug => "debug ",
            log::Level::Trace => "trace ",
        };
        // Records carry labels, titles and paths from disks: escape sequences and newlines
        // are shown, never obeyed (see crate::sanitize).
        let raw = r.args().to_string();
        let msg = crate::sanitize::for_terminal(&raw);
        let stamp = format!("[{:4}.{:03}]", t.as_secs(), t.subsec_millis());
        if CONSOLE.load(Ordering::Relaxed) {
            let line = format!("{stamp} leapboot: {tag}{msg}\n");
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
            if let Ok(mut m) = MIRRORS.lock() {
                m.retain_mut(|f| f.write_all(line.as_bytes()).is_ok());
            }
        }
        remember(format!("{stamp} {tag}{msg}"));
        if let Some(kmsg) = &self.kmsg {
            let prio = match r.level() {
                log::Level::Error => 3,
                log::Level::Warn => 4,
                log::Level::Info => 6,
                _ => 7,
            };
            if let Ok(mut k) = kmsg.lock() {
                // One write per record: /dev/kmsg takes one message per write(2).
                let _ = k.write_all(format!("<{prio}>leapboot: {msg}").as_bytes());
            }
        }
    }
}

/// Installs the logger. `kmsg`: also write to /dev/kmsg (the initramfs); `debug`: log debug
/// records. Calling it twice keeps the first logger.
pub fn init(kmsg: bool, debug: bool) {
    let kmsg = kmsg
        .then(|| {
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/kmsg")
                .ok()
        })
        .flatten()
        .map(Mutex::new);
    let level = if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    };
    let logger = Logger {
        start: Instant::now(),
        kmsg,
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(level);
    }
}

/// Changes the level after start (e.g. once `leapboot.debug` was read).
pub fn set_debug(debug: bool) {
    log::set_max_level(if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_never_carry_escape_sequences() {
        let logger = Logger {
            start: Instant::now(),
            kmsg: None,
        };
        set_console(false);
        logger.write(
            &log::Record::builder()
                .level(log::Level::Warn)
                .args(format_args!(
                    "vda1: label=\u{1b}[2J\u{1b}[1;1H marker-sanitize"
                ))
                .build(),
        );
        set_console(true);
        let line = recent()
            .into_iter()
            .rev()
            .find(|l| l.contains("marker-sanitize"))
            .expect("the record reached the ring");
        assert!(!line.contains('\u{1b}'), "{line:?}");
        assert!(line.contains("label=\\x1b[2J\\x1b[1;1H"), "{line:?}");
    }

    #[test]
    fn the_ring_keeps_the_newest_lines_and_counts_them() {
        let g = generation();
        for i in 0..RING_LINES + 10 {
            remember(format!("ring test {i}"));
        }
        let lines = recent();
        assert!(lines.len() <= RING_LINES);
        assert_eq!(
            lines.last().map(String::as_str),
            Some(format!("ring test {}", RING_LINES + 9).as_str())
        );
        assert!(!lines.iter().any(|l| l == "ring test 0"));
        assert!(generation() >= g + RING_LINES as u64 + 10);
    }
}
