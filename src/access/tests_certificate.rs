//! Certificates through the admission decision: the checks one by one,
//! which routes a certificate opens (gateway CA and per-route CAs), the
//! target picking among them, extensions, and that a refused certificate
//! decides exactly as an unknown key.

use std::net::IpAddr;
use std::sync::Arc;

use russh::keys::ssh_key::certificate::{Builder, CertType};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PublicKey};

use super::certificate::{self, CertRefusal};
use super::*;
use crate::config::Config;
use crate::routes::trust::Revoked;
use crate::routes::{CertAuthority, UserCerts, UserTrust, shared};

const CA: u8 = 100;
const ROUTE_CA: u8 = 101;
const OTHER_CA: u8 = 102;
const USER: u8 = 7;

fn private(n: u8) -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[n; 32]))
}

fn public(n: u8) -> PublicKey {
    private(n).public_key().clone()
}

/// The access layer reads the clock: certificates are made around it.
fn now() -> u64 {
    super::unix_now()
}

fn client() -> IpAddr {
    "127.0.0.1".parse().expect("address")
}

/// What a test certificate says; `cert` signs it.
struct Spec {
    ca: u8,
    kind: CertType,
    principals: Vec<&'static str>,
    valid: (u64, u64),
    serial: u64,
    key_id: &'static str,
    critical: Vec<(&'static str, &'static str)>,
    extensions: Vec<&'static str>,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            ca: CA,
            kind: CertType::User,
            principals: vec!["alice"],
            valid: (now() - 60, now() + 3600),
            serial: 42,
            key_id: "alice-laptop",
            critical: Vec::new(),
            extensions: vec![
                certificate::PERMIT_PORT_FORWARDING,
                certificate::PERMIT_AGENT_FORWARDING,
                certificate::PERMIT_PTY,
            ],
        }
    }
}

fn cert(spec: Spec) -> Certificate {
    let mut b = Builder::new(
        [1u8; 16],
        public(USER).key_data().clone(),
        spec.valid.0,
        spec.valid.1,
    )
    .expect("builder");
    b.serial(spec.serial).expect("serial");
    b.key_id(spec.key_id).expect("key id");
    b.cert_type(spec.kind).expect("type");
    if spec.principals.is_empty() {
        b.all_principals_valid().expect("no principals");
    }
    for p in spec.principals {
        b.valid_principal(p).expect("principal");
    }
    for (name, value) in spec.critical {
        b.critical_option(name, value).expect("option");
    }
    for name in spec.extensions {
        b.extension(name, "").expect("extension");
    }
    b.sign(&private(spec.ca)).expect("signs")
}

fn route(name: &str, principals: &[&str], authorities: Vec<CertAuthority>) -> Route {
    Route {
        user: Some("devbox".into()),
        user_certs: UserCerts {
            principals: principals.iter().map(|p| (*p).to_owned()).collect(),
            authorities,
        },
        ..Route::for_test(name, "127.0.0.1:22")
    }
}

fn trust(revoked: &str) -> UserTrust {
    UserTrust {
        cas: vec![public(CA)],
        revoked: Revoked::parse(revoked).expect("revocations"),
    }
}

/// a-ws and b-ws take principal alice from the gateway CA; c-ws trusts its
/// own CA for principal carol only; d-ws its own CA for its principals.
fn access(configure: impl FnOnce(&mut Config)) -> Access {
    let mut config = Config::default();
    configure(&mut config);
    let own = |principals: Option<Vec<String>>| CertAuthority {
        key: public(ROUTE_CA),
        principals,
    };
    let table = RouteTable::new([
        route("a-ws", &["alice"], vec![]),
        route("b-ws", &["alice", "bob"], vec![]),
        route("c-ws", &[], vec![own(Some(vec!["carol".into()]))]),
        route("d-ws", &["dave"], vec![own(None)]),
    ])
    .with_trust(Arc::new(trust("id: revoked-id\nserial: 99")));
    Access::new(Arc::new(config), shared(table))
}

fn admit(access: &Access, user: &str, cert: &Certificate) -> Result<Principal, Refusal> {
    match access.ssh_certificate(user, cert, client()) {
        Admission::Admitted(p) => Ok(*p),
        Admission::Refused(why) => Err(why),
    }
}

fn check(spec: Spec) -> Result<(), CertRefusal> {
    certificate::check(
        &cert(spec),
        &trust("id: revoked-id\nserial: 99"),
        client(),
        now(),
    )
}

#[test]
fn checks_refuse_each_bad_certificate() {
    assert_eq!(check(Spec::default()), Ok(()));
    let cases = [
        (
            Spec {
                kind: CertType::Host,
                ..Spec::default()
            },
            CertRefusal::NotUser,
        ),
        (
            Spec {
                principals: vec![],
                ..Spec::default()
            },
            CertRefusal::NoPrincipals,
        ),
        (
            Spec {
                valid: (now() - 3600, now() - 60),
                ..Spec::default()
            },
            CertRefusal::Expired,
        ),
        (
            Spec {
                valid: (now() + 600, now() + 3600),
                ..Spec::default()
            },
            CertRefusal::NotYetValid,
        ),
        (
            Spec {
                serial: 99,
                ..Spec::default()
            },
            CertRefusal::Revoked,
        ),
        (
            Spec {
                key_id: "revoked-id",
                ..Spec::default()
            },
            CertRefusal::Revoked,
        ),
        (
            Spec {
                critical: vec![("source-address", "10.9.9.9/32")],
                ..Spec::default()
            },
            CertRefusal::SourceAddress,
        ),
        (
            Spec {
                critical: vec![("source-address", "not-an-address")],
                ..Spec::default()
            },
            CertRefusal::CriticalOption,
        ),
        (
            Spec {
                critical: vec![("force-command", "/bin/true")],
                ..Spec::default()
            },
            CertRefusal::ForceCommand,
        ),
        (
            Spec {
                critical: vec![("foo", "bar")],
                ..Spec::default()
            },
            CertRefusal::CriticalOption,
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(check(spec), Err(want));
    }
    let near = Spec {
        critical: vec![("source-address", "10.0.0.0/8,127.0.0.0/8")],
        ..Spec::default()
    };
    assert_eq!(check(near), Ok(()));
}

#[test]
fn revoking_the_key_or_the_ca_revokes_the_certificate() {
    let key_line = format!("key: {}", public(USER).to_openssh().expect("encodes"));
    let ca_line = format!("key: {}", public(CA).to_openssh().expect("encodes"));
    for revoked in [key_line, ca_line] {
        let refused = certificate::check(&cert(Spec::default()), &trust(&revoked), client(), now());
        assert_eq!(refused, Err(CertRefusal::Revoked), "{revoked}");
    }
}

#[test]
fn a_tampered_certificate_fails_its_signature() {
    let mut bytes = cert(Spec::default()).to_bytes().expect("encodes");
    let at = bytes
        .windows(12)
        .position(|w| w == b"alice-laptop")
        .expect("key id in the encoding");
    bytes[at] = b'm';
    let forged = Certificate::from_bytes(&bytes).expect("still decodes");
    assert_eq!(forged.key_id(), "mlice-laptop");
    let refused = certificate::check(&forged, &trust(""), client(), now());
    assert_eq!(refused, Err(CertRefusal::BadSignature));
}

#[test]
fn principals_pick_routes_and_a_target_picks_among_them() {
    let a = access(|_| {});
    // alice opens a-ws and b-ws: no target → choose; a target → that one.
    let both = admit(&a, "x", &cert(Spec::default())).expect("admitted");
    assert_eq!(both.label(), "choose");
    let picked = admit(&a, "root@b-ws", &cert(Spec::default())).expect("admitted");
    match picked.mode() {
        Mode::Key { route, user } => {
            assert_eq!(
                (route.name.as_str(), user.as_deref()),
                ("b-ws", Some("root"))
            );
        }
        other => panic!("not key mode: {other:?}"),
    }
    assert_eq!(
        picked.certificate().map(|g| (g.key_id(), g.serial())),
        Some(("alice-laptop", 42))
    );
    // bob opens b-ws only: key mode with the route's user.
    let bob = admit(
        &a,
        "x",
        &cert(Spec {
            principals: vec!["bob"],
            ..Spec::default()
        }),
    )
    .expect("bob");
    assert_eq!(
        (bob.route_name(), bob.login_user()),
        (Some("b-ws"), Some("devbox"))
    );
}

#[test]
fn route_cert_authority_lines_with_and_without_principals() {
    let a = access(|c| c.routing.agent_login = false);
    let by_route_ca = |principal: &'static str| {
        cert(Spec {
            ca: ROUTE_CA,
            principals: vec![principal],
            ..Spec::default()
        })
    };
    // principals="carol" on c-ws's line.
    assert_eq!(
        admit(&a, "x", &by_route_ca("carol"))
            .expect("carol")
            .route_name(),
        Some("c-ws")
    );
    // d-ws's line has no principals=: the route's principals (dave).
    assert_eq!(
        admit(&a, "x", &by_route_ca("dave"))
            .expect("dave")
            .route_name(),
        Some("d-ws")
    );
    // The route CA is not the gateway's: alice from it opens nothing.
    assert_eq!(
        admit(&a, "x", &by_route_ca("alice")).err(),
        Some(Refusal::Certificate(CertRefusal::NoRoute))
    );
    // Nor does the gateway CA open c-ws for carol (c-ws lists no principals).
    assert_eq!(
        admit(
            &a,
            "x@c-ws",
            &cert(Spec {
                principals: vec!["carol"],
                ..Spec::default()
            })
        )
        .err(),
        Some(Refusal::Certificate(CertRefusal::NoRoute))
    );
}

#[test]
fn a_refused_certificate_decides_as_an_unknown_key() {
    let expired = cert(Spec {
        valid: (now() - 10, now() - 5),
        ..Spec::default()
    });
    let other_ca = cert(Spec {
        ca: OTHER_CA,
        ..Spec::default()
    });
    let unknown = public(USER);
    // agent_login: a named target is agent mode, existing or not, as for
    // the bare key.
    let a = access(|_| {});
    for target in ["root@a-ws", "root@nope"] {
        for c in [&expired, &other_ca] {
            let p = admit(&a, target, c).expect("agent mode");
            let bare = match a.ssh(target, &unknown) {
                Admission::Admitted(p) => p,
                Admission::Refused(why) => panic!("bare refused: {why:?}"),
            };
            assert_eq!(
                (p.label(), p.route_name()),
                (bare.label(), bare.route_name())
            );
            assert!(p.certificate().is_none());
        }
    }
    // Without agent_login: refused, like the unknown key.
    let off = access(|c| c.routing.agent_login = false);
    assert!(matches!(
        off.ssh("root@a-ws", &unknown),
        Admission::Refused(_)
    ));
    assert_eq!(
        admit(&off, "root@a-ws", &expired).err(),
        Some(Refusal::Certificate(CertRefusal::Expired))
    );
    // jump = any-key without a target: jump-only, like the unknown key.
    let any = access(|c| c.routing.jump = JumpPolicy::AnyKey);
    assert_eq!(admit(&any, "x", &other_ca).expect("jump").label(), "jump");
}

#[test]
fn extensions_narrow_the_route_switches() {
    let a = access(|_| {});
    let full = admit(&a, "x@a-ws", &cert(Spec::default())).expect("full");
    for f in [
        Forward::Local,
        Forward::Remote,
        Forward::Agent,
        Forward::Pty,
    ] {
        assert!(full.allows(f), "{f:?}");
    }
    assert!(
        full.jump(&a.table(), "b-ws", 22).is_some(),
        "alice may jump to b-ws"
    );
    assert!(
        full.jump(&a.table(), "c-ws", 22).is_none(),
        "but not to c-ws"
    );
    let bare = admit(
        &a,
        "x@a-ws",
        &cert(Spec {
            extensions: vec![],
            ..Spec::default()
        }),
    )
    .expect("no extensions");
    for f in [
        Forward::Local,
        Forward::Remote,
        Forward::Agent,
        Forward::Pty,
    ] {
        assert!(!bare.allows(f), "{f:?}");
    }
    assert!(
        bare.jump(&a.table(), "b-ws", 22).is_none(),
        "a jump is a port forward"
    );
    assert!(bare.may_wake(&a.table().get("a-ws").expect("a-ws").clone()));
}

#[test]
fn a_revoked_bare_key_is_an_unknown_key() {
    let revoked = format!("key: {}", public(USER).to_openssh().expect("encodes"));
    let mut config = Config::default();
    config.routing.agent_login = false;
    let mut r = route("k-ws", &[], vec![]);
    r.authorized_keys = vec![public(USER)];
    let table = RouteTable::new([r]).with_trust(Arc::new(trust(&revoked)));
    let a = Access::new(Arc::new(config), shared(table));
    for user in ["x", "x@k-ws"] {
        match a.ssh(user, &public(USER)) {
            Admission::Refused(why) => assert_eq!(why, Refusal::UnknownKey, "{user}"),
            Admission::Admitted(p) => panic!("{user} admitted: {p:?}"),
        }
    }
}
