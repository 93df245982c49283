//! GRUB script syntax (grub-core/script/parser.y): commands, `if`/`elif`/`else`/`fi`,
//! `while`/`until` ... `do` ... `done`, `for NAME in ...; do ... done`, `function NAME { }`,
//! and `menuentry`/`submenu` with their block.
//!
//! Keywords count only at the start of a command and unquoted. Nesting is bounded
//! ([`MAX_NESTING`]) so hostile input cannot exhaust the stack. A syntax error loses only the
//! command it is in: at the top level and inside a `submenu` block the parser reports it
//! (with its line) and resumes after that command (a whole `menuentry { ... }` block is
//! skipped as one command). It does not evaluate anything.

use super::lexer::{Kind, Token, Word};

/// Blocks nest at most this deep.
pub const MAX_NESTING: usize = 48;

/// `menuentry` or `submenu`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MenuKind {
    /// `menuentry`.
    Entry,
    /// `submenu`.
    Submenu,
}

/// One command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// A simple command: its words (the first names it).
    Simple {
        /// The words, unexpanded.
        words: Vec<Word>,
        /// Its line.
        line: u32,
    },
    /// `if c1; then b1; elif c2; then b2; else b3; fi`.
    If {
        /// (condition, body) for `if` and each `elif`.
        arms: Vec<(Vec<Cmd>, Vec<Cmd>)>,
        /// The `else` body.
        otherwise: Vec<Cmd>,
    },
    /// `while`/`until` loops.
    While {
        /// The condition.
        cond: Vec<Cmd>,
        /// The body.
        body: Vec<Cmd>,
        /// `until`: loop while the condition fails.
        until: bool,
    },
    /// `for NAME in WORDS; do BODY; done`.
    For {
        /// The loop variable.
        var: String,
        /// The words iterated over (expanded when the loop runs).
        items: Vec<Word>,
        /// The body.
        body: Vec<Cmd>,
    },
    /// `function NAME { BODY }`.
    Function {
        /// Its name.
        name: String,
        /// Its body.
        body: std::rc::Rc<Vec<Cmd>>,
    },
    /// `menuentry ARGS { BODY }` / `submenu ARGS { BODY }`.
    Menu {
        /// Which one.
        kind: MenuKind,
        /// The words between the keyword and `{` (title, options, extra arguments).
        args: Vec<Word>,
        /// The block.
        body: std::rc::Rc<Vec<Cmd>>,
        /// Line of the keyword.
        line: u32,
    },
}

/// A syntax error at a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line.
    pub line: u32,
    /// What is wrong.
    pub message: String,
}

/// Parses a whole file: the commands that parsed, and the errors of those that did not.
pub fn parse(tokens: &[Token]) -> (Vec<Cmd>, Vec<SyntaxError>) {
    let mut p = Parser {
        t: tokens,
        i: 0,
        errors: Vec::new(),
    };
    let cmds = p.list(&[], 0, true, false).unwrap_or_default();
    // With recovery on, `list` returns at the end of input or a stray `}` it skipped.
    (cmds, p.errors)
}

struct Parser<'a> {
    t: &'a [Token],
    i: usize,
    errors: Vec<SyntaxError>,
}

type Res<T> = Result<T, SyntaxError>;

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.t.get(self.i)
    }

    fn line(&self) -> u32 {
        self.peek().or_else(|| self.t.last()).map_or(1, |t| t.line)
    }

    fn err<T>(&self, message: impl Into<String>) -> Res<T> {
        Err(SyntaxError {
            line: self.line(),
            message: message.into(),
        })
    }

    fn skip_seps(&mut self) {
        while matches!(self.peek().map(|t| &t.kind), Some(Kind::Sep)) {
            self.i += 1;
        }
    }

    /// The keyword at the cursor, if the next token is an unquoted word.
    fn keyword(&self) -> Option<&str> {
        match self.peek().map(|t| &t.kind) {
            Some(Kind::Word(w)) => w.keyword(),
            _ => None,
        }
    }

    fn expect_keyword(&mut self, k: &str) -> Res<()> {
        if self.keyword() == Some(k) {
            self.i += 1;
            Ok(())
        } else {
            self.err(format!("expected '{k}'"))
        }
    }

    /// Commands until one of `ends` (a keyword at command start), `}` (when `in_block`), or the
    /// end of input. With `recover`, a broken command is reported and skipped.
    fn list(
        &mut self,
        ends: &[&str],
        depth: usize,
        recover: bool,
        in_block: bool,
    ) -> Res<Vec<Cmd>> {
        if depth > MAX_NESTING {
            return self.err(format!("blocks nested deeper than {MAX_NESTING}"));
        }
        let mut cmds = Vec::new();
        loop {
            self.skip_seps();
            let Some(tok) = self.peek() else {
                return Ok(cmds);
            };
            if matches!(tok.kind, Kind::RBrace) {
                if in_block {
                    return Ok(cmds);
                }
                if recover {
                    self.errors.push(SyntaxError {
                        line: tok.line,
                        message: "unexpected '}'".into(),
                    });
                    self.i += 1;
                    continue;
                }
                return self.err("unexpected '}'");
            }
            if let Some(k) = self.keyword() {
                if ends.contains(&k) {
                    return Ok(cmds);
                }
            }
            let start = self.i;
            match self.command(depth) {
                Ok(c) => cmds.push(c),
                Err(e) if recover => {
                    self.errors.push(e);
                    self.resync(start, in_block);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Skips the command that starts at `start`: to the end of its line, or past the block it
    /// opens, whichever ends it.
    fn resync(&mut self, start: usize, in_block: bool) {
        self.i = start;
        let mut depth = 0usize;
        while let Some(t) = self.peek() {
            match t.kind {
                Kind::LBrace => depth += 1,
                Kind::RBrace => {
                    if depth == 0 {
                        if !in_block {
                            self.i += 1;
                        }
                        return;
                    }
                    depth -= 1;
                    if depth == 0 {
                        self.i += 1;
                        return;
                    }
                }
                Kind::Sep if depth == 0 && self.i > start => {
                    self.i += 1;
                    return;
                }
                _ => {}
            }
            self.i += 1;
        }
    }

    fn command(&mut self, depth: usize) -> Res<Cmd> {
        let line = self.line();
        match self.keyword() {
            Some("if") => {
                self.i += 1;
                let mut arms = Vec::new();
                let mut otherwise = Vec::new();
                loop {
                    let cond = self.list(&["then"], depth + 1, false, false)?;
                    self.expect_keyword("then")?;
                    let body = self.list(&["elif", "else", "fi"], depth + 1, false, false)?;
                    arms.push((cond, body));
                    match self.keyword() {
                        Some("elif") => self.i += 1,
                        Some("else") => {
                            self.i += 1;
                            otherwise = self.list(&["fi"], depth + 1, false, false)?;
                            self.expect_keyword("fi")?;
                            break;
                        }
                        Some("fi") => {
                            self.i += 1;
                            break;
                        }
                        _ => return self.err(format!("'if' of line {line} has no 'fi'")),
                    }
                }
                Ok(Cmd::If { arms, otherwise })
            }
            Some(k @ ("while" | "until")) => {
                let until = k == "until";
                self.i += 1;
                let cond = self.list(&["do"], depth + 1, false, false)?;
                self.expect_keyword("do")?;
                let body = self.list(&["done"], depth + 1, false, false)?;
                self.expect_keyword("done")?;
                Ok(Cmd::While { cond, body, until })
            }
            Some("for") => {
                self.i += 1;
                let var = match self.keyword() {
                    Some(v) => v.to_string(),
                    None => return self.err("'for' needs a variable name"),
                };
                self.i += 1;
                self.expect_keyword("in")?;
                let mut items = Vec::new();
                while let Some(Kind::Word(w)) = self.peek().map(|t| &t.kind) {
                    items.push(w.clone());
                    self.i += 1;
                }
                self.skip_seps();
                self.expect_keyword("do")?;
                let body = self.list(&["done"], depth + 1, false, false)?;
                self.expect_keyword("done")?;
                Ok(Cmd::For { var, items, body })
            }
            Some("function") => {
                self.i += 1;
                let name = match self.keyword() {
                    Some(v) => v.to_string(),
                    None => return self.err("'function' needs a name"),
                };
                self.i += 1;
                let body = self.block(depth, false)?;
                Ok(Cmd::Function {
                    name,
                    body: std::rc::Rc::new(body),
                })
            }
            Some(k @ ("menuentry" | "submenu")) => {
                let kind = if k == "menuentry" {
                    MenuKind::Entry
                } else {
                    MenuKind::Submenu
                };
                self.i += 1;
                let mut args = Vec::new();
                while let Some(Kind::Word(w)) = self.peek().map(|t| &t.kind) {
                    args.push(w.clone());
                    self.i += 1;
                }
                let body = self.block(depth, kind == MenuKind::Submenu)?;
                Ok(Cmd::Menu {
                    kind,
                    args,
                    body: std::rc::Rc::new(body),
                    line,
                })
            }
            Some(k @ ("then" | "elif" | "else" | "fi" | "do" | "done")) => {
                self.err(format!("unexpected '{k}'"))
            }
            _ => {
                let mut words = Vec::new();
                loop {
                    match self.peek().map(|t| &t.kind) {
                        Some(Kind::Word(w)) => {
                            words.push(w.clone());
                            self.i += 1;
                        }
                        Some(Kind::Sep) | Some(Kind::RBrace) | None => break,
                        Some(Kind::LBrace) => return self.err("unexpected '{'"),
                        Some(Kind::Unterminated) => return self.err("unterminated quote"),
                    }
                }
                Ok(Cmd::Simple { words, line })
            }
        }
    }

    /// `{ commands }`, newlines allowed before the `{`.
    fn block(&mut self, depth: usize, recover: bool) -> Res<Vec<Cmd>> {
        self.skip_seps();
        match self.peek().map(|t| &t.kind) {
            Some(Kind::LBrace) => self.i += 1,
            Some(Kind::Unterminated) => return self.err("unterminated quote"),
            _ => return self.err("expected '{'"),
        }
        let body = self.list(&[], depth + 1, recover, true)?;
        match self.peek().map(|t| &t.kind) {
            Some(Kind::RBrace) => {
                self.i += 1;
                Ok(body)
            }
            _ => self.err("block has no closing '}'"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::lex;
    use super::*;

    fn p(text: &str) -> (Vec<Cmd>, Vec<SyntaxError>) {
        parse(&lex(text))
    }

    /// A compact shape of the tree: command names and block shapes.
    fn shape(cmds: &[Cmd]) -> String {
        cmds.iter()
            .map(|c| match c {
                Cmd::Simple { words, .. } => words
                    .first()
                    .and_then(|w| w.keyword())
                    .unwrap_or("?")
                    .to_string(),
                Cmd::If { arms, otherwise } => format!(
                    "if[{}|{}]",
                    arms.iter()
                        .map(|(c, b)| format!("{}:{}", shape(c), shape(b)))
                        .collect::<Vec<_>>()
                        .join("|"),
                    shape(otherwise)
                ),
                Cmd::While { cond, body, until } => format!(
                    "{}[{}:{}]",
                    if *until { "until" } else { "while" },
                    shape(cond),
                    shape(body)
                ),
                Cmd::For { var, body, .. } => format!("for {var}[{}]", shape(body)),
                Cmd::Function { name, body } => format!("fn {name}[{}]", shape(body)),
                Cmd::Menu {
                    kind, body, line, ..
                } => format!("{kind:?}@{line}[{}]", shape(body)),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    #[test]
    fn structures() {
        let cases: &[(&str, &str)] = &[
            ("a;b\nc", "a,b,c"),
            ("if a; then b; fi", "if[a:b|]"),
            ("if a\nthen\nb\nelif c; then d\nelse e; fi", "if[a:b|c:d|e]"),
            (
                "while a; do b; done; until c; do d; done",
                "while[a:b],until[c:d]",
            ),
            ("for x in 1 2; do b; done", "for x[b]"),
            ("function f { a; b }", "fn f[a,b]"),
            ("menuentry 'x' --id y {\n linux /k\n}", "Entry@1[linux]"),
            ("menuentry 'x'{ linux /k; }", "Entry@1[linux]"),
            ("menuentry x\n{\nlinux /k\n}", "Entry@1[linux]"),
            (
                "submenu s {\n menuentry a { b }\n}",
                "Submenu@1[Entry@2[b]]",
            ),
            ("echo if then", "echo"),
        ];
        for (text, want) in cases {
            let (cmds, errs) = p(text);
            assert!(errs.is_empty(), "{text:?}: {errs:?}");
            assert_eq!(shape(&cmds), *want, "{text:?}");
        }
    }

    #[test]
    fn a_broken_entry_is_lost_alone_with_its_line() {
        let (cmds, errs) = p("menuentry a { linux /a }\nmenuentry b {\n if x; then linux /b\n}\nmenuentry c { linux /c }\nfi\n");
        assert_eq!(shape(&cmds), "Entry@1[linux],Entry@5[linux]");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].line, 4);
        assert_eq!(errs[1].line, 6);
        assert_eq!(errs[1].message, "unexpected 'fi'");
    }

    #[test]
    fn errors_inside_a_submenu_keep_its_other_entries() {
        let (cmds, errs) = p("submenu s {\n menuentry a { linux /a }\n menuentry b { fi }\n menuentry c { linux /c }\n}\n");
        assert_eq!(shape(&cmds), "Submenu@1[Entry@2[linux],Entry@4[linux]]");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 3);
    }

    #[test]
    fn unclosed_things_are_errors_not_hangs() {
        for text in [
            "menuentry a {",
            "if a; then",
            "for",
            "function",
            "'x",
            "{",
            "}}}",
            "while a; do",
        ] {
            let (_, errs) = p(text);
            assert!(!errs.is_empty(), "{text:?}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let text = "if a; then ".repeat(MAX_NESTING * 4) + &" fi".repeat(MAX_NESTING * 4);
        let (_, errs) = p(&text);
        assert!(!errs.is_empty());
        let text = "submenu a { ".repeat(MAX_NESTING * 4);
        let (_, errs) = p(&text);
        assert!(!errs.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,400}") {
            let _ = p(&text);
        }

        #[test]
        fn script_like_input_never_panics(lines in proptest::collection::vec(
            "(if|then|elif|else|fi|while|do|done|for x in|function f|menuentry|submenu|\\{|\\}|;|linux|set a=1)( [a-z{};'\"]{0,6}){0,3}",
            0..30,
        )) {
            let _ = p(&lines.join("\n"));
        }
    }
}
