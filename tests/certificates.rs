//! OpenSSH user certificates in (README "User certificates"), end to end
//! with the real `ssh-keygen -s` and `ssh -o CertificateFile=…` through the
//! gateway to real sshd boxes: routing by principal, a target picking among
//! routes, per-route `cert-authority` lines, every refusal looking exactly
//! like an unknown key (agent-mode fallback included), revocation reloaded
//! live, extensions narrowing forwarding, and the key ID and serial in the
//! audit events.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::agent::{Agent, ssh_with_agent};
use common::*;

/// A CA key pair of `kind` (`ed25519`, `ecdsa`) made by `ssh-keygen`.
fn ca(dir: &Path, name: &str, kind: &str) -> Key {
    let path = dir.join(name);
    run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C", name, "-f"])
            .arg(&path),
        Input::Null,
        Duration::from_secs(20),
    )
    .assert_ok();
    let public = fs::read_to_string(format!("{}.pub", path.display())).expect("CA public key");
    Key {
        path,
        public: public.trim().to_owned(),
    }
}

/// `ssh-keygen -s CA -I ID ARGS` over a copy of `user`'s public key named
/// `name`; returns the certificate file (never `<key>-cert.pub`, which ssh
/// would pick up by itself).
fn sign(ca: &Key, user: &Key, name: &str, id: &str, args: &[&str]) -> PathBuf {
    let dir = user.path.parent().expect("key dir");
    let public = dir.join(format!("{name}.pub"));
    fs::copy(format!("{}.pub", user.path.display()), &public).expect("copy public key");
    let out = run(
        Command::new("ssh-keygen")
            .arg("-q")
            .arg("-s")
            .arg(&ca.path)
            .args(["-I", id])
            .args(args)
            .arg(&public),
        Input::Null,
        Duration::from_secs(20),
    );
    out.assert_ok();
    dir.join(format!("{name}-cert.pub"))
}

/// `ssh` with `key` and the certificate `cert`.
fn ssh_cert(port: u16, key: &Key, cert: &Path, args: &[&str]) -> Output {
    run(
        ssh_command(port, &key.path)
            .arg("-o")
            .arg(format!("CertificateFile={}", cert.display()))
            .env_remove("SSH_AUTH_SOCK")
            .args(args),
        Input::Null,
        SSH_TIMEOUT,
    )
}

/// A route of `b` (login as root with its identity) that accepts
/// certificates naming one of `principals`, and `keys` as lines.
fn route(b: &SshdBox, principals: &[&str], keys: &[String]) -> String {
    let mut r = b.route(&[]);
    r.keys = keys.to_vec();
    let list: Vec<String> = principals.iter().map(|p| toml_str(p)).collect();
    r.to_toml().replacen(
        "[[route]]\n",
        &format!("[[route]]\nprincipals = [{}]\n", list.join(", ")),
        1,
    )
}

/// `[server]` lines trusting `cas` and reading `revoked`.
fn trusting(cas: &[&Key], revoked: Option<&Path>) -> String {
    let list: Vec<String> = cas.iter().map(|k| toml_str(&k.public)).collect();
    let mut s = format!("trusted_user_ca_keys = [{}]\n", list.join(", "));
    if let Some(path) = revoked {
        s += &format!(
            "revoked_keys_file = {}\n",
            toml_str(&path.display().to_string())
        );
    }
    s
}

#[test]
fn certificates_route_by_principal_and_a_target_picks_among_routes() {
    let dir = temp_dir();
    let user = Key::generate(dir.path(), "user");
    let ed = ca(dir.path(), "ca-ed25519", "ed25519");
    let ecdsa = ca(dir.path(), "ca-ecdsa", "ecdsa");
    let rsa = ca(dir.path(), "ca-rsa", "rsa");
    let a = SshdBox::start("a-ws");
    let b = SshdBox::start("b-ws");
    let routes = route(&a, &["alice"], &[]) + &route(&b, &["alice", "bob"], &[]);
    let cfg = GatewayConfig {
        log_format: "json".into(),
        server_extra: trusting(&[&ed, &ecdsa, &rsa], None),
        ..Default::default()
    };
    let gw = Gateway::spawn_with(&cfg, &routes);

    // bob opens b-ws only: no target needed.
    let bob = sign(
        &ed,
        &user,
        "bob",
        "bob@laptop",
        &["-n", "bob", "-z", "7", "-V", "-5m:+1h"],
    );
    let out = ssh_cert(
        gw.port,
        &user,
        &bob,
        &["anyone@127.0.0.1", "echo $BOX; whoami"],
    );
    assert_eq!(out.assert_ok().stdout, "b-ws\nroot\n", "{out:?}");

    // alice opens both: without a target she is told how to name each …
    let alice = sign(
        &ecdsa,
        &user,
        "alice",
        "alice@laptop",
        &["-n", "alice", "-z", "8"],
    );
    let out = ssh_cert(gw.port, &user, &alice, &["anyone@127.0.0.1", "true"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let told = out.all();
    assert!(told.contains("a-ws") && told.contains("b-ws"), "{out:?}");
    // … and the target in the username picks one.
    for name in ["a-ws", "b-ws"] {
        let out = ssh_cert(
            gw.port,
            &user,
            &alice,
            &[&format!("root@{name}@127.0.0.1"), "echo $BOX"],
        );
        assert_eq!(out.assert_ok().stdout, format!("{name}\n"), "{out:?}");
    }

    // An RSA CA (rsa-sha2-512 signature) works alike.
    let by_rsa = sign(&rsa, &user, "bob-rsa", "bob@rsa", &["-n", "bob"]);
    let out = ssh_cert(gw.port, &user, &by_rsa, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "b-ws\n", "{out:?}");
    // Signed with SHA-1 (`-t ssh-rsa`): refused, as OpenSSH's
    // CASignatureAlgorithms does; the key alone is unknown.
    let sha1 = sign(
        &rsa,
        &user,
        "bob-sha1",
        "bob@sha1",
        &["-n", "bob", "-t", "ssh-rsa"],
    );
    let out = ssh_cert(gw.port, &user, &sha1, &["anyone@127.0.0.1", "echo $BOX"]);
    assert!(!out.success(), "{out:?}");
    assert!(
        out.stderr.contains("Permission denied (publickey)"),
        "{out:?}"
    );

    // A live session lists its certificate in the sessions API.
    let mut live = Bg::spawn(
        ssh_command(gw.port, &user.path)
            .arg("-o")
            .arg(format!("CertificateFile={}", bob.display()))
            .args(["anyone@127.0.0.1", "sleep 20"]),
    );
    let listed = eventually(Duration::from_secs(10), || {
        let (status, body) = gw.admin_get("/sessions");
        status == 200 && body.contains("\"cert_key_id\":\"bob@laptop\",\"cert_serial\":7")
    });
    assert!(listed, "{:?}", gw.admin_get("/sessions"));
    assert!(live.is_running());
    drop(live);

    // The bare key opens nothing.
    let out = gw.ssh(&user, &["anyone@127.0.0.1", "true"]);
    assert!(
        out.stderr.contains("Permission denied (publickey)"),
        "{out:?}"
    );

    // The key ID and serial are in the audit events and the span.
    let with_cert = |action: &str, id: &str, serial: u64| {
        gw.audit(action)
            .iter()
            .any(|e| e["cert.key_id"] == id && e["cert.serial"] == serial)
    };
    assert!(
        eventually(Duration::from_secs(5), || with_cert(
            "session_end",
            "bob@laptop",
            7
        ) && with_cert(
            "session_end",
            "alice@laptop",
            8
        )),
        "no session_end with the certificate:\n{}",
        gw.log()
    );
    assert!(with_cert("session_start", "bob@laptop", 7), "{}", gw.log());
    let start = gw.audit("session_start");
    assert!(
        start.iter().any(|e| e["cert.ca_fingerprint"]
            .as_str()
            .is_some_and(|f| f.starts_with("SHA256:"))),
        "{start:?}"
    );
    let in_span = gw
        .json_log()
        .iter()
        .any(|l| l["target"] != "audit" && l["span"]["cert.key_id"] == "bob@laptop");
    assert!(in_span, "no log line in a span with the key ID");
}

#[test]
fn refused_certificates_look_exactly_like_an_unknown_key() {
    let dir = temp_dir();
    let user = Key::generate(dir.path(), "user");
    let stranger = Key::generate(dir.path(), "stranger");
    let trusted = ca(dir.path(), "ca", "ed25519");
    let other = ca(dir.path(), "other-ca", "ed25519");
    let revoked = dir.path().join("revoked.txt");
    fs::write(
        &revoked,
        "# ssh-keygen -k text\nserial: 13\nid: stolen-laptop\n",
    )
    .expect("revoked");
    let a = SshdBox::start("a-ws");
    let cfg = GatewayConfig {
        // Two failures a certificate (it, then its bare key): no penalty.
        server_extra: trusting(&[&trusted], Some(&revoked)) + "per_source_penalty = \"0s\"\n",
        ..Default::default()
    };
    let gw = Gateway::start_with(&cfg, &route(&a, &["alice"], &[]));
    let unknown = gw.ssh(&stranger, &["anyone@127.0.0.1", "true"]);
    assert_eq!(unknown.code, Some(255), "{unknown:?}");
    assert!(
        unknown.stderr.contains("Permission denied (publickey)"),
        "{unknown:?}"
    );

    let alice = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["-n".to_owned(), "alice".to_owned()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all
    };
    let cases: Vec<(&str, &Key, Vec<String>)> = vec![
        ("expired", &trusted, alice(&["-V", "20200101:20200102"])),
        ("not-yet-valid", &trusted, alice(&["-V", "+1d:+2d"])),
        ("other-ca", &other, alice(&[])),
        ("host-type", &trusted, alice(&["-h"])),
        (
            "source-address",
            &trusted,
            alice(&["-O", "source-address=10.9.9.9/32"]),
        ),
        (
            "unknown-critical",
            &trusted,
            alice(&["-O", "critical:foo=bar"]),
        ),
        (
            "force-command",
            &trusted,
            alice(&["-O", "force-command=/bin/true"]),
        ),
        ("revoked-serial", &trusted, alice(&["-z", "13"])),
        (
            "wrong-principal",
            &trusted,
            vec!["-n".into(), "mallory".into()],
        ),
    ];
    let revoked_id = sign(
        &trusted,
        &user,
        "revoked-id",
        "stolen-laptop",
        &["-n", "alice"],
    );
    let mut certs: Vec<(&str, PathBuf)> = cases
        .iter()
        .map(|(name, ca, args)| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            (*name, sign(ca, &user, name, "alice@laptop", &args))
        })
        .collect();
    certs.push(("revoked-id", revoked_id));
    for (name, cert) in &certs {
        let out = ssh_cert(gw.port, &user, cert, &["anyone@127.0.0.1", "true"]);
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (
                unknown.code,
                unknown.stdout.as_str(),
                unknown.stderr.as_str()
            ),
            "{name}: {out:?}"
        );
    }
    // A source-address that lists the client is fine.
    let near = sign(
        &trusted,
        &user,
        "near",
        "alice@laptop",
        &[
            "-n",
            "alice",
            "-O",
            "source-address=10.9.9.9/32,127.0.0.0/8",
        ],
    );
    let out = ssh_cert(gw.port, &user, &near, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "a-ws\n", "{out:?}");

    // Revocation is re-read while running: serial 14 works, then not.
    let fourteen = sign(
        &trusted,
        &user,
        "fourteen",
        "alice@laptop",
        &["-n", "alice", "-z", "14"],
    );
    ssh_cert(gw.port, &user, &fourteen, &["anyone@127.0.0.1", "true"]).assert_ok();
    fs::write(&revoked, "serial: 13-14\nid: stolen-laptop\n").expect("revoke 14");
    assert!(
        eventually(Duration::from_secs(10), || {
            ssh_cert(gw.port, &user, &fourteen, &["anyone@127.0.0.1", "true"]).code == Some(255)
        }),
        "serial 14 still admitted after the revocation list changed"
    );
}

#[test]
fn a_refused_certificate_falls_back_to_agent_mode_like_an_unknown_key() {
    let dir = temp_dir();
    let user = Key::generate(dir.path(), "user");
    let stranger = Key::generate(dir.path(), "stranger");
    let trusted = ca(dir.path(), "ca", "ed25519");
    let a = SshdBox::start("a-ws");
    let cfg = GatewayConfig {
        agent_login: true,
        server_extra: trusting(&[&trusted], None),
        ..Default::default()
    };
    let gw = Gateway::start_with(&cfg, &route(&a, &["alice"], &[]));
    let expired = sign(
        &trusted,
        &user,
        "expired",
        "alice@laptop",
        &["-n", "alice", "-V", "20200101:20200102"],
    );
    let mallory = sign(
        &trusted,
        &user,
        "mallory",
        "mallory@laptop",
        &["-n", "mallory"],
    );
    for target in ["root@a-ws@127.0.0.1", "root@nope@127.0.0.1"] {
        let unknown = gw.ssh(&stranger, &[target, "true"]);
        assert_eq!(unknown.code, Some(1), "{unknown:?}");
        assert!(unknown.stderr.contains("not registered"), "{unknown:?}");
        for cert in [&expired, &mallory] {
            let out = ssh_cert(gw.port, &user, cert, &[target, "true"]);
            assert_eq!(
                (out.code, out.stderr.replace("nope", "a-ws")),
                (unknown.code, unknown.stderr.replace("nope", "a-ws")),
                "{target} {}: {out:?}",
                cert.display()
            );
        }
    }
}

#[test]
fn a_cert_authority_line_in_a_route_admits_its_principals() {
    let dir = temp_dir();
    let user = Key::generate(dir.path(), "user");
    let route_ca = ca(dir.path(), "route-ca", "ed25519");
    let other = ca(dir.path(), "other-ca", "ed25519");
    let c = SshdBox::start("c-ws");
    let line = format!(
        "cert-authority,principals=\"carol,cat\" {}",
        route_ca.public
    );
    // No gateway-wide CA at all: the route's own line is the trust.
    let gw = Gateway::start(&route(&c, &[], &[line]));
    let carol = sign(&route_ca, &user, "carol", "carol@laptop", &["-n", "carol"]);
    let out = ssh_cert(gw.port, &user, &carol, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "c-ws\n", "{out:?}");
    let out = ssh_cert(
        gw.port,
        &user,
        &carol,
        &["root@c-ws@127.0.0.1", "echo $BOX"],
    );
    assert_eq!(out.assert_ok().stdout, "c-ws\n", "{out:?}");
    for cert in [
        sign(&route_ca, &user, "dave", "dave@laptop", &["-n", "dave"]),
        sign(
            &other,
            &user,
            "carol-other",
            "carol@laptop",
            &["-n", "carol"],
        ),
    ] {
        let out = ssh_cert(gw.port, &user, &cert, &["anyone@127.0.0.1", "true"]);
        assert!(
            out.code == Some(255) && out.stderr.contains("Permission denied (publickey)"),
            "{}: {out:?}",
            cert.display()
        );
    }
}

#[test]
fn certificate_extensions_narrow_forwarding_and_pty() {
    let dir = temp_dir();
    let user = Key::generate(dir.path(), "user");
    let trusted = ca(dir.path(), "ca", "ed25519");
    let a = SshdBox::start("a-ws");
    let cfg = GatewayConfig {
        server_extra: trusting(&[&trusted], None),
        ..Default::default()
    };
    let gw = Gateway::start_with(&cfg, &route(&a, &["alice"], &[]));
    let full = sign(&trusted, &user, "full", "alice@laptop", &["-n", "alice"]);
    let narrow = sign(
        &trusted,
        &user,
        "narrow",
        "alice@laptop",
        &["-n", "alice", "-O", "no-port-forwarding", "-O", "no-pty"],
    );
    let forward = |cert: &Path| {
        run(
            ssh_at("INFO", gw.port, &user)
                .arg("-o")
                .arg(format!("CertificateFile={}", cert.display()))
                .args(["-W", &format!("127.0.0.1:{}", a.port), "anyone@127.0.0.1"]),
            Input::Null,
            Duration::from_secs(10),
        )
    };
    // With permit-port-forwarding the box's sshd answers through -W.
    let out = forward(&full);
    assert!(out.stdout.starts_with("SSH-2.0-OpenSSH"), "{out:?}");
    // Without it, the forward is refused as the route switches refuse it.
    let out = forward(&narrow);
    assert!(
        out.stderr.contains("administratively prohibited"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("SSH-2.0"), "{out:?}");
    // -L: the forward listens, but its channel is refused.
    let echo = echo_server();
    let mut done = false;
    for _attempt in 0..5 {
        let lport = free_port();
        let mut fwd = Bg::spawn(
            ssh_at("INFO", gw.port, &user)
                .arg("-o")
                .arg(format!("CertificateFile={}", narrow.display()))
                .args(["-N", "-L", &format!("127.0.0.1:{lport}:127.0.0.1:{echo}")])
                .arg("anyone@127.0.0.1"),
        );
        let listening = eventually(Duration::from_secs(15), || {
            !fwd.is_running() || TcpStream::connect(("127.0.0.1", lport)).is_ok()
        });
        if !fwd.is_running() {
            continue; // the local port was taken under us
        }
        assert!(listening, "ssh -L never listened: {}", fwd.stderr());
        let mut conn = TcpStream::connect(("127.0.0.1", lport)).expect("connect -L");
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let _ = conn.write_all(b"ping\n");
        let mut got = Vec::new();
        let _ = conn.read_to_end(&mut got);
        assert!(
            got.is_empty(),
            "data came back through a refused -L: {got:?}"
        );
        let refused = eventually(Duration::from_secs(10), || {
            fwd.stderr().contains("administratively prohibited")
        });
        assert!(refused, "ssh -L stderr: {}", fwd.stderr());
        done = true;
        break;
    }
    assert!(done, "could not find a free local port for -L");
    // -A into the box: only with permit-agent-forwarding.
    let no_agent = sign(
        &trusted,
        &user,
        "no-agent",
        "alice@laptop",
        &["-n", "alice", "-O", "no-agent-forwarding"],
    );
    let agent = Agent::start(&[&user]);
    let listed = |cert: &Path| {
        run(
            ssh_with_agent(gw.port, &user, &agent)
                .arg("-o")
                .arg(format!("CertificateFile={}", cert.display()))
                .args(["-A", "anyone@127.0.0.1", "ssh-add -l"]),
            Input::Null,
            SSH_TIMEOUT,
        )
    };
    let out = listed(&full);
    assert!(out.success() && out.stdout.contains("SHA256:"), "{out:?}");
    let out = listed(&no_agent);
    assert!(!out.success() && !out.stdout.contains("SHA256:"), "{out:?}");
    // Without permit-pty: the terminal is refused (which OpenSSH makes
    // fatal when one was asked for, as against sshd); commands still run.
    let out = ssh_cert(
        gw.port,
        &user,
        &narrow,
        &["-tt", "anyone@127.0.0.1", "echo $BOX"],
    );
    assert!(
        out.stderr.contains("PTY allocation request failed"),
        "{out:?}"
    );
    assert_ne!(out.code, Some(0), "{out:?}");
    let out = ssh_cert(gw.port, &user, &narrow, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "a-ws\n", "{out:?}");
    let out = ssh_cert(gw.port, &user, &full, &["-tt", "anyone@127.0.0.1", "tty"]);
    assert!(out.stdout.contains("/dev/pts/"), "{out:?}");
}

#[test]
fn bad_certificate_configuration_is_refused_at_start_naming_it() {
    let dir = temp_dir();
    let revoked = dir.path().join("revoked.txt");
    fs::write(&revoked, "serial: 5\nserial: zero\n").expect("revoked");
    for (server, want) in [
        (
            "trusted_user_ca_keys = [\"ssh-ed25519 nope\"]\n".to_owned(),
            "server.trusted_user_ca_keys[0]",
        ),
        (
            format!(
                "revoked_keys_file = {}\n",
                toml_str(&revoked.display().to_string())
            ),
            "line 2: \"zero\" is not a serial number",
        ),
        (
            "trusted_user_ca_keys_file = \"/nonexistent/ca.pub\"\n".to_owned(),
            "server.trusted_user_ca_keys_file: cannot read /nonexistent/ca.pub",
        ),
    ] {
        let cfg = GatewayConfig {
            server_extra: server.clone(),
            ..Default::default()
        };
        let log = Gateway::try_spawn(&cfg, "")
            .err()
            .expect("refused to start");
        assert!(log.contains(want), "{server}: {log}");
    }
}

#[test]
fn check_counts_the_user_cas_and_warns_about_principals_nothing_can_use() {
    let dir = temp_dir();
    let d = dir.path();
    let team = ca(d, "ca", "ed25519");
    fs::write(
        d.join("routes.toml"),
        "[[route]]\nname = \"a\"\naddress = \"127.0.0.1:22\"\nprincipals = [\"alice\"]\n",
    )
    .expect("routes");
    let config = |server: &str| {
        fs::write(
            d.join("switchboard.toml"),
            format!(
                "[server]\nhost_key_seed = \"0123456789abcdef0123456789abcdef\"\n{server}\n\
                 [sources.file]\npath = \"routes.toml\"\n"
            ),
        )
        .expect("config");
        run_switchboard(d, &["check", "--config", "switchboard.toml"])
    };
    let out = config("");
    assert!(
        out.stdout.contains("route \"a\": principals has no effect"),
        "{out:?}"
    );
    let out = config(&trusting(&[&team], None));
    out.assert_ok();
    assert!(out.stdout.contains("user CAs: 1 trusted"), "{out:?}");
    assert!(!out.stdout.contains("no effect"), "{out:?}");
}
