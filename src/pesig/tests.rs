//! Authenticode checks against images `sbsign` signed (checked in under `testdata/`:
//! regenerate with `cargo test -p leapboot regenerate_pesig_fixtures -- --ignored`, which
//! needs openssl and sbsigntool).

use super::*;
use proptest::prelude::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/pesig/testdata");

fn file(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn trust(names: &[&str]) -> Trust {
    let mut t = Trust::default();
    for n in names {
        t.add(n, &file(n)).unwrap();
    }
    t
}

/// A minimal PE32+ EFI application: headers, one 512-byte `.text` section.
fn tiny_pe() -> Vec<u8> {
    let mut p = vec![0u8; 0x400];
    p[0..2].copy_from_slice(b"MZ");
    p[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
    p[0x40..0x44].copy_from_slice(b"PE\0\0");
    let put16 =
        |p: &mut Vec<u8>, at: usize, v: u16| p[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put32 =
        |p: &mut Vec<u8>, at: usize, v: u32| p[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let put64 =
        |p: &mut Vec<u8>, at: usize, v: u64| p[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put16(&mut p, 0x44, 0x8664); // machine
    put16(&mut p, 0x46, 1); // sections
    put16(&mut p, 0x54, 240); // optional header size
    put16(&mut p, 0x56, 0x0022);
    let o = 0x58;
    put16(&mut p, o, 0x20b);
    put32(&mut p, o + 4, 0x200); // size of code
    put32(&mut p, o + 16, 0x1000); // entry
    put32(&mut p, o + 20, 0x1000); // base of code
    put64(&mut p, o + 24, 0); // image base
    put32(&mut p, o + 32, 0x1000); // section alignment
    put32(&mut p, o + 36, 0x200); // file alignment
    put32(&mut p, o + 56, 0x2000); // size of image
    put32(&mut p, o + 60, 0x200); // size of headers
    put16(&mut p, o + 68, 10); // EFI application
    put64(&mut p, o + 72, 0x10000);
    put64(&mut p, o + 80, 0x1000);
    put64(&mut p, o + 88, 0x10000);
    put64(&mut p, o + 96, 0x1000);
    put32(&mut p, o + 108, 16); // data directories
    let s = o + 240;
    p[s..s + 5].copy_from_slice(b".text");
    put32(&mut p, s + 8, 0x200); // virtual size
    put32(&mut p, s + 12, 0x1000);
    put32(&mut p, s + 16, 0x200); // raw size
    put32(&mut p, s + 20, 0x200); // raw pointer
    put32(&mut p, s + 36, 0x6000_0020);
    for (i, b) in p[0x200..0x400].iter_mut().enumerate() {
        *b = (i * 7 + 1) as u8;
    }
    p[0x200] = 0xc3;
    p
}

#[test]
fn a_signed_image_verifies_against_its_certificate_or_the_one_that_issued_it() {
    let img = file("tiny-signer.efi");
    let v = verify(&img, &trust(&["root.pem"])).unwrap();
    assert_eq!(v.signer, "leapboot test signer");
    assert_eq!(v.anchor, "leapboot test root");
    assert_eq!(v.anchor_file, "root.pem");
    let v = verify(&img, &trust(&["signer.der"])).unwrap();
    assert_eq!(v.anchor, "leapboot test signer");
    // A 4096-bit self-signed key, trusted among others.
    let img = file("tiny-other.efi");
    let v = verify(&img, &trust(&["root.pem", "other.pem"])).unwrap();
    assert_eq!(
        (v.signer.as_str(), v.anchor_file.as_str()),
        ("leapboot other", "other.pem")
    );
}

/// A UKI as leapboot's own builder lays it out (the QEMU scenarios' `@uki`).
fn tiny_uki() -> Vec<u8> {
    crate::entry::uki::pe::build(
        0x8664,
        &[
            (".osrel", b"ID=test\n"),
            (".cmdline", b"console=ttyS0\n"),
            (".linux", &[0x5a; 3000]),
        ],
    )
}

#[test]
fn a_signed_uki_verifies_and_its_sections_are_covered() {
    let img = file("uki-signer.efi");
    let t = trust(&["root.pem"]);
    assert_eq!(verify(&img, &t).unwrap().signer, "leapboot test signer");
    assert_eq!(verify(&tiny_uki(), &t), Err(SigError::Unsigned));
    let at = img.windows(3000).position(|w| w == [0x5a; 3000]).unwrap() + 1500;
    let mut changed = img.clone();
    changed[at] = 0;
    assert!(matches!(
        verify(&changed, &t),
        Err(SigError::Changed { .. })
    ));
}

#[test]
fn an_untrusted_signer_is_named() {
    let img = file("tiny-signer.efi");
    let e = verify(&img, &trust(&["other.pem"])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "it is signed by 'leapboot test signer', which is not one of the trusted certificates ('leapboot other' (other.pem)) and is not certified by one"
    );
    assert_eq!(verify(&img, &Trust::default()), Err(SigError::NoTrust));
}

#[test]
fn unsigned_changed_and_forged_images_are_refused() {
    let t = trust(&["root.pem"]);
    assert_eq!(verify(&tiny_pe(), &t), Err(SigError::Unsigned));
    let signed = file("tiny-signer.efi");
    // The builder made the fixtures: the signed image starts as it does (up to the checksum
    // sbsign fills in) and carries its section.
    assert_eq!(signed[..0x58 + 64], tiny_pe()[..0x58 + 64]);
    assert_eq!(signed[0x200..0x400], tiny_pe()[0x200..0x400]);
    let mut changed = signed.clone();
    changed[0x300] ^= 1;
    assert_eq!(
        verify(&changed, &t),
        Err(SigError::Changed {
            signer: "leapboot test signer".into()
        })
    );
    // The checksum field is not hashed: changing it changes nothing.
    let mut sum = signed.clone();
    sum[0x58 + 64] ^= 0xff;
    assert!(verify(&sum, &t).is_ok());
    // The RSA signature is the signature blob's last bytes (no unsigned attributes).
    let l = authenticode::layout(&signed).unwrap();
    let blob = &authenticode::signatures(&signed, &l).unwrap()[0];
    let end = l.certs.0 as usize + 8 + blob.len();
    let mut forged = signed.clone();
    forged[end - 10] ^= 0x40;
    assert_eq!(
        verify(&forged, &t),
        Err(SigError::BadSignature {
            signer: "leapboot test signer".into()
        })
    );
    assert!(matches!(
        verify(&b"hello".to_vec(), &t),
        Err(SigError::NotPe(_))
    ));
}

#[test]
fn certificates_load_from_pem_and_der_and_bad_ones_are_refused() {
    let mut t = Trust::default();
    assert_eq!(t.add("root.pem", &file("root.pem")), Ok(1));
    assert_eq!(t.add("signer.der", &file("signer.der")), Ok(1));
    let both = [file("root.pem"), file("other.pem")].concat();
    assert_eq!(t.add("both.pem", &both), Ok(2));
    assert!(t
        .add(
            "x",
            b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"
        )
        .is_err());
    assert!(t.add("x", b"not a certificate").is_err());
    assert_eq!(t.names().len(), 4);
}

#[test]
fn signing_certs_that_cannot_be_read_are_named_and_the_others_count() {
    let paths = [
        "root.pem".to_string(),
        "missing.pem".to_string(),
        "tiny.efi".to_string(),
    ];
    let (t, problems) = load_trust(&paths, |p| {
        if p == "tiny.efi" {
            Ok(b"not a certificate".to_vec())
        } else {
            std::fs::read(format!("{DIR}/{p}"))
        }
    });
    assert_eq!(t.names(), ["'leapboot test root' (root.pem)"]);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].starts_with("signing_certs: missing.pem: "),
        "{problems:?}"
    );
    assert!(
        problems[1].starts_with("signing_certs: tiny.efi: "),
        "{problems:?}"
    );
}

proptest! {
    /// Whatever the bytes (a signed image with any byte changed, or any bytes), the check
    /// ends with an answer, never a panic; a change outside the unhashed fields never passes.
    #[test]
    fn any_change_to_a_signed_image_is_refused_or_harmless(at in 0usize..4096, bit in 0u8..8) {
        let signed = file("tiny-signer.efi");
        let t = trust(&["root.pem"]);
        let mut img = signed.clone();
        let at = at % img.len();
        img[at] ^= 1 << bit;
        let checksum = 0x58 + 64..0x58 + 68;
        if verify(&img, &t).is_ok() {
            // Only the checksum or bytes the signature does not cover (padding, or DER the
            // parser skips) may change and still pass.
            let l = authenticode::layout(&signed).unwrap();
            prop_assert!(checksum.contains(&at) || at as u64 >= l.certs.0, "byte {at}");
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let mut img = tiny_pe();
        img.extend_from_slice(&bytes);
        let _ = verify(&img, &trust(&["root.pem"]));
        let _ = authenticode::parse(&bytes);
        let _ = x509::Cert::parse(&bytes);
    }
}

/// Writes the fixtures: a root CA and a signer it issued (RSA 2048), an unrelated
/// self-signed 4096-bit certificate, and the tiny image signed by each with `sbsign`.
#[test]
#[ignore = "needs openssl and sbsigntool; regenerates checked-in fixtures"]
fn regenerate_pesig_fixtures() {
    use std::process::Command;
    let run = |args: &[&str]| {
        let ok = Command::new(args[0])
            .args(&args[1..])
            .current_dir(DIR)
            .status()
            .unwrap()
            .success();
        assert!(ok, "{args:?}");
    };
    let sign = |who: &str, from: &str, to: &str| {
        let (key, cert) = (format!("{who}.key"), format!("{who}.pem"));
        run(&[
            "sbsign", "--key", &key, "--cert", &cert, "--output", to, from,
        ]);
    };
    std::fs::create_dir_all(DIR).unwrap();
    std::fs::write(format!("{DIR}/tiny.efi"), tiny_pe()).unwrap();
    let days = "36500";
    let self_signed = |key: &str, who: &str, subject: &str| {
        let (k, c) = (format!("{who}.key"), format!("{who}.pem"));
        run(&[
            "openssl", "req", "-new", "-x509", "-newkey", key, "-nodes", "-keyout", &k, "-out", &c,
            "-subj", subject, "-days", days, "-sha256",
        ]);
    };
    self_signed("rsa:2048", "root", "/CN=leapboot test root");
    run(&[
        "openssl",
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "signer.key",
        "-out",
        "signer.csr",
        "-subj",
        "/O=leapboot/CN=leapboot test signer",
        "-sha256",
    ]);
    run(&[
        "openssl",
        "x509",
        "-req",
        "-in",
        "signer.csr",
        "-CA",
        "root.pem",
        "-CAkey",
        "root.key",
        "-CAcreateserial",
        "-out",
        "signer.pem",
        "-days",
        days,
        "-sha256",
    ]);
    run(&[
        "openssl",
        "x509",
        "-in",
        "signer.pem",
        "-outform",
        "DER",
        "-out",
        "signer.der",
    ]);
    self_signed("rsa:4096", "other", "/CN=leapboot other");
    sign("signer", "tiny.efi", "tiny-signer.efi");
    sign("other", "tiny.efi", "tiny-other.efi");
    run(&["sbverify", "--cert", "signer.pem", "tiny-signer.efi"]);
    std::fs::write(format!("{DIR}/uki.efi"), tiny_uki()).unwrap();
    sign("signer", "uki.efi", "uki-signer.efi");
    for f in [
        "root.key",
        "signer.key",
        "other.key",
        "signer.csr",
        "root.srl",
        "signer.pem",
        "tiny.efi",
        "uki.efi",
    ] {
        let _ = std::fs::remove_file(format!("{DIR}/{f}"));
    }
}
