//! HTTPS: TLS verified against the CA certificates configured (`ca_certificates` in
//! `/etc/leapboot.toml`, `--ca` on the command line). No CA configured means no HTTPS at
//! all: the error says how to add one. Certificates are checked by webpki (a chain to a
//! configured CA, validity dates, the host name or IP address).
//!
//! Two ways to speak it, one verifier (the `leapboot-tls` crate, rustls with ring):
//! - built with the cargo feature `https` (the host CLI), in-process;
//! - without it (`/init`, whose 2 MiB budget cannot hold TLS), through the `leapboot-tls`
//!   helper binary of the initramfs ([`helper`]): this process connects the TCP socket and
//!   speaks plaintext HTTP to the helper over a socket pair.

pub mod helper;

#[cfg(feature = "https")]
use std::sync::Arc;

#[cfg(feature = "https")]
use super::fetch::printable;
use super::fetch::FetchConfig;

/// The advice shown when HTTPS is asked for with no CA configured.
pub const NO_CA: &str = "no CA certificate is configured, and leapboot never fetches HTTPS \
unchecked: add `ca_certificates = [\"/etc/leapboot/ca.pem\"]` to /etc/leapboot.toml and put \
that PEM file (the CA that signed the server's certificate) in the initramfs, or give \
`--ca FILE` to `leapboot list`";

/// Refuses HTTPS when no CA is configured, with [`NO_CA`].
pub fn require_ca(cfg: &FetchConfig) -> Result<(), String> {
    if cfg.ca_certificates.is_empty() {
        return Err(NO_CA.to_string());
    }
    Ok(())
}

/// The in-process client configuration for `cfg`, built once per [`FetchConfig`] (after
/// [`require_ca`]).
#[cfg(feature = "https")]
pub fn client(cfg: &FetchConfig) -> Result<Arc<leapboot_tls::rustls::ClientConfig>, String> {
    cfg.tls
        .get_or_init(|| leapboot_tls::client_config(&cfg.ca_certificates))
        .clone()
}

/// An in-process client connection to `host` (a DNS name or an IP address, checked in the
/// certificate).
#[cfg(feature = "https")]
pub fn connection(
    cfg: Arc<leapboot_tls::rustls::ClientConfig>,
    host: &str,
) -> Result<leapboot_tls::rustls::ClientConnection, String> {
    leapboot_tls::connection(cfg, host).map_err(|e| format!("'{}': {e}", printable(host, 64)))
}
