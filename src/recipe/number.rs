//! What is wrong with a word KDL reads as a number (`0o999`, `1.`, `12abc`), in words a person
//! can act on. The KDL parser only says that it expected a number, and for a property's value
//! points at the start of the file; the scan in front of it (`scan/`) checks every such word
//! with [`check`], and `parse/diagnostics.rs` puts the explanation where the parser failed.

use crate::diag::codes::Code;
use crate::diag::{Problem, shown};

/// `None` when `word` is a valid KDL 2 number (as the `kdl` crate reads them: prefixes and
/// exponents in either case, `_` between digits, integers up to 2^127 - 1).
pub(crate) fn check(word: &str, at: usize) -> Option<Problem> {
    let body = word.strip_prefix(['+', '-']).unwrap_or(word);
    let prefixed = match body.get(..2) {
        Some("0x" | "0X") => Some((16, "hexadecimal", "0-9 and a-f")),
        Some("0o" | "0O") => Some((8, "octal", "0-7")),
        Some("0b" | "0B") => Some((2, "binary", "0 and 1")),
        _ => None,
    };
    let problem = |message: String, label: String, help: &str| {
        Some(
            Problem::new(Code::RecipeSyntax, (at, word.len()).into(), format!("invalid KDL: {message}"))
                .label(label)
                .help(help.to_string()),
        )
    };
    let w = shown(word);
    if let Some((radix, name, digits)) = prefixed {
        let (prefix, rest) = body.split_at(2);
        let help = format!("{name} numbers are `{prefix}` followed by the digits {digits}, such as {}", example(radix));
        if rest.is_empty() || rest.starts_with('_') {
            return problem(format!("`{w}` is not a number"), format!("no digit after `{prefix}`"), &help);
        }
        if let Some(bad) = rest.chars().find(|&c| c != '_' && !c.is_digit(radix)) {
            return problem(
                format!("`{w}` is not {} {name} number", if radix == 8 { "an" } else { "a" }),
                format!("`{}` is not {} {name} digit", shown(&bad.to_string()), if radix == 8 { "an" } else { "a" }),
                &help,
            );
        }
        if too_large(rest, radix) {
            return problem(format!("`{w}` is too large"), "out of range".into(), "KDL integers go up to 2^127 - 1");
        }
        return None;
    }
    decimal(body).and_then(|(label, help)| problem(format!("`{w}` is not a number"), label, help))
}

fn example(radix: u32) -> &'static str {
    match radix {
        16 => "0xff",
        8 => "0o644",
        _ => "0b1010",
    }
}

/// `digits` (with `_`) in `radix` above i128::MAX?
fn too_large(digits: &str, radix: u32) -> bool {
    let mut v: u128 = 0;
    for d in digits.chars().filter_map(|c| c.to_digit(radix)) {
        match v.checked_mul(radix as u128).and_then(|v| v.checked_add(d as u128)) {
            Some(n) if n <= i128::MAX as u128 => v = n,
            _ => return true,
        }
    }
    false
}

/// What is wrong with an unsigned decimal: a label and a help.
fn decimal(body: &str) -> Option<(String, &'static str)> {
    let b = body.as_bytes();
    let digits = |mut i: usize| {
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
        i
    };
    if !b.first().is_some_and(u8::is_ascii_digit) {
        return Some(("a number starts with a digit".into(), "write a 0 before the decimal point: 0.5"));
    }
    let mut i = digits(0);
    let int_end = i;
    if b.get(i) == Some(&b'.') {
        if !b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            return Some(("no digit after the decimal point".into(), "write digits after the point: 1.0"));
        }
        i = digits(i + 1);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            return Some(("no digit in the exponent".into(), "an exponent is written e and digits: 1.5e3"));
        }
        i = digits(i);
    }
    if i < b.len() {
        return Some((
            "not a number: letters or symbols after the digits".into(),
            "quote text that starts with a digit: \"12abc\"",
        ));
    }
    if i == int_end && too_large(body, 10) {
        return Some(("out of range".into(), "KDL integers go up to 2^127 - 1"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::check;

    fn message(w: &str) -> Option<String> {
        check(w, 0).map(|p| format!("{} / {}", p.message, p.label))
    }

    #[test]
    fn valid_numbers_pass() {
        for w in ["0", "0o644", "0O7", "-0x1f", "0XFF", "0b1_0", "1_000", "1.5e-3", "1E5", "+1", "1_", "1e400"] {
            assert_eq!(message(w), None, "{w}");
        }
        assert_eq!(message("170141183460469231731687303715884105727"), None);
    }

    #[test]
    fn malformed_numbers_are_explained() {
        assert_eq!(
            message("0o999").unwrap(),
            "invalid KDL: `0o999` is not an octal number / `9` is not an octal digit"
        );
        assert!(message("0x1g").unwrap().contains("not a hexadecimal digit"));
        assert!(message("0x").unwrap().contains("no digit after `0x`"));
        assert!(message("0x_1").unwrap().contains("no digit after `0x`"));
        assert!(message("1.").unwrap().contains("no digit after the decimal point"));
        assert!(message("1e+").unwrap().contains("exponent"));
        assert!(message("12abc").unwrap().contains("letters or symbols"));
        assert!(message("-.5").unwrap().contains("starts with a digit"));
        assert!(message("170141183460469231731687303715884105728").unwrap().contains("out of range"));
        assert!(message("0x80000000000000000000000000000000").unwrap().contains("too large"));
    }
}
