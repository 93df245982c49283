//! Drawing: the menu state as lines of ANSI text for a W×H screen, and the bytes that turn
//! one frame into the next on a terminal.
//!
//! Pure and snapshot-testable. Only plain VT100 sequences are used (cursor position, erase to
//! end of line, SGR attributes, cursor show/hide), which a dumb serial terminal, an IPMI SOL
//! session and the Linux VT all understand; no terminfo. Without colour no SGR sequence is
//! written at all. The last screen row is never drawn, so the newline ending each drawn row
//! never scrolls the screen (and a serial transcript gets one text line per drawn row).

use super::state::{display_title, Menu, View};
use crate::entry::Timeout;

/// Rows above the entries (title and a blank line).
const HEAD: usize = 2;
/// Rows of the log pane under the list, when the screen is tall enough.
const LOG_PANE: usize = 3;
/// Rows the status line may wrap onto.
const STATUS: usize = 2;

/// Screen size and styling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Screen {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Whether SGR attributes (colour, reverse video) may be used.
    pub colour: bool,
}

impl Screen {
    fn usable_rows(&self) -> usize {
        self.height.max(8) - 1
    }

    fn log_pane(&self) -> usize {
        if self.usable_rows() >= 16 {
            LOG_PANE
        } else {
            0
        }
    }

    /// How many entry lines fit in the list view.
    pub fn page(&self) -> usize {
        // head, entries, blank, status, log pane, footer
        self.usable_rows()
            .saturating_sub(HEAD + 2 + STATUS + self.log_pane())
            .max(1)
    }

    /// Text width: one column is kept free so no terminal wraps at the edge.
    fn cols(&self) -> usize {
        self.width.max(20) - 1
    }
}

/// A rendered screen: one string per drawn row (styling included), and where the cursor
/// belongs (row, column, from 0) if it should be visible.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    /// Rows, each with at most `width - 1` visible columns.
    pub rows: Vec<String>,
    /// Visible cursor position, if any.
    pub cursor: Option<(usize, usize)>,
}

struct Painter {
    screen: Screen,
    rows: Vec<String>,
}

#[derive(Clone, Copy)]
enum Style {
    Plain,
    Title,
    Selected,
    Error,
    Dim,
}

impl Painter {
    fn line(&mut self, text: &str, style: Style) {
        let cols = self.screen.cols();
        let mut s = fit(text, cols);
        if self.screen.colour {
            let sgr = match style {
                Style::Plain => "",
                Style::Title => "\x1b[1;37;44m",
                Style::Selected => "\x1b[7m",
                Style::Error => "\x1b[1;31m",
                Style::Dim => "\x1b[2m",
            };
            if !sgr.is_empty() {
                // Bars span the width.
                if matches!(style, Style::Title | Style::Selected) {
                    let n = s.chars().count();
                    s.extend(std::iter::repeat_n(' ', cols - n));
                }
                s = format!("{sgr}{s}\x1b[0m");
            }
        }
        self.rows.push(s);
    }

    fn blank_to(&mut self, row: usize) {
        while self.rows.len() < row {
            self.rows.push(String::new());
        }
    }
}

/// Cuts `s` to `cols` characters (control characters and bidi overrides shown as `?`),
/// marking a cut with `~`.
fn fit(s: &str, cols: usize) -> String {
    let clean: Vec<char> = s
        .chars()
        .map(|c| if crate::sanitize::acts(c) { '?' } else { c })
        .collect();
    if clean.len() <= cols {
        return clean.into_iter().collect();
    }
    let mut out: String = clean[..cols.saturating_sub(1)].iter().collect();
    out.push('~');
    out
}

/// The frame for `menu` on `screen`, with `log` the recent log lines (oldest first).
pub fn render(menu: &Menu, log: &[String], screen: Screen) -> Frame {
    let mut p = Painter {
        screen,
        rows: Vec::new(),
    };
    let rows = screen.usable_rows();
    let title = format!(
        " leapboot {} - {} boot entr{}{}",
        env!("CARGO_PKG_VERSION"),
        menu.entries().len(),
        if menu.entries().len() == 1 {
            "y"
        } else {
            "ies"
        },
        if menu.is_locked() { " (locked)" } else { "" }
    );
    p.line(&title, Style::Title);
    p.line("", Style::Plain);
    let mut cursor = None;
    let footer: String;
    match menu.view() {
        View::List => {
            list(&mut p, menu);
            footer = list_footer(menu);
        }
        View::Details => {
            details(&mut p, menu);
            footer = " Enter boot  e edit  Up/Down other entry  Esc back".into();
        }
        View::Edit(ed) => {
            let e = menu.entries().get(menu.selected());
            p.line(
                &format!(
                    " Command line for '{}':",
                    e.map(display_title).unwrap_or_default()
                ),
                Style::Plain,
            );
            p.line("", Style::Plain);
            let (text, col) = ed.view(screen.cols().saturating_sub(3));
            cursor = Some((p.rows.len(), col + 3));
            p.line(&format!(" > {text}"), Style::Plain);
            footer =
                " Enter boot  Esc cancel  Ctrl-A/E start/end  Ctrl-K/U cut  Ctrl-W word".into();
        }
        View::Log { scroll } => {
            let avail = rows.saturating_sub(HEAD + 1 + STATUS);
            let end = log.len().saturating_sub(*scroll).max(avail.min(log.len()));
            let start = end.saturating_sub(avail);
            for l in &log[start..end] {
                p.line(&format!(" {l}"), Style::Plain);
            }
            footer = " Log (newest last)  Up/Down/PgUp/PgDn scroll  Esc back".into();
        }
        View::Help => {
            for l in HELP {
                p.line(l, Style::Plain);
            }
            footer = " Press any key to go back".into();
        }
        View::Password { editor, .. } => {
            p.line(" This needs the password (locked mode).", Style::Plain);
            p.line("", Style::Plain);
            let stars = "*".repeat(editor.text().chars().count());
            cursor = Some((p.rows.len(), 11 + editor.cursor()));
            p.line(&format!(" Password: {stars}"), Style::Plain);
            footer = " Enter unlock  Esc cancel".into();
        }
    }
    // Status, log pane and footer at the bottom.
    let pane = if matches!(menu.view(), View::List) {
        screen.log_pane()
    } else {
        0
    };
    let status_row = rows - 1 - STATUS - pane;
    p.rows.truncate(status_row);
    p.blank_to(status_row);
    // The status wraps onto a second row; what does not fit there is cut (`~`).
    let status: Vec<char> = menu.status().unwrap_or("").chars().collect();
    let width = screen.cols().saturating_sub(1).max(1);
    let split = status.len().min(width);
    for (i, part) in [&status[..split], &status[split..]].into_iter().enumerate() {
        if part.is_empty() && i > 0 || status.is_empty() {
            p.line("", Style::Plain);
        } else {
            let text: String = part.iter().collect();
            p.line(&format!(" {}", fit(&text, width)), Style::Error);
        }
    }
    let tail = &log[log.len().saturating_sub(pane)..];
    for l in tail {
        p.line(&format!(" {l}"), Style::Dim);
    }
    p.blank_to(rows - 1);
    p.line(&footer, Style::Title);
    Frame {
        rows: p.rows,
        cursor,
    }
}

const HELP: &[&str] = &[
    " Keys",
    "",
    "   Up/Down, j/k   select an entry     PgUp/PgDn, Home/End  page, first, last",
    "   1-9, 0         entry 1-9, 10       Enter                boot the selection",
    "   e              edit command line   d, Tab               details",
    "   r              rescan the disks    l                    the log",
    "   b              reboot              p                    power off",
    "   ?              this help           Esc                  back",
    "",
    " In the editor: Left/Right, Home/End (Ctrl-A/E), Backspace/Delete,",
    " Ctrl-K cut to the end, Ctrl-U cut to the start, Ctrl-W cut a word,",
    " Enter boots with the edited line, Esc drops the edit.",
];

fn list(p: &mut Painter, menu: &Menu) {
    let page = p.screen.page();
    let entries = menu.entries();
    if entries.is_empty() {
        p.line(
            " No boot entries found. r rescans, l shows the log.",
            Style::Plain,
        );
        return;
    }
    let cols = p.screen.cols();
    let end = (menu.top() + page).min(entries.len());
    for (i, e) in entries.iter().enumerate().take(end).skip(menu.top()) {
        let mark = if i == menu.selected() { '>' } else { ' ' };
        let default = if Some(i) == menu.default() { '*' } else { ' ' };
        // A long volume name (an ISO file's `vda1/isos/...iso`) gets a third of the row at
        // most: the title says which ISO it is, `d` shows the device in full.
        let label = format!("[{}]", fit(&e.source.volume, (cols / 3).saturating_sub(2)));
        let lock = if menu.allowed(i) { "" } else { " (locked)" };
        let head = format!(" {mark}{default}{:>2}  ", i + 1);
        let room = cols.saturating_sub(head.len() + label.chars().count() + 1);
        let title = fit(&format!("{}{lock}", display_title(e)), room);
        let pad = room.saturating_sub(title.chars().count());
        let text = format!("{head}{title}{:pad$} {label}", "");
        let style = if i == menu.selected() {
            Style::Selected
        } else {
            Style::Plain
        };
        p.line(&text, style);
    }
}

fn list_footer(menu: &Menu) -> String {
    let default = menu.default().and_then(|i| menu.entries().get(i));
    match (menu.countdown(), default) {
        (Some(n), Some(d)) => format!(
            " Booting '{}' in {n} s. Press any key to stop.",
            display_title(d)
        ),
        _ if menu.entries().is_empty() => " r rescan  l log  b reboot  p power off  ? help".into(),
        _ if menu.timeout() == Timeout::Forever && menu.status().is_none() => {
            " Enter boot  e edit  d details  l log  ? help  (waiting: no timeout)".into()
        }
        _ => " Enter boot  e edit  d details  r rescan  l log  b reboot  p off  ? help".into(),
    }
}

fn details(p: &mut Painter, menu: &Menu) {
    let Some(e) = menu.entries().get(menu.selected()) else {
        return;
    };
    let vol = menu.volumes().iter().find(|v| v.name == e.kernel.volume);
    let device = match vol {
        Some(v) => {
            let mut s = format!("{} ({}", v.name, v.fs);
            if let Some(u) = &v.uuid {
                s.push_str(&format!(", UUID {u}"));
            }
            if let Some(l) = &v.label {
                s.push_str(&format!(", label {l}"));
            }
            s.push(')');
            s
        }
        None => e.kernel.volume.clone(),
    };
    let config = e.source.location();
    let initrds = if e.initrds.is_empty() {
        "-".to_string()
    } else {
        e.initrds
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let fields: [(&str, String); 9] = [
        ("title", display_title(e)),
        ("id", e.id.clone()),
        ("version", e.version.clone().unwrap_or_else(|| "-".into())),
        ("format", format!("{:?}", e.format).to_lowercase()),
        ("device", device),
        ("config", config),
        ("kernel", e.kernel.to_string()),
        ("initrds", initrds),
        (
            "devicetree",
            e.devicetree
                .as_ref()
                .map_or("-".to_string(), |f| f.to_string()),
        ),
    ];
    for (k, v) in fields {
        p.line(&format!(" {k:<11}{v}"), Style::Plain);
    }
    // The command line, wrapped.
    let width = p.screen.cols().saturating_sub(12).max(8);
    let chars: Vec<char> = e.cmdline.chars().collect();
    let mut first = true;
    for chunk in chars.chunks(width).take(6) {
        let k = if first { "cmdline" } else { "" };
        first = false;
        p.line(
            &format!(" {k:<11}{}", chunk.iter().collect::<String>()),
            Style::Plain,
        );
    }
    if first {
        p.line(" cmdline    (empty)", Style::Plain);
    }
}

/// The bytes that draw `next` on a terminal showing `prev` (`None`: unknown, draw it all).
/// Each changed row is positioned, written, erased to its end and ended with CR LF.
pub fn update(prev: Option<&Frame>, next: &Frame) -> String {
    let mut out = String::new();
    if prev.is_none() {
        out.push_str("\x1b[0m\x1b[H\x1b[2J");
    }
    for (r, row) in next.rows.iter().enumerate() {
        let same = prev.is_some_and(|p| p.rows.get(r) == Some(row));
        if !same {
            out.push_str(&format!("\x1b[{};1H{row}\x1b[K\r\n", r + 1));
        }
    }
    if let Some(p) = prev {
        for r in next.rows.len()..p.rows.len() {
            out.push_str(&format!("\x1b[{};1H\x1b[K", r + 1));
        }
    }
    match next.cursor {
        Some((r, c)) => out.push_str(&format!("\x1b[{};{}H\x1b[?25h", r + 1, c + 1)),
        None if prev.is_none_or(|p| p.cursor.is_some()) => out.push_str("\x1b[?25l"),
        None => {}
    }
    out
}

/// The bytes that leave the menu: attributes reset, cursor shown, screen cleared, so plain
/// log lines follow from the top.
pub fn leave() -> &'static str {
    "\x1b[0m\x1b[?25h\x1b[H\x1b[2J"
}

#[cfg(test)]
mod tests;
