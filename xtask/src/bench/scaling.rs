//! Host-side parser scaling: leapboot's discovery (`pipeline::Volumes::boot_list`, every
//! format over one volume, exactly what `/init` and `leapboot list` run after the volumes are
//! open) on generated inputs in the library's in-memory volume (`fs::mem::MemFs`), each at a
//! quarter, a half and all of its target size. Runs in-process in a release build of xtask
//! (`cargo xtask bench` starts `cargo run --release -p xtask -- bench-scaling`), so the
//! library is optimised as `/init` is; the parent fits the growth exponent. Times are the
//! thread's CPU time, so that other processes on a shared machine do not count.
//!
//! The cases: 10 000 BLS entries; a Debian-style `grub.cfg` of 5 000 lines (10_linux's
//! simple entry plus the "Advanced options" submenu, two entries per kernel); a syslinux tree
//! of 50 `INCLUDE`d files; a `/boot` with 500 kernels and their initrds (the plain scan).

use std::path::PathBuf;
use std::time::Duration;

use leapboot::fs::mem::MemFs;
use leapboot::pipeline::{Volume, Volumes};

/// One scaling case: its name, the target size and the unit of size.
pub struct Case {
    pub name: &'static str,
    pub target: usize,
    pub unit: &'static str,
    build: fn(usize) -> (MemFs, usize),
}

pub const CASES: [Case; 4] = [
    Case {
        name: "bls",
        target: 10_000,
        unit: "BLS entry files",
        build: bls,
    },
    Case {
        name: "grub",
        target: 5_000,
        unit: "grub.cfg lines",
        build: grub,
    },
    Case {
        name: "syslinux",
        target: 50,
        unit: "INCLUDEd files",
        build: syslinux,
    },
    Case {
        name: "bootdir",
        target: 500,
        unit: "kernels in /boot",
        build: bootdir,
    },
];

fn files(list: Vec<(String, String)>) -> MemFs {
    MemFs(
        list.into_iter()
            .map(|(p, c)| (leapboot::fs::normalize(&p), c.into_bytes()))
            .collect(),
    )
}

/// `n` entry files as Fedora's kernel-install writes them, and a `loader.conf`.
fn bls(n: usize) -> (MemFs, usize) {
    let mut v = vec![(
        "/loader/loader.conf".to_string(),
        "default fedora-*\ntimeout 5\n".to_string(),
    )];
    for i in 0..n {
        v.push((
            format!("/loader/entries/fedora-6.5.{i}-300.fc39.x86_64.conf"),
            format!(
                "title Fedora Linux (6.5.{i}-300.fc39.x86_64) 39 (Workstation Edition)\n\
                 version 6.5.{i}-300.fc39.x86_64\nlinux /vmlinuz-6.5.{i}-300.fc39.x86_64\n\
                 initrd /initramfs-6.5.{i}-300.fc39.x86_64.img\n\
                 options root=UUID=5b0e8d2c-7a61-4f3e-9c1d-2e4f6a8b0c13 ro rhgb quiet\n\
                 grub_users $grub_users\ngrub_arg --unrestricted\ngrub_class fedora\n"
            ),
        ));
    }
    (files(v), n)
}

const UUID: &str = "0f5c3a6e-1b2d-4c8e-9a7f-3e6d5c4b2a10";

fn grub_entry(title: &str, id: &str, k: usize, extra: &str, indent: &str) -> String {
    let body = format!(
        "menuentry '{title}' --class debian --class gnu-linux --class gnu --class os $menuentry_id_option '{id}' {{\n\
         \tload_video\n\tinsmod gzio\n\
         \tif [ x$grub_platform = xxen ]; then insmod xzio; insmod lzopio; fi\n\
         \tinsmod part_gpt\n\tinsmod ext2\n\tset root='hd0,gpt2'\n\
         \tif [ x$feature_platform_search_hint = xy ]; then\n\
         \t  search --no-floppy --fs-uuid --set=root --hint-bios=hd0,gpt2 --hint-efi=hd0,gpt2 --hint-baremetal=ahci0,gpt2  {UUID}\n\
         \telse\n\t  search --no-floppy --fs-uuid --set=root {UUID}\n\tfi\n\
         \techo\t'Loading Linux 6.1.0-{k}-amd64 ...'\n\
         \tlinux\t/boot/vmlinuz-6.1.0-{k}-amd64 root=UUID={UUID} ro {extra}\n\
         \techo\t'Loading initial ramdisk ...'\n\
         \tinitrd\t/boot/initrd.img-6.1.0-{k}-amd64\n}}\n"
    );
    body.lines().map(|l| format!("{indent}{l}\n")).collect()
}

/// A grub.cfg as grub-mkconfig writes it for a /boot with many kernels, at least `lines`
/// long: the header, the simple entry, then per kernel a normal and a recovery entry inside
/// the "Advanced options" submenu.
fn grub(lines: usize) -> (MemFs, usize) {
    let header = "set default=\"0\"\nif [ x\"${feature_menuentry_id}\" = xy ]; then\n  menuentry_id_option=\"--id\"\nelse\n  menuentry_id_option=\"\"\nfi\nexport menuentry_id_option\nfunction load_video {\n  insmod all_video\n}\nset timeout=5\n";
    let mut cfg = header.to_string();
    cfg += &grub_entry("Debian GNU/Linux", "gnulinux-simple", 1000, "quiet", "");
    cfg += "submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced' {\n";
    let mut v = Vec::new();
    let mut k = 1000;
    while cfg.lines().count() + 1 < lines {
        let title = format!("Debian GNU/Linux, with Linux 6.1.0-{k}-amd64");
        cfg += &grub_entry(&title, &format!("gnulinux-{k}-advanced"), k, "quiet", "\t");
        cfg += &grub_entry(
            &format!("{title} (recovery mode)"),
            &format!("gnulinux-{k}-recovery"),
            k,
            "single",
            "\t",
        );
        v.push((format!("/boot/vmlinuz-6.1.0-{k}-amd64"), "k".to_string()));
        v.push((format!("/boot/initrd.img-6.1.0-{k}-amd64"), "i".to_string()));
        k -= 1;
    }
    cfg += "}\n";
    let n = cfg.lines().count();
    v.push(("/boot/grub/grub.cfg".to_string(), cfg));
    (files(v), n)
}

/// `/syslinux/syslinux.cfg` including `n` files of four labels each.
fn syslinux(n: usize) -> (MemFs, usize) {
    let mut main =
        "UI menu.c32\nPROMPT 0\nTIMEOUT 50\nDEFAULT l0-0\nMENU TITLE Boot menu\n".to_string();
    let mut v = Vec::new();
    for i in 0..n {
        main += &format!("INCLUDE inc{i}.cfg\n");
        let mut inc = "MENU SEPARATOR\n".to_string();
        for j in 0..4 {
            inc += &format!(
                "LABEL l{i}-{j}\n  MENU LABEL Entry {i}.{j}\n  KERNEL /vmlinuz-{i}\n  INITRD /initrd-{i}.img\n  APPEND root=/dev/sda2 ro quiet console=ttyS0 x={j}\n"
            );
        }
        v.push((format!("/syslinux/inc{i}.cfg"), inc));
    }
    v.push(("/syslinux/syslinux.cfg".to_string(), main));
    (files(v), n)
}

/// A root filesystem whose `/boot` holds `n` kernels with their initrds (no config).
fn bootdir(n: usize) -> (MemFs, usize) {
    let mut v = vec![(
        "/etc/os-release".to_string(),
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n".to_string(),
    )];
    for i in 0..n {
        v.push((format!("/boot/vmlinuz-6.1.0-{i}-amd64"), "k".to_string()));
        v.push((format!("/boot/initrd.img-6.1.0-{i}-amd64"), "i".to_string()));
        v.push((format!("/boot/config-6.1.0-{i}-amd64"), "c".to_string()));
    }
    (files(v), n)
}

/// One measured point.
pub struct Point {
    pub case: String,
    pub size: usize,
    pub entries: usize,
    pub errors: usize,
    pub median: Duration,
}

impl Point {
    /// One tab-separated line, what the release child prints and the parent reads.
    pub fn to_line(&self) -> String {
        format!(
            "scaling\t{}\t{}\t{}\t{}\t{}",
            self.case,
            self.size,
            self.entries,
            self.errors,
            self.median.as_nanos()
        )
    }

    pub fn from_line(line: &str) -> Option<Point> {
        let mut f = line.strip_prefix("scaling\t")?.split('\t');
        Some(Point {
            case: f.next()?.to_string(),
            size: f.next()?.parse().ok()?,
            entries: f.next()?.parse().ok()?,
            errors: f.next()?.parse().ok()?,
            median: Duration::from_nanos(f.next()?.parse().ok()?),
        })
    }
}

/// CPU time of this thread: what discovery itself costs, whatever else the machine runs
/// (wall time on a loaded 2-core machine measures the other processes).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Times discovery over `fs` (thread CPU time; `boot_list` runs on the calling thread):
/// `runs` runs after one warm-up; the median.
fn time(fs: MemFs, runs: usize) -> (Duration, usize, usize) {
    let mut vols = Volumes::default();
    vols.list.push(Volume {
        name: "mem1".into(),
        disk: PathBuf::from("mem"),
        partition: None,
        info: None,
        disk_index: Some(0),
        fs: Box::new(fs),
        device: None,
        iso: None,
    });
    let (list, errors) = vols.boot_list();
    let (entries, errors) = (list.entries.len(), errors.len());
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = thread_cpu();
            let out = vols.boot_list();
            let d = thread_cpu().saturating_sub(start);
            std::hint::black_box(out);
            d
        })
        .collect();
    t.sort_unstable();
    (t[(t.len() - 1) / 2], entries, errors)
}

/// The sizes of a case: a quarter, a half and all of the target.
pub fn sizes(target: usize) -> [usize; 3] {
    [target.div_ceil(4), target.div_ceil(2), target]
}

/// `cargo xtask bench-scaling`: every case at every size, one line each on stdout.
pub fn run(runs: usize) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        anyhow::bail!("bench-scaling measures the release library: run it through `cargo xtask bench` (or with --release)");
    }
    for c in &CASES {
        for size in sizes(c.target) {
            let (fs, n) = (c.build)(size);
            let (median, entries, errors) = time(fs, runs);
            let p = Point {
                case: c.name.to_string(),
                size: n,
                entries,
                errors,
                median,
            };
            println!("{}", p.to_line());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_yields_entries_at_its_smallest_size() {
        for c in &CASES {
            let size = sizes(c.target)[0].min(40);
            let (fs, n) = (c.build)(size);
            let (_, entries, _) = time(fs, 1);
            assert!(n >= size, "{}: size {n} < {size}", c.name);
            assert!(
                entries > 0,
                "{}: no entries from the generated input",
                c.name
            );
        }
    }

    #[test]
    fn the_grub_config_reaches_its_line_count_and_the_lines_round_trip() {
        let (_, n) = grub(500);
        assert!((500..540).contains(&n), "{n} lines");
        let p = Point {
            case: "grub".into(),
            size: n,
            entries: 3,
            errors: 0,
            median: Duration::from_micros(1500),
        };
        let q = Point::from_line(&p.to_line()).unwrap();
        assert_eq!((q.case, q.size, q.median), (p.case, p.size, p.median));
    }
}
