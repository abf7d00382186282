//! Reading `switchboard.toml`, applying `SWITCHBOARD_<SECTION>_<KEY>`
//! environment overrides on top, and validating, with every problem collected
//! and each one naming where it came from (file or variable) and the field.
//!
//! Every leaf value is checked on its own (a one-key document through the same
//! serde types), so one bad key does not hide the next one.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

use super::Config;
use super::env::apply_env;
use super::origin::{ConfigError, ConfigErrors, Origin, Provenance, check_leaf, structural_field};
use super::text::{check_login_user, line_col};

/// The file `serve`/`check` read when `--config` is not given (if it exists).
pub const DEFAULT_FILE: &str = "switchboard.toml";

/// Parsed so a SPEC-shaped file is accepted, but not acted on yet: setting
/// one is a warning, never silence.
const NOT_IMPLEMENTED: &[(&str, &str)] = &[];

/// Longest `upstream.certificate_validity`: a login certificate is used
/// once, within `handshake_timeout`; a long one only widens what a leaked
/// certificate allows.
const MAX_CERTIFICATE_VALIDITY: Duration = Duration::from_secs(60 * 60);

/// Path-valued keys (dotted); relative values in a file are taken relative
/// to its directory.
const PATH_KEYS: &[&str] = &[
    "server.host_key_seed_file",
    "server.extra_host_keys",
    "server.host_certificates",
    "server.trusted_user_ca_keys_file",
    "server.revoked_keys_file",
    "sources.file.path",
    "sources.kubernetes.kubeconfig",
    "upstream.user_ca_key_file",
];

impl Config {
    /// Loads `path` (or `./switchboard.toml` if it exists, else the defaults),
    /// applies the process environment's overrides and validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigErrors> {
        Self::load_with_env(path, std::env::vars_os())
    }

    /// [`Config::load`] with an explicit environment (tests, embedding).
    ///
    /// `SWITCHBOARD_<SECTION>_<KEY>` sets `[section] key`; nested sections join
    /// with `_` (`SWITCHBOARD_SOURCES_FILE_PATH` is `[sources.file] path`). The
    /// value is read as a TOML value (`6`, `true`, `["a", "b"]`), else as a
    /// string. Variables naming no section (`SWITCHBOARD_SEED`) and the one
    /// named by `host_key_seed_env` are not overrides; the former are
    /// warned about, but for `SWITCHBOARD_CONFIG` and Kubernetes service links.
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();
        let mut provenance = Provenance::new();
        let file = match path {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_FILE)).filter(|p| p.is_file()),
        };
        let mut table = match &file {
            Some(file) => read_file(file, &mut provenance, &mut errors),
            None => Table::new(),
        };
        let mut env_warnings = Vec::new();
        apply_env(
            &mut table,
            env,
            &mut provenance,
            &mut errors,
            &mut env_warnings,
        );
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let mut config = deserialize_whole(table, &provenance, file.as_deref())?;
        validate(&config, &provenance, &mut errors);
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        config.warnings = env_warnings;
        config.warnings.extend(warnings(&provenance));
        config
            .warnings
            .extend(early_drop_warning(&config.server, &provenance));
        if config.server.host_key_derivation == super::HostKeyDerivation::Sshgate {
            let origin = provenance
                .get("server.host_key_derivation")
                .cloned()
                .unwrap_or(Origin::Default);
            config.warnings.push(format!(
                "{origin}: server.host_key_derivation = \"sshgate\": the host key is \
                 SHA-256 of the seed, with no domain separation (a migration aid for \
                 known_hosts written against Sealos sshgate; prefer \"hkdf\" once users \
                 have moved)"
            ));
        }
        let k = &config.sources.kubernetes;
        if k.wake && !k.enabled {
            let origin = provenance
                .get("sources.kubernetes.wake")
                .cloned()
                .unwrap_or(Origin::Default);
            config.warnings.push(format!(
                "{origin}: sources.kubernetes.wake = true has no effect while \
                 sources.kubernetes.enabled = false: only cluster routes can be woken"
            ));
        }
        if k.enabled
            && k.mode == super::KubernetesMode::SealosDevbox
            && config.routing.username_grammar != super::UsernameGrammar::Sealos
        {
            let origin = provenance
                .get("sources.kubernetes.mode")
                .cloned()
                .unwrap_or(Origin::Default);
            config.warnings.push(format!(
                "{origin}: sources.kubernetes.mode: \"sealos-devbox\" without \
                 routing.username_grammar = \"sealos\": Sealos usernames (user@nsid-box) \
                 will not find their boxes"
            ));
        }
        Ok(config)
    }
}

/// The whole table as a [`Config`]. Every leaf passed on its own already;
/// this catches what only the whole does, at the path serde tracked.
fn deserialize_whole(
    table: Table,
    provenance: &Provenance,
    file: Option<&Path>,
) -> Result<Config, ConfigErrors> {
    serde_path_to_error::deserialize::<_, Config>(Value::Table(table)).map_err(|e| {
        let field = structural_field(&[], e.path());
        let origin = provenance
            .get(&field)
            .cloned()
            .or_else(|| file.map(|f| Origin::File(f.to_path_buf())))
            .unwrap_or(Origin::Default);
        ConfigErrors(vec![ConfigError {
            origin,
            field,
            message: e.inner().message().trim().into(),
        }])
    })
}

fn read_file(file: &Path, provenance: &mut Provenance, errors: &mut Vec<ConfigError>) -> Table {
    let origin = Origin::File(file.to_path_buf());
    let error = |field: String, message: String| ConfigError {
        origin: origin.clone(),
        field,
        message,
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            errors.push(error(
                String::new(),
                format!("cannot read the configuration file: {e}"),
            ));
            return Table::new();
        }
    };
    let mut table = match text.parse::<Table>() {
        Ok(t) => t,
        Err(e) => {
            // The message and position only: the snippet could show a secret.
            let (line, col) = e.span().map_or((0, 0), |s| line_col(&text, s.start));
            errors.push(error(
                format!("line {line}, column {col}"),
                e.message().trim().into(),
            ));
            return Table::new();
        }
    };
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        resolve_paths(&mut table, dir);
    }
    let mut leaves = Vec::new();
    collect_leaves(&table, &mut Vec::new(), &mut leaves);
    for (path, value) in leaves {
        if let Err(e) = check_leaf(&path, value) {
            errors.push(error(e.field, e.message));
        }
        provenance.insert(path.join("."), origin.clone());
    }
    table
}

/// Makes relative path values relative to the configuration file's directory.
fn resolve_paths(table: &mut Table, dir: &Path) {
    let join = |v: &mut Value| {
        if let Value::String(s) = v
            && Path::new(s.as_str()).is_relative()
            && !s.is_empty()
        {
            *s = dir.join(s.as_str()).to_string_lossy().into_owned();
        }
    };
    for dotted in PATH_KEYS {
        let Some((parents, key)) = dotted.rsplit_once('.') else {
            continue;
        };
        let Some(t) = table_at(table, parents) else {
            continue;
        };
        match t.get_mut(key) {
            Some(Value::Array(items)) => items.iter_mut().for_each(join),
            Some(v) => join(v),
            None => {}
        }
    }
}

/// The table at dotted path `path` inside `table`, if every part is a table.
fn table_at<'a>(table: &'a mut Table, path: &str) -> Option<&'a mut Table> {
    path.split('.')
        .try_fold(table, |t, part| match t.get_mut(part) {
            Some(Value::Table(inner)) => Some(inner),
            _ => None,
        })
}

/// Every non-table value, and every empty table (so `[typo]` is still seen).
fn collect_leaves<'a>(
    table: &'a Table,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, &'a Value)>,
) {
    for (key, value) in table {
        prefix.push(key.clone());
        match value {
            Value::Table(t) if !t.is_empty() => collect_leaves(t, prefix, out),
            _ => out.push((prefix.clone(), value)),
        }
        prefix.pop();
    }
}

fn validate(config: &Config, provenance: &Provenance, errors: &mut Vec<ConfigError>) {
    let mut fail = |field: &str, message: String| {
        // `list[2]` was set where `list` was.
        let key = field.split_once('[').map_or(field, |(key, _)| key);
        let origin = provenance.get(key).cloned().unwrap_or(Origin::Default);
        errors.push(ConfigError {
            origin,
            field: field.into(),
            message,
        });
    };
    validate_server(&config.server, &mut fail);
    validate_agent_logins(&config.upstream, &mut fail);
    validate_certificates(&config.upstream, &mut fail);
    let k = &config.sources.kubernetes;
    if k.mode == super::KubernetesMode::SealosDevbox && !k.read_secrets {
        fail(
            "sources.kubernetes.read_secrets",
            "is false, but mode \"sealos-devbox\" finds its boxes through their Secrets; \
             set it to true or use mode \"crd\""
                .into(),
        );
    }
    let s = &config.server;
    if provenance.contains_key("server.max_unauthenticated_start")
        && s.max_unauthenticated_start > s.max_unauthenticated
    {
        fail(
            "server.max_unauthenticated_start",
            format!(
                "is above server.max_unauthenticated ({}), so early drop would never start; \
                 use a smaller number, or 0 for no early drop",
                s.max_unauthenticated
            ),
        );
    }
    for (i, cidr) in s.per_source_exempt.iter().enumerate() {
        if let Err(message) = super::parse_cidr(cidr) {
            fail(&format!("server.per_source_exempt[{i}]"), message);
        }
    }
    for (field, d) in [
        ("server.login_grace", config.server.login_grace),
        ("upstream.connect_timeout", config.upstream.connect_timeout),
        (
            "upstream.handshake_timeout",
            config.upstream.handshake_timeout,
        ),
        ("upstream.agent_timeout", config.upstream.agent_timeout),
        ("wake.timeout", config.wake.timeout),
        ("wake.heartbeat", config.wake.heartbeat),
    ] {
        if d == Duration::ZERO {
            fail(field, "must be longer than 0s".into());
        }
    }
    for (i, cidr) in config.proxy_protocol.trusted_cidrs.iter().enumerate() {
        if let Err(message) = super::parse_cidr(cidr) {
            fail(&format!("proxy_protocol.trusted_cidrs[{i}]"), message);
        }
    }
    if config.proxy_protocol.enabled && config.proxy_protocol.trusted_cidrs.is_empty() {
        fail(
            "proxy_protocol.trusted_cidrs",
            "is empty, so every PROXY header would be refused; list your load balancers' addresses"
                .into(),
        );
    }
    if config.routing.target_separator.is_empty() {
        fail(
            "routing.target_separator",
            "must not be empty (the default is \"@\")".into(),
        );
    }
    if config.sources.file.path.as_os_str().is_empty() {
        fail("sources.file.path", "must not be empty".into());
    }
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&config.log.level) {
        fail(
            "log.level",
            format!("not a log filter ({e}); use e.g. \"info\" or \"switchboard=debug\""),
        );
    }
    validate_kubernetes(&config.sources.kubernetes, &mut fail);
}

/// `[server]`: listen addresses, the one seed source, the limits.
/// Agent-login caps: at least one login each, or agent mode is unusable.
fn validate_agent_logins(u: &super::UpstreamConfig, fail: &mut impl FnMut(&str, String)) {
    for (field, n) in [
        ("upstream.agent_logins_per_route", u.agent_logins_per_route),
        (
            "upstream.agent_logins_per_source",
            u.agent_logins_per_source,
        ),
    ] {
        if n == 0 {
            fail(
                field,
                "must be at least 1 (set routing.agent_login = false to turn agent mode off)"
                    .into(),
            );
        }
    }
}

/// The login certificates' lifetime and the host CAs (each line must parse).
fn validate_certificates(u: &super::UpstreamConfig, fail: &mut impl FnMut(&str, String)) {
    let v = u.certificate_validity;
    if v < Duration::from_secs(30) || v > MAX_CERTIFICATE_VALIDITY {
        fail(
            "upstream.certificate_validity",
            format!(
                "{} is outside 30s to 1h: a login certificate only has to outlive the login \
                 (e.g. \"5m\")",
                humantime::format_duration(v)
            ),
        );
    }
    for (i, line) in u.trusted_host_cas.iter().enumerate() {
        if let Err(e) = crate::routes::keys::parse_public_key(line) {
            fail(&format!("upstream.trusted_host_cas[{i}]"), e);
        }
    }
}

fn validate_server(s: &super::ServerConfig, fail: &mut impl FnMut(&str, String)) {
    if s.listen.is_empty() {
        fail(
            "server.listen",
            "must name at least one address, e.g. \"0.0.0.0:2233\"".into(),
        );
    }
    for (i, addr) in s.listen.iter().enumerate() {
        if s.listen[..i].contains(addr) {
            fail("server.listen", format!("{addr} is listed twice"));
        }
    }
    if !(1 << 16..=super::MAX_REKEY_LIMIT).contains(&s.rekey_limit_bytes) {
        fail(
            "server.rekey_limit_bytes",
            format!(
                "{} is out of range: between 65536 and {} (1 GiB)",
                s.rekey_limit_bytes,
                super::MAX_REKEY_LIMIT
            ),
        );
    }
    let seeds = [
        ("server.host_key_seed_file", s.host_key_seed_file.is_some()),
        ("server.host_key_seed_env", s.host_key_seed_env.is_some()),
        ("server.host_key_seed", s.host_key_seed.is_some()),
    ];
    if seeds.iter().filter(|(_, set)| *set).count() > 1 {
        let field = seeds
            .iter()
            .rev()
            .find(|(_, set)| *set)
            .map_or("server", |(f, _)| f);
        fail(
            field,
            "set only one of host_key_seed_file, host_key_seed_env, host_key_seed".into(),
        );
    }
    if s.host_key_seed_file
        .as_ref()
        .is_some_and(|p| p.as_os_str().is_empty())
    {
        fail("server.host_key_seed_file", "must not be empty".into());
    }
    if s.host_key_seed_env.as_ref().is_some_and(|v| v.is_empty()) {
        fail("server.host_key_seed_env", "must not be empty".into());
    }
    for (field, n) in [
        ("server.max_auth_tries", s.max_auth_tries),
        ("server.max_sessions", s.max_sessions),
        ("server.max_channels", s.max_channels),
        ("server.max_connections", s.max_connections),
        ("server.max_unauthenticated", s.max_unauthenticated),
    ] {
        if n == 0 {
            fail(field, "must be at least 1".into());
        }
    }
    for (i, line) in s.trusted_user_ca_keys.iter().enumerate() {
        if let Err(e) = crate::routes::keys::parse_public_key(line) {
            fail(&format!("server.trusted_user_ca_keys[{i}]"), e);
        }
    }
    for (field, path) in [
        (
            "server.trusted_user_ca_keys_file",
            &s.trusted_user_ca_keys_file,
        ),
        ("server.revoked_keys_file", &s.revoked_keys_file),
    ] {
        if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            fail(field, "must not be empty".into());
        }
    }
    if s.max_unauthenticated_rate > 100 {
        fail(
            "server.max_unauthenticated_rate",
            "is a percentage: 0 to 100".into(),
        );
    }
}

/// `[sources.kubernetes]`: checked whether or not it is enabled, so a
/// mistake is found before the day it is switched on.
fn validate_kubernetes(k: &super::KubernetesSourceConfig, fail: &mut impl FnMut(&str, String)) {
    if k.enabled && !cfg!(feature = "kubernetes") {
        fail(
            "sources.kubernetes.enabled",
            "this switchboard was built without Kubernetes support (cargo feature \"kubernetes\")"
                .into(),
        );
    }
    for (i, ns) in k.namespaces.iter().enumerate() {
        if !is_dns_label(ns) {
            fail(
                "sources.kubernetes.namespaces",
                format!(
                    "{ns:?} is not a namespace name (lowercase letters, digits and '-', at most 63)"
                ),
            );
        } else if k.namespaces[..i].contains(ns) {
            fail(
                "sources.kubernetes.namespaces",
                format!("{ns:?} is listed twice"),
            );
        }
    }
    if k.kubeconfig
        .as_ref()
        .is_some_and(|p| p.as_os_str().is_empty())
    {
        fail(
            "sources.kubernetes.kubeconfig",
            "must not be empty; leave it out to use KUBECONFIG or the in-cluster account".into(),
        );
    }
    if k.devbox_port == 0 {
        fail(
            "sources.kubernetes.devbox_port",
            "must be 1 to 65535".into(),
        );
    }
    if let Err(problem) = check_login_user(&k.devbox_user) {
        fail(
            "sources.kubernetes.devbox_user",
            format!("must be a user name: {problem}"),
        );
    }
    for (field, message) in
        super::backends::problems(&k.secret_selector, &k.backend_ports, &k.refused_backends)
    {
        fail(&field, message);
    }
}

/// An RFC 1123 label, what Kubernetes namespaces are.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// `max_unauthenticated` lowered to or below the default early-drop start:
/// early drop is off without anyone having asked for that.
fn early_drop_warning(s: &super::ServerConfig, provenance: &Provenance) -> Option<String> {
    let start = s.max_unauthenticated_start;
    if provenance.contains_key("server.max_unauthenticated_start")
        || start == 0
        || start < s.max_unauthenticated
    {
        return None;
    }
    let origin = provenance
        .get("server.max_unauthenticated")
        .cloned()
        .unwrap_or(Origin::Default);
    Some(format!(
        "{origin}: server.max_unauthenticated: {} is not above max_unauthenticated_start \
         ({start}, the default), so there is no random early drop; set \
         max_unauthenticated_start below it, or to 0 for none",
        s.max_unauthenticated
    ))
}

fn warnings(provenance: &Provenance) -> Vec<String> {
    let mut out = Vec::new();
    for (prefix, what) in NOT_IMPLEMENTED {
        let set = provenance.iter().find(|(path, _)| {
            path.as_str() == *prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|r| r.starts_with('.'))
        });
        if let Some((_, origin)) = set {
            out.push(format!(
                "{origin}: {prefix}: {what} is not implemented yet; this setting is ignored"
            ));
        }
    }
    out
}
