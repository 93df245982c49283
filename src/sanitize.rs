//! Making text from a disk or the network safe to show on a terminal.
//!
//! A filesystem label, a title or a file name is attacker-chosen: raw, `ESC [ 2 J` clears the
//! screen, a newline forges a log line, U+009B is an 8-bit CSI, U+202E reverses what follows.
//! [`for_terminal`] turns every such character into a visible escape (`\x1b`, `\n`,
//! `\u{202e}`); the logger applies it to every record, so no caller can forget it.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` would act on a terminal instead of being shown: C0 and C1 controls, DEL, and
/// the Unicode bidirectional overrides and isolates.
pub fn acts(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every control character, escape sequence introducer and bidi override shown as
/// an escape; borrowed when there is none. Linear in `s`.
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(acts) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 && acts(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if acts(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// JSON text with the characters serde_json leaves raw but a terminal obeys (DEL, the C1
/// controls such as U+009B CSI, bidi overrides) written as `\uXXXX` escapes: the same JSON
/// value, safe to print. (serde_json already escapes C0 controls; these characters can only
/// occur inside strings.)
pub fn json_escape_terminal_controls(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if acts(c) && (c as u32) >= 0x7f {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_with_escape_sequences_is_shown_not_obeyed() {
        assert_eq!(
            for_terminal("\u{1b}[2J\u{1b}[1;1HEFI"),
            "\\x1b[2J\\x1b[1;1HEFI"
        );
        assert_eq!(
            for_terminal("a\nb\rc\u{7f}\u{9b}31m"),
            "a\\nb\\rc\\x7f\\x9b31m"
        );
        assert_eq!(for_terminal("x\u{202e}gpj.exe"), "x\\u{202e}gpj.exe");
        assert!(matches!(
            for_terminal("Debian GNU/Linux été"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn json_keeps_its_value_and_loses_c1_controls() {
        let v = serde_json::json!({"title": "a\u{9b}2J\u{1b}x\u{202e}"});
        let text = json_escape_terminal_controls(&v.to_string());
        assert!(!text.chars().any(acts), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
    }

    proptest::proptest! {
        #[test]
        fn nothing_that_acts_survives(s in "\\PC*|[\\x00-\\x20\\x7f-\\u{a0}\\u{202a}-\\u{202e}a]{0,40}") {
            let out = for_terminal(&s);
            proptest::prop_assert!(!out.chars().any(acts), "{:?}", out);
        }
    }
}
