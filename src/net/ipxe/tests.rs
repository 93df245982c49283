use super::*;
use crate::net::pxe::PxeClient;
use proptest::prelude::*;

fn run(text: &str, files: &[(&str, &str)]) -> Found {
    let base = Url::parse("http://10.0.2.2/boot/start.ipxe").unwrap();
    let client = PxeClient {
        mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
        ip: Some("10.0.2.15".parse().unwrap()),
        ..PxeClient::default()
    };
    let vars = Vars::client(&client, Some("10.0.2.2"));
    let mut fetch = |u: &Url| -> Result<Fetched, String> {
        match files.iter().find(|(p, _)| *p == u.to_string()) {
            Some((_, t)) if t.starts_with("#!ipxe") => Ok(Fetched::Script(t.to_string())),
            Some(_) => Ok(Fetched::Kernel),
            None => Err("not found".into()),
        }
    };
    interpret(&base, text, &vars, &mut fetch)
}

fn summary(f: &Found) -> Vec<(String, String, Vec<String>, String)> {
    f.entries
        .iter()
        .map(|e| {
            (
                e.title.clone(),
                format!("{}{}", e.kernel.volume, e.kernel.path),
                e.initrds
                    .iter()
                    .map(|i| format!("{}{}", i.volume, i.path))
                    .collect(),
                e.cmdline.clone(),
            )
        })
        .collect()
}

#[test]
fn kernel_initrd_boot_with_variables() {
    let f = run(
        "#!ipxe\ndhcp\nset base http://${next-server}/d\nkernel ${base}/vmlinuz console=ttyS0 \
         BOOTIF=01-${net0/mac:hexhyp} ip=${ip}\ninitrd ${base}/initrd.img\nboot\n",
        &[],
    );
    assert_eq!(
        summary(&f),
        [(
            "iPXE: /d/vmlinuz".to_string(),
            "http://10.0.2.2/d/vmlinuz".to_string(),
            vec!["http://10.0.2.2/d/initrd.img".to_string()],
            "console=ttyS0 BOOTIF=01-52-54-00-12-34-56 ip=10.0.2.15".to_string()
        )]
    );
    assert_eq!(f.entries[0].source.line, Some(6));
    assert_eq!(f.entries[0].format, Format::Ipxe);
    assert_eq!(f.default, Some(DefaultRule::Index(0)));
}

#[test]
fn typed_expansions_show_the_bytes_as_ipxe_does() {
    let v = Vars(
        [
            ("mac", "52:54:00:12:34:56"),
            ("ip", "10.0.2.15"),
            ("s", "ab"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into(),
    );
    let table = [
        ("${mac}", "52:54:00:12:34:56"),
        ("${mac:hex}", "52:54:00:12:34:56"),
        ("${mac:hexhyp}", "52-54-00-12-34-56"),
        ("${mac:hexraw}", "525400123456"),
        ("${ip:hexraw}", "0a00020f"),
        ("${ip:ipv4}", "10.0.2.15"),
        ("${s:hexhyp}", "61-62"),
        ("${s:string}", "ab"),
        ("${unset:hexhyp}", ""),
    ];
    for (w, want) in table {
        assert_eq!(expand(w, &v), want, "{w}");
    }
}

#[test]
fn relative_urls_imgargs_and_names() {
    let f = run(
        "#!ipxe\nkernel --name k ../linux\nimgargs k quiet x=1\ninitrd -n i1 a.img\nmodule b.img\nboot k\n",
        &[],
    );
    let s = summary(&f);
    assert_eq!(s[0].1, "http://10.0.2.2/linux");
    assert_eq!(
        s[0].2,
        ["http://10.0.2.2/boot/a.img", "http://10.0.2.2/boot/b.img"]
    );
    assert_eq!(s[0].3, "quiet x=1");
}

#[test]
fn chain_runs_the_second_script_relative_to_itself() {
    let f = run(
        "#!ipxe\nchain menus/second.ipxe || goto failed\n:failed\necho chain failed\n",
        &[(
            "http://10.0.2.2/boot/menus/second.ipxe",
            "#!ipxe\nkernel vmlinuz second=1\ninitrd initrd.img\nboot\n",
        )],
    );
    let s = summary(&f);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].1, "http://10.0.2.2/boot/menus/vmlinuz");
    assert_eq!(s[0].3, "second=1");
    assert_eq!(f.entries[0].source.file, "/boot/menus/second.ipxe");
}

#[test]
fn chain_to_a_kernel_boots_it() {
    let f = run(
        "#!ipxe\ninitrd http://10.0.2.3/i.img\nchain http://10.0.2.3/vmlinuz a=b\n",
        &[("http://10.0.2.3/vmlinuz", "MZ...")],
    );
    let s = summary(&f);
    assert_eq!(s[0].1, "http://10.0.2.3/vmlinuz");
    assert_eq!(s[0].2, ["http://10.0.2.3/i.img"]);
    assert_eq!(s[0].3, "a=b");
}

#[test]
fn a_failed_chain_takes_the_or_branch_and_is_reported() {
    let f = run(
        "#!ipxe\nchain missing.ipxe || goto fallback\nexit\n:fallback\nkernel k\nboot\n",
        &[],
    );
    assert_eq!(summary(&f)[0].1, "http://10.0.2.2/boot/k");
    assert!(f.errors[0].message.contains("not found"), "{:?}", f.errors);
    assert_eq!(f.errors[0].line, Some(2));
}

#[test]
fn isset_iseq_and_goto() {
    let f = run(
        "#!ipxe\nisset ${nothing} && goto wrong || goto next\n:wrong\nkernel wrong\nboot\n\
         :next\niseq ${platform} pcbios && goto bios || goto wrong\n:bios\nkernel right\nboot\n",
        &[],
    );
    assert_eq!(summary(&f)[0].1, "http://10.0.2.2/boot/right");
}

#[test]
fn menu_items_become_entries_with_the_default() {
    let f = run(
        "#!ipxe\nmenu Boot menu\nitem --gap -- Systems\nitem debian Debian 12\nitem rescue Rescue\n\
         item shell iPXE shell\nchoose --default rescue --timeout 5000 target && goto ${target}\n\
         :debian\nkernel deb/linux\nboot\n:rescue\nkernel deb/linux rescue\nboot\n:shell\nshell\n",
        &[],
    );
    let s = summary(&f);
    assert_eq!(
        s.iter()
            .map(|e| (e.0.as_str(), e.3.as_str()))
            .collect::<Vec<_>>(),
        [("Debian 12", ""), ("Rescue", "rescue")]
    );
    assert_eq!(f.default, Some(DefaultRule::Index(1)));
}

#[test]
fn loops_and_deep_chains_are_bounded() {
    let f = run("#!ipxe\n:a\ngoto a\n", &[]);
    assert!(f.entries.is_empty());
    assert!(f.errors[0].message.contains("commands"), "{:?}", f.errors);
    let f = run(
        "#!ipxe\nchain self.ipxe\n",
        &[(
            "http://10.0.2.2/boot/self.ipxe",
            "#!ipxe\nchain self.ipxe\n",
        )],
    );
    assert!(
        f.errors.iter().any(|e| e.message.contains("deep")),
        "{:?}",
        f.errors
    );
}

#[test]
fn unknown_and_unsupported_commands_fail_without_stopping() {
    let f = run(
        "#!ipxe\nsanboot iscsi:x || echo no\nfrobnicate\nkernel k\nboot\n",
        &[],
    );
    assert_eq!(f.entries.len(), 1);
    assert_eq!(f.errors.len(), 2);
    let f = run("#!ipxe\nboot\n", &[]);
    assert!(f.entries.is_empty() && f.errors[0].message.contains("no kernel"));
}

#[test]
fn expansion_is_bounded_and_tolerant() {
    let v = Vars(BTreeMap::from([("a".to_string(), "x".repeat(3000))]));
    assert_eq!(expand("${a", &v), "${a");
    assert_eq!(expand("<${b}>", &v), "<>");
    assert!(expand("${a}${a}${a}", &v).len() <= MAX_VALUE);
}

proptest! {
    #[test]
    fn never_panics(text in "(#!ipxe\n)?((kernel|initrd|chain|goto|:|set|isset|item|choose|menu|imgargs|boot|exit|&&|\\|\\||\\$\\{|\\}|[a-z]{1,3}| |\n|x\\.ipxe)){0,60}") {
        let _ = run(&text, &[("http://10.0.2.2/boot/x.ipxe", "#!ipxe\nchain x.ipxe\n")]);
    }
}
