//! The table `switchboard sessions` prints: one line per session, columns
//! aligned, client-supplied text made safe for a terminal.

use std::time::{Duration, SystemTime};

use crate::ops::sessions::{ChannelInfo, SessionInfo, SessionList};

const HEADER: [&str; 9] = [
    "ID", "CLIENT", "MODE", "ROUTE", "USER", "AGE", "UP", "DOWN", "CHANNELS",
];

/// The list as a table (with a count line), ages as of `now`.
pub fn render(list: &SessionList, now: SystemTime) -> String {
    if list.sessions.is_empty() {
        return "no sessions\n".into();
    }
    let rows: Vec<[String; 9]> = list.sessions.iter().map(|s| row(s, now)).collect();
    let mut widths = HEADER.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    line(&mut out, &HEADER.map(str::to_owned), &widths);
    for row in &rows {
        line(&mut out, row, &widths);
    }
    let n = list.count;
    let plural = if n == 1 { "" } else { "s" };
    if list.truncated {
        out.push_str(&format!(
            "{n} session{plural} (showing the oldest {}; use --json for scripts)\n",
            list.sessions.len()
        ));
    } else {
        out.push_str(&format!("{n} session{plural}\n"));
    }
    out
}

fn line(out: &mut String, cells: &[String; 9], widths: &[usize; 9]) {
    let mut text = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            text.push_str(cell);
        } else {
            text.push_str(&format!("{cell:<width$}  "));
        }
    }
    out.push_str(text.trim_end());
    out.push('\n');
}

fn row(s: &SessionInfo, now: SystemTime) -> [String; 9] {
    let client = if s.client_address.contains(':') {
        format!("[{}]:{}", s.client_address, s.client_port)
    } else {
        format!("{}:{}", s.client_address, s.client_port)
    };
    let mode = match (&s.mode, s.authenticated) {
        (Some(mode), true) => mode.clone(),
        (_, _) => "unauth".into(),
    };
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    [
        safe(&s.id),
        safe(&client),
        safe(&mode),
        safe(&dash(&s.route)),
        safe(&dash(&s.user)),
        age(&s.started, now),
        bytes(s.bytes_up),
        bytes(s.bytes_down),
        safe(&channels(s)),
    ]
}

/// `shell, direct-tcpip db:5432, jump alice-ws:22, +3 more`.
fn channels(s: &SessionInfo) -> String {
    let mut parts: Vec<String> = s.channels.iter().map(channel).collect();
    let more = s.channel_count.saturating_sub(s.channels.len());
    if more > 0 {
        parts.push(format!("+{more} more"));
    }
    if parts.is_empty() {
        return "-".into();
    }
    parts.join(", ")
}

fn channel(c: &ChannelInfo) -> String {
    match (
        c.kind.as_str(),
        &c.session_type,
        &c.subsystem,
        &c.destination,
    ) {
        ("session", Some(_), Some(name), _) => name.clone(),
        ("session", Some(kind), None, _) => kind.clone(),
        (kind, _, _, Some(to)) => format!("{kind} {to}"),
        (kind, _, _, None) => kind.to_owned(),
    }
}

/// How long ago `started` (RFC 3339) was: `42s`, `5m3s`, `2h7m`, `3d4h`.
fn age(started: &str, now: SystemTime) -> String {
    let Ok(at) = humantime::parse_rfc3339(started) else {
        return "?".into();
    };
    let secs = now.duration_since(at).unwrap_or(Duration::ZERO).as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{}h", secs / 86400, secs % 86400 / 3600),
    }
}

/// `812B`, `1.5KiB`, `23.0MiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1}{}", UNITS[unit])
}

/// Control characters (a terminal's escape sequences) shown as `?`.
fn safe(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, channels: Vec<ChannelInfo>) -> SessionInfo {
        SessionInfo {
            id: id.into(),
            protocol: "ssh".into(),
            client_address: "203.0.113.7".into(),
            client_port: 50001,
            authenticated: true,
            mode: Some("key".into()),
            route: Some("alice-ws".into()),
            user: Some("devbox".into()),
            key_fingerprint: Some("SHA256:abc".into()),
            started: "2025-01-31T12:00:00Z".into(),
            bytes_up: 812,
            bytes_down: 3 * 1024 * 1024 / 2,
            channel_count: channels.len(),
            channels,
            cert_key_id: None,
            cert_serial: None,
        }
    }

    fn chan(
        kind: &str,
        session_type: Option<&str>,
        sub: Option<&str>,
        to: Option<&str>,
    ) -> ChannelInfo {
        ChannelInfo {
            kind: kind.into(),
            destination: to.map(Into::into),
            session_type: session_type.map(Into::into),
            subsystem: sub.map(Into::into),
            started: "2025-01-31T12:00:00Z".into(),
        }
    }

    #[test]
    fn a_table_with_aligned_columns_and_a_count() {
        let now = humantime::parse_rfc3339("2025-01-31T12:05:03Z").expect("time");
        let mut unauth = session("fedcba9876543210", vec![]);
        unauth.authenticated = false;
        unauth.mode = None;
        unauth.route = None;
        unauth.user = None;
        unauth.client_address = "2001:db8::1".into();
        let list = SessionList {
            sessions: vec![
                session(
                    "0123456789abcdef",
                    vec![
                        chan("session", Some("shell"), None, None),
                        chan("session", Some("subsystem"), Some("sftp"), None),
                        chan("direct-tcpip", None, None, Some("db:5432")),
                    ],
                ),
                unauth,
            ],
            count: 2,
            truncated: false,
        };
        let table = render(&list, now);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[0].starts_with("ID                CLIENT"), "{table}");
        assert_eq!(
            lines[1],
            "0123456789abcdef  203.0.113.7:50001    key     alice-ws  devbox  5m3s  812B  \
             1.5MiB  shell, sftp, direct-tcpip db:5432"
        );
        assert_eq!(
            lines[2],
            "fedcba9876543210  [2001:db8::1]:50001  unauth  -         -       5m3s  812B  \
             1.5MiB  -"
        );
        assert_eq!(lines[3], "2 sessions");
        // Every row's columns start where the header's do.
        let at = lines[0].find("CHANNELS").expect("header");
        assert_eq!(lines[1].find("shell"), Some(at));
    }

    #[test]
    fn empty_truncated_and_unsafe_lists() {
        let now = SystemTime::UNIX_EPOCH;
        let empty = SessionList {
            sessions: vec![],
            count: 0,
            truncated: false,
        };
        assert_eq!(render(&empty, now), "no sessions\n");
        let mut evil = session(
            "0123456789abcdef",
            vec![chan("direct-tcpip", None, None, Some("\x1b[2Jx:1"))],
        );
        evil.channel_count = 5;
        let list = SessionList {
            sessions: vec![evil],
            count: 12_000,
            truncated: true,
        };
        let table = render(&list, now);
        assert!(!table.contains('\x1b'), "{table:?}");
        assert!(table.contains("direct-tcpip ?[2Jx:1, +4 more"), "{table}");
        assert!(
            table.contains("12000 sessions (showing the oldest 1;"),
            "{table}"
        );
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.0GiB");
        assert_eq!(age("not a time", now), "?");
        let later = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let t0 = "1970-01-01T00:00:00Z";
        assert_eq!(age(t0, later(42)), "42s");
        assert_eq!(age(t0, later(2 * 3600 + 7 * 60 + 5)), "2h7m");
        assert_eq!(age(t0, later(3 * 86400 + 4 * 3600)), "3d4h");
    }
}
