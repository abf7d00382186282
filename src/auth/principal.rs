//! Key + username → where the client goes (SPEC §5, key mode).
//!
//! Pure logic over one route-table snapshot; the SSH layer calls it twice
//! (when a key is offered, and again once its signature is verified).

use std::sync::Arc;

use russh::keys::PublicKey;

use super::username::Target;
use crate::routes::{Route, RouteTable};

/// The outcome of authentication for one key.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Key mode: relay to `route`, logging in as `user` (None: the route has
    /// no user and none was named).
    Route {
        route: Arc<Route>,
        user: Option<String>,
    },
    /// No target named and the key opens several routes: tell the user.
    Choose { routes: Vec<Arc<Route>> },
    /// Unknown key, unknown target, or key not authorized for the target:
    /// all indistinguishable to the client.
    Deny,
}

/// Decides what `key` may do, given the parsed username.
///
/// `login_name` is the raw SSH username, used as the login user when no
/// target is named and the route does not set `user`.
pub fn decide(table: &RouteTable, target: &Target, login_name: &str, key: &PublicKey) -> Decision {
    match &target.route {
        Some(name) => match table.get(name) {
            Some(route) if route.authorizes(key) => Decision::Route {
                route: route.clone(),
                user: target.user.clone().or_else(|| route.user.clone()),
            },
            _ => Decision::Deny,
        },
        None => match table.routes_for_key(key) {
            [] => Decision::Deny,
            [route] => Decision::Route {
                route: route.clone(),
                user: Some(route.user.clone().unwrap_or_else(|| login_name.to_owned())),
            },
            many => Decision::Choose {
                routes: many.to_vec(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{Forwarding, RouteState};
    use russh::keys::{PrivateKey, ssh_key::private::Ed25519Keypair};

    fn key(n: u8) -> PublicKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[n; 32]))
            .public_key()
            .clone()
    }

    fn route(name: &str, user: Option<&str>, keys: &[PublicKey]) -> Route {
        Route {
            name: name.into(),
            address: "127.0.0.1:22".into(),
            user: user.map(str::to_owned),
            authorized_keys: keys.to_vec(),
            identity: None,
            host_key: None,
            state: RouteState::Running,
            forwarding: Forwarding::default(),
            token_sha256: None,
        }
    }

    fn target(user: Option<&str>, route: Option<&str>) -> Target {
        Target {
            user: user.map(str::to_owned),
            route: route.map(str::to_owned),
        }
    }

    fn table() -> RouteTable {
        RouteTable::new([
            route("alice-ws", Some("devbox"), &[key(1), key(3)]),
            route("bob-ws", None, &[key(2), key(3)]),
        ])
    }

    #[test]
    fn key_picks_its_only_route_and_route_user_wins() {
        match decide(&table(), &target(None, None), "whoever", &key(1)) {
            Decision::Route { route, user } => {
                assert_eq!(route.name, "alice-ws");
                assert_eq!(user.as_deref(), Some("devbox"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn without_route_user_the_ssh_username_is_used() {
        match decide(&table(), &target(None, None), "ubuntu", &key(2)) {
            Decision::Route { route, user } => {
                assert_eq!(route.name, "bob-ws");
                assert_eq!(user.as_deref(), Some("ubuntu"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn key_for_several_routes_must_choose() {
        match decide(&table(), &target(None, None), "x", &key(3)) {
            Decision::Choose { routes } => {
                let names: Vec<_> = routes.iter().map(|r| r.name.as_str()).collect();
                assert_eq!(names, ["alice-ws", "bob-ws"]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn named_target_with_explicit_user() {
        match decide(
            &table(),
            &target(Some("root"), Some("bob-ws")),
            "root@bob-ws",
            &key(3),
        ) {
            Decision::Route { route, user } => {
                assert_eq!(route.name, "bob-ws");
                assert_eq!(user.as_deref(), Some("root"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn empty_user_means_route_user() {
        match decide(
            &table(),
            &target(None, Some("alice-ws")),
            "@alice-ws",
            &key(1),
        ) {
            Decision::Route { user, .. } => assert_eq!(user.as_deref(), Some("devbox")),
            other => panic!("unexpected {other:?}"),
        }
        match decide(&table(), &target(None, Some("bob-ws")), "@bob-ws", &key(2)) {
            Decision::Route { user, .. } => assert_eq!(user, None),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unknown_key_unknown_target_and_unauthorized_key_are_all_deny() {
        let t = table();
        assert!(matches!(
            decide(&t, &target(None, None), "x", &key(9)),
            Decision::Deny
        ));
        assert!(matches!(
            decide(&t, &target(Some("r"), Some("nope")), "x", &key(1)),
            Decision::Deny
        ));
        assert!(matches!(
            decide(&t, &target(Some("r"), Some("bob-ws")), "x", &key(1)),
            Decision::Deny
        ));
    }
}
