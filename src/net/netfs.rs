//! `NetFs`: a read-only [`BootFs`] over a TFTP or HTTP(S) server, so the syslinux and GRUB
//! parsers read configs from the network unchanged.
//!
//! Paths are the server's (`/pxelinux.cfg/default` is `tftp://HOST/pxelinux.cfg/default`).
//! A file read for parsing (a `copy_to` bounded by at most [`MAX_CONFIG_BYTES`]) is fetched
//! once and kept, as is the fact that a file does not exist: parsers that look a file up
//! twice (an `INCLUDE`, a kernel checked then loaded) cost one transfer. At most
//! [`MAX_CACHED_BYTES`] are kept in all and at most [`MAX_FETCHES`] transfers made per
//! `NetFs`; larger reads (a kernel, an initrd) are streamed straight through, never kept.
//! `metadata` of a file not fetched is a size probe (HTTP `HEAD`, TFTP `tsize`), remembered.
//! `read_dir` is unsupported (TFTP has no listing): it fails with an I/O error, which the
//! parsers treat as "no such directory".

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::rc::Rc;

use super::fetch::{self, Control, FetchConfig, Limits, NetError};
use super::url::{Url, UrlError};
use crate::entry::{FileRef, VolumeView};
use crate::fs::{normalize, BootFs, DirEntry, FileKind, FsError, Metadata, MAX_CONFIG_BYTES};

/// Bytes of config files kept per `NetFs`.
pub const MAX_CACHED_BYTES: u64 = 16 << 20;
/// Transfers (fetches and size probes) one `NetFs` makes at most: a config cannot make the
/// parsers walk a server forever.
pub const MAX_FETCHES: u32 = 256;

/// A server as a read-only volume.
pub struct NetFs {
    base: Url,
    name: String,
    cfg: FetchConfig,
    files: RefCell<BTreeMap<String, Rc<Vec<u8>>>>,
    missing: RefCell<BTreeSet<String>>,
    sizes: RefCell<BTreeMap<String, Option<u64>>>,
    cached: Cell<u64>,
    fetches: Cell<u32>,
}

impl NetFs {
    /// A volume over `base`'s server (its path is ignored: paths are server paths), named
    /// `name` (`eth0 tftp://10.0.2.2`, or the origin).
    pub fn new(base: &Url, name: Option<&str>, cfg: FetchConfig) -> NetFs {
        let origin = Url {
            path: "/".into(),
            ..base.clone()
        };
        NetFs {
            name: name.map_or_else(|| origin.origin(), str::to_string),
            base: origin,
            cfg,
            files: RefCell::default(),
            missing: RefCell::default(),
            sizes: RefCell::default(),
            cached: Cell::new(0),
            fetches: Cell::new(0),
        }
    }

    /// The volume name (what entries' [`FileRef::volume`] hold).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of server path `path`.
    pub fn url(&self, path: &str) -> Result<Url, UrlError> {
        self.base.join(&normalize(path))
    }

    /// Transfers made so far.
    pub fn fetches(&self) -> u32 {
        self.fetches.get()
    }

    /// This volume as a parser sees it.
    pub fn view(&self) -> VolumeView<'_> {
        VolumeView {
            name: &self.name,
            fs: self,
            uuid: None,
            label: None,
            part_uuid: None,
            part_type: None,
            grub_position: None,
            root_fs: false,
        }
    }

    fn count_fetch(&self, path: &str) -> Result<(), FsError> {
        let n = self.fetches.get() + 1;
        if n > MAX_FETCHES {
            return Err(FsError::Io {
                path: path.to_string(),
                message: format!(
                    "more than {MAX_FETCHES} transfers from {}",
                    self.base.origin()
                ),
            });
        }
        self.fetches.set(n);
        Ok(())
    }

    fn fs_error(&self, path: &str, e: NetError) -> FsError {
        match e {
            NetError::NotFound { .. } => {
                self.missing.borrow_mut().insert(path.to_string());
                FsError::NotFound(path.to_string())
            }
            NetError::TooLarge { len, max, .. } => FsError::TooLarge {
                path: path.to_string(),
                len,
                max,
            },
            e => {
                // The path is said by FsError already; keep the rest (it names the server).
                let m = e.to_string();
                let url = self.url(path).map(|u| format!("{u}: ")).unwrap_or_default();
                FsError::Io {
                    path: path.to_string(),
                    message: m.strip_prefix(&url).unwrap_or(&m).to_string(),
                }
            }
        }
    }

    fn url_for(&self, path: &str) -> Result<Url, FsError> {
        self.url(path).map_err(|e| FsError::Io {
            path: path.to_string(),
            message: e.to_string(),
        })
    }
}

impl BootFs for NetFs {
    fn metadata(&self, path: &str) -> Result<Metadata, FsError> {
        let p = normalize(path);
        let file = |len| {
            Ok(Metadata {
                kind: FileKind::File,
                len,
            })
        };
        if let Some(c) = self.files.borrow().get(&p) {
            return file(c.len() as u64);
        }
        if self.missing.borrow().contains(&p) {
            return Err(FsError::NotFound(p));
        }
        if let Some(s) = self.sizes.borrow().get(&p) {
            return file(s.unwrap_or(0));
        }
        if p == "/" {
            return Ok(Metadata {
                kind: FileKind::Dir,
                len: 0,
            });
        }
        self.count_fetch(&p)?;
        let url = self.url_for(&p)?;
        match fetch::probe_size(&url, &self.cfg) {
            Ok(s) => {
                self.sizes.borrow_mut().insert(p, s);
                file(s.unwrap_or(0))
            }
            Err(e) => Err(self.fs_error(&p, e)),
        }
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        Err(FsError::Io {
            path: normalize(path),
            message: format!(
                "{} servers give no directory listings",
                self.base.scheme.as_str()
            ),
        })
    }

    fn copy_to(&self, path: &str, out: &mut dyn Write, max: u64) -> Result<u64, FsError> {
        let p = normalize(path);
        let io = |e: std::io::Error| FsError::Io {
            path: p.clone(),
            message: e.to_string(),
        };
        if let Some(c) = self.files.borrow().get(&p).cloned() {
            if c.len() as u64 > max {
                return Err(FsError::TooLarge {
                    path: p,
                    len: c.len() as u64,
                    max,
                });
            }
            out.write_all(&c).map_err(io)?;
            return Ok(c.len() as u64);
        }
        if self.missing.borrow().contains(&p) {
            return Err(FsError::NotFound(p));
        }
        self.count_fetch(&p)?;
        let url = self.url_for(&p)?;
        if max > MAX_CONFIG_BYTES {
            // A kernel or initrd: straight through, not kept.
            let limits = Limits {
                max_bytes: max,
                ..Limits::default()
            };
            return fetch::fetch(&url, out, &self.cfg, limits, &mut Control::default())
                .map_err(|e| self.fs_error(&p, e));
        }
        let left = MAX_CACHED_BYTES.saturating_sub(self.cached.get());
        let limits = Limits {
            max_bytes: max.min(left),
            ..Limits::config()
        };
        let mut buf = Vec::new();
        fetch::fetch(&url, &mut buf, &self.cfg, limits, &mut Control::default())
            .map_err(|e| match e {
                NetError::TooLarge { len, .. } if max > left => FsError::Io {
                    path: p.clone(),
                    message: format!(
                        "{len} bytes would pass the {MAX_CACHED_BYTES}-byte bound on config files from {}",
                        self.base.origin()
                    ),
                },
                e => self.fs_error(&p, e),
            })?;
        out.write_all(&buf).map_err(io)?;
        let n = buf.len() as u64;
        self.cached.set(self.cached.get() + n);
        self.files.borrow_mut().insert(p, Rc::new(buf));
        Ok(n)
    }
}

/// The URL of a network [`FileRef`]: its volume's last word is the server's URL
/// (`eth0 tftp://10.0.2.2`), its path the server path. `None` for a disk volume.
pub fn url_of(f: &FileRef) -> Option<Url> {
    let base = f.volume.split_whitespace().last()?;
    if !base.contains("://") {
        return None;
    }
    Url::parse(base).ok()?.join(&normalize(&f.path)).ok()
}

/// Whether any of `e`'s files (kernel, initrds) comes from a network server.
pub fn from_network(e: &crate::entry::BootEntry) -> bool {
    std::iter::once(&e.kernel)
        .chain(&e.initrds)
        .any(|f| url_of(f).is_some())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn network_file_refs_name_their_url() {
        let f = FileRef {
            volume: "eth0 tftp://10.0.2.2".into(),
            path: "/debian-installer/amd64/linux".into(),
        };
        assert_eq!(
            url_of(&f).unwrap().to_string(),
            "tftp://10.0.2.2/debian-installer/amd64/linux"
        );
        let disk = FileRef {
            volume: "vda1".into(),
            path: "/vmlinuz".into(),
        };
        assert_eq!(url_of(&disk), None);
    }

    /// An HTTP/1.0 server on loopback answering GET/HEAD from `files`; returns its port and
    /// the count of requests it served.
    pub(crate) fn server(
        files: Vec<(&'static str, Vec<u8>)>,
    ) -> (u16, std::sync::Arc<std::sync::atomic::AtomicU32>) {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let count = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let c2 = count.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let mut req = [0u8; 2048];
                let n = s.read(&mut req).unwrap_or(0);
                let req = String::from_utf8_lossy(&req[..n]).to_string();
                let mut w = req.split_whitespace();
                let (method, path) = (w.next().unwrap_or(""), w.next().unwrap_or(""));
                c2.fetch_add(1, Ordering::SeqCst);
                let reply = match files.iter().find(|(p, _)| *p == path) {
                    Some((_, body)) => {
                        let mut r =
                            format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", body.len())
                                .into_bytes();
                        if method == "GET" {
                            r.extend_from_slice(body);
                        }
                        r
                    }
                    None => b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
                };
                let _ = s.write_all(&reply);
            }
        });
        (port, count)
    }

    #[test]
    fn each_file_is_fetched_once_and_parsers_run_unchanged() {
        use std::sync::atomic::Ordering;
        let (port, count) = server(vec![
            ("/pxelinux.cfg/default", b"DEFAULT a\nINCLUDE common.cfg\nINCLUDE common.cfg\nLABEL a\n KERNEL vmlinuz\n APPEND x=1\n".to_vec()),
            ("/common.cfg", b"TIMEOUT 50\n".to_vec()),
            ("/vmlinuz", vec![7u8; 3 << 20]),
        ]);
        let url = Url::parse(&format!("http://127.0.0.1:{port}/pxelinux.cfg/default")).unwrap();
        let (found, fs) = crate::net::source::discover_url(&url, &FetchConfig::default(), "");
        assert!(found.errors.is_empty(), "{:?}", found.errors);
        assert_eq!(found.entries.len(), 1);
        let e = &found.entries[0];
        assert_eq!(
            (e.kernel.path.as_str(), e.cmdline.as_str()),
            ("/vmlinuz", "x=1")
        );
        assert_eq!(
            url_of(&e.kernel).unwrap().to_string(),
            format!("http://127.0.0.1:{port}/vmlinuz")
        );
        // default + common.cfg once, though included twice.
        assert_eq!(count.load(Ordering::SeqCst), 2);
        assert_eq!(fs.fetches(), 2);
        // Read again: from the cache. Missing files are remembered too.
        assert!(fs.read("/common.cfg", MAX_CONFIG_BYTES).is_ok());
        assert!(matches!(
            fs.read("/nope", MAX_CONFIG_BYTES),
            Err(FsError::NotFound(_))
        ));
        assert!(matches!(fs.metadata("/nope"), Err(FsError::NotFound(_))));
        assert_eq!(count.load(Ordering::SeqCst), 3);
        // A size probe (HEAD), then a big read streamed through, not kept.
        assert_eq!(fs.metadata("/vmlinuz").unwrap().len, 3 << 20);
        let mut out = Vec::new();
        assert_eq!(
            fs.copy_to("/vmlinuz", &mut out, 256 << 20).unwrap(),
            3 << 20
        );
        assert!(matches!(
            fs.read("/vmlinuz", MAX_CONFIG_BYTES),
            Err(FsError::TooLarge { .. })
        ));
        assert_eq!(count.load(Ordering::SeqCst), 6);
    }

    #[test]
    fn nothing_listens_so_reads_fail_as_io_not_panics() {
        // A closed loopback port: a bounded failure, counted, and read_dir unsupported.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let url = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let fs = NetFs::new(&url, None, FetchConfig::default());
        assert_eq!(fs.name(), format!("http://127.0.0.1:{port}"));
        assert!(matches!(fs.read_dir("/"), Err(FsError::Io { .. })));
        let limits_ok = std::time::Instant::now();
        let e = fs
            .read("/pxelinux.cfg/default", MAX_CONFIG_BYTES)
            .unwrap_err();
        assert!(matches!(e, FsError::Io { .. }), "{e}");
        assert!(limits_ok.elapsed() < std::time::Duration::from_secs(10));
        assert_eq!(fs.fetches(), 1);
    }
}
