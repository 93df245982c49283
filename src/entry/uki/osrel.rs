//! os-release data (`os-release(5)`), as found in a UKI's `.osrel` section.
//!
//! `KEY=VALUE` lines; `#` comments and blank lines are skipped. Values follow the shell's
//! quoting rules that os-release allows: `"..."` (where `\` escapes `"`, `\`, `$` and `` ` ``),
//! `'...'` (literal), and unquoted text (where `\` escapes the next character); adjacent parts
//! concatenate. A line with a bad key or an unterminated quote is skipped. No variable
//! expansion, no command substitution: this is data, never evaluated.

/// Parsed os-release data: (key, value) in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OsRelease(pub Vec<(String, String)>);

impl OsRelease {
    /// Parses os-release text.
    pub fn parse(text: &str) -> OsRelease {
        OsRelease(
            text.lines()
                .filter_map(|line| {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        return None;
                    }
                    let (key, value) = line.split_once('=')?;
                    let key_ok = !key.is_empty()
                        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                    key_ok.then_some(())?;
                    Some((key.to_string(), unquote(value)?))
                })
                .collect(),
        )
    }

    /// The value of `key` (the last assignment wins, as in a shell), if set and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The name to show: `PRETTY_NAME`, else `NAME VERSION_ID` (or `NAME`).
    pub fn title(&self) -> Option<String> {
        if let Some(p) = self.get("PRETTY_NAME") {
            return Some(p.to_string());
        }
        let name = self.get("NAME")?;
        Some(match self.get("VERSION_ID") {
            Some(v) => format!("{name} {v}"),
            None => name.to_string(),
        })
    }

    /// The version to sort by (BLS Type #2): `IMAGE_VERSION`, else `VERSION_ID`.
    pub fn version(&self) -> Option<&str> {
        self.get("IMAGE_VERSION").or_else(|| self.get("VERSION_ID"))
    }

    /// The sort key (BLS Type #2): `IMAGE_ID`, else `ID`.
    pub fn sort_key(&self) -> Option<&str> {
        self.get("IMAGE_ID").or_else(|| self.get("ID"))
    }
}

/// Removes shell quoting from `v`; `None` for an unterminated quote or a trailing `\`.
fn unquote(v: &str) -> Option<String> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    c => out.push(c),
                }
            },
            '"' => loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        c @ ('"' | '\\' | '$' | '`') => out.push(c),
                        c => {
                            out.push('\\');
                            out.push(c);
                        }
                    },
                    c => out.push(c),
                }
            },
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_os_release() {
        let o = OsRelease::parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n\
             NAME=\"Debian GNU/Linux\"\n\
             VERSION_ID=\"12\"\n\
             VERSION=\"12 (bookworm)\"\n\
             ID=debian\n\
             HOME_URL=\"https://www.debian.org/\"\n",
        );
        assert_eq!(o.title().as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(o.version(), Some("12"));
        assert_eq!(o.sort_key(), Some("debian"));
    }

    #[test]
    fn quoting_follows_the_shell() {
        let o = OsRelease::parse(
            "A='single \"q\" \\n'\nB=\"d \\\"q\\\" \\$x \\\\ \\n\"\nC=un\\ quoted\nD=\"a\"'b'c\n\
             # X=comment\n  \nE=\"unterminated\nbad key=1\nF=\n",
        );
        assert_eq!(o.get("A"), Some("single \"q\" \\n"));
        assert_eq!(o.get("B"), Some("d \"q\" $x \\ \\n"));
        assert_eq!(o.get("C"), Some("un quoted"));
        assert_eq!(o.get("D"), Some("abc"));
        assert_eq!(o.get("X"), None);
        assert_eq!(o.get("E"), None);
        assert_eq!(o.get("F"), None, "empty is unset");
        assert_eq!(o.0.len(), 5);
    }

    #[test]
    fn title_and_version_fallbacks() {
        let o = OsRelease::parse(
            "NAME=Fedora\nVERSION_ID=40\nIMAGE_VERSION=40.1\nIMAGE_ID=fedora-uki\nID=fedora\n",
        );
        assert_eq!(o.title().as_deref(), Some("Fedora 40"));
        assert_eq!(o.version(), Some("40.1"));
        assert_eq!(o.sort_key(), Some("fedora-uki"));
        assert_eq!(OsRelease::parse("NAME=X").title().as_deref(), Some("X"));
        assert_eq!(OsRelease::parse("ID=x").title(), None);
        assert_eq!(
            OsRelease::parse("NAME=a\nNAME=b").get("NAME"),
            Some("b"),
            "the last assignment wins"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,300}") {
            let o = OsRelease::parse(&text);
            let _ = (o.title(), o.version(), o.sort_key());
        }
    }
}
