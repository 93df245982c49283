//! Network boot: fetching files over TFTP and HTTP(S), and the network as a boot source.
//!
//! `url` parses locations, `fetch` holds what every transfer shares (limits, progress, cancel,
//! errors) and dispatches to `tftp` and `http`; `netfs` is a read-only
//! [`BootFs`](crate::fs::BootFs) over a server so the existing parsers read configs from it;
//! `pxe` is pxelinux's config-file search order.

pub mod fetch;
pub mod http;
pub mod netfs;
pub mod pxe;
pub mod source;
pub mod tftp;
#[cfg(feature = "https")]
pub mod tls;
pub mod url;
