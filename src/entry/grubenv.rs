//! GRUB's environment block (`grubenv`): the `key=value` store `grub-editenv` writes and
//! `load_env` reads (`saved_entry`, `next_entry`, Fedora's `kernelopts`...).
//!
//! Format (grub-core/lib/envblk.c): a 1024-byte file starting with `# GRUB Environment Block`,
//! one `name=value` per line, `\` escaping `\` and newline in values, padded with `#`.
//! Read-only here, like everything else: leapboot never updates `next_entry`.

use std::collections::BTreeMap;

use crate::fs::BootFs;

const SIGNATURE: &str = "# GRUB Environment Block\n";
/// grubenv files are 1024 bytes; anything much larger is not one.
const MAX_BYTES: u64 = 64 * 1024;

/// Parses a grubenv block. `None` if it lacks the signature.
pub fn parse(bytes: &[u8]) -> Option<BTreeMap<String, String>> {
    let text = String::from_utf8_lossy(bytes);
    let body = text.strip_prefix(SIGNATURE)?;
    let mut vars = BTreeMap::new();
    let mut chars = body.chars().peekable();
    let mut line = String::new();
    let mut lines = Vec::new();
    // Split on unescaped newlines, resolving escapes.
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => line.push('\n'),
                Some(c) => line.push(c),
                None => {}
            },
            '\n' => lines.push(std::mem::take(&mut line)),
            c => line.push(c),
        }
    }
    lines.push(line);
    for l in lines {
        if l.starts_with('#') || l.is_empty() {
            continue;
        }
        if let Some((k, v)) = l.split_once('=') {
            vars.insert(k.to_string(), v.to_string());
        }
    }
    Some(vars)
}

/// Where distributions keep grubenv on a boot volume, in the order GRUB's `load_env` would
/// find them from its prefix.
pub const LOCATIONS: &[&str] = &[
    "/grub2/grubenv",
    "/grub/grubenv",
    "/boot/grub2/grubenv",
    "/boot/grub/grubenv",
];

/// Reads `path` (or, with `None`, the first of [`LOCATIONS`]) from `fs`.
pub fn load(fs: &dyn BootFs, path: Option<&str>) -> Option<BTreeMap<String, String>> {
    let paths: Vec<&str> = match path {
        Some(p) => vec![p],
        None => LOCATIONS.to_vec(),
    };
    paths
        .into_iter()
        .find_map(|p| fs.read(p, MAX_BYTES).ok().and_then(|b| parse(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_grub_editenv_block() {
        let mut block = b"# GRUB Environment Block\nsaved_entry=Debian GNU/Linux\nkernelopts=root=UUID=x ro \\\\ a\\nb\n".to_vec();
        block.resize(1024, b'#');
        let env = parse(&block).unwrap();
        assert_eq!(env["saved_entry"], "Debian GNU/Linux");
        assert_eq!(env["kernelopts"], "root=UUID=x ro \\ a\nb");
        assert_eq!(env.len(), 2);
    }

    #[test]
    fn refuses_what_is_not_a_block() {
        assert!(parse(b"saved_entry=x\n").is_none());
        assert!(parse(b"").is_none());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let mut b = SIGNATURE.as_bytes().to_vec();
            b.extend(bytes);
            let _ = parse(&b);
        }
    }
}
