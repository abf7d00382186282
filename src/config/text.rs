//! Operator-written text, shared by `switchboard.toml` and every route source:
//! positions in a file, values quoted in errors, and the one login-user rule.
//!
//! A leaf: it imports nothing from the crate, so `config` and `routes` can
//! both use it without `config` ever importing `routes`.

/// Longest login user on a box, in bytes: far above any account name
/// (Linux allows 32), low enough to keep notices and logs on one line.
pub const MAX_LOGIN_USER_LEN: usize = 255;

/// How much of a bad value an error message quotes.
const QUOTE_LEN: usize = 64;

/// The one rule for a login user on a box, wherever it is written: a route's
/// `user` in the routes file, an `SSHRoute`'s `spec.user`, and
/// `sources.kubernetes.devbox_user`. It is 1 to [`MAX_LOGIN_USER_LEN`] bytes
/// with no whitespace and no control characters, because it is sent to the
/// box's sshd as the user name and shown in notices and logs, where such
/// characters could never name an account but could garble or forge a line.
/// The error says what is wrong (quoting the value); callers add the field.
pub fn check_login_user(user: &str) -> Result<(), String> {
    check_text(user, MAX_LOGIN_USER_LEN, false)
}

/// Non-empty, at most `max` bytes, no control characters; whitespace only when
/// `spaces` (a message may have spaces, a user name may not).
pub fn check_text(text: &str, max: usize, spaces: bool) -> Result<(), String> {
    if text.is_empty() {
        return Err("must not be empty; leave it out instead".to_owned());
    }
    if text.len() > max {
        return Err(format!("longer than {max} bytes"));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("{} contains a control character", quote(text)));
    }
    if !spaces && text.chars().any(char::is_whitespace) {
        return Err(format!("{} contains whitespace", quote(text)));
    }
    Ok(())
}

/// A value for an error message: debug-escaped, cut at [`QUOTE_LEN`] characters.
pub fn quote(value: &str) -> String {
    if value.chars().count() <= QUOTE_LEN {
        return format!("{value:?}");
    }
    let head: String = value.chars().take(QUOTE_LEN).collect();
    format!("{head:?}…")
}

/// 1-based line and column (in characters) of byte `offset` in `text`; an
/// offset past the end or inside a character counts from the nearest
/// character boundary before it.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A serde path (where deserializing failed) as errors name fields:
/// `forwarding.local`, `server.listen[1]`; `prefix` comes first. Built from
/// the path's segments, never from an error message's wording.
pub fn dotted(prefix: &str, path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = prefix.to_owned();
    for segment in path {
        match segment {
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

/// The candidate closest to `word` (ASCII case ignored) when it is a likely
/// typo of it: at most a third of its characters (and at least one) edited.
/// For "did you mean …?" hints.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_word() {
        let words = ["server", "routing", "sources_file", "admin"];
        assert_eq!(closest("servr", words), Some("server"));
        assert_eq!(closest("SERVER", words), Some("server"));
        assert_eq!(closest("sources_fil", words), Some("sources_file"));
        assert_eq!(closest("metrics", words), None);
        assert_eq!(closest("", words), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn text() {
        assert!(check_text("devbox", 255, false).is_ok());
        assert!(check_text("", 255, false).is_err());
        assert!(check_text("a b", 255, false).is_err());
        assert!(check_text("a b", 255, true).is_ok());
        assert!(check_text("a\u{1b}[2J", 255, true).is_err());
        assert!(check_text(&"a".repeat(256), 255, true).is_err());
    }

    #[test]
    fn login_users() {
        for ok in ["devbox", "root", "a.b-c_d", &"u".repeat(MAX_LOGIN_USER_LEN)] {
            assert!(check_login_user(ok).is_ok(), "{ok}");
        }
        for (bad, want) in [
            ("", "must not be empty"),
            ("two words", "\"two words\" contains whitespace"),
            ("tab\there", "contains a control character"),
            ("nl\n", "contains a control character"),
            (&"u".repeat(MAX_LOGIN_USER_LEN + 1), "longer than 255 bytes"),
        ] {
            let err = check_login_user(bad).expect_err(bad);
            assert!(err.contains(want), "{bad:?}: {err}");
        }
    }

    #[test]
    fn quotes_are_short_and_escaped() {
        assert_eq!(quote("a\nb"), "\"a\\nb\"");
        assert!(quote(&"x".repeat(1000)).len() < 80);
    }

    #[test]
    fn line_col_is_safe_on_any_offset() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é", 1), (1, 1));
        assert_eq!(line_col("x", 99), (1, 2));
    }
}
