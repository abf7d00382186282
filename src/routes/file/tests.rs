//! Tests of loading a routes file: valid files, every kind of error, paths, duplicates.

use std::fs;
use std::path::Path;

use russh::keys::PublicKey;

use super::*;
use crate::routes::{Forwarding, RouteState};

use super::fixture::{ENCRYPTED, Fixture, IDENTITY, KEY_A, KEY_B};

/// The one error of loading a file with a single broken route.
fn only_error(fx: &Fixture, text: &str) -> String {
    let load = fx.load(text);
    assert!(load.routes.is_empty(), "{text}");
    assert_eq!(load.errors.len(), 1, "{text}: {:?}", load.errors);
    load.errors[0].to_string()
}

fn route(name: &str, extra: &str) -> String {
    format!("[[route]]\nname = \"{name}\"\naddress = \"10.0.0.1:22\"\n{extra}\n")
}

#[test]
fn full_route() {
    let fx = Fixture::new();
    let load = fx.load(&format!(
        r#"
[[route]]
name = "alice-ws"
address = "10.0.3.7:22"
user = "devbox"
authorized_keys = ["{KEY_B}"]
authorized_keys_file = "keys/alice.pub"
identity_file = "keys/alice"
host_key = "{KEY_B}"
state = "stopped"
message = "back at 9"
[route.forwarding]
remote = false
"#
    ));
    assert!(load.errors.is_empty(), "{:?}", load.errors);
    let r = &load.routes[0];
    assert_eq!(
        (r.name.as_str(), r.address.as_str(), r.user.as_deref()),
        ("alice-ws", "10.0.3.7:22", Some("devbox"))
    );
    assert_eq!(r.authorized_keys.len(), 3);
    assert!(r.authorizes(&PublicKey::from_openssh(KEY_A).expect("key")));
    let identity = r.identity.as_ref().expect("identity");
    assert_eq!(
        identity.public_key().key_data(),
        PublicKey::from_openssh(KEY_A).expect("key").key_data()
    );
    assert!(r.host_key.is_some());
    assert_eq!(
        r.state,
        RouteState::Stopped {
            message: Some("back at 9".into())
        }
    );
    assert_eq!(
        r.forwarding,
        Forwarding {
            local: true,
            remote: false,
            agent: true
        }
    );
}

#[test]
fn minimal_route_gets_defaults() {
    let fx = Fixture::new();
    let load = fx.load(&route("a", "message = \"ignored while running\""));
    assert!(load.errors.is_empty(), "{:?}", load.errors);
    let r = &load.routes[0];
    assert!(
        r.user.is_none()
            && r.identity.is_none()
            && r.host_key.is_none()
            && r.authorized_keys.is_empty()
    );
    assert_eq!(r.state, RouteState::Running);
    assert_eq!(r.forwarding, Forwarding::default());
}

#[test]
fn empty_file_has_no_routes() {
    let fx = Fixture::new();
    let load = fx.load("# nothing yet\n");
    assert!(load.routes.is_empty() && load.errors.is_empty());
}

#[test]
fn absolute_paths_are_kept() {
    let fx = Fixture::new();
    let abs = fx.dir.path().join("keys/alice");
    let load = fx.load(&route(
        "a",
        &format!("identity_file = {:?}", abs.display().to_string()),
    ));
    assert!(load.errors.is_empty(), "{:?}", load.errors);
}

#[test]
fn relative_paths_follow_the_routes_file_not_the_cwd() {
    let fx = Fixture::new();
    let sub = fx.dir.path().join("conf");
    fs::create_dir(&sub).expect("mkdir");
    let path = sub.join("routes.toml");
    fs::write(
        &path,
        route(
            "a",
            "identity_file = \"../keys/alice\"\nauthorized_keys_file = \"../keys/alice.pub\"",
        ),
    )
    .expect("w");
    let load = load(&path).expect("loads");
    assert!(load.errors.is_empty(), "{:?}", load.errors);
    assert_eq!(load.routes[0].authorized_keys.len(), 2);
}

#[test]
// Over 80 lines: one table of broken fields and the error each must name.
fn field_errors_name_file_route_and_field() {
    let fx = Fixture::new();
    let file = fx.path().display().to_string();
    let cases: Vec<(String, &str)> = vec![
        (
            route("a", "adress = \"x\""),
            "route \"a\": adress: unknown field `adress`",
        ),
        (
            route("a", "user = \"\""),
            "route \"a\": user: must not be empty",
        ),
        (
            route("a", "user = \"a b\""),
            "route \"a\": user: \"a b\" contains whitespace",
        ),
        (
            route(
                "a",
                &format!("authorized_keys = [\"{KEY_A}\", \"ssh-ed25519 AAAA\"]"),
            ),
            "route \"a\": authorized_keys[1]: not a valid",
        ),
        (
            route("a", &format!("authorized_keys = [\"restrict {KEY_A}\"]")),
            "authorized_keys[0]: authorized_keys options",
        ),
        (
            route("a", "authorized_keys = [1]"),
            "route \"a\": authorized_keys: invalid type",
        ),
        (
            route("a", "authorized_keys_file = \"nope\""),
            "route \"a\": authorized_keys_file: cannot read",
        ),
        (
            route("a", "identity_file = \"nope\""),
            "route \"a\": identity_file: cannot read",
        ),
        (
            route("a", "identity_file = \"keys\""),
            "identity_file: cannot read",
        ),
        (
            route("a", "identity_file = \"keys/encrypted\""),
            "is encrypted with a passphrase",
        ),
        (
            route("a", "identity_file = \"keys/alice.pub\""),
            "is not a private key the gateway can read",
        ),
        (
            route("a", "identity_file = \"\""),
            "identity_file: the path is empty",
        ),
        (
            route("a", "host_key = \"ssh-ed25519\""),
            "route \"a\": host_key: \"ssh-ed25519\" key has no base64 data",
        ),
        (
            route("a", "state = \"paused\""),
            "route \"a\": state: unknown variant `paused`",
        ),
        (
            route("a", "message = \"a\\u001b[2J\""),
            "route \"a\": message: ",
        ),
        (
            route("a", "[route.forwarding]\nlocal = \"yes\""),
            "route \"a\": forwarding.local: invalid type",
        ),
        (
            route("a", "login = \"password\""),
            "route \"a\": login: unknown login `password`",
        ),
        (
            route(
                "a",
                "login = \"certificate\"\nidentity_file = \"keys/alice\"",
            ),
            "route \"a\": identity_file: is not used with login = \"certificate\"",
        ),
        (
            route("a", "trusted_host_cas = [\"nope\"]"),
            "route \"a\": trusted_host_cas[0]: ",
        ),
        (
            route(
                "a",
                &format!("host_key = \"{KEY_A}\"\ntrusted_host_cas = [\"{KEY_B}\"]"),
            ),
            "route \"a\": trusted_host_cas: is set together with host_key",
        ),
        (
            route("a", "[route.forwarding]\nx11 = true"),
            "route \"a\": forwarding.x11: unknown field `x11`",
        ),
        (
            "[[route]]\nname = \"a\"\naddress = \"x\"\n".into(),
            "route \"a\": address: \"x\" is not host:port",
        ),
        (
            "[[route]]\nname = \"a\"\n".into(),
            "route \"a\": address: missing field `address`",
        ),
        (
            "[[route]]\naddress = \"h:1\"\n".into(),
            ": [[route]] #1 (line 1): name: missing field `name`",
        ),
        (
            "[[route]]\nname = \"-a\"\naddress = \"h:1\"\n".into(),
            "[[route]] #1 (line 1): name: \"-a\" is not a valid route name",
        ),
        (
            "[[route]]\nname = 5\naddress = \"h:1\"\n".into(),
            "[[route]] #1 (line 1): name: invalid type",
        ),
        (
            "route = [1]".into(),
            "[[route]] #1 (line 1): expected a table, found integer",
        ),
    ];
    for (text, want) in cases {
        let got = only_error(&fx, &text);
        assert!(got.starts_with(&format!("{file}: ")), "{got}");
        assert!(got.contains(want), "want {want:?} in {got:?}");
    }
}

#[test]
fn certificate_login_and_host_cas() {
    let fx = Fixture::new();
    let load = fx.load(&route(
        "a",
        &format!("login = \"certificate\"\ntrusted_host_cas = [\"{KEY_A}\", \"{KEY_B}\"]"),
    ));
    assert!(load.errors.is_empty(), "{:?}", load.errors);
    let r = &load.routes[0];
    assert_eq!(r.login, crate::routes::LoginMethod::Certificate);
    assert!(r.identity.is_none());
    assert_eq!(r.trusted_host_cas.len(), 2);
    let load = fx.load(&route("b", "login = \"key\""));
    assert_eq!(load.routes[0].login, crate::routes::LoginMethod::Key);
}

#[test]
fn one_route_reports_every_problem() {
    let fx = Fixture::new();
    let load =
        fx.load("[[route]]\nname = \"a\"\naddress = \"x\"\nuser = \"\"\nhost_key = \"nope\"\n");
    let fields: Vec<_> = load
        .errors
        .iter()
        .map(|e| e.field.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(fields, ["address", "user", "host_key"]);
}

#[test]
fn bad_lines_in_authorized_keys_file_are_numbered() {
    let fx = Fixture::new();
    fs::write(
        fx.dir.path().join("keys/bad.pub"),
        format!("{KEY_A}\n\ngarbage here\nrestrict {KEY_B}\n"),
    )
    .expect("w");
    let err = only_error(&fx, &route("a", "authorized_keys_file = \"keys/bad.pub\""));
    assert!(
        err.contains("line 3: unknown key type \"garbage\""),
        "{err}"
    );
    assert!(err.contains("line 4: authorized_keys options"), "{err}");
}

#[test]
fn private_key_material_never_appears_in_errors() {
    let fx = Fixture::new();
    // A corrupted copy of the identity: same armour, one body line damaged.
    let corrupt = IDENTITY.replace("AQAAAAtzc2gt", "AQAA!!!!c2gt");
    fs::write(fx.dir.path().join("keys/corrupt"), &corrupt).expect("w");
    for file in ["keys/corrupt", "keys/encrypted"] {
        let err = only_error(&fx, &route("a", &format!("identity_file = \"{file}\"")));
        for line in corrupt
            .lines()
            .chain(ENCRYPTED.lines())
            .filter(|l| !l.starts_with("-----"))
        {
            assert!(!err.contains(line), "{err}");
        }
    }
}

#[test]
fn a_broken_route_does_not_fail_the_others() {
    let fx = Fixture::new();
    let load = fx.load(&format!(
        "{}{}{}",
        route("a", ""),
        route("b", "user = \"\""),
        route("c", "")
    ));
    let names: Vec<_> = load.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "c"]);
    assert_eq!(load.errors[0].route.as_deref(), Some("b"));
}

#[test]
fn duplicates_keep_the_first_and_name_both_positions() {
    let fx = Fixture::new();
    let text = format!(
        "{}{}{}",
        route("a", "user = \"first\""),
        route("b", ""),
        route("a", "user = \"second\"")
    );
    let load = fx.load(&text);
    assert_eq!(load.routes.len(), 2);
    assert_eq!(load.routes[0].user.as_deref(), Some("first"));
    let err = load.errors[0].to_string();
    assert!(err.contains("route \"a\": name: duplicate of [[route]] #1 (line 1); this one ([[route]] #3 (line 9))"), "{err}");
}

#[test]
fn whole_file_errors() {
    let fx = Fixture::new();
    let err = load(&fx.write("[[route]\nname = 1")).expect_err("syntax");
    assert!(
        matches!(
            err,
            FileError::Toml {
                line: 1,
                column: 8,
                ..
            }
        ),
        "{err}"
    );
    let err = load(&fx.write("\n\n[[routes]]\nname = \"a\"")).expect_err("top-level key");
    assert!(
        err.to_string()
            .contains(":3:3: unknown field `routes`, expected `route`"),
        "{err}"
    );
    let err = load(&fx.dir.path().join("missing.toml")).expect_err("missing");
    assert!(
        matches!(err, FileError::Read { .. })
            && err.to_string().contains("missing.toml: cannot read"),
        "{err}"
    );
    let err = load(fx.dir.path()).expect_err("a directory");
    assert!(matches!(err, FileError::Read { .. }), "{err}");
}

#[test]
fn parse_str_resolves_against_the_named_file() {
    let fx = Fixture::new();
    let path = fx.dir.path().join("never-written.toml");
    let load = parse_str(&route("a", "identity_file = \"keys/alice\""), &path).expect("parses");
    assert!(load.errors.is_empty(), "{:?}", load.errors);
    let refs = referenced_files(&route("a", "identity_file = \"keys/alice\""), &path);
    assert_eq!(refs, [fx.dir.path().join("keys/alice")]);
    assert_eq!(base_dir(Path::new("routes.toml")), Path::new("."));
}

#[test]
fn random_edits_never_panic() {
    let fx = Fixture::new();
    let path = fx.path();
    let seed = format!(
        "{}{}[route.forwarding]\nlocal = false\n",
        route(
            "a",
            &format!("authorized_keys = [\"{KEY_A}\"]\nidentity_file = \"keys/alice\"")
        ),
        route(
            "b",
            &format!("host_key = \"{KEY_B}\"\nstate = \"stopped\"\nmessage = \"m\"")
        )
    );
    let alphabet = b"[]\"=.,#\n \\-_:@%{}abz019AZ\x00\xff";
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % 1_000_003).unwrap_or(0)
    };
    for _ in 0..3_000 {
        let mut bytes = seed.clone().into_bytes();
        for _ in 0..1 + next() % 4 {
            let at = next() % bytes.len();
            match next() % 3 {
                0 => bytes[at] = alphabet[next() % alphabet.len()],
                1 => bytes.insert(at, alphabet[next() % alphabet.len()]),
                _ => drop(bytes.remove(at)),
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(load) = parse_str(&text, &path) {
            for e in &load.errors {
                assert!(!e.to_string().is_empty());
            }
        }
    }
}

#[test]
fn a_wrongly_typed_field_does_not_hide_the_others() {
    let fx = Fixture::new();
    let load = fx.load(
        "[[route]]\nname = \"a\"\naddress = \"x\"\nstate = 1\nuser = \"\"\nadress = 2\n\
         authorized_keys = [\"ssh-ed25519 AAAA\", 3]\n[route.forwarding]\nlocal = \"yes\"\nx11 = true\n",
    );
    let got: Vec<(String, String)> = load
        .errors
        .iter()
        .map(|e| (e.field.clone().unwrap_or_default(), e.message.clone()))
        .collect();
    let fields: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "address",
            "user",
            "authorized_keys",
            "state",
            "forwarding.local",
            "forwarding.x11",
            "adress"
        ],
        "{got:?}"
    );
    assert!(got[2].1.ends_with("(in authorized_keys[1])"), "{got:?}");
    assert!(
        got[3]
            .1
            .starts_with("invalid type: integer `1`, expected a string"),
        "{got:?}"
    );
}

#[test]
fn principals_and_cert_authority_lines() {
    let fx = Fixture::new();
    let load = fx.load(&route(
        "a",
        &format!(
            "principals = [\"alice\", \"bob\"]\n\
             authorized_keys = [\"{KEY_B}\", 'cert-authority,principals=\"carol\" {KEY_A}']"
        ),
    ));
    assert!(load.errors.is_empty(), "{:?}", load.errors);
    let certs = &load.routes[0].user_certs;
    assert_eq!(certs.principals, ["alice", "bob"]);
    assert_eq!(certs.authorities.len(), 1);
    assert_eq!(
        certs.authorities[0].principals,
        Some(vec!["carol".to_owned()])
    );
    assert_eq!(load.routes[0].authorized_keys.len(), 1);
    let err = only_error(&fx, &route("a", "principals = [\"ok\", \"a b\"]"));
    assert!(
        err.contains("route \"a\": principals[1]: \"a b\" is not a certificate principal"),
        "{err}"
    );
}
