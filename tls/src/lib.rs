//! leapboot's TLS client: rustls with the ring provider, trusting only the CA certificates
//! configured (PEM files). Certificates are checked by webpki: a chain to a configured CA,
//! validity dates, and the host name or IP address the URL names.
//!
//! Two users. The host CLI built with the `https` feature of `leapboot` links this library
//! and speaks TLS in-process. `/init` cannot: rustls and ring are ~0.9 MB, more than its
//! 2 MiB budget leaves. It runs the `leapboot-tls` binary of this crate instead, handing it
//! the connected TCP socket and talking plaintext HTTP to it over a socket pair ([`relay`]).

#[cfg(feature = "client")]
use std::sync::Arc;

#[cfg(feature = "client")]
use rustls::pki_types::pem::PemObject;
#[cfg(feature = "client")]
use rustls::pki_types::{CertificateDer, ServerName};

pub mod relay;
#[cfg(feature = "client")]
pub mod sandbox;

/// Largest CA file read.
pub const MAX_CA_FILE: u64 = 1 << 20;
/// Most certificates taken from all CA files.
pub const MAX_CAS: usize = 256;

#[cfg(feature = "client")]
/// Reads the CA certificates of `files` (PEM) into a root store. An empty list is an error
/// (the caller says how to configure one).
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
        return Err("no CA certificate is configured".into());
    }
    Ok(store)
}

#[cfg(feature = "client")]
/// The client configuration trusting the CA certificates of `files`.
pub fn client_config(files: &[String]) -> Result<Arc<rustls::ClientConfig>, String> {
    let roots = roots(files)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let c = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(c))
}

#[cfg(feature = "client")]
/// A client connection to `host` (a DNS name or an IP address, checked in the certificate).
/// The error does not repeat `host` (the caller names it, sanitised).
pub fn connection(
    cfg: Arc<rustls::ClientConfig>,
    host: &str,
) -> Result<rustls::ClientConnection, String> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| format!("not a TLS server name: {e}"))?;
    rustls::ClientConnection::new(cfg, name).map_err(|e| format!("TLS set-up: {e}"))
}

/// The rustls this crate is built on, for its users' types.
#[cfg(feature = "client")]
pub use rustls;
