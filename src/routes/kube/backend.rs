//! `mode = "crd"`: where an `SSHRoute`'s backend points, under the
//! operator's limits (`backend_ports`, `refused_backends`).
//!
//! The spec is written by a tenant, so the gateway dials only addresses it
//! resolved itself from objects in the route's own namespace: a pod's IP, or
//! a Service's cluster IP when the Service selects pods. It never dials a
//! DNS name: an `ExternalName` Service is refused, a headless Service is
//! resolved to the oldest Ready pod it selects, and a Service without a
//! selector (whose Endpoints anyone may point anywhere) is refused. The
//! address and port are then checked against the limits.

use std::net::IpAddr;
use std::ops::RangeInclusive;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Service;

use super::crd::SSHRouteSpec;
use super::crd_map::{Cluster, Problems, Reason};
use super::pods;
use crate::config::KubernetesSourceConfig;
use crate::routes::RouteState;

/// The operator's limits on backends.
#[derive(Clone, Debug)]
pub(super) struct Policy {
    ports: Vec<RangeInclusive<u16>>,
    refused: Vec<IpNet>,
}

impl Default for Policy {
    fn default() -> Self {
        Self::new(&KubernetesSourceConfig::default())
    }
}

impl Policy {
    pub(super) fn new(config: &KubernetesSourceConfig) -> Self {
        Self {
            ports: config.backend_port_ranges(),
            refused: config.refused_backend_nets(),
        }
    }

    /// Why `port` may not be dialled, if it may not.
    fn refuse_port(&self, port: u16) -> Option<String> {
        (!self.ports.iter().any(|r| r.contains(&port))).then(|| {
            format!("port {port} is not in the gateway's sources.kubernetes.backend_ports")
        })
    }

    /// Why `ip` may not be dialled, if it may not.
    fn refuse_ip(&self, ip: &str) -> Option<String> {
        let Ok(addr) = ip.parse::<IpAddr>() else {
            return Some(format!("{ip:?} is not an IP address"));
        };
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        self.refused
            .iter()
            .any(|net| net.contains(&addr))
            .then(|| format!("{ip} is in the gateway's sources.kubernetes.refused_backends"))
    }

    #[cfg(test)]
    fn refuse(&self, ip: &str, port: u16) -> Option<String> {
        self.refuse_port(port).or_else(|| self.refuse_ip(ip))
    }
}

/// The backend's address and whether it can be reached now; a problem for
/// each reason it cannot.
pub(super) fn resolve(
    ns: &str,
    spec: &SSHRouteSpec,
    port: u16,
    cluster: &Cluster<'_>,
    policy: &Policy,
    problems: &mut Problems,
) -> (String, RouteState) {
    let stopped = |message: &str| {
        (
            String::new(),
            RouteState::Stopped {
                message: Some(message.to_owned()),
            },
        )
    };
    if let Some(why) = policy.refuse_port(port) {
        problems.add(Reason::BackendRefused, format!("backend refused: {why}"));
        return stopped(REFUSED);
    }
    let ip = match &spec.backend.service {
        Some(svc) => match service_ip(ns, svc, cluster, problems) {
            Ok(ip) => Some(ip),
            Err(Some(message)) => return stopped(&message),
            Err(None) => None,
        },
        None => {
            let selector = spec.backend.pod_selector.as_ref().map(|s| &s.match_labels);
            let ip = selector.and_then(|sel| oldest_ready(ns, sel, cluster));
            if ip.is_none() {
                problems.add(
                    Reason::NoReadyPod,
                    "no Ready pod matches backend.podSelector".into(),
                );
            }
            ip
        }
    };
    let Some(ip) = ip else {
        return (String::new(), RouteState::Stopped { message: None });
    };
    if let Some(why) = policy.refuse_ip(ip) {
        problems.add(Reason::BackendRefused, format!("backend refused: {why}"));
        return stopped(REFUSED);
    }
    (pods::address(ip, port), RouteState::Running)
}

/// What users are told when a route's backend is refused.
const REFUSED: &str = "its backend is not allowed by the gateway";

/// The IP a Service backend dials; else a problem, and what to tell users
/// (`None`: the plain "stopped").
fn service_ip<'c>(
    ns: &str,
    svc: &str,
    cluster: &Cluster<'c>,
    problems: &mut Problems,
) -> Result<&'c str, Option<String>> {
    let Some(spec) = cluster
        .services
        .get(&(ns, svc))
        .and_then(|s: &&Service| s.spec.as_ref())
    else {
        problems.add(Reason::ServiceMissing, format!("Service {svc} not found"));
        return Err(Some(format!("its Service {svc} is missing")));
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        problems.add(
            Reason::BackendRefused,
            format!("Service {svc} is an ExternalName Service: the gateway dials no DNS name"),
        );
        return Err(Some(REFUSED.into()));
    }
    let Some(selector) = spec.selector.as_ref().filter(|s| !s.is_empty()) else {
        problems.add(
            Reason::BackendRefused,
            format!("Service {svc} has no selector: only Services that select pods are used"),
        );
        return Err(Some(REFUSED.into()));
    };
    let cluster_ip = spec
        .cluster_ip
        .as_deref()
        .filter(|ip| !ip.is_empty() && *ip != "None");
    if let Some(ip) = cluster_ip {
        return Ok(ip);
    }
    // Headless: the oldest Ready pod it selects, in this namespace.
    oldest_ready(ns, selector, cluster).ok_or_else(|| {
        problems.add(
            Reason::NoReadyPod,
            format!("no Ready pod matches headless Service {svc}'s selector"),
        );
        None
    })
}

/// The IP of the oldest Ready pod in `ns` whose labels match `selector`.
fn oldest_ready<'c>(
    ns: &str,
    selector: &std::collections::BTreeMap<String, String>,
    cluster: &Cluster<'c>,
) -> Option<&'c str> {
    let candidates = cluster.pods.get(ns).into_iter().flatten().copied();
    pods::pick(candidates.filter(|p| pods::matches(p.metadata.labels.as_ref(), selector)))
        .and_then(pods::ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(ports: &str, refused: &[&str]) -> Policy {
        let mut config = KubernetesSourceConfig::default();
        config.backend_ports = vec![crate::config::PortSpec::Range(ports.into())];
        config.refused_backends = refused.iter().map(|s| (*s).to_owned()).collect();
        Policy::new(&config)
    }

    #[test]
    fn default_policy_refuses_loopback_link_local_and_other_ports() {
        let p = Policy::default();
        assert_eq!(p.refuse("10.0.0.1", 22), None);
        assert_eq!(p.refuse("10.0.0.1", 2222), None);
        assert_eq!(p.refuse("fd00::1", 22), None);
        for ip in [
            "127.0.0.1",
            "::1",
            "169.254.169.254",
            "fe80::1",
            "0.0.0.0",
            "::ffff:127.0.0.1",
        ] {
            let why = p.refuse(ip, 22).expect(ip);
            assert!(why.contains("refused_backends"), "{why}");
        }
        for port in [443, 6443, 10250, 2221] {
            let why = p.refuse("10.0.0.1", port).expect("port");
            assert!(why.contains("backend_ports"), "{why}");
        }
        assert!(p.refuse("api.example", 22).is_some());
    }

    #[test]
    fn configured_policy() {
        let p = policy("2000-3000", &["10.0.0.0/8"]);
        assert_eq!(p.refuse("192.168.1.1", 2500), None);
        assert!(p.refuse("192.168.1.1", 22).is_some());
        assert!(p.refuse("10.1.2.3", 2500).is_some());
        assert_eq!(p.refuse("127.0.0.1", 2500), None);
    }
}
