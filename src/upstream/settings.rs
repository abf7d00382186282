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

/// Messages russh queues per box channel; the relay drains them at once
/// (`relay::flow::intake`), so this is only slack between two wake-ups.
const BOX_CHANNEL_BUFFER: usize = 64;

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
        // Channels open with no window; the relay grants it (relay::flow).
        window_size: 0,
        manual_window_adjust: true,
        preferred: preferred(),
        inactivity_timeout: None,
        keepalive_interval: nonzero(config.server.keepalive_interval),
        keepalive_max: 3,
        nodelay: true,
        channel_buffer_size: BOX_CHANNEL_BUFFER,
        limits: rekey_limits(config),
        ..client::Config::default()
    }
}

/// [`client_config`] that also asks for host certificates (every
/// `*-cert-v01@openssh.com` variant of the host key algorithms, ahead of
/// the plain ones), for boxes whose host CAs are trusted: an sshd with a
/// `HostCertificate` then presents it. Boxes without trusted host CAs are
/// asked for plain keys only, as before.
pub fn client_config_with_host_certificates(config: &Config) -> client::Config {
    let mut settings = client_config(config);
    settings.preferred.host_key_certificates = settings.preferred.key.clone();
    settings
}

/// `server.rekey_limit_bytes` each way (validated to at most 1 GiB), both legs.
pub fn rekey_limits(config: &Config) -> russh::Limits {
    let bytes = config
        .server
        .rekey_limit_bytes
        .min(crate::config::MAX_REKEY_LIMIT);
    russh::Limits::new(bytes, bytes, russh::Limits::default().rekey_time_limit)
}
