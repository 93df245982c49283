//! The coldplug walk: the `modalias` of every bus device that has no driver bound, what
//! udev's `udevadm trigger` + `kmod load $MODALIAS` would match at boot.
//!
//! Like udev's enumeration it reads `/sys/bus/<bus>/devices/<device>` (a modalias exists only
//! for devices on a bus), two directory levels, instead of walking the whole `/sys/devices`
//! tree: under TCG that walk cost ~170 ms, this a few. Bounded: at most [`MAX_BUSES`] buses and
//! [`MAX_DEVICES`] devices; the device entries are symbolic links into `/sys/devices`,
//! followed one step to read their `modalias` file, never walked. It only reads; loading is
//! [`super::Loader`]'s job.

use std::path::Path;

/// Buses read at most (a generic kernel registers ~60).
pub const MAX_BUSES: usize = 256;
/// Devices read at most, over all buses.
pub const MAX_DEVICES: usize = 50_000;
/// Rounds of "match, load, look again" in [`super::Loader::coldplug`].
pub const MAX_ROUNDS: usize = 8;

/// The modaliases of driverless bus devices under `sys/bus`, buses and devices in name order,
/// each modalias once.
pub fn modaliases(sys: &Path) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut buses = sorted_names(&sys.join("bus"), MAX_BUSES);
    if buses.len() >= MAX_BUSES {
        log::warn!(
            "{}: more than {MAX_BUSES} buses; coldplug reads the first",
            sys.join("bus").display()
        );
    }
    let mut budget = MAX_DEVICES;
    for bus in buses.drain(..) {
        let devices_dir = sys.join("bus").join(&bus).join("devices");
        for dev in sorted_names(&devices_dir, budget) {
            budget = budget.saturating_sub(1);
            let dir = devices_dir.join(&dev);
            // `driver` is a link; symlink_metadata does not follow it (its target may be gone).
            if std::fs::symlink_metadata(dir.join("driver")).is_ok() {
                continue;
            }
            if let Some(m) = read_modalias(&dir.join("modalias")) {
                if !out.contains(&m) {
                    out.push(m);
                }
            }
        }
        if budget == 0 {
            log::warn!("more than {MAX_DEVICES} bus devices; coldplug stops here");
            break;
        }
    }
    out
}

/// Entry names of `dir`, sorted, at most `max`.
fn sorted_names(dir: &Path, max: usize) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .filter_map(Result::ok)
        .take(max)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    v.sort();
    v
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

    /// A sysfs shape: devices under /devices, linked from /bus/<bus>/devices as the kernel does.
    fn device(sys: &Path, bus: &str, path: &str, modalias: &str, driver: bool) {
        let dir = sys.join("devices").join(path);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("modalias"), format!("{modalias}\n")).unwrap();
        if driver {
            std::os::unix::fs::symlink("/nonexistent/driver", dir.join("driver")).unwrap();
        }
        let links = sys.join("bus").join(bus).join("devices");
        std::fs::create_dir_all(&links).unwrap();
        let name = path.rsplit('/').next().unwrap();
        std::os::unix::fs::symlink(&dir, links.join(name)).unwrap();
    }

    #[test]
    fn finds_driverless_bus_devices() {
        let sys = tempfile::tempdir().unwrap();
        let s = sys.path();
        device(
            s,
            "pci",
            "pci0000:00/0000:00:02.0",
            "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00",
            false,
        );
        device(
            s,
            "pci",
            "pci0000:00/0000:00:1f.0",
            "pci:v00008086d00002918sv*",
            true,
        );
        device(
            s,
            "virtio",
            "pci0000:00/0000:00:02.0/virtio0",
            "virtio:d00000002v00001AF4",
            false,
        );
        // Two devices with one modalias: listed once. An empty modalias is skipped.
        device(
            s,
            "virtio",
            "pci0000:00/0000:00:03.0/virtio1",
            "virtio:d00000002v00001AF4",
            false,
        );
        device(s, "platform", "platform/serial8250", "", false);
        assert_eq!(
            modaliases(s),
            [
                "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00",
                "virtio:d00000002v00001AF4"
            ]
        );
    }

    #[test]
    fn no_sysfs_no_modaliases() {
        assert!(modaliases(Path::new("/nonexistent")).is_empty());
    }
}
