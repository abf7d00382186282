//! Typed configuration (`switchboard.toml`, SPEC §3): defaults, unknown keys
//! refused by name, `SWITCHBOARD_<SECTION>_<KEY>` environment overrides, and
//! validation that reports every problem at once.
//!
//! Loading and validation live in `config/load.rs`; this file is the shape.
//! `config/text.rs` holds the text checks the route sources share with it.

mod backends;
mod env;
mod load;
mod origin;
#[cfg(test)]
mod tests;
pub(crate) mod text;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use backends::{DEFAULT_SECRET_SELECTOR, PortSpec};
pub use env::ENV_PREFIX;
pub use load::DEFAULT_FILE;
pub use origin::{ConfigError, ConfigErrors, Origin};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub routing: RoutingConfig,
    pub upstream: UpstreamConfig,
    pub sources: SourcesConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
    /// `[proxy_protocol]` (SPEC §9).
    pub proxy_protocol: ProxyProtocolConfig,
    /// `[http_tunnel]` (SPEC §11).
    pub http_tunnel: HttpTunnelConfig,
    /// `[wake]`: waiting for boxes that are stopped or starting.
    pub wake: WakeConfig,
    /// Non-fatal findings of [`Config::load`] (options set but not implemented
    /// yet, …), each naming where it was set. `serve` logs them, `check` prints them.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// The most `server.rekey_limit_bytes` may be (RFC 4253 §9, and russh's bound).
pub const MAX_REKEY_LIMIT: usize = 1 << 30;

/// `[server]`: the listening side.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Listen addresses (a string or a list in TOML).
    #[serde(deserialize_with = "one_or_many")]
    pub listen: Vec<SocketAddr>,
    /// File holding the host-key seed.
    pub host_key_seed_file: Option<PathBuf>,
    /// Environment variable holding the host-key seed.
    pub host_key_seed_env: Option<String>,
    /// Inline seed: development only, warned about loudly.
    pub host_key_seed: Option<String>,
    /// How the host key is derived from the seed: `"hkdf"` (default, SPEC
    /// §8) or `"sshgate"` (SHA-256 of the seed, as Sealos sshgate derives
    /// it: a migration aid, warned about).
    pub host_key_derivation: HostKeyDerivation,
    /// Additional host key files (OpenSSH private keys, unencrypted), e.g.
    /// an RSA key for clients that need `rsa-sha2-*`; one per algorithm,
    /// none of the derived ones (Ed25519, ECDSA P-256).
    pub extra_host_keys: Vec<PathBuf>,
    /// OpenSSH host certificate files (`ssh-keygen -s CA -h`), each for one
    /// of the host keys, presented with it so clients can trust
    /// `@cert-authority` in known_hosts.
    pub host_certificates: Vec<PathBuf>,
    /// Whole pre-authentication phase.
    #[serde(with = "humantime_serde")]
    pub login_grace: Duration,
    pub max_auth_tries: usize,
    /// Session channels (shell, exec, subsystem) open at once per
    /// connection, like OpenSSH `MaxSessions`.
    pub max_sessions: usize,
    /// Channels of any kind (sessions, `-L`/`-D`/`-W`, jumps) open at once
    /// per connection.
    pub max_channels: usize,
    pub max_connections: usize,
    /// Connections not yet authenticated, in all (like OpenSSH
    /// `MaxStartups`' "full"): the next one is refused.
    pub max_unauthenticated: usize,
    /// Random early drop (OpenSSH `MaxStartups start:rate:full`): with this
    /// many connections unauthenticated, a new one is refused with a chance
    /// of `max_unauthenticated_rate` percent, rising linearly to 100% at
    /// `max_unauthenticated`. 0, or not below `max_unauthenticated`: no
    /// early drop.
    pub max_unauthenticated_start: usize,
    /// The chance, in percent, of early drop at `max_unauthenticated_start`.
    pub max_unauthenticated_rate: u32,
    /// Unauthenticated connections one source (an IPv4 address, an IPv6
    /// /64; the real client after a PROXY header) may hold, of
    /// `max_unauthenticated` (OpenSSH `PerSourceMaxStartups`); 0 = no limit.
    pub per_source_max_unauthenticated: usize,
    /// CIDRs (or addresses) exempt from `per_source_max_unauthenticated` and
    /// the per-source penalty (health checkers, the load balancer's own
    /// checks); still under `max_unauthenticated`.
    pub per_source_exempt: Vec<String>,
    /// Bytes each way after which the gateway re-keys a connection, on both
    /// legs (OpenSSH's `RekeyLimit`); at most, and by default, 1 GiB.
    pub rekey_limit_bytes: usize,
    /// Keepalive interval on both legs; 0 disables.
    #[serde(with = "humantime_serde")]
    pub keepalive_interval: Duration,
    /// Close sessions idle this long; 0 = never.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// On SIGTERM, `/readyz` turns 503 at once but new connections are still
    /// accepted for this long, while load balancers and Endpoints catch up;
    /// then accepting stops and `shutdown_grace` starts (default 0s).
    #[serde(with = "humantime_serde")]
    pub accept_after_unready: Duration,
    /// Failed logins from one client address before that address is refused
    /// for `per_source_penalty`. A connection that ended without
    /// authenticating after a rejected attempt, or ran out of `login_grace`,
    /// is one failure; one that ended without authenticating otherwise
    /// (closed mid-handshake, a provisional login that never got in) is half
    /// of one, like OpenSSH's `noauth` penalty beside `authfail`.
    pub per_source_max_failures: u32,
    /// How long a penalized address is refused, and how long a failure is
    /// remembered; 0 turns the per-source penalty off.
    #[serde(with = "humantime_serde")]
    pub per_source_penalty: Duration,
    /// Optional pre-auth banner.
    pub banner: String,
    /// OpenSSH user-certificate CAs trusted for every route (public key
    /// lines, like sshd's `TrustedUserCAKeys`); a certificate they sign
    /// opens the routes whose `principals` name one of its principals.
    pub trusted_user_ca_keys: Vec<String>,
    /// More such CAs, one a line, in a file (`TrustedUserCAKeys` format);
    /// re-read when it changes.
    pub trusted_user_ca_keys_file: Option<PathBuf>,
    /// Revoked certificates and keys, in the text format `ssh-keygen -k`
    /// reads (`serial:`, `id:`, `key:`, `hash:` lines); re-read when it changes.
    pub revoked_keys_file: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 2233))],
            host_key_seed_file: None,
            host_key_seed_env: None,
            host_key_seed: None,
            host_key_derivation: HostKeyDerivation::Hkdf,
            extra_host_keys: Vec::new(),
            host_certificates: Vec::new(),
            login_grace: Duration::from_secs(20),
            max_auth_tries: 6,
            max_sessions: 10,
            max_channels: 256,
            max_connections: 10_000,
            max_unauthenticated: 200,
            max_unauthenticated_start: DEFAULT_MAX_UNAUTHENTICATED_START,
            max_unauthenticated_rate: 30,
            per_source_max_unauthenticated: 20,
            per_source_exempt: Vec::new(),
            rekey_limit_bytes: MAX_REKEY_LIMIT,
            keepalive_interval: Duration::from_secs(30),
            idle_timeout: Duration::ZERO,
            shutdown_grace: Duration::from_secs(30),
            accept_after_unready: Duration::ZERO,
            per_source_max_failures: 10,
            per_source_penalty: Duration::from_secs(60),
            banner: String::new(),
            trusted_user_ca_keys: Vec::new(),
            trusted_user_ca_keys_file: None,
            revoked_keys_file: None,
        }
    }
}

/// Default `server.max_unauthenticated_start`: half the default table.
pub const DEFAULT_MAX_UNAUTHENTICATED_START: usize = 100;

impl ServerConfig {
    /// The parsed `per_source_exempt` (validated at load, so bad entries are
    /// already reported; any left are skipped).
    pub fn per_source_exempt(&self) -> Vec<ipnet::IpNet> {
        parse_cidrs(&self.per_source_exempt)
    }
}

/// How the host key is derived from the seed (`server.host_key_derivation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyDerivation {
    /// HKDF-SHA256 with the product's salt and info (SPEC §8).
    Hkdf,
    /// The Ed25519 seed is SHA-256 of the seed, as Sealos sshgate derives
    /// it, so a migrated gateway presents the same host key.
    Sshgate,
}

/// How usernames are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UsernameGrammar {
    Default,
    Sealos,
}

/// Who may use jump mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JumpPolicy {
    Authenticated,
    AnyKey,
    Off,
}

/// `[routing]`: choosing the route (SPEC §5).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    pub target_separator: String,
    pub username_grammar: UsernameGrammar,
    pub agent_login: bool,
    pub jump: JumpPolicy,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            target_separator: "@".into(),
            username_grammar: UsernameGrammar::Default,
            agent_login: true,
            jump: JumpPolicy::Authenticated,
        }
    }
}

/// How the gateway treats the box's host key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    PinnedOrAccept,
    RequirePinned,
}

/// `[upstream]`: the leg to the box.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// TCP connect + SSH handshake + authentication to the box.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    pub host_key_policy: HostKeyPolicy,
    /// Agent mode: how long the client's agent may take to list its keys
    /// and to answer each signing request.
    #[serde(with = "humantime_serde")]
    pub agent_timeout: Duration,
    /// Agent mode: box logins in progress at once, per route (keeps the
    /// box's own `MaxStartups` free for everyone else).
    pub agent_logins_per_route: usize,
    /// Agent mode: box logins in progress at once, per client source
    /// (address; IPv6 /64).
    pub agent_logins_per_source: usize,
    /// The user CA's private key (an OpenSSH private key file, unencrypted)
    /// for routes with `login = "certificate"`: the gateway signs a fresh
    /// short-lived certificate per box login with it. Read once at start;
    /// refused when others may read it. `None`: such routes are skipped.
    pub user_ca_key_file: Option<PathBuf>,
    /// How long a minted login certificate is valid (its start is backdated
    /// a minute for clock skew).
    #[serde(with = "humantime_serde")]
    pub certificate_validity: Duration,
    /// Host CAs (OpenSSH public key lines) whose host certificates boxes may
    /// present instead of a pinned or first-use key; a route's own
    /// `trusted_host_cas` replaces this list, and a route's `host_key` pin
    /// takes precedence over it.
    pub trusted_host_cas: Vec<String>,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            host_key_policy: HostKeyPolicy::PinnedOrAccept,
            agent_timeout: Duration::from_secs(5),
            agent_logins_per_route: 4,
            agent_logins_per_source: 2,
            user_ca_key_file: None,
            certificate_validity: Duration::from_secs(5 * 60),
            trusted_host_cas: Vec::new(),
        }
    }
}

/// `[sources]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesConfig {
    pub file: FileSourceConfig,
    /// `[sources.kubernetes]` (SPEC §7).
    pub kubernetes: KubernetesSourceConfig,
}

/// `[sources.file]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSourceConfig {
    pub path: PathBuf,
    /// Reload on change (no restart; open sessions kept).
    pub watch: bool,
}

impl Default for FileSourceConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("routes.toml"),
            watch: true,
        }
    }
}

/// `[admin]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// File holding the bearer token that may read the sessions API; unset:
    /// only loopback clients may read it.
    pub read_token_file: Option<PathBuf>,
    /// File holding the bearer token that may end sessions (and read);
    /// unset: ending sessions is refused.
    pub write_token_file: Option<PathBuf>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9102)),
            read_token_file: None,
            write_token_file: None,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    Text,
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Which Kubernetes objects describe boxes (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KubernetesMode {
    /// `SSHRoute` custom resources.
    #[default]
    Crd,
    /// The Sealos Devbox Secrets and Pods.
    SealosDevbox,
}

/// `[sources.kubernetes]` (SPEC §7): routes from the cluster, watched live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesSourceConfig {
    /// Watch the cluster for routes (default false).
    pub enabled: bool,
    /// Which objects describe boxes: `"crd"` (default) or `"sealos-devbox"`.
    pub mode: KubernetesMode,
    /// Namespaces to watch; empty (the default) watches every namespace,
    /// which needs a ClusterRole instead of one Role per namespace.
    pub namespaces: Vec<String>,
    /// Kubeconfig file to use; unset (the default) means the usual
    /// inference: `KUBECONFIG`, `~/.kube/config`, then the in-cluster
    /// service account.
    pub kubeconfig: Option<PathBuf>,
    /// Port of the sshd in a devbox pod (`sealos-devbox`; default 22).
    pub devbox_port: u16,
    /// Login user on a devbox when the username names none (`sealos-devbox`;
    /// default `"devbox"`, the user of the Sealos images).
    pub devbox_user: String,
    /// Write `status.conditions` back to each `SSHRoute` (`crd`; default
    /// true). Needs `patch` on `sshroutes/status`.
    pub write_status: bool,
    /// Start stopped boxes when an authorized key connects (default false):
    /// every Devbox (`sealos-devbox`, needs `patch` on `devboxes`), or the
    /// SSHRoutes with a `wake` target (`crd`, needs `patch` on the
    /// workloads' `scale` subresource).
    pub wake: bool,
    /// Label selector of the Secrets routes may use (`crd`): Secrets are
    /// listed and watched with it only, never unselected.
    pub secret_selector: String,
    /// Ports an `SSHRoute` backend may use (`crd`): `22` or `"2200-2299"`.
    pub backend_ports: Vec<PortSpec>,
    /// Addresses (CIDRs) no `SSHRoute` may dial (`crd`): by default
    /// loopback, link-local (cloud metadata) and unspecified.
    pub refused_backends: Vec<String>,
    /// List and watch Secrets (`crd`; default true). False: no Secret is
    /// ever read (the gateway needs no Secret permission), so only routes
    /// without `authorizedKeysSecretRef` and `identitySecretRef` (inline
    /// keys, `login: certificate`) are fully served. `sealos-devbox` needs it.
    pub read_secrets: bool,
}

impl KubernetesSourceConfig {
    /// The parsed `backend_ports` (validated at load; bad entries skipped).
    pub fn backend_port_ranges(&self) -> Vec<std::ops::RangeInclusive<u16>> {
        self.backend_ports
            .iter()
            .filter_map(|p| p.range().ok())
            .collect()
    }

    /// The parsed `refused_backends` (validated at load; bad entries skipped).
    pub fn refused_backend_nets(&self) -> Vec<ipnet::IpNet> {
        parse_cidrs(&self.refused_backends)
    }
}

impl Default for KubernetesSourceConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            mode: KubernetesMode::Crd,
            namespaces: Vec::new(),
            kubeconfig: None,
            devbox_port: 22,
            devbox_user: "devbox".into(),
            write_status: true,
            secret_selector: DEFAULT_SECRET_SELECTOR.into(),
            backend_ports: backends::default_backend_ports(),
            refused_backends: backends::default_refused_backends(),
            wake: false,
            read_secrets: true,
        }
    }
}

/// `[wake]`: how the gateway waits for a box that is stopped and woken
/// (`sources.kubernetes.wake`) or still starting.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WakeConfig {
    /// Longest a woken box may take from the start request to a login.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// A box woken less than this long ago is not woken again (a reconnect
    /// loop must not keep a box running); 0 = no cooldown.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
    /// How often a waiting session is told it is still waiting.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// Key mode: how long a running box that does not answer yet (just
    /// created, restarting) is waited for; 0 = fail at once.
    #[serde(with = "humantime_serde")]
    pub start_wait: Duration,
}

impl Default for WakeConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            cooldown: Duration::from_secs(600),
            heartbeat: Duration::from_secs(10),
            start_wait: Duration::ZERO,
        }
    }
}

/// `[proxy_protocol]`: PROXY v1/v2 headers, honoured only from `trusted_cidrs`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyProtocolConfig {
    pub enabled: bool,
    /// CIDRs (or single addresses) of the load balancers allowed to send a
    /// header; a header from anyone else is refused.
    pub trusted_cidrs: Vec<String>,
}

impl ProxyProtocolConfig {
    /// The parsed `trusted_cidrs` (validated at load, so bad entries are
    /// already reported; any left are skipped).
    pub fn trusted(&self) -> Vec<ipnet::IpNet> {
        parse_cidrs(&self.trusted_cidrs)
    }
}

/// The entries of a validated CIDR list (any bad one skipped).
fn parse_cidrs(list: &[String]) -> Vec<ipnet::IpNet> {
    list.iter().filter_map(|c| parse_cidr(c).ok()).collect()
}

/// A CIDR such as `10.0.0.0/8` or a single address (`10.0.0.7`, `::1`).
pub fn parse_cidr(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{text}` is not a CIDR such as 10.0.0.0/8 or an address"))
}

/// How HTTP tunnels authenticate (SPEC §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TunnelAuth {
    #[default]
    None,
    Token,
}

/// `[http_tunnel]`: HTTP CONNECT and WebSocket tunnels on the SSH port.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpTunnelConfig {
    pub enabled: bool,
    pub auth: TunnelAuth,
    pub host_suffix: String,
}

/// `listen` is one address or a list; errors name the bad address.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    struct Visitor;

    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Vec<SocketAddr>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an address such as \"0.0.0.0:2233\", or a list of them")
        }

        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            parse_addr(s).map(|a| vec![a])
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                out.push(parse_addr(&s)?);
            }
            Ok(out)
        }
    }

    d.deserialize_any(Visitor)
}

fn parse_addr<E: serde::de::Error>(s: &str) -> Result<SocketAddr, E> {
    s.parse().map_err(|_| {
        E::custom(format!(
            "invalid address `{s}`: expected IP:PORT such as 0.0.0.0:2233 or [::]:2233"
        ))
    })
}
