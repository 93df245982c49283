//! leapboot's DHCPv4 and DHCPv6 clients against the real dnsmasq, on a veth pair between two
//! network namespaces this test creates and removes (also when it fails: `Drop`).
//!
//! Needs root, `ip` (iproute2) and `dnsmasq` (Debian's `dnsmasq-base`, which `cargo xtask
//! test` installs); without them the test says why and passes without running. No traffic
//! leaves the namespaces.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Lab {
    server_ns: String,
    client_ns: String,
    dnsmasq: Option<Child>,
    dir: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut d) = self.dnsmasq.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        for ns in [&self.server_ns, &self.client_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("running ip");
    assert!(st.success(), "ip {} failed", args.join(" "));
}

fn find(prog: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.is_file())
}

fn usable() -> Option<PathBuf> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("net_dnsmasq: SKIPPED: needs root (network namespaces, DHCP ports)");
        return None;
    }
    if find("ip").is_none() {
        eprintln!("net_dnsmasq: SKIPPED: no `ip` (install iproute2)");
        return None;
    }
    let d = find("dnsmasq");
    if d.is_none() {
        eprintln!("net_dnsmasq: SKIPPED: no dnsmasq (apt-get install dnsmasq-base)");
    }
    d
}

/// Two namespaces joined by veth-s (10.77.0.1/24, fd77::1/64, in the server's) and veth-c
/// (in the client's), dnsmasq on veth-s with `extra` options, or none when `extra` is None.
fn lab(tag: &str, extra: Option<&[&str]>) -> Lab {
    let dnsmasq = usable().expect("checked by the caller");
    let id = format!("{}{tag}", std::process::id());
    let dir = std::env::temp_dir().join(format!("leapboot-net-{id}"));
    let _ = std::fs::create_dir_all(&dir);
    let mut lab = Lab {
        server_ns: format!("lbs{id}"),
        client_ns: format!("lbc{id}"),
        dnsmasq: None,
        dir,
    };
    let (s, c) = (lab.server_ns.clone(), lab.client_ns.clone());
    ip(&["netns", "add", &s]);
    ip(&["netns", "add", &c]);
    ip(&[
        "-n", &s, "link", "add", "veth-s", "type", "veth", "peer", "name", "veth-c",
    ]);
    ip(&["-n", &s, "link", "set", "veth-c", "netns", &c]);
    ip(&["-n", &s, "addr", "add", "10.77.0.1/24", "dev", "veth-s"]);
    ip(&[
        "-n",
        &s,
        "addr",
        "add",
        "fd77::1/64",
        "dev",
        "veth-s",
        "nodad",
    ]);
    ip(&["-n", &s, "link", "set", "veth-s", "up"]);
    ip(&["-n", &c, "link", "set", "lo", "up"]);
    if let Some(extra) = extra {
        let log = std::fs::File::create(lab.dir.join("dnsmasq.log")).expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &s])
            .arg(&dnsmasq)
            .args([
                "--no-daemon",
                // No pid file: parallel dnsmasqs race on /run/dnsmasq.pid (O_EXCL).
                "--pid-file",
                "--conf-file=/dev/null",
                "--leasefile-ro",
                "--interface=veth-s",
                "--bind-interfaces",
                "--log-dhcp",
                "--dhcp-range=10.77.0.50,10.77.0.99,255.255.255.0,1h",
                "--dhcp-range=fd77::50,fd77::99,64,1h",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting dnsmasq");
        lab.dnsmasq = Some(child);
        // dnsmasq binds within milliseconds; the clients retransmit anyway.
        std::thread::sleep(Duration::from_millis(300));
    }
    lab
}

/// Runs `leapboot net-lease` in the client namespace; returns its leases, the time taken
/// and its stderr.
fn net_lease(lab: &Lab, args: &[&str]) -> (Vec<Value>, Duration, String) {
    let t = Instant::now();
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.client_ns,
            env!("CARGO_BIN_EXE_leapboot"),
        ])
        .args(["net-lease", "--iface", "veth-c"])
        .args(args)
        .output()
        .expect("running leapboot net-lease");
    let took = t.elapsed();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let leases: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("net-lease printed no JSON ({e}); stderr:\n{err}"));
    (leases, took, err)
}

#[test]
fn dhcp4_and_dhcp6_leases_from_dnsmasq() {
    if usable().is_none() {
        return;
    }
    let lab = lab(
        "a",
        Some(&[
            // Only a client that sends option 93 = 7 gets this file, only a PXEClient
            // vendor class gets 209/210: the server really read our PXE options.
            "--port=0",
            "--dhcp-match=set:efi64,option:client-arch,7",
            "--dhcp-vendorclass=set:pxe,PXEClient",
            "--dhcp-boot=tag:efi64,boot/grubx64.efi,,10.77.0.9",
            "--dhcp-option=tag:pxe,209,pxelinux.cfg/test",
            "--dhcp-option=tag:pxe,210,/srv/tftp/",
            "--dhcp-option=6,10.77.0.1",
            "--domain=lab.test",
            "--dhcp-option=option6:bootfile-url,http://[fd77::1]/boot.ipxe",
            "--dhcp-option=option6:dns-server,[fd77::1]",
        ]),
    );
    let (v4, took, err) = net_lease(&lab, &["--apply", "--timeout", "20"]);
    assert_eq!(v4.len(), 1, "one DHCPv4 lease; stderr:\n{err}");
    let l = &v4[0];
    eprintln!("DHCPv4 lease from dnsmasq in {:.3} s", took.as_secs_f64());
    assert_eq!(l["source"], "dhcp4");
    assert_eq!(l["iface"], "veth-c");
    let addr = l["addr"].as_str().unwrap_or_default();
    assert!(addr.starts_with("10.77.0."), "address {addr}");
    assert_eq!(l["prefix"], 24);
    assert_eq!(l["router"], "10.77.0.1");
    assert_eq!(l["dns"], serde_json::json!(["10.77.0.1"]));
    assert_eq!(l["domain"], "lab.test");
    assert_eq!(l["server"], "10.77.0.1");
    assert_eq!(l["next_server"], "10.77.0.9", "siaddr from --dhcp-boot");
    assert_eq!(
        l["boot_file"], "boot/grubx64.efi",
        "chosen by our option 93"
    );
    assert_eq!(
        l["pxe_config_file"], "pxelinux.cfg/test",
        "209, given for our option 60"
    );
    assert_eq!(l["path_prefix"], "/srv/tftp/");
    // --apply configured the interface: the address and the default route are there.
    let show = |what: &[&str]| {
        let o = Command::new("ip")
            .args(["-n", &lab.client_ns])
            .args(what)
            .output()
            .expect("ip");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(show(&["-4", "addr", "show", "veth-c"]).contains(&format!("{addr}/24")));
    assert!(show(&["-4", "route"]).contains("default via 10.77.0.1 dev veth-c"));

    let (v6, took, err) = net_lease(&lab, &["--ip", "dhcp6", "--timeout", "20"]);
    assert_eq!(v6.len(), 1, "one DHCPv6 lease; stderr:\n{err}");
    let l = &v6[0];
    eprintln!("DHCPv6 lease from dnsmasq in {:.3} s", took.as_secs_f64());
    assert_eq!(l["source"], "dhcp6");
    assert!(
        l["addr"].as_str().unwrap_or_default().starts_with("fd77::"),
        "{l}"
    );
    assert_eq!(l["prefix"], 128);
    assert_eq!(l["dns"], serde_json::json!(["fd77::1"]));
    assert_eq!(l["boot_file_url"], "http://[fd77::1]/boot.ipxe");
    assert!(l["server"]
        .as_str()
        .unwrap_or_default()
        .starts_with("fe80::"));
}

#[test]
fn no_server_ends_within_the_bound() {
    if usable().is_none() {
        return;
    }
    let lab = lab("b", None);
    let (leases, took, err) = net_lease(&lab, &["--ip", "dhcp", "--timeout", "3"]);
    assert!(leases.is_empty());
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert!(err.contains("no DHCPv4 lease after"), "{err}");
    let (leases, took, err) = net_lease(&lab, &["--ip", "dhcp6", "--timeout", "3"]);
    assert!(leases.is_empty());
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert!(err.contains("no DHCPv6 reply after"), "{err}");
}

#[test]
fn dns_stub_resolves_through_dnsmasq() {
    if usable().is_none() {
        return;
    }
    let lab = lab(
        "c",
        Some(&[
            "--no-resolv",
            "--host-record=boot.lab.test,10.77.0.5",
            "--host-record=v6only.lab.test,fd77::5",
            "--cname=alias.lab.test,boot.lab.test",
        ]),
    );
    ip(&[
        "-n",
        &lab.client_ns,
        "addr",
        "add",
        "10.77.0.2/24",
        "dev",
        "veth-c",
    ]);
    ip(&["-n", &lab.client_ns, "link", "set", "veth-c", "up"]);
    // The resolver runs in this process, on a thread moved into the client namespace.
    let ns = std::fs::File::open(format!("/run/netns/{}", lab.client_ns)).expect("netns file");
    let results = std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        // SAFETY: setns on this thread only, with a namespace fd we hold open.
        assert_eq!(
            unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
        let servers = ["10.77.0.1".parse().unwrap()];
        let by = || Instant::now() + Duration::from_secs(10);
        let r = leapboot::net::dns::resolve;
        (
            r("boot.lab.test", &servers, None, by()),
            r("alias", &servers, Some("lab.test"), by()),
            r("v6only.lab.test", &servers, None, by()),
            r("missing.lab.test", &servers, None, by()),
        )
    })
    .join()
    .expect("resolver thread");
    let ip = |s: &str| vec![s.parse::<std::net::IpAddr>().unwrap()];
    assert_eq!(results.0, Ok(ip("10.77.0.5")));
    assert_eq!(
        results.1,
        Ok(ip("10.77.0.5")),
        "CNAME followed, domain appended"
    );
    assert_eq!(results.2, Ok(ip("fd77::5")), "AAAA after an empty A answer");
    let e = results.3.unwrap_err();
    assert!(e.contains("missing.lab.test"), "{e}");
}
