//! `/init` of the tiny "target" initramfs that QEMU scenarios boot *into*.
//!
//! It proves what leapboot handed over: it prints the command line the kernel received and
//! which initrds arrived (each initrd the fixtures build carries a marker file under
//! `/leapboot-markers/`), then powers the machine off. The harness matches these lines:
//!
//! ```text
//! LEAPBOOT-TARGET-OK cmdline=<the exact /proc/cmdline>
//! LEAPBOOT-TARGET-INITRDS <marker>,<marker>
//! ```
//!
//! With a TPM (a scenario's `[tpm]`), it then prints the measurement log leapboot passed in
//! the initrd (`/leapboot/tpm-eventlog.bin`, as hex) and the SHA-256 PCRs the kernel shows:
//!
//! ```text
//! LEAPBOOT-TARGET-EVENTLOG <hex of the log, or "none">
//! LEAPBOOT-TARGET-PCR 4 <64 hex digits>     (then 8, 9, 12)
//! ```
//!
//! With `target.chain` on its command line it then runs `/bin/leapboot reboot --force --root
//! /chain next` (from the `@chain-initrd` fixture): a running system kexecing on.

use std::ffi::CString;
use std::io::Write;

fn mount(fstype: &str, target: &str) {
    let _ = std::fs::create_dir_all(target);
    let (s, t) = (CString::new(fstype).unwrap(), CString::new(target).unwrap());
    // SAFETY: valid NUL-terminated strings; no data argument.
    unsafe { libc::mount(s.as_ptr(), t.as_ptr(), s.as_ptr(), 0, std::ptr::null()) };
}

/// Writes to both; fails only when both fail (a console without a screen behind it).
struct Tee<A, B>(A, B);

impl<A: Write, B: Write> Write for Tee<A, B> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let a = self.0.write_all(buf);
        self.1.write_all(buf).or(a)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let a = self.0.flush();
        self.1.flush().or(a)
    }
}

/// The PCRs leapboot extends (see leapboot's `measure` module), as the kernel shows them.
const PCRS: [u32; 4] = [4, 8, 9, 12];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The event log and the PCRs, if the machine has a TPM.
fn print_tpm(out: &mut dyn Write) {
    let dir = std::path::Path::new("/sys/class/tpm/tpm0/pcr-sha256");
    if !dir.is_dir() {
        return;
    }
    let log = std::fs::read("/leapboot/tpm-eventlog.bin")
        .map(|b| hex(&b))
        .unwrap_or_else(|_| "none".into());
    let _ = writeln!(out, "LEAPBOOT-TARGET-EVENTLOG {log}");
    for pcr in PCRS {
        let v = std::fs::read_to_string(dir.join(pcr.to_string())).unwrap_or_default();
        let _ = writeln!(
            out,
            "LEAPBOOT-TARGET-PCR {pcr} {}",
            v.trim().to_ascii_lowercase()
        );
    }
    let _ = out.flush();
}

fn main() {
    mount("proc", "/proc");
    mount("devtmpfs", "/dev");
    mount("sysfs", "/sys");
    // Kernel messages (a clocksource note a second after boot) must not land inside the
    // marker lines the harness matches whole: only emergencies reach the console from here.
    let _ = std::fs::write("/proc/sys/kernel/printk", "1");
    let mut out: Box<dyn Write> = match std::fs::OpenOptions::new().write(true).open("/dev/console")
    {
        Ok(f) => Box::new(f),
        Err(_) => Box::new(std::io::stdout()),
    };
    // A real distribution's command line (Debian's installer: `vga=788 … --- quiet`) names no
    // `console=ttyS0`: the console is the screen, which the harness cannot read. Then the
    // lines go to the first serial port as well, and the command line stays as booted.
    let serial_console = std::fs::read_to_string("/proc/consoles")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("ttyS0 "));
    if !serial_console {
        if let Ok(s) = std::fs::OpenOptions::new().write(true).open("/dev/ttyS0") {
            out = Box::new(Tee(out, s));
        }
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let mut markers: Vec<String> = std::fs::read_dir("/leapboot-markers")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    markers.sort();
    let _ = writeln!(
        out,
        "LEAPBOOT-TARGET-OK cmdline={}",
        cmdline.trim_end_matches('\n')
    );
    let _ = writeln!(out, "LEAPBOOT-TARGET-INITRDS {}", markers.join(","));
    let _ = out.flush();
    print_tpm(&mut out);
    // A running system that reboots on with `leapboot reboot` (the chain initrd brings the
    // CLI and a boot volume at /chain): its output shows on the console; if it returns, the
    // reboot failed.
    if cmdline.split_whitespace().any(|w| w == "target.chain") {
        let _ = writeln!(
            out,
            "LEAPBOOT-TARGET-CHAIN leapboot reboot --force --root /chain next"
        );
        let _ = out.flush();
        let status = std::process::Command::new("/bin/leapboot")
            .args(["reboot", "--force", "--root", "/chain", "next"])
            .status();
        let _ = writeln!(out, "LEAPBOOT-TARGET-CHAIN-FAILED {status:?}");
        let _ = out.flush();
    }
    // SAFETY: plain syscalls; PID 1 powering off.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
