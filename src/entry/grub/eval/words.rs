//! Words as GRUB passes them to commands: expansion with field splitting, Fedora blscfg's
//! `expand_val`, and the Linux loader's command-line assembly. Pure functions.

use super::super::lexer::{lex, Kind, Part, Word};

/// One word expands to at most about this many bytes (then it is cut).
pub const MAX_WORD_BYTES: usize = 256 * 1024;

/// GRUB's `grub_create_loader_cmdline` (grub-core/lib/cmdline.c): arguments joined by
/// spaces, an argument holding a space put in double quotes. (Some distribution builds also
/// backslash-escape quotes and backslashes there; upstream no longer does.)
pub fn loader_cmdline(args: &[String]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if a.contains(' ') {
            out.push('"');
            out.push_str(a);
            out.push('"');
        } else {
            out.push_str(a);
        }
    }
    out
}

/// Fedora blscfg's `expand_val`: `$name` and `${name}` replaced by their values (unset: empty).
pub fn expand_val(text: &str, get: &dyn Fn(&str) -> Option<String>) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if out.len() > MAX_WORD_BYTES {
            log::debug!("grub: a value expanded beyond {MAX_WORD_BYTES} bytes; cut");
            break;
        }
        if chars[i] == '$' {
            let braced = chars.get(i + 1) == Some(&'{');
            let start = if braced { i + 2 } else { i + 1 };
            let mut end = start;
            while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_') {
                end += 1;
            }
            let closed = !braced || chars.get(end) == Some(&'}');
            if end > start && closed {
                let name: String = chars[start..end].iter().collect();
                out.push_str(&get(&name).unwrap_or_default());
                i = if braced { end + 1 } else { end };
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// The words GRUB would pass to a command for `text` (quotes removed, variables from `get`
/// expanded and split): how a BLS `options` line reaches `linux` through `blscfg`.
pub fn script_words(text: &str, get: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let mut out = Vec::new();
    for t in lex(text) {
        if let Kind::Word(w) = t.kind {
            expand_word(&w, &|n| get(n), &mut out);
        }
    }
    out
}

/// Expands one word into fields (GRUB splits unquoted variable values on blanks).
pub(super) fn expand_word(w: &Word, get: &dyn Fn(&str) -> Option<String>, out: &mut Vec<String>) {
    let mut cur = String::new();
    let mut have = false;
    // Bytes of this word's fields already pushed to `out`: a running total, so a word of
    // many parts costs linear time (re-summing `out` per part was quadratic).
    let mut emitted = 0usize;
    let push = |out: &mut Vec<String>, f: String, emitted: &mut usize| {
        *emitted += f.len();
        out.push(f);
    };
    for p in &w.parts {
        // One word of many `$big` parts must not grow without bound.
        if cur.len() + emitted > MAX_WORD_BYTES {
            log::debug!("grub: a word expanded beyond {MAX_WORD_BYTES} bytes; cut");
            break;
        }
        match p {
            Part::Lit { text, quoted } => {
                cur.push_str(text);
                have |= *quoted || !text.is_empty();
            }
            Part::Var { name, quoted: true } => {
                cur.push_str(&get(name).unwrap_or_default());
                have = true;
            }
            Part::Var {
                name,
                quoted: false,
            } => {
                let v = get(name).unwrap_or_default();
                let starts_blank = v.starts_with([' ', '\t', '\n']);
                let ends_blank = v.ends_with([' ', '\t', '\n']);
                let mut fields = v.split([' ', '\t', '\n']).filter(|f| !f.is_empty());
                if starts_blank && have {
                    push(out, std::mem::take(&mut cur), &mut emitted);
                    have = false;
                }
                if let Some(first) = fields.next() {
                    cur.push_str(first);
                    have = true;
                    for f in fields {
                        push(out, std::mem::take(&mut cur), &mut emitted);
                        cur.push_str(f);
                    }
                    if ends_blank {
                        push(out, std::mem::take(&mut cur), &mut emitted);
                        have = false;
                    }
                }
            }
        }
    }
    if have {
        push(out, cur, &mut emitted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn grub_word_of_many_parts_expands_in_linear_time() {
        // Issue 11: one word of 300,000 `$x` parts took 14 s (the expansion re-summed its
        // output for every part).
        let text = "a${x}".repeat(300_000);
        let t = std::time::Instant::now();
        let got = words(&text, &[("x", "b c")]);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            t.elapsed()
        );
        let bytes: usize = got.iter().map(String::len).sum();
        assert!(bytes <= MAX_WORD_BYTES + 8, "{bytes}");
        assert!(bytes > MAX_WORD_BYTES / 2, "{bytes}");
    }

    fn words(text: &str, vars: &[(&str, &str)]) -> Vec<String> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        script_words(text, &|n| vars.get(n).cloned())
    }

    #[test]
    fn expansion_splits_unquoted_values_only() {
        let v = [("a", "x y"), ("e", ""), ("s", " p q ")];
        assert_eq!(words("$a", &v), ["x", "y"]);
        assert_eq!(words("\"$a\"", &v), ["x y"]);
        assert_eq!(words("k=$a", &v), ["k=x", "y"]);
        assert_eq!(words("$e", &v), Vec::<String>::new());
        assert_eq!(words("\"$e\"", &v), [""]);
        assert_eq!(words("a${s}b", &v), ["a", "p", "q", "b"]);
        assert_eq!(words("x$unset", &v), ["x"]);
        let big = "y".repeat(10_000);
        let many = "$b".repeat(1000);
        let w = words(&many, &[("b", &big)]);
        assert!(w[0].len() <= MAX_WORD_BYTES + big.len());
    }

    #[test]
    fn loader_cmdline_quotes_like_grub() {
        let a = |v: &[&str]| loader_cmdline(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(a(&["BOOT_IMAGE=/k", "ro"]), "BOOT_IMAGE=/k ro");
        assert_eq!(a(&["x=a b"]), "\"x=a b\"");
        assert_eq!(a(&["q=\\x20"]), "q=\\x20");
    }

    #[test]
    fn expand_val_like_blscfg() {
        let get = |n: &str| (n == "k").then(|| "root=/dev/x ro".to_string());
        assert_eq!(
            expand_val("$k quiet ${k} $none$", &get),
            "root=/dev/x ro quiet root=/dev/x ro $"
        );
        assert_eq!(expand_val("${k", &get), "${k");
    }
}
