//! Loading an entry with `kexec_file_load(2)` and jumping into it.
//!
//! [`load`] checks the command line against the new kernel's limit first, copies the kernel
//! into a memfd and every initrd, in order, into one memfd (each padded to 4 bytes, which the
//! kernel's initramfs unpacker expects between concatenated archives), and hands both to the
//! kernel. A refused load is an error with the errno explained; nothing is left half-done.
//! [`exec`] unmounts leapboot's mounts, syncs and reboots into the loaded kernel.
//!
//! A unified kernel image ([`EntryKind::Uki`]) is streamed once through its volume: `.linux`
//! goes into the kernel memfd, `.ucode` then `.initrd` (each padded to 4 bytes) start the
//! initrd memfd, and the entry's own initrds follow. The stub itself never runs. The command
//! line is the one given (the entry's, which discovery took from `.cmdline`); an empty one is
//! replaced by the UKI's `.cmdline`, as the systemd stub does when its loader passes none.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;

use crate::entry::uki::{self, Part, UkiError};
use crate::entry::{BootEntry, EntryKind, FileRef};
use crate::fs::BootFs;
use crate::pipeline::Volumes;

/// Largest kernel image accepted.
pub const MAX_KERNEL_BYTES: u64 = 256 << 20;
/// Largest total of all initrds accepted.
pub const MAX_INITRD_BYTES: u64 = 2 << 30;
/// x86's COMMAND_LINE_SIZE, the running kernel's own limit (including the NUL).
const ARCH_CMDLINE_SIZE: usize = 2048;

/// Why an entry could not be loaded.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each variant is documented by its message
pub enum KexecError {
    #[error("{file}: volume not found")]
    NoVolume { file: FileRef },
    // FsError names the path itself.
    #[error("{}:{source}", file.volume)]
    Read {
        file: FileRef,
        source: crate::fs::FsError,
    },
    #[error("{file}: {source}")]
    Uki { file: FileRef, source: UkiError },
    #[error("the command line is {len} bytes; the kernel accepts at most {max}")]
    CmdlineTooLong { len: usize, max: usize },
    #[error("the command line contains a NUL byte")]
    CmdlineNul,
    // NetError names the URL itself.
    #[error("{source}")]
    Net {
        file: FileRef,
        source: crate::net::fetch::NetError,
    },
    #[error("cannot create a memory file: {0}")]
    Memfd(std::io::Error),
    #[error("kexec_file_load refused {kernel}: {}", explain(*.errno))]
    Load {
        kernel: FileRef,
        errno: nix::errno::Errno,
    },
    /// Refused by a locked-down kernel: the words say why (unsigned, or a signature that
    /// does not verify against the kernel's keyrings).
    #[error("kexec_file_load refused {kernel}: {why} ({errno})")]
    Locked {
        kernel: FileRef,
        why: String,
        errno: nix::errno::Errno,
    },
    /// `require_signed`: leapboot's own Authenticode check refused the image.
    #[error("{file} is refused (require_signed): {source}")]
    Unsigned {
        file: FileRef,
        source: crate::pesig::SigError,
    },
    #[error("reboot into the loaded kernel failed: {0}")]
    Reboot(nix::errno::Errno),
    #[error("unloading the loaded kernel failed: {}", explain(*.0))]
    Unload(nix::errno::Errno),
    #[error("{0}")]
    Measure(#[from] crate::measure::MeasureError),
}

/// What an errno from `kexec_file_load` means for the user.
pub fn explain(e: nix::errno::Errno) -> String {
    use nix::errno::Errno::*;
    let why = match e {
        EPERM => "not permitted: the running kernel is locked down (Secure Boot lockdown) or leapboot lacks CAP_SYS_BOOT",
        EKEYREJECTED => "the kernel's signature was rejected: this kernel only kexecs signed images it trusts",
        EBADMSG => "the kernel's signature is malformed",
        ENODATA => "the kernel is not signed: this kernel only kexecs signed images it trusts",
        ENOKEY => "the kernel's signing key is not in any keyring this kernel trusts",
        ENOEXEC => "not a kernel image this kernel can kexec (wrong format or architecture)",
        ENOMEM => "not enough memory for the kernel and initrd",
        EINVAL => "invalid arguments (command line too long for the new kernel, or a bad image)",
        EBUSY => "a kexec image is already being loaded",
        ENOSYS => "the running kernel was built without kexec_file_load",
        _ => "",
    };
    if why.is_empty() {
        e.desc().to_string()
    } else {
        format!("{} ({})", why, e)
    }
}

/// The command-line limit of a bzImage (boot protocol ≥ 2.06 stores it in the setup header),
/// capped by the running kernel's own limit. Length excludes the NUL.
pub fn cmdline_limit(header: &[u8]) -> usize {
    let mut max = ARCH_CMDLINE_SIZE;
    if header.len() >= 0x23C && &header[0x202..0x206] == b"HdrS" {
        let version = u16::from_le_bytes([header[0x206], header[0x207]]);
        let size = if version >= 0x206 {
            u32::from_le_bytes([header[0x238], header[0x239], header[0x23A], header[0x23B]])
                as usize
        } else {
            255
        };
        // cmdline_size excludes the NUL; COMMAND_LINE_SIZE includes it.
        max = max.min(size.saturating_add(1));
    }
    max - 1
}

fn memfd(name: &str) -> Result<File, KexecError> {
    let name = CString::new(name).unwrap_or_default();
    let fd = nix::sys::memfd::memfd_create(name.as_c_str(), nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(|e| KexecError::Memfd(e.into()))?;
    Ok(File::from(fd))
}

/// How often (in bytes) progress is reported.
pub const PROGRESS_STEP: u64 = 4 << 20;

/// A progress callback: the file being read, bytes copied so far, its size. Called before
/// the first byte, every [`PROGRESS_STEP`] bytes and after the last.
pub type OnProgress<'a> = &'a mut dyn FnMut(&FileRef, u64, u64);

/// A writer that reports the bytes passing through it.
struct Counting<'a> {
    out: &'a mut File,
    file: &'a FileRef,
    done: u64,
    total: u64,
    next: u64,
    progress: &'a mut dyn FnMut(&FileRef, u64, u64),
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.done += n as u64;
        if self.done >= self.next {
            self.next = self.done + PROGRESS_STEP;
            (self.progress)(self.file, self.done, self.total);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

fn copy_into(
    vols: &Volumes,
    f: &FileRef,
    out: &mut File,
    max: u64,
    progress: OnProgress<'_>,
) -> Result<u64, KexecError> {
    if vols.fs(&f.volume).is_none() {
        if let Some(url) = crate::net::netfs::url_of(f) {
            return copy_url(&url, f, out, max, progress);
        }
    }
    let fs = vols
        .fs(&f.volume)
        .ok_or_else(|| KexecError::NoVolume { file: f.clone() })?;
    let total = fs.metadata(&f.path).map_or(0, |m| m.len);
    progress(f, 0, total);
    let mut w = Counting {
        out,
        file: f,
        done: 0,
        total,
        next: PROGRESS_STEP,
        progress,
    };
    let n = fs
        .copy_to(&f.path, &mut w, max)
        .map_err(|source| KexecError::Read {
            file: f.clone(),
            source,
        })?;
    (w.progress)(f, n, total.max(n));
    Ok(n)
}

/// A network transfer reports progress at least this often while bytes arrive.
pub const NET_PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Streams a network file (its volume is a server URL) into `out`, with progress every
/// [`PROGRESS_STEP`] bytes or [`NET_PROGRESS_EVERY`], bounded by `max`, the transfer limits and the loader's cancel
/// flag ([`crate::net::fetch::LOADER_CANCEL`]).
fn copy_url(
    url: &crate::net::url::Url,
    f: &FileRef,
    out: &mut File,
    max: u64,
    progress: OnProgress<'_>,
) -> Result<u64, KexecError> {
    use crate::net::fetch::{fetch, global, Control, Limits, Progress, LOADER_CANCEL};
    progress(f, 0, 0);
    let mut next = PROGRESS_STEP;
    let mut last = None;
    let mut told = std::time::Instant::now();
    let mut report = |p: &Progress| {
        // Every PROGRESS_STEP bytes, and every second of a slow transfer.
        let slow = told.elapsed() >= NET_PROGRESS_EVERY && p.bytes > 0;
        if p.bytes >= next || p.done || slow {
            next = p.bytes + PROGRESS_STEP;
            told = std::time::Instant::now();
            progress(f, p.bytes, p.total.unwrap_or(0));
        }
        last = Some(*p);
    };
    let mut ctl = Control {
        cancel: Some(&LOADER_CANCEL),
        progress: Some(&mut report),
    };
    let limits = Limits {
        max_bytes: max,
        ..Limits::default()
    };
    let n = fetch(url, out, &global(), limits, &mut ctl).map_err(|source| KexecError::Net {
        file: f.clone(),
        source,
    })?;
    if let Some(p) = last {
        log::info!("fetched {url}: {}", p.line());
    }
    Ok(n)
}

/// Loads `entry` with `cmdline` as the next kernel. After `Ok`, [`exec`] boots it.
/// `progress` hears about every file read (for a "Loading ..." display).
pub fn load(
    entry: &BootEntry,
    cmdline: &str,
    vols: &Volumes,
    progress: OnProgress<'_>,
) -> Result<(), KexecError> {
    prepare(entry, cmdline, vols, progress)?.load(entry)
}

/// The certificates `require_signed` checks against; `None`: not required.
static SIGNERS: std::sync::Mutex<Option<crate::pesig::Trust>> = std::sync::Mutex::new(None);

/// Largest UKI copied whole into memory for its signature check.
const MAX_UKI_IMAGE_BYTES: u64 = MAX_KERNEL_BYTES + MAX_INITRD_BYTES;

/// `require_signed` (from `/etc/leapboot.toml`): from now on every kernel, and every UKI as
/// a whole, must carry an Authenticode signature that verifies against `trust` (see
/// [`crate::pesig`]), whether or not the running kernel is locked down. `None` turns it off.
pub fn require_signed(trust: Option<crate::pesig::Trust>) {
    *SIGNERS.lock().unwrap_or_else(|e| e.into_inner()) = trust;
}

fn signers() -> Option<crate::pesig::Trust> {
    SIGNERS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn check_signed(
    file: &FileRef,
    image: &File,
    trust: &crate::pesig::Trust,
) -> Result<(), KexecError> {
    match crate::pesig::verify(image, trust) {
        Ok(v) => {
            log::info!(
                "{file}: signed by '{}', trusted through '{}' ({})",
                v.signer,
                v.anchor,
                v.anchor_file
            );
            Ok(())
        }
        Err(source) => Err(KexecError::Unsigned {
            file: file.clone(),
            source,
        }),
    }
}

/// A memfd seen as a volume holding one file (any path names it): a checked UKI is split
/// from here.
struct Held(File);

impl BootFs for Held {
    fn metadata(&self, _: &str) -> Result<crate::fs::Metadata, crate::fs::FsError> {
        Ok(crate::fs::Metadata {
            kind: crate::fs::FileKind::File,
            len: crate::pesig::Image::len(&self.0),
        })
    }

    fn read_dir(&self, path: &str) -> Result<Vec<crate::fs::DirEntry>, crate::fs::FsError> {
        Err(crate::fs::FsError::NotADir(path.to_string()))
    }

    fn copy_to(
        &self,
        path: &str,
        out: &mut dyn Write,
        max: u64,
    ) -> Result<u64, crate::fs::FsError> {
        let len = crate::pesig::Image::len(&self.0);
        if len > max {
            return Err(crate::fs::FsError::TooLarge {
                path: path.to_string(),
                len,
                max,
            });
        }
        self.copy_range_to(path, 0, len, out)
    }

    fn read_at(
        &self,
        path: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, crate::fs::FsError> {
        std::os::unix::fs::FileExt::read_at(&self.0, buf, offset).map_err(|e| {
            crate::fs::FsError::Io {
                path: path.to_string(),
                message: e.to_string(),
            }
        })
    }
}

/// An entry's files read into memfds and its command line checked: what
/// [`Prepared::load`] hands to `kexec_file_load`.
pub struct Prepared {
    kernel: File,
    initrd: Option<File>,
    cmdline: CString,
    /// What [`exec`] extends into the TPM before it boots this (None: not measured).
    measured: Option<Vec<crate::tpm::eventlog::Event>>,
}

/// Reads `entry`'s kernel and initrds into memfds and checks `cmdline` against the kernel's
/// limit; nothing is loaded yet. With a TPM, the memfds' bytes and the final command line
/// are hashed for [`crate::measure`] (and the event log appended to the initrd).
pub fn prepare(
    entry: &BootEntry,
    cmdline: &str,
    vols: &Volumes,
    progress: OnProgress<'_>,
) -> Result<Prepared, KexecError> {
    crate::measure::check_required()?;
    let trust = signers();
    let (kernel, initrd, cmdline) = match entry.kind {
        EntryKind::Linux => prepare_linux(entry, cmdline, vols, progress, trust.as_ref())?,
        EntryKind::Uki => {
            let held;
            let mut checked = false;
            let fs: &dyn BootFs = match &trust {
                None => vols
                    .fs(&entry.kernel.volume)
                    .ok_or_else(|| KexecError::NoVolume {
                        file: entry.kernel.clone(),
                    })?,
                Some(trust) => {
                    // The image is checked in memory and split from there: what was
                    // checked is what boots, whatever the disk returns on a second read.
                    let mut image = memfd("leapboot-uki")?;
                    copy_into(
                        vols,
                        &entry.kernel,
                        &mut image,
                        MAX_UKI_IMAGE_BYTES,
                        progress,
                    )?;
                    check_signed(&entry.kernel, &image, trust)?;
                    held = Held(image);
                    checked = true;
                    &held
                }
            };
            // The image's reading was reported while it was copied for the check; its
            // split from memory is not a second "Loading".
            let mut report = |f: &FileRef, done: u64, total: u64| {
                if !(checked && *f == entry.kernel) {
                    progress(f, done, total)
                }
            };
            prepare_uki(entry, cmdline, fs, vols, &mut report)?
        }
    };
    let measured =
        match crate::measure::prepare(entry, &kernel, initrd.as_ref(), cmdline.as_bytes(), vols) {
            Ok(m) => m,
            Err(e) if crate::measure::mode() == crate::config::MeasuredBoot::Required => {
                return Err(e.into())
            }
            Err(e) => {
                log::error!("{e}; booting without measuring");
                None
            }
        };
    Ok(Prepared {
        kernel,
        initrd,
        cmdline,
        measured,
    })
}

impl Prepared {
    /// `kexec_file_load`: the kernel checks the image (and its signature where required)
    /// and keeps it as the next kernel, replacing any loaded before (and its measurements:
    /// the new one's are what [`exec`] or [`measure_loaded`] extends).
    pub fn load(self, entry: &BootEntry) -> Result<(), KexecError> {
        let flags: libc::c_ulong = if self.initrd.is_none() {
            0x4 // KEXEC_FILE_NO_INITRAMFS
        } else {
            0
        };
        let initrd_fd = self.initrd.as_ref().map_or(-1, |f| f.as_raw_fd());
        let bytes = self.cmdline.as_bytes_with_nul();
        // SAFETY: valid fds, a NUL-terminated buffer whose length includes the NUL (the kernel
        // rejects a length without it), and flags the kernel defines.
        let r = unsafe {
            libc::syscall(
                libc::SYS_kexec_file_load,
                self.kernel.as_raw_fd(),
                initrd_fd,
                bytes.len() as libc::c_ulong,
                bytes.as_ptr(),
                flags,
            )
        };
        if r != 0 {
            let errno = nix::errno::Errno::last();
            // A refused load leaves the kernel without an image: nothing to measure.
            crate::measure::set_pending(None);
            return Err(self.refused(entry, errno));
        }
        crate::measure::set_pending(self.measured);
        Ok(())
    }

    /// The error for a refused load: under lockdown, why the signature did not do (from
    /// `/sys/kernel/security/lockdown` and the image's PE header).
    fn refused(&self, entry: &BootEntry, errno: nix::errno::Errno) -> KexecError {
        use nix::errno::Errno::*;
        let kernel = entry.kernel.clone();
        // EPERM: lockdown without a signature check; the others come from the signature
        // check itself (ENODATA: no signature, EKEYREJECTED: it does not verify).
        let mode = matches!(errno, EPERM | EKEYREJECTED | EBADMSG | ENODATA | ENOKEY)
            .then(|| std::fs::read_to_string("/sys/kernel/security/lockdown").ok())
            .flatten();
        let Some(mode) = crate::lockdown::lockdown(mode.as_deref()) else {
            return KexecError::Load { kernel, errno };
        };
        let mut head = vec![0u8; 4096];
        let n = std::os::unix::fs::FileExt::read_at(&self.kernel, &mut head, 0).unwrap_or(0);
        let signed = crate::lockdown::signed(&head[..n]);
        // A UKI's signature for the kernel is its .linux's own (the one handed over).
        let name = match entry.kind {
            EntryKind::Uki => format!("the .linux of {kernel}"),
            EntryKind::Linux => kernel.to_string(),
        };
        let why = crate::lockdown::lockdown_refusal(&name, &mode, signed);
        KexecError::Locked { kernel, why, errno }
    }
}

/// Extends the loaded kernel's measurements into the TPM now (the host CLI: the kexec
/// happens later, by the init system). An error is returned only when measured boot is
/// required; otherwise it is logged.
pub fn measure_loaded() -> Result<(), KexecError> {
    match crate::measure::extend_pending() {
        Ok(()) => Ok(()),
        Err(e) if crate::measure::mode() == crate::config::MeasuredBoot::Required => Err(e.into()),
        Err(e) => {
            log::error!("{e}; booting without a complete measurement");
            Ok(())
        }
    }
}

/// A kernel memfd, an initrd memfd if there is anything in it, and the command line.
type Files = (File, Option<File>, CString);

/// A plain kernel: the kernel file, the command line checked, then the initrds.
fn prepare_linux(
    entry: &BootEntry,
    cmdline: &str,
    vols: &Volumes,
    progress: OnProgress<'_>,
    trust: Option<&crate::pesig::Trust>,
) -> Result<Files, KexecError> {
    let mut kernel = memfd("leapboot-kernel")?;
    let klen = copy_into(vols, &entry.kernel, &mut kernel, MAX_KERNEL_BYTES, progress)?;
    if let Some(trust) = trust {
        // Before any initrd is read: a refused kernel costs only its own reading.
        check_signed(&entry.kernel, &kernel, trust)?;
    }
    let c_cmdline = check_cmdline(&mut kernel, klen, cmdline)?;
    log::info!(
        "loaded {} ({:.1} MiB)",
        entry.kernel,
        klen as f64 / 1048576.0
    );
    let initrd = if entry.initrds.is_empty() {
        None
    } else {
        let mut out = memfd("leapboot-initrd")?;
        append_initrds(&mut out, 0, &entry.initrds, vols, progress)?;
        Some(out)
    };
    Ok((kernel, initrd, c_cmdline))
}

/// A unified kernel image: its sections split into the memfds in one pass, the command line
/// checked against `.linux`'s header, then the entry's extra initrds. The image is read
/// from `fs`: its volume, or the memfd its signature was checked in.
fn prepare_uki(
    entry: &BootEntry,
    cmdline: &str,
    fs: &dyn BootFs,
    vols: &Volumes,
    progress: OnProgress<'_>,
) -> Result<Files, KexecError> {
    let mut kernel = memfd("leapboot-kernel")?;
    let mut initrd = memfd("leapboot-initrd")?;
    let uki_len = fs.metadata(&entry.kernel.path).map_or(0, |m| m.len);
    progress(&entry.kernel, 0, uki_len);
    let uki = extract_uki(
        fs,
        &entry.kernel.path,
        &mut kernel,
        &mut initrd,
        MAX_KERNEL_BYTES,
        MAX_INITRD_BYTES,
    )
    .map_err(|e| match e {
        UkiError::Fs(source) => KexecError::Read {
            file: entry.kernel.clone(),
            source,
        },
        source => KexecError::Uki {
            file: entry.kernel.clone(),
            source,
        },
    })?;
    progress(&entry.kernel, uki_len, uki_len);
    let cmdline = uki_cmdline(cmdline, uki.cmdline);
    let c_cmdline = check_cmdline(&mut kernel, uki.kernel_len, &cmdline)?;
    log::info!(
        "loaded {} (.linux {:.1} MiB, .ucode + .initrd {:.1} MiB)",
        entry.kernel,
        uki.kernel_len as f64 / 1048576.0,
        uki.initrd_len as f64 / 1048576.0
    );
    let total = append_initrds(&mut initrd, uki.initrd_len, &entry.initrds, vols, progress)?;
    Ok((kernel, (total > 0).then_some(initrd), c_cmdline))
}

/// The command line for a UKI: the one given, or, if that is empty, the image's `.cmdline`.
fn uki_cmdline(given: &str, own: Option<String>) -> String {
    match own {
        Some(own) if given.trim().is_empty() => {
            log::info!("no command line given: using the image's .cmdline");
            own
        }
        _ => given.to_string(),
    }
}

/// What [`extract_uki`] put where.
#[derive(Debug, PartialEq, Eq)]
struct Extracted {
    /// Bytes of `.linux` in the kernel file.
    kernel_len: u64,
    /// Bytes in the initrd file: `.ucode` and `.initrd`, each padded to 4 bytes.
    initrd_len: u64,
    /// The `.cmdline` section, cleaned, if there is one.
    cmdline: Option<String>,
}

fn pad4(n: u64) -> u64 {
    n.div_ceil(4) * 4
}

/// Streams UKI `path` once: `.linux` into `kernel`, `.ucode` then `.initrd` into `initrd`
/// (each padded to 4 bytes; `initrd` is left positioned at its end for more), `.cmdline` into
/// the result. Section sizes are checked against the limits before anything is read.
fn extract_uki(
    fs: &dyn BootFs,
    path: &str,
    kernel: &mut File,
    initrd: &mut File,
    max_kernel: u64,
    max_initrd: u64,
) -> Result<Extracted, UkiError> {
    let (s, _) = uki::open(fs, path)?;
    let len = |r: &Option<std::ops::Range<u64>>| r.as_ref().map_or(0, |r| r.end - r.start);
    let kernel_len = s.linux.end - s.linux.start;
    if kernel_len > max_kernel {
        return Err(UkiError::TooLarge {
            name: ".linux",
            len: kernel_len,
            max: max_kernel,
        });
    }
    let initrd_at = pad4(len(&s.ucode));
    let initrd_len = initrd_at + pad4(len(&s.initrd));
    if initrd_len > max_initrd {
        return Err(UkiError::TooLarge {
            name: ".ucode + .initrd",
            len: initrd_len,
            max: max_initrd,
        });
    }
    let mut cmdline = vec![0u8; len(&s.cmdline) as usize];
    let (mut k, mut u, mut i) = (&*kernel, &*initrd, &*initrd);
    let mut parts = vec![Part {
        range: s.linux.clone(),
        sink: &mut k,
        at: 0,
    }];
    if let Some(r) = &s.ucode {
        parts.push(Part {
            range: r.clone(),
            sink: &mut u,
            at: 0,
        });
    }
    if let Some(r) = &s.initrd {
        parts.push(Part {
            range: r.clone(),
            sink: &mut i,
            at: initrd_at,
        });
    }
    if let Some(r) = &s.cmdline {
        parts.push(Part {
            range: r.clone(),
            sink: &mut cmdline,
            at: 0,
        });
    }
    uki::read_parts(fs, path, uki::MAX_UKI_BYTES, &mut parts)?;
    drop(parts);
    // The padding: zeros up to `initrd_len`, and the position there for the extra initrds.
    initrd.set_len(initrd_len).map_err(UkiError::Sink)?;
    initrd
        .seek(SeekFrom::Start(initrd_len))
        .map_err(UkiError::Sink)?;
    Ok(Extracted {
        kernel_len,
        initrd_len,
        cmdline: s.cmdline.map(|_| uki::clean_cmdline(&uki::text(&cmdline))),
    })
}

/// Checks `cmdline` against the limit in `kernel`'s setup header (reading its first bytes).
fn check_cmdline(kernel: &mut File, klen: u64, cmdline: &str) -> Result<CString, KexecError> {
    let mut header = vec![0u8; 0x240.min(klen as usize)];
    kernel.seek(SeekFrom::Start(0)).map_err(KexecError::Memfd)?;
    kernel.read_exact(&mut header).map_err(KexecError::Memfd)?;
    let max = cmdline_limit(&header);
    if cmdline.len() > max {
        return Err(KexecError::CmdlineTooLong {
            len: cmdline.len(),
            max,
        });
    }
    CString::new(cmdline).map_err(|_| KexecError::CmdlineNul)
}

/// Appends `files` to `out` (which holds `total` bytes, a multiple of 4), each padded to 4
/// bytes, within [`MAX_INITRD_BYTES`] in all. Returns the new total.
fn append_initrds(
    out: &mut File,
    mut total: u64,
    files: &[FileRef],
    vols: &Volumes,
    progress: OnProgress<'_>,
) -> Result<u64, KexecError> {
    for f in files {
        let n = copy_into(
            vols,
            f,
            out,
            MAX_INITRD_BYTES.saturating_sub(total),
            &mut *progress,
        )?;
        total += n;
        let pad = (4 - total % 4) % 4;
        out.write_all(&[0u8; 3][..pad as usize])
            .map_err(KexecError::Memfd)?;
        total += pad;
        log::info!("loaded {f} ({:.1} MiB)", n as f64 / 1048576.0);
    }
    Ok(total)
}

/// Unloads a loaded kernel (after a load whose boot was then abandoned).
pub fn unload() {
    crate::measure::set_pending(None);
    // SAFETY: KEXEC_FILE_UNLOAD ignores the fds and the buffer.
    unsafe {
        libc::syscall(
            libc::SYS_kexec_file_load,
            -1,
            -1,
            0 as libc::c_ulong,
            std::ptr::null::<u8>(),
            0x1 as libc::c_ulong,
        );
    }
}

/// Extends the loaded kernel's measurements into the TPM (see [`crate::measure`]), unmounts
/// everything leapboot mounted, syncs, and reboots into the loaded kernel. Returns only on
/// failure (a failed measurement when measured boot is required is one).
pub fn exec() -> KexecError {
    if let Err(e) = measure_loaded() {
        return e;
    }
    unmount_all(std::path::Path::new(crate::MOUNT_ROOT));
    nix::unistd::sync();
    match nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_KEXEC) {
        Ok(never) => match never {},
        Err(e) => KexecError::Reboot(e),
    }
}

/// As [`unload`], with the kernel's answer (`kexec -u`, `leapboot unload`). Unloading when
/// nothing is loaded succeeds.
pub fn try_unload() -> Result<(), KexecError> {
    crate::measure::set_pending(None);
    let empty = b"\0";
    // SAFETY: no fds are used with KEXEC_FILE_UNLOAD; the command line is a valid empty
    // string the kernel ignores.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kexec_file_load,
            -1 as libc::c_int,
            -1 as libc::c_int,
            0 as libc::c_ulong,
            empty.as_ptr(),
            0x1 as libc::c_ulong, // KEXEC_FILE_UNLOAD
        )
    };
    if r != 0 {
        return Err(KexecError::Unload(nix::errno::Errno::last()));
    }
    Ok(())
}

/// Unmounts every mount point under `root`, deepest first.
fn unmount_all(root: &std::path::Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| std::path::Path::new(p).starts_with(root))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        if let Err(e) = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH) {
            log::warn!("unmount {p}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_file_streams_into_the_memfd_with_progress() {
        use std::io::{Read, Write};
        let body: Vec<u8> = (0..(9u32 << 20)).map(|i| (i % 251) as u8).collect();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let served = body.clone();
        std::thread::spawn(move || {
            for _ in 0..2 {
                let Ok((mut s, _)) = l.accept() else { return };
                let _ = s.read(&mut [0u8; 2048]);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                    served.len()
                );
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(&served);
            }
        });
        let f = FileRef {
            volume: format!("eth0 http://127.0.0.1:{port}"),
            path: "/vmlinuz".into(),
        };
        let mut out = memfd("test").unwrap();
        let mut calls = Vec::new();
        let n = copy_into(
            &Volumes::default(),
            &f,
            &mut out,
            MAX_KERNEL_BYTES,
            &mut |_, done, total| calls.push((done, total)),
        )
        .unwrap();
        assert_eq!(n, body.len() as u64);
        let mut back = Vec::new();
        out.seek(SeekFrom::Start(0)).unwrap();
        out.read_to_end(&mut back).unwrap();
        assert!(back == body, "the memfd holds the file");
        // Start, at most every 4 MiB (progress is also paced in time, so a fast loopback may
        // report none in between), the end (with the announced total).
        assert_eq!(calls.first(), Some(&(0, 0)));
        assert_eq!(calls.last(), Some(&(9 << 20, 9 << 20)));
        assert!(calls.len() >= 2 && calls.len() <= 5, "{calls:?}");
        // Too large for the bound: refused before the body.
        let e = copy_into(
            &Volumes::default(),
            &f,
            &mut memfd("t").unwrap(),
            1024,
            &mut |_, _, _| {},
        );
        assert!(matches!(e, Err(KexecError::Net { .. })), "{e:?}");
    }

    #[test]
    fn cmdline_limit_from_the_setup_header() {
        let mut h = vec![0u8; 0x240];
        assert_eq!(cmdline_limit(&h), 2047, "not a bzImage: the arch limit");
        h[0x202..0x206].copy_from_slice(b"HdrS");
        h[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        h[0x238..0x23C].copy_from_slice(&2047u32.to_le_bytes());
        assert_eq!(cmdline_limit(&h), 2047);
        h[0x238..0x23C].copy_from_slice(&511u32.to_le_bytes());
        assert_eq!(cmdline_limit(&h), 511);
        h[0x206..0x208].copy_from_slice(&0x0204u16.to_le_bytes());
        assert_eq!(cmdline_limit(&h), 255, "old boot protocol: 255 bytes");
        assert_eq!(cmdline_limit(&h[..10]), 2047, "short file");
    }

    /// A UKI at `/EFI/Linux/t.efi` in a temporary directory, and the directory's BootFs.
    fn uki_fs(sections: &[(&str, &[u8])]) -> (tempfile::TempDir, crate::fs::dir::DirFs) {
        let dir = tempfile::tempdir().unwrap();
        let machine = uki::MACHINE.unwrap_or(object::pe::IMAGE_FILE_MACHINE_AMD64.0);
        std::fs::create_dir_all(dir.path().join("EFI/Linux")).unwrap();
        std::fs::write(
            dir.path().join("EFI/Linux/t.efi"),
            uki::pe::build(machine, sections),
        )
        .unwrap();
        let fs = crate::fs::dir::DirFs::new(dir.path());
        (dir, fs)
    }

    fn contents(f: &mut File) -> Vec<u8> {
        let mut v = Vec::new();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    }

    #[test]
    fn a_uki_is_split_into_kernel_and_initrd() {
        let kernel_bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (_dir, fs) = uki_fs(&[
            (".osrel", b"ID=t\n"),
            (".cmdline", b"console=ttyS0 marker=uki\n\0"),
            (".initrd", b"INITRD"),
            (".ucode", b"UCODE"),
            (".linux", &kernel_bytes),
        ]);
        let (mut k, mut i) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
        let x = extract_uki(&fs, "/EFI/Linux/t.efi", &mut k, &mut i, u64::MAX, u64::MAX).unwrap();
        assert_eq!(
            x,
            Extracted {
                kernel_len: 300_000,
                initrd_len: 16,
                cmdline: Some("console=ttyS0 marker=uki".into()),
            }
        );
        // The initrd file is positioned at its end, for the entry's own initrds.
        i.write_all(b"EXTRA").unwrap();
        assert_eq!(contents(&mut k), kernel_bytes);
        assert_eq!(contents(&mut i), b"UCODE\0\0\0INITRD\0\0EXTRA");
    }

    #[test]
    fn a_uki_without_initrds_or_cmdline() {
        let (_dir, fs) = uki_fs(&[(".linux", b"KERNEL")]);
        let (mut k, mut i) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
        let x = extract_uki(&fs, "/EFI/Linux/t.efi", &mut k, &mut i, u64::MAX, u64::MAX).unwrap();
        assert_eq!((x.kernel_len, x.initrd_len, x.cmdline), (6, 0, None));
        assert_eq!(contents(&mut k), b"KERNEL");
        assert!(contents(&mut i).is_empty());
    }

    #[test]
    fn uki_limits_and_damage_are_errors() {
        let (_dir, fs) = uki_fs(&[(".ucode", b"U"), (".initrd", b"II"), (".linux", b"KERNEL")]);
        let (mut k, mut i) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
        let e = extract_uki(&fs, "/EFI/Linux/t.efi", &mut k, &mut i, 5, u64::MAX).unwrap_err();
        assert_eq!(
            e.to_string(),
            "section .linux: 6 bytes is larger than the 5-byte limit"
        );
        let e = extract_uki(&fs, "/EFI/Linux/t.efi", &mut k, &mut i, 6, 7).unwrap_err();
        assert!(e.to_string().contains(".ucode + .initrd: 8 bytes"), "{e}");
        let e = extract_uki(&fs, "/EFI/Linux/none.efi", &mut k, &mut i, 6, 8).unwrap_err();
        assert!(
            matches!(e, UkiError::Fs(crate::fs::FsError::NotFound(_))),
            "{e}"
        );
        std::fs::write(_dir.path().join("EFI/Linux/t.efi"), b"MZ garbage").unwrap();
        let e = extract_uki(&fs, "/EFI/Linux/t.efi", &mut k, &mut i, 6, 8).unwrap_err();
        assert!(matches!(e, UkiError::Pe(_)), "{e}");
    }

    #[test]
    fn a_given_command_line_replaces_the_uki_s_own() {
        assert_eq!(uki_cmdline("edited=1", Some("own=1".into())), "edited=1");
        assert_eq!(uki_cmdline(" ", Some("own=1".into())), "own=1");
        assert_eq!(uki_cmdline("", None), "");
    }

    #[test]
    fn copying_reports_progress_from_start_to_end() {
        let dir = tempfile::tempdir().unwrap();
        let len = 2 * PROGRESS_STEP + 5;
        std::fs::write(dir.path().join("big"), vec![7u8; len as usize]).unwrap();
        let mut vols = Volumes::default();
        vols.add_dir(dir.path());
        let file = FileRef {
            volume: dir.path().display().to_string(),
            path: "/big".into(),
        };
        let mut seen = Vec::new();
        let mut out = tempfile::tempfile().unwrap();
        let n = copy_into(&vols, &file, &mut out, u64::MAX, &mut |f, done, total| {
            assert_eq!(f.path, "/big");
            seen.push((done, total));
        })
        .unwrap();
        assert_eq!(n, len);
        assert_eq!(seen.first(), Some(&(0, len)));
        assert_eq!(seen.last(), Some(&(len, len)));
        // At least one report between start and end (how many depends on the reader's chunk
        // sizes: a step crossed by the last chunk is reported as the end).
        assert!(
            seen.iter()
                .any(|&(done, _)| done >= PROGRESS_STEP && done < len),
            "{seen:?}"
        );
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
        let missing = FileRef {
            path: "/nope".into(),
            ..file
        };
        assert!(copy_into(&vols, &missing, &mut out, u64::MAX, &mut |_, _, _| {}).is_err());
    }

    #[test]
    fn errnos_are_explained() {
        assert!(explain(nix::errno::Errno::EPERM).contains("locked down"));
        assert!(explain(nix::errno::Errno::EKEYREJECTED).contains("signature"));
        assert!(explain(nix::errno::Errno::ENODATA).contains("not signed"));
        assert!(explain(nix::errno::Errno::ENOEXEC).contains("not a kernel"));
        assert!(explain(nix::errno::Errno::ENOMEM).contains("memory"));
    }
}
