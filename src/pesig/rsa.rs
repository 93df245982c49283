//! RSA signature verification, PKCS#1 v1.5 with SHA-256: `s^e mod n` by Montgomery
//! multiplication on 64-bit limbs, then the padded DigestInfo compared byte for byte.
//!
//! Written by hand because the RSA crates (with their big-integer crates) would not fit in
//! `/init`'s 2 MiB; verification only (public data, so no constant-time concerns). Bounded:
//! moduli of 1024 to 8192 bits, public exponents of at most 32 bits.

/// An RSA public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    /// The modulus, little-endian 64-bit limbs.
    n: Vec<u64>,
    /// The modulus in bytes (a signature has exactly this many).
    bytes: usize,
    e: u64,
}

/// The DER prefix of a SHA-256 DigestInfo, with and without the NULL parameters.
const SHA256_INFO: [&[u8]; 2] = [
    &[
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ],
    &[
        0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x04, 0x20,
    ],
];

impl PublicKey {
    /// From the modulus and exponent as big-endian magnitudes.
    pub fn new(n: &[u8], e: &[u8]) -> Result<PublicKey, String> {
        let n = super::der::unsigned(n);
        let e = super::der::unsigned(e);
        let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
        if !(1024..=8192).contains(&bits) {
            return Err(format!(
                "an RSA modulus of {bits} bits (1024 to 8192 accepted)"
            ));
        }
        if n.last().is_some_and(|b| b & 1 == 0) {
            return Err("an even RSA modulus".into());
        }
        if e.is_empty() || e.len() > 4 || e.last().is_some_and(|b| b & 1 == 0) {
            return Err("an RSA exponent that is not an odd number of at most 32 bits".into());
        }
        let e = e.iter().fold(0u64, |a, &b| (a << 8) | b as u64);
        if e < 3 {
            return Err("an RSA exponent below 3".into());
        }
        Ok(PublicKey {
            n: limbs(n, n.len().div_ceil(8)),
            bytes: n.len(),
            e,
        })
    }

    /// Whether `sig` is this key's PKCS#1 v1.5 signature of the SHA-256 digest `digest`.
    pub fn verify_sha256(&self, sig: &[u8], digest: &[u8; 32]) -> bool {
        if sig.len() != self.bytes {
            return false;
        }
        let k = self.n.len();
        let s = limbs(sig, k);
        if !less(&s, &self.n) {
            return false;
        }
        let m = self.power(&s);
        let em = to_bytes(&m, self.bytes);
        SHA256_INFO.iter().any(|info| {
            let t = info.len() + 32;
            let Some(ps) = self.bytes.checked_sub(t + 3).filter(|&p| p >= 8) else {
                return false;
            };
            em[0] == 0
                && em[1] == 1
                && em[2..2 + ps].iter().all(|&b| b == 0xff)
                && em[2 + ps] == 0
                && &em[3 + ps..3 + ps + info.len()] == *info
                && em[3 + ps + info.len()..] == digest[..]
        })
    }

    /// `s^e mod n`.
    fn power(&self, s: &[u64]) -> Vec<u64> {
        let n = &self.n;
        let k = n.len();
        let inv = n0_inverse(n[0]);
        // R² mod n, R = 2^(64k): 1 doubled 2·64·k times, reduced at each step.
        let mut r2 = vec![0u64; k];
        r2[0] = 1;
        for _ in 0..2 * 64 * k {
            let carry = shl1(&mut r2);
            if carry || !less(&r2, n) {
                sub(&mut r2, n);
            }
        }
        let base = mont(s, &r2, n, inv);
        let mut acc = base.clone();
        let top = 63 - self.e.leading_zeros();
        for bit in (0..top).rev() {
            acc = mont(&acc, &acc, n, inv);
            if self.e >> bit & 1 == 1 {
                acc = mont(&acc, &base, n, inv);
            }
        }
        let mut one = vec![0u64; k];
        one[0] = 1;
        mont(&acc, &one, n, inv)
    }
}

/// Big-endian bytes as `k` little-endian limbs (the bytes must fit).
fn limbs(be: &[u8], k: usize) -> Vec<u64> {
    let mut out = vec![0u64; k.max(1)];
    for (i, &b) in be.iter().rev().enumerate() {
        if let Some(l) = out.get_mut(i / 8) {
            *l |= (b as u64) << (8 * (i % 8));
        }
    }
    out
}

fn to_bytes(x: &[u64], len: usize) -> Vec<u8> {
    (0..len)
        .rev()
        .map(|i| x.get(i / 8).map_or(0, |l| (l >> (8 * (i % 8))) as u8))
        .collect()
}

fn less(a: &[u64], b: &[u64]) -> bool {
    for i in (0..a.len().max(b.len())).rev() {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        if x != y {
            return x < y;
        }
    }
    false
}

/// `a -= b` (wrapping: callers only subtract when the true result is below 2^(64k)).
fn sub(a: &mut [u64], b: &[u64]) {
    let mut borrow = 0u64;
    for (i, x) in a.iter_mut().enumerate() {
        let (d, b1) = x.overflowing_sub(b.get(i).copied().unwrap_or(0));
        let (d, b2) = d.overflowing_sub(borrow);
        *x = d;
        borrow = (b1 | b2) as u64;
    }
}

fn shl1(a: &mut [u64]) -> bool {
    let mut carry = 0u64;
    for x in a.iter_mut() {
        let next = *x >> 63;
        *x = (*x << 1) | carry;
        carry = next;
    }
    carry == 1
}

/// `-n0⁻¹ mod 2^64` (n0 odd), by Newton's iteration.
fn n0_inverse(n0: u64) -> u64 {
    let mut x = 1u64;
    for _ in 0..6 {
        x = x.wrapping_mul(2u64.wrapping_sub(n0.wrapping_mul(x)));
    }
    x.wrapping_neg()
}

/// Montgomery product `a·b·R⁻¹ mod n` (a, b < n), coarsely integrated operand scanning.
fn mont(a: &[u64], b: &[u64], n: &[u64], inv: u64) -> Vec<u64> {
    let k = n.len();
    let mut t = vec![0u64; k + 2];
    for &bi in &b[..k] {
        let mut c = 0u128;
        for j in 0..k {
            let s = t[j] as u128 + a[j] as u128 * bi as u128 + c;
            t[j] = s as u64;
            c = s >> 64;
        }
        let s = t[k] as u128 + c;
        t[k] = s as u64;
        t[k + 1] = (s >> 64) as u64;
        let m = t[0].wrapping_mul(inv);
        let mut c = (t[0] as u128 + m as u128 * n[0] as u128) >> 64;
        for j in 1..k {
            let s = t[j] as u128 + m as u128 * n[j] as u128 + c;
            t[j - 1] = s as u64;
            c = s >> 64;
        }
        let s = t[k] as u128 + c;
        t[k - 1] = s as u64;
        t[k] = t[k + 1] + (s >> 64) as u64;
        t[k + 1] = 0;
    }
    let mut r = t[..=k].to_vec();
    if !less(&r, n) {
        sub(&mut r, n);
    }
    r.truncate(k);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One-limb numbers against u128 arithmetic; the multi-limb path is checked by the
    /// real 2048- and 4096-bit signatures of the Authenticode tests.
    #[test]
    fn montgomery_power_matches_plain_arithmetic() {
        for n in [
            0xc3a5_c85c_97cb_3127u64,
            0xffff_ffff_ffff_ffc5,
            0x8000_0000_0000_0001,
        ] {
            for e in [3u64, 17, 65537, 0xffff_ffff] {
                let key = PublicKey {
                    n: vec![n],
                    bytes: 8,
                    e,
                };
                for s in [2u64, 3, 0x1234_5678_9abc_def0 % n, n - 1] {
                    let mulmod = |a: u64, b: u64| (a as u128 * b as u128 % n as u128) as u64;
                    let mut want = 1u64;
                    for bit in (0..64 - e.leading_zeros()).rev() {
                        want = mulmod(want, want);
                        if e >> bit & 1 == 1 {
                            want = mulmod(want, s);
                        }
                    }
                    assert_eq!(key.power(&[s]), vec![want], "n {n:#x} e {e} s {s:#x}");
                }
            }
        }
    }

    #[test]
    fn keys_out_of_bounds_are_refused() {
        let n1024 = [&[0xc5u8][..], &[0x11; 126], &[0x01]].concat();
        assert!(PublicKey::new(&n1024, &[1, 0, 1]).is_ok());
        assert!(
            PublicKey::new(&n1024[1..], &[1, 0, 1]).is_err(),
            "1016 bits"
        );
        assert!(
            PublicKey::new(&vec![0xff; 1025], &[1, 0, 1]).is_err(),
            "8200 bits"
        );
        let even = [&n1024[..127], &[2]].concat();
        assert!(PublicKey::new(&even, &[1, 0, 1]).is_err());
        assert!(PublicKey::new(&n1024, &[2]).is_err());
        assert!(PublicKey::new(&n1024, &[1]).is_err());
        assert!(PublicKey::new(&n1024, &[1, 0, 0, 0, 1]).is_err());
    }
}
