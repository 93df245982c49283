//! `[ ... ]` and `test`: `!`, `-a`, `-o`, parentheses, string and integer comparisons, and the
//! file tests `-e -f -d -s` on GRUB paths (`(dev)` alone: whether the device exists).

use super::Interp;
use crate::fs::FileKind;

impl Interp<'_, '_> {
    pub(super) fn test(&mut self, args: &[String]) -> bool {
        let mut pos = 0;
        self.test_or(args, &mut pos, 0)
    }

    pub(super) fn test_or(&mut self, a: &[String], pos: &mut usize, depth: usize) -> bool {
        let mut r = self.test_and(a, pos, depth);
        while a.get(*pos).map(String::as_str) == Some("-o") {
            *pos += 1;
            let rhs = self.test_and(a, pos, depth);
            r = r || rhs;
        }
        r
    }

    pub(super) fn test_and(&mut self, a: &[String], pos: &mut usize, depth: usize) -> bool {
        let mut r = self.test_not(a, pos, depth);
        while a.get(*pos).map(String::as_str) == Some("-a") {
            *pos += 1;
            let rhs = self.test_not(a, pos, depth);
            r = r && rhs;
        }
        r
    }

    pub(super) fn test_not(&mut self, a: &[String], pos: &mut usize, depth: usize) -> bool {
        let mut neg = false;
        while a.get(*pos).map(String::as_str) == Some("!") && *pos + 1 < a.len() {
            neg = !neg;
            *pos += 1;
        }
        self.test_primary(a, pos, depth) != neg
    }

    pub(super) fn test_primary(&mut self, a: &[String], pos: &mut usize, depth: usize) -> bool {
        let Some(first) = a.get(*pos) else {
            return false;
        };
        if first == "(" && depth < 16 {
            *pos += 1;
            let r = self.test_or(a, pos, depth + 1);
            if a.get(*pos).map(String::as_str) == Some(")") {
                *pos += 1;
            }
            return r;
        }
        if let (Some(op), Some(rhs)) = (a.get(*pos + 1), a.get(*pos + 2)) {
            let num = |s: &str| -> i64 {
                let t = s.trim();
                let (neg, digits) = match t.strip_prefix('-') {
                    Some(d) => (true, d),
                    None => (false, t),
                };
                let end = digits
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(digits.len());
                let n: i64 = digits[..end].parse().unwrap_or(0);
                if neg {
                    -n
                } else {
                    n
                }
            };
            let r = match op.as_str() {
                "=" | "==" => Some(first == rhs),
                "!=" => Some(first != rhs),
                "<" => Some(first < rhs),
                "<=" => Some(first <= rhs),
                ">" => Some(first > rhs),
                ">=" => Some(first >= rhs),
                "-eq" => Some(num(first) == num(rhs)),
                "-ne" => Some(num(first) != num(rhs)),
                "-lt" => Some(num(first) < num(rhs)),
                "-le" => Some(num(first) <= num(rhs)),
                "-gt" => Some(num(first) > num(rhs)),
                "-ge" => Some(num(first) >= num(rhs)),
                "-nt" | "-ot" => Some(false),
                _ => None,
            };
            if let Some(r) = r {
                *pos += 3;
                return r;
            }
        }
        if let Some(arg) = a.get(*pos + 1) {
            let r = match first.as_str() {
                "-n" => Some(!arg.is_empty()),
                "-z" => Some(arg.is_empty()),
                "-e" | "-f" | "-d" | "-s" => Some(self.file_test(first, arg)),
                _ => None,
            };
            if let Some(r) = r {
                *pos += 2;
                return r;
            }
        }
        *pos += 1;
        !first.is_empty()
    }

    pub(super) fn file_test(&self, op: &str, name: &str) -> bool {
        // `(dev)` alone: whether the device exists.
        if let Some(dev) = name.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
            return op == "-e" && self.find_device(dev).is_some();
        }
        let Ok(loc) = self.resolve(name) else {
            return false;
        };
        let Some(v) = self.vols.get(loc.vol) else {
            return false;
        };
        match v.fs.metadata(&loc.path) {
            Ok(m) => match op {
                "-f" => m.kind == FileKind::File,
                "-d" => m.kind == FileKind::Dir,
                "-s" => m.kind == FileKind::Dir || m.len > 0,
                _ => true,
            },
            Err(_) => false,
        }
    }
}
