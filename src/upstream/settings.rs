//! russh settings for the box leg, and what both legs share (ciphers,
//! window), derived from our configuration. The russh defaults that hurt a
//! relay are overridden (see RUSSH.md): idle sessions dropped after 600 s,
//! Nagle on, no keepalives.

use std::borrow::Cow;
use std::time::Duration;

use russh::{Preferred, cipher, client};

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

/// Per-channel receive window (both legs): large enough to keep a loopback or
/// LAN path full at gigabit rates.
pub const WINDOW_SIZE: u32 = 1024 * 1024;

/// Messages queued per box channel before the box connection stops reading.
/// Must hold well over one window of box output, so the box's window adjusts
/// (which share that connection) are still read while a client is slow.
const BOX_CHANNEL_BUFFER: usize = 256;

/// The version line both legs send.
pub const SSH_ID: &str = concat!("SSH-2.0-Switchboard_", env!("CARGO_PKG_VERSION"));

/// Algorithm preferences for both legs.
pub fn preferred() -> Preferred {
    Preferred {
        cipher: Cow::Borrowed(CIPHERS),
        ..Preferred::default()
    }
}

/// `None` for a zero duration ("off" in our configuration).
pub fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// The client side, facing boxes.
pub fn client_config(config: &Config) -> client::Config {
    client::Config {
        client_id: russh::SshId::Standard(Cow::Borrowed(SSH_ID)),
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
