//! One small test per GRUB quirk with the config inline, the distro fixtures under
//! `testdata/` (grub-mkconfig output as each distro writes it), and properties.

use super::*;
use crate::entry::syslinux::tests::{check_fixtures, MemFs};
use crate::entry::tests::view;

const CFG: &str = "/boot/grub/grub.cfg";

fn found(files: &[(&str, &str)]) -> Found {
    let fs = MemFs::new(files);
    discover(&view("v", &fs), &[])
}

fn cfg(text: &str) -> Found {
    found(&[(CFG, text)])
}

/// (title, kernel, initrds, cmdline) of each entry.
fn summary(f: &Found) -> Vec<(String, String, Vec<String>, String)> {
    f.entries
        .iter()
        .map(|e| {
            (
                e.title.clone(),
                e.kernel.path.clone(),
                e.initrds.iter().map(|i| i.path.clone()).collect(),
                e.cmdline.clone(),
            )
        })
        .collect()
}

fn titles(f: &Found) -> Vec<&str> {
    f.entries.iter().map(|e| e.title.as_str()).collect()
}

fn default_title(f: &Found) -> Option<&str> {
    f.default_index().map(|i| f.entries[i].title.as_str())
}

fn grubenv(vars: &str) -> String {
    let mut s = format!("# GRUB Environment Block\n{vars}");
    while s.len() < 1024 {
        s.push('#');
    }
    s
}

#[test]
fn linux_prepends_boot_image_with_the_path_as_written() {
    let f = cfg("menuentry 'L' {\n linux /vmlinuz root=/dev/sda1   ro \"a b\" c=\"d e\"\n initrd /i1 /i2\n}\n");
    assert_eq!(
        summary(&f),
        [(
            "L".to_string(),
            "/vmlinuz".to_string(),
            vec!["/i1".to_string(), "/i2".to_string()],
            "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro \"a b\" \"c=d e\"".to_string()
        )]
    );
    assert_eq!(f.entries[0].source.line, Some(1));
    assert_eq!(f.entries[0].format, Format::Grub);
}

#[test]
fn efi_and_16_bit_variants_and_devicetree() {
    let f = cfg("menuentry a { linuxefi /k1 x; initrdefi /i }\nmenuentry b { linux16 /k2; initrd16 /j }\nmenuentry c { linux /k3; devicetree /d.dtb }\n");
    let s = summary(&f);
    assert_eq!(s[0].1, "/k1");
    assert_eq!(s[0].2, ["/i"]);
    assert_eq!(s[0].3, "BOOT_IMAGE=/k1 x");
    assert_eq!(s[1].1, "/k2");
    assert_eq!(
        f.entries[2].devicetree.as_ref().map(|d| d.path.as_str()),
        Some("/d.dtb")
    );
}

#[test]
fn quoting_and_expansion() {
    let f = cfg(concat!(
        "set a='x y'\n",
        "b=\"q\"\n",
        "menuentry \"T $b ${b}s '$a'\" {\n",
        " linux /k $a \"$a\" '$a' \\$a pre${b}post $unset \"\" end\n",
        "}\n",
    ));
    assert_eq!(titles(&f), ["T q qs 'x y'"]);
    assert_eq!(
        f.entries[0].cmdline,
        "BOOT_IMAGE=/k x y \"x y\" $a $a preqpost  end"
    );
}

#[test]
fn set_takes_only_its_first_argument() {
    // grub-core/kern/corecmd.c: `set` uses argv[0] only.
    let f = cfg("set opts=root=/dev/x ro quiet\nmenuentry a { linux /k $opts }\n");
    assert_eq!(f.entries[0].cmdline, "BOOT_IMAGE=/k root=/dev/x");
}

#[test]
fn if_elif_else_and_tests() {
    let f = found(&[
        (
            CFG,
            concat!(
                "if [ -f /boot/there ]; then t1=yes; else t1=no; fi\n",
                "if [ -e /nope ]; then t2=yes; elif [ -d /boot ]; then t2=dir; fi\n",
                "if [ -n \"\" -o x = x ]; then t3=or; fi\n",
                "if [ ! -z x -a 3 -gt 2 ]; then t4=and; fi\n",
                "if [ -s /boot/empty ]; then t5=big; else t5=empty; fi\n",
                "if test 10 -le 9; then t6=wrong; else t6=ok; fi\n",
                "if true; then if false; then t7=no; else t7=nested; fi; fi\n",
                "if [ \"$unset\" ]; then t8=set; else t8=unset; fi\n",
                "menuentry \"$t1 $t2 $t3 $t4 $t5 $t6 $t7 $t8\" { linux /k }\n",
            ),
        ),
        ("/boot/there", "x"),
        ("/boot/empty", ""),
    ]);
    assert_eq!(titles(&f), ["yes dir or and empty ok nested unset"]);
}

#[test]
fn functions_with_positional_parameters_and_loops() {
    let f = cfg(concat!(
        "function add { menuentry \"$1 of $#\" \"$2\" { linux /k-$2 arg=$1 } }\n",
        "for n in one two; do add $n x$n; done\n",
        "i=0\n",
        "while [ $i != 3 ]; do if [ $i = 0 ]; then i=1; elif [ $i = 1 ]; then i=2; else i=3; fi; done\n",
        "menuentry \"i=$i\" { linux /k }\n",
    ));
    assert_eq!(titles(&f), ["one of 2", "two of 2", "i=3"]);
    // In the entry block $1 is the title and $2 the first extra argument (setparams).
    assert_eq!(f.entries[0].kernel.path, "/k-xone");
    assert_eq!(f.entries[0].cmdline, "BOOT_IMAGE=/k-xone arg=one of 2");
}

#[test]
fn entry_blocks_run_after_the_whole_file() {
    // GRUB runs a block when the entry is chosen, after the config ran: variables set after
    // the menuentry apply to it.
    let f = cfg("menuentry a { linux /k $opts }\nset opts=late\n");
    assert_eq!(f.entries[0].cmdline, "BOOT_IMAGE=/k late");
}

#[test]
fn one_entry_block_does_not_leak_into_the_next() {
    let f = cfg("menuentry a { set x=1; linux /a $x }\nmenuentry b { linux /b $x }\n");
    assert_eq!(f.entries[1].cmdline, "BOOT_IMAGE=/b");
}

#[test]
fn submenus_titles_ids_and_exported_variables() {
    let f = cfg(concat!(
        "menuentry_id_option=--id\n",
        "export menuentry_id_option\n",
        "set shown=yes\n",
        "set gfx=keep\n",
        "export gfx\n",
        "menuentry top $menuentry_id_option top-id { linux /top }\n",
        "submenu 'Adv' $menuentry_id_option adv-id {\n",
        "  menuentry 'Child' $menuentry_id_option child-id { linux /child $gfx x$shown }\n",
        "  submenu Deeper { menuentry Leaf { linux /leaf } }\n",
        "}\n",
    ));
    assert_eq!(titles(&f), ["top", "Adv>Child", "Adv>Deeper>Leaf"]);
    let ids: Vec<&str> = f.entries.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["top-id", "child-id", "Adv>Deeper>Leaf"]);
    // A submenu is a new context: only exported variables reach it.
    assert_eq!(f.entries[1].cmdline, "BOOT_IMAGE=/child keep x");
}

#[test]
fn default_by_index_title_id_and_path() {
    let base = concat!(
        "menuentry A --id a { linux /a }\n",
        "submenu S --id s {\n menuentry B --id b { linux /b }\n menuentry C --id c { linux /c }\n}\n",
        "menuentry 'D>E' { linux /d }\n",
    );
    let cases: &[(&str, Option<&str>)] = &[
        ("0", Some("A")),
        ("1", Some("S>B")),
        ("1>1", Some("S>C")),
        ("s>c", Some("S>C")),
        ("S>B", Some("S>B")),
        ("1>c", Some("S>C")),
        ("a", Some("A")),
        ("D>E", Some("D>E")),
        ("2", Some("D>E")),
        ("7", None),
        ("nothing", None),
        ("", None),
    ];
    for (d, want) in cases {
        let f = cfg(&format!("set default=\"{d}\"\n{base}"));
        assert_eq!(default_title(&f), *want, "default={d:?}");
    }
}

#[test]
fn grubenv_saved_and_next_entry() {
    let header = concat!(
        "if [ -s $prefix/grubenv ]; then load_env; fi\n",
        "if [ \"${next_entry}\" ] ; then\n set default=\"${next_entry}\"\n set next_entry=\n save_env next_entry\nelse\n set default=\"${saved_entry}\"\nfi\n",
        "menuentry one { linux /1 }\nmenuentry two { linux /2 }\nmenuentry three { linux /3 }\n",
    );
    let f = found(&[
        (CFG, header),
        ("/boot/grub/grubenv", &grubenv("saved_entry=two\n")),
    ]);
    assert_eq!(default_title(&f), Some("two"));
    let f = found(&[
        (CFG, header),
        (
            "/boot/grub/grubenv",
            &grubenv("saved_entry=two\nnext_entry=three\n"),
        ),
    ]);
    assert_eq!(default_title(&f), Some("three"), "next_entry wins (once)");
    // `default=saved` as GRUB legacy-style configs write it.
    let f = found(&[
        (
            CFG,
            "load_env\nset default=saved\nmenuentry one { linux /1 }\nmenuentry two { linux /2 }\n",
        ),
        ("/boot/grub/grubenv", &grubenv("saved_entry=two\n")),
    ]);
    assert_eq!(default_title(&f), Some("two"));
}

#[test]
fn load_env_file_and_whitelist() {
    let f = found(&[
        (
            CFG,
            "load_env -f /boot/grub/other.env b\nmenuentry \"$a-$b\" { linux /k }\n",
        ),
        ("/boot/grub/other.env", &grubenv("a=1\nb=2\n")),
    ]);
    assert_eq!(titles(&f), ["-2"]);
}

#[test]
fn timeout() {
    let with_entry = |t: &str| cfg(&format!("{t}menuentry a {{ linux /k }}\n")).timeout;
    assert_eq!(with_entry("set timeout=7\n"), Some(Timeout::Secs(7)));
    assert_eq!(with_entry("set timeout=-1\n"), Some(Timeout::Forever));
    assert_eq!(
        with_entry("set timeout_style=hidden\nset timeout=0\n"),
        Some(Timeout::Secs(0))
    );
    // GRUB's menu waits when `timeout` is unset or not a number (normal/menu.c).
    assert_eq!(
        cfg("set timeout=soon\nmenuentry a { linux /k }\n").timeout,
        Some(Timeout::Forever)
    );
    assert_eq!(
        cfg("menuentry a { linux /k }\n").timeout,
        Some(Timeout::Forever)
    );
    // No menu, no timeout to give.
    assert_eq!(cfg("set timeout=3\n").timeout, None);
}

/// Debian 12's UEFI netboot `grub.cfg` (debian-installer-12-netboot-amd64, `src/net/testdata/`)
/// sets no timeout: its menu waits; the first entry is what Enter boots.
#[test]
fn debian_netboot_grub_cfg_waits_for_a_choice() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/net/testdata/debian-12-netboot/debian-installer/amd64/grub/grub.cfg"
    ))
    .unwrap();
    let f = cfg(&text);
    assert_eq!(f.timeout, Some(Timeout::Forever));
    assert_eq!(f.default, None);
    assert_eq!(f.entries[0].title, "Install");
}

#[test]
fn source_shares_the_environment_and_is_bounded() {
    let f = found(&[
        (
            CFG,
            "source /boot/grub/inc.cfg\nmenuentry \"from $v\" { linux /k }\n",
        ),
        (
            "/boot/grub/inc.cfg",
            "v=inc\nmenuentry inner { linux /inner }\n",
        ),
    ]);
    assert_eq!(titles(&f), ["inner", "from inc"]);
    assert_eq!(f.entries[0].source.file, "/boot/grub/inc.cfg");
    // A file that sources itself stops at the depth bound, with an error.
    let f = found(&[(
        CFG,
        "x=\"a$x\"\nmenuentry $x { linux /k-$x }\nsource /boot/grub/grub.cfg\n",
    )]);
    assert_eq!(f.entries.len(), eval::MAX_SOURCE_DEPTH);
    assert!(f.errors.iter().any(|e| e.message.contains("nested deeper")));
}

#[test]
fn configfile_replaces_the_menu() {
    // Ubuntu's ESP stub: find the root filesystem, then show its config.
    let esp = MemFs::new(&[(
        "/EFI/ubuntu/grub.cfg",
        "menuentry stub { linux /stub }\nsearch.fs_uuid 1111-aaaa root hd0,gpt2\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\nmenuentry after { linux /after }\n",
    )]);
    let rootfs = MemFs::new(&[(CFG, "menuentry real { linux /boot/vmlinuz }\n")]);
    let mut v_esp = view("esp", &esp);
    v_esp.grub_position = Some((0, 1));
    v_esp.part_type = Some("c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
    let mut v_root = view("root", &rootfs);
    v_root.uuid = Some("1111-AAAA");
    v_root.grub_position = Some((0, 2));
    v_root.part_type = Some("0fc63daf-8483-4772-8e79-3d69d8e477e4");
    let all = [v_esp, v_root];
    let f = discover(&all[0], &all);
    assert_eq!(titles(&f), ["real"]);
    assert_eq!(f.entries[0].kernel.volume, "root");
    assert_eq!(f.entries[0].source.volume, "root");
    assert_eq!(f.entries[0].source.file, CFG);
}

#[test]
fn search_and_device_names_resolve_across_volumes() {
    let boot = MemFs::new(&[("/grub2/grub.cfg", concat!(
        "search --no-floppy --fs-uuid --set=r1 --hint-bios=hd0,gpt3 --hint-efi=hd0,gpt3 ABCD-1234\n",
        "search --label --set r2 DATA\n",
        "search --file --set=r3 /marker\n",
        "search --set=r4 --fs-uuid no-such-uuid\n",
        "menuentry \"$r1 $r2 $r3 [$r4]\" { linux ($r1)/k1; initrd (hd1,msdos1)/i (hd0,3)/j }\n",
        "menuentry rooted { set root=(hd1,msdos1); linux /k2; initrd ($root)/i2 }\n",
        "menuentry whole { linux (hd2)/k3 }\n",
    ))]);
    let a = MemFs::new(&[]);
    let b = MemFs::new(&[("/marker", "")]);
    let disk = MemFs::new(&[]);
    let mut vb = view("boot", &boot);
    vb.grub_position = Some((0, 2));
    vb.part_type = Some("x");
    let mut va = view("a", &a);
    va.uuid = Some("abcd-1234");
    va.grub_position = Some((0, 3));
    va.part_type = Some("x");
    let mut vx = view("b", &b);
    vx.label = Some("DATA");
    vx.grub_position = Some((1, 1));
    let mut vd = view("disk", &disk);
    vd.grub_position = Some((2, 0));
    let all = [vb, va, vx, vd];
    let f = discover(&all[0], &all);
    assert_eq!(f.errors, [], "{:#?}", f.entries);
    assert_eq!(titles(&f)[0], "hd0,gpt3 hd1,msdos1 hd1,msdos1 []");
    let e = &f.entries[0];
    assert_eq!(
        (e.kernel.volume.as_str(), e.kernel.path.as_str()),
        ("a", "/k1")
    );
    let vols: Vec<&str> = e.initrds.iter().map(|i| i.volume.as_str()).collect();
    assert_eq!(vols, ["b", "a"]);
    assert_eq!(e.cmdline, "BOOT_IMAGE=(hd0,gpt3)/k1");
    assert_eq!(f.entries[1].kernel.volume, "b");
    assert_eq!(f.entries[1].initrds[0].volume, "b");
    assert_eq!(f.entries[2].kernel.volume, "disk");
}

/// `BOOT_IMAGE=` as GRUB writes it: `(hdN,gptM)/path` or `/path`, never a leapboot volume
/// name (a `--root` host path, `disk.img:1`, `vda2`).
#[test]
fn boot_image_never_carries_a_leapboot_volume_name() {
    let fs = MemFs::new(&[]);
    let mut placed = view("disk.img:2", &fs);
    placed.grub_position = Some((0, 2));
    placed.part_type = Some("x");
    let host = view("/srv/boot", &fs);
    let vols = [placed, host];
    for (written, want) in [
        ("/vmlinuz", "/vmlinuz"),
        ("(/srv/boot)/vmlinuz-6.1", "/vmlinuz-6.1"),
        ("(disk.img:2)/vmlinuz", "(hd0,gpt2)/vmlinuz"),
        ("(hd0,gpt2)/vmlinuz", "(hd0,gpt2)/vmlinuz"),
        ("(lvm/vg-root)/boot/vmlinuz", "(lvm/vg-root)/boot/vmlinuz"),
        ("(/srv/boot", "(/srv/boot"),
    ] {
        assert_eq!(super::boot_image(written, &vols), want, "{written}");
    }
    // blscfg on a volume without a disk position: `linux ($root)/vmlinuz`.
    let fs = MemFs::new(&[
        (CFG, "blscfg\n"),
        (
            "/loader/entries/a.conf",
            "title A\nlinux /vmlinuz-6.1\noptions ro\n",
        ),
    ]);
    let f = discover(&view("/srv/boot", &fs), &[]);
    assert_eq!(f.entries[0].cmdline, "BOOT_IMAGE=/vmlinuz-6.1 ro");
}

#[test]
fn probe_sets_the_uuid() {
    let fs = MemFs::new(&[(CFG, "probe --set u --fs-uuid $root\nprobe -u (hd0,gpt1) --set=v\nmenuentry \"$u $v\" { linux /k }\n")]);
    let mut v = view("v", &fs);
    v.uuid = Some("uu-1");
    v.grub_position = Some((0, 1));
    v.part_type = Some("x");
    let f = discover(&v, &[]);
    assert_eq!(titles(&f), ["uu-1 uu-1"]);
}

#[test]
fn bad_entries_are_errors_with_a_line_and_lose_only_themselves() {
    let f = cfg(concat!(
        "menuentry ok1 { linux /a }\n",
        "menuentry broken {\n if true; then linux /b\n}\n",
        "menuentry ok2 { linux /c }\n",
        "menuentry mb { multiboot /xen.gz; module /vmlinuz }\n",
        "menuentry nodev { linux (nodisk)/k }\n",
        "menuentry nofile { linux (hd9,gpt9) }\n",
        "menuentry reboot { reboot }\n",
        "menuentry ok3 { linux /d }\n",
    ));
    assert_eq!(titles(&f), ["ok1", "ok2", "ok3"]);
    let errs: Vec<String> = f.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 4, "{errs:#?}");
    assert!(
        errs[0].starts_with("v:/boot/grub/grub.cfg:4: syntax error"),
        "{errs:#?}"
    );
    assert!(errs
        .iter()
        .any(|e| e.starts_with("v:/boot/grub/grub.cfg:6: entry \"mb\" skipped")));
    assert!(errs
        .iter()
        .any(|e| e.starts_with("v:/boot/grub/grub.cfg:7: linux") && e.contains("not found")));
    assert!(errs
        .iter()
        .any(|e| e.starts_with("v:/boot/grub/grub.cfg:8: linux") && e.contains("no file name")));
}

#[test]
fn endless_loops_stop_at_the_step_budget() {
    let f = cfg("menuentry before { linux /k }\nwhile true; do x=1; done\nfunction f { f }\nf\nmenuentry after { linux /k2 }\n");
    assert_eq!(titles(&f), ["before", "after"]);
    assert!(f.errors.iter().any(|e| e.message.contains("iterations")));
    assert!(f
        .errors
        .iter()
        .any(|e| e.message.contains("calls nested deeper")));
    let f = cfg("function f { f; f }\nf\nmenuentry after { linux /k2 }\n");
    assert!(
        f.errors.iter().any(|e| e.message.contains("steps")),
        "{:?}",
        f.errors
    );
}

#[test]
fn menus_are_bounded() {
    let items = "x ".repeat(600);
    let f = cfg(&format!(
        "set l=\"{items}\"\nfor i in $l; do menuentry a$i {{ linux /k }}; done\nfor i in $l; do menuentry b$i {{ linux /k }}; done\n"
    ));
    assert_eq!(f.entries.len(), MAX_ENTRIES);
    assert_eq!(f.errors.len(), 1, "reported once");
    // A value built by doubling stays bounded.
    let f = cfg("x=ab\nfor i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do x=$x$x; done\nmenuentry t { linux /k $x }\n");
    assert!(f.entries[0].cmdline.len() <= eval::MAX_VALUE + 20);
}

#[test]
fn harmless_and_unknown_commands_are_skipped() {
    let f = cfg(concat!(
        "insmod gzio\nfont=unicode\nloadfont $font\nterminal_output gfxterm\necho hi\nplay 480 440 1\n",
        "if regexp -s x '(.*)' abc; then r=matched; else r=skipped; fi\n",
        "frobnicate --now\n",
        "menuentry \"$r\" { insmod ext2; echo loading; linux /k }\n",
    ));
    assert_eq!(titles(&f), ["skipped"]);
    assert!(f.errors.is_empty(), "{:?}", f.errors);
}

#[test]
fn config_locations() {
    let order = [
        "/boot/grub/grub.cfg",
        "/grub/grub.cfg",
        "/boot/grub2/grub.cfg",
        "/grub2/grub.cfg",
        "/EFI/debian/grub.cfg",
        "/EFI/BOOT/grub.cfg",
        "/grub.cfg",
    ];
    for (i, want) in order.iter().enumerate() {
        let files: Vec<(&str, &str)> = order[i..].iter().map(|p| (*p, "")).collect();
        let fs = MemFs::new(&files);
        assert_eq!(find_config(&fs).as_deref(), Some(*want));
    }
    let fs = MemFs::new(&[("/efi/fedora/GRUB.CFG", ""), ("/grub2/grubenv", "")]);
    assert_eq!(find_config(&fs).as_deref(), Some("/efi/fedora/GRUB.CFG"));
    assert_eq!(find_config(&MemFs::new(&[("/x", "")])), None);
}

#[test]
fn blscfg_entries_appear_where_blscfg_runs() {
    let f = found(&[
        (
            "/grub2/grub.cfg",
            concat!(
                "load_env\n",
                "set default=\"${saved_entry}\"\n",
                "menuentry first { linux /first }\n",
                "set kernelopts=\"root=/dev/cfg ro\"\n",
                "blscfg\n",
                "menuentry last { linux /last }\n",
            ),
        ),
        ("/grub2/grubenv", &grubenv("saved_entry=m-6.2\nkernelopts=root=/dev/env\n")),
        (
            "/loader/entries/m-6.1.conf",
            "title F 6.1\nversion 6.1\nlinux /vmlinuz-6.1\ninitrd /initramfs-6.1.img\noptions $kernelopts $tuned_params\n",
        ),
        (
            "/loader/entries/m-6.2.conf",
            "title F 6.2\nversion 6.2\nlinux /vmlinuz-6.2\ninitrd /initramfs-6.2.img\noptions $kernelopts quiet\n",
        ),
        ("/loader/entries/broken.conf", "title nothing\n"),
    ]);
    assert_eq!(titles(&f), ["first", "F 6.2", "F 6.1", "last"]);
    assert_eq!(f.entries[1].id, "m-6.2");
    assert_eq!(
        f.entries[1].cmdline, "BOOT_IMAGE=/vmlinuz-6.2 root=/dev/cfg ro quiet",
        "grub.cfg's set wins over grubenv (it ran later)"
    );
    assert_eq!(f.entries[1].source.file, "/loader/entries/m-6.2.conf");
    assert_eq!(f.entries[1].source.line, Some(3));
    assert_eq!(f.entries[2].initrds[0].path, "/initramfs-6.1.img");
    assert_eq!(default_title(&f), Some("F 6.2"));
    assert_eq!(f.errors.len(), 1);
}

#[test]
fn duplicate_titles_get_distinct_ids() {
    let f = cfg("menuentry a { linux /1 }\nmenuentry a { linux /2 }\n");
    let ids: Vec<&str> = f.entries.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["a", "a~2"]);
}

#[test]
fn real_world_fixtures() {
    check_fixtures("src/entry/grub/testdata", discover);
}

proptest::proptest! {
    #[test]
    fn discover_never_panics(main in "\\PC{0,500}", inc in "\\PC{0,200}") {
        let _ = found(&[(CFG, &main), ("/boot/grub/inc.cfg", &inc), ("/loader/entries/a.conf", &inc)]);
    }

    #[test]
    fn script_like_input_never_panics(lines in proptest::collection::vec(
        "(menuentry|submenu|linux|initrd|set|if|then|else|fi|for|while|do|done|function|source|configfile|blscfg|search|load_env|\\[|\\]|\\{|\\}|;|default=|x=\\$x\\$x)( [a-z0-9/$\"'{}()>=-]{0,8}){0,4}",
        0..40,
    )) {
        let text = lines.join("\n");
        let f = found(&[(CFG, &text), ("/inc.cfg", &text)]);
        for e in &f.entries {
            proptest::prop_assert!(e.kernel.path.starts_with('/'));
            proptest::prop_assert!(e.cmdline.starts_with("BOOT_IMAGE="));
        }
    }
}

/// Issue 11: a grub.cfg that sources itself, with a large function it never calls, cost
/// 300 s and 328 MB (re-read and re-parsed at every `source`, budget counted in commands).
#[test]
fn grub_self_source_with_a_large_function_is_parsed_once() {
    let mut text = String::from("function big {\n");
    while text.len() < 900 * 1024 {
        text.push_str("  set a=\"$a$a$a$a\" b=1 c=2 d=3 e=4 f=5\n");
    }
    text.push_str("}\nmenuentry 'M' { linux /vmlinuz }\nsource /boot/grub/grub.cfg\n");
    let t = std::time::Instant::now();
    let f = cfg(&text);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        t.elapsed()
    );
    assert!(!f.entries.is_empty());
    assert!(
        f.errors
            .iter()
            .any(|e| e.message.contains("stopped") || e.message.contains("nested deeper")),
        "{:?}",
        f.errors
    );
}

/// `while true; do blscfg; done` over many BLS entries: the work budget (bytes read and
/// parsed) ends it, not only the loop count.
#[test]
fn grub_blscfg_in_an_endless_loop_is_bounded_by_work() {
    let entry = format!(
        "title T\nlinux /vmlinuz\noptions {}\n{}",
        "x=1 ".repeat(200),
        "# padding\n".repeat(2000)
    );
    let names: Vec<String> = (0..200)
        .map(|i| format!("/loader/entries/e{i}.conf"))
        .collect();
    let mut files: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), entry.as_str())).collect();
    files.push((CFG, "while true; do blscfg; done\n"));
    let t = std::time::Instant::now();
    let f = found(&files);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        t.elapsed()
    );
    assert!(
        f.errors.iter().any(|e| e.message.contains("work exceeded")),
        "{:?}",
        f.errors.iter().map(|e| &e.message).collect::<Vec<_>>()
    );
}

/// The scan's wall-clock budget ([`crate::budget`]) stops an interpreter that is still
/// within its step and work budgets.
#[test]
fn grub_stops_at_the_scans_deadline() {
    let f = crate::budget::with_deadline(std::time::Instant::now(), || {
        cfg("menuentry 'A' { linux /a }\nfor i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do for j in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do set x=$i; done; done\nmenuentry 'B' { linux /b }\n")
    });
    assert!(
        f.errors.iter().any(|e| e.message.contains("time budget")),
        "{:?}",
        f.errors
    );
    assert_eq!(titles(&f), ["A"], "the menu so far is kept");
}
