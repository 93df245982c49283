//! Snapshot tests of the renderer: whole frames for small screens, compared line by line
//! (trailing blanks trimmed).

use super::*;
use crate::menu::keys::Key;
use crate::menu::state::tests::entry;
use crate::menu::state::{Lock, VolumeInfo};

const PLAIN: Screen = Screen {
    width: 60,
    height: 14,
    colour: false,
};

fn demo(screen: Screen) -> Menu {
    let mut b = entry("b");
    b.title = "Advanced>Debian 6.1 recovery".into();
    b.format = crate::entry::Format::Grub;
    b.source.volume = "vdb2".into();
    let mut m = Menu::new(
        vec![entry("a"), b, entry("c")],
        Some(0),
        Timeout::Secs(5),
        Lock::default(),
    );
    m.set_volumes(vec![VolumeInfo {
        name: "vda1".into(),
        fs: "vfat".into(),
        uuid: Some("1234-ABCD".into()),
        label: Some("ESP".into()),
    }]);
    m.set_page(screen.page());
    m
}

fn check(f: &Frame, want: &str) {
    let got: Vec<&str> = f.rows.iter().map(|r| r.trim_end()).collect();
    let want: Vec<&str> = want.lines().collect();
    assert_eq!(got, want, "\n{}", got.join("\n"));
}

#[test]
fn list_with_countdown() {
    let m = demo(PLAIN);
    let f = render(&m, &["one".into(), "two".into()], PLAIN);
    check(
        &f,
        " leapboot 0.1.0 - 3 boot entries

 >* 1  Title a                                       [vda1]
    2  Advanced > Debian 6.1 recovery                [vdb2]
    3  Title c                                       [vda1]







 Booting 'Title a' in 5 s. Press any key to stop.",
    );
    assert_eq!(f.rows.len(), 13, "the last row is never drawn");
    assert!(f.rows.iter().all(|r| r.chars().count() <= 59));
    assert_eq!(f.cursor, None);
}

#[test]
fn status_log_pane_and_selection_after_keys() {
    let screen = Screen {
        width: 50,
        height: 20,
        ..PLAIN
    };
    let mut m = demo(screen);
    m.key(Key::Down);
    m.boot_failed("entry 'b' (vdb2:/boot/grub/grub.cfg): kexec_file_load refused vdb2:/vmlinuz: not a kernel image this kernel can kexec");
    let log: Vec<String> = (1..=5).map(|i| format!("log line {i}")).collect();
    let f = render(&m, &log, screen);
    check(
        &f,
        " leapboot 0.1.0 - 3 boot entries

  * 1  Title a                             [vda1]
 >  2  Advanced > Debian 6.1 recovery      [vdb2]
    3  Title c                             [vda1]








 entry 'b' (vdb2:/boot/grub/grub.cfg): kexec_file
 _load refused vdb2:/vmlinuz: not a kernel image~
 log line 3
 log line 4
 log line 5
 Enter boot  e edit  d details  r rescan  l log ~",
    );
}

#[test]
fn colour_only_when_enabled() {
    let colour = Screen {
        colour: true,
        ..PLAIN
    };
    let m = demo(colour);
    let f = render(&m, &[], colour);
    assert!(f.rows[0].starts_with("\x1b[1;37;44m"));
    assert!(f.rows[2].starts_with("\x1b[7m >* 1"));
    let plain = render(&m, &[], PLAIN);
    assert!(plain.rows.iter().all(|r| !r.contains('\x1b')));
}

#[test]
fn details_view() {
    let mut m = demo(PLAIN);
    m.key(Key::Char('d'));
    let f = render(
        &m,
        &[],
        Screen {
            height: 18,
            ..PLAIN
        },
    );
    check(
        &f,
        " leapboot 0.1.0 - 3 boot entries

 title      Title a
 id         a
 version    -
 format     bls
 device     vda1 (vfat, UUID 1234-ABCD, label ESP)
 config     vda1:/loader/entries/a.conf:1
 kernel     vda1:/vmlinuz-a
 initrds    -
 devicetree -
 cmdline    console=ttyS0 id=a




 Enter boot  e edit  Up/Down other entry  Esc back",
    );
}

#[test]
fn edit_view_places_the_cursor() {
    let mut m = demo(PLAIN);
    m.key(Key::Char('e'));
    m.key(Key::Home);
    m.key(Key::Right);
    let f = render(&m, &[], PLAIN);
    assert_eq!(f.rows[2], " Command line for 'Title a':");
    assert_eq!(f.rows[4], " > console=ttyS0 id=a");
    assert_eq!(f.cursor, Some((4, 4)));
}

#[test]
fn password_is_never_shown() {
    let lock = Lock {
        locked: true,
        hash: crate::menu::password::PasswordHash::parse(&format!("sha256:x:{}", "0".repeat(64)))
            .ok(),
        allowed: vec![],
        trusted: None,
    };
    let mut m = Menu::new(vec![entry("a")], None, Timeout::Forever, lock);
    m.key(Key::Char('e'));
    for c in "secret".chars() {
        m.key(Key::Char(c));
    }
    let f = render(&m, &[], PLAIN);
    assert!(f.rows[0].contains("(locked)"));
    assert_eq!(f.rows[4], " Password: ******");
    assert!(f.rows.iter().all(|r| !r.contains("secret")));
}

#[test]
fn tiny_and_huge_screens_and_control_characters_stay_in_bounds() {
    let mut m = demo(PLAIN);
    let mut e = entry("evil");
    e.title = "a\x1b[2Jb\u{7}".repeat(50);
    m.replace_entries(vec![e], None);
    for (w, h) in [(0, 0), (1, 1), (20, 8), (300, 100)] {
        let s = Screen {
            width: w,
            height: h,
            colour: false,
        };
        for k in [
            Key::Esc,
            Key::Char('d'),
            Key::Esc,
            Key::Char('l'),
            Key::Esc,
            Key::Char('?'),
        ] {
            m.key(k);
            let f = render(&m, &[], s);
            assert!(f.rows.iter().all(|r| !r.contains('\x1b')), "{w}x{h}");
            assert!(f.rows.len() < h.max(8));
            assert!(f.rows.iter().all(|r| r.chars().count() < w.max(20)));
        }
    }
}

#[test]
fn updates_redraw_only_changed_rows() {
    let mut m = demo(PLAIN);
    let a = render(&m, &[], PLAIN);
    let first = update(None, &a);
    assert!(first.starts_with("\x1b[0m\x1b[H\x1b[2J"));
    assert_eq!(first.matches("\r\n").count(), 13);
    m.tick();
    let b = render(&m, &[], PLAIN);
    assert_eq!(
        update(Some(&a), &b),
        "\x1b[13;1H Booting 'Title a' in 4 s. Press any key to stop.\x1b[K\r\n"
    );
    assert_eq!(update(Some(&b), &b), "");
    m.key(Key::Char('e'));
    let c = render(&m, &[], PLAIN);
    assert!(update(Some(&b), &c).ends_with("\x1b[5;22H\x1b[?25h"));
}

#[test]
fn the_log_view_ends_with_the_newest_line_and_help_fits_80_columns() {
    let screen = Screen {
        width: 80,
        height: 24,
        ..PLAIN
    };
    let mut m = demo(screen);
    let log: Vec<String> = (1..=100).map(|i| format!("line {i}")).collect();
    m.key(Key::Char('l'));
    let f = render(&m, &log, screen);
    let shown: Vec<&str> = f
        .rows
        .iter()
        .map(|r| r.trim())
        .filter(|r| r.starts_with("line"))
        .collect();
    assert_eq!(shown.last(), Some(&"line 100"));
    assert_eq!(shown.len(), 18);
    m.key(Key::Up);
    let f = render(&m, &log, screen);
    assert!(f.rows.iter().any(|r| r.trim() == "line 99"));
    assert!(!f.rows.iter().any(|r| r.trim() == "line 100"));
    m.key(Key::Esc);
    m.key(Key::Char('?'));
    let f = render(&m, &log, screen);
    assert!(f.rows.iter().all(|r| !r.ends_with('~')), "{:#?}", f.rows);
}

#[test]
fn a_long_volume_name_leaves_the_title_room() {
    let mut a = entry("a");
    a.title = "Live system (amd64) (debian-live-12.5.0-amd64-standard.iso)".into();
    a.source.volume = "vda1/isos/debian-live-12.5.0-amd64-standard.iso".into();
    let mut m = Menu::new(vec![a], Some(0), Timeout::Secs(5), Lock::default());
    m.set_page(PLAIN.page());
    let f = render(&m, &[], PLAIN);
    assert_eq!(
        f.rows[2].trim_end(),
        " >* 1  Live system (amd64) (debian-liv~ [vda1/isos/debian~]"
    );
}
