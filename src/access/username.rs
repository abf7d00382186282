//! The username grammar (SPEC §5): which login user and which route the SSH
//! username asks for (`user@route`, `%40` for `@`, split at the last separator).
//!
//! Decoding rule: only `%40` is decoded (to `@`), nothing else. General `%XX`
//! decoding would make `%25`, `%0a` or invalid UTF-8 reachable from a username
//! for no benefit: the one escape that clients need is `%40`, so that URLs (git)
//! can carry an `@` in the user part. A `%` not followed by `40` stays a literal
//! `%`. Since the input is a `&str` and `%40` decodes to ASCII, the result is
//! always valid UTF-8.
//!
//! Every input is either a [`Target`] or a [`UsernameError`]; nothing panics.

use thiserror::Error;

use crate::config::UsernameGrammar;

/// Longest username accepted, in bytes (before decoding). OpenSSH itself caps
/// user names far lower; 512 leaves room for `user@long-route-name` without
/// letting a client make the gateway carry kilobytes per log line.
pub const MAX_USERNAME_LEN: usize = 512;

/// What the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Login user on the box; `None` when empty, meaning "the route's `user`".
    pub user: Option<String>,
    /// Route named in the username; `None` means "the route(s) of the key".
    pub route: Option<String>,
}

/// Why a username cannot be understood. The messages are safe to log and to
/// show to the client: they never echo control characters.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UsernameError {
    #[error("username is {len} bytes long; at most {max} are accepted")]
    TooLong { len: usize, max: usize },
    #[error("username contains a control character at byte {index}")]
    ControlChar { index: usize },
    #[error("username contains whitespace at byte {index}")]
    Whitespace { index: usize },
    #[error("username ends with {separator:?} but names no route after it")]
    EmptyTarget { separator: String },
    #[error("the target separator is empty; set routing.target_separator")]
    EmptySeparator,
    #[error("target {target:?} is not of the form <namespace id>-<box name>")]
    NotSealosTarget { target: String },
}

/// Reads an SSH username into the login user and the route it names.
///
/// `separator` is `routing.target_separator` (usually `@`); `grammar` selects
/// the `sealos` mapping `nsid-box` → `box.ns-nsid`.
pub fn parse(
    raw: &str,
    separator: &str,
    grammar: UsernameGrammar,
) -> Result<Target, UsernameError> {
    if raw.len() > MAX_USERNAME_LEN {
        return Err(UsernameError::TooLong {
            len: raw.len(),
            max: MAX_USERNAME_LEN,
        });
    }
    if separator.is_empty() {
        return Err(UsernameError::EmptySeparator);
    }
    let decoded = decode(raw);
    check_chars(&decoded)?;
    let Some((user, target)) = decoded.rsplit_once(separator) else {
        return Ok(Target {
            user: non_empty(&decoded),
            route: None,
        });
    };
    if target.is_empty() {
        return Err(UsernameError::EmptyTarget {
            separator: separator.to_owned(),
        });
    }
    let route = match grammar {
        UsernameGrammar::Default => target.to_owned(),
        UsernameGrammar::Sealos => sealos_route(target)?,
    };
    Ok(Target {
        user: non_empty(user),
        route: Some(route),
    })
}

/// Replaces every `%40` with `@`; nothing else is decoded (see the module doc).
fn decode(raw: &str) -> String {
    raw.replace("%40", "@")
}

/// Rejects control characters and whitespace, reporting the first one's byte offset.
fn check_chars(name: &str) -> Result<(), UsernameError> {
    for (index, ch) in name.char_indices() {
        if ch.is_control() {
            return Err(UsernameError::ControlChar { index });
        }
        if ch.is_whitespace() {
            return Err(UsernameError::Whitespace { index });
        }
    }
    Ok(())
}

/// Sealos names a box `<nsid>-<box>` in namespace `ns-<nsid>`; the namespace id
/// has no `-`, so the first `-` splits them, and the route is `<box>.ns-<nsid>`.
fn sealos_route(target: &str) -> Result<String, UsernameError> {
    match target.split_once('-') {
        Some((nsid, name)) if !nsid.is_empty() && !name.is_empty() => {
            Ok(format!("{name}.ns-{nsid}"))
        }
        _ => Err(UsernameError::NotSealosTarget {
            target: target.to_owned(),
        }),
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: UsernameGrammar = UsernameGrammar::Default;
    const S: UsernameGrammar = UsernameGrammar::Sealos;

    fn target(user: Option<&str>, route: Option<&str>) -> Target {
        Target {
            user: user.map(str::to_owned),
            route: route.map(str::to_owned),
        }
    }

    #[test]
    fn plain_user_names_no_route() {
        assert_eq!(parse("ubuntu", "@", D), Ok(target(Some("ubuntu"), None)));
        assert_eq!(parse("", "@", D), Ok(target(None, None)));
    }

    #[test]
    fn splits_at_last_separator() {
        assert_eq!(
            parse("ubuntu@alice-ws", "@", D),
            Ok(target(Some("ubuntu"), Some("alice-ws")))
        );
        assert_eq!(
            parse("a@b@alice-ws", "@", D),
            Ok(target(Some("a@b"), Some("alice-ws")))
        );
        assert_eq!(
            parse("@alice-ws", "@", D),
            Ok(target(None, Some("alice-ws")))
        );
    }

    #[test]
    fn empty_target_is_an_error() {
        assert!(matches!(
            parse("alice-ws@", "@", D),
            Err(UsernameError::EmptyTarget { .. })
        ));
        assert!(matches!(
            parse("@", "@", D),
            Err(UsernameError::EmptyTarget { .. })
        ));
        assert!(matches!(
            parse("a%40", "@", D),
            Err(UsernameError::EmptyTarget { .. })
        ));
    }

    #[test]
    fn percent_40_is_an_at_sign() {
        assert_eq!(
            parse("ubuntu%40alice-ws", "@", D),
            Ok(target(Some("ubuntu"), Some("alice-ws")))
        );
        assert_eq!(
            parse("a%40b@alice-ws", "@", D),
            Ok(target(Some("a@b"), Some("alice-ws")))
        );
        assert_eq!(
            parse("%40alice-ws", "@", D),
            Ok(target(None, Some("alice-ws")))
        );
        // Only %40 is decoded: other escapes and lone % stay literal.
        assert_eq!(
            parse("a%41%@r", "@", D),
            Ok(target(Some("a%41%"), Some("r")))
        );
        assert_eq!(parse("a%0a@r", "@", D), Ok(target(Some("a%0a"), Some("r"))));
        assert_eq!(parse("%%40r", "@", D), Ok(target(Some("%"), Some("r"))));
    }

    #[test]
    fn other_separators() {
        assert_eq!(
            parse("ubuntu+box", "+", D),
            Ok(target(Some("ubuntu"), Some("box")))
        );
        assert_eq!(
            parse("u@x::box", "::", D),
            Ok(target(Some("u@x"), Some("box")))
        );
        assert_eq!(parse("u%40x", "+", D), Ok(target(Some("u@x"), None)));
        assert_eq!(parse("u", "", D), Err(UsernameError::EmptySeparator));
    }

    #[test]
    fn sealos_grammar_maps_namespace_and_box() {
        assert_eq!(
            parse("root@abc123-mybox", "@", S),
            Ok(target(Some("root"), Some("mybox.ns-abc123")))
        );
        assert_eq!(
            parse("root@abc-my-box", "@", S),
            Ok(target(Some("root"), Some("my-box.ns-abc")))
        );
        assert_eq!(
            parse("@abc-box", "@", S),
            Ok(target(None, Some("box.ns-abc")))
        );
        assert_eq!(parse("root", "@", S), Ok(target(Some("root"), None)));
        for bad in ["root@mybox", "root@-box", "root@abc-"] {
            assert!(
                matches!(
                    parse(bad, "@", S),
                    Err(UsernameError::NotSealosTarget { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn limits() {
        let long = "a".repeat(MAX_USERNAME_LEN + 1);
        assert!(matches!(
            parse(&long, "@", D),
            Err(UsernameError::TooLong { .. })
        ));
        assert!(parse(&"a".repeat(MAX_USERNAME_LEN), "@", D).is_ok());
        assert_eq!(
            parse("a\u{7}@b", "@", D),
            Err(UsernameError::ControlChar { index: 1 })
        );
        assert_eq!(
            parse("a@b\n", "@", D),
            Err(UsernameError::ControlChar { index: 3 })
        );
        assert_eq!(
            parse("a b@c", "@", D),
            Err(UsernameError::Whitespace { index: 1 })
        );
        assert_eq!(
            parse("a@\u{a0}", "@", D),
            Err(UsernameError::Whitespace { index: 2 })
        );
        assert!(matches!(
            parse("\u{1b}[31m", "@", D),
            Err(UsernameError::ControlChar { .. })
        ));
    }

    #[test]
    fn unicode_is_kept() {
        assert_eq!(
            parse("jörg@bäm", "@", D),
            Ok(target(Some("jörg"), Some("bäm")))
        );
    }

    /// Deterministic xorshift64* so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap_or(0)
        }
        fn pick(&mut self, alphabet: &[char], max_len: usize) -> String {
            let len = self.below(max_len + 1);
            (0..len)
                .map(|_| alphabet[self.below(alphabet.len())])
                .collect()
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let len = rng.below(600);
            let bytes: Vec<u8> = (0..len).map(|_| (rng.next() & 0xff) as u8).collect();
            let text = String::from_utf8_lossy(&bytes);
            for sep in ["@", "+", "::", "é"] {
                let _ = parse(&text, sep, D);
                let _ = parse(&text, sep, S);
            }
        }
    }

    #[test]
    fn user_sep_route_round_trips() {
        let user_chars: Vec<char> = "ab09._-@%4é".chars().collect();
        let route_chars: Vec<char> = "az09._-4é".chars().collect();
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        for _ in 0..20_000 {
            let user = rng.pick(&user_chars, 40);
            let mut route = rng.pick(&route_chars, 40);
            if route.is_empty() {
                route.push('r');
            }
            let raw = format!("{user}@{route}");
            let got = parse(&raw, "@", D).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
            let want_user = user.replace("%40", "@");
            assert_eq!(got.user, non_empty(&want_user), "{raw:?}");
            assert_eq!(got.route.as_deref(), Some(route.as_str()), "{raw:?}");
        }
    }
}
