//! The TLS client for HTTPS (cargo feature `https`): rustls with the ring provider, trusting
//! only the CA certificates configured (`ca_certificates` in `/etc/leapboot.toml`). No CA
//! configured means no HTTPS at all: the error says how to add one. Certificates are checked
//! by webpki (chain to a configured CA, validity dates, the host name or IP address).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::fetch::{printable, FetchConfig};

/// Largest CA file read.
const MAX_CA_FILE: u64 = 1 << 20;
/// Most certificates taken from all CA files.
const MAX_CAS: usize = 256;

/// The advice shown when HTTPS is asked for with no CA configured.
pub const NO_CA: &str = "no CA certificate is configured, and leapboot never fetches HTTPS \
unchecked: add `ca_certificates = [\"/etc/leapboot/ca.pem\"]` to /etc/leapboot.toml and put \
that PEM file (the CA that signed the server's certificate) in the initramfs, or give \
`--ca FILE` to `leapboot list`";

/// Reads the CA certificates of `files` (PEM) into a root store.
pub fn roots(files: &[String]) -> Result<rustls::RootCertStore, String> {
    let mut store = rustls::RootCertStore::empty();
    for f in files {
        let len = std::fs::metadata(f)
            .map_err(|e| format!("CA file {f}: {e}"))?
            .len();
        if len > MAX_CA_FILE {
            return Err(format!(
                "CA file {f}: {len} bytes is over the {MAX_CA_FILE}-byte limit"
            ));
        }
        let pem = std::fs::read(f).map_err(|e| format!("CA file {f}: {e}"))?;
        let mut n = 0;
        for (i, c) in CertificateDer::pem_slice_iter(&pem).enumerate() {
            let c = c.map_err(|e| format!("CA file {f}: certificate {}: {e:?}", i + 1))?;
            store
                .add(c)
                .map_err(|e| format!("CA file {f}: certificate {}: {e}", i + 1))?;
            n += 1;
            if store.len() > MAX_CAS {
                return Err(format!("more than {MAX_CAS} CA certificates"));
            }
        }
        if n == 0 {
            return Err(format!("CA file {f}: no PEM certificate in it"));
        }
    }
    if store.is_empty() {
        return Err(NO_CA.to_string());
    }
    Ok(store)
}

/// The client configuration for `cfg`, built once per [`FetchConfig`].
pub fn client(cfg: &FetchConfig) -> Result<Arc<rustls::ClientConfig>, String> {
    cfg.tls
        .get_or_init(|| {
            let roots = roots(&cfg.ca_certificates)?;
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let c = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS set-up: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(c))
        })
        .clone()
}

/// A client connection to `host` (a DNS name or an IP address, checked in the certificate).
pub fn connection(
    cfg: Arc<rustls::ClientConfig>,
    host: &str,
) -> Result<rustls::ClientConnection, String> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| format!("'{}' is not a TLS server name: {e}", printable(host, 64)))?;
    rustls::ClientConnection::new(cfg, name).map_err(|e| format!("TLS set-up: {e}"))
}
