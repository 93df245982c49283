//! Table-style tests of the state machine: keys in, state and actions out.

use super::*;
use crate::entry::{EntryKind, EntrySource, FileRef};

pub(crate) fn entry(id: &str) -> BootEntry {
    BootEntry {
        id: id.into(),
        title: format!("Title {id}"),
        version: None,
        kernel: FileRef {
            volume: "vda1".into(),
            path: format!("/vmlinuz-{id}"),
        },
        initrds: vec![],
        cmdline: format!("console=ttyS0 id={id}"),
        devicetree: None,
        format: crate::entry::Format::Bls,
        kind: EntryKind::Linux,
        source: EntrySource {
            volume: "vda1".into(),
            file: format!("/loader/entries/{id}.conf"),
            line: Some(1),
        },
    }
}

fn menu(n: usize, default: Option<usize>, timeout: Timeout) -> Menu {
    let entries = (0..n).map(|i| entry(&format!("e{i}"))).collect();
    Menu::new(entries, default, timeout, Lock::default())
}

fn press(m: &mut Menu, keys: &[Key]) -> Vec<Action> {
    keys.iter().filter_map(|k| m.key(*k)).collect()
}

fn boot(index: usize, cmdline: &str) -> Action {
    Action::Boot {
        index,
        cmdline: cmdline.into(),
    }
}

#[test]
fn the_countdown_boots_the_default_and_any_key_stops_it() {
    let mut m = menu(3, Some(1), Timeout::Secs(2));
    assert_eq!((m.selected(), m.countdown()), (1, Some(2)));
    assert_eq!(m.tick(), None);
    assert_eq!(m.tick(), Some(Action::Autoboot));
    assert_eq!(m.boot_order(), vec![1, 0, 2]);

    let mut m = menu(3, Some(1), Timeout::Secs(2));
    m.tick();
    press(&mut m, &[Key::Unknown]);
    assert_eq!(m.countdown(), None);
    assert_eq!(m.tick(), None);
    assert_eq!(m.tick(), None);
}

#[test]
fn zero_boots_at_once_and_forever_never_counts() {
    assert_eq!(
        menu(2, None, Timeout::Secs(0)).due(),
        Some(Action::Autoboot)
    );
    let mut m = menu(2, None, Timeout::Forever);
    assert_eq!(m.countdown(), None);
    for _ in 0..100 {
        assert_eq!(m.tick(), None);
    }
    assert_eq!(
        menu(0, None, Timeout::Secs(0)).due(),
        None,
        "nothing to boot"
    );
}

#[test]
fn a_key_typed_before_a_hidden_autoboot_shows_the_menu() {
    // Timeout 0 hides the menu; a real key shows it with the countdown stopped.
    let mut m = menu(2, Some(1), Timeout::Secs(0));
    assert!(m.reveal_hidden(&[Key::Char(' ')]));
    assert_eq!((m.due(), m.countdown(), m.selected()), (None, None, 1));
    assert!(m.status().unwrap().contains("a key was pressed"));
    assert_eq!(m.tick(), None);
    // Nothing typed, or only line noise (NUL, 0xFF: unknown keys): the autoboot goes on.
    let noise = crate::menu::keys::Decoder::new().feed(&[0x00, 0xff, 0x00]);
    for typed in [&[][..], &noise[..]] {
        let mut m = menu(2, Some(1), Timeout::Secs(0));
        assert!(!m.reveal_hidden(typed));
        assert_eq!(m.due(), Some(Action::Autoboot));
    }
    // A countdown that is running is not "hidden": keys go through `key` as always.
    let mut m = menu(2, Some(1), Timeout::Secs(5));
    assert!(!m.reveal_hidden(&[Key::Enter]));
    assert_eq!(m.countdown(), Some(5));
}

#[test]
fn navigation_keys() {
    use Key::*;
    let table: &[(&[Key], usize)] = &[
        (&[Down], 1),
        (
            &[
                Down, Down, Down, Down, Down, Down, Down, Down, Down, Down, Down, Down,
            ],
            11,
        ),
        (&[Up], 0),
        (&[Char('j'), Char('j'), Char('k')], 1),
        (&[End], 11),
        (&[End, Home], 0),
        (&[Char('G'), Char('g')], 0),
        (&[PageDown], 5),
        (&[PageDown, PageDown, PageDown], 11),
        (&[End, PageUp], 6),
        (&[Char('3')], 2),
        (&[Char('9')], 8),
        (&[Char('0')], 9),
    ];
    for (keys, want) in table {
        let mut m = menu(12, None, Timeout::Secs(5));
        m.set_page(5);
        press(&mut m, keys);
        assert_eq!(m.selected(), *want, "{keys:?}");
        assert!(m.top() <= m.selected() && m.selected() < m.top() + 5);
    }
    let mut m = menu(2, None, Timeout::Secs(5));
    press(&mut m, &[Char('9')]);
    assert_eq!(m.selected(), 0, "a digit past the end does nothing");
}

#[test]
fn pick_the_third_entry() {
    let mut m = menu(4, Some(0), Timeout::Secs(5));
    let a = press(&mut m, &[Key::Down, Key::Down, Key::Enter]);
    assert_eq!(a, vec![boot(2, "console=ttyS0 id=e2")]);
}

#[test]
fn edit_the_command_line_then_boot() {
    let mut m = menu(2, None, Timeout::Secs(5));
    press(&mut m, &[Key::Char('e')]);
    assert!(matches!(m.view(), View::Edit(_)));
    let mut keys = vec![Key::Char(' ')];
    keys.extend("x=1".chars().map(Key::Char));
    keys.push(Key::Enter);
    assert_eq!(
        press(&mut m, &keys),
        vec![boot(0, "console=ttyS0 id=e0 x=1")]
    );
    // After a failed boot the edit is kept for the next try.
    m.boot_failed("kexec failed");
    assert_eq!(m.status(), Some("kexec failed"));
    assert_eq!(m.view(), &View::List);
    assert_eq!(
        press(&mut m, &[Key::Enter]),
        vec![boot(0, "console=ttyS0 id=e0 x=1")]
    );
    // Escape drops an edit.
    press(&mut m, &[Key::Char('e'), Key::Ctrl('u'), Key::Esc]);
    assert_eq!(m.view(), &View::List);
    assert_eq!(
        press(&mut m, &[Key::Enter]),
        vec![boot(0, "console=ttyS0 id=e0 x=1")]
    );
}

#[test]
fn views_open_and_close() {
    use Key::*;
    let table: &[(&[Key], View)] = &[
        (&[Char('d')], View::Details),
        (&[Tab], View::Details),
        (&[Tab, Esc], View::List),
        (&[Char('d'), Char('q')], View::List),
        (&[Char('?')], View::Help),
        (&[Char('?'), Char('x')], View::List),
        (&[Char('l')], View::Log { scroll: 0 }),
        (&[Char('l'), Up, Up, PageUp, Down], View::Log { scroll: 11 }),
        (&[Char('l'), Esc], View::List),
    ];
    for (keys, want) in table {
        let mut m = menu(2, None, Timeout::Secs(5));
        m.set_page(10);
        press(&mut m, keys);
        assert_eq!(m.view(), want, "{keys:?}");
    }
    let mut m = menu(3, None, Timeout::Secs(5));
    assert_eq!(
        press(&mut m, &[Char('d'), Down, Enter]),
        vec![boot(1, "console=ttyS0 id=e1")]
    );
}

#[test]
fn machine_actions() {
    for (c, a) in [
        ('r', Action::Rescan),
        ('b', Action::Reboot),
        ('p', Action::PowerOff),
    ] {
        let mut m = menu(1, None, Timeout::Secs(5));
        assert_eq!(press(&mut m, &[Key::Char(c)]), vec![a]);
    }
}

fn hash(pw: &str) -> PasswordHash {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("s{pw}").as_bytes());
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    PasswordHash::parse(&format!("sha256:s:{hex}")).unwrap()
}

#[test]
fn locked_without_a_password_refuses_edit_and_machine_actions() {
    let entries = vec![entry("a"), entry("b")];
    let lock = Lock {
        locked: true,
        hash: None,
        allowed: vec![],
        trusted: None,
    };
    let mut m = Menu::new(entries, None, Timeout::Secs(5), lock);
    for c in ['e', 'r', 'b', 'p'] {
        assert_eq!(press(&mut m, &[Key::Char(c)]), vec![]);
        assert_eq!(m.view(), &View::List);
        assert!(m.status().unwrap().starts_with("locked:"), "{c}");
    }
    assert!(m.status().unwrap().contains("not allowed"));
    assert_eq!(
        press(&mut m, &[Key::Enter]),
        vec![boot(0, "console=ttyS0 id=a")]
    );
}

#[test]
fn the_password_unlocks_and_wrong_ones_are_limited() {
    let lock = Lock {
        locked: true,
        hash: Some(hash("pw")),
        allowed: vec!["a".into()],
        trusted: None,
    };
    let mut m = Menu::new(
        vec![entry("a"), entry("b")],
        Some(1),
        Timeout::Secs(5),
        lock,
    );
    assert_eq!(
        m.default(),
        Some(0),
        "a default outside the allowed list moves"
    );
    assert_eq!(m.boot_order(), vec![0]);
    // Booting b asks for the password.
    press(&mut m, &[Key::Down, Key::Enter]);
    assert!(matches!(
        m.view(),
        View::Password {
            then: Guarded::Boot,
            ..
        }
    ));
    let typed: Vec<Key> = "no".chars().map(Key::Char).chain([Key::Enter]).collect();
    assert_eq!(press(&mut m, &typed), vec![]);
    assert_eq!(m.status(), Some("locked: wrong password"));
    press(&mut m, &[Key::Char('e')]);
    let typed: Vec<Key> = "pw".chars().map(Key::Char).chain([Key::Enter]).collect();
    assert_eq!(press(&mut m, &typed), vec![]);
    assert!(matches!(m.view(), View::Edit(_)), "unlocked: editing");
    assert!(!m.is_locked());
    assert_eq!(
        press(&mut m, &[Key::Enter]),
        vec![boot(1, "console=ttyS0 id=b")]
    );

    let lock = Lock {
        locked: true,
        hash: Some(hash("pw")),
        allowed: vec![],
        trusted: None,
    };
    let mut m = Menu::new(vec![entry("a")], None, Timeout::Secs(5), lock);
    for _ in 0..MAX_PASSWORD_TRIES {
        press(&mut m, &[Key::Char('e'), Key::Char('x'), Key::Enter]);
    }
    press(&mut m, &[Key::Char('e')]);
    assert_eq!(m.view(), &View::List);
    assert_eq!(
        m.status(),
        Some("locked: too many wrong passwords; try again in 5 s")
    );
}

#[test]
fn password_lockout_is_a_growing_delay_not_a_permanent_lock() {
    let lock = Lock {
        locked: true,
        hash: Some(hash("pw")),
        allowed: vec![],
        trusted: None,
    };
    let mut m = Menu::new(vec![entry("a")], None, Timeout::Forever, lock);
    let wrong = [Key::Char('e'), Key::Char('x'), Key::Enter];
    let mut waits = Vec::new();
    for _ in 0..10 {
        press(&mut m, &wrong);
        waits.push(m.lockout());
        // While waiting, no prompt; once the wait is over, the prompt comes back.
        for _ in 0..m.lockout() {
            press(&mut m, &[Key::Char('e')]);
            assert_eq!(m.view(), &View::List);
            m.tick();
        }
    }
    assert_eq!(waits, [0, 0, 5, 10, 20, 40, 80, 160, 300, 300]);
    press(&mut m, &[Key::Char('e')]);
    assert!(
        matches!(m.view(), View::Password { .. }),
        "never locked for good"
    );
    let typed: Vec<Key> = "pw".chars().map(Key::Char).chain([Key::Enter]).collect();
    press(&mut m, &typed);
    assert!(!m.is_locked(), "the right password still unlocks");
    assert_eq!(super::lockout_secs(u32::MAX), MAX_LOCKOUT_SECS);
}

#[test]
fn new_entries_keep_the_countdown_unless_the_default_changes() {
    let mut m = menu(2, Some(0), Timeout::Secs(10));
    m.tick();
    m.tick();
    m.key(Key::Down); // stops the countdown...
    let mut m2 = menu(2, Some(0), Timeout::Secs(10));
    m2.tick();
    m2.tick();
    // A new entry appended: same default, countdown goes on, selection stays.
    let mut more = m2.entries().to_vec();
    more.push(entry("late"));
    m2.replace_entries(more.clone(), Some(0));
    assert_eq!(
        (m2.countdown(), m2.selected(), m2.entries().len()),
        (Some(8), 0, 3)
    );
    // A new entry inserted first that becomes the default: the countdown starts over.
    let mut first = vec![entry("new-default")];
    first.extend(more);
    m2.replace_entries(first, Some(0));
    assert_eq!(
        (m2.countdown(), m2.selected()),
        (Some(10), 1),
        "selection follows e0"
    );
    // ...and a stopped countdown stays stopped.
    m.replace_entries(vec![entry("x"), entry("e0"), entry("e1")], Some(0));
    assert_eq!((m.countdown(), m.selected()), (None, 2));
    // Entries gone: selection clamps.
    m.replace_entries(vec![entry("x")], None);
    assert_eq!(m.selected(), 0);
}

#[test]
fn grub_submenu_titles_get_spaces() {
    let mut e = entry("a");
    e.title = "Advanced options for Debian>Debian, with Linux 6.1".into();
    assert_eq!(display_title(&e), e.title, "only GRUB titles are paths");
    e.format = crate::entry::Format::Grub;
    assert_eq!(
        display_title(&e),
        "Advanced options for Debian > Debian, with Linux 6.1"
    );
}

#[test]
fn keys_on_an_empty_menu_do_nothing_harmful() {
    let mut m = menu(0, None, Timeout::Secs(1));
    use Key::*;
    let all = [
        Up,
        Down,
        PageUp,
        PageDown,
        Home,
        End,
        Enter,
        Char('e'),
        Char('d'),
        Tab,
        Char('5'),
        Char('l'),
        Char('?'),
        Esc,
    ];
    for k in all {
        let a = m.key(k);
        assert_eq!(a, None, "{k:?}");
    }
    assert_eq!(m.tick(), None);
}

#[test]
fn locked_allowed_entries_must_come_from_trusted_volumes() {
    let mut fake = entry("debian");
    fake.source.volume = "usb1".into();
    let real = entry("debian@vda1");
    let trusted: std::collections::BTreeSet<String> =
        [real.source.volume.clone()].into_iter().collect();
    let lock = Lock {
        locked: true,
        hash: Some(hash("pw")),
        allowed: vec!["debian*".into()],
        trusted: Some(trusted),
    };
    let m = Menu::new(vec![fake, real], Some(0), Timeout::Secs(0), lock);
    assert!(
        !m.allowed(0),
        "the stick's entry matches the glob but is not trusted"
    );
    assert!(m.allowed(1));
    assert_eq!(
        m.default(),
        Some(1),
        "the default moves to the trusted entry"
    );
    assert_eq!(m.boot_order(), vec![1]);
}
