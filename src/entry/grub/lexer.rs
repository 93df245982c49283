//! GRUB script tokens (grub-core/script/yylex.l): words made of literal and variable parts,
//! separators, and braces.
//!
//! Quoting follows GRUB: single quotes are literal (and may span lines); double quotes expand
//! `$var` and take `\` before `$`, `"`, `\` and newline (elsewhere the backslash stays);
//! an unquoted `\` quotes the next special character (`\x20` stays as written) and
//! `\`-newline joins lines; `#` starts a
//! comment only at the start of a word; `;` and newline separate commands; unquoted `{` and
//! `}` are tokens of their own wherever they appear. Variables: `$name`, `${name}`, `$1`..,
//! `$#`, `$@`, `$*`, `$?`. A `$` that starts none of these is literal.
//!
//! The lexer never fails: an unterminated quote ends at the end of the input (the parser
//! reports it). It does not know keywords; the parser does.

/// One piece of a word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Literal text; `quoted` if it came from quotes or a backslash (keeps an empty word alive
    /// and stops keyword recognition).
    Lit {
        /// The text.
        text: String,
        /// From quotes or a backslash.
        quoted: bool,
    },
    /// A variable reference; `quoted` if inside double quotes (no field splitting).
    Var {
        /// Its name (`1`, `#`, `root`...).
        name: String,
        /// Inside double quotes.
        quoted: bool,
    },
}

/// A word: adjacent parts with no unquoted blank between them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Word {
    /// The parts in order.
    pub parts: Vec<Part>,
}

impl Word {
    /// The word as a keyword: its text if it is one unquoted literal.
    pub fn keyword(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Lit {
                text,
                quoted: false,
            }] => Some(text),
            _ => None,
        }
    }

    fn push_lit(&mut self, c: char, quoted: bool) {
        self.push_run(&[c], quoted);
    }

    /// Appends literal characters, to the last literal part if it is quoted alike.
    fn push_run(&mut self, run: &[char], quoted: bool) {
        if let Some(Part::Lit { text, quoted: q }) = self.parts.last_mut() {
            if *q == quoted {
                text.extend(run);
                return;
            }
        }
        let mut text = String::with_capacity(run.len().max(16));
        text.extend(run);
        self.parts.push(Part::Lit { text, quoted });
    }

    /// Marks the word as present even if empty (`""`).
    fn push_empty_quoted(&mut self) {
        if self.parts.is_empty() {
            self.parts.push(Part::Lit {
                text: String::new(),
                quoted: true,
            });
        }
    }
}

/// What a token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A word.
    Word(Word),
    /// `;` or a newline.
    Sep,
    /// `{`.
    LBrace,
    /// `}`.
    RBrace,
    /// A quote left open at the end of the input.
    Unterminated,
}

/// A token and the line it starts on (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: Kind,
    /// Its line.
    pub line: u32,
}

/// Characters an unquoted backslash escapes (it is dropped); before any other character the
/// backslash stays.
const SPECIAL: &str = "{}|&$;<> \t'\"\\#";

/// At most this many tokens come from one file; the rest is dropped (the parser reports it).
pub const MAX_TOKENS: usize = 200_000;

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A character the lexer's main loop takes literally, outside quotes: not white space, a
/// separator, a brace, a quote, an escape or a `$` (`#` is literal inside a word, and a run
/// starts inside one only after its first character).
fn is_plain(c: char) -> bool {
    !matches!(
        c,
        ' ' | '\t' | '\r' | '\n' | ';' | '{' | '}' | '#' | '\\' | '\'' | '"' | '$'
    )
}

/// Splits `text` into tokens.
pub fn lex(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<Token> = Vec::new();
    let mut i = 0;
    let mut line: u32 = 1;
    let mut word: Option<(Word, u32)> = None;

    fn flush(out: &mut Vec<Token>, word: &mut Option<(Word, u32)>) {
        if let Some((w, l)) = word.take() {
            out.push(Token {
                kind: Kind::Word(w),
                line: l,
            });
        }
    }

    /// A quote left open at the end of the input: the word so far, then the error token.
    fn unterminated(out: &mut Vec<Token>, word: &mut Option<(Word, u32)>, line: u32) {
        flush(out, word);
        out.push(Token {
            kind: Kind::Unterminated,
            line,
        });
    }

    while i < chars.len() && out.len() < MAX_TOKENS {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\r' => {
                flush(&mut out, &mut word);
                i += 1;
            }
            '\n' | ';' => {
                flush(&mut out, &mut word);
                out.push(Token {
                    kind: Kind::Sep,
                    line,
                });
                if c == '\n' {
                    line += 1;
                }
                i += 1;
            }
            '{' | '}' => {
                flush(&mut out, &mut word);
                out.push(Token {
                    kind: if c == '{' { Kind::LBrace } else { Kind::RBrace },
                    line,
                });
                i += 1;
            }
            '#' if word.is_none() => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\\' => {
                i += 1;
                match chars.get(i) {
                    Some('\n') => {
                        // A continuation: the word (if any) goes on on the next line.
                        line += 1;
                        i += 1;
                    }
                    Some(&n) => {
                        let w = &mut word.get_or_insert_with(|| (Word::default(), line)).0;
                        if !SPECIAL.contains(n) {
                            // `\x20` reaches the kernel as written (CentOS/Fedora ISOs).
                            w.push_lit('\\', true);
                        }
                        w.push_lit(n, true);
                        i += 1;
                    }
                    None => {
                        word.get_or_insert_with(|| (Word::default(), line))
                            .0
                            .push_lit('\\', true);
                    }
                }
            }
            '\'' => {
                let w = &mut word.get_or_insert_with(|| (Word::default(), line)).0;
                w.push_empty_quoted();
                i += 1;
                let mut closed = false;
                while i < chars.len() {
                    let q = chars[i];
                    i += 1;
                    if q == '\'' {
                        closed = true;
                        break;
                    }
                    if q == '\n' {
                        line += 1;
                    }
                    w.push_lit(q, true);
                }
                if !closed {
                    unterminated(&mut out, &mut word, line);
                }
            }
            '"' => {
                let w = &mut word.get_or_insert_with(|| (Word::default(), line)).0;
                w.push_empty_quoted();
                i += 1;
                let mut closed = false;
                while i < chars.len() {
                    let q = chars[i];
                    match q {
                        '"' => {
                            i += 1;
                            closed = true;
                            break;
                        }
                        '\\' => match chars.get(i + 1) {
                            Some('\n') => {
                                line += 1;
                                i += 2;
                            }
                            Some(&n @ ('$' | '"' | '\\')) => {
                                w.push_lit(n, true);
                                i += 2;
                            }
                            _ => {
                                w.push_lit('\\', true);
                                i += 1;
                            }
                        },
                        '$' => {
                            i = variable(&chars, i, w, true);
                        }
                        _ => {
                            if q == '\n' {
                                line += 1;
                            }
                            w.push_lit(q, true);
                            i += 1;
                        }
                    }
                }
                if !closed {
                    unterminated(&mut out, &mut word, line);
                }
            }
            '$' => {
                let w = &mut word.get_or_insert_with(|| (Word::default(), line)).0;
                i = variable(&chars, i, w, false);
            }
            _ => {
                // A run of ordinary characters joins the word at once (one push per run,
                // not per character: the lexer was a quarter of a grub.cfg's cost).
                let end = chars[i..]
                    .iter()
                    .position(|&c| !is_plain(c))
                    .map_or(chars.len(), |n| i + n);
                let end = end.max(i + 1);
                word.get_or_insert_with(|| (Word::default(), line))
                    .0
                    .push_run(&chars[i..end], false);
                i = end;
            }
        }
    }
    flush(&mut out, &mut word);
    out
}

/// Reads a variable reference at `chars[i] == '$'` into `w`; returns the index after it.
fn variable(chars: &[char], i: usize, w: &mut Word, quoted: bool) -> usize {
    let start = i + 1;
    let name_end = |mut j: usize| {
        while j < chars.len() && is_name_char(chars[j]) {
            j += 1;
        }
        j
    };
    match chars.get(start) {
        Some('{') => {
            let inner = start + 1;
            let end = match chars.get(inner) {
                Some(&c) if is_name_start(c) => name_end(inner),
                Some(c) if c.is_ascii_digit() => {
                    let mut j = inner;
                    while j < chars.len() && chars[j].is_ascii_digit() {
                        j += 1;
                    }
                    j
                }
                Some('#' | '@' | '*' | '?') => inner + 1,
                _ => inner,
            };
            if end > inner && chars.get(end) == Some(&'}') {
                w.parts.push(Part::Var {
                    name: chars[inner..end].iter().collect(),
                    quoted,
                });
                end + 1
            } else {
                w.push_lit('$', quoted);
                start
            }
        }
        Some(&c) if is_name_start(c) => {
            let end = name_end(start);
            w.parts.push(Part::Var {
                name: chars[start..end].iter().collect(),
                quoted,
            });
            end
        }
        Some(c) if c.is_ascii_digit() => {
            let mut end = start;
            while end < chars.len() && chars[end].is_ascii_digit() {
                end += 1;
            }
            w.parts.push(Part::Var {
                name: chars[start..end].iter().collect(),
                quoted,
            });
            end
        }
        Some(&c @ ('#' | '@' | '*' | '?')) => {
            w.parts.push(Part::Var {
                name: c.to_string(),
                quoted,
            });
            start + 1
        }
        _ => {
            w.push_lit('$', quoted);
            start
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens as short strings: words show parts (`'lit'`, `"lit"`, `$v`, `"$v"`).
    fn show(text: &str) -> Vec<String> {
        lex(text)
            .into_iter()
            .map(|t| match t.kind {
                Kind::Sep => ";".into(),
                Kind::LBrace => "{".into(),
                Kind::RBrace => "}".into(),
                Kind::Unterminated => "UNTERMINATED".into(),
                Kind::Word(w) => w
                    .parts
                    .iter()
                    .map(|p| match p {
                        Part::Lit {
                            text,
                            quoted: false,
                        } => text.clone(),
                        Part::Lit { text, quoted: true } => format!("'{text}'"),
                        Part::Var {
                            name,
                            quoted: false,
                        } => format!("${name}"),
                        Part::Var { name, quoted: true } => format!("\"${name}\""),
                    })
                    .collect::<Vec<_>>()
                    .join("+"),
            })
            .collect()
    }

    #[test]
    fn quoting_rules() {
        let cases: &[(&str, &[&str])] = &[
            ("a b\tc", &["a", "b", "c"]),
            ("'a $b \\c'", &["'a $b \\c'"]),
            ("\"a $b\"", &["'a '+\"$b\""]),
            ("\"\\$x \\\" \\\\ \\n\"", &["'$x \" \\ \\n'"]),
            ("a\\ b", &["a+' '+b"]),
            ("L=A\\x20B", &["L=A+'\\x'+20B"]),
            ("''", &["''"]),
            ("x# not a comment", &["x#", "not", "a", "comment"]),
            ("x # comment\ny", &["x", ";", "y"]),
            ("a\\\nb", &["ab"]),
            ("a;b", &["a", ";", "b"]),
            ("menuentry 'x'{", &["menuentry", "'x'", "{"]),
            ("${a}b$1$#$@${10}", &["$a+b+$1+$#+$@+$10"]),
            ("$ a ${", &["$", "a", "$", "{"]),
            ("'open", &["'open'", "UNTERMINATED"]),
            ("a}b", &["a", "}", "b"]),
        ];
        for (text, want) in cases {
            assert_eq!(show(text), *want, "{text:?}");
        }
    }

    #[test]
    fn lines_count_through_quotes_and_continuations() {
        let t = lex("a 'x\ny'\nb \\\nc\n\"p\nq\" d");
        let lines: Vec<u32> = t
            .iter()
            .filter(|t| matches!(t.kind, Kind::Word(_)))
            .map(|t| t.line)
            .collect();
        assert_eq!(lines, [1, 1, 3, 4, 5, 6]);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_is_bounded(text in "\\PC{0,300}") {
            let t = lex(&text);
            proptest::prop_assert!(t.len() <= text.len() + 1);
        }

        /// Plain words separated by blanks come back as themselves.
        #[test]
        fn plain_words_round_trip(words in proptest::collection::vec("[a-zA-Z0-9_./=,:-]{1,12}", 0..12)) {
            let text = words.join(" ");
            let got: Vec<String> = lex(&text).into_iter().filter_map(|t| match t.kind {
                Kind::Word(w) => w.keyword().map(str::to_string),
                _ => None,
            }).collect();
            proptest::prop_assert_eq!(got, words);
        }

        /// Any text single-quoted (without single quotes) is one literal word.
        #[test]
        fn single_quotes_are_literal(s in "[^']{0,40}") {
            let t = lex(&format!("'{s}'"));
            proptest::prop_assert_eq!(t.len(), 1);
            let want = Kind::Word(Word { parts: vec![Part::Lit { text: s.clone(), quoted: true }] });
            proptest::prop_assert_eq!(&t[0].kind, &want);
        }
    }
}
