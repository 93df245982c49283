//! Finds ISO image files (`*.iso`) on a volume, bounded: at most [`MAX_DEPTH`] directories
//! deep, [`MAX_DIRS`] directories read, [`MAX_ISOS`] files returned, each between
//! [`MIN_BYTES`] and [`MAX_BYTES`] long. Breadth first, names sorted: the same volume always
//! gives the same list. Hidden directories and `lost+found` are not entered. A path that could
//! not be carried on a kernel command line as the distributions' ISO parameters take it
//! (whitespace, quotes, control characters) is logged and skipped.

use std::collections::VecDeque;

use super::{BootFs, FileKind};

/// Directory levels searched below the root (`/a.iso` is depth 0, `/isos/linux/a.iso` 2).
pub const MAX_DEPTH: usize = 2;
/// Directories read per volume, at most.
pub const MAX_DIRS: usize = 64;
/// ISO files taken per volume, at most.
pub const MAX_ISOS: usize = 16;
/// Smaller files cannot hold the volume descriptors (sector 16 on).
pub const MIN_BYTES: u64 = 17 * 2048;
/// Larger files are not taken as ISO images.
pub const MAX_BYTES: u64 = 64 << 30;

/// Whether `path` can be a kernel command-line value as it is.
pub fn cmdline_safe(path: &str) -> bool {
    !path.is_empty()
        && path
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\' | b'$' | b'`'))
}

/// The ISO files on `fs` (volume `volume`, for the log): (path, length).
pub fn find(fs: &dyn BootFs, volume: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut todo: VecDeque<(String, usize)> = VecDeque::from([("/".to_string(), 0)]);
    let mut read = 0;
    while let Some((dir, depth)) = todo.pop_front() {
        if read == MAX_DIRS {
            log::debug!("{volume}: ISO search stopped after {MAX_DIRS} directories");
            break;
        }
        read += 1;
        let Ok(entries) = fs.read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let path = format!("{}/{}", dir.trim_end_matches('/'), e.name);
            match e.kind {
                FileKind::Dir
                    if depth < MAX_DEPTH && !e.name.starts_with('.') && e.name != "lost+found" =>
                {
                    todo.push_back((path, depth + 1))
                }
                FileKind::File if e.name.to_ascii_lowercase().ends_with(".iso") => {
                    let len = fs.metadata(&path).map_or(0, |m| m.len);
                    if !(MIN_BYTES..=MAX_BYTES).contains(&len) {
                        log::debug!("{volume}: {path:?}: {len} bytes is no ISO image; skipped");
                    } else if !cmdline_safe(&path) {
                        log::warn!(
                            "{volume}: ISO file {path:?} is skipped: a path with spaces, quotes \
                             or control characters cannot be passed on a kernel command line; \
                             rename it"
                        );
                    } else if out.len() == MAX_ISOS {
                        log::warn!(
                            "{volume}: more than {MAX_ISOS} ISO files; {path} and later ones skipped"
                        );
                        return out;
                    } else {
                        out.push((path, len));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::mem::MemFs;

    #[test]
    fn finds_isos_breadth_first_and_bounded() {
        let iso = "x".repeat(MIN_BYTES as usize);
        let fs = MemFs::new(&[
            ("/b.iso", &iso),
            ("/isos/a.ISO", &iso),
            ("/isos/linux/c.iso", &iso),
            ("/isos/linux/deeper/d.iso", &iso),
            ("/small.iso", "tiny"),
            ("/.hidden/e.iso", &iso),
            ("/isos/with space.iso", &iso),
            ("/notes.txt", "x"),
        ]);
        let found: Vec<String> = find(&fs, "v").into_iter().map(|(p, _)| p).collect();
        assert_eq!(found, ["/b.iso", "/isos/a.ISO", "/isos/linux/c.iso"]);
        let many: Vec<(String, String)> = (0..MAX_ISOS + 3)
            .map(|i| (format!("/{i:02}.iso"), iso.clone()))
            .collect();
        let refs: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(find(&MemFs::new(&refs), "v").len(), MAX_ISOS);
    }

    #[test]
    fn only_plain_paths_reach_a_command_line() {
        assert!(cmdline_safe("/isos/debian-12.5.0-amd64-netinst.iso"));
        for bad in ["/a b.iso", "/a\"b.iso", "/a\nb.iso", "/a$b.iso", ""] {
            assert!(!cmdline_safe(bad), "{bad:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn any_tree_gives_a_bounded_list_of_plain_paths(
            paths in proptest::collection::vec("(/[a-zA-Z. ]{0,3}){1,5}(\\.iso)?", 0..80)
        ) {
            let iso = "x".repeat(MIN_BYTES as usize);
            let files: Vec<(&str, &str)> = paths.iter().map(|p| (p.as_str(), iso.as_str())).collect();
            let found = find(&MemFs::new(&files), "v");
            proptest::prop_assert!(found.len() <= MAX_ISOS);
            for (p, _) in &found {
                proptest::prop_assert!(cmdline_safe(p) && p.to_ascii_lowercase().ends_with(".iso"));
                proptest::prop_assert!(p.matches('/').count() <= MAX_DEPTH + 1);
            }
        }
    }
}
