//! A network boot source: what a URL holds (a pxelinux config, a GRUB config, an iPXE
//! script or a Linux kernel) and the entries it gives, through the existing parsers reading a
//! [`NetFs`].
//!
//! How a URL is recognised: `#!ipxe` first → iPXE; a bzImage (`HdrS` at 0x202) → one entry
//! booting it; a file named `grub.cfg`, or text with a `menuentry`, → GRUB (run with
//! `$prefix` at its directory, `(tftp)`/`(http)` naming the same server); other text →
//! syslinux/pxelinux, relative paths against the directory above `pxelinux.cfg/` (pxelinux's
//! rule). Every entry's files are on the source's [`NetFs`] volume, so the loader fetches
//! them by URL ([`url_of`](super::netfs::url_of)).

use std::io::Write;

use super::fetch::FetchConfig;
use super::netfs::NetFs;
use super::pxe::{config_candidates, PxeClient};
use super::url::Url;
use crate::entry::{
    BootEntry, DefaultRule, EntryError, EntryKind, EntrySource, FileRef, Format, Found,
};
use crate::fs::{BootFs, FsError, MAX_CONFIG_BYTES};

/// What a fetched file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A syslinux/pxelinux configuration.
    Pxelinux,
    /// A GRUB `grub.cfg`.
    Grub,
    /// An iPXE script.
    Ipxe,
    /// A Linux kernel (bzImage).
    Kernel,
}

/// Bytes looked at to recognise a kernel.
const SNIFF_BYTES: usize = 4096;

/// Whether `head` starts a bzImage.
pub fn is_bzimage(head: &[u8]) -> bool {
    head.len() >= 0x206 && &head[0x202..0x206] == b"HdrS"
}

/// What the file at `path` starting with `head` is.
pub fn classify(path: &str, head: &[u8]) -> Kind {
    let text_start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&[][..], |i| &head[i..]);
    if text_start.len() >= 6 && text_start[..6].eq_ignore_ascii_case(b"#!ipxe") {
        return Kind::Ipxe;
    }
    if is_bzimage(head) {
        return Kind::Kernel;
    }
    let name = path.rsplit('/').next().unwrap_or("");
    let text = String::from_utf8_lossy(head);
    if name.eq_ignore_ascii_case("grub.cfg")
        || text
            .lines()
            .any(|l| l.trim_start().starts_with("menuentry "))
    {
        return Kind::Grub;
    }
    Kind::Pxelinux
}

/// Keeps the first `SNIFF_BYTES` written, then refuses more (ending the transfer).
struct Sniff(Vec<u8>);

impl Write for Sniff {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = SNIFF_BYTES - self.0.len();
        if room == 0 {
            return Err(std::io::Error::other("enough to recognise the file"));
        }
        let n = buf.len().min(room);
        self.0.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The entries of what `url` holds. `cmdline` is the command line a bare kernel boots with
/// (what DHCP or the operator gives). The returned [`NetFs`] is the volume the entries
/// name; the loader needs only their URLs.
pub fn discover_url(url: &Url, cfg: &FetchConfig, cmdline: &str) -> (Found, NetFs) {
    discover_url_with(url, cfg, cmdline, &crate::net::ipxe::Vars::default())
}

/// As [`discover_url`], with the client's values for an iPXE script's `${...}` (`net0/mac`,
/// `ip`, `next-server`...: [`crate::net::ipxe::Vars::client`]).
pub fn discover_url_with(
    url: &Url,
    cfg: &FetchConfig,
    cmdline: &str,
    vars: &crate::net::ipxe::Vars,
) -> (Found, NetFs) {
    let fs = NetFs::new(url, None, cfg.clone());
    let path = url.path.clone();
    let found = match fs.read(&path, MAX_CONFIG_BYTES) {
        Ok(bytes) => from_bytes(&fs, &path, bytes, cmdline, vars),
        Err(FsError::TooLarge { .. }) => {
            // Too big for a config: a kernel, if it looks like one.
            let mut s = Sniff(Vec::new());
            let _ = fs.copy_to(&path, &mut s, u64::MAX);
            if is_bzimage(&s.0) {
                kernel_entry(&fs, &path, cmdline)
            } else {
                error_found(
                    &fs,
                    &path,
                    "neither a boot configuration nor a Linux kernel".into(),
                )
            }
        }
        Err(e) => error_found(&fs, &path, e.to_string()),
    };
    (found, fs)
}

/// pxelinux's search on `server` for `client`: the first config of
/// [`config_candidates`] that exists, parsed. A candidate on another server (option 209/210
/// as a URL) is read from there.
pub fn discover_pxe(server: &Url, client: &PxeClient, cfg: &FetchConfig) -> (Found, NetFs) {
    let fs = NetFs::new(server, None, cfg.clone());
    let mut tried = Vec::new();
    for c in config_candidates(client) {
        if c.contains("://") {
            match Url::parse(&c) {
                Ok(u) => return discover_url(&u, cfg, ""),
                Err(e) => {
                    tried.push(format!("{c}: {e}"));
                    continue;
                }
            }
        }
        match fs.read(&c, MAX_CONFIG_BYTES) {
            Ok(bytes) => {
                log::info!("{}: pxelinux configuration {c}", fs.name());
                let found = from_bytes(&fs, &c, bytes, "", &Default::default());
                return (found, fs);
            }
            Err(FsError::NotFound(_)) => log::debug!("{}: no {c}", fs.name()),
            Err(e) => {
                // A server that fails (not "not found") is not asked for the rest.
                let found = error_found(&fs, &c, e.to_string());
                return (found, fs);
            }
        }
        tried.push(c);
    }
    let found = error_found(
        &fs,
        "/pxelinux.cfg/",
        format!(
            "no pxelinux configuration found (tried {})",
            tried.join(", ")
        ),
    );
    (found, fs)
}

fn from_bytes(
    fs: &NetFs,
    path: &str,
    bytes: Vec<u8>,
    cmdline: &str,
    vars: &crate::net::ipxe::Vars,
) -> Found {
    let view = fs.view();
    match classify(path, &bytes) {
        Kind::Kernel => kernel_entry(fs, path, cmdline),
        Kind::Ipxe => crate::net::ipxe::discover_with(fs, path, &bytes, vars),
        Kind::Grub => {
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            let host = fs.url("/").map(|u| u.host).unwrap_or_default();
            crate::entry::grub::discover_file(
                &view,
                &[view],
                path,
                &[
                    ("prefix", &format!("({}){dir}", fs.name())),
                    ("net_default_server", &host),
                    ("pxe_default_server", &host),
                ],
            )
        }
        Kind::Pxelinux => {
            use crate::entry::syslinux;
            let workdir = syslinux::working_dir(path);
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let mut read = |p: &str| match fs.read(p, MAX_CONFIG_BYTES) {
                Ok(t) => Ok(Some(String::from_utf8_lossy(&t).into_owned())),
                Err(FsError::NotFound(_)) => Ok(None),
                Err(e) => Err(e.to_string()),
            };
            let cfg = syslinux::parse::parse(path, text, &workdir, &mut read);
            syslinux::build(&cfg, &view, path, &workdir)
        }
    }
}

pub(crate) fn kernel_entry(fs: &NetFs, path: &str, cmdline: &str) -> Found {
    let name = path.rsplit('/').next().unwrap_or(path);
    Found {
        entries: vec![BootEntry {
            id: name.to_string(),
            title: format!("{name} from {}", fs.name()),
            version: None,
            kernel: FileRef {
                volume: fs.name().to_string(),
                path: path.to_string(),
            },
            initrds: Vec::new(),
            cmdline: cmdline.to_string(),
            devicetree: None,
            format: Format::Bootdir,
            kind: EntryKind::Linux,
            source: EntrySource {
                volume: fs.name().to_string(),
                file: path.to_string(),
                line: None,
            },
        }],
        default: Some(DefaultRule::Index(0)),
        ..Found::default()
    }
}

pub(crate) fn error_found(fs: &NetFs, path: &str, message: String) -> Found {
    Found {
        errors: vec![EntryError {
            volume: fs.name().to_string(),
            file: path.to_string(),
            line: None,
            message,
        }],
        ..Found::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Debian 12 netboot tree (configs only) served over HTTP on loopback.
    fn debian_server() -> u16 {
        fn walk(dir: &std::path::Path, rel: &str, out: &mut Vec<(&'static str, Vec<u8>)>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                let name = format!("{rel}/{}", e.file_name().to_string_lossy());
                if e.file_type().unwrap().is_dir() {
                    walk(&e.path(), &name, out);
                } else {
                    out.push((
                        Box::leak(name.into_boxed_str()),
                        std::fs::read(e.path()).unwrap(),
                    ));
                }
            }
        }
        let mut files = Vec::new();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/net/testdata/debian-12-netboot");
        walk(&root, "", &mut files);
        crate::net::netfs::tests::server(files).0
    }

    fn titles(f: &Found) -> Vec<String> {
        f.entries.iter().map(|e| e.title.clone()).collect()
    }

    #[test]
    fn debian_netboot_pxelinux_menu_over_netfs() {
        let port = debian_server();
        let url = Url::parse(&format!("http://127.0.0.1:{port}/pxelinux.cfg/default")).unwrap();
        let (f, _) = discover_url(&url, &FetchConfig::default(), "");
        assert_eq!(
            titles(&f),
            [
                "Install",
                "Advanced options > Expert install",
                "Advanced options > Rescue mode",
                "Advanced options > Automated install",
                "Accessible dark contrast installer menu > Install",
                "Accessible dark contrast installer menu > Advanced options > Expert install",
                "Accessible dark contrast installer menu > Advanced options > Rescue mode",
                "Accessible dark contrast installer menu > Advanced options > Automated install",
            ]
        );
        let e = &f.entries[0];
        assert_eq!(e.kernel.path, "/debian-installer/amd64/linux");
        assert_eq!(e.initrds[0].path, "/debian-installer/amd64/initrd.gz");
        assert_eq!(
            e.cmdline,
            "vga=788 initrd=debian-installer/amd64/initrd.gz --- quiet"
        );
        // DEFAULT names vesamenu.c32, the menu UI: no default entry, so the first one boots.
        assert_eq!(f.default_index(), None);
    }

    #[test]
    fn debian_netboot_grub_menu_over_netfs() {
        let port = debian_server();
        let url = Url::parse(&format!(
            "http://127.0.0.1:{port}/debian-installer/amd64/grub/grub.cfg"
        ))
        .unwrap();
        let (f, _) = discover_url(&url, &FetchConfig::default(), "");
        let t = titles(&f);
        assert_eq!(t.len(), 26, "{t:?}");
        assert_eq!(t[0], "Install");
        assert!(
            t.contains(&"Advanced options ...>... Expert install".to_string()),
            "{t:?}"
        );
        let e = &f.entries[0];
        assert_eq!(e.kernel.volume, format!("http://127.0.0.1:{port}"));
        assert_eq!(
            e.cmdline,
            "BOOT_IMAGE=/debian-installer/amd64/linux vga=788 --- quiet"
        );
    }

    #[test]
    fn grub_network_devices_name_the_config_server() {
        use crate::entry::VolumeView;
        use crate::fs::mem::MemFs;
        let fs = MemFs::new(&[(
            "/grub/grub.cfg",
            "menuentry 'A' {\n linux (tftp)/k x=1\n initrd (http,10.0.2.2)/i $prefix/j\n}\n",
        )]);
        let v = VolumeView {
            name: "tftp://10.0.2.2",
            fs: &fs,
            uuid: None,
            label: None,
            part_uuid: None,
            part_type: None,
            grub_position: None,
            root_fs: false,
        };
        let f = crate::entry::grub::discover_file(
            &v,
            &[v],
            "/grub/grub.cfg",
            &[("prefix", "(tftp)/grub")],
        );
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        let e = &f.entries[0];
        assert_eq!(
            (e.kernel.volume.as_str(), e.kernel.path.as_str()),
            ("tftp://10.0.2.2", "/k")
        );
        let i: Vec<&str> = e.initrds.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(i, ["/i", "/grub/j"]);
        assert_eq!(e.cmdline, "BOOT_IMAGE=(tftp)/k x=1");
    }

    #[test]
    fn recognises_what_a_url_holds() {
        let mut kernel = vec![0u8; 0x300];
        kernel[0x202..0x206].copy_from_slice(b"HdrS");
        assert_eq!(classify("/boot/linux", &kernel), Kind::Kernel);
        assert_eq!(classify("/x", b"  #!iPXE\nkernel k\n"), Kind::Ipxe);
        assert_eq!(classify("/d/grub/grub.cfg", b"set timeout=5\n"), Kind::Grub);
        assert_eq!(
            classify("/cfg", b"set a=1\nmenuentry 'A' {\n}\n"),
            Kind::Grub
        );
        assert_eq!(
            classify("/pxelinux.cfg/default", b"default install\n"),
            Kind::Pxelinux
        );
    }
}
