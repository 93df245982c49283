//! ARCHITECTURE.md is checked, not trusted: every module under `src/` must be in its code
//! map, and no module may import against the documented direction (its "Layers" block: a
//! module uses only modules on its own line or the lines above).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn architecture() -> String {
    std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md")
}

/// The `src/` part of the code map: from its heading to the next `### ` heading.
fn src_map(doc: &str) -> &str {
    let start = doc.find("### `src/`").expect("a '### `src/`' section");
    let rest = &doc[start + 4..];
    let end = rest.find("\n### ").map_or(rest.len(), |e| e);
    &rest[..end]
}

/// The top-level modules of the library: `src/x.rs` and `src/x/` (not the binaries' roots).
fn modules() -> Vec<String> {
    let mut m: Vec<String> = std::fs::read_dir(root().join("src"))
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if e.path().is_dir() {
                Some(name)
            } else {
                let stem = name.strip_suffix(".rs")?;
                (!["lib", "main"].contains(&stem)).then(|| stem.to_string())
            }
        })
        .collect();
    m.sort();
    m
}

/// The `.rs` files of module directory `dir`, recursively, with `tests.rs` files and
/// `testdata/` left out.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        if dir.extension().is_some_and(|e| e == "rs") {
            out.push(dir.to_owned());
        }
        return;
    };
    for e in rd.filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "testdata") {
                sources(&p, out);
            }
        } else if p.extension().is_some_and(|e| e == "rs")
            && p.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(p);
        }
    }
}

/// The layers: module names per line, lowest first, from the fenced block after the
/// `<!-- layers -->` marker.
fn layers(doc: &str) -> BTreeMap<String, usize> {
    let start = doc
        .find("<!-- layers -->")
        .expect("a <!-- layers --> block");
    let block = &doc[start..];
    let open = block
        .find("```")
        .expect("a fenced block after <!-- layers -->");
    let body = &block[open + 3..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let body = &body[..body.find("```").expect("the block's end")];
    let mut map = BTreeMap::new();
    for (n, line) in body.lines().enumerate() {
        let names = line.split(':').nth(1).unwrap_or(line);
        for name in names.split_whitespace() {
            assert!(
                map.insert(name.to_string(), n).is_none(),
                "{name} is in two layers"
            );
        }
    }
    map
}

/// The `crate::x` names used by the non-test code of `file`: comment lines and everything
/// from a `#[cfg(test)]` on are left out (test modules sit at the end of a file).
fn imports(file: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let name: String = rest[at + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push((n + 1, name));
            rest = &rest[at + 7..];
        }
    }
    out
}

#[test]
fn every_module_is_in_the_code_map() {
    let doc = architecture();
    let map = src_map(&doc);
    let mut missing = Vec::new();
    for m in modules() {
        let dir = root().join("src").join(&m);
        let listed = if dir.is_dir() {
            map.contains(&format!("`{m}/`"))
        } else {
            map.contains(&format!("`{m}.rs`"))
        };
        if !listed {
            missing.push(m.clone());
        }
        // The files of a module directory are named in the map too (`name.rs`, or `name/`
        // for a subdirectory), except its root and its tests.
        if dir.is_dir() {
            for e in std::fs::read_dir(&dir).unwrap().filter_map(Result::ok) {
                let name = e.file_name().into_string().unwrap();
                let wanted = if e.path().is_dir() {
                    if name == "testdata" {
                        continue;
                    }
                    format!("{name}/")
                } else if name.ends_with(".rs") && name != "mod.rs" && name != "tests.rs" {
                    name.clone()
                } else {
                    continue;
                };
                if !map.contains(&wanted) {
                    missing.push(format!("{m}/{wanted}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map (### `src/`) does not name: {missing:?}"
    );
}

#[test]
fn every_module_is_in_a_layer() {
    let layers = layers(&architecture());
    let missing: Vec<String> = modules()
        .into_iter()
        .filter(|m| m != "testutil" && !layers.contains_key(m))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's layers block does not place: {missing:?}"
    );
}

#[test]
fn no_module_imports_against_the_layers() {
    let layers = layers(&architecture());
    let mut wrong = Vec::new();
    for m in modules() {
        let Some(&own) = layers.get(&m) else {
            continue;
        };
        let mut files = Vec::new();
        let dir = root().join("src").join(&m);
        if dir.is_dir() {
            sources(&dir, &mut files);
        } else {
            files.push(root().join("src").join(format!("{m}.rs")));
        }
        let all = modules();
        for f in files {
            for (line, used) in imports(&f) {
                // `crate::MOUNT_ROOT` and the like live in lib.rs, below every module.
                if used == m || !all.contains(&used) {
                    continue;
                }
                match layers.get(&used) {
                    Some(&theirs) if theirs <= own => {}
                    _ => wrong.push(format!(
                        "{}:{line}: {m} uses crate::{used}",
                        f.strip_prefix(root()).unwrap().display()
                    )),
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against ARCHITECTURE.md's layers (a module may use only modules on its own line or the lines above):\n{}",
        wrong.join("\n")
    );
}
