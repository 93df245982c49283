//! Fault injection, for proving that PID 1 survives its own bugs: `leapboot.fault=POINT[,POINT]`
//! on the kernel command line makes [`point`] panic the first time each named point is
//! reached (`discovery`, `parser`, `menu`, `loader`), once per boot. The recovery paths that
//! then run are the ones a real bug would take (the per-volume and per-format guards of the
//! pipeline, `/init`'s restart loop), so a scenario can show each one still boots.
//!
//! Harmless by construction: a point fires at most once, nothing else changes, and whoever
//! can put words on the kernel command line can already replace `/init`.

use std::sync::atomic::{AtomicU8, Ordering};

/// The points, in the order a boot reaches them.
pub const POINTS: [&str; 4] = ["discovery", "parser", "menu", "loader"];

/// Bit i: point i is armed (and has not fired yet).
static ARMED: AtomicU8 = AtomicU8::new(0);

/// Arms the points a `leapboot.fault=` on `cmdline` names; returns the unknown names.
pub fn arm_from_cmdline(cmdline: &str) -> Vec<String> {
    let mut unknown = Vec::new();
    let mut bits = 0u8;
    for w in cmdline.split_ascii_whitespace() {
        let Some(v) = w.strip_prefix("leapboot.fault=") else {
            continue;
        };
        for name in v.split(',').filter(|n| !n.is_empty()) {
            match POINTS.iter().position(|p| *p == name) {
                Some(i) => bits |= 1 << i,
                None => unknown.push(name.to_string()),
            }
        }
    }
    ARMED.store(bits, Ordering::SeqCst);
    unknown
}

/// Whether `name` is armed (for tests and logs).
pub fn is_armed(name: &str) -> bool {
    POINTS
        .iter()
        .position(|p| *p == name)
        .is_some_and(|i| ARMED.load(Ordering::SeqCst) & (1 << i) != 0)
}

/// Panics here if `name` is armed, disarming it first (so it fires once).
pub fn point(name: &str) {
    let Some(i) = POINTS.iter().position(|p| *p == name) else {
        return;
    };
    let bit = 1u8 << i;
    if ARMED.fetch_and(!bit, Ordering::SeqCst) & bit != 0 {
        panic!("injected fault at '{name}' (leapboot.fault=)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the armed set is process-wide. It arms only points that no other library
    // test reaches (`menu` and `loader` are in `/init`; `parser` is in the pipeline, which
    // tests run in parallel threads).
    #[test]
    fn a_point_fires_once_and_only_when_named() {
        let unknown = arm_from_cmdline("quiet leapboot.fault=loader,bogus,menu x=1");
        assert_eq!(unknown, vec!["bogus".to_string()]);
        assert!(is_armed("loader") && is_armed("menu") && !is_armed("parser"));
        point("discovery");
        point("nonsense");
        let r = std::panic::catch_unwind(|| point("loader"));
        let msg = r.unwrap_err();
        let msg = msg.downcast_ref::<String>().unwrap();
        assert!(msg.contains("injected fault at 'loader'"), "{msg}");
        point("loader");
        assert!(!is_armed("loader") && is_armed("menu"));
        assert!(arm_from_cmdline("leapboot.timeout=0").is_empty());
        assert!(!is_armed("menu"));
        point("menu");
    }
}
