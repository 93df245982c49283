//! One small test per quirk with the config inline, the real-world fixtures under `testdata/`,
//! and properties (no panic, includes always terminate).

use super::*;
use crate::entry::tests::view;

pub(crate) use crate::fs::mem::MemFs;

fn found(files: &[(&str, &str)]) -> Found {
    let fs = MemFs::new(files);
    discover(&view("v", &fs), &[])
}

/// (id, title, kernel, initrds, cmdline) of each entry.
fn summary(f: &Found) -> Vec<(String, String, String, Vec<String>, String)> {
    f.entries
        .iter()
        .map(|e| {
            (
                e.id.clone(),
                e.title.clone(),
                e.kernel.path.clone(),
                e.initrds.iter().map(|i| i.path.clone()).collect(),
                e.cmdline.clone(),
            )
        })
        .collect()
}

fn ids(f: &Found) -> Vec<&str> {
    f.entries.iter().map(|e| e.id.as_str()).collect()
}

fn default_id(f: &Found) -> Option<&str> {
    f.default_index().map(|i| f.entries[i].id.as_str())
}

const CFG: &str = "/syslinux/syslinux.cfg";

#[test]
fn keywords_are_case_insensitive_and_labels_keep_file_order() {
    let f = found(&[(
        CFG,
        "PROMPT 0\nTimeOut 0\nSERIAL 0 115200\nDeFault b\nlabel a\n KERNEL /k1\n APPEND x=1\nLABEL b\nLinux /k2\nappend   y=2  \n",
    )]);
    assert_eq!(ids(&f), ["a", "b"]);
    assert_eq!(f.entries[0].cmdline, "x=1");
    assert_eq!(f.entries[1].cmdline, "y=2");
    assert_eq!(default_id(&f), Some("b"));
    assert_eq!(
        f.timeout,
        Some(Timeout::Secs(0)),
        "PROMPT 0 without a menu boots at once"
    );
}

#[test]
fn keyword_must_end_at_white_space() {
    // "initrd=/x" is not the INITRD keyword (syslinux's looking_at), nor "kernelx".
    let f = found(&[(CFG, "label a\nkernel /k\ninitrd=/x\nkernelx /y\n")]);
    assert_eq!(summary(&f)[0].2, "/k");
    assert!(f.entries[0].initrds.is_empty());
}

#[test]
fn menu_label_removes_hotkey_markers_and_submenus_prefix_the_title() {
    let f = found(&[(
        CFG,
        "label a\n menu label ^Install\n kernel /k\nmenu begin adv\n menu label ^Advanced options\n menu title Advanced\n label b\n  menu label E^xpert install\n  kernel /k\n  append expert\nmenu end\nlabel c\nkernel /k\nappend c\n",
    )]);
    let titles: Vec<&str> = f.entries.iter().map(|e| e.title.as_str()).collect();
    assert_eq!(
        titles,
        ["Install", "Advanced options > Expert install", "c"]
    );
}

#[test]
fn submenu_title_falls_back_to_menu_title_then_tag() {
    let f = found(&[(
        CFG,
        "menu begin t1\nmenu title Tools\nlabel a\nkernel /k\nmenu end\nmenu begin t2\nlabel b\nkernel /k\nappend b\nmenu end\n",
    )]);
    assert_eq!(f.entries[0].title, "Tools > a");
    assert_eq!(f.entries[1].title, "t2 > b");
}

#[test]
fn global_append_applies_only_to_labels_without_their_own() {
    let f = found(&[(
        CFG,
        "APPEND console=ttyS0\nlabel own\nkernel /k\nappend root=/dev/sdb\nlabel none\nkernel /k2\nlabel dash\nkernel /k3\nAPPEND -\n",
    )]);
    let s = summary(&f);
    assert_eq!(
        s[0].4, "root=/dev/sdb",
        "a label's APPEND replaces the global one"
    );
    assert_eq!(s[1].4, "console=ttyS0");
    assert_eq!(s[2].4, "", "APPEND - means no options");
}

#[test]
fn initrd_keyword_and_append_initrd_with_comma_lists() {
    let f = found(&[(
        "/boot/extlinux/extlinux.conf",
        "label a\nkernel vmlinuz\nappend initrd=i1.img,/abs/i2.img root=/dev/x\nlabel b\nkernel vmlinuz\ninitrd one,two\nappend initrd=first quiet\nlabel c\nkernel vmlinuz\nappend rd.initrd=no root=x\nlabel d\nkernel vmlinuz\ninitrd one,two\nappend quiet\n",
    )]);
    let s = summary(&f);
    assert_eq!(s[0].2, "/boot/extlinux/vmlinuz");
    assert_eq!(s[0].3, ["/boot/extlinux/i1.img", "/abs/i2.img"]);
    assert_eq!(
        s[0].4, "initrd=i1.img,/abs/i2.img root=/dev/x",
        "APPEND is passed verbatim"
    );
    assert_eq!(
        s[1].3,
        ["/boot/extlinux/first"],
        "APPEND's initrd= first, as in syslinux"
    );
    assert_eq!(s[1].4, "initrd=first quiet");
    assert_eq!(
        s[3].3,
        ["/boot/extlinux/one", "/boot/extlinux/two"],
        "INITRD alone"
    );
    assert_eq!(s[3].4, "quiet", "no initrd= is added for INITRD");
    assert!(
        s[2].3.is_empty(),
        "only a whole initrd= option names initrds"
    );
}

#[test]
fn kernel_line_options_go_before_append() {
    let f = found(&[(
        CFG,
        "label a\nkernel /vmlinuz quiet\nappend root=/dev/sda\n",
    )]);
    assert_eq!(summary(&f)[0].2, "/vmlinuz");
    assert_eq!(summary(&f)[0].4, "quiet root=/dev/sda");
}

#[test]
fn com32_and_other_non_linux_labels_are_skipped() {
    let f = found(&[(
        CFG,
        "label m\nkernel menu.c32\nlabel v\nKERNEL /boot/VESAMENU.C32\nlabel c\ncom32 chain.c32\nappend hd0\nlabel r\nkernel reboot.c32\nlabel l\nlocalboot 0\nlabel f\nfdimage /f.img\nlabel b\nkernel /x.bss\nlabel cb\nkernel /x.com\nlabel cfg\nconfig /other.cfg\nlabel p\nkernel /pxe.0\nlabel ok\nkernel /vmlinuz\nlabel forced\nlinux /odd.c32\n",
    )]);
    assert_eq!(
        ids(&f),
        ["ok", "forced"],
        "LINUX always means a Linux kernel"
    );
}

#[test]
fn menu_separator_ends_a_label() {
    // menu.c32 records the label before a separator: an APPEND after it is global.
    let f = found(&[(
        CFG,
        "label a\nkernel /k\nmenu separator\nappend g=1\nlabel b\nkernel /k2\n",
    )]);
    assert_eq!(summary(&f)[0].4, "");
    assert_eq!(summary(&f)[1].4, "g=1");
}

#[test]
fn menu_exit_disable_and_goto_labels_are_not_entries() {
    let f = found(&[(
        CFG,
        "label back\nmenu label ^Back..\nmenu exit\nlabel off\nkernel /k\nmenu disable\nlabel on\nkernel /k\nappend on\n",
    )]);
    assert_eq!(ids(&f), ["on"]);
}

#[test]
fn label_without_kernel_boots_the_file_named_like_it_if_it_exists() {
    let f = found(&[
        (CFG, "label memtest\nlabel ghost\nlabel vmlinuz\nappend x\n"),
        ("/syslinux/memtest", "bin"),
        ("/syslinux/vmlinuz", "bin"),
    ]);
    assert_eq!(summary(&f)[0].2, "/syslinux/memtest");
    assert_eq!(ids(&f), ["memtest", "vmlinuz"]);
}

#[test]
fn kernel_outside_a_label_is_ignored_with_a_located_error() {
    let f = found(&[(
        "/boot/syslinux/syslinux.cfg",
        "\nDEFAULT boot\nKERNEL /vmlinuz\nAPPEND console=tty0\nLABEL backup\nKERNEL /backup/vmlinuz\nAPPEND root=/dev/sdb\nINITRD /boot/initrd\n",
    )]);
    assert_eq!(ids(&f), ["backup"]);
    assert_eq!(summary(&f)[0].4, "root=/dev/sdb");
    assert_eq!(
        default_id(&f),
        None,
        "DEFAULT boot names no label and no file"
    );
    let errs: Vec<String> = f.errors.iter().map(|e| e.to_string()).collect();
    assert!(
        errs.contains(
            &"v:/boot/syslinux/syslinux.cfg:3: kernel outside a LABEL is ignored".to_string()
        ),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("v:/boot/syslinux/syslinux.cfg:2: DEFAULT \"boot\"")),
        "{errs:?}"
    );
}

#[test]
fn default_names_a_label() {
    let f = found(&[(
        CFG,
        "default two\nlabel one\nkernel /a\nlabel two\nkernel /b\n",
    )]);
    assert_eq!(default_id(&f), Some("two"));
}

#[test]
fn default_as_a_kernel_command_line_gets_the_global_append() {
    let f = found(&[
        (
            CFG,
            "append console=ttyS0\ndefault vmlinuz initrd=initrd.gz root=/dev/sda1\n",
        ),
        ("/syslinux/vmlinuz", "k"),
    ]);
    assert_eq!(f.entries.len(), 1);
    let e = &f.entries[0];
    assert_eq!(e.id, "default");
    assert_eq!(e.kernel.path, "/syslinux/vmlinuz");
    assert_eq!(e.initrds[0].path, "/syslinux/initrd.gz");
    assert_eq!(e.cmdline, "console=ttyS0 initrd=initrd.gz root=/dev/sda1");
    assert_eq!(default_id(&f), Some("default"));
}

#[test]
fn implicit_0_forbids_default_as_a_kernel_command_line() {
    let f = found(&[
        (CFG, "implicit 0\ndefault vmlinuz root=/dev/sda1\n"),
        ("/syslinux/vmlinuz", "k"),
    ]);
    assert!(f.entries.is_empty());
    assert!(f.errors[0].message.contains("IMPLICIT 0"), "{:?}", f.errors);
}

#[test]
fn default_label_with_extra_options_is_a_new_entry() {
    let f = found(&[(
        CFG,
        "default linux single\nlabel linux\nkernel /k\nappend ro\n",
    )]);
    assert_eq!(ids(&f), ["linux", "default"]);
    assert_eq!(f.entries[1].cmdline, "ro single");
    assert_eq!(default_id(&f), Some("default"));
}

#[test]
fn default_menu_module_leaves_menu_default_to_choose() {
    let f = found(&[(
        CFG,
        "default vesamenu.c32\nprompt 0\ntimeout 0\nlabel a\nkernel /k\nlabel b\nmenu default\nkernel /k\nappend b\n",
    )]);
    assert_eq!(default_id(&f), Some("b"));
    assert_eq!(
        f.timeout,
        Some(Timeout::Forever),
        "a menu with TIMEOUT 0 waits"
    );
    assert!(f.errors.is_empty(), "{:?}", f.errors);
}

#[test]
fn the_last_menu_default_counts_even_when_it_is_not_linux() {
    let f = found(&[(
        CFG,
        "ui menu.c32\nlabel a\nmenu default\nkernel /k\nlabel hd\nmenu default\ncom32 chain.c32\nlabel back\nmenu default\nmenu exit\n",
    )]);
    assert_eq!(ids(&f), ["a"]);
    assert_eq!(
        default_id(&f),
        None,
        "chain.c32 is the menu's default: not an entry"
    );
}

#[test]
fn menu_default_inside_a_submenu_is_not_the_boot_default() {
    let f = found(&[(
        CFG,
        "ui menu.c32\nlabel a\nkernel /k\nmenu begin s\nlabel b\nmenu default\nkernel /k\nappend b\nmenu end\n",
    )]);
    assert_eq!(default_id(&f), None);
}

#[test]
fn ontimeout_wins_over_default() {
    let f = found(&[(
        CFG,
        "ui menu.c32\ndefault a\nontimeout b\ntimeout 50\nlabel a\nkernel /k\nlabel b\nkernel /k\nappend b\n",
    )]);
    assert_eq!(default_id(&f), Some("b"));
    assert_eq!(f.timeout, Some(Timeout::Secs(5)));
}

#[test]
fn default_naming_a_localboot_label_boots_no_entry() {
    let f = found(&[(
        CFG,
        "default local\nlabel local\nlocalboot 0\nlabel l\nkernel /k\n",
    )]);
    assert_eq!(default_id(&f), None);
    assert!(f.errors.is_empty());
}

#[test]
fn timeouts() {
    let t = |cfg: &str| found(&[(CFG, &format!("{cfg}\nlabel a\nkernel /k\n"))]).timeout;
    assert_eq!(t("timeout 50"), Some(Timeout::Secs(5)));
    assert_eq!(t("timeout 1"), Some(Timeout::Secs(1)), "tenths round up");
    assert_eq!(t("timeout 0"), Some(Timeout::Forever));
    assert_eq!(t("timeout 0\nprompt 1"), Some(Timeout::Forever));
    assert_eq!(t("timeout 0\nprompt 0"), Some(Timeout::Secs(0)));
    assert_eq!(t("timeout 0\ntotaltimeout 95"), Some(Timeout::Secs(10)));
    assert_eq!(t("ui menu.c32"), Some(Timeout::Forever));
    assert_eq!(t(""), None);
    assert_eq!(t("timeout soon"), None);
}

#[test]
fn menu_hide_keeps_a_label_only_when_it_is_the_default() {
    let f = found(&[(
        CFG,
        "default h\nlabel h\nmenu hide\nkernel /h\nlabel x\nmenu hide\nkernel /x\nlabel v\nkernel /v\n",
    )]);
    assert_eq!(ids(&f), ["h", "v"]);
    assert_eq!(default_id(&f), Some("h"));
}

#[test]
fn fdt_is_the_devicetree_and_fdtdir_gives_none() {
    let f = found(&[(
        "/extlinux/extlinux.conf",
        "label a\nlinux /Image\nfdt /dtbs/board.dtb\nlabel b\nlinux /Image\nfdtdir /dtbs/\nappend b\n",
    )]);
    assert_eq!(
        f.entries[0].devicetree.as_ref().unwrap().path,
        "/dtbs/board.dtb"
    );
    assert_eq!(f.entries[1].devicetree, None);
}

#[test]
fn include_is_spliced_in_place_relative_to_the_main_config_directory() {
    let f = found(&[
        ("/boot/syslinux/syslinux.cfg", "append console=ttyS0\nlabel first\nkernel /k\nINCLUDE /nest-1.cfg\nlabel last\nlinux /boot/bzImage\n"),
        ("/nest-1.cfg", "label com\ncom32 /x.c32\ninclude nest-2.cfg\nlabel bss\nkernel /t.bss\n"),
        ("/boot/syslinux/nest-2.cfg", "label boot\nkernel /bzImage-boot\ninitrd /initrd-boot\nappend root=/dev/sda\ndefault boot\n"),
    ]);
    assert_eq!(ids(&f), ["first", "boot", "last"]);
    assert_eq!(
        default_id(&f),
        Some("boot"),
        "DEFAULT from a nested include applies"
    );
    assert_eq!(f.entries[1].source.file, "/boot/syslinux/nest-2.cfg");
    assert_eq!(f.entries[1].source.line, Some(1));
}

#[test]
fn a_label_continues_across_an_include() {
    // Debian's adtxt.cfg: "label expert … include rqtxt.cfg": the include starts a new label.
    let f = found(&[
        (
            CFG,
            "label a\nkernel /k\nappend a\ninclude b.cfg\nlabel c\nkernel /k\nappend c\n",
        ),
        ("/syslinux/b.cfg", "label b\nkernel /k\nappend b\n"),
    ]);
    assert_eq!(ids(&f), ["a", "b", "c"]);
}

#[test]
fn menu_include_with_a_tag_is_a_submenu() {
    let f = found(&[
        (CFG, "menu include sub.cfg Tools\nlabel after\nkernel /k\n"),
        (
            "/syslinux/sub.cfg",
            "menu title Rescue tools\nlabel r\nkernel /r\n",
        ),
    ]);
    let titles: Vec<&str> = f.entries.iter().map(|e| e.title.as_str()).collect();
    assert_eq!(titles, ["Rescue tools > r", "after"]);
}

#[test]
fn missing_includes_are_skipped_quietly_like_syslinux_does() {
    let f = found(&[(CFG, "include gone.cfg\nlabel a\nkernel /k\n")]);
    assert_eq!(ids(&f), ["a"]);
    assert!(f.errors.is_empty(), "{:?}", f.errors);
}

#[test]
fn unreadable_includes_are_located_errors() {
    let big = "#".repeat(crate::fs::MAX_CONFIG_BYTES as usize + 1);
    let f = found(&[
        (CFG, "label a\nkernel /k\ninclude big.cfg\n"),
        ("/syslinux/big.cfg", &big),
    ]);
    assert_eq!(ids(&f), ["a"]);
    assert_eq!(f.errors[0].line, Some(3));
    assert!(
        f.errors[0]
            .to_string()
            .starts_with("v:/syslinux/syslinux.cfg:3: INCLUDE big.cfg: "),
        "{}",
        f.errors[0]
    );
}

#[test]
fn include_cycles_stop_at_the_depth_bound() {
    let f = found(&[(CFG, "label a\nkernel /k\ninclude syslinux.cfg\n")]);
    assert_eq!(ids(&f), ["a"], "the same label read again is one entry");
    assert!(
        f.errors.iter().any(|e| e.message.contains("nested deeper")),
        "{:?}",
        f.errors
    );
}

#[test]
fn include_fan_out_stops_at_the_file_bound() {
    let f = found(&[(
        CFG,
        "include syslinux.cfg\ninclude syslinux.cfg\nlabel a\nkernel /k\n",
    )]);
    assert!(
        f.errors.iter().any(|e| e.message.contains("files read")),
        "{:?}",
        f.errors
    );
}

#[test]
fn text_help_blocks_are_skipped() {
    let f = found(&[(
        CFG,
        "label a\nkernel /k\ntext help\n  label inside\n  kernel /no\nendtext\nappend a\n",
    )]);
    assert_eq!(
        summary(&f),
        [("a".into(), "a".into(), "/k".into(), vec![], "a".into())]
    );
}

#[test]
fn pxelinux_paths_are_relative_to_the_tftp_root() {
    let f = found(&[
        (
            "/pxelinux.cfg/default",
            "include d-i/menu.cfg\ndefault vesamenu.c32\n",
        ),
        (
            "/d-i/menu.cfg",
            "label install\nkernel d-i/linux\nappend initrd=d-i/initrd.gz\n",
        ),
    ]);
    assert_eq!(summary(&f)[0].2, "/d-i/linux");
    assert_eq!(summary(&f)[0].3, ["/d-i/initrd.gz"]);
}

#[test]
fn dot_dot_paths_climb_from_the_config_directory_but_never_leave_the_volume() {
    // Arch's syslinux.cfg: LINUX ../vmlinuz-linux from /boot/syslinux.
    let f = found(&[(
        "/boot/syslinux/syslinux.cfg",
        "LABEL arch\n MENU LABEL Arch Linux\n LINUX ../vmlinuz-linux\n APPEND root=/dev/sda3 rw\n INITRD ../intel-ucode.img,../initramfs-linux.img\nLABEL evil\n LINUX ../../../../etc/k\n",
    )]);
    let s = summary(&f);
    assert_eq!(s[0].2, "/boot/vmlinuz-linux");
    assert_eq!(
        s[0].3,
        ["/boot/intel-ucode.img", "/boot/initramfs-linux.img"]
    );
    assert_eq!(s[1].2, "/etc/k");
}

#[test]
fn working_directories() {
    assert_eq!(working_dir("/pxelinux.cfg/default"), "/");
    assert_eq!(working_dir("/tftp/pxelinux.cfg/default"), "/tftp");
    assert_eq!(
        working_dir("/boot/extlinux/extlinux.conf"),
        "/boot/extlinux"
    );
    assert_eq!(working_dir("/syslinux.cfg"), "/");
}

#[test]
fn first_location_of_each_family_and_duplicates_across_families_dropped() {
    let f = found(&[
        (
            "/boot/extlinux/extlinux.conf",
            "default u\nlabel u\nlinux /boot/vmlinuz\n",
        ),
        ("/extlinux.conf", "label never\nlinux /x\n"),
        (
            "/syslinux/syslinux.cfg",
            "label u\nlinux /boot/vmlinuz\nlabel s\nlinux /s\n",
        ),
        (
            "/isolinux/isolinux.cfg",
            "timeout 30\nlabel u\nlinux /iso\n",
        ),
    ]);
    assert_eq!(ids(&f), ["u", "s", "u#2"]);
    assert_eq!(default_id(&f), Some("u"));
    assert_eq!(f.timeout, Some(Timeout::Secs(3)));
}

#[test]
fn duplicate_label_names_get_distinct_ids_and_default_takes_the_first() {
    let f = found(&[(CFG, "default x\nlabel x\nkernel /a\nlabel x\nkernel /b\n")]);
    assert_eq!(ids(&f), ["x", "x#2"]);
    assert_eq!(default_id(&f), Some("x"));
    assert_eq!(f.entries[0].kernel.path, "/a");
}

#[test]
fn versions_come_from_kernel_names() {
    let f = found(&[(CFG, "label a\nlinux /boot/vmlinuz-6.1.0-13-arm64\n")]);
    assert_eq!(f.entries[0].version.as_deref(), Some("6.1.0-13-arm64"));
}

#[test]
fn crlf_and_tabs() {
    let f = found(&[(CFG, "LABEL a\r\n\tKERNEL\t/k\r\n\tAPPEND\tx=1\r\n")]);
    assert_eq!(summary(&f)[0].4, "x=1");
}

#[test]
fn unbalanced_menu_end_is_an_error_not_a_crash() {
    let f = found(&[(CFG, "menu end\nmenu end\nlabel a\nkernel /k\nmenu begin\n")]);
    assert_eq!(ids(&f), ["a"]);
    assert_eq!(f.errors.len(), 2);
}

#[test]
fn deep_submenus_are_bounded() {
    let cfg = "menu begin m\n".repeat(50) + "label a\nkernel /k\n" + &"menu end\n".repeat(50);
    let f = found(&[(CFG, &cfg)]);
    assert_eq!(
        f.entries[0].title.matches(" > ").count(),
        parse::MAX_MENU_DEPTH
    );
}

// ---- real-world fixtures: testdata/<name>/root/ is a volume, expected.json what it yields.

fn snapshot(f: &Found) -> serde_json::Value {
    serde_json::json!({
        "default": default_id(f),
        "timeout": f.timeout,
        "entries": f.entries.iter().map(|e| serde_json::json!({
            "id": e.id,
            "title": e.title,
            "version": e.version,
            "kernel": e.kernel.path,
            "initrds": e.initrds.iter().map(|i| &i.path).collect::<Vec<_>>(),
            "cmdline": e.cmdline,
            "devicetree": e.devicetree.as_ref().map(|d| &d.path),
            "source": format!("{}:{}", e.source.file, e.source.line.unwrap_or(0)),
        })).collect::<Vec<_>>(),
        "errors": f.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
    })
}

/// Runs `discover` on every `testdata/*/root` and compares with `expected.json` beside it.
/// `UPDATE_EXPECT=1` rewrites the files (review the diff before committing).
pub(crate) fn check_fixtures(dir: &str, discover: crate::entry::DiscoverFn) {
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut n = 0;
    for d in std::fs::read_dir(&base).unwrap() {
        let d = d.unwrap().path();
        if !d.join("root").is_dir() {
            continue;
        }
        n += 1;
        let fs = crate::fs::dir::DirFs::new(&d.join("root"));
        let mut v = view("vol", &fs);
        let ident: serde_json::Value = std::fs::read(d.join("volume.json"))
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap_or_default();
        v.part_uuid = ident["part_uuid"].as_str();
        v.uuid = ident["uuid"].as_str();
        let got = snapshot(&discover(&v, &[]));
        let file = d.join("expected.json");
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::write(&file, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
            continue;
        }
        let want: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(
            got,
            want,
            "{}: got\n{}",
            d.display(),
            serde_json::to_string_pretty(&got).unwrap()
        );
    }
    assert!(n > 0, "no fixtures in {}", base.display());
}

#[test]
fn real_world_fixtures() {
    check_fixtures("src/entry/syslinux/testdata", discover);
}

proptest::proptest! {
    #[test]
    fn parsing_never_panics(main in ".{0,600}", inc in ".{0,300}") {
        let f = found(&[(CFG, &main), ("/syslinux/a.cfg", &inc), ("/a.cfg", &inc)]);
        proptest::prop_assert!(f.entries.len() <= parse::MAX_LABELS + 2);
    }

    #[test]
    fn config_like_input_never_panics(lines in proptest::collection::vec(
        "(label|kernel|linux|append|initrd|default|ontimeout|include|menu begin|menu end|menu label|menu default|menu hide|menu include|timeout|prompt|text help|endtext|com32)( [a-z./=^,-]{0,12}){0,3}",
        0..40,
    )) {
        let text = lines.join("\n");
        let _ = found(&[(CFG, &text), ("/syslinux/a", &text), ("/syslinux/b.cfg", &text)]);
    }

    #[test]
    fn include_cycles_terminate(names in proptest::collection::vec("[ab]", 1..6)) {
        // Files that include each other (and themselves) in every order.
        let inc: String = names.iter().map(|n| format!("include {n}.cfg\nlabel {n}\nkernel /k{n}\n")).collect();
        let f = found(&[(CFG, &inc), ("/syslinux/a.cfg", &inc), ("/syslinux/b.cfg", &inc)]);
        proptest::prop_assert!(!f.entries.is_empty());
        proptest::prop_assert!(f.errors.iter().any(|e| e.message.contains("INCLUDE")));
    }
}

/// The whole pipeline on a real FAT image: upper-case names as DOS tools write them, found
/// case-insensitively like firmware and syslinux do; the image is not modified.
#[test]
fn pipeline_reads_syslinux_from_a_fat_partition() {
    use crate::testutil::{fat_volume, gpt_image};
    let fat = fat_volume(
        16 << 20,
        &[
            (
                "SYSLINUX/SYSLINUX.CFG",
                b"DEFAULT two\nINCLUDE MENU.CFG\n".as_slice(),
            ),
            (
                "SYSLINUX/MENU.CFG",
                b"LABEL one\nKERNEL /VMLINUZ\nLABEL two\nKERNEL vmlinuz\nINITRD initrd.img\nAPPEND x=2\n",
            ),
            ("SYSLINUX/VMLINUZ", b"K"),
        ],
    );
    let img = gpt_image(&[(crate::partition::types::LINUX_FS, fat)]);
    let before = std::fs::read(img.path()).unwrap();
    let disk = crate::disk::Disk::open(img.path()).unwrap();
    let mut vols = crate::pipeline::Volumes::default();
    vols.add_disk(&disk, "img", &|n| format!("img:{n}"));
    let (list, errors) = vols.boot_list();
    assert!(errors.is_empty(), "{errors:?}");
    let ids: Vec<&str> = list.entries.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["one", "two"]);
    assert_eq!(list.default_entry(), Some(1));
    let two = &list.entries[1];
    assert_eq!(two.kernel.path, "/syslinux/vmlinuz");
    assert_eq!(two.initrds[0].path, "/syslinux/initrd.img");
    assert_eq!(two.format, Format::Syslinux);
    let fs = vols.fs("img:1").unwrap();
    assert_eq!(fs.read(&two.kernel.path, 10).unwrap(), b"K");
    assert!(
        before == std::fs::read(img.path()).unwrap(),
        "the image was modified"
    );
}

/// Issue 11: one 1 MiB `syslinux.cfg` whose global APPEND was copied into 1024 labels
/// reached 2 GB. The global APPEND is now shared (one `Rc<str>`), and one longer than a
/// kernel accepts is refused with its line.
#[test]
fn syslinux_global_append_is_shared_and_capped() {
    let mut text = format!("APPEND {}\n", "a=1 ".repeat(1000));
    for i in 0..1024 {
        text.push_str(&format!("LABEL l{i}\nKERNEL /k\n"));
    }
    let cfg = super::parse::parse("/syslinux.cfg", text, "/", &mut |_| Ok(None));
    assert_eq!(cfg.labels.len(), 1024);
    let first = cfg.labels[0].global_append.clone().unwrap();
    assert!(cfg.labels.iter().all(|l| l
        .global_append
        .as_ref()
        .is_some_and(|g| std::rc::Rc::ptr_eq(g, &first))));

    let huge = format!("APPEND {}\nLABEL l\nKERNEL /k\n", "x".repeat(512 << 10));
    let f = found(&[(CFG, &huge)]);
    assert_eq!(summary(&f)[0].4, "", "the oversized APPEND is ignored");
    assert!(
        f.errors
            .iter()
            .any(|e| e.line == Some(1) && e.message.contains("longer than the 4096 bytes")),
        "{:?}",
        f.errors
    );
}
