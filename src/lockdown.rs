//! Kernel lockdown and kernel signatures, in words: the active lockdown mode, whether a
//! bzImage carries an Authenticode signature, and why a locked-down kernel refused to kexec
//! it. Pure: callers pass the text of `/sys/kernel/security/lockdown` and the image's head.
//! Used by the loader (PID 1's refusal message) and the host CLI's preflight.

/// The active lockdown mode from `/sys/kernel/security/lockdown` (`[none] integrity
/// confidentiality`): `None` for `none` or an unreadable file.
pub fn lockdown(text: Option<&str>) -> Option<String> {
    let t = text?;
    let start = t.find('[')?;
    let end = t[start..].find(']')? + start;
    let mode = &t[start + 1..end];
    (mode != "none" && !mode.is_empty()).then(|| mode.to_string())
}

/// Whether a bzImage carries an Authenticode signature: its PE header's certificate table
/// (data directory 4) is not empty. `None`: no PE header to tell.
pub fn signed(header: &[u8]) -> Option<bool> {
    let h = crate::pesig::authenticode::pe_headers(header).ok()?;
    Some(h.certs.1 > 0)
}

/// The words for a load refused with `EPERM`/`EKEYREJECTED` under lockdown: which key is
/// missing and what to do.
pub fn lockdown_refusal(kernel: &str, mode: &str, signed: Option<bool>) -> String {
    let why = match signed {
        Some(false) => format!("{kernel} is not signed"),
        Some(true) => format!(
            "{kernel} carries a signature, but it does not verify against any key in those keyrings: signed by a key they do not hold, or changed after signing (see `keyctl show %:.builtin_trusted_keys`, `%:.secondary_trusted_keys`, `%:.platform`)"
        ),
        None => format!("{kernel} has no signature leapboot could find"),
    };
    format!(
        "the running kernel is locked down ({mode}, usually by Secure Boot) and only kexecs \
         kernels whose signature verifies against a key in its builtin, secondary or platform \
         (UEFI db / MOK) keyring; {why}. Sign it (`sbsign --key K --cert C`) with a key \
         enrolled in the firmware's db or as a MOK (`mokutil --import`), boot a kernel your \
         distribution signed, or turn Secure Boot off"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_reason_for_each_signature_state() {
        let unsigned = lockdown_refusal("d0p1:/vmlinuz", "integrity", Some(false));
        assert!(unsigned.contains("only kexecs kernels whose signature verifies"));
        assert!(unsigned.contains("platform (UEFI db / MOK) keyring; d0p1:/vmlinuz is not signed"));
        let bad = lockdown_refusal("d0p1:/vmlinuz", "integrity", Some(true));
        assert!(
            bad.contains("carries a signature, but it does not verify"),
            "{bad}"
        );
        assert!(bad.contains("changed after signing"), "{bad}");
        let unknown = lockdown_refusal("k", "confidentiality", None);
        assert!(
            unknown.contains("(confidentiality,")
                && unknown.contains("no signature leapboot could find")
        );
    }
}
