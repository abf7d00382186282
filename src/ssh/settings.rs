//! russh settings for both legs, derived from our configuration. The russh
//! defaults that hurt a relay are overridden here (see RUSSH.md): idle
//! sessions dropped after 600 s, Nagle on, no keepalives, slow rejections.

use std::borrow::Cow;
use std::time::Duration;

use russh::keys::PrivateKey;
use russh::{MethodKind, MethodSet, Preferred, cipher, client, server};

use crate::config::Config;

/// Ciphers, cheapest first where AES-NI exists. The client's order decides
/// (RFC 4253), so this matters for the box leg, where we are the client.
const CIPHERS: &[cipher::Name] = &[
    cipher::AES_128_GCM,
    cipher::AES_256_GCM,
    cipher::CHACHA20_POLY1305,
    cipher::AES_256_CTR,
    cipher::AES_128_CTR,
];

/// Every rejected authentication takes this long, so unknown keys, unknown
/// targets and unauthorized keys cannot be told apart by timing.
const AUTH_REJECTION_TIME: Duration = Duration::from_millis(200);

/// Per-channel receive window (both legs): large enough to keep a loopback or
/// LAN path full at gigabit rates.
const WINDOW_SIZE: u32 = 1024 * 1024;

/// Messages queued per box channel before the box connection stops reading.
/// Must hold well over one window of box output, so the box's window adjusts
/// (which share that connection) are still read while a client is slow.
const BOX_CHANNEL_BUFFER: usize = 256;

fn preferred() -> Preferred {
    Preferred {
        cipher: Cow::Borrowed(CIPHERS),
        ..Preferred::default()
    }
}

fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// The server side, facing clients.
pub fn server_config(config: &Config, host_key: PrivateKey) -> server::Config {
    server::Config {
        server_id: russh::SshId::Standard(Cow::Borrowed(concat!(
            "SSH-2.0-Switchboard_",
            env!("CARGO_PKG_VERSION")
        ))),
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        auth_rejection_time: AUTH_REJECTION_TIME,
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![host_key],
        window_size: WINDOW_SIZE,
        preferred: preferred(),
        max_auth_attempts: config.server.max_auth_tries,
        // idle_timeout is enforced by the gateway on relayed bytes (see
        // server::ssh): russh's timer is reset by keepalive replies.
        inactivity_timeout: None,
        keepalive_interval: nonzero(config.server.keepalive_interval),
        keepalive_max: 3,
        nodelay: true,
        ..server::Config::default()
    }
}

/// The client side, facing boxes.
pub fn client_config(config: &Config) -> client::Config {
    client::Config {
        client_id: russh::SshId::Standard(Cow::Borrowed(concat!(
            "SSH-2.0-Switchboard_",
            env!("CARGO_PKG_VERSION")
        ))),
        window_size: WINDOW_SIZE,
        preferred: preferred(),
        inactivity_timeout: None,
        keepalive_interval: nonzero(config.server.keepalive_interval),
        keepalive_max: 3,
        nodelay: true,
        channel_buffer_size: BOX_CHANNEL_BUFFER,
        ..client::Config::default()
    }
}
