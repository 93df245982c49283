//! `cargo xtask test-net` (also run by `cargo xtask test`): `leapboot list --url` and
//! `leapboot fetch` against real servers in a network namespace of their own, as root.
//!
//! The namespace (`leapboot-net-<pid>`, loopback only: no traffic leaves it) holds dnsmasq
//! (`--port=0 --enable-tftp`: TFTP only) serving a TFTP root made of Debian's netboot
//! configs (`src/net/testdata/debian-12-netboot`), `python3 -m http.server` over the same
//! root, an HTTPS server (Python's `ssl`) with a CA and server certificate made by `openssl`
//! for this run, a TFTP server that stops after 20 blocks and an HTTP server that trickles
//! a byte a second; and a second dnsmasq on a veth (10.9.9.1) serving the real TFTP tree of
//! Debian's `debian-installer-12-netboot-amd64` package (`crate::netboot`, the same tree the
//! `net-debian-installer-*` scenarios boot). Checks: the pxelinux and GRUB menus over TFTP
//! (from the fixtures and from the package), an iPXE script over HTTP
//! chaining to a second one, a bare kernel URL, HTTPS with the right CA, a wrong CA and none,
//! the cut-off and trickle cases ending within their bounds, and TFTP and HTTP throughput
//! for a 30 MiB file (checked byte for byte). Everything is removed afterwards, also when a
//! check fails (`Drop`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sha2::Digest;

use crate::{paths, prereq};

const HTTP: u16 = 8080;
const HTTPS: u16 = 8443;
const TRICKLE: u16 = 8081;
const TFTP_CUT: u16 = 6969;

const HTTPS_PY: &str = r#"
import functools, http.server, ssl, sys
port, root, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), h)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"#;

const TRICKLE_PY: &str = r#"
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
while True:
    c, _ = s.accept()
    try:
        c.recv(4096)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
        while True:
            c.sendall(b"x")
            time.sleep(1)
    except OSError:
        pass
    c.close()
"#;

/// Answers a read request with 20 plain 512-byte blocks, then falls silent.
const TFTP_CUT_PY: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    data, peer = s.recvfrom(2048)
    if data[:2] != b"\x00\x01":
        continue
    t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t.bind(("127.0.0.1", 0))
    t.settimeout(2)
    for block in range(1, 21):
        t.sendto(struct.pack("!HH", 3, block) + b"y" * 512, peer)
        try:
            t.recvfrom(2048)
        except socket.timeout:
            break
"#;

/// The namespace, its servers and the work directory; all gone on drop.
struct Lab {
    ns: String,
    /// A second namespace for a client that must not share the server's addresses.
    client_ns: String,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.ns, &self.client_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Lab {
    fn exec(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns]).args(args);
        c
    }

    fn spawn(&mut self, what: &str, args: &[&str]) -> anyhow::Result<()> {
        let log = std::fs::File::create(self.dir.join(format!("{what}.log")))?;
        let child = self
            .exec(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        self.children.push(child);
        Ok(())
    }

    /// Waits until something accepts TCP connections on `port` (10 s at most).
    fn wait_tcp(&self, port: u16) -> anyhow::Result<()> {
        let probe = format!(
            "import socket,sys\ntry:\n socket.create_connection(('127.0.0.1',{port}),1)\nexcept OSError:\n sys.exit(1)"
        );
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if self.exec(&["python3", "-c", &probe]).status()?.success() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "nothing listens on port {port} after 10 s; see {}",
            self.dir.display()
        )
    }
}

fn run_ok(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let o = cmd.output().with_context(|| what.to_string())?;
    if !o.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&o.stderr));
    }
    Ok(())
}

fn sha256(p: &Path) -> anyhow::Result<String> {
    let b = std::fs::read(p)?;
    Ok(hex(&b))
}

/// Deterministic bytes (xorshift), so a transfer error cannot hide in a pattern.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A file that starts like a bzImage (`HdrS` at 0x202) and is 2 MiB long.
fn fake_kernel() -> Vec<u8> {
    let mut k = noise(2 << 20);
    k[0x202..0x206].copy_from_slice(b"HdrS");
    k
}

/// One check's outcome.
struct Check {
    name: &'static str,
    result: anyhow::Result<String>,
}

pub fn run() -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("xtask: test-net needs root (network namespaces); skipped");
        return Ok(());
    }
    prereq::ensure(&prereq::Need::net())?;
    println!("xtask: building the host CLI with HTTPS: cargo build --release -p leapboot --features https");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run_ok(
        Command::new(cargo).current_dir(paths::root()).args([
            "build",
            "--release",
            "-p",
            "leapboot",
            "--features",
            "https",
        ]),
        "building leapboot",
    )?;
    let cli = paths::target().join("release/leapboot");
    // The static CLI, built as /init is: no TLS of its own, the leapboot-tls helper beside it.
    let musl = crate::build::all()?;
    let pid = std::process::id();
    let dir = paths::target().join(format!("test-net-{pid}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let ns = format!("leapboot-net-{pid}");
    run_ok(
        Command::new("ip").args(["netns", "add", &ns]),
        "ip netns add",
    )?;
    let client_ns = format!("{ns}-client");
    run_ok(
        Command::new("ip").args(["netns", "add", &client_ns]),
        "ip netns add",
    )?;
    let mut lab = Lab {
        ns,
        client_ns,
        dir: dir.clone(),
        children: Vec::new(),
    };
    run_ok(
        &mut lab.exec(&["ip", "link", "set", "lo", "up"]),
        "ip link set lo up",
    )?;

    // The server root: Debian's netboot configs, a fake kernel and initrd, iPXE scripts,
    // a 30 MiB file.
    let root = dir.join("root");
    copy_tree(
        &paths::root().join("src/net/testdata/debian-12-netboot"),
        &root,
    )?;
    let kernel = fake_kernel();
    std::fs::write(root.join("debian-installer/amd64/linux"), &kernel)?;
    std::fs::write(root.join("debian-installer/amd64/initrd.gz"), noise(4096))?;
    std::fs::write(
        root.join("boot.ipxe"),
        "#!ipxe\ndhcp\nset base http://127.0.0.1:8080\nchain ${base}/menus/second.ipxe || goto failed\n\
         :failed\necho chain failed\n",
    )?;
    std::fs::create_dir_all(root.join("menus"))?;
    std::fs::write(
        root.join("menus/second.ipxe"),
        "#!ipxe\nkernel ../debian-installer/amd64/linux console=ttyS0 from=second\n\
         initrd ../debian-installer/amd64/initrd.gz\nboot\n",
    )?;
    let big = noise(30 << 20);
    std::fs::write(root.join("big"), &big)?;
    crate::certs::make(&dir, "IP:127.0.0.1,DNS:localhost")?;
    for (name, body) in [
        ("https.py", HTTPS_PY),
        ("trickle.py", TRICKLE_PY),
        ("tftpcut.py", TFTP_CUT_PY),
    ] {
        std::fs::write(dir.join(name), body)?;
    }
    let d = |p: &str| dir.join(p).display().to_string();
    let root_s = root.display().to_string();
    lab.spawn(
        "dnsmasq",
        &[
            "dnsmasq",
            "--no-daemon",
            // No pid file: parallel dnsmasqs race on /run/dnsmasq.pid (O_EXCL).
            "--pid-file",
            "--port=0",
            "--interface=lo",
            "--bind-interfaces",
            "--enable-tftp",
            &format!("--tftp-root={root_s}"),
            "--user=root",
            "--log-facility=-",
            "--conf-file=/dev/null",
        ],
    )?;
    lab.spawn(
        "http",
        &[
            "python3",
            "-m",
            "http.server",
            &HTTP.to_string(),
            "--bind",
            "127.0.0.1",
            "--directory",
            &root_s,
        ],
    )?;
    lab.spawn(
        "https",
        &[
            "python3",
            &d("https.py"),
            &HTTPS.to_string(),
            &root_s,
            &d("server.pem"),
            &d("server.key"),
        ],
    )?;
    lab.spawn(
        "trickle",
        &["python3", &d("trickle.py"), &TRICKLE.to_string()],
    )?;
    lab.spawn(
        "tftpcut",
        &["python3", &d("tftpcut.py"), &TFTP_CUT.to_string()],
    )?;
    // For `list --net`: a veth pair to a client namespace, as an operator's box on the boot
    // network (lbc0 has an address of its own: leapboot leases without configuring it, and
    // fetches through the box's routing). DHCP and TFTP from a second dnsmasq on lbs0.
    for cmd in [
        &[
            "ip", "link", "add", "lbs0", "type", "veth", "peer", "name", "lbc0",
        ][..],
        &["ip", "link", "set", "lbc0", "netns", &lab.client_ns],
        &["ip", "addr", "add", "10.0.3.1/24", "dev", "lbs0"],
        &["ip", "link", "set", "lbs0", "up"],
    ] {
        run_ok(&mut lab.exec(cmd), &cmd.join(" "))?;
    }
    for cmd in [
        &["ip", "addr", "add", "10.0.3.50/24", "dev", "lbc0"][..],
        &["ip", "link", "set", "lbc0", "up"],
    ] {
        run_ok(
            Command::new("ip")
                .args(["netns", "exec", &lab.client_ns])
                .args(cmd),
            &cmd.join(" "),
        )?;
    }
    lab.spawn(
        "dnsmasq-dhcp",
        &[
            "dnsmasq",
            "--no-daemon",
            // No pid file: parallel dnsmasqs race on /run/dnsmasq.pid (O_EXCL).
            "--pid-file",
            "--port=0",
            "--interface=lbs0",
            // dnsmasq adds `lo` to any --interface list: keep it off the first server's.
            "--except-interface=lo",
            "--bind-interfaces",
            "--dhcp-range=10.0.3.100,10.0.3.150,255.255.255.0,1h",
            "--dhcp-boot=pxelinux.0",
            "--enable-tftp",
            &format!("--tftp-root={root_s}"),
            "--user=root",
            "--log-facility=-",
            "--log-dhcp",
            "--conf-file=/dev/null",
            &format!("--dhcp-leasefile={}", d("dhcp.leases")),
        ],
    )?;
    for p in [HTTP, HTTPS, TRICKLE] {
        lab.wait_tcp(p)?;
    }
    // Each dnsmasq's TFTP is up once its log says so.
    wait_dnsmasq(&dir.join("dnsmasq.log"), "dnsmasq")?;
    wait_dnsmasq(&dir.join("dnsmasq-dhcp.log"), "the DHCP server's dnsmasq")?;

    // The real netboot tree of Debian's package on a second TFTP server (10.9.9.1 on a veth
    // of its own), kernel and initrd replaced: what an operator's PXE server holds.
    let pkg_ready = serve_package_tree(&mut lab, &dir, &kernel);

    let cli_s = cli.display().to_string();
    let musl_cli_s = musl.cli.display().to_string();
    let run_cli = |cli: &str, args: &[&str]| -> anyhow::Result<(Output, Duration)> {
        let mut a = vec![cli];
        a.extend_from_slice(args);
        let t = Instant::now();
        let o = lab.exec(&a).output()?;
        Ok((o, t.elapsed()))
    };
    let leapboot = |args: &[&str]| run_cli(&cli_s, args);
    let helper_cli = |args: &[&str]| run_cli(&musl_cli_s, args);
    let list = |url: &str, extra: &[&str]| -> anyhow::Result<serde_json::Value> {
        let mut a = vec!["list", "--url", url, "--json"];
        a.extend_from_slice(extra);
        let (o, _) = leapboot(&a)?;
        if !o.status.success() {
            bail!(
                "leapboot list --url {url} failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Ok(serde_json::from_slice(&o.stdout)?)
    };
    let entries = |v: &serde_json::Value| -> Vec<(String, String, String)> {
        v["entries"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
                        (s("title"), s("kernel_url"), s("cmdline"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut checks = Vec::new();
    let mut check = |name: &'static str, result: anyhow::Result<String>| {
        println!(
            "{} {name}: {}",
            if result.is_ok() { "PASS" } else { "FAIL" },
            match &result {
                Ok(m) => m.clone(),
                Err(e) => format!("{e:#}"),
            }
        );
        checks.push(Check { name, result });
    };

    check(
        "host-load-dry-run-url",
        (|| {
            let url = format!("http://127.0.0.1:{HTTP}/boot.ipxe");
            let (o, _) = leapboot(&["load", "--dry-run", "--url", &url])?;
            let out = String::from_utf8_lossy(&o.stdout);
            if !o.status.success() {
                bail!("{}", last_error(&String::from_utf8_lossy(&o.stderr)));
            }
            let kernel = format!(
                "kernel  http://127.0.0.1:{HTTP}/debian-installer/amd64/linux ({} bytes",
                fake_kernel().len()
            );
            for want in [
                kernel.as_str(),
                "cmdline console=ttyS0 from=second",
                "nothing was loaded",
            ] {
                if !out.contains(want) {
                    bail!("no '{want}' in:\n{out}");
                }
            }
            Ok("the chained iPXE script's kernel, its size from HEAD, nothing loaded".into())
        })(),
    );
    check(
        "host-list-net-dhcp",
        (|| {
            let t = Instant::now();
            let o = Command::new("ip")
                .args(["netns", "exec", &lab.client_ns, &cli_s])
                .args([
                    "list",
                    "--net",
                    "--iface",
                    "lbc0",
                    "--net-timeout",
                    "20",
                    "--json",
                ])
                .output()?;
            let took = t.elapsed();
            if !o.status.success() {
                bail!("{}", last_error(&String::from_utf8_lossy(&o.stderr)));
            }
            let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
            let e = entries(&v);
            let first = e.first().context("no entries")?;
            if first.0 != "Install" || first.1 != "tftp://10.0.3.1/debian-installer/amd64/linux" {
                bail!("first entry {first:?}");
            }
            Ok(format!(
                "DHCP on lbc0 -> pxelinux search on 10.0.3.1: {} entries in {:.2} s",
                e.len(),
                took.as_secs_f64()
            ))
        })(),
    );
    let kernel_url = "tftp://127.0.0.1/debian-installer/amd64/linux";
    check(
        "tftp-pxelinux-debian",
        (|| {
            let v = list("tftp://127.0.0.1/pxelinux.cfg/default", &[])?;
            let e = entries(&v);
            let titles: Vec<&str> = e.iter().map(|x| x.0.as_str()).collect();
            for want in [
                "Install",
                "Advanced options > Expert install",
                "Advanced options > Rescue mode",
                "Accessible dark contrast installer menu > Install",
            ] {
                if !titles.contains(&want) {
                    bail!("no entry '{want}' in {titles:?}");
                }
            }
            if e[0].1 != kernel_url
                || e[0].2 != "vga=788 initrd=debian-installer/amd64/initrd.gz --- quiet"
            {
                bail!("first entry {:?}", e[0]);
            }
            if v["default"] != "install" {
                bail!("default {}", v["default"]);
            }
            Ok(format!("{} entries, default 'install'", e.len()))
        })(),
    );
    check(
        "tftp-grub-debian",
        (|| {
            let v = list("tftp://127.0.0.1/debian-installer/amd64/grub/grub.cfg", &[])?;
            let e = entries(&v);
            let first = e.first().context("no entries")?;
            if first.0 != "Install"
                || first.1 != kernel_url
                || first.2 != "BOOT_IMAGE=/debian-installer/amd64/linux vga=788 --- quiet"
            {
                bail!("first entry {first:?}");
            }
            if !e
                .iter()
                .any(|x| x.0 == "Advanced options ...>... Expert install")
            {
                bail!("no submenu entry in {e:?}");
            }
            Ok(format!("{} entries", e.len()))
        })(),
    );
    check(
        "http-ipxe-chain",
        (|| {
            let v = list(&format!("http://127.0.0.1:{HTTP}/boot.ipxe"), &[])?;
            let e = entries(&v);
            let want = (
                "iPXE: /debian-installer/amd64/linux".to_string(),
                format!("http://127.0.0.1:{HTTP}/debian-installer/amd64/linux"),
                "console=ttyS0 from=second".to_string(),
            );
            if e != [want.clone()] {
                bail!("entries {e:?}, want [{want:?}]");
            }
            Ok("boot.ipxe chained to menus/second.ipxe".into())
        })(),
    );
    check(
        "http-bare-kernel",
        (|| {
            let v = list(
                &format!("http://127.0.0.1:{HTTP}/debian-installer/amd64/linux"),
                &[],
            )?;
            let e = entries(&v);
            if e.len() != 1
                || e[0].1 != format!("http://127.0.0.1:{HTTP}/debian-installer/amd64/linux")
            {
                bail!("entries {e:?}");
            }
            Ok("one entry".into())
        })(),
    );
    let https_url = format!("https://127.0.0.1:{HTTPS}/pxelinux.cfg/default");
    check(
        "https-right-ca",
        (|| {
            let v = list(&https_url, &["--ca", &d("ca.pem")])?;
            let e = entries(&v);
            if e.first().map(|x| x.1.as_str())
                != Some(&format!(
                    "https://127.0.0.1:{HTTPS}/debian-installer/amd64/linux"
                ))
            {
                bail!("entries {e:?}");
            }
            Ok(format!("{} entries", e.len()))
        })(),
    );
    check(
        "https-wrong-ca",
        (|| {
            let (o, _) = leapboot(&["list", "--url", &https_url, "--ca", &d("wrong-ca.pem")])?;
            let err = String::from_utf8_lossy(&o.stderr).to_string();
            if o.status.success() || !err.contains("HTTPS refused") || !err.contains("certificate")
            {
                bail!("exit {}, stderr: {err}", o.status);
            }
            Ok(err
                .lines()
                .find(|l| l.contains("HTTPS refused"))
                .unwrap_or("")
                .trim()
                .to_string())
        })(),
    );
    check(
        "https-no-ca",
        (|| {
            let (o, _) = leapboot(&["list", "--url", &https_url])?;
            let err = String::from_utf8_lossy(&o.stderr).to_string();
            if o.status.success() || !err.contains("ca_certificates = [\"/etc/leapboot/ca.pem\"]") {
                bail!("exit {}, stderr: {err}", o.status);
            }
            Ok("refused, saying how to add a CA".into())
        })(),
    );
    check(
        "https-helper-right-ca",
        (|| {
            let (o, _) =
                helper_cli(&["list", "--url", &https_url, "--ca", &d("ca.pem"), "--json"])?;
            if !o.status.success() {
                bail!("{}", String::from_utf8_lossy(&o.stderr));
            }
            let e = entries(&serde_json::from_slice(&o.stdout)?);
            let want = list(&https_url, &["--ca", &d("ca.pem")])?;
            if e.is_empty() || e != entries(&want) {
                bail!("through the helper {e:?}, in-process {:?}", entries(&want));
            }
            Ok(format!(
                "{} entries through leapboot-tls, as in-process",
                e.len()
            ))
        })(),
    );
    check(
        "https-helper-wrong-ca",
        (|| {
            let (o, _) = helper_cli(&["list", "--url", &https_url, "--ca", &d("wrong-ca.pem")])?;
            let err = String::from_utf8_lossy(&o.stderr).to_string();
            if o.status.success()
                || !err.contains("UnknownIssuer")
                || !err.contains("ca_certificates")
            {
                bail!("exit {}, stderr: {err}", o.status);
            }
            Ok(last_error(&err))
        })(),
    );
    check(
        "tftp-cut-off",
        (|| {
            let (o, took) = leapboot(&["fetch", &format!("tftp://127.0.0.1:{TFTP_CUT}/big")])?;
            let err = String::from_utf8_lossy(&o.stderr).to_string();
            // 5 retransmissions of 1 s after the last block: about 6 s.
            if o.status.success()
                || !err.contains("stopped sending")
                || took > Duration::from_secs(12)
            {
                bail!(
                    "exit {}, {:.1} s, stderr: {err}",
                    o.status,
                    took.as_secs_f64()
                );
            }
            Ok(format!(
                "error after {:.1} s: {}",
                took.as_secs_f64(),
                last_error(&err)
            ))
        })(),
    );
    check(
        "http-trickle",
        (|| {
            let (o, took) = leapboot(&[
                "fetch",
                "--timeout",
                "5",
                &format!("http://127.0.0.1:{TRICKLE}/slow"),
            ])?;
            let err = String::from_utf8_lossy(&o.stderr).to_string();
            if o.status.success() || !err.contains("5 s bound") || took > Duration::from_secs(8) {
                bail!(
                    "exit {}, {:.1} s, stderr: {err}",
                    o.status,
                    took.as_secs_f64()
                );
            }
            Ok(format!(
                "error after {:.1} s: {}",
                took.as_secs_f64(),
                last_error(&err)
            ))
        })(),
    );
    check(
        "tftp-pxelinux-debian-package",
        (|| {
            let tree = pkg_ready.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
            let v = list(&format!("tftp://{PKG_SERVER}/pxelinux.cfg/default"), &[])?;
            let e = entries(&v);
            let titles: Vec<&str> = e.iter().map(|x| x.0.as_str()).collect();
            // What the QEMU scenario net-debian-installer-pxelinux shows.
            let want = [
                "Install",
                "Advanced options > Expert install",
                "Advanced options > Rescue mode",
                "Advanced options > Automated install",
                "Accessible dark contrast installer menu > Install",
                "Accessible dark contrast installer menu > Advanced options > Expert install",
                "Accessible dark contrast installer menu > Advanced options > Rescue mode",
                "Accessible dark contrast installer menu > Advanced options > Automated install",
            ];
            if titles != want {
                bail!("titles {titles:?}");
            }
            let k = format!("tftp://{PKG_SERVER}/debian-installer/amd64/linux");
            if e[0].1 != k || e[0].2 != "vga=788 initrd=debian-installer/amd64/initrd.gz --- quiet"
            {
                bail!("first entry {:?}", e[0]);
            }
            if v["default"] != "install" || v["timeout"] != -1 {
                bail!("default {}, timeout {}", v["default"], v["timeout"]);
            }
            Ok(format!(
                "{tree}: {} entries, default 'install', no timeout",
                e.len()
            ))
        })(),
    );
    check(
        "tftp-grub-debian-package",
        (|| {
            let tree = pkg_ready.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
            let v = list(
                &format!("tftp://{PKG_SERVER}/debian-installer/amd64/grub/grub.cfg"),
                &[],
            )?;
            let e = entries(&v);
            let titles: Vec<&str> = e.iter().take(3).map(|x| x.0.as_str()).collect();
            if e.len() != 26
                || titles
                    != [
                        "Install",
                        "Advanced options ...>... Expert install",
                        "Advanced options ...>... Rescue mode",
                    ]
            {
                bail!("{} entries, first {titles:?}", e.len());
            }
            let k = format!("tftp://{PKG_SERVER}/debian-installer/amd64/linux");
            if e[0].1 != k || e[0].2 != "BOOT_IMAGE=/debian-installer/amd64/linux vga=788 --- quiet"
            {
                bail!("first entry {:?}", e[0]);
            }
            if v["timeout"] != -1 {
                bail!("timeout {}", v["timeout"]);
            }
            Ok(format!(
                "{tree}: {} entries, first 'Install', no timeout",
                e.len()
            ))
        })(),
    );
    let want = hex(&big);
    for (name, url) in [
        ("tftp-throughput-30mib", "tftp://127.0.0.1/big".to_string()),
        (
            "http-throughput-30mib",
            format!("http://127.0.0.1:{HTTP}/big"),
        ),
        (
            "https-throughput-30mib",
            format!("https://127.0.0.1:{HTTPS}/big"),
        ),
        (
            "https-helper-throughput-30mib",
            format!("https://127.0.0.1:{HTTPS}/big"),
        ),
    ] {
        let out = dir.join(format!("{name}.out"));
        let out_s = out.display().to_string();
        let r = (|| {
            let args = ["fetch", &url, "-o", &out_s, "--ca", &d("ca.pem")];
            let (o, took) = if name.contains("helper") {
                helper_cli(&args)?
            } else {
                leapboot(&args)?
            };
            if !o.status.success() {
                bail!("{}", String::from_utf8_lossy(&o.stderr));
            }
            if sha256(&out)? != want {
                bail!("the file arrived different");
            }
            let _ = std::fs::remove_file(&out);
            Ok(format!(
                "{:.1} MiB/s (30 MiB in {:.2} s, identical)",
                30.0 / took.as_secs_f64(),
                took.as_secs_f64()
            ))
        })();
        check(name, r);
    }
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.result.is_err())
        .map(|c| c.name)
        .collect();
    drop(lab);
    if !failed.is_empty() {
        bail!(
            "{} of {} network checks failed: {}",
            failed.len(),
            checks.len(),
            failed.join(", ")
        );
    }
    println!("xtask: all {} network checks passed", checks.len());
    Ok(())
}

/// Debian's netboot package and its TFTP tree (the flavour `netboot.tar.gz` holds).
const PKG: &str = "debian-installer-12-netboot-amd64";
const PKG_TREE: &str = "usr/lib/debian-installer/images/12/amd64/text";
/// The address of the package tree's TFTP server.
const PKG_SERVER: &str = "10.9.9.1";

/// Copies the package tree to `dir/pkg` (kernel and initrd replaced), puts [`PKG_SERVER`] on
/// a veth pair and serves the tree there with a second dnsmasq. Returns the provenance.
fn serve_package_tree(lab: &mut Lab, dir: &Path, kernel: &[u8]) -> anyhow::Result<String> {
    let tree = crate::netboot::get(PKG)?;
    let pkg = dir.join("pkg");
    let (k, i) = (
        "debian-installer/amd64/linux",
        "debian-installer/amd64/initrd.gz",
    );
    crate::netboot::copy_tree(&tree.root.join(PKG_TREE), &pkg, &[k.into(), i.into()])?;
    std::fs::write(pkg.join(k), kernel)?;
    std::fs::write(pkg.join(i), noise(4096))?;
    for args in [
        &[
            "ip", "link", "add", "pkg0", "type", "veth", "peer", "name", "pkg1",
        ][..],
        &[
            "ip",
            "addr",
            "add",
            &format!("{PKG_SERVER}/24"),
            "dev",
            "pkg0",
        ],
        &["ip", "link", "set", "pkg1", "up"],
        &["ip", "link", "set", "pkg0", "up"],
    ] {
        run_ok(&mut lab.exec(args), &args.join(" "))?;
    }
    let root = pkg.display().to_string();
    lab.spawn(
        "dnsmasq-pkg",
        &[
            "dnsmasq",
            "--no-daemon",
            // No pid file: parallel dnsmasqs race on /run/dnsmasq.pid (O_EXCL).
            "--pid-file",
            "--port=0",
            "--interface=pkg0",
            // dnsmasq adds lo to any --interface list: the first server's address.
            "--except-interface=lo",
            "--bind-interfaces",
            "--enable-tftp",
            &format!("--tftp-root={root}"),
            "--user=root",
            "--log-facility=-",
            "--conf-file=/dev/null",
        ],
    )?;
    wait_dnsmasq(&dir.join("dnsmasq-pkg.log"), "the package tree's dnsmasq")?;
    Ok(format!("{} /{PKG_TREE}", tree.name))
}

/// Waits (10 s at most) until the dnsmasq logging to `log` says its TFTP server is up.
fn wait_dnsmasq(log: &Path, what: &str) -> anyhow::Result<()> {
    let t = Instant::now();
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("TFTP root")
    {
        if t.elapsed() > Duration::from_secs(10) {
            bail!("{what} did not start; see {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn hex(b: &[u8]) -> String {
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn last_error(stderr: &str) -> String {
    stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else {
            std::fs::copy(e.path(), dest)?;
        }
    }
    Ok(())
}
