//! `HOST[:PORT]` as users type it for `--host` and `--gateway`: `gw`,
//! `gw:2233`, `[::1]:2233`, `[::1]`, or a bare IPv6 address (`::1`, no port).

use std::net::Ipv6Addr;

/// The host and the port when one is given; `None` when `s` is not of that
/// shape (empty host, whitespace or control characters, a port that is not
/// 1 to 65535, text after `]`).
pub(super) fn split(s: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match s.rsplit_once(':') {
            // More than one colon and no brackets: an IPv6 address alone.
            Some((h, _)) if h.contains(':') => (s, None),
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok().filter(|&n| n > 0)?)
        }
        Some(_) => return None,
        None => None,
    };
    let bad = |c: char| c.is_whitespace() || c.is_control();
    if host.is_empty() || host.chars().any(bad) {
        return None;
    }
    // Brackets and colons belong to IPv6 addresses only.
    let bracketed = s.starts_with('[');
    if (bracketed || host.contains(':')) && host.parse::<Ipv6Addr>().is_err() {
        return None;
    }
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn forms() {
        assert_eq!(split("gw"), Some(("gw", None)));
        assert_eq!(split("gw:22"), Some(("gw", Some(22))));
        assert_eq!(
            split("gw.example.com:2233"),
            Some(("gw.example.com", Some(2233)))
        );
        assert_eq!(split("[::1]:2233"), Some(("::1", Some(2233))));
        assert_eq!(split("[::1]"), Some(("::1", None)));
        assert_eq!(split("::1"), Some(("::1", None)));
        assert_eq!(split("10.0.0.1:22"), Some(("10.0.0.1", Some(22))));
    }

    #[test]
    fn bad_forms() {
        for bad in [
            "", ":22", "gw:", "gw:port", "gw:0", "gw:65536", "gw:+22", "[::1]22", "[::1", "a b",
            "gw\n", "gw:22:33", "[gw]:22",
        ] {
            assert_eq!(split(bad), None, "{bad:?}");
        }
    }
}
