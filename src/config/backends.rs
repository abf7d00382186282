//! `[sources.kubernetes]` limits on where a tenant's route may point
//! (SPEC §7, §12): the backend ports allowed and the address ranges refused,
//! and the label that marks the Secrets routes may use.
//!
//! An `SSHRoute` is written by whoever may create one in a watched
//! namespace, so its backend is untrusted: without limits a tenant could make
//! the gateway dial any port of any address it can reach (the API server,
//! metadata endpoints, other tenants' sshd behind NetworkPolicies that admit
//! only the gateway).

use std::ops::RangeInclusive;

use serde::Deserialize;

/// The label a Secret needs before any route can use it; the gateway lists
/// and watches Secrets with this selector only.
pub const DEFAULT_SECRET_SELECTOR: &str = "switchboard.dev/route-secret=true";

/// Ports an `SSHRoute` backend may use unless configured otherwise.
pub const DEFAULT_BACKEND_PORTS: &[u16] = &[22, 2222];

/// Address ranges no route may dial unless configured otherwise: loopback
/// (the gateway's own pod), link-local (cloud metadata endpoints such as
/// 169.254.169.254) and the unspecified addresses.
pub const DEFAULT_REFUSED_BACKENDS: &[&str] = &[
    "127.0.0.0/8",
    "::1/128",
    "169.254.0.0/16",
    "fe80::/10",
    "0.0.0.0/8",
    "::/128",
];

/// One entry of `backend_ports`: a port (`22`) or a range (`"2200-2299"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PortSpec {
    One(u16),
    Range(String),
}

impl PortSpec {
    /// The ports this entry allows, or why it is not a port or range.
    pub fn range(&self) -> Result<RangeInclusive<u16>, String> {
        let bad = || format!("{self:?} is not a port (22) or a range (\"2200-2299\")");
        let (lo, hi) = match self {
            PortSpec::One(p) => (*p, *p),
            PortSpec::Range(text) => {
                let (lo, hi) = text.split_once('-').unwrap_or((text, text));
                let lo = lo.trim().parse::<u16>().map_err(|_| bad())?;
                let hi = hi.trim().parse::<u16>().map_err(|_| bad())?;
                (lo, hi)
            }
        };
        if lo == 0 || lo > hi {
            return Err(bad());
        }
        Ok(lo..=hi)
    }
}

/// The default `backend_ports`.
pub fn default_backend_ports() -> Vec<PortSpec> {
    DEFAULT_BACKEND_PORTS
        .iter()
        .map(|p| PortSpec::One(*p))
        .collect()
}

/// The default `refused_backends`.
pub fn default_refused_backends() -> Vec<String> {
    DEFAULT_REFUSED_BACKENDS
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

/// Problems with the three settings, as `(field, message)`.
pub fn problems(selector: &str, ports: &[PortSpec], refused: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if selector.trim().is_empty() || !selector.contains('=') {
        out.push((
            "sources.kubernetes.secret_selector".into(),
            format!(
                "must be a label selector such as {DEFAULT_SECRET_SELECTOR:?}: Secrets are \
                 never listed unselected"
            ),
        ));
    }
    if ports.is_empty() {
        out.push((
            "sources.kubernetes.backend_ports".into(),
            "is empty, so no route could be served; list ports such as 22 or ranges such as \
             \"2200-2299\""
                .into(),
        ));
    }
    for (i, p) in ports.iter().enumerate() {
        if let Err(message) = p.range() {
            out.push((format!("sources.kubernetes.backend_ports[{i}]"), message));
        }
    }
    for (i, cidr) in refused.iter().enumerate() {
        if let Err(message) = super::parse_cidr(cidr) {
            out.push((format!("sources.kubernetes.refused_backends[{i}]"), message));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_ranges() {
        assert_eq!(PortSpec::One(22).range(), Ok(22..=22));
        assert_eq!(PortSpec::Range("2200-2299".into()).range(), Ok(2200..=2299));
        assert_eq!(PortSpec::Range("2222".into()).range(), Ok(2222..=2222));
        for bad in ["0-10", "30-20", "x", "1-70000", ""] {
            assert!(PortSpec::Range(bad.into()).range().is_err(), "{bad}");
        }
        assert!(PortSpec::One(0).range().is_err());
    }

    #[test]
    fn defaults_are_valid_and_problems_name_the_field() {
        let ok = problems(
            DEFAULT_SECRET_SELECTOR,
            &default_backend_ports(),
            &default_refused_backends(),
        );
        assert!(ok.is_empty(), "{ok:?}");
        let bad = problems("", &[], &["nope".into()]);
        let fields: Vec<&str> = bad.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "sources.kubernetes.secret_selector",
                "sources.kubernetes.backend_ports",
                "sources.kubernetes.refused_backends[0]"
            ]
        );
    }
}
