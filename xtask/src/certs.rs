//! Throwaway certificates for HTTPS tests, made by `openssl` for one run: a CA (`ca.pem`,
//! `ca.key`), a CA that signed nothing (`wrong-ca.pem`), and a server certificate signed by
//! the first (`server.pem`, `server.key`) for the names given. P-256 keys, valid 2 days.

use std::path::Path;
use std::process::Command;

/// `openssl req` arguments for a new P-256 key, unencrypted.
const NEW_P256_KEY: [&str; 6] = [
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// Makes the files in `dir` (which must exist); `san` is the server's subjectAltName value
/// (`IP:10.0.2.2,DNS:localhost`).
pub fn make(dir: &Path, san: &str) -> anyhow::Result<()> {
    let ossl = |args: &[&str]| -> anyhow::Result<()> {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()?;
        if !out.status.success() {
            anyhow::bail!(
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    };
    let new_key = |args: &[&str]| {
        let mut a = NEW_P256_KEY.to_vec();
        a.extend_from_slice(args);
        ossl(&a)
    };
    for ca in ["ca", "wrong-ca"] {
        new_key(&[
            "-x509",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN=leapboot test {ca}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ])?;
    }
    std::fs::write(
        dir.join("server.ext"),
        format!(
            "subjectAltName={san}\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        ),
    )?;
    new_key(&[
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=leapboot test server",
    ])?;
    ossl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ])
}
