//! The host key (SPEC §8): derived from the seed, so gateways sharing a seed
//! look like one host; `switchboard host-key` prints what clients will see.

mod common;

use std::fs;
use std::process::Command;

use common::*;

/// The `SHA256:…` fingerprint `ssh-keygen` computes for a public key line.
fn fingerprint(public_line: &str) -> String {
    let out = run(
        Command::new("ssh-keygen").args(["-l", "-E", "sha256", "-f", "-"]),
        Input::Bytes(public_line.into()),
        SSH_TIMEOUT,
    );
    out.assert_ok();
    out.stdout
        .split_whitespace()
        .nth(1)
        .expect("fingerprint field")
        .to_owned()
}

#[test]
fn same_seed_same_host_key_and_host_key_command_agrees() {
    let a = Gateway::start("");
    let b = Gateway::start("");
    let other = Gateway::start_with(
        &GatewayConfig {
            seed: Some("a-different-seed-0000".into()),
            ..Default::default()
        },
        "",
    );
    let (ty_a, key_a) = keyscan(a.port);
    let (_, key_b) = keyscan(b.port);
    let (_, key_other) = keyscan(other.port);
    assert_eq!(ty_a, "ssh-ed25519");
    assert_eq!(
        key_a, key_b,
        "two gateways with one seed must present the same host key"
    );
    assert_ne!(
        key_a, key_other,
        "a different seed must give a different host key"
    );

    let out = a.subcommand("host-key");
    out.assert_ok();
    let public = format!("ssh-ed25519 {key_a}");
    assert!(
        out.stdout.lines().any(|l| l.starts_with(&public)),
        "host-key must print {public:?}: {out:?}"
    );
    let fp = fingerprint(&public);
    assert!(
        out.stdout.contains(&fp),
        "host-key must print the fingerprint {fp}: {out:?}"
    );
    let known = format!("[127.0.0.1]:{} ssh-ed25519 {key_a}", a.port);
    assert!(
        out.stdout.lines().any(|l| l.starts_with(&known)),
        "host-key must print the known_hosts line {known:?}: {out:?}"
    );
    assert!(
        !out.all().contains(SEED),
        "host-key must not print the seed: {out:?}"
    );
}

#[test]
fn known_hosts_from_host_key_command_passes_strict_checking() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    let gw = Gateway::start(&routes_toml(&[ws.route(&[&alice])]));
    let out = gw.subcommand("host-key");
    out.assert_ok();
    let prefix = format!("[127.0.0.1]:{} ", gw.port);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no known_hosts line for {prefix}: {out:?}"));
    let known_hosts = dir.path().join("known_hosts");
    fs::write(&known_hosts, format!("{line}\n")).unwrap();

    let strict = |known: &std::path::Path| {
        let mut c = Command::new("ssh");
        c.args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=yes", "-o"])
            .arg(format!("UserKnownHostsFile={}", known.display()))
            .args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "ConnectTimeout=10",
            ])
            .args(["-p", &gw.port.to_string(), "-i"])
            .arg(&alice.path)
            .args(["anyone@127.0.0.1", "echo $BOX"]);
        run(&mut c, Input::Null, SSH_TIMEOUT)
    };
    let ok = strict(&known_hosts);
    assert_eq!(ok.assert_ok().stdout, "alice-ws\n", "{ok:?}");

    // Control: a known_hosts with some other key is refused.
    let wrong = dir.path().join("wrong_known_hosts");
    let other = Key::generate(dir.path(), "other");
    fs::write(&wrong, format!("{prefix}{}\n", other.public)).unwrap();
    let bad = strict(&wrong);
    assert_eq!(bad.code, Some(255), "{bad:?}");
}

#[test]
fn seed_file_from_seed_command() {
    let dir = temp_dir();
    let s1 = run_switchboard(dir.path(), &["seed"]);
    let s2 = run_switchboard(dir.path(), &["seed"]);
    s1.assert_ok();
    s2.assert_ok();
    assert!(s1.stdout.trim().len() >= 32, "seed too short: {s1:?}");
    assert_ne!(s1.stdout, s2.stdout, "two seeds must differ");
    let seed_file = dir.path().join("seed");
    fs::write(&seed_file, &s1.stdout).unwrap();

    // A seed file is a real seed: no --dev needed, and both replicas agree.
    let cfg = GatewayConfig {
        seed: None,
        seed_file: Some(seed_file),
        ..Default::default()
    };
    // The binary: its log is checked for the seed.
    let a = Gateway::spawn_with(&cfg, "");
    let b = Gateway::spawn_with(&cfg, "");
    assert_eq!(keyscan(a.port), keyscan(b.port));
    let (_, key) = keyscan(a.port);
    let out = a.subcommand("host-key");
    assert!(out.assert_ok().stdout.contains(&key), "{out:?}");
    assert!(
        !a.log().contains(s1.stdout.trim()),
        "the seed must never be logged"
    );
}
