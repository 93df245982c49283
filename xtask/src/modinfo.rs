//! `modules.dep` and `modules.alias` from the `.modinfo` sections of `.ko` files: what
//! `depmod` would write, without needing kmod on the build machine (Debian's kernel packages
//! ship no index; depmod makes it at install time).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use object::{Object, ObjectSection};

struct Module {
    path: String,
    depends: Vec<String>,
    aliases: Vec<String>,
}

fn modinfo(data: &[u8]) -> anyhow::Result<Vec<(String, String)>> {
    let file = object::File::parse(data)?;
    let section = file
        .section_by_name(".modinfo")
        .context("no .modinfo section")?;
    let bytes = section.data()?;
    Ok(bytes
        .split(|&b| b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok()?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            collect(&p, out)?;
        } else if p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".ko"))
        {
            out.push(p);
        }
    }
    Ok(())
}

/// Writes `modules.dep` and `modules.alias` into `dir` (`lib/modules/<release>`).
pub fn write_index(dir: &Path) -> anyhow::Result<()> {
    let mut files = Vec::new();
    collect(dir, &mut files)?;
    let mut modules: BTreeMap<String, Module> = BTreeMap::new();
    for f in files {
        let data = std::fs::read(&f)?;
        let info = modinfo(&data).with_context(|| f.display().to_string())?;
        let rel = f.strip_prefix(dir)?.to_string_lossy().into_owned();
        let name = leapboot::kmod::name_of(&rel);
        let depends = info
            .iter()
            .filter(|(k, _)| k == "depends")
            .flat_map(|(_, v)| {
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(leapboot::kmod::normalize)
            })
            .collect();
        let aliases = info
            .iter()
            .filter(|(k, _)| k == "alias")
            .map(|(_, v)| v.clone())
            .collect();
        modules.insert(
            name,
            Module {
                path: rel,
                depends,
                aliases,
            },
        );
    }
    let mut dep = String::new();
    let mut alias = String::new();
    for (name, m) in &modules {
        // Dependencies in load order (depth first, each once), written in depmod's order: the
        // last one listed is loaded first.
        let mut order = Vec::new();
        visit(name, &modules, &mut order, 0);
        order.pop(); // the module itself comes last
        let deps: Vec<&str> = order
            .iter()
            .rev()
            .map(|n| modules[n].path.as_str())
            .collect();
        dep.push_str(&format!("{}: {}\n", m.path, deps.join(" ")));
        for a in &m.aliases {
            alias.push_str(&format!("alias {a} {name}\n"));
        }
    }
    std::fs::write(dir.join("modules.dep"), dep)?;
    std::fs::write(dir.join("modules.alias"), alias)?;
    Ok(())
}

fn visit(name: &str, modules: &BTreeMap<String, Module>, order: &mut Vec<String>, depth: usize) {
    if depth > 64 || order.iter().any(|n| n == name) {
        return;
    }
    let Some(m) = modules.get(name) else {
        return; // built in, or missing: nothing to load
    };
    for d in &m.depends {
        visit(d, modules, order, depth + 1);
    }
    order.push(name.to_string());
}
