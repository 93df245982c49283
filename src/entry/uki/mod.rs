//! Unified kernel images, Boot Loader Specification Type #2: `/EFI/Linux/*.efi`
//! (<https://uapi-group.org/specifications/specs/boot_loader_specification/>, § Type #2).
//!
//! A UKI is a PE file whose sections carry a kernel (`.linux`), initrds (`.ucode`, `.initrd`),
//! a command line (`.cmdline`), os-release data (`.osrel`) and a kernel version (`.uname`).
//! Listing reads only the head of each file and its small sections, streamed through
//! [`BootFs::copy_to`] and cut short once the last wanted byte arrived; loading
//! ([`crate::kexec`]) streams the big sections straight into their memfds with
//! [`read_parts`]. The section table itself is read by the pure [`pe`] module.
//!
//! Not handled: signatures (the running kernel's `kexec_file_load` checks `.linux`'s own, if it
//! is configured to), addons (`*.efi.extra.d/`), devicetrees (`.dtb`), profiles other than the
//! first (see [`pe::parse`]). A file that is not a UKI is an [`EntryError`], never hiding its
//! siblings. Never writes, never renames (boot counting is read from names, not updated).

pub mod osrel;
pub mod pe;

use std::io::{self, Write};
use std::ops::Range;

use super::{
    bls, BootEntry, EntryError, EntryKind, EntrySource, FileRef, Format, Found, VolumeView,
};
use crate::fs::{BootFs, FileKind, FsError};

/// Where UKIs are, on the ESP and on XBOOTLDR volumes.
const UKI_DIR: &str = "/EFI/Linux";
/// At most this many UKIs are listed from one volume.
const MAX_UKIS: usize = 256;
/// Largest UKI accepted.
pub const MAX_UKI_BYTES: u64 = 512 << 20;

/// The PE machine type UKIs must have to run here (`None`: not checked on this architecture).
#[cfg(target_arch = "x86_64")]
pub const MACHINE: Option<u16> = Some(object::pe::IMAGE_FILE_MACHINE_AMD64.0);
/// The PE machine type UKIs must have to run here (`None`: not checked on this architecture).
#[cfg(target_arch = "aarch64")]
pub const MACHINE: Option<u16> = Some(object::pe::IMAGE_FILE_MACHINE_ARM64.0);
/// The PE machine type UKIs must have to run here (`None`: not checked on this architecture).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub const MACHINE: Option<u16> = None;

/// Why a UKI cannot be listed or loaded. The caller names the volume and file.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each variant is documented by its message
pub enum UkiError {
    // FsError names the path itself.
    #[error("{0}")]
    Fs(#[from] FsError),
    #[error("not a unified kernel image: {0}")]
    Pe(#[from] pe::PeError),
    #[error("built for PE machine {found:#06x}; this machine runs {expected:#06x}")]
    Machine { found: u16, expected: u16 },
    #[error("the file ended after {len} bytes, before its sections did ({needed} bytes)")]
    Short { len: u64, needed: u64 },
    #[error("section {name}: {len} bytes is larger than the {max}-byte limit")]
    TooLarge {
        name: &'static str,
        len: u64,
        max: u64,
    },
    #[error("cannot write a memory file: {0}")]
    Sink(io::Error),
}

/// A destination for bytes that arrive at known offsets: a pre-sized buffer or a file.
pub trait Sink {
    /// Stores `data` at offset `at`.
    fn put(&mut self, at: u64, data: &[u8]) -> io::Result<()>;
}

impl Sink for Vec<u8> {
    /// The buffer does not grow: writes beyond its length fail.
    fn put(&mut self, at: u64, data: &[u8]) -> io::Result<()> {
        let end = (at as usize).checked_add(data.len());
        match end.and_then(|e| self.get_mut(at as usize..e)) {
            Some(dst) => {
                dst.copy_from_slice(data);
                Ok(())
            }
            None => Err(io::Error::other("write beyond the buffer")),
        }
    }
}

/// Positioned writes (`pwrite`): several parts may share one file.
impl Sink for &std::fs::File {
    fn put(&mut self, at: u64, data: &[u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(*self, data, at)
    }
}

/// One wanted byte range of a file and where its bytes go: `sink` at offset `at` onward.
pub struct Part<'a> {
    /// Byte range in the file.
    pub range: Range<u64>,
    /// Destination.
    pub sink: &'a mut dyn Sink,
    /// Offset in the destination of the range's first byte.
    pub at: u64,
}

/// Streams file `path` (at most `max` bytes) once, delivering each part's bytes to its sink,
/// and stops reading after the last wanted byte. Fails if the file ends before that.
pub fn read_parts(
    fs: &dyn BootFs,
    path: &str,
    max: u64,
    parts: &mut [Part<'_>],
) -> Result<(), UkiError> {
    let end = parts.iter().map(|p| p.range.end).max().unwrap_or(0);
    if end == 0 {
        return Ok(());
    }
    let mut w = Splitter {
        pos: 0,
        end,
        parts,
        sink_error: None,
        complete: false,
    };
    let r = fs.copy_to(path, &mut w, max);
    if w.complete {
        return Ok(());
    }
    if let Some(e) = w.sink_error {
        return Err(UkiError::Sink(e));
    }
    match r {
        Ok(len) => Err(UkiError::Short { len, needed: end }),
        Err(e) => Err(UkiError::Fs(e)),
    }
}

/// The `Write` end of [`read_parts`]. After the last wanted byte it fails on purpose, which
/// ends `copy_to`'s loop: a UKI's 100 MiB are not read to list it.
struct Splitter<'p, 'a> {
    pos: u64,
    end: u64,
    parts: &'p mut [Part<'a>],
    sink_error: Option<io::Error>,
    complete: bool,
}

impl Write for Splitter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let start = self.pos;
        let end = start.saturating_add(buf.len() as u64);
        for p in self.parts.iter_mut() {
            let (s, e) = (start.max(p.range.start), end.min(p.range.end));
            if s < e {
                let data = &buf[(s - start) as usize..(e - start) as usize];
                if let Err(err) = p.sink.put(p.at + (s - p.range.start), data) {
                    let msg = err.to_string();
                    self.sink_error = Some(err);
                    return Err(io::Error::other(msg));
                }
            }
        }
        self.pos = end;
        if self.pos >= self.end {
            self.complete = true;
            return Err(io::Error::other("leapboot: every wanted byte was read"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads the section table of UKI `path`: checks its size, reads its head, checks its
/// machine type. Returns the sections and the file's length.
pub fn open(fs: &dyn BootFs, path: &str) -> Result<(pe::Sections, u64), UkiError> {
    let meta = fs.metadata(path)?;
    if meta.kind != FileKind::File {
        return Err(FsError::NotAFile(path.to_string()).into());
    }
    if meta.len > MAX_UKI_BYTES {
        return Err(FsError::TooLarge {
            path: path.to_string(),
            len: meta.len,
            max: MAX_UKI_BYTES,
        }
        .into());
    }
    let mut head = vec![0u8; meta.len.min(pe::HEAD_BYTES) as usize];
    let range = 0..head.len() as u64;
    read_parts(
        fs,
        path,
        MAX_UKI_BYTES,
        &mut [Part {
            range,
            sink: &mut head,
            at: 0,
        }],
    )?;
    let sections = pe::parse(&head, meta.len)?;
    if let Some(expected) = MACHINE {
        if sections.machine != expected {
            return Err(UkiError::Machine {
                found: sections.machine,
                expected,
            });
        }
    }
    Ok((sections, meta.len))
}

/// Reads the small sections (`.cmdline`, `.osrel`, `.uname`) as text: each cut at its first
/// NUL, invalid UTF-8 replaced.
pub fn small_sections(
    fs: &dyn BootFs,
    path: &str,
    s: &pe::Sections,
) -> Result<[Option<String>; 3], UkiError> {
    let ranges = [&s.cmdline, &s.osrel, &s.uname];
    let mut bufs: [Vec<u8>; 3] = Default::default();
    let mut parts = Vec::with_capacity(3);
    for (r, b) in ranges.iter().zip(bufs.iter_mut()) {
        if let Some(r) = r {
            b.resize((r.end - r.start) as usize, 0);
            parts.push(Part {
                range: r.clone(),
                sink: b,
                at: 0,
            });
        }
    }
    read_parts(fs, path, MAX_UKI_BYTES, &mut parts)?;
    drop(parts);
    let text = |r: &Option<Range<u64>>, b: &[u8]| r.as_ref().map(|_| text(b));
    Ok([
        text(ranges[0], &bufs[0]),
        text(ranges[1], &bufs[1]),
        text(ranges[2], &bufs[2]),
    ])
}

/// A text section's content: cut at its first NUL, invalid UTF-8 replaced.
pub fn text(b: &[u8]) -> String {
    let b = b.split(|&c| c == 0).next().unwrap_or_default();
    String::from_utf8_lossy(b).into_owned()
}

/// Finds the UKIs of `vol` (`/EFI/Linux/*.efi`, names matched case-insensitively), sorted
/// like Type #1 entries (BLS § Sorting: sort key `IMAGE_ID`/`ID`, then version newest first,
/// then file name). Title: `PRETTY_NAME`, else `NAME VERSION_ID`, else the id; version:
/// `IMAGE_VERSION`, else `VERSION_ID`, else `.uname`; command line: `.cmdline`, trimmed; id:
/// the file name without `.efi` and without a boot-counting suffix (`+3`, `+0-2`).
pub fn discover(vol: &VolumeView<'_>, _all: &[VolumeView<'_>]) -> Found {
    let mut found = Found::default();
    let err = |file: &str, message: String| EntryError {
        volume: vol.name.to_string(),
        file: file.to_string(),
        line: None,
        message,
    };
    let dir = match find_dir(vol.fs) {
        Ok(Some(d)) => d,
        Ok(None) => return found,
        Err(e) => {
            found.errors.push(err(UKI_DIR, e.to_string()));
            return found;
        }
    };
    let files = match vol.fs.read_dir(&dir) {
        Ok(f) => f,
        Err(e) => {
            found.errors.push(err(&dir, e.to_string()));
            return found;
        }
    };
    let mut listed = Vec::new();
    for f in files.iter().filter(|f| f.kind == FileKind::File) {
        let Some(stem) = strip_suffix_ignore_case(&f.name, ".efi") else {
            continue;
        };
        if stem.is_empty() || f.name.starts_with('.') {
            continue; // hidden files (macOS "._*" metadata among them)
        }
        if listed.len() == MAX_UKIS {
            found.errors.push(err(
                &dir,
                format!("more than {MAX_UKIS} unified kernel images; the rest are ignored"),
            ));
            break;
        }
        let path = format!("{dir}/{}", f.name);
        match entry(vol, &path, stem) {
            Ok(e) => listed.push(e),
            Err(e) => found.errors.push(err(&path, e.to_string())),
        }
    }
    listed.sort_by(|a, b| bls::compare(&a.0, &b.0));
    found.entries = listed.into_iter().map(|(_, e)| e).collect();
    found
}

/// `/EFI/Linux` on the volume: as spelled on a case-insensitive FAT, else looked up with any
/// case (an ext4 XBOOTLDR volume). `None` if absent.
fn find_dir(fs: &dyn BootFs) -> Result<Option<String>, FsError> {
    match fs.metadata(UKI_DIR) {
        Ok(m) if m.kind == FileKind::Dir => return Ok(Some(UKI_DIR.to_string())),
        Ok(_) | Err(FsError::NotFound(_)) | Err(FsError::NotADir(_)) => {}
        Err(e) => return Err(e),
    }
    let mut dir = String::new();
    for want in ["EFI", "Linux"] {
        let listing = match fs.read_dir(if dir.is_empty() { "/" } else { &dir }) {
            Ok(l) => l,
            Err(FsError::NotFound(_)) | Err(FsError::NotADir(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(d) = listing
            .iter()
            .find(|d| d.kind == FileKind::Dir && d.name.eq_ignore_ascii_case(want))
        else {
            return Ok(None);
        };
        dir = format!("{dir}/{}", d.name);
    }
    Ok(Some(dir))
}

fn strip_suffix_ignore_case<'a>(name: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = name.len().checked_sub(suffix.len())?;
    (name.is_char_boundary(cut) && name[cut..].eq_ignore_ascii_case(suffix)).then(|| &name[..cut])
}

/// One UKI as a boot entry, with the Type #1 view of it that sorting uses.
fn entry(
    vol: &VolumeView<'_>,
    path: &str,
    stem: &str,
) -> Result<(bls::Entry, BootEntry), UkiError> {
    let (sections, _) = open(vol.fs, path)?;
    let [cmdline, osrel, uname] = small_sections(vol.fs, path, &sections)?;
    let os = osrel::OsRelease::parse(osrel.as_deref().unwrap_or(""));
    let uname = uname
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty());
    let (id, tries_left) = bls::boot_counting(stem);
    let version = os.version().map(str::to_string).or(uname);
    let sort = bls::Entry {
        id: id.to_string(),
        stem: stem.to_string(),
        tries_left,
        version: version.clone(),
        sort_key: os.sort_key().map(str::to_string),
        ..bls::Entry::default()
    };
    let entry = BootEntry {
        id: id.to_string(),
        title: os.title().unwrap_or_else(|| id.to_string()),
        version,
        kernel: FileRef {
            volume: vol.name.to_string(),
            path: path.to_string(),
        },
        initrds: Vec::new(),
        cmdline: cmdline.as_deref().map(clean_cmdline).unwrap_or_default(),
        devicetree: None,
        format: Format::Uki,
        kind: EntryKind::Uki,
        source: EntrySource {
            volume: vol.name.to_string(),
            file: path.to_string(),
            line: None,
        },
    };
    Ok((sort, entry))
}

/// A `.cmdline` section as a command line: surrounding whitespace (the newline `ukify` and
/// `objcopy` users leave) removed, inner line breaks made spaces.
pub fn clean_cmdline(text: &str) -> String {
    text.trim().replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests;
