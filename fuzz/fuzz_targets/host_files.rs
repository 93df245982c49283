//! The files the host commands judge: `/etc/conf.d/kexec`, a `--kernel` file's header, the
//! running command line rewritten (`--reuse-cmdline`, `ROOTPART`), lockdown and meminfo
//! text, fstab/mountinfo, and the load record.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    use leapboot::host::{self, kernelfile, kexecconf, preflight};
    let text = String::from_utf8_lossy(data);
    let _ = kexecconf::parse(&text);
    let _ = kernelfile::check("f", data);
    let _ = preflight::signed(data);
    let _ = preflight::lockdown(Some(&text));
    let _ = preflight::mem_available(&text);
    let _ = preflight::boot_mount("/boot", &text, &text);
    let _ = host::reuse_cmdline(&text);
    let _ = host::with_root(&text, "/dev/vda1");
    let _ = host::root_device(&text);
    let _ = host::initsys::rebooting_from_runlevel(&text);
});
