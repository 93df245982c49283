//! The one logger: `log` records to the console (stderr) and, in the initramfs, to /dev/kmsg.
//!
//! Console lines carry the time since leapboot started, so a serial transcript shows where
//! boot time goes. /dev/kmsg lines carry the syslog level, so `dmesg` after a kexec-less
//! reboot, or a log view, has them too.

use std::fs::File;
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

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
        let t = self.start.elapsed();
        let tag = match r.level() {
            log::Level::Error => "ERROR ",
            log::Level::Warn => "WARN ",
            log::Level::Info => "",
            log::Level::Debug => "debug ",
            log::Level::Trace => "trace ",
        };
        let line = format!(
            "[{:4}.{:03}] leapboot: {tag}{}\n",
            t.as_secs(),
            t.subsec_millis(),
            r.args()
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
        if let Some(kmsg) = &self.kmsg {
            let prio = match r.level() {
                log::Level::Error => 3,
                log::Level::Warn => 4,
                log::Level::Info => 6,
                _ => 7,
            };
            if let Ok(mut k) = kmsg.lock() {
                // One write per record: /dev/kmsg takes one message per write(2).
                let _ = k.write_all(format!("<{prio}>leapboot: {}", r.args()).as_bytes());
            }
        }
    }

    fn flush(&self) {}
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
