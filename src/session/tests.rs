//! One table-driven test per session rule.

use std::time::{Duration, Instant};

use super::*;
use crate::cmdline;
use crate::config::Config;
use crate::entry::tests::entry;
use crate::entry::{BootList, FileRef, Format, Timeout};
use crate::menu::keys::Key;
use crate::menu::state::{Lock, Menu};

fn list(ids: &[&str], default: Option<usize>, timeout: Option<Timeout>) -> BootList {
    BootList {
        entries: ids.iter().map(|id| entry(id, "vda1")).collect(),
        default,
        timeout,
    }
}

fn policy(cmdline: &str, toml: &str) -> Policy {
    let (config, problems) = Config::parse(toml);
    assert!(problems.is_empty(), "{problems:?}");
    Policy::new(&cmdline::parse(cmdline), &config)
}

#[test]
fn timeout_precedence() {
    // (kernel command line, config file, boot configuration's timeout, expected)
    let cases: &[(&str, &str, Option<Timeout>, Timeout)] = &[
        ("", "", None, DEFAULT_TIMEOUT),
        ("", "", Some(Timeout::Secs(2)), Timeout::Secs(2)),
        ("", "timeout = 7", Some(Timeout::Secs(2)), Timeout::Secs(7)),
        (
            "leapboot.timeout=0",
            "timeout = 7",
            Some(Timeout::Secs(2)),
            Timeout::Secs(0),
        ),
        ("leapboot.timeout=-1", "", None, Timeout::Forever),
        ("", "timeout = -1", Some(Timeout::Secs(3)), Timeout::Forever),
    ];
    for (cmd, toml, own, want) in cases {
        let p = policy(cmd, toml);
        assert_eq!(
            p.timeout(&list(&["a"], None, *own)),
            *want,
            "{cmd:?} {toml:?} {own:?}"
        );
    }
}

#[test]
fn default_precedence() {
    // (kernel command line, config file, boot configuration's default, expected index, source)
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<usize>,
        Option<usize>,
        DefaultSource,
    );
    let cases: &[Case] = &[
        ("", "", None, Some(0), DefaultSource::First),
        ("", "", Some(2), Some(2), DefaultSource::BootConfig),
        (
            "",
            "default = \"b\"",
            Some(2),
            Some(1),
            DefaultSource::Configured,
        ),
        (
            "leapboot.default=c",
            "default = \"b\"",
            Some(0),
            Some(2),
            DefaultSource::Configured,
        ),
        // A glob over ids, and over titles.
        (
            "leapboot.default=b*",
            "",
            None,
            Some(1),
            DefaultSource::Configured,
        ),
        // A pattern that matches nothing falls back to the boot configuration's default...
        (
            "leapboot.default=zz",
            "",
            Some(2),
            Some(2),
            DefaultSource::BootConfig,
        ),
        // ...or to the first entry.
        (
            "leapboot.default=zz",
            "",
            None,
            Some(0),
            DefaultSource::First,
        ),
        // An out-of-range default from a boot configuration is no default.
        ("", "", Some(9), Some(0), DefaultSource::First),
    ];
    for (cmd, toml, own, want, source) in cases {
        let p = policy(cmd, toml);
        let c = p.default_entry(&list(&["a", "b", "c"], *own, None));
        assert_eq!(
            (c.index, c.source),
            (*want, *source),
            "{cmd:?} {toml:?} {own:?}"
        );
        assert_eq!(c.is_named(), *source != DefaultSource::First);
    }
    let c = policy("leapboot.default=zz", "").default_entry(&list(&["a"], None, None));
    assert_eq!(c.unmatched.as_deref(), Some("zz"));
    let empty = policy("", "").default_entry(&BootList::default());
    assert_eq!(empty.index, None);
    assert!(!empty.is_named());
}

#[test]
fn arguments_are_applied_bootdir_first_then_append() {
    let mut l = list(&["bls", "plain"], None, None);
    l.entries[1].format = Format::Bootdir;
    l.entries[0].cmdline = "ro".into();
    let p = policy(
        "leapboot.append=quiet",
        "bootdir_args = \"root=/dev/vda2\"\nappend = \"ignored\"",
    );
    p.apply(&mut l);
    assert_eq!(l.entries[0].cmdline, "ro quiet");
    assert_eq!(l.entries[1].cmdline, "root=/dev/vda2 quiet");
}

#[test]
fn the_command_line_can_lock_but_not_unlock() {
    assert!(policy("leapboot.locked", "").lock.locked);
    assert!(policy("", "locked = true").lock.locked);
    assert!(!policy("", "").lock.locked);
}

#[test]
fn settle_knobs() {
    let p = policy("leapboot.settle_ms=250 leapboot.device_wait_ms=3000", "");
    assert_eq!(p.settle, Duration::from_millis(250));
    assert_eq!(p.device_wait, Duration::from_secs(3));
    assert!(!p.settle_always);
    assert!(policy("leapboot.settle_always", "").settle_always);
    assert!(policy("", "settle_always = true").settle_always);
    assert!(!policy("leapboot.settle_always=0", "").settle_always);
}

/// A discovery run: steps of (ms since start, what happens), then what `next` says.
enum Step {
    Seen(&'static str),
    Removed(&'static str),
    Module,
    Read(&'static str),
    Named(bool),
    NetEntries(bool),
}

fn run(policy: &Policy, steps: &[(u64, Step)], at: u64) -> Next {
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut d = Discovery::new(t0, policy);
    for (t, s) in steps {
        match s {
            Step::Seen(n) => {
                d.seen(n, ms(*t));
            }
            Step::Removed(n) => d.removed(n),
            Step::Module => d.module_loaded(ms(*t)),
            Step::Read(n) => d.read(n),
            Step::Named(b) => d.default_named(*b),
            Step::NetEntries(b) => d.network_entries(*b),
        }
    }
    d.next(ms(at))
}

#[test]
fn discovery_rules() {
    use Step::*;
    let p = policy("leapboot.settle_ms=500 leapboot.device_wait_ms=10000", "");
    let always = policy(
        "leapboot.settle_ms=500 leapboot.device_wait_ms=10000 leapboot.settle_always",
        "",
    );
    let read = |n: &str| Next::Read(vec![n.to_string()]);
    let wait = |ms: u64| Next::Wait(Duration::from_millis(ms));
    type Case<'a> = (&'a str, &'a Policy, Vec<(u64, Step)>, u64, Next);
    let cases: Vec<Case> = vec![
        (
            "nothing yet: wait up to the longest wait",
            &p,
            vec![],
            0,
            wait(10_000),
        ),
        (
            "no disk ever: give up at the longest wait",
            &p,
            vec![],
            10_000,
            Next::Done(Done::MaxWait),
        ),
        (
            "a disk seen is read at once",
            &p,
            vec![(10, Seen("vda"))],
            10,
            read("vda"),
        ),
        (
            "every unread disk is asked for",
            &p,
            vec![(10, Seen("vda")), (20, Seen("vdb")), (20, Read("vda"))],
            20,
            read("vdb"),
        ),
        (
            "read, default named: done at once, no settle wait",
            &p,
            vec![(10, Seen("vda")), (30, Read("vda")), (30, Named(true))],
            30,
            Next::Done(Done::DefaultFound),
        ),
        (
            "read, no default named: the settle rule",
            &p,
            vec![(10, Seen("vda")), (30, Read("vda")), (30, Named(false))],
            30,
            wait(480),
        ),
        (
            "settle time passed",
            &p,
            vec![(10, Seen("vda")), (30, Read("vda"))],
            510,
            Next::Done(Done::Settled),
        ),
        (
            "a module load restarts the settle time",
            &p,
            vec![(10, Seen("vda")), (30, Read("vda")), (400, Module)],
            510,
            wait(390),
        ),
        (
            "a new disk after the default was found is read first",
            &p,
            vec![
                (10, Seen("vda")),
                (30, Read("vda")),
                (30, Named(true)),
                (40, Seen("vdb")),
            ],
            40,
            read("vdb"),
        ),
        (
            "settle_always waits even with a default",
            &always,
            vec![(10, Seen("vda")), (30, Read("vda")), (30, Named(true))],
            30,
            wait(480),
        ),
        (
            "the longest wait ends even a busy settle",
            &p,
            vec![(10, Seen("vda")), (30, Read("vda")), (9_990, Module)],
            10_000,
            Next::Done(Done::MaxWait),
        ),
        (
            "a disk gone before it was read is forgotten",
            &p,
            vec![(10, Seen("vda")), (20, Removed("vda"))],
            20,
            wait(9_980),
        ),
        (
            "no disk, entries from the network: the settle rule, not the longest wait",
            &p,
            vec![(300, NetEntries(true))],
            400,
            wait(100),
        ),
        (
            "no disk, the network's entries, settled",
            &p,
            vec![(300, Module), (300, NetEntries(true))],
            800,
            Next::Done(Done::Settled),
        ),
        (
            "a disk seen twice is one disk",
            &p,
            vec![(10, Seen("vda")), (20, Read("vda")), (300, Seen("vda"))],
            510,
            Next::Done(Done::Settled),
        ),
    ];
    for (what, pol, steps, at, want) in cases {
        assert_eq!(run(pol, &steps, at), want, "{what}");
    }
}

fn menu(ids: &[&str], timeout: Timeout, lock: Lock) -> Menu {
    let l = list(ids, None, None);
    Menu::new(l.entries, Some(0), timeout, lock)
}

#[test]
fn preload_the_default_while_the_countdown_runs() {
    let mut pre = Preload::default();
    let mut m = menu(&["a", "b"], Timeout::Secs(5), Lock::default());
    assert_eq!(
        pre.wanted(&m),
        Some(0),
        "counting down: load the default ahead"
    );
    let a = m.entries()[0].clone();
    pre.done(&a, &a.cmdline, true);
    assert_eq!(pre.wanted(&m), None, "loaded once only");
    assert!(pre.is_loaded(&a, &a.cmdline));
    assert!(
        !pre.is_loaded(&a, "edited"),
        "another command line is another load"
    );
    assert!(
        !pre.is_loaded(&m.entries()[1], ""),
        "another entry is another load"
    );
    pre.forget();
    assert!(!pre.is_loaded(&a, &a.cmdline));
    assert_eq!(
        pre.wanted(&m),
        None,
        "a failed or replaced load is not retried ahead"
    );

    // A key stops the countdown: nothing to load ahead.
    let mut pre = Preload::default();
    m.key(Key::Down);
    assert_eq!(pre.wanted(&m), None);
    // No countdown at all.
    let forever = menu(&["a"], Timeout::Forever, Lock::default());
    assert_eq!(pre.wanted(&forever), None);
    // A late disk's new default is loaded ahead in its turn.
    let mut m = menu(&["a"], Timeout::Secs(5), Lock::default());
    pre.done(&m.entries()[0].clone(), "", true);
    let mut l = list(&["a", "z"], None, None);
    l.entries[1].cmdline = "new".into();
    m.replace_entries(l.entries, Some(1));
    assert_eq!(pre.wanted(&m), Some(1));
    // Locked: the menu's default moves to an allowed entry, and that one is loaded ahead;
    // with no allowed entry at all, nothing is.
    let lock = |allowed: &str| Lock {
        locked: true,
        hash: None,
        allowed: vec![allowed.into()],
        trusted: None,
    };
    let m = menu(&["a", "b"], Timeout::Secs(5), lock("b"));
    assert_eq!(Preload::default().wanted(&m), Some(1));
    let m = menu(&["a", "b"], Timeout::Secs(5), lock("zz"));
    assert_eq!(Preload::default().wanted(&m), None);
    // A network entry (any of its files on a server) loads only when it boots.
    for initrd_only in [false, true] {
        let mut l = list(&["net"], None, None);
        let server = FileRef {
            volume: "eth0 http://10.0.2.2".into(),
            path: "/vmlinuz".into(),
        };
        if initrd_only {
            l.entries[0].initrds.push(server);
        } else {
            l.entries[0].kernel = server;
        }
        let m = Menu::new(l.entries, Some(0), Timeout::Secs(5), Lock::default());
        assert_eq!(
            Preload::default().wanted(&m),
            None,
            "initrd only: {initrd_only}"
        );
    }
}

#[test]
fn the_prompt_refuses_reboot_and_power_off_when_locked() {
    // (key, locked, expected)
    let cases = [
        (b'r', false, PromptKey::Reboot),
        (b'R', false, PromptKey::Reboot),
        (b'p', false, PromptKey::PowerOff),
        (b'\r', false, PromptKey::Rescan),
        (b'\n', true, PromptKey::Rescan),
        (b'r', true, PromptKey::Refused),
        (b'p', true, PromptKey::Refused),
        (b'x', false, PromptKey::Ignored),
        (b'x', true, PromptKey::Ignored),
    ];
    for (k, locked, want) in cases {
        assert_eq!(prompt_key(k, locked), want, "{} locked={locked}", k as char);
    }
    assert!(prompt_text(true, Duration::from_secs(10)).contains("not offered"));
    assert!(prompt_text(false, Duration::from_secs(10)).contains("press r to reboot"));
}

#[test]
fn new_entries_are_those_with_new_ids() {
    let old = list(&["a", "b"], None, None);
    let new = list(&["a", "c", "b", "d"], None, None);
    let ids: Vec<&str> = new_entries(&old, &new)
        .iter()
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(ids, ["c", "d"]);
}

#[test]
fn allow_and_deny_devices() {
    let parts = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // (config, disk, its partitions, disk opened?, [(volume, read?)])
    type Case = (
        &'static str,
        &'static str,
        Vec<String>,
        bool,
        Vec<(&'static str, bool)>,
    );
    let cases: Vec<Case> = vec![
        ("", "vda", parts(&["vda1"]), true, vec![("vda1", true)]),
        (
            "deny_devices = [\"vdb*\"]",
            "vdb",
            parts(&["vdb1"]),
            false,
            vec![("vdb1", false)],
        ),
        (
            "allow_devices = [\"nvme0n1p2\"]",
            "nvme0n1",
            parts(&["nvme0n1p1", "nvme0n1p2"]),
            true,
            vec![("nvme0n1p1", false), ("nvme0n1p2", true)],
        ),
        (
            "allow_devices = [\"vda\"]\ndeny_devices = [\"vda1\"]",
            "vda",
            parts(&["vda1", "vda2"]),
            true,
            vec![("vda1", false), ("vda2", true)],
        ),
        (
            "allow_devices = [\"sd*\"]",
            "vda",
            parts(&["vda1"]),
            false,
            vec![],
        ),
    ];
    for (toml, disk, partitions, opened, volumes) in cases {
        let p = policy("", toml);
        assert_eq!(p.disk_wanted(disk, &partitions), opened, "{toml}: {disk}");
        for (v, want) in volumes {
            assert_eq!(p.volume_wanted(v, disk), want, "{toml}: {v}");
        }
    }
}

#[test]
fn the_host_resolves_the_list_as_init_boots_it() {
    let mut l = list(&["a", "b"], None, Some(Timeout::Secs(2)));
    let p = Policy::for_host(Some("default = \"b\"\nappend = \"quiet\""));
    p.resolve(&mut l);
    assert_eq!(l.default, Some(1));
    assert_eq!(l.timeout, Some(Timeout::Secs(2)));
    assert_eq!(l.entries[0].cmdline, "quiet");
    let mut l = list(&["a"], None, None);
    Policy::for_host(None).resolve(&mut l);
    assert_eq!((l.default, l.timeout), (Some(0), Some(DEFAULT_TIMEOUT)));
    // A broken file: its problems are logged, the defaults used.
    let mut l = list(&["a"], None, None);
    Policy::for_host(Some("timeout = = 1")).resolve(&mut l);
    assert_eq!(l.timeout, Some(DEFAULT_TIMEOUT));
}

#[test]
fn network_entries_join_as_the_mode_says() {
    use crate::cmdline::NetMode;
    use crate::entry::{DefaultRule, Found};
    let net = || Found {
        entries: vec![
            entry("net-a", "tftp://10.0.2.2"),
            entry("net-b", "tftp://10.0.2.2"),
        ],
        default: Some(DefaultRule::Index(1)),
        timeout: Some(Timeout::Secs(9)),
        ..Found::default()
    };
    // (mode, disk entries, expected ids, expected default id, expected timeout)
    type Case = (
        NetMode,
        Vec<&'static str>,
        Vec<&'static str>,
        Option<&'static str>,
        Option<Timeout>,
    );
    let cases: Vec<Case> = vec![
        (NetMode::Off, vec!["disk"], vec!["disk"], None, None),
        (
            NetMode::On,
            vec!["disk"],
            vec!["disk", "net-a", "net-b"],
            None,
            None,
        ),
        (
            NetMode::On,
            vec![],
            vec!["net-a", "net-b"],
            Some("net-b"),
            Some(Timeout::Secs(9)),
        ),
        (
            NetMode::First,
            vec!["disk"],
            vec!["net-a", "net-b", "disk"],
            Some("net-b"),
            Some(Timeout::Secs(9)),
        ),
    ];
    for (mode, disks, ids, default, timeout) in cases {
        let l = with_network(list(&disks, None, None), &[net()], mode);
        let got: Vec<&str> = l.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(got, ids, "{mode:?}");
        assert_eq!(
            l.default.map(|i| l.entries[i].id.as_str()),
            default,
            "{mode:?}"
        );
        assert_eq!(l.timeout, timeout, "{mode:?}");
    }
    // A disk's own default stays the default in On mode.
    let l = with_network(list(&["d1", "d2"], Some(1), None), &[net()], NetMode::On);
    assert_eq!(l.default, Some(1));
}

#[test]
fn a_rescan_asks_the_network_again_once_its_bring_up_finished() {
    use crate::cmdline::NetMode::*;
    for (mode, finished, want) in [
        (Off, true, false),
        (On, true, true),
        (On, false, false),
        (First, true, true),
        (First, false, false),
    ] {
        assert_eq!(network_again(mode, finished), want, "{mode:?} {finished}");
    }
}

#[test]
fn when_the_boot_waits_for_the_network() {
    use crate::cmdline::NetMode::*;
    // (mode, network pending, disks have entries, wait?)
    let cases = [
        (Off, true, false, false),
        (On, true, true, false),
        (On, true, false, true),
        (On, false, false, false),
        (First, true, true, true),
        (First, false, true, false),
    ];
    for (mode, pending, have, want) in cases {
        assert_eq!(
            wait_for_network(mode, pending, have),
            want,
            "{mode:?} {pending} {have}"
        );
    }
}
