//! md RAID arrays made by the real `mdadm`. This machine's kernel has no md driver and
//! `mdadm --create` needs one, so it runs in a helper VM: the cloud test kernel (md-mod and
//! raid1 are modules there), an initramfs of static busybox, Debian's `mdadm` with the shared
//! libraries `ldd` names, and the member image files as virtio disks (found by their serial
//! numbers). Per array: `mdadm --create --assume-clean` on the members (`missing` for absent
//! ones), the content image written through `/dev/mdN` by `dd` (md itself writes every
//! member), `mdadm --stop` (the superblocks are marked
//! clean), then `mdadm --examine` of each member. The transcript is returned: fixtures keep it beside them.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::initramfs::Archive;

/// One array to create.
pub struct Array {
    /// `0.90`, `1.0`, `1.1` or `1.2`.
    pub metadata: String,
    /// RAID level (1 for mirrors; others for the tests of what is skipped).
    pub level: u32,
    /// `--name` (1.x only).
    pub name: String,
    /// Member image files, one per raid device; `None` is a missing member.
    pub members: Vec<Option<PathBuf>>,
    /// A filesystem image written onto the array (it must fit the array's size).
    pub content: Option<PathBuf>,
}

/// The modules the helper VM loads, in dependency order.
const MODULES: &[&str] = &[
    "kernel/drivers/virtio/virtio_ring.ko",
    "kernel/drivers/virtio/virtio.ko",
    "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
    "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
    "kernel/drivers/virtio/virtio_pci.ko",
    "kernel/drivers/block/virtio_blk.ko",
    "kernel/drivers/md/md-mod.ko",
    "kernel/drivers/md/raid0.ko",
    "kernel/drivers/md/raid1.ko",
];

/// Adds `program` and the shared libraries `ldd` lists for it to `a`, at their host paths.
fn add_program(a: &mut Archive, program: &Path) -> anyhow::Result<()> {
    a.file(
        program
            .to_str()
            .context("program path")?
            .trim_start_matches('/'),
        std::fs::read(program)?,
        0o755,
    );
    let out = Command::new("ldd").arg(program).output().context("ldd")?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let lib = match line.split_once("=>") {
            Some((_, r)) => r.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|l| l.starts_with('/')),
        };
        if let Some(lib) = lib.filter(|l| l.starts_with('/')) {
            let real = std::fs::canonicalize(lib)?;
            a.file(lib.trim_start_matches('/'), std::fs::read(real)?, 0o755);
        }
    }
    Ok(())
}

/// Creates `arrays` in one helper VM run; returns the VM's transcript (mdadm's output).
pub fn create(
    kernel: &Path,
    modules: &Path,
    arrays: &[Array],
    work: &Path,
) -> anyhow::Result<String> {
    let busybox = crate::prereq::find("busybox").context("busybox (busybox-static)")?;
    let mdadm = crate::prereq::find("mdadm").context("mdadm")?;
    let mut a = Archive::default();
    a.file("bin/busybox", std::fs::read(&busybox)?, 0o755);
    add_program(&mut a, &mdadm)?;
    for m in MODULES {
        a.file(
            &format!("m/{}", m.rsplit('/').next().unwrap_or(m)),
            std::fs::read(modules.join(m))?,
            0o644,
        );
    }
    let mut script = String::from(
        "#!/bin/busybox sh\n/bin/busybox mkdir -p /proc /sys /dev /run /tmp /etc/mdadm /sbin /usr/sbin\n\
         /bin/busybox --install -s /bin\nexport PATH=/bin:/sbin:/usr/sbin\n\
         mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev\n",
    );
    for m in MODULES {
        script.push_str(&format!(
            "insmod /m/{}\n",
            m.rsplit('/').next().unwrap_or(m)
        ));
    }
    script.push_str(
        "i=0; while [ $i -lt 50 ] && [ ! -e /sys/block/vda ]; do sleep 0.1; i=$((i+1)); done; sleep 1\n\
         mkdir -p /dev/s; for d in /sys/block/vd*; do ln -s /dev/${d##*/} /dev/s/$(cat $d/serial); done\n\
         ls -l /dev/s\nfail() { echo LEAPBOOT-MDVM-FAIL \"$@\"; poweroff -f; }\n",
    );
    let mut drives = Vec::new();
    for (n, arr) in arrays.iter().enumerate() {
        let mut devs = Vec::new();
        for (k, m) in arr.members.iter().enumerate() {
            match m {
                Some(p) => {
                    let serial = format!("a{n}m{k}");
                    drives.push((p.clone(), serial.clone(), false));
                    devs.push(format!("/dev/s/{serial}"));
                }
                None => devs.push("missing".into()),
            }
        }
        let name = if arr.metadata == "0.90" {
            String::new()
        } else {
            format!("--name={} --homehost=leapboot", arr.name)
        };
        script.push_str(&format!(
            "echo '### array {n}: metadata {meta} level {level}'\n\
             echo y | mdadm --create /dev/md{n} --run --assume-clean --level={level} --raid-devices={count} --metadata={meta} {name} {devs} || fail create {n}\n",
            meta = arr.metadata,
            level = arr.level,
            count = arr.members.len(),
            devs = devs.join(" "),
        ));
        if let Some(c) = &arr.content {
            let serial = format!("a{n}fs");
            drives.push((c.clone(), serial.clone(), true));
            script.push_str(&format!(
                "dd if=/dev/s/{serial} of=/dev/md{n} bs=1M conv=fsync 2>&1 || fail dd {n}\n"
            ));
        }
        script.push_str(&format!("mdadm --detail /dev/md{n}\n"));
        script.push_str(&format!("mdadm --stop /dev/md{n} || fail stop {n}\n"));
        for d in devs.iter().filter(|d| *d != "missing") {
            script.push_str(&format!(
                "echo '### mdadm --examine {d}'; mdadm --examine {d}\n"
            ));
        }
    }
    script.push_str("sync\necho LEAPBOOT-MDVM-DONE\npoweroff -f\n");
    a.file("init", script.into_bytes(), 0o755);
    std::fs::create_dir_all(work)?;
    let initrd = work.join("mdvm-initrd.cpio.gz");
    std::fs::write(&initrd, a.to_gzip()?)?;
    let mut c = Command::new("qemu-system-x86_64");
    c.args([
        "-machine",
        "q35",
        "-m",
        "512",
        "-smp",
        "1",
        "-nodefaults",
        "-no-reboot",
    ])
    .args([
        "-display", "none", "-accel", "tcg", "-serial", "stdio", "-monitor", "none",
    ])
    .arg("-kernel")
    .arg(kernel)
    .arg("-initrd")
    .arg(&initrd)
    .args(["-append", "console=ttyS0 panic=-1 quiet"]);
    for (i, (path, serial, ro)) in drives.iter().enumerate() {
        c.arg("-drive").arg(format!(
            "file={},format=raw,if=none,id=d{i}{}",
            path.display(),
            if *ro { ",readonly=on" } else { "" }
        ));
        c.arg("-device")
            .arg(format!("virtio-blk-pci,drive=d{i},serial={serial}"));
    }
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting qemu-system-x86_64 for mdadm")?;
    let stdout = child.stdout.take().context("qemu stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut transcript = String::new();
    let mut done = false;
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(line) => {
                let line = line.trim_end_matches('\r').to_string();
                done |= line.contains("LEAPBOOT-MDVM-DONE");
                let failed = line.contains("LEAPBOOT-MDVM-FAIL");
                transcript.push_str(&line);
                transcript.push('\n');
                if failed {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if child.try_wait()?.is_some() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    std::fs::write(work.join("mdvm.log"), &transcript)?;
    if !done {
        bail!(
            "the mdadm helper VM did not finish (transcript in {}): {}{}",
            work.join("mdvm.log").display(),
            transcript
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n"),
            err.trim()
        );
    }
    Ok(transcript)
}

/// `cargo xtask md-fixtures`: one two-member RAID1 of each metadata version (and a RAID0 for
/// the test that other levels are skipped), each holding a small ext4 made by `mkfs.ext4 -d`;
/// writes the members' non-zero blocks to `src/md/testdata/<name>-m<k>.sparse` and mdadm's
/// output to `src/md/testdata/mdadm.txt`.
pub fn fixtures() -> anyhow::Result<()> {
    crate::prereq::ensure(&crate::prereq::Need::md())?;
    let kernel = crate::kernel::get()?;
    let work = crate::paths::target().join("md-fixtures");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let stage = work.join("stage");
    std::fs::create_dir_all(stage.join("loader/entries"))?;
    std::fs::write(
        stage.join("loader/entries/raid.conf"),
        "title On RAID1\nlinux /vmlinuz\noptions console=ttyS0 root=/dev/md0\n",
    )?;
    std::fs::write(stage.join("vmlinuz"), "RAID1-KERNEL")?;
    let fs = work.join("content.ext4");
    std::fs::File::create(&fs)?.set_len(1 << 20)?;
    let mkfs = crate::prereq::find("mkfs.ext4").context("mkfs.ext4")?;
    let ok = Command::new(&mkfs)
        .args([
            "-q",
            "-F",
            "-L",
            "raidboot",
            "-U",
            "5a1d0000-0000-4000-8000-000000000001",
        ])
        .args(["-d"])
        .arg(&stage)
        .arg(&fs)
        .status()?
        .success();
    if !ok {
        bail!("mkfs.ext4 failed");
    }
    let sets = [
        ("v0.90", "0.90", 1u32),
        ("v1.0", "1.0", 1),
        ("v1.1", "1.1", 1),
        ("v1.2", "1.2", 1),
        ("raid0", "1.2", 0),
    ];
    let mut arrays = Vec::new();
    for (name, meta, level) in sets {
        let mut members = Vec::new();
        for k in 0..2 {
            let p = work.join(format!("{name}-m{k}.img"));
            std::fs::File::create(&p)?.set_len(4 << 20)?;
            members.push(Some(p));
        }
        arrays.push(Array {
            metadata: meta.into(),
            level,
            name: "boot".into(),
            members,
            content: (level == 1).then(|| fs.clone()),
        });
    }
    let modules = kernel
        .modules
        .as_ref()
        .context("the test kernel has no modules directory (md-mod, raid1)")?;
    let transcript = create(&kernel.image, modules, &arrays, &work)?;
    let dir = crate::paths::root().join("src/md/testdata");
    std::fs::create_dir_all(&dir)?;
    for (name, ..) in sets {
        for k in 0..2 {
            let bytes = std::fs::read(work.join(format!("{name}-m{k}.img")))?;
            std::fs::write(dir.join(format!("{name}-m{k}.sparse")), sparse(&bytes))?;
        }
    }
    let kept: String = transcript
        .lines()
        .skip_while(|l| !l.starts_with("### array"))
        .take_while(|l| !l.contains("LEAPBOOT-MDVM-DONE"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join("mdadm.txt"), kept)?;
    println!("xtask: md fixtures written to {}", dir.display());
    Ok(())
}

/// The sparse hex fixture format of `src/testutil.rs` (`size N`, then `OFFSET HEX` per
/// non-zero 512-byte block), for whole member images.
fn sparse(bytes: &[u8]) -> String {
    let mut s = format!("size {}\n", bytes.len());
    for (i, block) in bytes.chunks(512).enumerate() {
        if block.iter().any(|&b| b != 0) {
            s.push_str(&format!("{} ", i * 512));
            for b in block {
                s.push_str(&format!("{b:02x}"));
            }
            s.push('\n');
        }
    }
    s
}
