//! The locked-mode password check: `sha256:<salt>:<hex>` where `<hex>` is the SHA-256 of
//! the salt's bytes followed by the password's, in lower-case hex.
//!
//! Generate one on any Linux machine:
//!
//! ```sh
//! salt=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
//! printf 'sha256:%s:%s\n' "$salt" "$(printf '%s%s' "$salt" 'your password' | sha256sum | cut -d' ' -f1)"
//! ```
//!
//! A salted single SHA-256 is not a slow password hash: it keeps the password out of the
//! initramfs in clear text and resists a look at the file, not an offline attack on a stolen
//! image. It only verifies; it stores nothing.

use sha2::{Digest, Sha256};

/// Why a configured hash cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// Not `sha256:<salt>:<64 hex digits>`.
    #[error(
        "password_hash must be \"sha256:<salt>:<64 hex digits>\" (see README.md § Locked mode)"
    )]
    Format,
}

/// A parsed `sha256:<salt>:<hex>` hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordHash {
    salt: String,
    digest: [u8; 32],
}

impl PasswordHash {
    /// Parses the configured form.
    pub fn parse(s: &str) -> Result<PasswordHash, HashError> {
        let rest = s.trim().strip_prefix("sha256:").ok_or(HashError::Format)?;
        let (salt, hex) = rest.rsplit_once(':').ok_or(HashError::Format)?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(HashError::Format);
        }
        let mut digest = [0u8; 32];
        for (i, d) in digest.iter_mut().enumerate() {
            *d = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| HashError::Format)?;
        }
        Ok(PasswordHash {
            salt: salt.to_string(),
            digest,
        })
    }

    /// Whether `password` is the one hashed (compared in constant time).
    pub fn verify(&self, password: &str) -> bool {
        let mut h = Sha256::new();
        h.update(self.salt.as_bytes());
        h.update(password.as_bytes());
        let got = h.finalize();
        got.iter()
            .zip(self.digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // printf '%s%s' 'c0ffee' 'hunter2' | sha256sum
    const HASH: &str =
        "sha256:c0ffee:0b1df9fe8d5eb2c9d4d5d3f6f0e0c6d2d5e1a47a6d0bd7b1a09b2e4a1f5a2c3d";

    fn hash_of(salt: &str, pw: &str) -> String {
        let d = Sha256::digest(format!("{salt}{pw}").as_bytes());
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{salt}:{hex}")
    }

    #[test]
    fn verifies_the_right_password_only() {
        let h = PasswordHash::parse(&hash_of("c0ffee", "hunter2")).unwrap();
        assert!(h.verify("hunter2"));
        assert!(!h.verify("hunter3"));
        assert!(!h.verify(""));
        let empty_salt = PasswordHash::parse(&hash_of("", "pw")).unwrap();
        assert!(empty_salt.verify("pw"));
    }

    #[test]
    fn a_known_vector_from_sha256sum() {
        // `printf '%s' 'saltpassword' | sha256sum`
        let h = PasswordHash::parse(
            "sha256:salt:13601bda4ea78e55a07b98866d2be6be0744e3866f13c00c811cab608a28f322",
        )
        .unwrap();
        assert!(h.verify("password"));
    }

    #[test]
    fn malformed_hashes_are_refused() {
        for bad in [
            "",
            "sha512:x:00",
            "sha256:salt",
            "sha256:salt:abc",
            &HASH.replace('0', "g"),
        ] {
            assert_eq!(PasswordHash::parse(bad), Err(HashError::Format), "{bad:?}");
        }
    }
}
