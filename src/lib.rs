//! leapboot: an initramfs-resident kexec bootloader.
//!
//! The library holds everything; two thin front ends use it: `init/` (PID 1 in the
//! initramfs) and `src/main.rs` (the `leapboot` command on a running system). The flow is
//! one direction: [`discover`] → [`disk`] → [`partition`] → [`probe`] → [`fs`] → [`entry`]
//! (through [`pipeline`]) → [`kexec`]. See ARCHITECTURE.md for the map.

#![warn(missing_docs)]

pub mod budget;
pub mod cmdline;
pub mod config;
pub mod discover;
pub mod disk;
pub mod entry;
pub mod fault;
pub mod fs;
pub mod fuzzing;
pub mod glob;
pub mod host;
pub mod kexec;
pub mod kmod;
pub mod lockdown;
pub mod logger;
pub mod lvm;
pub mod md;
pub mod measure;
pub mod menu;
pub mod net;
pub mod partition;
pub mod pesig;
pub mod pipeline;
pub mod probe;
pub mod sanitize;
pub mod session;
pub mod tpm;
pub mod trust;
pub mod version;

#[cfg(test)]
mod testutil;

/// Where leapboot mounts volumes it cannot read in userspace (unmounted before kexec).
pub const MOUNT_ROOT: &str = "/run/leapboot";
