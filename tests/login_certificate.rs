//! Certificates towards boxes (issue 15): `login = "certificate"` routes log
//! in with a certificate the gateway's user CA mints per login, to real
//! sshd boxes that trust the CA (`TrustedUserCAKeys`, `AuthorizedKeysFile
//! none`); `trusted_host_cas` accepts a box's host certificate instead of a
//! pin or first use; `switchboard user-ca` prints the CA for the boxes.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
#[cfg(feature = "kubernetes")]
use std::time::Duration;

use common::*;

/// A box that admits only certificates from `ca` (no authorized_keys at
/// all), logging each login's key and certificate ID, with
/// `$SSH_USER_AUTH` naming the certificate it was given.
fn ca_box(name: &str, ca: &Key, host_certificate: Option<(&Key, &str)>) -> SshdBox {
    SshdBox::start_with(
        name,
        BoxOptions {
            authorize_identity: false,
            authorized_keys_file: Some("none".into()),
            log_level: "VERBOSE".into(),
            extra_config: format!(
                "TrustedUserCAKeys {}.pub\nExposeAuthInfo yes\n",
                ca.path.display()
            ),
            host_certificate: host_certificate.map(|(ca, p)| (ca.path.clone(), p.to_owned())),
            ..Default::default()
        },
    )
}

/// A `login = "certificate"` route to `b` for `client`, with `extra` lines
/// (a `[route.forwarding]` table goes last).
fn cert_route(b: &SshdBox, client: &Key, extra: &str) -> String {
    format!(
        "[[route]]\nname = {}\naddress = {}\nuser = \"root\"\nauthorized_keys = [{}]\n\
         login = \"certificate\"\n{extra}\n",
        toml_str(&b.name),
        toml_str(&b.address()),
        toml_str(&client.public),
    )
}

/// The test config with the user CA (and `upstream` lines).
fn with_ca(ca: &Key, upstream: &str) -> GatewayConfig {
    GatewayConfig {
        upstream_extra: format!(
            "user_ca_key_file = {}\n{upstream}",
            toml_str(&ca.path.display().to_string())
        ),
        ..Default::default()
    }
}

/// `ssh-keygen -L` of the certificate the box saw, from `$SSH_USER_AUTH`
/// (`publickey <type> <base64>`, `ExposeAuthInfo`).
fn certificate_seen_by_box(dir: &Path, auth_info: &str) -> String {
    let line = auth_info
        .lines()
        .find(|l| l.starts_with("publickey ssh-ed25519-cert-v01@openssh.com "))
        .unwrap_or_else(|| panic!("the box saw no certificate: {auth_info:?}"));
    let cert = dir.join("seen-cert.pub");
    fs::write(&cert, line.trim_start_matches("publickey ")).expect("cert");
    let out = run(
        Command::new("ssh-keygen").arg("-L").arg("-f").arg(&cert),
        Input::Null,
        SSH_TIMEOUT,
    );
    out.assert_ok();
    out.stdout
}

/// The `SHA256:…` of a public key line, as `ssh-keygen -l` prints it.
fn fingerprint_of(file: &Path) -> String {
    let out = run(
        Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(file),
        Input::Null,
        SSH_TIMEOUT,
    );
    out.assert_ok();
    out.stdout
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_owned()
}

#[test]
fn a_box_trusting_the_user_ca_accepts_the_minted_login_and_logs_its_route() {
    let dir = temp_dir();
    let ca = Key::generate(dir.path(), "user_ca");
    let client = Key::generate(dir.path(), "alice");
    let b = ca_box("cert-ws", &ca, None);
    let gw = Gateway::spawn_with(&with_ca(&ca, ""), &cert_route(&b, &client, ""));

    let out = gw.ssh(
        &client,
        &["127.0.0.1", "echo $BOX; id -un; cat $SSH_USER_AUTH"],
    );
    out.assert_ok();
    assert!(out.stdout.starts_with("cert-ws\nroot\n"), "{out:?}");
    let cert = certificate_seen_by_box(dir.path(), &out.stdout);
    let client_fp = fingerprint_of(&client.path.with_extension("pub"));
    let ca_fp = fingerprint_of(&ca.path.with_extension("pub"));
    assert!(
        cert.contains("Type: ssh-ed25519-cert-v01@openssh.com user certificate"),
        "{cert}"
    );
    assert!(
        cert.contains(&format!("Signing CA: ED25519 {ca_fp}")),
        "{cert}"
    );
    let key_id = format!("Key ID: \"switchboard route=cert-ws key={client_fp} conn=");
    assert!(cert.contains(&key_id), "{cert}");
    assert!(
        cert.contains("Principals: \n                root\n"),
        "{cert}"
    );
    for ext in [
        "permit-pty",
        "permit-user-rc",
        "permit-port-forwarding",
        "permit-agent-forwarding",
    ] {
        assert!(cert.contains(ext), "{ext}: {cert}");
    }
    // Valid for minutes: "Valid: from 2026-…T18:00:00 to 2026-…T18:06:00".
    let valid = cert
        .lines()
        .find(|l| l.trim_start().starts_with("Valid: from "))
        .expect("validity");
    assert!(!valid.contains("forever"), "{valid}");

    // The box's own log names the route, the client key and the CA.
    let log = b.log();
    let accepted = log
        .lines()
        .find(|l| l.contains("Accepted publickey for root") && l.contains("ED25519-CERT"))
        .unwrap_or_else(|| panic!("no certificate login in the box's log:\n{log}"));
    assert!(
        accepted.contains("ID switchboard route=cert-ws key=SHA256:"),
        "{accepted}"
    );
    assert!(accepted.contains(&client_fp), "{accepted}");
    assert!(accepted.contains(&ca_fp), "{accepted}");

    // Each login gets its own key and serial.
    let again = gw.ssh(&client, &["127.0.0.1", "cat $SSH_USER_AUTH"]);
    again.assert_ok();
    let second = certificate_seen_by_box(dir.path(), &again.stdout);
    let serial = |c: &str| {
        c.lines()
            .find(|l| l.trim_start().starts_with("Serial: "))
            .map(str::to_owned)
    };
    assert_ne!(serial(&cert), serial(&second));
    assert_ne!(
        cert.lines().nth(2),
        second.lines().nth(2),
        "a fresh public key per login"
    );

    // The CA key never reaches the gateway's log.
    let gateway_log = gw.log();
    for line in ca
        .private_lines()
        .iter()
        .filter(|l| !l.starts_with("-----"))
    {
        assert!(
            !gateway_log.contains(line.as_str()),
            "CA key material in the log"
        );
    }
    assert!(
        gateway_log.contains("minted a login certificate"),
        "{gateway_log}"
    );
}

#[test]
fn ecdsa_and_rsa_user_cas_sign_logins_too() {
    let dir = temp_dir();
    let client = Key::generate(dir.path(), "alice");
    for kind in ["ecdsa", "rsa"] {
        let path = dir.path().join(format!("user_ca_{kind}"));
        run(
            Command::new("ssh-keygen")
                .args(["-q", "-t", kind, "-N", "", "-C", kind, "-f"])
                .arg(&path),
            Input::Null,
            SSH_TIMEOUT,
        )
        .assert_ok();
        let ca = Key {
            public: fs::read_to_string(path.with_extension("pub")).expect("pub"),
            path,
        };
        let b = ca_box(&format!("{kind}-ws"), &ca, None);
        let gw = Gateway::start_with(&with_ca(&ca, ""), &cert_route(&b, &client, ""));
        let out = gw.ssh(&client, &["127.0.0.1", "echo $BOX"]);
        out.assert_ok();
        assert_eq!(out.stdout.trim(), format!("{kind}-ws"));
    }
}

#[test]
fn the_minted_certificate_follows_the_route_forwarding_policy() {
    let dir = temp_dir();
    let ca = Key::generate(dir.path(), "user_ca");
    let client = Key::generate(dir.path(), "alice");
    let b = ca_box("closed-ws", &ca, None);
    let routes = cert_route(
        &b,
        &client,
        "[route.forwarding]\nlocal = false\nremote = false\nagent = false\n",
    );
    let gw = Gateway::start_with(&with_ca(&ca, ""), &routes);
    let out = gw.ssh(&client, &["127.0.0.1", "cat $SSH_USER_AUTH"]);
    out.assert_ok();
    let cert = certificate_seen_by_box(dir.path(), &out.stdout);
    assert!(cert.contains("permit-pty"), "{cert}");
    assert!(!cert.contains("permit-port-forwarding"), "{cert}");
    assert!(!cert.contains("permit-agent-forwarding"), "{cert}");
    assert!(!cert.contains("permit-X11-forwarding"), "{cert}");
    // And the gateway refuses the forward before the box is asked.
    let echo = echo_server();
    let out = run(
        ssh_command(gw.port, &client.path).args([
            "-o",
            "ExitOnForwardFailure=yes",
            "-W",
            &format!("127.0.0.1:{echo}"),
            "127.0.0.1",
        ]),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert!(!out.success(), "{out:?}");
    assert!(out.stderr.contains("stdio forwarding failed"), "{out:?}");
}

#[test]
fn the_typed_user_cannot_choose_the_certificate_principal() {
    // The box trusts the CA for every user; the route's user is root. A
    // client typing another user must not get a certificate for it.
    let dir = temp_dir();
    let ca = Key::generate(dir.path(), "user_ca");
    let client = Key::generate(dir.path(), "alice");
    let b = ca_box("cert-ws", &ca, None);
    let gw = Gateway::start_with(&with_ca(&ca, ""), &cert_route(&b, &client, ""));
    let out = gw.ssh(&client, &["nobody@cert-ws@127.0.0.1", "id -un"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("switchboard: cert-ws refused login as nobody"),
        "{out:?}"
    );
    // The route's own user still logs in, with the route as a principal.
    let out = gw.ssh(&client, &["root@cert-ws@127.0.0.1", "cat $SSH_USER_AUTH"]);
    out.assert_ok();
    let cert = certificate_seen_by_box(dir.path(), &out.stdout);
    assert!(cert.contains("switchboard-route:cert-ws"), "{cert}");
}

#[test]
fn a_box_that_does_not_trust_the_ca_refuses_and_the_user_is_told() {
    let dir = temp_dir();
    let ca = Key::generate(dir.path(), "user_ca");
    let other = Key::generate(dir.path(), "other_ca");
    let client = Key::generate(dir.path(), "alice");
    let b = ca_box("other-ws", &other, None);
    let gw = Gateway::start_with(&with_ca(&ca, ""), &cert_route(&b, &client, ""));
    let out = gw.ssh(&client, &["127.0.0.1", "true"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("switchboard: other-ws refused login as root"),
        "{out:?}"
    );
}

#[test]
fn user_ca_prints_the_line_boxes_trust() {
    let dir = temp_dir();
    let ca = Key::generate(dir.path(), "user_ca");
    let gw = Gateway::start_with(&with_ca(&ca, ""), "");
    let out = gw.subcommand("user-ca");
    out.assert_ok();
    let line = out.stdout.trim();
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    let expected = fs::read_to_string(ca.path.with_extension("pub")).expect("ca.pub");
    let expected: Vec<&str> = expected.split_whitespace().take(2).collect();
    assert!(
        line.starts_with(&expected.join(" ")),
        "{line} vs {expected:?}"
    );
    let file = dir.path().join("switchboard_user_ca.pub");
    fs::write(&file, format!("{line}\n")).expect("write");
    assert_eq!(
        fingerprint_of(&file),
        fingerprint_of(&ca.path.with_extension("pub"))
    );
    for secret in ca
        .private_lines()
        .iter()
        .filter(|l| !l.starts_with("-----"))
    {
        assert!(!out.all().contains(secret.as_str()));
    }
    // `check` names the CA by fingerprint.
    let out = gw.subcommand("check");
    out.assert_ok();
    let ca_fp = fingerprint_of(&ca.path.with_extension("pub"));
    assert!(
        out.stdout.contains(&format!("user CA:  {ca_fp}")),
        "{out:?}"
    );

    // Without a CA configured, it says what to set.
    let bare = Gateway::start("");
    let out = bare.subcommand("user-ca");
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("upstream.user_ca_key_file is not set"),
        "{out:?}"
    );
}

#[test]
fn a_certificate_route_without_a_user_ca_is_refused_by_name() {
    let dir = temp_dir();
    let client = Key::generate(dir.path(), "alice");
    let plain = SshdBox::start("plain-ws");
    let b = ca_box("cert-ws", &Key::generate(dir.path(), "ca"), None);
    let routes = format!(
        "{}{}",
        plain.route(&[&client]).to_toml(),
        cert_route(&b, &client, "")
    );
    let gw = Gateway::spawn(&routes);
    // `check` lists it as a problem naming the route and the setting.
    let out = gw.subcommand("check");
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr
            .contains("route \"cert-ws\": login = \"certificate\" needs the gateway's user CA")
            && out.stderr.contains("upstream.user_ca_key_file is not set"),
        "{out:?}"
    );
    // `serve` skips it with that error, and serves the other route.
    let log = gw.log();
    assert!(
        log.contains("route \"cert-ws\": login = \"certificate\" needs the gateway's user CA")
            && log.contains("route skipped"),
        "{log}"
    );
    let out = gw.ssh(&client, &["root@plain-ws@127.0.0.1", "echo $BOX"]);
    out.assert_ok();
    // The skipped route looks like any name that is not a route.
    let out = gw.ssh(&client, &["root@cert-ws@127.0.0.1", "echo $BOX"]);
    assert!(!out.success(), "{out:?}");
    assert!(
        out.stderr.contains("Permission denied (publickey)"),
        "{out:?}"
    );
}

#[test]
fn an_unusable_user_ca_file_stops_the_start_with_a_clear_error() {
    let dir = temp_dir();
    let ca = Key::generate(dir.path(), "user_ca");
    // Readable by every user.
    fs::set_permissions(&ca.path, fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = Gateway::try_spawn(&with_ca(&ca, ""), "")
        .err()
        .expect("refused");
    assert!(
        err.contains("upstream.user_ca_key_file")
            && err.contains("is readable by every user (mode 0644)")
            && err.contains("chmod 600"),
        "{err}"
    );
    for secret in ca
        .private_lines()
        .iter()
        .filter(|l| !l.starts_with("-----"))
    {
        assert!(
            !err.contains(secret.as_str()),
            "CA key material in the error"
        );
    }
    // Readable by its group: warned about, and used.
    fs::set_permissions(&ca.path, fs::Permissions::from_mode(0o640)).expect("chmod");
    let gw = Gateway::spawn_with(&with_ca(&ca, ""), "");
    let out = gw.subcommand("check");
    out.assert_ok();
    assert!(
        out.stdout
            .contains("upstream.user_ca_key_file: UNPROTECTED KEY FILE"),
        "{out:?}"
    );
    assert!(gw.log().contains("UNPROTECTED KEY FILE"), "{}", gw.log());
    drop(gw);
    // Missing.
    let missing = Key {
        path: dir.path().join("nope"),
        public: String::new(),
    };
    let err = Gateway::try_spawn(&with_ca(&missing, ""), "")
        .err()
        .expect("refused");
    assert!(
        err.contains("upstream.user_ca_key_file: cannot read") && err.contains("nope"),
        "{err}"
    );
    // Not a private key.
    let public = Key {
        path: ca.path.with_extension("pub"),
        public: String::new(),
    };
    fs::set_permissions(&public.path, fs::Permissions::from_mode(0o600)).expect("chmod");
    let err = Gateway::try_spawn(&with_ca(&public, ""), "")
        .err()
        .expect("refused");
    assert!(err.contains("is not a private key"), "{err}");
}

// ---------------------------------------------------------------------------
// Host certificates
// ---------------------------------------------------------------------------

/// A key-mode route to `b` for `client` with the box's identity, and `extra`.
fn key_route(b: &SshdBox, client: &Key, extra: &str) -> String {
    let mut r = b.route(&[client]).to_toml();
    r.push_str(extra);
    r.push('\n');
    r
}

/// `trusted_host_cas = ["<line>"]`.
fn trusting(ca: &Key) -> String {
    format!("trusted_host_cas = [{}]\n", toml_str(&ca.public))
}

/// A key-mode box whose host key `host_ca` signed for `principals`.
fn certified_box(name: &str, host_ca: &Key, principals: &str) -> SshdBox {
    SshdBox::start_with(
        name,
        BoxOptions {
            host_certificate: Some((host_ca.path.clone(), principals.to_owned())),
            ..Default::default()
        },
    )
}

#[test]
fn a_host_certificate_from_a_trusted_host_ca_is_accepted_instead_of_first_use() {
    let dir = temp_dir();
    let host_ca = Key::generate(dir.path(), "host_ca");
    let client = Key::generate(dir.path(), "alice");
    let by_address = certified_box("addr-ws", &host_ca, "127.0.0.1");
    let by_name = certified_box("name-ws", &host_ca, "name-ws,other");
    let routes = format!(
        "{}{}",
        key_route(&by_address, &client, ""),
        key_route(&by_name, &client, "")
    );
    // Even where every other box must be pinned.
    let cfg = GatewayConfig {
        upstream_extra: format!(
            "{}host_key_policy = \"require-pinned\"\n",
            trusting(&host_ca)
        ),
        ..Default::default()
    };
    let gw = Gateway::spawn_with(&cfg, &routes);
    for b in [&by_address, &by_name] {
        let out = gw.ssh(
            &client,
            &[&format!("root@{}@127.0.0.1", b.name), "echo $BOX"],
        );
        out.assert_ok();
        assert_eq!(out.stdout.trim(), b.name);
    }
    let log = gw.log();
    assert!(log.contains("host_key_trust=\"host-ca\""), "{log}");
}

/// What the user sees when the box's host key is not certified.
fn untrusted(route: &str) -> String {
    format!("switchboard: {route} presented a host key that no trusted host CA certifies")
}

#[test]
fn a_box_without_a_valid_host_certificate_is_refused_when_host_cas_are_trusted() {
    let dir = temp_dir();
    let host_ca = Key::generate(dir.path(), "host_ca");
    let other_ca = Key::generate(dir.path(), "other_ca");
    let client = Key::generate(dir.path(), "alice");
    let foreign = certified_box("foreign-ws", &other_ca, "127.0.0.1");
    let plain = SshdBox::start("plain-ws");
    let elsewhere = certified_box("elsewhere-ws", &host_ca, "10.9.9.9,some-other-box");
    let routes: String = [&foreign, &plain, &elsewhere]
        .iter()
        .map(|b| key_route(b, &client, ""))
        .collect();
    let cfg = GatewayConfig {
        upstream_extra: trusting(&host_ca),
        ..Default::default()
    };
    let gw = Gateway::spawn_with(&cfg, &routes);
    for b in [&foreign, &plain, &elsewhere] {
        let out = gw.ssh(
            &client,
            &[&format!("root@{}@127.0.0.1", b.name), "echo $BOX"],
        );
        assert_eq!(out.code, Some(1), "{}: {out:?}", b.name);
        assert!(
            out.stderr.contains(&untrusted(&b.name)),
            "{}: {out:?}",
            b.name
        );
        assert!(!out.stdout.contains(&b.name), "{out:?}");
    }
    let log = gw.log();
    for why in [
        "a host certificate signed by a CA that is not trusted for this box",
        "a plain key, where a host certificate is required",
        "a host certificate that names neither the box's address nor its route",
    ] {
        assert!(log.contains(why), "{why}: {log}");
    }
}

#[test]
fn route_host_cas_replace_the_global_ones_and_a_pin_bypasses_them() {
    let dir = temp_dir();
    let global_ca = Key::generate(dir.path(), "global_ca");
    let team_ca = Key::generate(dir.path(), "team_ca");
    let client = Key::generate(dir.path(), "alice");
    let team = certified_box("team-ws", &team_ca, "team-ws");
    let pinned = SshdBox::start("pinned-ws");
    let global_only = certified_box("global-ws", &global_ca, "global-ws");
    let routes = format!(
        "{}{}{}",
        key_route(&team, &client, &trusting(&team_ca)),
        key_route(
            &pinned,
            &client,
            &format!("host_key = {}", toml_str(&pinned.host_key()))
        ),
        // This route trusts only the team CA: the global one no longer counts.
        key_route(&global_only, &client, &trusting(&team_ca)),
    );
    let cfg = GatewayConfig {
        upstream_extra: trusting(&global_ca),
        ..Default::default()
    };
    let gw = Gateway::start_with(&cfg, &routes);
    for b in [&team, &pinned] {
        let out = gw.ssh(
            &client,
            &[&format!("root@{}@127.0.0.1", b.name), "echo $BOX"],
        );
        out.assert_ok();
        assert_eq!(out.stdout.trim(), b.name);
    }
    let out = gw.ssh(&client, &["root@global-ws@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains(&untrusted("global-ws")), "{out:?}");
}

#[test]
fn certificates_both_ways_need_no_key_of_any_box() {
    let dir = temp_dir();
    let user_ca = Key::generate(dir.path(), "user_ca");
    let host_ca = Key::generate(dir.path(), "host_ca");
    let client = Key::generate(dir.path(), "alice");
    let b = ca_box("both-ws", &user_ca, Some((&host_ca, "both-ws")));
    let gw = Gateway::start_with(
        &with_ca(&user_ca, &trusting(&host_ca)),
        &cert_route(&b, &client, ""),
    );
    let out = gw.ssh(&client, &["127.0.0.1", "echo $BOX"]);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "both-ws");
}

// ---------------------------------------------------------------------------
// Kubernetes: SSHRoutes with login: certificate, and no Secret read at all
// ---------------------------------------------------------------------------

#[cfg(feature = "kubernetes")]
mod kube_fake;

#[cfg(feature = "kubernetes")]
#[test]
fn sshroutes_with_certificate_logins_need_no_secret_read() {
    use kube_fake::FakeApi;
    use kube_fake::fixtures::*;
    use serde_json::json;

    let api = FakeApi::start();
    let dir = temp_dir();
    let ca = Key::generate(dir.path(), "user_ca");
    let user = Key::generate(dir.path(), "user");
    let b = ca_box("web", &ca, None);
    let spec = |extra: serde_json::Value| {
        let mut spec = json!({"backend": {"podSelector": {"matchLabels": {"app": "web"}}, "port": b.port},
                              "user": "root", "authorizedKeys": [user.public], "login": "certificate"});
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        spec
    };
    api.put(
        "sshroutes",
        json!({"metadata": {"name": "web", "namespace": "team"}, "spec": spec(json!({}))}),
    );
    // A route that still names a Secret: degraded, and its status says why.
    api.put(
        "sshroutes",
        json!({"metadata": {"name": "keyed", "namespace": "team"},
               "spec": spec(json!({"authorizedKeysSecretRef": {"name": "k", "key": "authorized_keys"}}))}),
    );
    api.put(
        "pods",
        pod("team", "web-0", json!({"app": "web"}), None, true),
    );
    let raw = raw_config(
        &api,
        dir.path(),
        "default",
        &format!("{CRD_ON_LOOPBACK}read_secrets = false\n"),
    )
    .replace(
        "[upstream]\n",
        &format!(
            "[upstream]\nuser_ca_key_file = {}\n",
            toml_str(&ca.path.display().to_string())
        ),
    );
    let cfg = GatewayConfig {
        raw: Some(raw),
        ..Default::default()
    };
    let gw = Gateway::start_with(&cfg, "");
    let out = gw.ssh(
        &user,
        &["root@web.team@127.0.0.1", "echo $BOX; cat $SSH_USER_AUTH"],
    );
    out.assert_ok();
    assert!(out.stdout.starts_with("web\n"), "{out:?}");
    let cert = certificate_seen_by_box(dir.path(), &out.stdout);
    assert!(cert.contains("route=web.team"), "{cert}");
    assert!(
        b.log().contains("ID switchboard route=web.team"),
        "{}",
        b.log()
    );
    let keyed_status = || {
        api.patches()
            .into_iter()
            .filter(|(path, ..)| path.ends_with("/sshroutes/keyed/status"))
            .map(|(_, _, body)| body["status"]["conditions"][0].clone())
            .next_back()
    };
    assert!(eventually(Duration::from_secs(20), || keyed_status()
        .is_some_and(|c| c["reason"] == "SecretMissing"
            && c["message"]
                .as_str()
                .is_some_and(|m| m.contains("read_secrets = false")))));
    let secret_requests: Vec<String> = api
        .requests()
        .into_iter()
        .filter(|r| r.contains("secrets"))
        .collect();
    assert!(secret_requests.is_empty(), "{secret_requests:?}");
}
