//! ISO 9660 in userspace, read from a regular file of another volume (an installer or live
//! ISO kept on a data partition) through that volume's [`BootFs::read_at`]: no loop device,
//! no mount.
//!
//! Names: Rock Ridge (`NM`, with `CE` continuation areas and `SL` symlinks, followed at most
//! [`MAX_LINKS`] times) where the primary tree has it, else Joliet (UCS-2), else the plain
//! ISO 9660 names as Linux shows them (`;1` and a trailing dot dropped, lower case). El Torito
//! is not read: leapboot boots the kernel files, not the boot image.
//!
//! Everything in the image is hostile and bounded: at most [`MAX_DESCRIPTORS`] volume
//! descriptors; a directory extent of at most [`MAX_DIR_BYTES`] and [`super::MAX_DIR_ENTRIES`]
//! entries; every extent must lie inside the file (an entry pointing past it is dropped); a
//! path walk is at most [`MAX_DEPTH`] directories deep and refuses a directory that is one of
//! its own ancestors (a loop); at most [`MAX_EXTENTS`] extents per file and [`MAX_CE`]
//! continuation areas per record. Nothing recurses on the image's structure.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::{BootFs, DirEntry, FileKind, FsError, Metadata};

/// Volume descriptors read, at most (from sector 16).
pub const MAX_DESCRIPTORS: usize = 64;
/// Largest directory extent read.
pub const MAX_DIR_BYTES: u64 = 4 << 20;
/// Deepest path walked.
pub const MAX_DEPTH: usize = 64;
/// Rock Ridge symlinks followed in one lookup.
pub const MAX_LINKS: usize = 8;
/// Extents of one multi-extent file.
pub const MAX_EXTENTS: usize = 64;
/// Rock Ridge continuation areas followed for one directory record.
pub const MAX_CE: usize = 16;
/// Directories whose parsed entries are kept.
const MAX_CACHED_DIRS: usize = 64;

/// How names are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Names {
    /// Rock Ridge on the primary tree; `skip` bytes start every System Use area (`SP`).
    RockRidge { skip: usize },
    /// The Joliet supplementary tree (UCS-2 big endian).
    Joliet,
    /// ISO 9660 names only.
    Plain,
}

/// One file or directory.
#[derive(Clone, Debug)]
struct Node {
    name: String,
    kind: FileKind,
    /// (byte offset in the image, length) of each extent, in order.
    extents: Vec<(u64, u64)>,
    len: u64,
    /// A Rock Ridge symlink's target.
    link: Option<String>,
}

impl Node {
    fn start(&self) -> u64 {
        self.extents.first().map_or(0, |e| e.0)
    }
}

/// An ISO 9660 image inside a file of another volume.
pub struct IsoFs {
    parent: Rc<dyn BootFs>,
    path: String,
    size: u64,
    block: u64,
    names: Names,
    root: Node,
    label: Option<String>,
    uuid: Option<String>,
    dirs: RefCell<HashMap<u64, Rc<Vec<Node>>>>,
}

fn le16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// A directory record's fixed fields.
struct Raw<'a> {
    extent: u64,
    len: u64,
    flags: u8,
    interleaved: bool,
    name: &'a [u8],
    system_use: &'a [u8],
}

/// Parses the directory record at the start of `rec` (its length byte first).
fn record(rec: &[u8], block: u64) -> Option<Raw<'_>> {
    let len = usize::from(*rec.first()?);
    if len < 34 || len > rec.len() {
        return None;
    }
    let rec = &rec[..len];
    let name_len = usize::from(rec[32]);
    if 33 + name_len > len {
        return None;
    }
    let su_start = 33 + name_len + usize::from(name_len % 2 == 0);
    Some(Raw {
        extent: (u64::from(le32(rec, 2)) + u64::from(rec[1])) * block,
        len: u64::from(le32(rec, 10)),
        flags: rec[25],
        interleaved: rec[26] != 0 || rec[27] != 0,
        name: &rec[33..33 + name_len],
        system_use: rec.get(su_start..).unwrap_or_default(),
    })
}

fn utf16be(b: &[u8]) -> String {
    let units = b.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// A name without its `;N` version (and, for plain names, a trailing dot).
fn strip_version(name: &str) -> &str {
    match name.rsplit_once(';') {
        Some((n, v)) if v.bytes().all(|c| c.is_ascii_digit()) => n,
        _ => name,
    }
}

/// What the Rock Ridge entries of one record say.
#[derive(Default)]
struct Rr {
    name: Option<String>,
    link: Option<String>,
    /// `RE`: this is a relocated directory's stand-in; hidden.
    relocated: bool,
    /// `CL`: the directory really lives at this byte offset.
    child: Option<u64>,
}

/// The parts of an `SL` entry's component records, appended to `out`.
fn sl_components(data: &[u8], out: &mut String, pending_continue: &mut bool) {
    let mut at = 1; // after the SL flags byte
    while at + 2 <= data.len() {
        let flags = data[at];
        let len = usize::from(data[at + 1]);
        let Some(text) = data.get(at + 2..at + 2 + len) else {
            break;
        };
        if !*pending_continue && !out.is_empty() && !out.ends_with('/') {
            out.push('/');
        }
        if flags & 0x08 != 0 {
            out.clear();
            out.push('/');
        } else if flags & 0x02 != 0 {
            out.push('.');
        } else if flags & 0x04 != 0 {
            out.push_str("..");
        } else {
            out.push_str(&String::from_utf8_lossy(text));
        }
        *pending_continue = flags & 0x01 != 0;
        at += 2 + len;
    }
}

impl IsoFs {
    /// Opens the ISO image in regular file `path` of `parent`.
    pub fn open(parent: Rc<dyn BootFs>, path: &str) -> Result<IsoFs, FsError> {
        let bad = |message: String| FsError::Io {
            path: path.to_string(),
            message,
        };
        let meta = parent.metadata(path)?;
        if meta.kind != FileKind::File {
            return Err(FsError::NotAFile(path.to_string()));
        }
        let size = meta.len;
        let mut pvd: Option<Vec<u8>> = None;
        let mut joliet: Option<Vec<u8>> = None;
        for i in 0..MAX_DESCRIPTORS as u64 {
            let at = (16 + i) * 2048;
            if at + 2048 > size {
                break;
            }
            let mut d = vec![0u8; 2048];
            read_exact(parent.as_ref(), path, at, &mut d)?;
            if &d[1..6] != b"CD001" {
                break;
            }
            match d[0] {
                1 if pvd.is_none() => pvd = Some(d),
                2 if joliet.is_none()
                    && [b"%/@", b"%/C", b"%/E"]
                        .iter()
                        .any(|e| d[88..120].windows(3).any(|w| w == *e)) =>
                {
                    joliet = Some(d)
                }
                255 => break,
                _ => {}
            }
        }
        let pvd = pvd.ok_or_else(|| bad("no ISO 9660 primary volume descriptor".into()))?;
        let block = match le16(&pvd, 128) {
            b @ (512 | 1024 | 2048) => u64::from(b),
            _ => 2048,
        };
        let root_of = |d: &[u8]| -> Result<Node, FsError> {
            let r = record(&d[156..190], block)
                .ok_or_else(|| bad("the root directory record is damaged".into()))?;
            Ok(Node {
                name: String::new(),
                kind: FileKind::Dir,
                extents: vec![(r.extent, r.len)],
                len: r.len,
                link: None,
            })
        };
        // The label reaches logs and the menu's details: no control characters.
        let text = |b: &[u8]| {
            let t: String = String::from_utf8_lossy(b)
                .trim()
                .chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect();
            (!t.is_empty()).then_some(t)
        };
        let date = |at: usize| {
            let d = &pvd[at..at + 16];
            if !d.iter().all(u8::is_ascii_digit) || d.iter().all(|&c| c == b'0') {
                return None;
            }
            let s = String::from_utf8_lossy(d);
            Some(format!(
                "{}-{}-{}-{}-{}-{}-{}",
                &s[0..4],
                &s[4..6],
                &s[6..8],
                &s[8..10],
                &s[10..12],
                &s[12..14],
                &s[14..16]
            ))
        };
        let mut fs = IsoFs {
            parent: parent.clone(),
            path: path.to_string(),
            size,
            block,
            names: Names::Plain,
            root: root_of(&pvd)?,
            label: text(&pvd[40..72]),
            uuid: date(830).or_else(|| date(813)),
            dirs: RefCell::new(HashMap::new()),
        };
        fs.check_extent(fs.root.start(), fs.root.len)?;
        if let Some(skip) = fs.rock_ridge_skip() {
            fs.names = Names::RockRidge { skip };
        } else if let Some(j) = joliet {
            let root = root_of(&j)?;
            if fs.check_extent(root.start(), root.len).is_ok() {
                fs.names = Names::Joliet;
                fs.root = root;
            }
        }
        log::debug!("{path}: ISO 9660, names {:?}", fs.names);
        Ok(fs)
    }

    /// The volume identifier.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// The modification date as blkid gives it as a UUID (`YYYY-MM-DD-HH-MM-SS-CC`).
    pub fn uuid(&self) -> Option<&str> {
        self.uuid.as_deref()
    }

    fn check_extent(&self, start: u64, len: u64) -> Result<(), FsError> {
        match start.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(FsError::Io {
                path: self.path.clone(),
                message: format!(
                    "an extent at byte {start} of {len} bytes lies outside the {}-byte image",
                    self.size
                ),
            }),
        }
    }

    /// The `SP` entry of the root's `.` record: Rock Ridge is in use (and how many bytes
    /// every System Use area skips).
    fn rock_ridge_skip(&self) -> Option<usize> {
        let mut first = vec![0u8; (self.root.len.min(self.block)) as usize];
        read_exact(
            self.parent.as_ref(),
            &self.path,
            self.root.start(),
            &mut first,
        )
        .ok()?;
        let r = record(&first, self.block)?;
        let su = r.system_use;
        (su.len() >= 7 && &su[0..2] == b"SP" && su[4] == 0xBE && su[5] == 0xEF)
            .then(|| usize::from(su[6]))
    }

    /// Reads the Rock Ridge entries of one record, following `CE` areas.
    fn rock_ridge(&self, su: &[u8], skip: usize) -> Rr {
        let mut rr = Rr::default();
        let mut name = String::new();
        let mut link = String::new();
        let (mut has_name, mut has_link, mut link_continue) = (false, false, false);
        let mut area: Vec<u8> = su.get(skip..).unwrap_or_default().to_vec();
        for _ in 0..=MAX_CE {
            let mut next: Option<(u64, u64)> = None;
            let mut at = 0;
            while at + 4 <= area.len() {
                let sig = [area[at], area[at + 1]];
                let len = usize::from(area[at + 2]);
                if len < 4 || at + len > area.len() {
                    break;
                }
                let data = &area[at + 4..at + len];
                match &sig {
                    // NM with CURRENT or PARENT set names "." or "..": ignored.
                    b"NM" if !data.is_empty() && data[0] & 0x06 == 0 => {
                        name.push_str(&String::from_utf8_lossy(&data[1..]));
                        has_name = true;
                    }
                    b"SL" if !data.is_empty() => {
                        sl_components(data, &mut link, &mut link_continue);
                        has_link = true;
                    }
                    b"CE" if data.len() >= 24 => {
                        let block = u64::from(le32(data, 0)) * self.block;
                        let off = u64::from(le32(data, 8));
                        let n = u64::from(le32(data, 16)).min(self.block);
                        next = Some((block + off, n));
                    }
                    b"RE" => rr.relocated = true,
                    b"CL" if data.len() >= 4 => {
                        rr.child = Some(u64::from(le32(data, 0)) * self.block)
                    }
                    b"ST" => break,
                    _ => {}
                }
                at += len;
            }
            let Some((start, n)) = next else { break };
            if self.check_extent(start, n).is_err() {
                break;
            }
            area = vec![0u8; n as usize];
            if read_exact(self.parent.as_ref(), &self.path, start, &mut area).is_err() {
                break;
            }
        }
        rr.name = has_name.then_some(name);
        rr.link = (has_link && !link.is_empty()).then_some(link);
        rr
    }

    /// The length of the directory at byte `start`: its `.` record's.
    fn dir_len_at(&self, start: u64) -> Option<u64> {
        let mut first = vec![0u8; self.block as usize];
        self.check_extent(start, self.block).ok()?;
        read_exact(self.parent.as_ref(), &self.path, start, &mut first).ok()?;
        record(&first, self.block).map(|r| r.len)
    }

    /// The entries of directory `dir`, parsed once and cached.
    fn entries(&self, dir: &Node) -> Result<Rc<Vec<Node>>, FsError> {
        let start = dir.start();
        if let Some(e) = self.dirs.borrow().get(&start) {
            return Ok(e.clone());
        }
        if dir.len > MAX_DIR_BYTES {
            return Err(FsError::TooLarge {
                path: format!("{}:{}", self.path, dir.name),
                len: dir.len,
                max: MAX_DIR_BYTES,
            });
        }
        self.check_extent(start, dir.len)?;
        let mut buf = vec![0u8; dir.len as usize];
        read_exact(self.parent.as_ref(), &self.path, start, &mut buf)?;
        let out = Rc::new(self.parse_dir(&buf));
        let mut cache = self.dirs.borrow_mut();
        if cache.len() >= MAX_CACHED_DIRS {
            cache.clear();
        }
        cache.insert(start, out.clone());
        Ok(out)
    }

    fn parse_dir(&self, buf: &[u8]) -> Vec<Node> {
        let block = self.block as usize;
        let mut out: Vec<Node> = Vec::new();
        let mut multi: Option<Node> = None;
        let mut pos = 0usize;
        while pos < buf.len() {
            let rl = usize::from(buf[pos]);
            let sector_end = (pos / block + 1) * block;
            if rl == 0 {
                pos = sector_end; // records never cross a sector: the rest is padding
                continue;
            }
            let Some(r) = record(&buf[pos..sector_end.min(buf.len())], self.block) else {
                log::debug!(
                    "{}: a damaged directory record; the rest of its sector skipped",
                    self.path
                );
                pos = sector_end;
                continue;
            };
            pos += rl;
            if r.name == [0] || r.name == [1] {
                continue; // "." and ".."
            }
            if r.flags & 0x04 != 0 || r.interleaved {
                continue; // associated files; interleaved files are not supported
            }
            let rr = match self.names {
                Names::RockRidge { skip } => self.rock_ridge(r.system_use, skip),
                _ => Rr::default(),
            };
            if rr.relocated {
                continue;
            }
            let name = match (self.names, rr.name) {
                (Names::RockRidge { .. }, Some(n)) => n,
                (Names::Joliet, _) => strip_version(&utf16be(r.name)).to_string(),
                _ => {
                    let n = String::from_utf8_lossy(r.name);
                    strip_version(&n).trim_end_matches('.').to_ascii_lowercase()
                }
            };
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                continue;
            }
            let (mut extent, mut len, mut kind) = (
                r.extent,
                r.len,
                if r.flags & 0x02 != 0 {
                    FileKind::Dir
                } else {
                    FileKind::File
                },
            );
            if let Some(child) = rr.child {
                match self.dir_len_at(child) {
                    Some(l) => (extent, len, kind) = (child, l, FileKind::Dir),
                    None => continue,
                }
            }
            if self.check_extent(extent, len).is_err() {
                log::debug!("{}: {name} points outside the image; skipped", self.path);
                continue;
            }
            if rr.link.is_some() {
                kind = FileKind::Other;
            }
            let continues = r.flags & 0x80 != 0 && kind == FileKind::File;
            let node = match multi.take() {
                Some(mut m) if m.name == name && m.extents.len() < MAX_EXTENTS => {
                    m.extents.push((extent, len));
                    m.len += len;
                    m
                }
                _ => Node {
                    name,
                    kind,
                    extents: vec![(extent, len)],
                    len,
                    link: rr.link,
                },
            };
            if continues {
                multi = Some(node);
                continue;
            }
            if out.len() == super::MAX_DIR_ENTRIES {
                log::warn!(
                    "{}: a directory of more than {} entries; the rest ignored",
                    self.path,
                    super::MAX_DIR_ENTRIES
                );
                break;
            }
            out.push(node);
        }
        out
    }

    /// The node `path` names, symlinks followed.
    fn lookup(&self, path: &str) -> Result<Node, FsError> {
        let err = |m: &str| FsError::Io {
            path: path.to_string(),
            message: format!("{m} in ISO image {}", self.path),
        };
        let mut pending: std::collections::VecDeque<String> = path
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_string)
            .collect();
        let mut stack: Vec<Node> = vec![self.root.clone()];
        let mut links = 0;
        while let Some(c) = pending.pop_front() {
            if c == "." {
                continue;
            }
            if c == ".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let dir = stack.last().cloned().unwrap_or_else(|| self.root.clone());
            if dir.kind != FileKind::Dir {
                return Err(FsError::NotADir(path.to_string()));
            }
            if stack.len() > MAX_DEPTH {
                return Err(err("a path too deep"));
            }
            let entries = self.entries(&dir)?;
            let Some(e) = entries.iter().find(|e| e.name == c) else {
                return Err(FsError::NotFound(path.to_string()));
            };
            if let Some(target) = &e.link {
                links += 1;
                if links > MAX_LINKS {
                    return Err(err("too many symbolic links"));
                }
                if target.starts_with('/') {
                    stack.truncate(1);
                }
                for part in target.rsplit('/').filter(|p| !p.is_empty()) {
                    pending.push_front(part.to_string());
                }
                continue;
            }
            if e.kind == FileKind::Dir && stack.iter().any(|a| a.start() == e.start()) {
                return Err(err("a directory loop"));
            }
            stack.push(e.clone());
        }
        Ok(stack.pop().unwrap_or_else(|| self.root.clone()))
    }

    fn file(&self, path: &str) -> Result<Node, FsError> {
        let n = self.lookup(path)?;
        if n.kind != FileKind::File {
            return Err(FsError::NotAFile(path.to_string()));
        }
        Ok(n)
    }
}

/// Reads exactly `buf.len()` bytes of `path` on `fs` at `offset`.
fn read_exact(fs: &dyn BootFs, path: &str, offset: u64, buf: &mut [u8]) -> Result<(), FsError> {
    let mut n = 0;
    while n < buf.len() {
        let k = fs.read_at(path, offset + n as u64, &mut buf[n..])?;
        if k == 0 {
            return Err(FsError::Io {
                path: path.to_string(),
                message: format!("the file ends before byte {}", offset + buf.len() as u64),
            });
        }
        n += k;
    }
    Ok(())
}

impl BootFs for IsoFs {
    fn metadata(&self, path: &str) -> Result<Metadata, FsError> {
        let n = self.lookup(path)?;
        Ok(Metadata {
            kind: n.kind,
            len: if n.kind == FileKind::Dir { 0 } else { n.len },
        })
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let dir = self.lookup(path)?;
        if dir.kind != FileKind::Dir {
            return Err(FsError::NotADir(path.to_string()));
        }
        let base = super::normalize(path);
        let mut out: Vec<DirEntry> = self
            .entries(&dir)?
            .iter()
            .map(|e| DirEntry {
                name: e.name.clone(),
                kind: match e.link {
                    None => e.kind,
                    Some(_) => self
                        .lookup(&format!("{}/{}", base.trim_end_matches('/'), e.name))
                        .map_or(FileKind::Other, |n| n.kind),
                },
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.dedup_by(|a, b| a.name == b.name);
        Ok(out)
    }

    fn copy_to(&self, path: &str, out: &mut dyn std::io::Write, max: u64) -> Result<u64, FsError> {
        let n = self.file(path)?;
        if n.len > max {
            return Err(FsError::TooLarge {
                path: path.to_string(),
                len: n.len,
                max,
            });
        }
        let mut total = 0u64;
        for (start, len) in &n.extents {
            total += self
                .parent
                .copy_range_to(&self.path, *start, *len, out)
                .map_err(|e| match e {
                    // Name the file inside the ISO, not only the ISO.
                    FsError::Io { message, .. } => FsError::Io {
                        path: format!("{}:{path}", self.path),
                        message,
                    },
                    e => e,
                })?;
        }
        Ok(total)
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let n = self.file(path)?;
        let mut done = 0usize;
        let mut base = 0u64; // file offset of the extent
        for (start, len) in &n.extents {
            let want = offset.saturating_add(done as u64);
            if done == buf.len() {
                break;
            }
            if want < base + len {
                let within = want - base;
                let k = ((len - within) as usize).min(buf.len() - done);
                read_exact(
                    self.parent.as_ref(),
                    &self.path,
                    start + within,
                    &mut buf[done..done + k],
                )?;
                done += k;
            }
            base += len;
        }
        Ok(done)
    }
}

/// A volume's filesystem shared between its own volume and the ISO images read from its
/// files.
pub struct Shared(pub Rc<dyn BootFs>);

impl BootFs for Shared {
    fn metadata(&self, path: &str) -> Result<Metadata, FsError> {
        self.0.metadata(path)
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        self.0.read_dir(path)
    }

    fn copy_to(&self, path: &str, out: &mut dyn std::io::Write, max: u64) -> Result<u64, FsError> {
        self.0.copy_to(path, out, max)
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        self.0.read_at(path, offset, buf)
    }

    fn copy_range_to(
        &self,
        path: &str,
        offset: u64,
        len: u64,
        out: &mut dyn std::io::Write,
    ) -> Result<u64, FsError> {
        self.0.copy_range_to(path, offset, len, out)
    }
}

#[cfg(test)]
mod tests;
