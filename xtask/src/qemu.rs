//! The QEMU command line: one place, used by `run` and the scenario harness.

use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;

/// How a disk is attached.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Bus {
    /// `virtio-blk-pci` (`vda`...).
    #[default]
    Virtio,
    /// `nvme` (`nvme0n1`...), one controller per disk.
    Nvme,
    /// `ide-hd` on one `ahci` controller (`sda`...), up to 6 disks.
    Ahci,
    /// `scsi-hd` on one `virtio-scsi-pci` controller (`sda`...).
    Scsi,
    /// `usb-storage` on one `qemu-xhci` controller (`sda`...).
    Usb,
}

/// One disk image and how it is attached.
#[derive(Clone, Debug)]
pub struct VmDisk {
    pub path: PathBuf,
    pub bus: Bus,
    /// Not attached at start: the drive exists (id `d<N>`) and a monitor `device_add` with
    /// `drive=d<N>` attaches it later. See [`VmDisk::device`] for the arguments.
    pub hotplug: bool,
    /// Writes go to a temporary overlay (`snapshot=on`) that lives as long as QEMU: the
    /// guest sees its own writes across reboots, the image file stays as built.
    pub snapshot: bool,
}

impl VmDisk {
    /// A virtio disk attached at start.
    pub fn virtio(path: PathBuf) -> VmDisk {
        VmDisk {
            path,
            bus: Bus::Virtio,
            hotplug: false,
            snapshot: false,
        }
    }

    /// The `-device` (or `device_add`) argument for disk number `i`.
    pub fn device(&self, i: usize, ahci_port: usize) -> String {
        match self.bus {
            Bus::Virtio => format!("virtio-blk-pci,drive=d{i},id=disk{i}"),
            Bus::Nvme => format!("nvme,drive=d{i},serial=leapboot{i},id=disk{i}"),
            Bus::Ahci => format!("ide-hd,drive=d{i},bus=ahci.{ahci_port},id=disk{i}"),
            Bus::Scsi => format!("scsi-hd,drive=d{i},bus=scsi.0,id=disk{i}"),
            Bus::Usb => format!("usb-storage,drive=d{i},bus=xhci.0,id=disk{i}"),
        }
    }
}

/// UEFI firmware with Secure Boot enforced: OVMF's secboot code flash (read-only) and a
/// variables store with the keys enrolled and a boot entry (QEMU writes to it: a copy per
/// run). There is no `-kernel`: OVMF's QEMU kernel loader falls back to its legacy loader
/// when LoadImage refuses an image, so only the firmware's boot manager, loading the kernel
/// from a disk (the last one in `disks`), enforces db on the first kernel.
#[derive(Clone, Debug)]
pub struct Ovmf {
    pub code: PathBuf,
    pub vars: PathBuf,
}

/// A virtual machine booting leapboot.
pub struct Vm {
    pub kernel: PathBuf,
    /// None: the kernel boots without an initramfs (its own root= in `append`).
    pub initrd: Option<PathBuf>,
    /// Extra kernel arguments (after `console=ttyS0 panic=-1`).
    pub append: String,
    pub disks: Vec<VmDisk>,
    pub kvm: bool,
    /// A unix socket for QEMU's human monitor (HMP), for hotplug steps.
    pub monitor: Option<PathBuf>,
    /// A guest reboot goes through the firmware and boots `kernel` again (no `-no-reboot`).
    pub firmware_reboot: bool,
    /// None: SeaBIOS (QEMU's default). Some: OVMF with Secure Boot, `kernel` loaded by the
    /// firmware as an EFI application (so its signature is checked against `db`).
    pub ovmf: Option<Ovmf>,
}

impl Vm {
    /// The first kernel's command line: `-append`, or (with OVMF) the boot entry's options.
    pub fn kernel_cmdline(&self) -> String {
        // panic=-1 with -no-reboot: a kernel panic ends QEMU at once instead of hanging a test.
        // no_timer_check: under TCG on a loaded machine the kernel's IO-APIC timer check can
        // miss its ticks and panic ("IO-APIC + timer doesn't work!"); a VM's timer is fine.
        // Only for leapboot's own kernel (with an initramfs): a real system booted alone
        // (`boot = "kernel"`) keeps the command line its scenario checks word for word.
        let timer = if self.initrd.is_some() {
            "no_timer_check "
        } else {
            ""
        };
        format!("console=ttyS0 panic=-1 {timer}{}", self.append)
            .trim()
            .to_string()
    }

    /// `interactive`: the serial console multiplexes QEMU's monitor (Ctrl-A X quits).
    pub fn command(&self, interactive: bool) -> Command {
        let mut c = Command::new("qemu-system-x86_64");
        // OVMF's secboot build keeps its variables in SMM: the flash is only writable there.
        let machine = if self.ovmf.is_some() {
            "q35,smm=on"
        } else {
            "q35"
        };
        c.args([
            "-machine",
            machine,
            "-m",
            "1024",
            "-smp",
            "1",
            "-nodefaults",
            "-display",
            "none",
        ]);
        if !self.firmware_reboot {
            c.arg("-no-reboot");
        }
        if self.kvm {
            c.args(["-accel", "kvm", "-cpu", "host"]);
        } else {
            c.args(["-accel", "tcg"]);
        }
        c.args(["-serial", if interactive { "mon:stdio" } else { "stdio" }]);
        match &self.monitor {
            Some(path) => {
                c.arg("-monitor")
                    .arg(format!("unix:{},server=on,wait=off", path.display()));
            }
            None if !interactive => {
                c.args(["-monitor", "none"]);
            }
            None => {}
        }
        if let Some(o) = &self.ovmf {
            c.args(["-global", "driver=cfi.pflash01,property=secure,value=on"]);
            c.arg("-drive").arg(format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={}",
                o.code.display()
            ));
            c.arg("-drive").arg(format!(
                "if=pflash,format=raw,unit=1,file={}",
                o.vars.display()
            ));
        }
        if self.ovmf.is_none() {
            c.arg("-kernel").arg(&self.kernel);
            if let Some(initrd) = &self.initrd {
                c.arg("-initrd").arg(initrd);
            }
            c.arg("-append").arg(self.kernel_cmdline());
        }
        // One controller per shared bus, present from the start (hotplugged disks need it).
        let has = |b: Bus| self.disks.iter().any(|d| d.bus == b);
        if has(Bus::Ahci) {
            c.args(["-device", "ahci,id=ahci"]);
        }
        if has(Bus::Scsi) {
            c.args(["-device", "virtio-scsi-pci,id=scsi"]);
        }
        if has(Bus::Usb) {
            c.args(["-device", "qemu-xhci,id=xhci"]);
        }
        let mut ahci_port = 0;
        for (i, d) in self.disks.iter().enumerate() {
            // Writable on purpose: a write by leapboot must change the image, and the
            // checksums after the run must catch it.
            c.arg("-drive").arg(format!(
                "file={},format=raw,if=none,id=d{i}{}",
                d.path.display(),
                if d.snapshot { ",snapshot=on" } else { "" }
            ));
            if !d.hotplug {
                c.arg("-device").arg(d.device(i, ahci_port));
            }
            if d.bus == Bus::Ahci {
                ahci_port += 1;
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_controller_per_bus_and_hotplug_disks_only_as_drives() {
        let disk = |bus, hotplug| VmDisk {
            path: PathBuf::from(format!("/x/{bus:?}.img")),
            bus,
            hotplug,
            snapshot: false,
        };
        let vm = Vm {
            kernel: "k".into(),
            initrd: Some("i".into()),
            append: String::new(),
            disks: vec![
                disk(Bus::Nvme, false),
                disk(Bus::Ahci, false),
                disk(Bus::Ahci, false),
                disk(Bus::Usb, true),
            ],
            kvm: false,
            monitor: Some("/tmp/m.sock".into()),
            firmware_reboot: false,
            ovmf: None,
        };
        let args: Vec<String> = vm
            .command(false)
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let line = args.join(" ");
        assert!(line.contains("-device nvme,drive=d0,serial=leapboot0,id=disk0"));
        assert!(line.contains("-device ahci,id=ahci"));
        assert!(line.contains("-device ide-hd,drive=d1,bus=ahci.0,id=disk1"));
        assert!(line.contains("-device ide-hd,drive=d2,bus=ahci.1,id=disk2"));
        assert!(line.contains("-device qemu-xhci,id=xhci"));
        assert!(line.contains("id=d3"), "the hotplug disk's drive exists");
        assert!(!line.contains("drive=d3"), "but no device uses it yet");
        assert!(line.contains("-monitor unix:/tmp/m.sock,server=on,wait=off"));
        assert_eq!(line.matches("-device ahci").count(), 1);
        assert!(line.contains("-machine q35 ") && !line.contains("pflash"));
    }

    #[test]
    fn ovmf_secure_boot_needs_smm_and_two_flashes() {
        let vm = Vm {
            kernel: "signed.vmlinuz".into(),
            initrd: Some("i".into()),
            append: String::new(),
            disks: Vec::new(),
            kvm: false,
            monitor: None,
            firmware_reboot: false,
            ovmf: Some(Ovmf {
                code: "/c.fd".into(),
                vars: "/v.fd".into(),
            }),
        };
        let line: Vec<String> = vm
            .command(false)
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let line = line.join(" ");
        assert!(line.contains("-machine q35,smm=on"));
        assert!(line.contains("-global driver=cfi.pflash01,property=secure,value=on"));
        assert!(line.contains("if=pflash,format=raw,unit=0,readonly=on,file=/c.fd"));
        assert!(line.contains("if=pflash,format=raw,unit=1,file=/v.fd"));
        assert!(
            !line.contains("-kernel"),
            "OVMF's -kernel loader bypasses db"
        );
    }
}
