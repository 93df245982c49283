//! `cargo xtask run`: boot leapboot in QEMU on the demo disk or given images.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::bail;

use crate::{build, image, initramfs, kernel, prereq, qemu::Vm};

pub fn run(disks: &[PathBuf], append: &str, kvm: bool) -> anyhow::Result<()> {
    prereq::ensure(&prereq::Need::qemu())?;
    let k = kernel::get()?;
    let bins = build::all()?;
    let initrd = initramfs::leapboot(&bins, &k)?;
    let disks = if disks.is_empty() {
        vec![image::demo(&image::Artifacts::new(&bins, &k)?)?]
    } else {
        for d in disks {
            if !d.is_file() {
                bail!("{}: no such disk image", d.display());
            }
        }
        disks.to_vec()
    };
    let interactive = std::io::stdin().is_terminal();
    let vm = Vm {
        kernel: k.image.clone(),
        initrd: Some(initrd),
        append: append.to_string(),
        disks: disks.into_iter().map(crate::qemu::VmDisk::virtio).collect(),
        kvm,
        monitor: None,
        firmware_reboot: false,
        ovmf: None,
    };
    let mut cmd = vm.command(interactive);
    println!("xtask: {cmd:?}");
    if interactive {
        println!("xtask: serial console follows; Ctrl-A X quits QEMU");
    }
    let status = cmd.status()?;
    if !status.success() {
        bail!("QEMU exited with {status}");
    }
    Ok(())
}
