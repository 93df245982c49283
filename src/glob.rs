//! Shell-style glob matching (`*`, `?`, `[...]`) for `loader.conf` `default`,
//! `leapboot.default=` and `modules.alias` patterns (fnmatch without flags, as kmod uses).
//! Iterative with single-star backtracking, no recursion. A pattern is read once: brackets
//! are compiled into classes before matching, so matching costs O(len(pattern) *
//! len(text)) whatever the pattern holds (an unclosed `[` is a literal found in one pass, not
//! rescanned at every text position). Patterns longer than [`MAX_PATTERN`] characters match
//! nothing. Patterns without a bracket are matched without any allocation.

/// The longest pattern matched, in characters (a `loader.conf` `default` or a `modules.alias`
/// line is far shorter); longer patterns match nothing.
pub const MAX_PATTERN: usize = 1024;

/// Whether `text` matches `pattern` as a whole.
pub fn matches(pattern: &str, text: &str) -> bool {
    if pattern.len() > 4 * MAX_PATTERN {
        return false;
    }
    if pattern.is_ascii() && text.is_ascii() {
        return glob(pattern.as_bytes(), text.as_bytes());
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob(&p, &t)
}

/// [`matches`] on bytes (modaliases and `modules.alias` patterns are ASCII).
pub fn matches_bytes(pattern: &[u8], text: &[u8]) -> bool {
    glob(pattern, text)
}

/// The characters (chars or bytes) this matcher works on.
trait Sym: Copy + Ord + From<u8> {}
impl Sym for u8 {}
impl Sym for char {}

/// One element of a compiled pattern.
enum Tok<T> {
    Lit(T),
    Any,
    Star,
    /// A bracket expression: its ranges (single characters are `(c, c)`), negated or not.
    Class(bool, Vec<(T, T)>),
}

fn glob<T: Sym>(p: &[T], t: &[T]) -> bool {
    if p.len() > MAX_PATTERN {
        return false;
    }
    if !p.contains(&T::from(b'[')) {
        return run(p.len(), |i| plain(p[i]), t);
    }
    let toks = compile(p);
    run(toks.len(), |i| &toks[i], t)
}

/// A bracket-free pattern character as a token, without allocating.
fn plain<T: Sym>(c: T) -> Tok<T> {
    if c == T::from(b'*') {
        Tok::Star
    } else if c == T::from(b'?') {
        Tok::Any
    } else {
        Tok::Lit(c)
    }
}

/// Anything [`run`] can read a token from.
trait AsTok<T> {
    fn with<R>(self, f: impl FnOnce(&Tok<T>) -> R) -> R;
}
impl<T> AsTok<T> for Tok<T> {
    fn with<R>(self, f: impl FnOnce(&Tok<T>) -> R) -> R {
        f(&self)
    }
}
impl<T> AsTok<T> for &Tok<T> {
    fn with<R>(self, f: impl FnOnce(&Tok<T>) -> R) -> R {
        f(self)
    }
}

/// Single-star backtracking over `n` tokens: each restart walks the tokens after the last
/// star once, so the work is O(tokens * text), a class costing its size.
fn run<T: Sym, K: AsTok<T>>(n: usize, tok: impl Fn(usize) -> K, t: &[T]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < n {
            let c = t[ti];
            let step = tok(pi).with(|k| match k {
                Tok::Star => Some(true),
                Tok::Any => Some(false),
                Tok::Lit(l) => (*l == c).then_some(false),
                Tok::Class(negate, ranges) => {
                    let hit = ranges.iter().any(|&(a, b)| a <= c && c <= b);
                    (hit != *negate).then_some(false)
                }
            });
            match step {
                Some(true) => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                Some(false) => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                None => {}
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    (pi..n).all(|i| tok(i).with(|k| matches!(k, Tok::Star)))
}

/// The pattern as tokens. A `[` without its `]` is a literal; once one is unclosed, every
/// later one is too (no `]` follows), so the pattern is scanned once.
fn compile<T: Sym>(p: &[T]) -> Vec<Tok<T>> {
    let mut out = Vec::with_capacity(p.len());
    let mut i = 0;
    let mut unclosed = false;
    while i < p.len() {
        let c = p[i];
        if c == T::from(b'[') && !unclosed {
            if let Some((tok, next)) = class(p, i) {
                out.push(tok);
                i = next;
                continue;
            }
            unclosed = true;
        }
        out.push(match plain(c) {
            Tok::Lit(_) => Tok::Lit(c),
            other => other,
        });
        i += 1;
    }
    out
}

/// The bracket expression at `p[at]` as a [`Tok::Class`] and the index after its `]`;
/// `None` if it is not closed. (`]` first in the brackets is a member; `a-z` a range.)
fn class<T: Sym>(p: &[T], at: usize) -> Option<(Tok<T>, usize)> {
    let (close, dash) = (T::from(b']'), T::from(b'-'));
    let mut i = at + 1;
    let negate = matches!(p.get(i), Some(&x) if x == T::from(b'!') || x == T::from(b'^'));
    if negate {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    while i < p.len() {
        if p[i] == close && !first {
            return Some((Tok::Class(negate, ranges), i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == dash && p[i + 2] != close {
            ranges.push((p[i], p[i + 2]));
            i += 3;
        } else {
            ranges.push((p[i], p[i]));
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{matches, matches_bytes};

    #[test]
    fn globs() {
        assert!(matches("fedora-*", "fedora-6.1.conf"));
        assert!(!matches("fedora-*", "debian-6.1"));
        assert!(matches("*", ""));
        assert!(matches("a?c", "abc"));
        assert!(matches("[a-c]x", "bx"));
        assert!(!matches("[!a-c]x", "bx"));
        assert!(matches("*-6.1*", "arch-6.1.2.conf"));
        assert!(matches("exact", "exact"));
        assert!(!matches("exact", "exactly"));
        assert!(matches("[", "["));
        assert!(matches("é*", "été"));
        assert!(matches("?t?", "été"));
    }

    #[test]
    fn modalias_patterns() {
        // Real lines of a 6.1 kernel's modules.alias.
        let m = |p: &str, t: &str| matches_bytes(p.as_bytes(), t.as_bytes());
        assert!(m(
            "pci:v00001AF4d*sv*sd*bc*sc*i*",
            "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"
        ));
        assert!(m("virtio:d00000002v*", "virtio:d00000002v00001AF4"));
        assert!(!m("virtio:d00000002v*", "virtio:d00000008v00001AF4"));
        assert!(m(
            "pci:v*d*sv*sd*bc01sc06i01*",
            "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01"
        ));
        assert!(m(
            "usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*",
            "usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00"
        ));
        assert!(m("scsi:t-0x00*", "scsi:t-0x00"));
        assert!(m("scsi:t-0x0[0e]*", "scsi:t-0x0e"));
        assert!(!m("scsi:t-0x00*", "scsi:t-0x05"));
    }

    #[test]
    fn glob_unclosed_bracket_is_linear() {
        // loader.conf `default *[` + 1 MiB: the unclosed bracket was rescanned at every text
        // position (13 s for 16 entries). Now a pattern is compiled once, and one over the
        // length cap matches nothing at once.
        let t = std::time::Instant::now();
        let huge = format!("*[{}", "a".repeat(1 << 20));
        let long_id = "a".repeat(4096);
        for _ in 0..1024 {
            assert!(!matches(&huge, "debian-6.1"));
        }
        let capped = format!("*[{}", "a".repeat(super::MAX_PATTERN - 2));
        for _ in 0..64 {
            assert!(!matches(&capped, &long_id));
        }
        let class = format!("*[{}]b", "a".repeat(super::MAX_PATTERN - 4));
        for _ in 0..64 {
            assert!(!matches(&class, &long_id));
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            t.elapsed()
        );
        assert!(matches("*[", "x["));
        assert!(matches("[]a]", "]"));
        assert!(matches("a[[]b", "a[b"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(p in "[*?\\[\\]!a-c-]{0,10}", t in "[a-c\\[\\]]{0,10}") {
            let _ = matches(&p, &t);
        }

        #[test]
        fn bytes_and_chars_agree(p in "[*?\\[\\]!a-c-]{0,10}", t in "[a-c\\[\\]]{0,10}") {
            let chars: Vec<char> = p.chars().collect();
            let text: Vec<char> = t.chars().collect();
            proptest::prop_assert_eq!(super::glob(&chars, &text), matches_bytes(p.as_bytes(), t.as_bytes()));
        }
    }
}
