//! The end-to-end comparison: the arms booted interleaved (a b c d a b c d ...), then the
//! table of min/median/max per arm, the ratios, the split each transcript shows, and
//! leapboot's in-guest milestones.

use anyhow::Context;

use super::arms::{self, Arm, Boot, Setup};
use super::stats::{self, secs, Spread};

/// Every boot of every arm, in the order run.
pub struct Runs {
    pub rounds: usize,
    pub boots: Vec<(Arm, Boot)>,
}

impl Runs {
    fn of(&self, arm: Arm) -> impl Iterator<Item = &Boot> {
        self.boots
            .iter()
            .filter(move |(a, _)| *a == arm)
            .map(|(_, b)| b)
    }

    fn wall(&self, arm: Arm) -> Option<Spread> {
        stats::spread(&self.of(arm).map(|b| secs(b.wall)).collect::<Vec<_>>())
    }

    fn median_of(&self, arm: Arm, f: impl Fn(&Boot) -> Option<f64>) -> Option<f64> {
        stats::median(&self.of(arm).filter_map(f).collect::<Vec<_>>())
    }
}

/// Boots the arms `rounds` times, interleaved.
pub fn run(setup: &Setup, rounds: usize) -> anyhow::Result<Runs> {
    let mut boots = Vec::new();
    for r in 0..rounds {
        for arm in Arm::ALL {
            let b =
                arms::boot(setup, arm).with_context(|| format!("round {} of {rounds}", r + 1))?;
            println!(
                "xtask: bench round {}/{rounds}, arm {}: target after {:.2} s",
                r + 1,
                arm.short(),
                secs(b.wall)
            );
            boots.push((arm, b));
        }
    }
    Ok(Runs { rounds, boots })
}

/// What the goals need from the end-to-end runs.
#[derive(Default)]
pub struct Figures {
    /// (d)/(c) of the medians.
    pub vs_script: Option<f64>,
    /// (d)/(b) of the medians.
    pub vs_floor: Option<f64>,
    /// leapboot's own time in ms and how it was measured.
    pub own: Option<(f64, &'static str)>,
    /// First menu frame, ms after PID 1 started (milestone only).
    pub first_frame: Option<f64>,
}

/// A leapboot milestone in ms since PID 1 started: the milestone line if this `/init` logs
/// it, otherwise the log line that marks the same moment (its `[s.mmm]` stamp), if any.
fn milestone_ms(b: &Boot, name: &str) -> Option<(f64, bool)> {
    if let Some(ms) = b
        .lines
        .iter()
        .filter_map(|(_, l)| stats::milestone(l))
        .find(|(n, _)| *n == name)
        .map(|(_, ms)| ms as f64)
    {
        return Some((ms, true));
    }
    let stamp = |pred: &dyn Fn(&str) -> bool| {
        let s = b
            .lines
            .iter()
            .filter(|(_, l)| pred(l))
            .find_map(|(_, l)| stats::log_stamp(l))?;
        Some((s * 1000.0, false))
    };
    let before_kexec: Vec<&str> = b
        .lines
        .iter()
        .map(|(_, l)| l.as_str())
        .take_while(|l| !l.contains("leapboot time:"))
        .collect();
    match name {
        "pid1-start" => stamp(&|l| l.contains("leapboot: leapboot ") && l.contains(" starting")),
        "devices-ready" => stamp(&|l| l.contains("leapboot: found ") && l.contains(" disk(s) in ")),
        "entries-parsed" => stamp(&|l| l.contains("leapboot: discovery done")),
        "kernel-read" => before_kexec
            .iter()
            .rev()
            .find(|l| l.contains("leapboot: loaded ") && l.contains(":/"))
            .and_then(|l| stats::log_stamp(l))
            .map(|s| (s * 1000.0, false)),
        "kexec-loaded" => stamp(&|l| l.contains("leapboot time:")),
        _ => None,
    }
}

fn fallback_source(name: &str) -> &'static str {
    match name {
        "pid1-start" => "stamp of `leapboot … starting`",
        "devices-ready" => "stamp of `found N disk(s) in …`",
        "entries-parsed" => "stamp of `discovery done`",
        "kernel-read" => "stamp of the last `loaded <volume>:<file>`",
        "kexec-loaded" => "stamp of `leapboot time:` (logged after kexec_file_load returned)",
        _ => "not logged by this `/init`",
    }
}

fn row_spread(s: Option<Spread>) -> String {
    match s {
        Some(s) => format!("{:.2} s | {:.2} s | {:.2} s", s.min, s.median, s.max),
        None => "– | – | –".into(),
    }
}

fn opt_s(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.2} s"))
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.0} ms"))
}

/// The markdown of the end-to-end section and the figures the goals use.
pub fn render(r: &Runs) -> (String, Figures) {
    let mut md = format!(
        "End to end: QEMU start to the target's `LEAPBOOT-TARGET-OK` line, {} interleaved round(s) of the arms, the disk of `{}` on NVMe.\n\n",
        r.rounds,
        arms::LAYOUT
    );
    md += "| arm | min | median | max |\n| --- | --- | --- | --- |\n";
    for arm in Arm::ALL {
        md += &format!("| {} | {} |\n", arm.label(), row_spread(r.wall(arm)));
    }
    let med = |a| r.wall(a).map(|s| s.median);
    let ratio = |x: Option<f64>, y: Option<f64>| Some(x? / y?);
    let vs_script = ratio(med(Arm::Leapboot), med(Arm::Script));
    let vs_floor = ratio(med(Arm::Leapboot), med(Arm::Floor));
    md += &format!(
        "\nRatios of the medians: (d)/(c) = {}, (d)/(b) = {}.\n\n",
        vs_script.map_or("–".into(), |v| format!("{v:.3}")),
        vs_floor.map_or("–".into(), |v| format!("{v:.3}"))
    );

    md += "Where the time goes (medians, host clock, from each serial transcript): the first kernel until it runs `/init` (\"Run /init as init process\"); PID 1 until it kexecs (the scripts' `bench-script: kexec -e` line, leapboot's `leapboot time:` line); the second kernel from there to the target's line.\n\n";
    md += "| arm | first kernel to `/init` | `/init` to kexec | kexec to target | total |\n| --- | --- | --- | --- | --- |\n";
    for arm in Arm::ALL {
        let total = opt_s(r.wall(arm).map(|s| s.median));
        if arm == Arm::Direct {
            // The target's own command line has `quiet`: the kernel prints no "Run /init".
            md += &format!(
                "| (a) | – (one kernel, booted `quiet`) | no kexec | no kexec | {total} |\n"
            );
            continue;
        }
        let pid1 = r.median_of(arm, |b| b.pid1().map(secs));
        let userspace = r.median_of(arm, |b| Some(secs(b.kexec(arm)?) - secs(b.pid1()?)));
        let second = r.median_of(arm, |b| Some(secs(b.wall) - secs(b.kexec(arm)?)));
        md += &format!(
            "| ({}) | {} | {} | {} | {total} |\n",
            arm.short(),
            opt_s(pid1),
            opt_s(userspace),
            opt_s(second)
        );
    }

    md += "\nleapboot in the guest (arm d; `first-frame` from arm e, the one that draws a menu), ms since PID 1 started (`pid1-start`: the kernel's uptime when PID 1 started), median: the `leapboot milestone <name> <ms>` lines where this `/init` logs them, otherwise the log line that marks the same moment.\n\n";
    md += "| milestone | median | source |\n| --- | --- | --- |\n";
    let mut any_milestone = false;
    let mut kernel_read = None;
    let mut first_frame = None;
    for name in stats::MILESTONES {
        // Arm d draws no menu (timeout 0): its first frame is arm e's.
        let arm = if name == "first-frame" {
            Arm::Menu
        } else {
            Arm::Leapboot
        };
        let vals: Vec<(f64, bool)> = r.of(arm).filter_map(|b| milestone_ms(b, name)).collect();
        let from_line = vals.iter().any(|v| v.1);
        any_milestone |= from_line;
        let m = stats::median(&vals.iter().map(|v| v.0).collect::<Vec<_>>());
        if name == "kernel-read" {
            kernel_read = m.map(|v| (v, from_line));
        }
        if name == "first-frame" && from_line {
            first_frame = m;
        }
        let source = if from_line && arm == Arm::Menu {
            "milestone line, arm e"
        } else if from_line {
            "milestone line"
        } else {
            fallback_source(name)
        };
        md += &format!("| `{name}` | {} | {source} |\n", opt_ms(m));
    }
    let times: Vec<stats::OwnTime> = r
        .of(Arm::Leapboot)
        .filter_map(|b| b.lines.iter().find_map(|(_, l)| stats::own_time(l)))
        .collect();
    let own_line = stats::median(&times.iter().map(|t| t.own_ms).collect::<Vec<_>>());
    let devices = stats::median(
        &times
            .iter()
            .filter_map(|t| t.devices_ms)
            .collect::<Vec<_>>(),
    );
    let cpu = stats::median(&times.iter().filter_map(|t| t.cpu_ms).collect::<Vec<_>>());
    md += &format!(
        "\nleapboot's `leapboot time:` line (median): {} from PID 1 start to after `kexec_file_load`, less {} waiting for devices; CPU {}.{}\n",
        opt_ms(own_line),
        opt_ms(devices),
        opt_ms(cpu),
        if any_milestone {
            ""
        } else {
            " This `/init` logs no milestone lines yet: the split above is read from its ordinary log lines."
        }
    );
    // The goal's "own time": PID 1 start to the kexec_file_load call. The kernel-read
    // milestone is that moment, or the stamp of the log line that says the last file was
    // read; failing both, the time line plus the device wait is an upper bound (it includes
    // the kernel's hashing inside kexec_file_load).
    let own = match kernel_read {
        Some((v, true)) => Some((v, "the `kernel-read` milestone")),
        Some((v, false)) => Some((
            v,
            "the stamp of leapboot's last `loaded <volume>:<file>` line, just before kexec_file_load (no milestones logged)",
        )),
        None => match (own_line, devices) {
            (Some(o), d) => Some((
                o + d.unwrap_or(0.0),
                "upper bound: `leapboot time:` plus its device wait, which includes the kernel's work in kexec_file_load (no milestones logged)",
            )),
            _ => None,
        },
    };
    (
        md,
        Figures {
            vs_script,
            vs_floor,
            own,
            first_frame,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn boot(wall: f64, lines: &[(f64, &str)]) -> Boot {
        Boot {
            wall: Duration::from_secs_f64(wall),
            lines: lines
                .iter()
                .map(|&(t, l)| (Duration::from_secs_f64(t), l.to_string()))
                .collect(),
        }
    }

    fn script(wall: f64) -> Boot {
        boot(
            wall,
            &[
                (5.0, "[    4.0] Run /init as init process"),
                (6.0, arms::SCRIPT_KEXEC),
                (wall, "LEAPBOOT-TARGET-OK cmdline=x"),
            ],
        )
    }

    #[test]
    fn milestones_win_over_log_stamps_and_the_ratios_use_medians() {
        let old = boot(
            9.0,
            &[
                (5.0, "[    4.0] Run /init as init process"),
                (5.1, "[   0.030] leapboot: leapboot 0.1.0 starting"),
                (5.5, "[   0.400] leapboot: found 1 disk(s) in 300 ms: nvme0n1"),
                (5.9, "[   0.800] leapboot: loaded nvme0n1p2:/vmlinuz (13.5 MiB)"),
                (6.5, "[   1.400] leapboot: leapboot time: 1100 ms (plus 300 ms waiting for devices, 0 ms timeout); CPU 900 ms, peak RSS 1 KiB; kexec now"),
            ],
        );
        let new = boot(
            8.0,
            &[
                (5.0, "[    4.0] Run /init as init process"),
                (5.1, "[   0.030] leapboot: leapboot milestone first-frame 60"),
                (5.9, "[   0.090] leapboot: leapboot milestone kernel-read 90"),
                (6.0, "[   0.100] leapboot: leapboot time: 95 ms (plus 0 ms waiting for devices, 0 ms timeout); CPU 80 ms, peak RSS 1 KiB; kexec now"),
            ],
        );
        let runs = Runs {
            rounds: 2,
            boots: vec![
                (Arm::Direct, boot(4.0, &[])),
                (Arm::Floor, script(7.0)),
                (Arm::Script, script(10.0)),
                (Arm::Leapboot, old),
                (Arm::Direct, boot(4.0, &[])),
                (Arm::Floor, script(7.0)),
                (Arm::Script, script(10.0)),
                (Arm::Leapboot, new),
                (
                    Arm::Menu,
                    boot(
                        9.5,
                        &[(
                            5.2,
                            "[   0.120] leapboot: leapboot milestone first-frame 120",
                        )],
                    ),
                ),
            ],
        };
        let (md, fig) = render(&runs);
        // Lower middle of (8, 9) over lower middle of (10, 10).
        assert_eq!(fig.vs_script, Some(0.8));
        assert!((fig.vs_floor.unwrap() - 8.0 / 7.0).abs() < 1e-9);
        // One boot logged milestones: those are the ones taken (median of one value); the
        // first frame is the menu arm's, whatever arm d logs.
        assert_eq!(fig.first_frame, Some(120.0));
        assert!(
            md.contains("| `first-frame` | 120 ms | milestone line, arm e |"),
            "{md}"
        );
        assert_eq!(fig.own.map(|o| o.0), Some(90.0));
        assert!(md.contains("| `devices-ready` | 400 ms | stamp of"), "{md}");
        assert!(
            md.contains("| (c) | 5.00 s | 1.00 s | 4.00 s | 10.00 s |"),
            "{md}"
        );
    }
}
