//! The `/boot` naming rules of the OpenRC `kexec` service, as data: which kernel it takes when
//! `KNAME` does not name one, and which initrd goes with a kernel. [`newest`] adds what
//! `leapboot load --latest` means: the highest version among the kernels named like
//! `vmlinuz-<version>` (the same names [`crate::entry::bootdir::classify`] knows).
//!
//! Pure: names in, names out; the caller looks at the directory. `{kver}` is the running
//! kernel's release (`uname -r`), `{arch}` its machine (`uname -m`), `{ver}` the version taken
//! from the kernel's own file name.

use std::cmp::Ordering;

/// Kernel names tried in `BOOTPART` when `KNAME` is not set, in order.
pub const KERNEL_NAMES: &[&str] = &[
    "bzImage-{kver}",
    "vmlinuz-{kver}",
    "vmlinux-{kver}",
    "kernel-{kver}",
    "kernel-genkernel-{arch}-{kver}",
    "bzImage",
    "vmlinuz",
    "vmlinux",
    "kernel",
];

/// Initrd names tried beside a kernel whose name carries a version, in order.
pub const INITRD_NAMES: &[&str] = &[
    "initrd-{ver}",
    "initrd-{ver}.img",
    "initrd.img-{ver}",
    "initrd.img-{ver}.img",
    "initramfs-{ver}.img",
    "initramfs-{ver}",
    "initramfs-genkernel-{arch}-{ver}",
];

/// Initrd names tried beside a kernel without a version in its name (`bzImage`, `vmlinuz`).
pub const INITRD_PLAIN: &[&str] = &["initrd", "initrd.img", "initramfs.img", "initramfs"];

/// Kernel name prefixes a version follows (genkernel's has the architecture in between).
const PREFIXES: &[&str] = &["bzImage-", "vmlinuz-", "vmlinux-", "kernel-"];

fn fill(pattern: &str, ver: &str, arch: &str) -> String {
    pattern
        .replace("{kver}", ver)
        .replace("{ver}", ver)
        .replace("{arch}", arch)
}

/// The kernel names to try, in order: `kname` alone when given, else [`KERNEL_NAMES`].
pub fn kernel_candidates(kname: Option<&str>, kver: &str, arch: &str) -> Vec<String> {
    match kname {
        Some(k) => vec![k.to_string()],
        None => KERNEL_NAMES.iter().map(|p| fill(p, kver, arch)).collect(),
    }
}

/// The version in a kernel file name (`vmlinuz-6.1.0-13-amd64` → `6.1.0-13-amd64`,
/// `kernel-genkernel-x86_64-6.6.13-gentoo` → `6.6.13-gentoo`); `None` for `bzImage`.
pub fn version_of(kernel: &str) -> Option<&str> {
    if let Some(rest) = kernel.strip_prefix("kernel-genkernel-") {
        return rest
            .split_once('-')
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty());
    }
    PREFIXES
        .iter()
        .find_map(|p| kernel.strip_prefix(p))
        .filter(|v| !v.is_empty())
}

/// The initrd names to try beside `kernel` (a file name), in order.
pub fn initrd_candidates(kernel: &str, arch: &str) -> Vec<String> {
    match version_of(kernel) {
        Some(v) => INITRD_NAMES.iter().map(|p| fill(p, v, arch)).collect(),
        None => INITRD_PLAIN.iter().map(|s| s.to_string()).collect(),
    }
}

/// The first of `candidates` for which `exists` is true.
pub fn first_present(candidates: &[String], exists: &dyn Fn(&str) -> bool) -> Option<String> {
    candidates.iter().find(|c| exists(c)).cloned()
}

/// The newest kernel among `names` by the version in its name (UAPI version order); names
/// that are no versioned kernel (or are backups) are ignored.
pub fn newest<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(&str, String)> = None;
    for n in names {
        let Some(k) = crate::entry::bootdir::classify(n) else {
            continue;
        };
        let Some(v) = k.version else { continue };
        let newer = best
            .as_ref()
            .is_none_or(|(_, bv)| crate::version::compare(&v, bv) == Ordering::Greater);
        if newer {
            best = Some((n, v));
        }
    }
    best.map(|(n, _)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(present: &[&str], kname: Option<&str>) -> Option<(String, Option<String>)> {
        let exists = |n: &str| present.contains(&n);
        let k = first_present(
            &kernel_candidates(kname, "6.6.13-gentoo", "x86_64"),
            &exists,
        )?;
        let i = first_present(&initrd_candidates(&k, "x86_64"), &exists);
        Some((k, i))
    }

    /// The seed's list: each /boot listing with the kernel and initrd the service takes.
    #[test]
    fn table_of_boot_directories() {
        type Case<'a> = (
            &'a [&'a str],
            Option<&'a str>,
            Option<(&'a str, Option<&'a str>)>,
        );
        let cases: &[Case<'_>] = &[
            // make install: bzImage-<kver> beats the plain names
            (
                &["bzImage", "bzImage-6.6.13-gentoo"],
                None,
                Some(("bzImage-6.6.13-gentoo", None)),
            ),
            (
                &["vmlinuz-6.6.13-gentoo", "initrd.img-6.6.13-gentoo"],
                None,
                Some(("vmlinuz-6.6.13-gentoo", Some("initrd.img-6.6.13-gentoo"))),
            ),
            (
                &["vmlinux-6.6.13-gentoo", "initrd-6.6.13-gentoo.img"],
                None,
                Some(("vmlinux-6.6.13-gentoo", Some("initrd-6.6.13-gentoo.img"))),
            ),
            (
                &["kernel-6.6.13-gentoo", "initrd-6.6.13-gentoo"],
                None,
                Some(("kernel-6.6.13-gentoo", Some("initrd-6.6.13-gentoo"))),
            ),
            (
                &["kernel-6.6.13-gentoo", "initrd.img-6.6.13-gentoo.img"],
                None,
                Some(("kernel-6.6.13-gentoo", Some("initrd.img-6.6.13-gentoo.img"))),
            ),
            // installkernel with dracut
            (
                &["vmlinuz-6.6.13-gentoo", "initramfs-6.6.13-gentoo.img"],
                None,
                Some(("vmlinuz-6.6.13-gentoo", Some("initramfs-6.6.13-gentoo.img"))),
            ),
            // genkernel
            (
                &[
                    "kernel-genkernel-x86_64-6.6.13-gentoo",
                    "initramfs-genkernel-x86_64-6.6.13-gentoo",
                ],
                None,
                Some((
                    "kernel-genkernel-x86_64-6.6.13-gentoo",
                    Some("initramfs-genkernel-x86_64-6.6.13-gentoo"),
                )),
            ),
            // plain names, plain initrds
            (
                &["vmlinuz", "initrd.img"],
                None,
                Some(("vmlinuz", Some("initrd.img"))),
            ),
            (
                &["bzImage", "initramfs.img"],
                None,
                Some(("bzImage", Some("initramfs.img"))),
            ),
            (
                &["kernel", "initrd"],
                None,
                Some(("kernel", Some("initrd"))),
            ),
            // another version's initrd never pairs
            (
                &["vmlinuz-6.6.13-gentoo", "initrd.img-6.1.0"],
                None,
                Some(("vmlinuz-6.6.13-gentoo", None)),
            ),
            // a kernel of another version is not guessed (the running one or a plain name)
            (&["vmlinuz-6.1.0"], None, None),
            // KNAME names the file; nothing else is tried
            (
                &["vmlinuz-6.1.0", "initrd.img-6.1.0", "vmlinuz"],
                Some("vmlinuz-6.1.0"),
                Some(("vmlinuz-6.1.0", Some("initrd.img-6.1.0"))),
            ),
            (&["vmlinuz"], Some("bzImage"), None),
            (&[], None, None),
        ];
        for (present, kname, want) in cases {
            let got = pick(present, *kname);
            let want = want.map(|(k, i)| (k.to_string(), i.map(str::to_string)));
            assert_eq!(got, want, "{present:?} KNAME={kname:?}");
        }
    }

    #[test]
    fn versions_from_names() {
        assert_eq!(version_of("vmlinuz-6.1.0-13-amd64"), Some("6.1.0-13-amd64"));
        assert_eq!(
            version_of("kernel-genkernel-x86_64-6.6.13-gentoo"),
            Some("6.6.13-gentoo")
        );
        assert_eq!(version_of("kernel-genkernel-x86_64"), None);
        assert_eq!(version_of("bzImage"), None);
        assert_eq!(version_of("vmlinuz-"), None);
    }

    #[test]
    fn newest_by_version_not_by_name() {
        let names = [
            "vmlinuz-6.1.0-9-amd64",
            "vmlinuz-6.1.0-13-amd64",
            "vmlinuz-6.1.0-13-amd64.old",
            "config-6.1.0-99-amd64",
            "initrd.img-6.1.0-99-amd64",
            "vmlinuz",
        ];
        assert_eq!(newest(names), Some("vmlinuz-6.1.0-13-amd64"));
        assert_eq!(newest(["vmlinuz", "System.map"]), None);
    }
}
