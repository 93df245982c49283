//! The QEMU command line: one place, used by `run` and the scenario harness.

use std::path::PathBuf;
use std::process::Command;

/// A virtual machine booting leapboot.
pub struct Vm {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// Extra kernel arguments (after `console=ttyS0 panic=-1`).
    pub append: String,
    pub disks: Vec<PathBuf>,
    pub kvm: bool,
}

impl Vm {
    /// `interactive`: the serial console multiplexes QEMU's monitor (Ctrl-A X quits).
    pub fn command(&self, interactive: bool) -> Command {
        let mut c = Command::new("qemu-system-x86_64");
        c.args([
            "-machine",
            "q35",
            "-m",
            "1024",
            "-smp",
            "1",
            "-nodefaults",
            "-no-reboot",
            "-display",
            "none",
        ]);
        if self.kvm {
            c.args(["-accel", "kvm", "-cpu", "host"]);
        } else {
            c.args(["-accel", "tcg"]);
        }
        c.args(["-serial", if interactive { "mon:stdio" } else { "stdio" }]);
        if !interactive {
            c.args(["-monitor", "none"]);
        }
        c.arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(&self.initrd);
        // panic=-1 with -no-reboot: a kernel panic ends QEMU at once instead of hanging a test.
        let append = format!("console=ttyS0 panic=-1 {}", self.append);
        c.arg("-append").arg(append.trim());
        for (i, d) in self.disks.iter().enumerate() {
            // Writable on purpose: a write by leapboot must change the image, and the
            // checksums after the run must catch it.
            c.arg("-drive")
                .arg(format!("file={},format=raw,if=none,id=d{i}", d.display()));
            c.arg("-device").arg(format!("virtio-blk-pci,drive=d{i}"));
        }
        c
    }
}
