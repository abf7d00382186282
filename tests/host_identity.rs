//! Host identity beyond the Ed25519 key: the ECDSA P-256 key derived from
//! the same seed, an RSA key from `server.extra_host_keys`, and host
//! certificates (`server.host_certificates`) that let clients trust the
//! gateway through `@cert-authority`, all checked with real OpenSSH and strict
//! host key checking; and the configurations refused at start.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use tempfile::TempDir;

/// `ssh-keygen ARGS`, which must succeed.
fn keygen(args: &[&str]) {
    run(
        Command::new("ssh-keygen").args(args),
        Input::Null,
        SSH_TIMEOUT,
    )
    .assert_ok();
}

/// A private key of `kind` (`rsa`, `ed25519`, …) made by `ssh-keygen`, mode 0600.
fn private_key(dir: &Path, name: &str, kind: &str) -> PathBuf {
    let path = dir.join(name);
    let p = path.to_str().expect("utf-8 path");
    let bits: &[&str] = if kind == "rsa" { &["-b", "2048"] } else { &[] };
    let mut args = vec!["-q", "-t", kind, "-N", "", "-C", name, "-f", p];
    args.extend(bits);
    keygen(&args);
    path
}

/// `switchboard host-key ARGS` for a configuration whose `[server]` has the
/// test seed and `server`.
fn host_key_command(dir: &Path, server: &str, args: &[&OsStr]) -> Output {
    let config = dir.join("host-key.toml");
    fs::write(
        &config,
        format!("[server]\nhost_key_seed = {}\n{server}\n", toml_str(SEED)),
    )
    .expect("config");
    let mut all = vec![
        OsStr::new("host-key"),
        OsStr::new("--config"),
        config.as_os_str(),
    ];
    all.extend(args);
    let out = run_switchboard(dir, &all);
    out.assert_ok();
    out
}

/// The public key lines (`# host keys` section) of `switchboard host-key`.
fn host_key_lines(dir: &Path, server: &str) -> Vec<String> {
    host_key_command(dir, server, &[])
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("# host keys"))
        .skip(1)
        .take_while(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The line of `lines` for key type `ty` (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`).
fn line_of(lines: &[String], ty: &str) -> String {
    lines
        .iter()
        .find(|l| l.split_whitespace().next() == Some(ty))
        .unwrap_or_else(|| panic!("no {ty} line in {lines:?}"))
        .clone()
}

/// `ssh` to the gateway on `port` with strict host key checking against
/// `known`, offering only `algorithms` as host key algorithms.
fn strict_ssh(port: u16, key: &Key, known: &Path, algorithms: &str) -> Output {
    let mut c = Command::new("ssh");
    c.env_remove("SSH_AUTH_SOCK")
        .args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=yes", "-o"])
        .arg(format!("UserKnownHostsFile={}", known.display()))
        .arg("-o")
        .arg(format!("HostKeyAlgorithms={algorithms}"))
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
        .args(["-p", &port.to_string(), "-i"])
        .arg(&key.path)
        .args(["anyone@127.0.0.1", "echo $BOX"]);
    run(&mut c, Input::Null, SSH_TIMEOUT)
}

/// `server_extra` lines naming `extra_host_keys` and `host_certificates`.
fn identity_settings(extra: &[&Path], certs: &[&Path]) -> String {
    let list = |paths: &[&Path]| {
        paths
            .iter()
            .map(|p| toml_str(&p.display().to_string()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "extra_host_keys = [{}]\nhost_certificates = [{}]\n",
        list(extra),
        list(certs)
    )
}

/// Signs `public_line` (written to DIR/NAME.pub) with the CA at `ca` as a host
/// certificate for 127.0.0.1 and localhost, valid `validity`; returns the
/// certificate file `ssh-keygen` wrote (DIR/NAME-cert.pub).
fn sign_host(dir: &Path, name: &str, public_line: &str, ca: &Path, validity: &str) -> PathBuf {
    let public = dir.join(format!("{name}.pub"));
    fs::write(&public, format!("{public_line}\n")).expect("public key");
    let ca = ca.to_str().expect("utf-8");
    let p = public.to_str().expect("utf-8");
    keygen(&[
        "-q",
        "-s",
        ca,
        "-h",
        "-I",
        name,
        "-n",
        "127.0.0.1,localhost",
        "-V",
        validity,
        p,
    ]);
    dir.join(format!("{name}-cert.pub"))
}

/// Everything the gateway presents, as `ssh-keyscan` sees it (host field
/// dropped, sorted): plain keys, or certificates with `-c`.
fn scan(port: u16, certificates: bool) -> Vec<String> {
    let mut c = Command::new("ssh-keyscan");
    c.args(["-T", "10", "-t", "ed25519,ecdsa,rsa"]);
    if certificates {
        c.arg("-c");
    }
    c.args(["-p", &port.to_string(), "127.0.0.1"]);
    let out = run(&mut c, Input::Null, SSH_TIMEOUT);
    let mut lines: Vec<String> = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest).to_owned())
        .collect();
    lines.sort();
    lines
}

#[test]
fn ecdsa_host_key_from_host_key_command_passes_strict_checking() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    let gw = Gateway::start(&routes_toml(&[ws.route(&[&alice])]));
    let out = gw.subcommand("host-key");
    out.assert_ok();
    let prefix = format!("[127.0.0.1]:{} ", gw.port);
    let ecdsa = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{prefix}ecdsa-sha2-nistp256 ")))
        .unwrap_or_else(|| panic!("no ECDSA known_hosts line: {out:?}"));
    let known = dir.path().join("known_hosts");
    fs::write(&known, format!("{ecdsa}\n")).unwrap();
    let ok = strict_ssh(gw.port, &alice, &known, "ecdsa-sha2-nistp256");
    assert_eq!(ok.assert_ok().stdout, "alice-ws\n", "{ok:?}");
    // What the gateway presented is that very key.
    let (ty, key) = {
        let o = run(
            Command::new("ssh-keyscan").args([
                "-T",
                "10",
                "-t",
                "ecdsa",
                "-p",
                &gw.port.to_string(),
                "127.0.0.1",
            ]),
            Input::Null,
            SSH_TIMEOUT,
        );
        let line = o
            .stdout
            .lines()
            .find(|l| !l.starts_with('#'))
            .unwrap_or_default()
            .to_owned();
        let f: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        assert_eq!(f.len(), 3, "{o:?}");
        (f[1].clone(), f[2].clone())
    };
    assert_eq!(format!("{prefix}{ty} {key}"), ecdsa);
    // The fingerprint printed is ssh-keygen's.
    let fp = run(
        Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(&known),
        Input::Null,
        SSH_TIMEOUT,
    );
    let fp = fp
        .assert_ok()
        .stdout
        .split_whitespace()
        .nth(1)
        .expect("fp")
        .to_owned();
    assert!(
        out.stdout.contains(&format!("{fp} ecdsa-sha2-nistp256")),
        "{out:?}"
    );

    // Control: only the Ed25519 line known, and only ECDSA allowed: refused.
    let ed_only = dir.path().join("ed_only");
    let ed = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{prefix}ssh-ed25519 ")))
        .expect("ed25519 line");
    fs::write(&ed_only, format!("{ed}\n")).unwrap();
    let bad = strict_ssh(gw.port, &alice, &ed_only, "ecdsa-sha2-nistp256");
    assert_eq!(bad.code, Some(255), "{bad:?}");
}

#[test]
fn rsa_extra_host_key_serves_rsa_sha2_clients_strictly() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let rsa = private_key(dir.path(), "gw_rsa", "rsa");
    let ws = SshdBox::start("alice-ws");
    let gw = Gateway::start_with(
        &GatewayConfig {
            server_extra: identity_settings(&[&rsa], &[]),
            ..Default::default()
        },
        &routes_toml(&[ws.route(&[&alice])]),
    );
    let out = gw.subcommand("host-key");
    out.assert_ok();
    let rsa_public = fs::read_to_string(dir.path().join("gw_rsa.pub")).unwrap();
    let rsa_public: Vec<&str> = rsa_public.split_whitespace().take(2).collect();
    let line = format!("[127.0.0.1]:{} {}", gw.port, rsa_public.join(" "));
    assert!(
        out.stdout.lines().any(|l| l == line),
        "{line:?} not in {out:?}"
    );
    let known = dir.path().join("known_hosts");
    fs::write(&known, format!("{line}\n")).unwrap();
    for algorithm in ["rsa-sha2-512", "rsa-sha2-256"] {
        let ok = strict_ssh(gw.port, &alice, &known, algorithm);
        assert_eq!(ok.assert_ok().stdout, "alice-ws\n", "{algorithm}: {ok:?}");
    }
    assert!(
        !out.all().contains("PRIVATE KEY"),
        "host-key must print no private key: {out:?}"
    );
}

/// The CA, the gateway's certificates for its derived Ed25519 and ECDSA
/// keys, and an RSA extra key: what a replica set shares.
struct Certified {
    dir: TempDir,
    ca: PathBuf,
    rsa: PathBuf,
    certs: Vec<PathBuf>,
}

/// Made as the README says: `host-key --write-pub DIR`, then `ssh-keygen -s
/// CA -h` on the files it wrote.
fn certified(validity: &str) -> Certified {
    let dir = temp_dir();
    let d = dir.path();
    let ca = private_key(d, "host_ca", "ed25519");
    let rsa = private_key(d, "gw_rsa", "rsa");
    let rsa_setting = identity_settings(&[&rsa], &[]);
    let out = host_key_command(d, &rsa_setting, &[OsStr::new("--write-pub"), d.as_os_str()]);
    let lines = host_key_lines(d, &rsa_setting);
    for (name, ty) in [
        ("ed25519", "ssh-ed25519"),
        ("ecdsa", "ecdsa-sha2-nistp256"),
        ("rsa", "ssh-rsa"),
    ] {
        let written = fs::read_to_string(d.join(format!("ssh_host_{name}_key.pub")))
            .unwrap_or_else(|e| panic!("{name}: {e}: {out:?}"));
        assert_eq!(written.trim(), line_of(&lines, ty), "{out:?}");
    }
    let mut certs = Vec::new();
    for name in ["ed25519", "ecdsa"] {
        let public = d.join(format!("ssh_host_{name}_key.pub"));
        keygen(&[
            "-q",
            "-s",
            ca.to_str().expect("utf-8"),
            "-h",
            "-I",
            &format!("gw-{name}"),
            "-n",
            "127.0.0.1,localhost",
            "-V",
            validity,
            public.to_str().expect("utf-8"),
        ]);
        certs.push(d.join(format!("ssh_host_{name}_key-cert.pub")));
    }
    Certified {
        dir,
        ca,
        rsa,
        certs,
    }
}

impl Certified {
    fn config(&self) -> GatewayConfig {
        let certs: Vec<&Path> = self.certs.iter().map(PathBuf::as_path).collect();
        GatewayConfig {
            server_extra: identity_settings(&[&self.rsa], &certs),
            ..Default::default()
        }
    }

    /// A known_hosts file with only `@cert-authority PATTERN <ca>`.
    fn known_hosts(&self, name: &str, pattern: &str, ca: &Path) -> PathBuf {
        let ca_public = fs::read_to_string(format!("{}.pub", ca.display())).unwrap();
        let path = self.dir.path().join(name);
        fs::write(&path, format!("@cert-authority {pattern} {}", ca_public)).unwrap();
        path
    }
}

#[test]
fn a_client_trusting_only_the_host_ca_connects_strictly() {
    let c = certified("-5m:+1h");
    let alice = Key::generate(c.dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    let gw = Gateway::start_with(&c.config(), &routes_toml(&[ws.route(&[&alice])]));
    let known = c.known_hosts("ca_known_hosts", "*", &c.ca);
    for algorithms in [
        "ssh-ed25519-cert-v01@openssh.com",
        "ecdsa-sha2-nistp256-cert-v01@openssh.com",
        // OpenSSH's own preference when it knows a CA for the host.
        "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ssh-ed25519,rsa-sha2-512",
    ] {
        let ok = strict_ssh(gw.port, &alice, &known, algorithms);
        assert_eq!(ok.assert_ok().stdout, "alice-ws\n", "{algorithms}: {ok:?}");
    }

    // host-key prints the certificates and the @cert-authority line to install.
    let out = gw.subcommand("host-key");
    out.assert_ok();
    let ca_public = fs::read_to_string(format!("{}.pub", c.ca.display())).unwrap();
    let ca_key: Vec<&str> = ca_public.split_whitespace().take(2).collect();
    let ca_line = format!(
        "@cert-authority [127.0.0.1]:{} {}",
        gw.port,
        ca_key.join(" ")
    );
    assert!(
        out.stdout.lines().any(|l| l == ca_line),
        "{ca_line:?}: {out:?}"
    );
    assert!(
        out.stdout.contains("ssh-ed25519-cert-v01@openssh.com AAAA")
            && out
                .stdout
                .contains("ecdsa-sha2-nistp256-cert-v01@openssh.com AAAA"),
        "{out:?}"
    );
    // That line alone is a working known_hosts.
    let printed = c.dir.path().join("printed_known_hosts");
    fs::write(&printed, format!("{ca_line}\n")).unwrap();
    let ok = strict_ssh(
        gw.port,
        &alice,
        &printed,
        "ssh-ed25519-cert-v01@openssh.com",
    );
    assert_eq!(ok.assert_ok().stdout, "alice-ws\n", "{ok:?}");

    // A client that knows only the plain Ed25519 line (OpenSSH then asks for
    // the certificate first, finds no CA, and checks the plain key): unchanged.
    let plain = c.dir.path().join("plain_known_hosts");
    let ed = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 ", gw.port)))
        .expect("plain ed25519 line");
    fs::write(&plain, format!("{ed}\n")).unwrap();
    let ok = strict_ssh(
        gw.port,
        &alice,
        &plain,
        "ssh-ed25519-cert-v01@openssh.com,ssh-ed25519",
    );
    assert_eq!(ok.assert_ok().stdout, "alice-ws\n", "{ok:?}");

    // Control: another CA trusted, the certificate is not accepted.
    let other = private_key(c.dir.path(), "other_ca", "ed25519");
    let wrong = c.known_hosts("other_known_hosts", "*", &other);
    let bad = strict_ssh(gw.port, &alice, &wrong, "ssh-ed25519-cert-v01@openssh.com");
    assert_eq!(bad.code, Some(255), "{bad:?}");
    // Control: a name the certificate does not list.
    let ca_named = c.known_hosts("named_known_hosts", "*", &c.ca);
    let out = run(
        Command::new("ssh")
            .env_remove("SSH_AUTH_SOCK")
            .args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=yes", "-o"])
            .arg(format!("UserKnownHostsFile={}", ca_named.display()))
            .args([
                "-o",
                "HostKeyAlgorithms=ssh-ed25519-cert-v01@openssh.com",
                "-o",
                "HostKeyAlias=gw.elsewhere.example",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-p",
                &gw.port.to_string(),
                "-i",
            ])
            .arg(&alice.path)
            .args(["anyone@127.0.0.1", "true"]),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert_eq!(out.code, Some(255), "{out:?}");
}

#[test]
fn two_replicas_present_identical_keys_and_certificates() {
    let c = certified("-5m:+1h");
    // Two processes, as two replicas are.
    let a = Gateway::spawn_with(&c.config(), "");
    let b = Gateway::spawn_with(&c.config(), "");
    let keys_a = scan(a.port, false);
    let types: Vec<&str> = keys_a
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        types,
        ["ecdsa-sha2-nistp256", "ssh-ed25519", "ssh-rsa"],
        "{keys_a:?}"
    );
    assert_eq!(keys_a, scan(b.port, false));
    let certs_a = scan(a.port, true);
    assert_eq!(certs_a.len(), 2, "{certs_a:?}");
    assert_eq!(certs_a, scan(b.port, true));
    // Each presented certificate is the configured file's.
    for cert in &c.certs {
        let text = fs::read_to_string(cert).unwrap();
        let blob = text.split_whitespace().nth(1).expect("certificate blob");
        assert!(
            certs_a
                .iter()
                .any(|l| l.split_whitespace().any(|f| f == blob)),
            "{cert:?} not presented: {certs_a:?}"
        );
    }
}

/// `switchboard ARGS --config FILE` for a configuration with the test seed
/// and `server` lines (nothing bound: the identity is refused first).
fn with_config(dir: &Path, sub: &str, server: &str) -> Output {
    let routes = dir.join("routes.toml");
    fs::write(&routes, "").unwrap();
    let config = dir.join("bad.toml");
    fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nhost_key_seed = {}\n{server}\n\
             [admin]\nlisten = \"127.0.0.1:0\"\n[sources.file]\npath = {}\n",
            toml_str(SEED),
            toml_str(&routes.display().to_string())
        ),
    )
    .unwrap();
    run_switchboard(
        dir,
        &[OsStr::new(sub), OsStr::new("--config"), config.as_os_str()],
    )
}

#[test]
fn bad_host_identity_is_refused_at_start_naming_the_file() {
    let c = certified("-5m:+1h");
    let d = c.dir.path();
    let lines = host_key_lines(d, "");
    let ed = line_of(&lines, "ssh-ed25519");
    // A host certificate for a key the gateway does not have.
    private_key(d, "stranger", "ed25519");
    let stranger_pub = fs::read_to_string(d.join("stranger.pub")).unwrap();
    let unknown = sign_host(d, "stranger_host", stranger_pub.trim(), &c.ca, "-5m:+1h");
    // A user certificate of the gateway's own key.
    let user_pub = d.join("as_user.pub");
    fs::write(&user_pub, format!("{ed}\n")).unwrap();
    keygen(&[
        "-q",
        "-s",
        c.ca.to_str().unwrap(),
        "-I",
        "as-user",
        "-n",
        "alice",
        user_pub.to_str().unwrap(),
    ]);
    let user_cert = d.join("as_user-cert.pub");
    // An expired one.
    let expired = sign_host(d, "expired", &ed, &c.ca, "20200101:20200102");
    // A key file that is not there, and one encrypted with a passphrase.
    let missing = d.join("no_such_key");
    let encrypted = d.join("encrypted_rsa");
    keygen(&[
        "-q",
        "-t",
        "rsa",
        "-b",
        "2048",
        "-N",
        "a passphrase",
        "-f",
        encrypted.to_str().unwrap(),
    ]);
    // A second Ed25519 key: it could never be presented.
    let second_ed = private_key(d, "second_ed25519", "ed25519");
    // A weak RSA key.
    let small_rsa = d.join("small_rsa");
    keygen(&[
        "-q",
        "-t",
        "rsa",
        "-b",
        "1024",
        "-N",
        "",
        "-f",
        small_rsa.to_str().unwrap(),
    ]);

    let cases: Vec<(String, String)> = vec![
        (
            identity_settings(&[], &[&unknown]),
            format!(
                "server.host_certificates: {} certifies SHA256:",
                unknown.display()
            ),
        ),
        (
            identity_settings(&[], &[&user_cert]),
            format!(
                "server.host_certificates: {} is a user certificate",
                user_cert.display()
            ),
        ),
        (
            identity_settings(&[], &[&expired]),
            format!(
                "server.host_certificates: {} expired at 2020-01-02",
                expired.display()
            ),
        ),
        (
            identity_settings(&[&missing], &[]),
            format!("server.extra_host_keys: cannot read {}", missing.display()),
        ),
        (
            identity_settings(&[&encrypted], &[]),
            format!(
                "server.extra_host_keys: {} is encrypted with a passphrase",
                encrypted.display()
            ),
        ),
        (
            identity_settings(&[&second_ed], &[]),
            format!(
                "server.extra_host_keys: {} is a ssh-ed25519 key, and the gateway already has one",
                second_ed.display()
            ),
        ),
        (
            identity_settings(&[&small_rsa], &[]),
            format!(
                "server.extra_host_keys: {} is a 1024-bit RSA key; use at least 2048 bits",
                small_rsa.display()
            ),
        ),
    ];
    for (settings, want) in &cases {
        let out = with_config(d, "serve", settings);
        assert_eq!(out.code, Some(2), "{settings}: {out:?}");
        assert!(
            out.stderr.contains(&format!("switchboard: {want}")),
            "{settings}: want {want:?}: {out:?}"
        );
        assert!(!out.all().contains(SEED), "{out:?}");
        assert!(!out.all().contains("PRIVATE KEY"), "{out:?}");
    }
    // `check` lists every problem at once.
    let all = identity_settings(&[&missing, &encrypted], &[&unknown, &user_cert, &expired]);
    let out = with_config(d, "check", &all);
    assert_eq!(out.code, Some(2), "{out:?}");
    for (_, want) in &cases[..5] {
        assert!(out.stderr.contains(want.as_str()), "{want:?}: {out:?}");
    }
    assert!(out.stderr.contains("5 problems"), "{out:?}");

    // The good configuration passes `check`, naming every key and certificate.
    let good = c.config().server_extra;
    let out = with_config(d, "check", &good);
    out.assert_ok();
    assert!(out.stdout.contains("ecdsa-sha2-nistp256"), "{out:?}");
    assert!(out.stdout.contains("rsa"), "{out:?}");
    assert_eq!(out.stdout.matches("host cert: ").count(), 2, "{out:?}");
    // An open extra key file is warned about, as the seed file is.
    fs::set_permissions(&c.rsa, fs::Permissions::from_mode(0o644)).unwrap();
    let out = with_config(d, "check", &good);
    out.assert_ok();
    assert!(
        out.stdout
            .contains("server.extra_host_keys: UNPROTECTED KEY FILE"),
        "{out:?}"
    );
}

#[test]
fn a_certificate_expiring_soon_is_warned_about() {
    let c = certified("-5m:+1d");
    let out = with_config(c.dir.path(), "check", &c.config().server_extra);
    out.assert_ok();
    assert!(
        out.stdout.contains(&format!(
            "warning:  server.host_certificates: {} expires at",
            c.certs[0].display()
        )),
        "{out:?}"
    );
}

#[test]
fn the_soonest_certificate_end_is_a_metric() {
    let c = certified("-5m:+1h");
    let gw = Gateway::spawn_with(&c.config(), "");
    let (status, body) = gw.admin_get("/metrics");
    assert_eq!(status, 200, "{body}");
    let value: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("switchboard_host_certificate_expiry_timestamp_seconds "))
        .unwrap_or_else(|| panic!("no expiry metric: {body}"))
        .trim()
        .parse()
        .expect("a number");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    // ssh-keygen -V +1h ends an hour after signing, to the second.
    assert!(
        (now + 50 * 60..=now + 61 * 60).contains(&value),
        "{value} is not about an hour after {now}"
    );
}

#[test]
fn debug_log_holds_no_line_of_an_extra_host_key() {
    let c = certified("-5m:+1h");
    let alice = Key::generate(c.dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    let cfg = GatewayConfig {
        log_level: "debug".into(),
        ..c.config()
    };
    let gw = Gateway::spawn_with(&cfg, &routes_toml(&[ws.route(&[&alice])]));
    let known = c.known_hosts("ca_known_hosts", "*", &c.ca);
    let ok = strict_ssh(gw.port, &alice, &known, "ssh-ed25519-cert-v01@openssh.com");
    assert_eq!(ok.assert_ok().stdout, "alice-ws\n", "{ok:?}");
    // The RSA key signs this exchange.
    let rsa_known = c.dir.path().join("rsa_known_hosts");
    let rsa_public = fs::read_to_string(c.dir.path().join("ssh_host_rsa_key.pub")).unwrap();
    fs::write(
        &rsa_known,
        format!("[127.0.0.1]:{} {}", gw.port, rsa_public),
    )
    .unwrap();
    let ok = strict_ssh(gw.port, &alice, &rsa_known, "rsa-sha2-512");
    assert_eq!(ok.assert_ok().stdout, "alice-ws\n", "{ok:?}");
    let log = gw.log();
    assert!(log.contains("host certificate"), "{log}");
    for line in fs::read_to_string(&c.rsa).unwrap().lines() {
        if line.starts_with("-----") || line.len() < 16 {
            continue;
        }
        assert!(
            !log.contains(line),
            "a line of the RSA host key is in the log"
        );
    }
    assert!(!log.contains(SEED), "the seed is in the log");
}
