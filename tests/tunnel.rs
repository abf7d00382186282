//! HTTP CONNECT and WebSocket tunnels on the SSH port (SPEC §11), end to end
//! with the real gateway, real sshd boxes, the Debian `proxytunnel` and
//! `switchboard tunnel` as ProxyCommands: the SSH inside is end to end with
//! the box (its own host key, checked strictly), the gateway never connects
//! to anything but a route's address, tokens are enforced, and plain SSH on
//! the same port keeps working.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// The token of the token-protected tests, and its SHA-256 (`printf %s s3cret | sha256sum`).
const TOKEN: &str = "s3cret";
const TOKEN_SHA256: &str = "1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0";

/// How long a raw HTTP exchange may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A box that accepts `client` directly (the SSH inside a tunnel is end to
/// end), its route (with `token_sha256` when given), and a gateway with
/// `[http_tunnel]` set from `tunnel_toml`.
struct Setup {
    dir: tempfile::TempDir,
    client: Key,
    alice: SshdBox,
    gw: Gateway,
}

fn setup(tunnel_toml: &str, token_sha256: Option<&str>) -> Setup {
    let dir = temp_dir();
    let client = Key::generate(dir.path(), "client");
    let alice = SshdBox::start_with(
        "alice-ws",
        BoxOptions {
            extra_authorized: vec![client.public.clone()],
            ..BoxOptions::default()
        },
    );
    let mut routes = alice.route(&[&client]).to_toml();
    if let Some(digest) = token_sha256 {
        routes = routes.replacen(
            "[[route]]\n",
            &format!("[[route]]\ntoken_sha256 = {}\n", toml_str(digest)),
            1,
        );
    }
    let cfg = GatewayConfig {
        extra: format!("[http_tunnel]\n{tunnel_toml}\n"),
        ..GatewayConfig::default()
    };
    let gw = Gateway::start_with(&cfg, &routes);
    Setup {
        dir,
        client,
        alice,
        gw,
    }
}

impl Setup {
    /// `known_hosts` naming the box's own host key under the route name.
    fn known_hosts(&self) -> PathBuf {
        let path = self.dir.path().join("known_hosts");
        std::fs::write(&path, format!("alice-ws {}\n", self.alice.host_key()))
            .expect("known_hosts");
        path
    }

    /// `ssh root@alice-ws` through `proxy_command`, checking the box's host
    /// key strictly (a gateway key would fail); the remote command is added
    /// by the caller.
    fn ssh_cmd(&self, proxy_command: &str, env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(["-F", "/dev/null"])
            .args(["-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                self.known_hosts().display()
            ))
            .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"])
            .args(["-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"])
            .arg("-o")
            .arg(format!("ProxyCommand={proxy_command}"))
            .arg("-i")
            .arg(&self.client.path)
            .arg("root@alice-ws");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// `echo $BOX` on the box through `proxy_command`.
    fn ssh_via(&self, proxy_command: &str, env: &[(&str, &str)]) -> Output {
        let mut cmd = self.ssh_cmd(proxy_command, env);
        run(cmd.arg("echo $BOX"), Input::Null, SSH_TIMEOUT)
    }

    /// `switchboard tunnel %h --gateway 127.0.0.1:PORT ARGS` as a ProxyCommand.
    fn switchboard_tunnel(&self, args: &str) -> String {
        format!(
            "{} tunnel %h --gateway 127.0.0.1:{} {args}",
            binary().display(),
            self.gw.port
        )
    }
}

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_switchboard"))
}

/// Sends `request` on a fresh connection to `port` and returns what comes
/// back until the gateway closes, `until` appears, or [`HTTP_TIMEOUT`].
fn http(port: u16, request: &[u8], until: &str) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect to the gateway");
    tcp.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    tcp.write_all(request).expect("send request");
    let deadline = Instant::now() + HTTP_TIMEOUT;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match tcp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        if !until.is_empty() && String::from_utf8_lossy(&answer).contains(until) {
            break;
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn proxytunnel_reaches_the_box_end_to_end() {
    let s = setup("enabled = true", None);
    let proxy = format!("proxytunnel -q -p 127.0.0.1:{} -d %h:%p", s.gw.port);
    let out = s.ssh_via(&proxy, &[]);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
}

#[test]
fn switchboard_tunnel_reaches_the_box_over_connect_and_websocket() {
    let s = setup("enabled = true", None);
    for args in ["", "--websocket"] {
        let out = s.ssh_via(&s.switchboard_tunnel(args), &[]);
        assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{args}: {out:?}");
        // The ProxyCommand ends with the session, silently.
        assert_eq!(out.stderr, "", "{args}: {out:?}");
    }
}

#[test]
fn a_host_that_is_no_route_gets_404_and_nothing_is_dialled() {
    let s = setup("enabled = true", None);
    // A listener standing where a confused gateway might dial.
    let target = TcpListener::bind("127.0.0.1:0").expect("bind target");
    target.set_nonblocking(true).expect("nonblocking");
    let target_port = target.local_addr().expect("addr").port();
    for host in [
        "127.0.0.1:22".to_owned(),
        format!("127.0.0.1:{target_port}"),
        format!("localhost:{target_port}"),
        s.alice.address(),
    ] {
        let answer = http(
            s.gw.port,
            format!("CONNECT {host} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
            "",
        );
        assert!(answer.starts_with("HTTP/1.1 404 "), "{host}: {answer}");
        assert!(answer.contains("Connection: close"), "{answer}");
        assert!(answer.contains("switchboard: no route named"), "{answer}");
    }
    match target.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the gateway connected to the target: {other:?}"),
    }
    // The route itself is reachable; the port named is ignored.
    let answer = http(
        s.gw.port,
        b"CONNECT alice-ws:1 HTTP/1.1\r\n\r\n",
        "SSH-2.0-",
    );
    assert!(
        answer.starts_with("HTTP/1.1 200 Connection established\r\n\r\nSSH-2.0-OpenSSH"),
        "{answer}"
    );
}

#[test]
fn tokens_decide_between_407_and_200() {
    let s = setup("enabled = true\nauth = \"token\"", Some(TOKEN_SHA256));
    for auth in ["", "Proxy-Authorization: Bearer wrong\r\n"] {
        let answer = http(
            s.gw.port,
            format!("CONNECT alice-ws:22 HTTP/1.1\r\n{auth}\r\n").as_bytes(),
            "",
        );
        assert!(answer.starts_with("HTTP/1.1 407 "), "{auth:?}: {answer}");
        assert!(
            answer.contains("Proxy-Authenticate: Basic realm=\"switchboard\""),
            "{answer}"
        );
    }
    let answer = http(
        s.gw.port,
        format!("CONNECT alice-ws:22 HTTP/1.1\r\nProxy-Authorization: Bearer {TOKEN}\r\n\r\n")
            .as_bytes(),
        "SSH-2.0-",
    );
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");

    // proxytunnel sends the token as Basic's password, from the environment.
    let proxy = format!("proxytunnel -q -p 127.0.0.1:{} -d %h:%p", s.gw.port);
    let out = s.ssh_via(&proxy, &[("PROXYUSER", "alice"), ("PROXYPASS", TOKEN)]);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
    // switchboard tunnel reads it from the variable --token-env names.
    for args in ["--token-env SB_TOKEN", "--websocket --token-env SB_TOKEN"] {
        let out = s.ssh_via(&s.switchboard_tunnel(args), &[("SB_TOKEN", TOKEN)]);
        assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{args}: {out:?}");
        let out = s.ssh_via(&s.switchboard_tunnel(args), &[("SB_TOKEN", "wrong")]);
        assert_ne!(out.code, Some(0), "{out:?}");
        assert!(
            out.stderr
                .contains("switchboard: alice-ws needs its tunnel token"),
            "{args}: {out:?}"
        );
    }
}

#[test]
fn switchboard_tunnel_reports_refusals_in_one_line_and_exits_1() {
    let s = setup("enabled = true", None);
    let gateway = format!("127.0.0.1:{}", s.gw.port);
    for extra in [&[][..], &["--websocket"][..]] {
        let out = run(
            Command::new(binary())
                .args(["tunnel", "nope", "--gateway", &gateway])
                .args(extra),
            Input::Null,
            SSH_TIMEOUT,
        );
        assert_eq!(out.code, Some(1), "{out:?}");
        assert_eq!(out.stdout, "", "{out:?}");
        assert!(
            out.stderr.starts_with("switchboard: no route named nope"),
            "{out:?}"
        );
        assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    }
    let out = run(
        Command::new(binary()).args([
            "tunnel",
            "alice-ws",
            "--gateway",
            &gateway,
            "--token-env",
            "SB_UNSET_VAR",
        ]),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert_eq!(out.code, Some(2), "{out:?}");
}

#[test]
fn garbage_gets_400_and_plain_ssh_still_works_on_the_same_port() {
    let s = setup("enabled = true", None);
    let answer = http(s.gw.port, b"HELLO gateway\r\n\r\n", "");
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("Connection: close"), "{answer}");
    let out = s.gw.ssh(&s.client, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
}

#[test]
fn bulk_data_crosses_both_tunnels_intact() {
    const SIZE: u64 = 16 * 1024 * 1024;
    let s = setup("enabled = true", None);
    let local = s.dir.path().join("local");
    random_file(&local, SIZE);
    for args in ["", "--websocket"] {
        let proxy = s.switchboard_tunnel(args);
        let remote = s.alice.path("uploaded");
        let _ = std::fs::remove_file(&remote);
        let mut up = s.ssh_cmd(&proxy, &[]);
        up.arg(format!("cat > {}", remote.display()));
        run(&mut up, Input::File(local.clone()), TRANSFER_TIMEOUT).assert_ok();
        assert_same_file(&local, &remote);

        let downloaded = s.dir.path().join("downloaded");
        let mut down = s.ssh_cmd(&proxy, &[]);
        down.arg(format!("cat {}", remote.display()));
        run_to_file(&mut down, Input::Null, &downloaded, TRANSFER_TIMEOUT).assert_ok();
        assert_same_file(&local, &downloaded);
    }
}
