//! Subject tokens: store and intent ids made safe for a NATS subject, reversibly.
//!
//! A NATS subject is tokens joined by `.`; a token may not be empty nor hold `.`, `*`, `>` or
//! whitespace. An id is written as one token: ASCII letters, digits, `-` and `_` stay as they
//! are; every other byte of its UTF-8 is written `~XX` (two upper-case hex digits), `~` itself
//! included, so decoding is exact. The empty id is written `~`.
//!
//! Uses nothing of the crate.

use std::fmt::Write;

/// `id` as one subject token.
#[must_use]
pub fn encode_token(id: &str) -> String {
    if id.is_empty() {
        return "~".to_owned();
    }
    let mut token = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            token.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(token, "~{byte:02X}");
        }
    }
    token
}

/// The id a token written by [`encode_token`] stands for, or `None` when it is not one.
#[must_use]
pub fn decode_token(token: &str) -> Option<String> {
    match token {
        "" => return None,
        "~" => return Some(String::new()),
        _ => {}
    }
    let mut bytes = Vec::with_capacity(token.len());
    let mut rest = token.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'~' {
            let hex = tail.get(..2)?;
            let text = std::str::from_utf8(hex).ok()?;
            if text.bytes().any(|b| b.is_ascii_lowercase()) {
                return None;
            }
            bytes.push(u8::from_str_radix(text, 16).ok()?);
            rest = tail.get(2..)?;
        } else if first.is_ascii_alphanumeric() || first == b'-' || first == b'_' {
            bytes.push(first);
            rest = tail;
        } else {
            return None;
        }
    }
    String::from_utf8(bytes).ok()
}

/// Why `prefix` cannot begin a subject, or `None` when it can: one or more `.`-separated
/// tokens, none empty, without `*`, `>` or whitespace.
#[must_use]
pub fn prefix_problem(prefix: &str) -> Option<&'static str> {
    if prefix.is_empty() {
        return Some("it is empty");
    }
    if prefix.split('.').any(str::is_empty) {
        return Some("it has an empty token (a leading, trailing or doubled `.`)");
    }
    if prefix
        .chars()
        .any(|c| c == '*' || c == '>' || c.is_whitespace() || c.is_control())
    {
        return Some("it holds `*`, `>`, whitespace or a control character");
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn plain_ids_stay_as_they_are_and_the_rest_is_escaped() {
        assert_eq!(encode_token("intent-42_a"), "intent-42_a");
        assert_eq!(encode_token("a.b*c>d e~"), "a~2Eb~2Ac~3Ed~20e~7E");
        assert_eq!(encode_token(""), "~");
        assert_eq!(encode_token("é"), "~C3~A9");
    }

    #[test]
    fn what_is_not_a_token_of_ours_is_refused() {
        for bad in ["a.b", "~2", "~zz", "~2e", "a b", "~FF", ""] {
            assert_eq!(decode_token(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn prefixes_are_checked() {
        assert_eq!(prefix_problem("oidb"), None);
        assert_eq!(prefix_problem("acme.audit"), None);
        for bad in ["", ".a", "a.", "a..b", "a.*", "a.>", "a b"] {
            assert!(prefix_problem(bad).is_some(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn every_id_comes_back_and_its_token_is_subject_safe(id in any::<String>()) {
            let token = encode_token(&id);
            prop_assert!(!token.is_empty());
            prop_assert!(token.bytes().all(|b| b.is_ascii_graphic() && b != b'.' && b != b'*' && b != b'>'));
            prop_assert_eq!(decode_token(&token), Some(id));
        }
    }
}
