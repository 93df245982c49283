//! The coldplug walk: the `modalias` of every device under `/sys/devices` that has no driver
//! bound, what udev's `udevadm trigger` + `kmod load $MODALIAS` would match at boot.
//!
//! Bounded: at most [`MAX_DEPTH`] directories deep and [`MAX_DIRS`] directories in all;
//! iterative (no recursion); symbolic links are never followed (sysfs is full of cycles made
//! of them). It only reads; loading is [`super::Loader`]'s job.

use std::path::{Path, PathBuf};

/// How deep below `/sys/devices` to look (a USB disk's interface sits ~10 levels down).
pub const MAX_DEPTH: usize = 24;
/// How many directories to visit at most.
pub const MAX_DIRS: usize = 50_000;
/// Rounds of "match, load, look again" in [`super::Loader::coldplug`].
pub const MAX_ROUNDS: usize = 8;

/// The modaliases of driverless devices under `sys/devices`, in walk order, each once.
pub fn modaliases(sys: &Path) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut stack: Vec<(PathBuf, usize)> = vec![(sys.join("devices"), 0)];
    let mut visited = 0usize;
    while let Some((dir, depth)) = stack.pop() {
        visited += 1;
        if visited > MAX_DIRS {
            log::warn!(
                "{}: more than {MAX_DIRS} directories; coldplug stops here",
                sys.join("devices").display()
            );
            break;
        }
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut has_modalias = false;
        let mut has_driver = false;
        for e in rd.filter_map(Result::ok) {
            let Ok(ft) = e.file_type() else { continue };
            let name = e.file_name();
            if name == "modalias" && ft.is_file() {
                has_modalias = true;
            } else if name == "driver" && ft.is_symlink() {
                has_driver = true;
            } else if ft.is_dir() && depth < MAX_DEPTH {
                stack.push((e.path(), depth + 1));
            }
        }
        if has_modalias && !has_driver {
            if let Some(m) = read_modalias(&dir.join("modalias")) {
                if !out.contains(&m) {
                    out.push(m);
                }
            }
        }
    }
    out
}

fn read_modalias(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(super::alias::MAX_PATTERN as u64)
        .read_to_end(&mut buf)
        .ok()?;
    let s = std::str::from_utf8(&buf).ok()?.trim();
    (!s.is_empty()).then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_driverless_devices_without_following_links() {
        let sys = tempfile::tempdir().unwrap();
        let pci = sys.path().join("devices/pci0000:00");
        let virtio_dev = pci.join("0000:00:02.0");
        let bound = pci.join("0000:00:1f.0");
        for d in [&virtio_dev, &bound] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(
            virtio_dev.join("modalias"),
            "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00\n",
        )
        .unwrap();
        std::fs::write(bound.join("modalias"), "pci:v00008086d00002918sv*\n").unwrap();
        std::os::unix::fs::symlink("/nonexistent/driver", bound.join("driver")).unwrap();
        // A cycle made of a link: must not be walked.
        std::os::unix::fs::symlink(&pci, virtio_dev.join("subsystem")).unwrap();
        // An empty modalias (platform devices often have one) is skipped.
        let empty = pci.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        std::fs::write(empty.join("modalias"), "\n").unwrap();
        assert_eq!(
            modaliases(sys.path()),
            ["pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"]
        );
    }

    #[test]
    fn depth_is_bounded() {
        let sys = tempfile::tempdir().unwrap();
        let mut deep = sys.path().join("devices");
        for i in 0..MAX_DEPTH + 3 {
            deep = deep.join(format!("d{i}"));
        }
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("modalias"), "x:too-deep").unwrap();
        assert!(modaliases(sys.path()).is_empty());
        assert!(modaliases(Path::new("/nonexistent")).is_empty());
    }
}
