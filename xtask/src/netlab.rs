//! A scenario's network: a network namespace with a tap device, `dnsmasq` serving DHCPv4,
//! DHCPv6 and TFTP on it, and QEMU run inside the namespace with its NIC on the tap. Nothing
//! leaves the namespace; [`Lab`]'s `Drop` kills dnsmasq and deletes the namespace (and the
//! tap with it), also when the scenario fails.
//!
//! The server side is 10.0.2.2/24 and fd00::2/64 on `tap0` (10.0.2.2 is the host in QEMU's
//! user networking too); the guest NIC's MAC is [`GUEST_MAC`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::image::Artifacts;

/// The guest NIC's MAC address.
pub const GUEST_MAC: &str = "52:54:00:12:34:56";
/// The server's addresses on the tap.
pub const SERVER_V4: &str = "10.0.2.2";
/// The server's IPv6 address on the tap.
pub const SERVER_V6: &str = "fd00::2";

/// `[network]` in a scenario file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// The QEMU NIC model: `virtio-net-pci` (default), `e1000`, `e1000e`.
    #[serde(default = "default_nic")]
    pub nic: String,
    /// `false`: dnsmasq answers no DHCP at all (TFTP still runs): a dead DHCP network.
    #[serde(default = "yes")]
    pub dhcp: bool,
    /// dnsmasq's DHCPv4 range (`--dhcp-range`); empty: no DHCPv4.
    #[serde(default = "default_dhcp4")]
    pub dhcp4: String,
    /// dnsmasq's DHCPv6 range; empty (default): no DHCPv6.
    #[serde(default)]
    pub dhcp6: String,
    /// `--dhcp-boot`: the boot file (option 67 / `file`).
    #[serde(default)]
    pub boot_file: String,
    /// More dnsmasq options, as on its command line (`--dhcp-option=209,pxelinux.cfg/x`).
    #[serde(default)]
    pub dnsmasq: Vec<String>,
    /// The TFTP root: path → content, with the `@kernel`, `@target-initrd`... generators of
    /// disk partitions. Over a `tree`, these replace (or add) files. With `http = true` the
    /// same files are served over HTTP too.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// A Debian package whose TFTP tree is the TFTP root (`crate::netboot`), e.g.
    /// `debian-installer-12-netboot-amd64`; empty (default): only `files`.
    #[serde(default)]
    pub tree: String,
    /// The tree's directory inside the package
    /// (`usr/lib/debian-installer/images/12/amd64/text`); default: the package root.
    #[serde(default)]
    pub tree_dir: String,
    /// Also serve `files` over HTTP on port 80 of 10.0.2.2 and [fd00::2] (a Python server,
    /// [`HTTP_PY`]); its log is `http.log`.
    #[serde(default)]
    pub http: bool,
    /// Paths (as in `files`) the HTTP server sends slowly: path → bytes per second (a
    /// trickling server, for transfers long enough to cut or cancel).
    #[serde(default)]
    pub http_slow: BTreeMap<String, u64>,
    /// Also serve `files` over HTTPS on port 443 (the same server with TLS), with a server
    /// certificate for 10.0.2.2 and fd00::2 issued by this run's throwaway CA (`@https-ca`;
    /// `@https-wrong-ca` is a CA that issued nothing); its log is `https.log`.
    #[serde(default)]
    pub https: bool,
}

/// The HTTP server: Python's `http.server` over the TFTP root (argument 1) on a port
/// (argument 2), dual-stack (10.0.2.2 and [fd00::2]), each request logged; TLS with the
/// certificate and key of arguments 3 and 4 unless they are `-`; the paths named after them
/// (`path=rate`) are sent at that many bytes per second, in tenth-of-a-second slices.
const HTTP_PY: &str = r#"
import http.server, socket, ssl, sys, time
root, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
slow = {k: int(v) for k, v in (a.split("=", 1) for a in sys.argv[5:])}
class H(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)
    def copyfile(self, src, dst):
        rate = slow.get(self.path.split("?")[0].lstrip("/"))
        if rate is None:
            return super().copyfile(src, dst)
        step = max(1, rate // 10)
        while True:
            b = src.read(step)
            if not b:
                return
            dst.write(b)
            dst.flush()
            time.sleep(0.1)
class S(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
print("serving", root, "on", port, "slow:", slow, flush=True)
srv = S(("::", port), H)
if cert != "-":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"#;

fn default_nic() -> String {
    "virtio-net-pci".into()
}
fn yes() -> bool {
    true
}
fn default_dhcp4() -> String {
    "10.0.2.50,10.0.2.99,255.255.255.0,1h".into()
}

impl NetworkSpec {
    /// QEMU's arguments for the guest NIC on `tap0`.
    pub fn qemu_args(&self) -> anyhow::Result<Vec<String>> {
        if !["virtio-net-pci", "e1000", "e1000e"].contains(&self.nic.as_str()) {
            bail!(
                "[network] nic = {:?}: expected virtio-net-pci, e1000 or e1000e",
                self.nic
            );
        }
        Ok(vec![
            "-netdev".into(),
            "tap,id=n0,ifname=tap0,script=no,downscript=no".into(),
            "-device".into(),
            format!("{},netdev=n0,mac={GUEST_MAC}", self.nic),
        ])
    }

    /// dnsmasq's arguments (without the program), serving `tftp_root`.
    pub fn dnsmasq_args(&self, tftp_root: &Path, log: &Path) -> Vec<String> {
        let mut a: Vec<String> = [
            "--keep-in-foreground",
            // No pid file: parallel dnsmasqs race on /run/dnsmasq.pid (O_EXCL).
            "--pid-file",
            "--conf-file=/dev/null",
            "--leasefile-ro",
            "--port=0",
            "--interface=tap0",
            "--bind-interfaces",
            "--log-dhcp",
            "--enable-tftp",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.push(format!("--tftp-root={}", tftp_root.display()));
        a.push(format!("--log-facility={}", log.display()));
        if self.dhcp {
            if !self.dhcp4.is_empty() {
                a.push(format!("--dhcp-range={}", self.dhcp4));
            }
            if !self.dhcp6.is_empty() {
                a.push(format!("--dhcp-range={}", self.dhcp6));
            }
            if !self.boot_file.is_empty() {
                a.push(format!("--dhcp-boot={}", self.boot_file));
            }
            a.extend(self.dnsmasq.iter().cloned());
        }
        a
    }
}

impl NetworkSpec {
    /// Copies the package tree `tree`/`tree_dir` to `root` (without the files `files`
    /// replaces) and records its provenance in `dir/tree.txt`.
    fn lay_tree(&self, root: &Path, dir: &Path) -> anyhow::Result<()> {
        let sub = self.tree_dir.trim_matches('/');
        if sub.split('/').any(|c| c == "..") {
            bail!("[network] tree_dir {:?}: no '..'", self.tree_dir);
        }
        let t = crate::netboot::get(&self.tree)?;
        let from = t.root.join(sub);
        if !from.is_dir() {
            bail!(
                "[network] tree_dir {sub:?}: no such directory in {}",
                t.name
            );
        }
        let skip: Vec<String> = self
            .files
            .keys()
            .map(|k| k.trim_start_matches('/').to_string())
            .collect();
        let bytes = crate::netboot::copy_tree(&from, root, &skip)?;
        let note = format!("TFTP root: {} /{sub} ({bytes} bytes copied)", t.name);
        println!("xtask: {note}");
        std::fs::write(dir.join("tree.txt"), format!("{note}\n"))?;
        Ok(())
    }
}

/// A live network namespace with tap0, dnsmasq and maybe an HTTP server; removed on drop.
pub struct Lab {
    pub netns: String,
    dnsmasq: Option<Child>,
    /// dnsmasq's arguments and work directory, to start it again.
    dnsmasq_args: Vec<String>,
    dir: PathBuf,
    http: Option<Child>,
    https: Option<Child>,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let st = Command::new("ip")
        .args(args)
        .status()
        .context("running ip (iproute2)")?;
    if !st.success() {
        bail!("ip {} failed ({st})", args.join(" "));
    }
    Ok(())
}

impl Lab {
    /// Creates namespace `netns` (named after the scenario), `tap0` in it with the server
    /// addresses, writes the TFTP root under `dir`, and starts dnsmasq.
    pub fn start(
        spec: &NetworkSpec,
        netns: &str,
        dir: &Path,
        art: &Artifacts,
    ) -> anyhow::Result<Lab> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            bail!(
                "[network] scenarios need root (ip netns, ip tuntap); run cargo xtask test as root"
            );
        }
        // A namespace left by a killed run of the same scenario.
        let _ = Command::new("ip")
            .args(["netns", "del", netns])
            .stderr(Stdio::null())
            .status();
        ip(&["netns", "add", netns])?;
        let mut lab = Lab {
            netns: netns.to_string(),
            dnsmasq: None,
            dnsmasq_args: Vec::new(),
            dir: dir.to_path_buf(),
            http: None,
            https: None,
        };
        ip(&["-n", netns, "link", "set", "lo", "up"])?;
        ip(&["-n", netns, "tuntap", "add", "dev", "tap0", "mode", "tap"])?;
        ip(&[
            "-n",
            netns,
            "addr",
            "add",
            &format!("{SERVER_V4}/24"),
            "dev",
            "tap0",
        ])?;
        ip(&[
            "-n",
            netns,
            "addr",
            "add",
            &format!("{SERVER_V6}/64"),
            "dev",
            "tap0",
            "nodad",
        ])?;
        ip(&["-n", netns, "link", "set", "tap0", "up"])?;
        let root = dir.join("tftp");
        if !spec.tree.is_empty() {
            spec.lay_tree(&root, dir)?;
        }
        std::fs::create_dir_all(&root)?;
        for (path, content) in &spec.files {
            let rel = path.trim_start_matches('/');
            if rel.split('/').any(|c| c == "..") {
                bail!("[network.files] {path:?}: no '..' in TFTP paths");
            }
            let p = root.join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)?;
            }
            // Replace, never write through: a tree's file may be a symlink.
            let _ = std::fs::remove_file(&p);
            std::fs::write(&p, art.content(content)?)
                .with_context(|| format!("[network.files] {path}"))?;
        }
        let log = dir.join("dnsmasq.log");
        lab.dnsmasq_args = spec.dnsmasq_args(&root, &log);
        lab.start_dnsmasq()?;
        if spec.http || spec.https {
            for path in spec.http_slow.keys() {
                if !spec.files.contains_key(path) {
                    bail!("[network.http_slow] {path:?} is not in [network.files]");
                }
            }
        }
        let serve =
            |port: u16, tls: Option<(PathBuf, PathBuf)>, log: &str| -> anyhow::Result<Child> {
                let log = std::fs::File::create(dir.join(log))?;
                let (cert, key) = tls.unwrap_or_else(|| ("-".into(), "-".into()));
                Command::new("ip")
                    .args(["netns", "exec", netns, "python3", "-u", "-c", HTTP_PY])
                    .arg(&root)
                    .arg(port.to_string())
                    .args([&cert, &key])
                    .args(
                        spec.http_slow
                            .iter()
                            .map(|(p, rate)| format!("{}={rate}", p.trim_start_matches('/'))),
                    )
                    .stdin(Stdio::null())
                    .stdout(log.try_clone()?)
                    .stderr(log)
                    .spawn()
                    .context("starting the HTTP server (python3)")
            };
        if spec.http {
            lab.http = Some(serve(80, None, "http.log")?);
        }
        if spec.https {
            let certs = art.https_certs()?;
            lab.https = Some(serve(
                443,
                Some((certs.join("server.pem"), certs.join("server.key"))),
                "https.log",
            )?);
        }
        std::thread::sleep(Duration::from_millis(200));
        if let Some(Ok(Some(st))) = lab.dnsmasq.as_mut().map(|c| c.try_wait()) {
            bail!(
                "dnsmasq exited at once ({st}); see {}",
                dir.join("dnsmasq.stderr").display()
            );
        }
        if spec.http {
            lab.wait_http(dir, 80)?;
        }
        if spec.https {
            lab.wait_http(dir, 443)?;
        }
        Ok(lab)
    }

    /// Waits until the HTTP(S) server accepts connections on 10.0.2.2:`port` (10 s at most).
    fn wait_http(&mut self, dir: &Path, port: u16) -> anyhow::Result<()> {
        let probe = format!(
            "import socket,sys\ntry:\n socket.create_connection(('{SERVER_V4}',{port}),1)\nexcept OSError:\n sys.exit(1)"
        );
        let (server, log) = if port == 443 {
            (&mut self.https, "https.log")
        } else {
            (&mut self.http, "http.log")
        };
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Some(Ok(Some(st))) = server.as_mut().map(|c| c.try_wait()) {
                bail!(
                    "the HTTP server on port {port} exited ({st}); see {}",
                    dir.join(log).display()
                );
            }
            let ok = Command::new("ip")
                .args(["netns", "exec", &self.netns, "python3", "-c", &probe])
                .status()?
                .success();
            if ok {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "the HTTP server does not answer on port {port} after 10 s; see {}",
            dir.join(log).display()
        )
    }

    /// Starts dnsmasq (again: a scenario's `{ net = "start-dnsmasq" }` step brings a stopped
    /// server back). Its stderr goes to `dnsmasq.stderr`, its log to `dnsmasq.log`.
    pub fn start_dnsmasq(&mut self) -> anyhow::Result<()> {
        if self.dnsmasq.is_some() {
            bail!("dnsmasq is running already");
        }
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dnsmasq.stderr"))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .arg(crate::prereq::find("dnsmasq").unwrap_or_else(|| PathBuf::from("dnsmasq")))
            .args(&self.dnsmasq_args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("starting dnsmasq (Debian package dnsmasq-base)")?;
        self.dnsmasq = Some(child);
        Ok(())
    }

    /// Stops dnsmasq (DHCP and TFTP) now: a scenario's `{ net = "stop-dnsmasq" }` step, to
    /// cut a running TFTP transfer off mid-file. A running transfer's socket goes with it.
    pub fn stop_dnsmasq(&mut self) -> anyhow::Result<()> {
        let Some(mut d) = self.dnsmasq.take() else {
            bail!("dnsmasq is not running");
        };
        // `ip netns exec` execs dnsmasq itself: this is dnsmasq's pid.
        d.kill().context("killing dnsmasq")?;
        d.wait()?;
        Ok(())
    }

    /// `cmd`, run inside the namespace (`ip netns exec`).
    pub fn wrap(&self, cmd: &Command) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.netns])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        c
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for mut c in [self.dnsmasq.take(), self.http.take(), self.https.take()]
            .into_iter()
            .flatten()
        {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_tables_parse_with_defaults() {
        let n: NetworkSpec = toml::from_str(
            "boot_file = \"pxelinux.0\"\ndnsmasq = [\"--dhcp-option=209,x\"]\n[files]\n\"pxelinux.cfg/default\" = \"DEFAULT a\"\n",
        )
        .unwrap();
        assert_eq!(n.nic, "virtio-net-pci");
        let a = n.dnsmasq_args(Path::new("/t"), Path::new("/l"));
        assert!(a.contains(&"--dhcp-range=10.0.2.50,10.0.2.99,255.255.255.0,1h".to_string()));
        assert!(a.contains(&"--dhcp-boot=pxelinux.0".to_string()));
        assert!(a.contains(&"--dhcp-option=209,x".to_string()));
        assert!(a.contains(&"--tftp-root=/t".to_string()));
        assert_eq!(
            n.qemu_args().unwrap()[3],
            "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56"
        );
        let dead: NetworkSpec = toml::from_str("dhcp = false\nboot_file = \"x\"\n").unwrap();
        let a = dead.dnsmasq_args(Path::new("/t"), Path::new("/l"));
        assert!(!a.iter().any(|x| x.starts_with("--dhcp")), "{a:?}");
        let bad: NetworkSpec = toml::from_str("nic = \"rtl8139\"\n").unwrap();
        assert!(bad.qemu_args().is_err());
    }
}
