//! The bench's arithmetic and log reading, pure and tested: min/median/max, the growth
//! exponent of a size series, leapboot's milestone and time lines.

use std::time::Duration;

/// Min, median (the lower middle of an even count) and max.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

pub fn spread(values: &[f64]) -> Option<Spread> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(Spread {
        min: v[0],
        median: v[(v.len() - 1) / 2],
        max: v[v.len() - 1],
    })
}

pub fn median(values: &[f64]) -> Option<f64> {
    spread(values).map(|s| s.median)
}

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The exponent k of t ≈ c·n^k, least squares over (ln n, ln t). None with fewer than two
/// distinct sizes or a non-positive value.
pub fn growth_exponent(points: &[(f64, f64)]) -> Option<f64> {
    if points.iter().any(|&(n, t)| n <= 0.0 || t <= 0.0) {
        return None;
    }
    let xs: Vec<f64> = points.iter().map(|p| p.0.ln()).collect();
    let ys: Vec<f64> = points.iter().map(|p| p.1.ln()).collect();
    let n = xs.len() as f64;
    let mx = xs.iter().sum::<f64>() / n;
    let my = ys.iter().sum::<f64>() / n;
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    if sxx < 1e-12 {
        return None;
    }
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    Some(sxy / sxx)
}

/// The exponent in words.
pub fn growth_words(k: f64) -> &'static str {
    if k < 0.8 {
        "sublinear"
    } else if k <= 1.2 {
        "linear"
    } else if k <= 1.6 {
        "superlinear"
    } else {
        "quadratic or worse"
    }
}

/// The milestones `/init` logs: `leapboot milestone <name> <ms since PID 1 started>`.
pub const MILESTONES: [&str; 6] = [
    "pid1-start",
    "first-frame",
    "devices-ready",
    "entries-parsed",
    "kernel-read",
    "kexec-loaded",
];

/// `(name, ms)` of a milestone line, wherever it sits in the line (after a log prefix).
pub fn milestone(line: &str) -> Option<(&str, u64)> {
    let rest = line.split("leapboot milestone ").nth(1)?;
    let mut words = rest.split_whitespace();
    let name = words.next()?;
    let ms = words.next()?.trim_end_matches("ms").parse().ok()?;
    Some((name, ms))
}

/// What leapboot's `leapboot time: N ms (plus D ms waiting for devices, T ms timeout); CPU C
/// ms, ...` line says.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OwnTime {
    /// PID 1 start to after `kexec_file_load`, less the waits.
    pub own_ms: f64,
    pub devices_ms: Option<f64>,
    pub timeout_ms: Option<f64>,
    pub cpu_ms: Option<f64>,
}

fn number_after(line: &str, key: &str) -> Option<f64> {
    let rest = line.split(key).nth(1)?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

pub fn own_time(line: &str) -> Option<OwnTime> {
    Some(OwnTime {
        own_ms: number_after(line, "leapboot time: ")?,
        devices_ms: number_after(line, "(plus "),
        timeout_ms: number_after(line, " waiting for devices, "),
        cpu_ms: number_after(line, "; CPU "),
    })
}

/// `[   0.032] leapboot: ...`: the seconds since PID 1 started that leapboot's logger prefixes.
pub fn log_stamp(line: &str) -> Option<f64> {
    let rest = line.strip_prefix('[')?;
    let (stamp, after) = rest.split_once(']')?;
    if !after.trim_start().starts_with("leapboot") {
        return None;
    }
    stamp.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_the_lower_middle_and_ignores_nan() {
        let s = spread(&[3.0, 1.0, f64::NAN, 2.0, 10.0]).unwrap();
        assert_eq!(
            s,
            Spread {
                min: 1.0,
                median: 2.0,
                max: 10.0
            }
        );
        assert_eq!(median(&[5.0]), Some(5.0));
        assert_eq!(spread(&[]), None);
    }

    #[test]
    fn growth_exponent_recovers_the_power() {
        let lin: Vec<(f64, f64)> = [100.0, 200.0, 400.0]
            .iter()
            .map(|&n| (n, 3.0 * n))
            .collect();
        assert!((growth_exponent(&lin).unwrap() - 1.0).abs() < 1e-9);
        let quad: Vec<(f64, f64)> = [100.0, 200.0, 400.0].iter().map(|&n| (n, n * n)).collect();
        assert!((growth_exponent(&quad).unwrap() - 2.0).abs() < 1e-9);
        assert_eq!(growth_exponent(&[(100.0, 1.0), (100.0, 2.0)]), None);
        assert_eq!(growth_exponent(&[(100.0, 0.0), (200.0, 2.0)]), None);
        assert_eq!(growth_words(1.05), "linear");
        assert_eq!(growth_words(1.9), "quadratic or worse");
        assert_eq!(growth_words(0.3), "sublinear");
    }

    #[test]
    fn milestone_lines_parse_after_a_log_prefix() {
        assert_eq!(
            milestone("[   0.140] leapboot: leapboot milestone first-frame 140"),
            Some(("first-frame", 140))
        );
        assert_eq!(
            milestone("leapboot milestone kexec-loaded 2210"),
            Some(("kexec-loaded", 2210))
        );
        assert_eq!(milestone("leapboot milestone kexec-loaded soon"), None);
        assert_eq!(milestone("leapboot time: 12 ms"), None);
    }

    #[test]
    fn the_time_line_parses_with_or_without_its_details() {
        let l = "[   2.101] leapboot: leapboot time: 1877 ms (plus 503 ms waiting for devices, 0 ms timeout); CPU 640 ms, peak RSS 1736 KiB; kexec now";
        assert_eq!(
            own_time(l),
            Some(OwnTime {
                own_ms: 1877.0,
                devices_ms: Some(503.0),
                timeout_ms: Some(0.0),
                cpu_ms: Some(640.0),
            })
        );
        assert_eq!(
            own_time("leapboot time: 90 ms"),
            Some(OwnTime {
                own_ms: 90.0,
                ..OwnTime::default()
            })
        );
        assert_eq!(own_time("leapboot starting"), None);
        assert_eq!(log_stamp(l), Some(2.101));
        assert_eq!(log_stamp("[    5.740936] Run /init as init process"), None);
    }
}
