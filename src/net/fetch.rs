//! What every network transfer shares: its limits (size, overall time, idle time, retries),
//! the cancel flag, progress reports, the errors, and [`fetch`], which picks TFTP or HTTP(S)
//! by the URL's scheme.
//!
//! A transfer streams into any `Write` (the loader's memfd, a parser's buffer) and never
//! holds more than one packet or read buffer itself. Every blocking call waits at most
//! [`TICK`], so the cancel flag and the deadline are checked at least that often.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::url::{Scheme, Url};

/// The longest any socket call blocks: cancel and deadlines are checked this often.
pub const TICK: Duration = Duration::from_millis(100);

/// Bounds of one transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes accepted (more is an error, announced sizes are checked first).
    pub max_bytes: u64,
    /// The whole transfer, connection and redirects included, ends after this.
    pub overall: Duration,
    /// No byte for this long ends it (TFTP: per packet, before a retransmission).
    pub idle: Duration,
    /// Retransmissions (TFTP) or new attempts before any byte arrived (HTTP) at most.
    pub retries: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 1 << 30,
            overall: Duration::from_secs(600),
            idle: Duration::from_secs(10),
            retries: 5,
        }
    }
}

impl Limits {
    /// Limits for a config file: 1 MiB, 30 s.
    pub fn config() -> Limits {
        Limits {
            max_bytes: crate::fs::MAX_CONFIG_BYTES,
            overall: Duration::from_secs(30),
            ..Limits::default()
        }
    }
}

/// A progress report.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// Bytes received so far.
    pub bytes: u64,
    /// The size, when the server announced it.
    pub total: Option<u64>,
    /// Time since the transfer started.
    pub elapsed: Duration,
    /// Whether this is the last report (the transfer is complete).
    pub done: bool,
}

impl Progress {
    /// Bytes per second so far.
    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.bytes as f64 / s
        } else {
            0.0
        }
    }

    /// `12.0 MiB of 30.0 MiB (40%), 5.1 MiB/s`, or without the total when unknown.
    pub fn line(&self) -> String {
        let mib = |b: u64| b as f64 / 1048576.0;
        let rate = format!("{:.1} MiB/s", self.rate() / 1048576.0);
        match self.total {
            Some(t) if t > 0 => format!(
                "{:.1} MiB of {:.1} MiB ({}%), {rate}",
                mib(self.bytes),
                mib(t),
                (self.bytes.min(t) * 100 / t)
            ),
            _ => format!("{:.1} MiB, {rate}", mib(self.bytes)),
        }
    }
}

/// Why a transfer failed. Each names the URL.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each variant is documented by its message
pub enum NetError {
    #[error("{url}: not found on the server")]
    NotFound { url: String },
    #[error("{url}: {len} bytes is larger than the {max}-byte limit")]
    TooLarge { url: String, len: u64, max: u64 },
    #[error("{url}: {what} after {bytes} bytes; check that the server is up and reachable")]
    Timeout {
        url: String,
        what: String,
        bytes: u64,
    },
    #[error("{url}: cancelled after {bytes} bytes")]
    Cancelled { url: String, bytes: u64 },
    #[error("{url}: {message}")]
    Server { url: String, message: String },
    #[error("{url}: {message}")]
    Io { url: String, message: String },
    #[error("{url}: HTTPS refused: {message}")]
    Tls { url: String, message: String },
}

impl NetError {
    /// Whether the file does not exist (parsers skip such files quietly).
    pub fn is_not_found(&self) -> bool {
        matches!(self, NetError::NotFound { .. })
    }
}

/// What a transfer reports to and is stopped by.
#[derive(Default)]
pub struct Control<'a> {
    /// Set from elsewhere (a key press) to stop the transfer within [`TICK`].
    pub cancel: Option<&'a AtomicBool>,
    /// Called at most every [`TICK`] while bytes arrive, and once at the end.
    pub progress: Option<&'a mut dyn FnMut(&Progress)>,
}

/// The clock and meter of one running transfer.
pub(crate) struct Run<'c, 'a> {
    pub url: String,
    pub limits: Limits,
    pub start: Instant,
    pub bytes: u64,
    pub total: Option<u64>,
    last_report: Option<Instant>,
    ctl: &'c mut Control<'a>,
}

impl<'c, 'a> Run<'c, 'a> {
    pub fn new(url: &Url, limits: Limits, ctl: &'c mut Control<'a>) -> Self {
        Run {
            url: url.to_string(),
            limits,
            start: Instant::now(),
            bytes: 0,
            total: None,
            last_report: None,
            ctl,
        }
    }

    /// Fails when cancelled or past the overall deadline.
    pub fn check(&self) -> Result<(), NetError> {
        if self.ctl.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(NetError::Cancelled {
                url: self.url.clone(),
                bytes: self.bytes,
            });
        }
        if self.start.elapsed() >= self.limits.overall {
            return Err(self.timeout(format!(
                "the transfer took longer than its {} s bound",
                self.limits.overall.as_secs()
            )));
        }
        Ok(())
    }

    pub fn timeout(&self, what: String) -> NetError {
        NetError::Timeout {
            url: self.url.clone(),
            what,
            bytes: self.bytes,
        }
    }

    /// The time left before the overall deadline, at most [`TICK`] (never zero).
    pub fn tick(&self) -> Duration {
        let left = self.limits.overall.saturating_sub(self.start.elapsed());
        left.clamp(Duration::from_millis(1), TICK)
    }

    /// Records an announced size, refusing it when over the limit.
    pub fn announce(&mut self, len: u64) -> Result<(), NetError> {
        if len > self.limits.max_bytes {
            return Err(NetError::TooLarge {
                url: self.url.clone(),
                len,
                max: self.limits.max_bytes,
            });
        }
        self.total = Some(len);
        Ok(())
    }

    /// Writes `data` to `out`, bounded, and reports progress now and then.
    pub fn deliver(&mut self, out: &mut dyn Write, data: &[u8]) -> Result<(), NetError> {
        let n = self.bytes + data.len() as u64;
        if n > self.limits.max_bytes {
            return Err(NetError::TooLarge {
                url: self.url.clone(),
                len: n,
                max: self.limits.max_bytes,
            });
        }
        out.write_all(data).map_err(|e| NetError::Io {
            url: self.url.clone(),
            message: format!("writing what was received: {e}"),
        })?;
        self.bytes = n;
        let due = self.last_report.is_none_or(|t| t.elapsed() >= TICK);
        if due {
            self.last_report = Some(Instant::now());
            self.report(false);
        }
        Ok(())
    }

    pub fn report(&mut self, done: bool) {
        let p = Progress {
            bytes: self.bytes,
            total: self.total,
            elapsed: self.start.elapsed(),
            done,
        };
        if let Some(f) = self.ctl.progress.as_mut() {
            f(&p);
        }
    }

    pub fn io(&self, what: &str, e: std::io::Error) -> NetError {
        NetError::Io {
            url: self.url.clone(),
            message: format!("{what}: {e}"),
        }
    }

    pub fn server(&self, message: String) -> NetError {
        NetError::Server {
            url: self.url.clone(),
            message,
        }
    }
}

/// How transfers are made: TFTP options, and the CA certificates HTTPS trusts.
#[derive(Clone, Default)]
pub struct FetchConfig {
    /// TFTP option values asked for.
    pub tftp: super::tftp::Options,
    /// The CA certificates (PEM files) HTTPS server certificates are verified against; empty:
    /// HTTPS is refused.
    pub ca_certificates: Vec<String>,
    /// The TLS client, built from `ca_certificates` on first use.
    #[cfg(feature = "https")]
    pub(crate) tls:
        Arc<std::sync::OnceLock<Result<Arc<leapboot_tls::rustls::ClientConfig>, String>>>,
}

impl FetchConfig {
    /// A configuration trusting the CA certificates in these PEM files.
    pub fn with_ca(ca_certificates: Vec<String>) -> FetchConfig {
        FetchConfig {
            ca_certificates,
            ..FetchConfig::default()
        }
    }
}

static GLOBAL: RwLock<Option<FetchConfig>> = RwLock::new(None);

/// Sets the configuration the loader uses for network files (the front end does this once,
/// from `/etc/leapboot.toml`).
pub fn set_global(cfg: FetchConfig) {
    if let Ok(mut g) = GLOBAL.write() {
        *g = Some(cfg);
    }
}

/// The configuration set by [`set_global`] (default: no CA, so no HTTPS).
pub fn global() -> FetchConfig {
    GLOBAL
        .read()
        .ok()
        .and_then(|g| g.clone())
        .unwrap_or_default()
}

/// Fetches `url` into `out` within `limits`. Returns the bytes written.
pub fn fetch(
    url: &Url,
    out: &mut dyn Write,
    cfg: &FetchConfig,
    limits: Limits,
    ctl: &mut Control<'_>,
) -> Result<u64, NetError> {
    let mut run = Run::new(url, limits, ctl);
    let r = match url.scheme {
        Scheme::Tftp => super::tftp::fetch(url, out, &cfg.tftp, &mut run),
        Scheme::Http | Scheme::Https => super::http::get(url, out, cfg, &mut run),
    };
    if r.is_ok() {
        run.report(true);
    }
    r
}

/// The size of `url` without fetching it (HTTP `HEAD`, TFTP `tsize`), if the server says.
pub fn probe_size(url: &Url, cfg: &FetchConfig) -> Result<Option<u64>, NetError> {
    let mut ctl = Control::default();
    let limits = Limits {
        overall: Duration::from_secs(10),
        ..Limits::default()
    };
    let mut run = Run::new(url, limits, &mut ctl);
    match url.scheme {
        Scheme::Tftp => super::tftp::probe_size(url, &cfg.tftp, &mut run),
        Scheme::Http | Scheme::Https => super::http::probe_size(url, cfg, &mut run),
    }
}

/// The loader's cancel flag: set it (Esc or Ctrl-C while a network file loads) to stop the
/// transfer within [`TICK`]; the loader clears nothing, so clear it before the next load.
pub static LOADER_CANCEL: AtomicBool = AtomicBool::new(false);

/// A shared cancel flag.
pub type CancelFlag = Arc<AtomicBool>;

/// A string from the network made safe for a console: control characters become `?`, at
/// most `max` characters (a cut is marked with `…`).
pub fn printable(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_say_bytes_percent_and_rate() {
        let p = Progress {
            bytes: 12 << 20,
            total: Some(30 << 20),
            elapsed: Duration::from_secs(2),
            done: false,
        };
        assert_eq!(p.line(), "12.0 MiB of 30.0 MiB (40%), 6.0 MiB/s");
        let q = Progress { total: None, ..p };
        assert_eq!(q.line(), "12.0 MiB, 6.0 MiB/s");
    }
}
