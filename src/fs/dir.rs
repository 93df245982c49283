//! A directory of the running system seen as a volume: `leapboot list --root DIR`, unit tests,
//! and the read-only kernel mounts of the initramfs ([`super::mount`]).
//!
//! Every path is resolved *inside* the root by construction, never checked afterwards:
//! `openat2(2)` with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS` from a descriptor of the root
//! (an absolute symlink means the root's own `/`, `..` stops at the root), or, on a kernel
//! without `openat2` (before 5.6), a component walk that opens each component with
//! `O_NOFOLLOW`, reads symlinks itself (at most [`MAX_SYMLINK_HOPS`]) and never climbs above
//! the root, [`MAX_DEPTH`] directories deep at most. Any failure refuses the path: nothing
//! falls back to an unchecked path. Files are opened `O_NONBLOCK` (a FIFO cannot block the
//! boot) and must be regular files to be read.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};

use super::{components, copy_bounded, BootFs, DirEntry, FileKind, FsError, Metadata};

/// Symlinks followed while resolving one path at most (Linux's own limit is 40).
pub const MAX_SYMLINK_HOPS: u32 = 40;
/// Directories below the root a path may reach in the component walk.
pub const MAX_DEPTH: usize = 256;

/// A directory tree treated as the root of one volume.
pub struct DirFs {
    root: PathBuf,
    /// The root, opened once (`O_PATH | O_DIRECTORY`); every lookup starts from it.
    fd: Result<OwnedFd, Errno>,
}

/// How a path is resolved (the component walk is also used by tests on kernels that have
/// `openat2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolver {
    Openat2,
    Walk,
}

impl DirFs {
    /// Uses `root` as the volume root.
    pub fn new(root: &Path) -> DirFs {
        let fd = nix::fcntl::open(
            root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        DirFs {
            root: root.to_owned(),
            fd,
        }
    }

    /// Opens `path` inside the root with `flags` (plus `O_CLOEXEC | O_NOCTTY`).
    fn open(&self, path: &str, flags: OFlag) -> Result<OwnedFd, FsError> {
        let resolver = if OPENAT2.with(|ok| ok.get()) {
            Resolver::Openat2
        } else {
            Resolver::Walk
        };
        match self.open_with(path, flags, resolver) {
            Err(Errno::ENOSYS) if resolver == Resolver::Openat2 => {
                OPENAT2.with(|ok| ok.set(false));
                log::debug!("openat2 is missing: resolving paths component by component");
                self.open_with(path, flags, Resolver::Walk)
            }
            r => r,
        }
        .map_err(|e| self.error(path, e))
    }

    fn open_with(&self, path: &str, flags: OFlag, how: Resolver) -> Result<OwnedFd, Errno> {
        let root = self.fd.as_ref().map_err(|e| *e)?;
        // openat2 refuses any flag O_PATH ignores.
        let flags = if flags.contains(OFlag::O_PATH) {
            flags | OFlag::O_CLOEXEC
        } else {
            flags | OFlag::O_CLOEXEC | OFlag::O_NOCTTY
        };
        match how {
            Resolver::Openat2 => {
                let parts = components(path);
                let rel = if parts.is_empty() {
                    ".".to_string()
                } else {
                    parts.join("/")
                };
                nix::fcntl::openat2(
                    root,
                    rel.as_str(),
                    OpenHow::new()
                        .flags(flags)
                        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS),
                )
            }
            Resolver::Walk => walk(root, path, flags),
        }
    }

    fn error(&self, path: &str, e: Errno) -> FsError {
        match e {
            Errno::ENOENT => FsError::NotFound(path.to_string()),
            Errno::ENOTDIR => FsError::NotADir(path.to_string()),
            Errno::ELOOP => FsError::Io {
                path: path.to_string(),
                message: format!(
                    "more than {MAX_SYMLINK_HOPS} symlinks (or a loop) under {}; refused",
                    self.root.display()
                ),
            },
            e => FsError::Io {
                path: path.to_string(),
                message: format!(
                    "cannot be resolved inside {}: {}; refused",
                    self.root.display(),
                    e.desc()
                ),
            },
        }
    }

    fn stat(&self, path: &str) -> Result<FileStat, FsError> {
        let fd = self.open(path, OFlag::O_PATH)?;
        nix::sys::stat::fstat(&fd).map_err(|e| self.error(path, e))
    }
}

std::thread_local! {
    /// Whether this kernel has `openat2` (cleared at the first ENOSYS).
    static OPENAT2: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// The component walk: `path` resolved from `root`, each component opened `O_NOFOLLOW`,
/// symlinks read and resolved here (absolute ones from `root`), `..` never above `root`.
fn walk(root: &OwnedFd, path: &str, flags: OFlag) -> Result<OwnedFd, Errno> {
    use std::collections::VecDeque;
    let mut todo: VecDeque<Vec<u8>> = components(path)
        .into_iter()
        .map(|c| c.as_bytes().to_vec())
        .collect();
    // The directories below the root we are in: the last is the current one.
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut hops = 0;
    while let Some(name) = todo.pop_front() {
        if name == b".." {
            stack.pop();
            continue;
        }
        let dir = stack.last().unwrap_or(root);
        let last = todo.is_empty();
        let name_os = OsStr::from_bytes(&name);
        let fd = nix::fcntl::openat(
            dir,
            name_os,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let st = nix::sys::stat::fstat(&fd)?;
        let fmt = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        if fmt == SFlag::S_IFLNK {
            hops += 1;
            if hops > MAX_SYMLINK_HOPS {
                return Err(Errno::ELOOP);
            }
            let target = nix::fcntl::readlinkat(dir, name_os)?;
            let target = target.as_bytes();
            if target.first() == Some(&b'/') {
                stack.clear();
            }
            let parts: Vec<Vec<u8>> = target
                .split(|&b| b == b'/')
                .filter(|c| !c.is_empty() && *c != b".")
                .map(<[u8]>::to_vec)
                .collect();
            if todo.len() + parts.len() > 64 * 1024 {
                return Err(Errno::ENAMETOOLONG);
            }
            for p in parts.into_iter().rev() {
                todo.push_front(p);
            }
            continue;
        }
        if last {
            // The final component, not a symlink: open it as asked, still without following.
            return nix::fcntl::openat(dir, name_os, flags | OFlag::O_NOFOLLOW, Mode::empty());
        }
        if fmt != SFlag::S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        if stack.len() >= MAX_DEPTH {
            return Err(Errno::ENAMETOOLONG);
        }
        stack.push(fd);
    }
    // The path ended on a directory reached by `..` or a symlink (or is the root).
    nix::fcntl::openat(
        stack.last().unwrap_or(root),
        ".",
        flags | OFlag::O_DIRECTORY,
        Mode::empty(),
    )
}

fn kind(st: &FileStat) -> FileKind {
    let fmt = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if fmt == SFlag::S_IFREG {
        FileKind::File
    } else if fmt == SFlag::S_IFDIR {
        FileKind::Dir
    } else {
        FileKind::Other
    }
}

impl BootFs for DirFs {
    fn metadata(&self, path: &str) -> Result<Metadata, FsError> {
        let st = self.stat(path)?;
        Ok(Metadata {
            kind: kind(&st),
            len: st.st_size.max(0) as u64,
        })
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let fd = self.open(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        let mut dir = nix::dir::Dir::from_fd(fd).map_err(|e| self.error(path, e))?;
        let mut names = Vec::new();
        for e in dir.iter() {
            let e = e.map_err(|e| self.error(path, e))?;
            let Ok(name) = e.file_name().to_str() else {
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            if names.len() == super::MAX_DIR_ENTRIES {
                log::warn!(
                    "{path}: more than {} entries, the rest ignored",
                    super::MAX_DIR_ENTRIES
                );
                break;
            }
            names.push(name.to_string());
        }
        let base = path.trim_end_matches('/');
        let mut out: Vec<DirEntry> = names
            .into_iter()
            .map(|name| {
                // Symlinks are followed (inside the root) to tell files from directories.
                let k = self
                    .stat(&format!("{base}/{name}"))
                    .map(|st| kind(&st))
                    .unwrap_or(FileKind::Other);
                DirEntry { name, kind: k }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn copy_to(&self, path: &str, out: &mut dyn std::io::Write, max: u64) -> Result<u64, FsError> {
        let fd = self.open(path, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
        let st = nix::sys::stat::fstat(fd.as_fd()).map_err(|e| self.error(path, e))?;
        if kind(&st) != FileKind::File {
            return Err(FsError::NotAFile(path.to_string()));
        }
        let len = st.st_size.max(0) as u64;
        if len > max {
            return Err(FsError::TooLarge {
                path: path.to_string(),
                len,
                max,
            });
        }
        let mut f = std::fs::File::from(fd);
        copy_bounded(path, &mut f, out, max)
    }

    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        use std::io::{Seek, SeekFrom};
        // Resolved inside the root by construction, like every other read here.
        let fd = self.open(path, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
        let st = nix::sys::stat::fstat(fd.as_fd()).map_err(|e| self.error(path, e))?;
        if kind(&st) != FileKind::File {
            return Err(FsError::NotAFile(path.to_string()));
        }
        let mut f = std::fs::File::from(fd);
        f.seek(SeekFrom::Start(offset)).map_err(|e| FsError::Io {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        super::read_full(path, &mut f, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::mkdirat;
    use nix::unistd::symlinkat;

    /// A root with a file, a directory, relative and absolute symlinks inside, and an
    /// outside file beside it.
    fn tree() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("secret"), "outside").unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("boot/loader")).unwrap();
        std::fs::write(root.join("boot/loader/a.conf"), "A").unwrap();
        std::os::unix::fs::symlink("loader/a.conf", root.join("boot/rel")).unwrap();
        std::os::unix::fs::symlink("/boot/loader", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../secret", root.join("boot/up")).unwrap();
        std::os::unix::fs::symlink(t.path().join("secret"), root.join("hostabs")).unwrap();
        std::os::unix::fs::symlink("loop2", root.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", root.join("loop2")).unwrap();
        (t, root)
    }

    fn read(fs: &DirFs, how: Resolver, path: &str) -> Result<String, String> {
        let fd = fs
            .open_with(path, OFlag::O_RDONLY | OFlag::O_NONBLOCK, how)
            .map_err(|e| e.to_string())?;
        std::fs::read_to_string(std::path::Path::new(&format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        )))
        .map_err(|e| e.to_string())
    }

    #[test]
    fn both_resolvers_stay_inside_the_root() {
        let (_t, root) = tree();
        let fs = DirFs::new(&root);
        for how in [Resolver::Openat2, Resolver::Walk] {
            assert_eq!(read(&fs, how, "/boot/rel").as_deref(), Ok("A"), "{how:?}");
            assert_eq!(read(&fs, how, "/abs/a.conf").as_deref(), Ok("A"), "{how:?}");
            // `..` and absolute links stop at the root: the outside file is never reached.
            assert!(read(&fs, how, "/boot/up").is_err(), "{how:?}");
            assert!(read(&fs, how, "/hostabs").is_err(), "{how:?}");
            assert_eq!(
                fs.open_with("/loop1", OFlag::O_RDONLY, how).unwrap_err(),
                Errno::ELOOP,
                "{how:?}"
            );
        }
        assert_eq!(fs.read("/abs/a.conf", 10).unwrap(), b"A");
        assert!(matches!(fs.read("/boot/up", 10), Err(FsError::NotFound(_))));
        let names: Vec<String> = fs
            .read_dir("/")
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["abs", "boot", "hostabs", "loop1", "loop2"]);
        assert_eq!(fs.metadata("/abs").unwrap().kind, FileKind::Dir);
    }

    /// Issue 11's escape: symlinks through a directory tree deeper than PATH_MAX made
    /// `canonicalize()` fail (ENAMETOOLONG), and the unchecked path was read: a file
    /// outside the root. Built with real directories and symlinks (mkdirat/symlinkat, as
    /// `ln -s` and `mkdir` would, at a depth no single path can name).
    #[test]
    fn dir_symlink_escape_through_a_deep_tree_is_refused() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("secret"), "outside").unwrap();
        let root = t.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let mut dirs: Vec<OwnedFd> =
            vec![
                nix::fcntl::open(&root, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap(),
            ];
        // Directories named with 50 characters: 100 levels are 5,100 bytes, past PATH_MAX.
        const NAME: &str = "dddddddddddddddddddddddddddddddddddddddddddddddddd";
        const DEPTH: usize = 100;
        for _ in 0..DEPTH {
            let cur = dirs.last().unwrap();
            mkdirat(cur, NAME, Mode::from_bits_truncate(0o755)).unwrap();
            let next =
                nix::fcntl::openat(cur, NAME, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
                    .unwrap();
            dirs.push(next);
        }
        // x -> d^40/s1 -> d^60/s2 at depth 100 -> ../^70 s3 at depth 30 -> ../^31 secret:
        // one directory above the root. Each link body is under 4 KiB.
        let d = |n: usize| format!("{NAME}/").repeat(n);
        let up = |n: usize| "../".repeat(n);
        symlinkat(format!("{}s1", d(40)).as_str(), &dirs[0], "x").unwrap();
        symlinkat(format!("{}s2", d(60)).as_str(), &dirs[40], "s1").unwrap();
        symlinkat(format!("{}s3", up(70)).as_str(), &dirs[100], "s2").unwrap();
        symlinkat(format!("{}secret", up(31)).as_str(), &dirs[30], "s3").unwrap();
        // The kernel itself follows the chain out of the root (what the old code did).
        let escaped = std::fs::read_to_string(root.join("x"));
        assert_eq!(
            escaped.as_deref().ok(),
            Some("outside"),
            "the fixture escapes"
        );
        assert!(
            root.join("x").canonicalize().is_err(),
            "canonicalize fails on it"
        );
        let fs = DirFs::new(&root);
        for how in [Resolver::Openat2, Resolver::Walk] {
            let r = read(&fs, how, "/x");
            assert!(r.is_err(), "{how:?} read {r:?}");
        }
        let err = fs.read("/x", 100).unwrap_err();
        assert!(!matches!(err, FsError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn a_fifo_is_not_a_file_and_does_not_block() {
        let t = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&t.path().join("f"), Mode::from_bits_truncate(0o644)).unwrap();
        let fs = DirFs::new(t.path());
        assert!(matches!(fs.read("/f", 10), Err(FsError::NotAFile(_))));
    }
}
