//! Version comparison by the UAPI Version Format Specification
//! (<https://uapi-group.org/specifications/specs/version_format_specification/>), used to sort
//! Boot Loader Spec entries and kernels found by name. Linear in the input, no allocation.

use std::cmp::Ordering;

fn valid(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'~' | b'-' | b'^' | b'.')
}

/// Compares two version strings; `Greater` means `a` is newer.
///
/// Follows systemd's `strverscmp_improved()`, the implementation the specification names,
/// where its numbered rules are ambiguous: `~` is checked *before* the end-of-string rule, so
/// `1~rc1` < `1` ("a suffix that always sorts lower"), and an empty string compares with
/// `strcmp` (`""` < `"~"`). The spec's example `0 < ~` contradicts its own rule 3; we follow
/// the rule (`0 > ~`), as systemd does.
pub fn compare(a: &str, b: &str) -> Ordering {
    if a.is_empty() || b.is_empty() {
        return a.cmp(b);
    }
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        // 1. Skip characters outside the version alphabet.
        while let [c, rest @ ..] = a {
            if valid(*c) {
                break;
            }
            a = rest;
        }
        while let [c, rest @ ..] = b {
            if valid(*c) {
                break;
            }
            b = rest;
        }
        // 3. '~' sorts lower than anything, even the end of the string.
        match (a.first() == Some(&b'~'), b.first() == Some(&b'~')) {
            (true, true) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        // 2 and 4. If one has ended, the one with characters left is higher.
        if a.is_empty() || b.is_empty() {
            return a.len().cmp(&b.len()); // at least one is empty
        }
        // 5-6. '-' sorts lower, '^' higher, '.' lower than anything else; a pair of equal
        // separators is skipped and the loop starts over at rule 1.
        let mut skipped = false;
        for (sep, lower) in [(b'-', true), (b'^', false), (b'.', true)] {
            match (a[0] == sep, b[0] == sep) {
                (true, true) => {
                    a = &a[1..];
                    b = &b[1..];
                    skipped = true;
                    break;
                }
                (true, false) => {
                    return if lower {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    }
                }
                (false, true) => {
                    return if lower {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    }
                }
                (false, false) => {}
            }
        }
        if skipped {
            continue;
        }
        // 7. Numerical prefixes compare numerically (leading zeroes skipped, empty is 0).
        if a[0].is_ascii_digit() || b[0].is_ascii_digit() {
            let (na, ra) = split_while(a, |c| c.is_ascii_digit());
            let (nb, rb) = split_while(b, |c| c.is_ascii_digit());
            let na = trim_zeroes(na);
            let nb = trim_zeroes(nb);
            let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if ord != Ordering::Equal {
                return ord;
            }
            a = ra;
            b = rb;
            continue;
        }
        // 8. Alphabetical prefixes compare letter by letter ('A' < 'a'); longer is higher.
        let (la, ra) = split_while(a, |c| c.is_ascii_alphabetic());
        let (lb, rb) = split_while(b, |c| c.is_ascii_alphabetic());
        let ord = la.cmp(lb);
        if ord != Ordering::Equal {
            return ord;
        }
        a = ra;
        b = rb;
    }
}

fn split_while(s: &[u8], f: impl Fn(u8) -> bool) -> (&[u8], &[u8]) {
    let n = s.iter().position(|&c| !f(c)).unwrap_or(s.len());
    s.split_at(n)
}

fn trim_zeroes(s: &[u8]) -> &[u8] {
    let n = s.iter().position(|&c| c != b'0').unwrap_or(s.len());
    &s[n..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn examples_from_the_specification() {
        let cases = [
            ("11", "11", Equal),
            ("systemd-123", "systemd-123", Equal),
            ("bar-123", "foo-123", Less),
            ("123a", "123", Greater),
            ("123.a", "123", Greater),
            ("123.a", "123.b", Less),
            ("123a", "123.a", Greater),
            ("11α", "11β", Equal),
            ("A", "a", Less),
            ("", "0", Less),
            ("0.", "0", Greater),
            ("0.0", "0", Greater),
            ("", "~", Less),
            ("0", "~", Greater), // the spec's example says Less, its rule 3 says Greater
            ("1_", "1", Equal),
            ("_1", "1", Equal),
            ("1_", "1.2", Less),
            ("1_2_3", "1.3.3", Greater),
            ("1+", "1", Equal),
            ("+1", "1", Equal),
            ("1+", "1.2", Less),
            ("1+2+3", "1.3.3", Greater),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare(a, b), want, "{a:?} vs {b:?}");
            assert_eq!(compare(b, a), want.reverse(), "{b:?} vs {a:?}");
        }
    }

    #[test]
    fn kernel_versions_sort_as_people_expect() {
        assert_eq!(compare("6.1.0-10-amd64", "6.1.0-9-amd64"), Greater);
        assert_eq!(compare("6.10.0", "6.9.12"), Greater);
        assert_eq!(compare("6.1.0~rc1", "6.1.0"), Less);
        assert_eq!(compare("5.10.1^1", "5.10.1"), Greater);
        assert_eq!(compare("007", "7"), Equal);
    }

    proptest::proptest! {
        #[test]
        fn comparison_is_antisymmetric(a in "[0-9a-zA-Z.~^_+-]{0,12}", b in "[0-9a-zA-Z.~^_+-]{0,12}") {
            proptest::prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
        }

        #[test]
        fn comparison_never_panics(a in any::<String>(), b in any::<String>()) {
            let _ = compare(&a, &b);
        }
    }
    use proptest::prelude::any;
}
