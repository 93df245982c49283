//! A one-line editor for the kernel command line (and the password prompt).
//!
//! Keys: Left/Right (Ctrl-B/F), Home/End (Ctrl-A/E), Backspace, Delete (Ctrl-D), Ctrl-K (cut
//! to the end), Ctrl-U (cut to the start), Ctrl-W (cut the word before the cursor), printable
//! characters insert at the cursor. Enter accepts, Escape or Ctrl-C cancels. The text is
//! bounded ([`MAX_CHARS`]). It only edits: drawing is [`render`](super::render)'s job.

use super::keys::Key;

/// The longest line the editor holds (the kernel's own limit is 2048 bytes on x86).
pub const MAX_CHARS: usize = 4096;

/// What a key did to the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still editing.
    Editing,
    /// Enter: take the text.
    Accept,
    /// Escape / Ctrl-C: drop the edit.
    Cancel,
}

/// The line and the cursor (a char index, 0..=len).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineEditor {
    text: Vec<char>,
    cursor: usize,
}

impl LineEditor {
    /// Starts editing `text` with the cursor at its end.
    pub fn new(text: &str) -> LineEditor {
        let text: Vec<char> = text.chars().take(MAX_CHARS).collect();
        LineEditor {
            cursor: text.len(),
            text,
        }
    }

    /// The text.
    pub fn text(&self) -> String {
        self.text.iter().collect()
    }

    /// The cursor position in chars.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Applies one key.
    pub fn key(&mut self, k: Key) -> Outcome {
        match k {
            Key::Enter => return Outcome::Accept,
            Key::Esc | Key::Ctrl('c') | Key::Ctrl('g') => return Outcome::Cancel,
            Key::Left | Key::Ctrl('b') => self.cursor = self.cursor.saturating_sub(1),
            Key::Right | Key::Ctrl('f') => self.cursor = (self.cursor + 1).min(self.text.len()),
            Key::Home | Key::Ctrl('a') => self.cursor = 0,
            Key::End | Key::Ctrl('e') => self.cursor = self.text.len(),
            Key::Backspace | Key::Ctrl('h') if self.cursor > 0 => {
                self.cursor -= 1;
                self.text.remove(self.cursor);
            }
            Key::Delete | Key::Ctrl('d') if self.cursor < self.text.len() => {
                self.text.remove(self.cursor);
            }
            Key::Ctrl('k') => self.text.truncate(self.cursor),
            Key::Ctrl('u') => {
                self.text.drain(..self.cursor);
                self.cursor = 0;
            }
            Key::Ctrl('w') => {
                let mut start = self.cursor;
                while start > 0 && self.text[start - 1] == ' ' {
                    start -= 1;
                }
                while start > 0 && self.text[start - 1] != ' ' {
                    start -= 1;
                }
                self.text.drain(start..self.cursor);
                self.cursor = start;
            }
            Key::Char(c) if self.text.len() < MAX_CHARS => {
                self.text.insert(self.cursor, c);
                self.cursor += 1;
            }
            _ => {}
        }
        Outcome::Editing
    }

    /// What fits in `width` columns: the visible text and the cursor's column in it. The view
    /// scrolls so the cursor is always visible, with `<`/`>` marking hidden text.
    pub fn view(&self, width: usize) -> (String, usize) {
        let width = width.max(4);
        if self.text.len() < width {
            return (self.text(), self.cursor);
        }
        // Keep the cursor inside, leaving a column for each marker.
        let inner = width - 2;
        let start = self.cursor.saturating_sub(inner - 1).min(self.text.len());
        let end = (start + inner).min(self.text.len());
        let mut s = String::new();
        s.push(if start > 0 { '<' } else { ' ' });
        s.extend(&self.text[start..end]);
        if end < self.text.len() {
            s.push('>');
        }
        (s, self.cursor - start + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: &str, keys: &[Key]) -> (String, usize, Outcome) {
        let mut e = LineEditor::new(start);
        let mut last = Outcome::Editing;
        for k in keys {
            last = e.key(*k);
        }
        (e.text(), e.cursor(), last)
    }

    #[test]
    fn editing_keys() {
        use Key::*;
        let table: &[(&str, &[Key], &str, usize)] = &[
            ("abc", &[Char('d')], "abcd", 4),
            ("abc", &[Home, Char('x')], "xabc", 1),
            ("abc", &[Ctrl('a'), Ctrl('e'), Char('x')], "abcx", 4),
            ("abc", &[Left, Backspace], "ac", 1),
            ("abc", &[Left, Left, Delete], "ac", 1),
            ("abc", &[Home, Delete, Delete, Delete, Delete], "", 0),
            ("abc", &[Home, Backspace], "abc", 0),
            ("abc", &[End, Delete], "abc", 3),
            ("a b c", &[Left, Left, Ctrl('k')], "a b", 3),
            ("a b c", &[Left, Left, Ctrl('u')], " c", 0),
            ("root=x quiet", &[Ctrl('w')], "root=x ", 7),
            ("abc", &[Ctrl('b'), Ctrl('f'), Right, Right], "abc", 3),
            ("quiet", &[Home, Right, Right, Char('é')], "quéiet", 3),
            ("abc", &[Up, Down, PageUp, Tab, Unknown], "abc", 3),
        ];
        for (start, keys, text, cursor) in table {
            let (t, c, _) = run(start, keys);
            assert_eq!((t.as_str(), c), (*text, *cursor), "{start:?} {keys:?}");
        }
    }

    #[test]
    fn enter_accepts_and_escape_cancels() {
        assert_eq!(run("a", &[Key::Char('b'), Key::Enter]).2, Outcome::Accept);
        assert_eq!(run("a", &[Key::Esc]).2, Outcome::Cancel);
        assert_eq!(run("a", &[Key::Ctrl('c')]).2, Outcome::Cancel);
    }

    #[test]
    fn the_line_is_bounded() {
        let mut e = LineEditor::new(&"x".repeat(MAX_CHARS + 10));
        assert_eq!(e.text().len(), MAX_CHARS);
        e.key(Key::Char('y'));
        assert_eq!(e.text().len(), MAX_CHARS);
    }

    #[test]
    fn the_view_scrolls_to_the_cursor() {
        let e = LineEditor::new("0123456789");
        assert_eq!(e.view(20), ("0123456789".to_string(), 10));
        let (v, c) = e.view(6);
        assert_eq!((v.as_str(), c), ("<789", 4));
        let mut e = LineEditor::new("0123456789");
        e.key(Key::Home);
        let (v, c) = e.view(6);
        assert_eq!((v.as_str(), c), (" 0123>", 1));
    }
}
