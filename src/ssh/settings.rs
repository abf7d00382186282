//! russh settings for the client-facing leg, derived from our configuration.
//! The russh defaults that hurt a relay are overridden (see RUSSH.md): idle
//! sessions dropped after 600 s, Nagle on, no keepalives, slow rejections,
//! HostBased listed as a method.

use std::borrow::Cow;
use std::time::Duration;

use russh::{MethodKind, MethodSet, server};

use crate::config::Config;
use crate::hostkey::HostIdentity;
use crate::upstream::settings::{SSH_ID, nonzero, preferred};

/// Every rejected authentication takes this long, so unknown keys, unknown
/// targets and unauthorized keys cannot be told apart by timing.
const AUTH_REJECTION_TIME: Duration = Duration::from_millis(200);

/// Largest packet payload the gateway advertises to clients (russh's
/// default, stated here because the handler enforces it: a client that
/// sends more in one packet is cut off, SPEC §12).
pub const MAX_PACKET: u32 = 32 * 1024;

/// The server side, facing clients. Every host key is offered (russh
/// advertises the algorithms of the keys it holds: an RSA key as
/// `rsa-sha2-512`, `rsa-sha2-256` and `ssh-rsa`), and each certificate as its
/// `*-cert-v01@openssh.com` algorithm, ahead of the plain keys.
pub fn server_config(config: &Config, identity: &HostIdentity) -> server::Config {
    server::Config {
        server_id: russh::SshId::Standard(Cow::Borrowed(SSH_ID)),
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        auth_rejection_time: AUTH_REJECTION_TIME,
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: identity.private_keys(),
        certificates: identity.certificates(),
        // Channels open with no window; the relay grants it as it writes the
        // client's bytes to the box (relay::flow). Nothing is granted before
        // a box channel exists (agent mode).
        window_size: 0,
        manual_window_adjust: true,
        maximum_packet_size: MAX_PACKET,
        preferred: preferred(),
        max_auth_attempts: config.server.max_auth_tries,
        // idle_timeout is enforced by the gateway on relayed bytes (see
        // server::ssh): russh's timer is reset by keepalive replies.
        inactivity_timeout: None,
        keepalive_interval: nonzero(config.server.keepalive_interval),
        keepalive_max: 3,
        nodelay: true,
        limits: crate::upstream::settings::rekey_limits(config),
        ..server::Config::default()
    }
}
