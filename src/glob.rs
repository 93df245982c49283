//! Shell-style glob matching (`*`, `?`, `[...]`) for `loader.conf` `default`,
//! `leapboot.default=` and `modules.alias` patterns (fnmatch without flags, as kmod uses).
//! Iterative with single-star backtracking: O(len(pattern) * len(text)), no recursion, no
//! allocation on the byte path.

/// Whether `text` matches `pattern` as a whole.
pub fn matches(pattern: &str, text: &str) -> bool {
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

fn glob<T: Sym>(p: &[T], t: &[T]) -> bool {
    let (star_c, any_c, open_c) = (T::from(b'*'), T::from(b'?'), T::from(b'['));
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            let c = p[pi];
            if c == star_c {
                star = Some((pi, ti));
                pi += 1;
                continue;
            } else if c == any_c {
                pi += 1;
                ti += 1;
                continue;
            } else if c == open_c {
                if let Some((ok, next)) = class(p, pi, t[ti]) {
                    if ok {
                        pi = next;
                        ti += 1;
                        continue;
                    }
                } else if t[ti] == open_c {
                    pi += 1;
                    ti += 1;
                    continue;
                }
            } else if c == t[ti] {
                pi += 1;
                ti += 1;
                continue;
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
    p[pi..].iter().all(|&c| c == star_c)
}

/// Matches `c` against the bracket expression at `p[at]`; `None` if it is not closed.
fn class<T: Sym>(p: &[T], at: usize, c: T) -> Option<(bool, usize)> {
    let (close, dash) = (T::from(b']'), T::from(b'-'));
    let mut i = at + 1;
    let negate = matches!(p.get(i), Some(&x) if x == T::from(b'!') || x == T::from(b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == close && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == dash && p[i + 2] != close {
            hit |= p[i] <= c && c <= p[i + 2];
            i += 3;
        } else {
            hit |= p[i] == c;
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
