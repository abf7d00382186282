//! Integration-test harness: real OpenSSH boxes (`sshd` on loopback), the
//! gateway (in process, or the real `switchboard` binary where the process is
//! the point), and a client runner with hard timeouts.
//!
//! Every test gets its own temp dirs and ports, so tests run in parallel. Every
//! child process and in-process gateway is stopped on drop, and every client
//! command has a deadline: a hang fails the test instead of blocking CI. When a
//! test panics, the gateway's and the boxes' logs are printed (libtest shows
//! them with the failure).
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod agent;
pub mod attack;
mod in_process;

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

use in_process::{InProcess, bind_loopback};

/// Seed used by gateways in tests (inline `host_key_seed`, dev only).
pub const SEED: &str = "switchboard-itest-seed-5f1c0e2a9b7d4c3e8a6f";
/// Deadline for an ordinary client command.
pub const SSH_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline for a bulk transfer (64 MiB on a loaded 2-core machine, debug build).
pub const TRANSFER_TIMEOUT: Duration = Duration::from_secs(300);
/// Deadline for a gateway or sshd to answer with a banner.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a running command is checked for having exited.
const EXIT_POLL: Duration = Duration::from_millis(2);
/// How often a starting server is asked for its banner.
const START_POLL: Duration = Duration::from_millis(10);
/// A port picked for a server may be taken before the server binds it: retry.
const START_ATTEMPTS: usize = 6;
/// 64 MiB, the size of the bulk-transfer tests.
pub const BIG: u64 = 64 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Processes with deadlines
// ---------------------------------------------------------------------------

/// What a finished (or killed) command left behind.
pub struct Output {
    /// Exit code; `None` when killed by a signal or by the deadline.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// True when the deadline passed and the process group was killed.
    pub timed_out: bool,
    pub cmdline: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics (with everything known) unless the command exited 0.
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(self.success(), "command failed: {self:?}");
        self
    }

    /// stdout and stderr together, for "the message is shown somewhere" checks.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f)?;
        writeln!(f, "  command: {}", self.cmdline)?;
        if self.timed_out {
            writeln!(
                f,
                "  TIMED OUT after {:.1?} (process group killed)",
                self.elapsed
            )?;
        } else {
            writeln!(f, "  exit code: {:?} after {:.1?}", self.code, self.elapsed)?;
        }
        writeln!(f, "  stdout: {}", clip(&self.stdout))?;
        write!(f, "  stderr: {}", clip(&self.stderr))
    }
}

fn clip(s: &str) -> String {
    const MAX: usize = 4000;
    if s.len() <= MAX {
        format!("{s:?}")
    } else {
        let mut end = MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{:?}… ({} bytes in all)", &s[..end], s.len())
    }
}

/// Standard input for [`run`].
pub enum Input {
    Null,
    Bytes(Vec<u8>),
    File(PathBuf),
}

/// Runs `cmd` to completion with a hard deadline; stdout and stderr captured.
pub fn run(cmd: &mut Command, input: Input, timeout: Duration) -> Output {
    run_inner(cmd, input, None, timeout)
}

/// Like [`run`], but stdout goes to `stdout_file` (for bulk binary data).
pub fn run_to_file(
    cmd: &mut Command,
    input: Input,
    stdout_file: &Path,
    timeout: Duration,
) -> Output {
    run_inner(cmd, input, Some(stdout_file), timeout)
}

fn run_inner(
    cmd: &mut Command,
    input: Input,
    stdout_file: Option<&Path>,
    timeout: Duration,
) -> Output {
    let cmdline = format!("{cmd:?}");
    // Own process group, so a deadline kills helpers too (ProxyCommand, scp's ssh).
    cmd.process_group(0);
    cmd.stdin(match &input {
        Input::Null => Stdio::null(),
        Input::Bytes(_) => Stdio::piped(),
        Input::File(p) => Stdio::from(File::open(p).unwrap_or_else(|e| panic!("open {p:?}: {e}"))),
    });
    cmd.stdout(match stdout_file {
        Some(p) => Stdio::from(File::create(p).unwrap_or_else(|e| panic!("create {p:?}: {e}"))),
        None => Stdio::piped(),
    });
    cmd.stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {cmdline}: {e}"));
    let pid = child.id();
    if let Input::Bytes(bytes) = input {
        let mut stdin = child.stdin.take().expect("piped stdin");
        thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
    }
    let (tx, rx) = mpsc::channel::<(bool, Vec<u8>)>();
    let mut readers = 0;
    if let Some(mut s) = child.stdout.take() {
        readers += 1;
        let tx = tx.clone();
        thread::spawn(move || {
            let mut v = Vec::new();
            let _ = s.read_to_end(&mut v);
            let _ = tx.send((true, v));
        });
    }
    if let Some(mut s) = child.stderr.take() {
        readers += 1;
        let tx = tx.clone();
        thread::spawn(move || {
            let mut v = Vec::new();
            let _ = s.read_to_end(&mut v);
            let _ = tx.send((false, v));
        });
    }
    drop(tx);
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break Some(st);
        }
        if start.elapsed() > timeout {
            timed_out = true;
            kill_group(pid);
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(EXIT_POLL);
    };
    let elapsed = start.elapsed();
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for _ in 0..readers {
        // A leftover grandchild may hold a pipe open: give it a moment, then kill
        // it. (A ControlMaster holds its mux clients' pipes: not ours to kill.)
        let got = rx.recv_timeout(Duration::from_secs(5)).or_else(|_| {
            kill_group(pid);
            rx.recv_timeout(Duration::from_secs(2))
        });
        match got {
            Ok((true, v)) => stdout = v,
            Ok((false, v)) => stderr = v,
            Err(_) => {
                stderr.extend_from_slice(
                    b"\n[harness: an output pipe was still held open by another process]",
                );
                break;
            }
        }
    }
    Output {
        code: status.and_then(|s| s.code()),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        elapsed,
        timed_out,
        cmdline,
    }
}

/// SIGKILL to a whole process group (the children we start lead their own).
/// (The shell's builtin `kill`: a minimal Debian has no `/bin/kill`.)
fn kill_group(pgid: u32) {
    let _ = Command::new("sh")
        .args(["-c", &format!("kill -KILL -{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A command running in the background (a long session, a ControlMaster, an
/// `ssh -L`); its process group is killed on drop.
pub struct Bg {
    child: Child,
    /// Held open and never read, for [`Bg::spawn_unread`].
    _unread: Option<std::process::ChildStdout>,
    pid: u32,
    dir: TempDir,
    start: Instant,
    cmdline: String,
    done: bool,
}

impl Bg {
    pub fn spawn(cmd: &mut Command) -> Bg {
        Bg::spawn_from(cmd, Stdio::null())
    }

    fn spawn_from(cmd: &mut Command, stdin: Stdio) -> Bg {
        let dir = temp_dir();
        let cmdline = format!("{cmd:?}");
        cmd.process_group(0)
            .stdin(stdin)
            .stdout(File::create(dir.path().join("stdout")).expect("stdout file"))
            .stderr(File::create(dir.path().join("stderr")).expect("stderr file"));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {cmdline}: {e}"));
        Bg {
            pid: child.id(),
            child,
            _unread: None,
            dir,
            start: Instant::now(),
            cmdline,
            done: false,
        }
    }

    /// Like [`Bg::spawn`], but stdin is an endless stream of zeros: for a
    /// remote command that never reads its stdin.
    pub fn spawn_fed(cmd: &mut Command) -> Bg {
        Bg::spawn_from(cmd, File::open("/dev/zero").expect("/dev/zero").into())
    }

    /// Like [`Bg::spawn`], but stdout is a pipe nobody reads: a stalled reader.
    pub fn spawn_unread(cmd: &mut Command) -> Bg {
        let dir = temp_dir();
        let cmdline = format!("{cmd:?}");
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(dir.path().join("stderr")).expect("stderr file"));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {cmdline}: {e}"));
        let unread = child.stdout.take();
        Bg {
            pid: child.id(),
            child,
            _unread: unread,
            dir,
            start: Instant::now(),
            cmdline,
            done: false,
        }
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(self.dir.path().join("stdout")).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Waits for the process to exit, killing it after `timeout`.
    pub fn wait(mut self, timeout: Duration) -> Output {
        let mut timed_out = false;
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                break Some(st);
            }
            if self.start.elapsed() > timeout {
                timed_out = true;
                kill_group(self.pid);
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            thread::sleep(EXIT_POLL);
        };
        self.done = true;
        Output {
            code: status.and_then(|s| s.code()),
            stdout: self.stdout(),
            stderr: self.stderr(),
            elapsed: self.start.elapsed(),
            timed_out,
            cmdline: self.cmdline.clone(),
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if !self.done {
            kill_group(self.pid);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `f` until it returns true or `timeout` passes: soon at first (most
/// things are ready in milliseconds), then every 200 ms (`f` may run a client).
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(10);
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------
// Files, ports, keys
// ---------------------------------------------------------------------------

pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("sb-it-")
        .tempdir()
        .expect("temp dir")
}

/// A loopback port that is free right now.
///
/// Ports come from 20000–31999, below Linux's ephemeral range (32768–60999),
/// so outgoing connections and `bind(:0)` elsewhere never take them; a
/// per-process counter from a random start means no two servers of this test
/// process are handed the same port. A collision with another process is
/// still possible: servers retry on a fresh port when they fail to start.
pub fn free_port() -> u16 {
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static START: OnceLock<u32> = OnceLock::new();
    let start = *START.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        (std::process::id().wrapping_mul(7919) ^ nanos) % SPAN
    });
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + (start + n) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A file of `size` random bytes.
pub fn random_file(path: &Path, size: u64) {
    let mut src = File::open("/dev/urandom").expect("/dev/urandom").take(size);
    let mut dst = File::create(path).expect("create random file");
    let n = std::io::copy(&mut src, &mut dst).expect("write random file");
    assert_eq!(n, size);
}

/// Sends `src` through `cmd` (a remote `cat`) and asserts it comes back
/// byte-identical in `back`.
#[track_caller]
pub fn assert_cat_round_trip(cmd: &mut Command, src: &Path, back: &Path) {
    let out = run_to_file(cmd, Input::File(src.to_path_buf()), back, TRANSFER_TIMEOUT);
    out.assert_ok();
    assert_same_file(src, back);
}

/// Byte-for-byte equality of two files, with a useful message when not.
#[track_caller]
pub fn assert_same_file(expected: &Path, actual: &Path) {
    let a = fs::read(expected).unwrap_or_else(|e| panic!("read {expected:?}: {e}"));
    let b = fs::read(actual).unwrap_or_else(|e| panic!("read {actual:?}: {e}"));
    if a != b {
        let first = a
            .iter()
            .zip(&b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        panic!(
            "{actual:?} differs from {expected:?}: {} vs {} bytes, first difference at byte {first}",
            b.len(),
            a.len()
        );
    }
}

/// An Ed25519 key pair made by the real `ssh-keygen`.
#[derive(Clone, Debug)]
pub struct Key {
    /// Private key file (OpenSSH format, no passphrase).
    pub path: PathBuf,
    /// The `ssh-ed25519 AAAA… comment` line.
    pub public: String,
}

impl Key {
    pub fn generate(dir: &Path, name: &str) -> Key {
        let path = dir.join(name);
        let out = run(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                .arg(&path),
            Input::Null,
            Duration::from_secs(20),
        );
        out.assert_ok();
        let public = fs::read_to_string(format!("{}.pub", path.display())).expect("public key");
        Key {
            path,
            public: public.trim().to_owned(),
        }
    }

    /// The lines of the private key file (for "never logged" checks).
    pub fn private_lines(&self) -> Vec<String> {
        fs::read_to_string(&self.path)
            .expect("private key")
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// A TOML basic string literal.
pub fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Reads the first line a server sends; `None` if it says nothing in time.
fn read_banner(port: u16, timeout: Duration) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while buf.len() < 256 {
        match s.read(&mut byte) {
            Ok(1) if byte[0] == b'\n' => break,
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&buf).trim().to_owned())
}

enum Started {
    Up,
    Exited,
}

/// Waits until the server that `running` reports on answers on `port` with an
/// SSH banner that `is_ours` accepts; `Exited` when it stops or [`START_TIMEOUT`]
/// passes (the caller stops it).
fn wait_for_banner(
    mut running: impl FnMut() -> bool,
    port: u16,
    is_ours: impl Fn(&str) -> bool,
) -> Started {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if !running() {
            return Started::Exited;
        }
        if let Some(b) = read_banner(port, Duration::from_secs(3)) {
            // Someone else's server on a port we were handed is not ours.
            if b.starts_with("SSH-") && is_ours(&b) && running() {
                return Started::Up;
            }
        }
        if Instant::now() > deadline {
            return Started::Exited;
        }
        thread::sleep(START_POLL);
    }
}

/// Every descendant of `pid` (from `/proc/*/stat`).
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid …": comm may hold spaces; split after ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.push((child, ppid));
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    found.remove(0);
    found
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------
// Boxes: real sshd
// ---------------------------------------------------------------------------

/// How to set up a box.
#[derive(Clone, Debug)]
pub struct BoxOptions {
    /// Put the gateway's identity key for this box into its `authorized_keys`
    /// (false: the box refuses the gateway's login).
    pub authorize_identity: bool,
    /// More `authorized_keys` lines (e.g. a client key for direct access).
    pub extra_authorized: Vec<String>,
    /// Appended to `sshd_config` (sshd keeps the first value of a keyword,
    /// so this cannot change one the harness sets; see `max_startups`).
    pub extra_config: String,
    /// sshd's `MaxStartups` (unauthenticated connections it takes at once).
    pub max_startups: String,
    /// Listen on this port (a box started later on a port already
    /// configured); `None`: a free one.
    pub port: Option<u16>,
    /// sshd's `LogLevel` (default `ERROR`; `VERBOSE` logs each login's key
    /// and certificate ID).
    pub log_level: String,
    /// sshd's `AuthorizedKeysFile` instead of the box's own file (`none`:
    /// only certificates from a `TrustedUserCAKeys` CA log in).
    pub authorized_keys_file: Option<String>,
    /// Sign the box's host key with this CA private key for these
    /// principals (`ssh-keygen -s CA -h -n PRINCIPALS`) and present the
    /// certificate (`HostCertificate`).
    pub host_certificate: Option<(PathBuf, String)>,
}

impl Default for BoxOptions {
    fn default() -> Self {
        Self {
            authorize_identity: true,
            extra_authorized: Vec::new(),
            extra_config: String::new(),
            max_startups: "100".into(),
            port: None,
            log_level: "ERROR".into(),
            authorized_keys_file: None,
            host_certificate: None,
        }
    }
}

/// A throw-away box: a real OpenSSH sshd on 127.0.0.1 with its own host key,
/// `SetEnv BOX=<name>`, and the gateway's identity key for it authorized.
pub struct SshdBox {
    pub name: String,
    pub port: u16,
    pub dir: TempDir,
    /// The key the gateway logs in to this box with (`identity_file`).
    pub identity: Key,
    child: Child,
}

impl SshdBox {
    pub fn start(name: &str) -> SshdBox {
        Self::start_with(name, BoxOptions::default())
    }

    pub fn start_with(name: &str, opts: BoxOptions) -> SshdBox {
        fs::create_dir_all("/run/sshd").expect("sshd needs /run/sshd");
        let dir = temp_dir();
        let d = dir.path();
        let identity = Key::generate(d, "gateway_identity");
        run(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join("host_key")),
            Input::Null,
            Duration::from_secs(20),
        )
        .assert_ok();
        let mut authorized = String::new();
        if opts.authorize_identity {
            authorized.push_str(&identity.public);
            authorized.push('\n');
        }
        for line in &opts.extra_authorized {
            authorized.push_str(line);
            authorized.push('\n');
        }
        fs::write(d.join("authorized_keys"), authorized).expect("authorized_keys");
        let mut host_certificate = String::new();
        if let Some((ca, principals)) = &opts.host_certificate {
            run(
                Command::new("ssh-keygen")
                    .args(["-q", "-s"])
                    .arg(ca)
                    .args(["-I", name, "-h", "-n", principals, "-V", "-5m:+1h"])
                    .arg(d.join("host_key.pub")),
                Input::Null,
                Duration::from_secs(20),
            )
            .assert_ok();
            host_certificate = format!("HostCertificate {}/host_key-cert.pub\n", d.display());
        }
        let authorized_keys_file = opts
            .authorized_keys_file
            .clone()
            .unwrap_or_else(|| format!("{}/authorized_keys", d.display()));
        for attempt in 1..=START_ATTEMPTS {
            let port = opts.port.unwrap_or_else(free_port);
            let config = format!(
                "Port {port}\n\
                 ListenAddress 127.0.0.1\n\
                 HostKey {dir}/host_key\n\
                 {host_certificate}\
                 PidFile {dir}/sshd.pid\n\
                 AuthorizedKeysFile {authorized_keys_file}\n\
                 StrictModes no\n\
                 UsePAM no\n\
                 UseDNS no\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\n\
                 AllowAgentForwarding yes\n\
                 AllowTcpForwarding yes\n\
                 MaxSessions 64\n\
                 MaxStartups {max_startups}\n\
                 Subsystem sftp internal-sftp\n\
                 SetEnv BOX={name}\n\
                 AcceptEnv SB_*\n\
                 LogLevel {log_level}\n\
                 {extra}\n",
                log_level = opts.log_level,
                dir = d.display(),
                extra = opts.extra_config,
                max_startups = opts.max_startups,
            );
            fs::write(d.join("sshd_config"), config).expect("sshd_config");
            let log = d.join("sshd.log");
            let mut child = Command::new("/usr/sbin/sshd")
                .arg("-D")
                .arg("-f")
                .arg(d.join("sshd_config"))
                .arg("-E")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn /usr/sbin/sshd (apt-get install openssh-server)");
            let started = wait_for_banner(
                || matches!(child.try_wait(), Ok(None)),
                port,
                |b| b.contains("OpenSSH"),
            );
            if matches!(started, Started::Exited) {
                let _ = child.kill();
                let _ = child.wait();
            }
            match started {
                Started::Up => {
                    return SshdBox {
                        name: name.to_owned(),
                        port,
                        dir,
                        identity,
                        child,
                    };
                }
                Started::Exited if attempt < START_ATTEMPTS => continue,
                Started::Exited => panic!(
                    "sshd for {name} did not start on port {port}:\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                ),
            }
        }
        unreachable!()
    }

    /// `127.0.0.1:PORT`, for the route's `address`.
    /// Freezes (SIGSTOP) every process this box's sshd started for its
    /// connections: the box stops answering, as a hung or vanished host would.
    pub fn freeze_sessions(&self) {
        for pid in descendants(self.child.id()) {
            let _ = Command::new("kill")
                .args(["-STOP", &pid.to_string()])
                .status();
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The box's host public key line (`ssh-ed25519 AAAA…`).
    pub fn host_key(&self) -> String {
        fs::read_to_string(self.dir.path().join("host_key.pub"))
            .expect("host_key.pub")
            .trim()
            .to_owned()
    }

    /// A path inside the box's directory (the box shares this machine's filesystem).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A route to this box for `keys`, logging in as root with the box's identity.
    pub fn route(&self, keys: &[&Key]) -> Route {
        let mut r = Route::new(&self.name, &self.address());
        r.user = Some("root".into());
        r.identity_file = Some(self.identity.path.clone());
        r.keys = keys.iter().map(|k| k.public.clone()).collect();
        r
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for SshdBox {
    fn drop(&mut self) {
        // Per-connection processes too (they may be frozen by a test).
        for pid in descendants(self.child.id()) {
            // (It may have exited since the scan: not worth a message.)
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "----- sshd log of box {} (port {}) -----\n{}",
                self.name,
                self.port,
                tail(&self.log(), 50)
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Routes file
// ---------------------------------------------------------------------------

/// One `[[route]]` of the routes file (SPEC §4).
#[derive(Clone, Debug)]
pub struct Route {
    pub name: String,
    pub address: String,
    pub user: Option<String>,
    /// `authorized_keys` lines.
    pub keys: Vec<String>,
    pub identity_file: Option<PathBuf>,
    pub host_key: Option<String>,
    /// `"running"` or `"stopped"`; omitted when `None`.
    pub state: Option<String>,
    /// `[route.forwarding]` local, remote, agent; omitted when `None`.
    pub forwarding: Option<[bool; 3]>,
}

impl Route {
    pub fn new(name: &str, address: &str) -> Route {
        Route {
            name: name.to_owned(),
            address: address.to_owned(),
            user: None,
            keys: Vec::new(),
            identity_file: None,
            host_key: None,
            state: None,
            forwarding: None,
        }
    }

    pub fn to_toml(&self) -> String {
        let mut s = format!(
            "[[route]]\nname = {}\naddress = {}\n",
            toml_str(&self.name),
            toml_str(&self.address)
        );
        if let Some(u) = &self.user {
            s += &format!("user = {}\n", toml_str(u));
        }
        let keys: Vec<String> = self.keys.iter().map(|k| toml_str(k)).collect();
        s += &format!("authorized_keys = [{}]\n", keys.join(", "));
        if let Some(p) = &self.identity_file {
            s += &format!("identity_file = {}\n", toml_str(&p.display().to_string()));
        }
        if let Some(h) = &self.host_key {
            s += &format!("host_key = {}\n", toml_str(h));
        }
        if let Some(st) = &self.state {
            s += &format!("state = {}\n", toml_str(st));
        }
        if let Some([local, remote, agent]) = self.forwarding {
            s += &format!(
                "[route.forwarding]\nlocal = {local}\nremote = {remote}\nagent = {agent}\n"
            );
        }
        s.push('\n');
        s
    }
}

/// A whole routes file.
pub fn routes_toml(routes: &[Route]) -> String {
    routes.iter().map(Route::to_toml).collect()
}

// ---------------------------------------------------------------------------
// The gateway
// ---------------------------------------------------------------------------

/// The knobs tests turn; rendered into `switchboard.toml`.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Inline `host_key_seed`; `None` writes no inline seed.
    pub seed: Option<String>,
    /// `host_key_seed_file`.
    pub seed_file: Option<PathBuf>,
    /// Pass `--dev` to `serve`.
    pub dev: bool,
    pub log_level: String,
    /// `[log] format`: `"text"` or `"json"`.
    pub log_format: String,
    pub connect_timeout: String,
    pub handshake_timeout: String,
    pub agent_login: bool,
    /// `[routing] jump` (`"authenticated"`, `"any-key"`, `"off"`).
    pub jump: String,
    pub watch: bool,
    /// Lines added to `[server]` (`max_sessions = 2`).
    pub server_extra: String,
    /// Lines added to `[upstream]` (`agent_timeout = "2s"`).
    pub upstream_extra: String,
    /// Appended verbatim to `[admin]` (e.g. `read_token_file = "…"`).
    pub admin: String,
    /// Appended verbatim (new tables only).
    pub extra: String,
    /// A whole config file instead of the fields above (except `dev`), with
    /// `@LISTEN@` and `@ROUTES@` replaced by the TOML strings for the listen
    /// address and the routes file.
    pub raw: Option<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            seed: Some(SEED.into()),
            seed_file: None,
            dev: false,
            log_level: "info".into(),
            log_format: "text".into(),
            connect_timeout: "2s".into(),
            handshake_timeout: "5s".into(),
            agent_login: false,
            jump: "authenticated".into(),
            watch: true,
            server_extra: String::new(),
            upstream_extra: String::new(),
            admin: String::new(),
            extra: String::new(),
            raw: None,
        }
    }
}

impl GatewayConfig {
    /// A whole config with `server` added to `[server]`, PROXY headers
    /// trusted from loopback, and nothing else set.
    pub fn proxied(server: &str) -> GatewayConfig {
        GatewayConfig {
            raw: Some(format!(
                "[server]\nlisten = @LISTEN@\nhost_key_seed = \"{SEED}\"\n{server}\n\n\
                 [sources.file]\npath = @ROUTES@\n\n[admin]\nlisten = @ADMIN@\n\n\
                 [proxy_protocol]\nenabled = true\ntrusted_cidrs = [\"127.0.0.0/8\"]\n"
            )),
            ..Default::default()
        }
    }

    pub fn render(&self, listen: &str, admin: &str, routes: &Path) -> String {
        if let Some(raw) = &self.raw {
            return raw
                .replace("@LISTEN@", &toml_str(listen))
                .replace("@ADMIN@", &toml_str(admin))
                .replace("@ROUTES@", &toml_str(&routes.display().to_string()));
        }
        let mut seed = String::new();
        if let Some(s) = &self.seed {
            seed += &format!("host_key_seed = {}\n", toml_str(s));
        }
        if let Some(p) = &self.seed_file {
            seed += &format!(
                "host_key_seed_file = {}\n",
                toml_str(&p.display().to_string())
            );
        }
        format!(
            "[server]\nlisten = {listen}\n{seed}{server_extra}\n\
             [routing]\nagent_login = {agent}\njump = \"{jump}\"\n\n\
             [upstream]\nconnect_timeout = {ct}\nhandshake_timeout = {ht}\n{upstream_extra}\n\
             [sources.file]\npath = {routes}\nwatch = {watch}\n\n\
             [admin]\nlisten = {admin}\n{admin_extra}\n\
             [log]\nlevel = {level}\nformat = {format}\n\n{extra}",
            admin = toml_str(admin),
            format = toml_str(&self.log_format),
            listen = toml_str(listen),
            agent = self.agent_login,
            jump = self.jump,
            ct = toml_str(&self.connect_timeout),
            ht = toml_str(&self.handshake_timeout),
            routes = toml_str(&routes.display().to_string()),
            watch = self.watch,
            level = toml_str(&self.log_level),
            server_extra = with_newline(&self.server_extra),
            upstream_extra = with_newline(&self.upstream_extra),
            extra = self.extra,
            admin_extra = self.admin,
        )
    }
}

/// `lines` ending in a newline (empty stays empty).
fn with_newline(lines: &str) -> String {
    if lines.is_empty() || lines.ends_with('\n') {
        lines.to_owned()
    } else {
        format!("{lines}\n")
    }
}

/// A `switchboard` command (the binary under test), run in `dir`.
pub fn switchboard(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    c.current_dir(dir);
    // A developer's environment must not reconfigure the gateway under test.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SWITCHBOARD_") {
            c.env_remove(k);
        }
    }
    c
}

/// Runs `switchboard ARGS` in `dir` with a deadline.
pub fn run_switchboard<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Output {
    run(switchboard(dir).args(args), Input::Null, SSH_TIMEOUT)
}

/// The gateway under test, serving on a loopback port with its config and
/// routes file in a temp dir; stopped on drop (its log printed if the test
/// failed). Two ways to run it:
///
/// - [`Gateway::start`]: in this process ([`in_process`]), on `127.0.0.1:0`.
///   Fast; for every test where the process is not the point.
/// - [`Gateway::spawn`]: the real `switchboard serve` binary, for what only a
///   process has: signals and the drain they start, exit codes, `--dev`, and
///   its log (text or JSON, audit events) and `/metrics` (both process-wide).
pub struct Gateway {
    pub port: u16,
    /// The admin HTTP port (`/healthz`, `/readyz`, `/metrics`).
    pub admin_port: u16,
    pub dir: TempDir,
    pub config_path: PathBuf,
    pub routes_path: PathBuf,
    log_path: PathBuf,
    runner: Runner,
}

enum Runner {
    /// `switchboard serve`.
    Process(Child),
    /// `serve_on` on a thread of this process.
    InProcess(InProcess),
}

/// A gateway's temp dir with its routes file written.
struct Files {
    dir: TempDir,
    config_path: PathBuf,
    routes_path: PathBuf,
    log_path: PathBuf,
}

impl Files {
    fn new(routes: &str) -> Files {
        let dir = temp_dir();
        let d = dir.path();
        let files = Files {
            config_path: d.join("switchboard.toml"),
            routes_path: d.join("routes.toml"),
            log_path: d.join("gateway.log"),
            dir,
        };
        fs::write(&files.routes_path, routes).expect("routes.toml");
        files
    }

    fn write_config(&self, cfg: &GatewayConfig, port: u16, admin_port: u16) {
        fs::write(
            &self.config_path,
            cfg.render(
                &format!("127.0.0.1:{port}"),
                &format!("127.0.0.1:{admin_port}"),
                &self.routes_path,
            ),
        )
        .expect("config");
    }

    fn into_gateway(self, port: u16, admin_port: u16, runner: Runner) -> Gateway {
        Gateway {
            port,
            admin_port,
            dir: self.dir,
            config_path: self.config_path,
            routes_path: self.routes_path,
            log_path: self.log_path,
            runner,
        }
    }
}

impl Gateway {
    /// An in-process gateway with the default test config serving `routes`.
    pub fn start(routes: &str) -> Gateway {
        Self::start_with(&GatewayConfig::default(), routes)
    }

    /// An in-process gateway with `cfg` serving `routes`.
    pub fn start_with(cfg: &GatewayConfig, routes: &str) -> Gateway {
        Self::try_start(cfg, routes).unwrap_or_else(|log| panic!("gateway did not start:\n{log}"))
    }

    /// Starts an in-process gateway; `Err(log)` when it stops instead of serving.
    pub fn try_start(cfg: &GatewayConfig, routes: &str) -> Result<Gateway, String> {
        assert!(
            !cfg.dev,
            "--dev is a flag of the binary: use Gateway::spawn_with"
        );
        let files = Files::new(routes);
        let (listener, admin) = (bind_loopback(), bind_loopback());
        let port = listener.local_addr().expect("addr").port();
        let admin_port = admin.local_addr().expect("addr").port();
        files.write_config(cfg, port, admin_port);
        let gateway = InProcess::start(
            &files.config_path,
            listener,
            admin,
            &files.log_path,
            &cfg.log_level,
        );
        match wait_for_banner(|| gateway.is_running(), port, |b| !b.contains("OpenSSH")) {
            Started::Up => Ok(files.into_gateway(port, admin_port, Runner::InProcess(gateway))),
            Started::Exited => {
                drop(gateway);
                Err(fs::read_to_string(&files.log_path).unwrap_or_default())
            }
        }
    }

    /// The real binary with the default test config serving `routes`.
    pub fn spawn(routes: &str) -> Gateway {
        Self::spawn_with(&GatewayConfig::default(), routes)
    }

    /// The real binary with `cfg` serving `routes`.
    pub fn spawn_with(cfg: &GatewayConfig, routes: &str) -> Gateway {
        Self::try_spawn(cfg, routes).unwrap_or_else(|log| panic!("gateway did not start:\n{log}"))
    }

    /// Starts the real binary; `Err(log)` when it exits instead of serving.
    pub fn try_spawn(cfg: &GatewayConfig, routes: &str) -> Result<Gateway, String> {
        let files = Files::new(routes);
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let admin_port = free_port();
            files.write_config(cfg, port, admin_port);
            let log = File::create(&files.log_path).expect("gateway.log");
            let mut child = switchboard(files.dir.path())
                .arg("serve")
                .arg("--config")
                .arg(&files.config_path)
                .args(if cfg.dev { &["--dev"][..] } else { &[] })
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log fd"))
                .stderr(log)
                .spawn()
                .expect("spawn switchboard");
            match wait_for_banner(
                || matches!(child.try_wait(), Ok(None)),
                port,
                |b| !b.contains("OpenSSH"),
            ) {
                Started::Up => {
                    return Ok(files.into_gateway(port, admin_port, Runner::Process(child)));
                }
                Started::Exited => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_log = fs::read_to_string(&files.log_path).unwrap_or_default();
                    // Only a port taken under us is worth another try.
                    let in_use = last_log.to_lowercase().contains("in use");
                    if !in_use {
                        break;
                    }
                }
            }
        }
        Err(last_log)
    }

    /// The process of a [`Gateway::spawn`]ed gateway; panics for an in-process one.
    #[track_caller]
    fn process(&mut self, what: &str) -> &mut Child {
        match &mut self.runner {
            Runner::Process(child) => child,
            Runner::InProcess(_) => panic!(
                "{what} needs the gateway's process: start it with Gateway::spawn / spawn_with"
            ),
        }
    }

    /// The process id of a [`Gateway::spawn`]ed gateway (for `/proc/PID/…`).
    #[track_caller]
    pub fn pid(&mut self) -> u32 {
        self.process("a process id").id()
    }

    /// The binary's log (stderr): only for a [`Gateway::spawn`]ed gateway. An
    /// in-process gateway logs through the harness's subscriber, not `main`'s,
    /// so tests do not assert on that copy (it is printed when a test fails).
    #[track_caller]
    pub fn log(&self) -> String {
        assert!(
            matches!(self.runner, Runner::Process(_)),
            "the log is the binary's: start this gateway with Gateway::spawn / spawn_with"
        );
        self.read_log()
    }

    fn read_log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// True while the gateway runs (its process, or its in-process thread).
    pub fn is_alive(&mut self) -> bool {
        match &mut self.runner {
            Runner::Process(child) => matches!(child.try_wait(), Ok(None)),
            Runner::InProcess(gateway) => gateway.is_running(),
        }
    }

    /// Sends a signal (`"TERM"`, `"INT"`, …) to the gateway process.
    #[track_caller]
    pub fn signal(&mut self, name: &str) {
        let pid = self.process("a signal").id();
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the gateway process to exit; its exit code, or `None` on timeout.
    #[track_caller]
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<Option<i32>> {
        let child = self.process("an exit code");
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status.code());
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET path` on the admin endpoint: (status code, body).
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        http_get(self.admin_port, path)
    }

    /// The JSON objects of the log (with `log_format = "json"`).
    #[track_caller]
    pub fn json_log(&self) -> Vec<serde_json::Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The audit events of the JSON log.
    #[track_caller]
    pub fn audit_events(&self) -> Vec<serde_json::Value> {
        self.json_log()
            .into_iter()
            .filter(|v| v["target"] == "audit")
            .collect()
    }

    /// The audit events whose `event.action` is `action`.
    #[track_caller]
    pub fn audit(&self, action: &str) -> Vec<serde_json::Value> {
        self.audit_events()
            .into_iter()
            .filter(|v| v["event.action"] == action)
            .collect()
    }

    /// Replaces the routes file in place (what an operator's editor does).
    pub fn write_routes(&self, toml: &str) {
        fs::write(&self.routes_path, toml).expect("write routes");
    }

    /// Appends to the routes file.
    pub fn append_routes(&self, toml: &str) {
        let mut f = OpenOptions::new()
            .append(true)
            .open(&self.routes_path)
            .expect("open routes");
        f.write_all(toml.as_bytes()).expect("append routes");
    }

    /// `ssh` to this gateway with `key` and the test options, not yet run.
    pub fn ssh_cmd(&self, key: &Key) -> Command {
        ssh_command(self.port, &key.path)
    }

    /// Runs `ssh … ARGS` against this gateway (deadline [`SSH_TIMEOUT`]).
    pub fn ssh(&self, key: &Key, args: &[&str]) -> Output {
        ssh(self.port, key, args)
    }

    /// `switchboard SUBCOMMAND --config <this gateway's config>`.
    pub fn subcommand(&self, sub: &str) -> Output {
        run_switchboard(
            self.dir.path(),
            &[
                OsStr::new(sub),
                OsStr::new("--config"),
                self.config_path.as_os_str(),
            ],
        )
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let how = match &mut self.runner {
            Runner::Process(child) => {
                let _ = child.kill();
                let _ = child.wait();
                "gateway log"
            }
            Runner::InProcess(gateway) => {
                gateway.stop();
                "in-process gateway's diagnostic log"
            }
        };
        if thread::panicking() {
            eprintln!(
                "----- {how} (port {}) -----\n{}",
                self.port,
                tail(&self.read_log(), 200)
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

/// Options every test client uses: no user config, no prompts, no known_hosts.
pub fn client_opts() -> Vec<String> {
    client_opts_with_log_level("ERROR")
}

/// [`client_opts`] with another `LogLevel` (OpenSSH reports a refused
/// channel open at INFO).
pub fn client_opts_with_log_level(level: &str) -> Vec<String> {
    let mut opts: Vec<String> = [
        "-F",
        "/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
        "-o",
    ]
    .map(str::to_owned)
    .to_vec();
    opts.push(format!("LogLevel={level}"));
    opts
}

/// `ssh -p PORT -i KEY` with [`client_opts`].
pub fn ssh_command(port: u16, key: &Path) -> Command {
    let mut c = Command::new("ssh");
    c.args(client_opts())
        .arg("-p")
        .arg(port.to_string())
        .arg("-i")
        .arg(key);
    c
}

/// `ssh` with the test options at `level`, `-p PORT -i KEY`, and no agent
/// (`SSH_AUTH_SOCK` removed).
pub fn ssh_at(level: &str, port: u16, key: &Key) -> Command {
    let mut c = Command::new("ssh");
    c.args(client_opts_with_log_level(level))
        .arg("-p")
        .arg(port.to_string())
        .arg("-i")
        .arg(&key.path)
        .env_remove("SSH_AUTH_SOCK");
    c
}

/// `scp -P PORT -i KEY` with [`client_opts`].
pub fn scp_command(port: u16, key: &Path) -> Command {
    let mut c = Command::new("scp");
    c.args(client_opts())
        .arg("-P")
        .arg(port.to_string())
        .arg("-i")
        .arg(key);
    c
}

/// `sftp -P PORT -i KEY` with [`client_opts`].
pub fn sftp_command(port: u16, key: &Path) -> Command {
    let mut c = Command::new("sftp");
    c.args(client_opts())
        .arg("-P")
        .arg(port.to_string())
        .arg("-i")
        .arg(key);
    c
}

/// `(type, base64)` of the ed25519 key a server on `port` presents.
pub fn keyscan(port: u16) -> (String, String) {
    let out = run(
        Command::new("ssh-keyscan").args([
            "-T",
            "10",
            "-t",
            "ed25519",
            "-p",
            &port.to_string(),
            "127.0.0.1",
        ]),
        Input::Null,
        SSH_TIMEOUT,
    );
    let line = out
        .stdout
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .unwrap_or_else(|| panic!("ssh-keyscan found no key: {out:?}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f.len(), 3, "unexpected keyscan line {line:?}");
    (f[1].to_owned(), f[2].to_owned())
}

/// Runs `ssh -p PORT -i KEY ARGS` with a deadline; ARGS are destination and command.
pub fn ssh(port: u16, key: &Key, args: &[&str]) -> Output {
    run(
        ssh_command(port, &key.path).args(args),
        Input::Null,
        SSH_TIMEOUT,
    )
}

// ---------------------------------------------------------------------------
// Little servers
// ---------------------------------------------------------------------------

/// A TCP echo server on 127.0.0.1 (a thread per connection); returns its port.
pub fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind echo");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut r = conn;
                let mut w = match r.try_clone() {
                    Ok(w) => w,
                    Err(_) => return,
                };
                let _ = std::io::copy(&mut r, &mut w);
            });
        }
    });
    port
}

/// A plain HTTP/1.1 GET to 127.0.0.1:`port`: (status code, body); (0, "") when
/// nothing answers.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    http_request(port, "GET", path, None)
}

/// `METHOD path` to 127.0.0.1:`port`, with `Authorization: Bearer TOKEN`
/// when given: (status code, body); (0, "") when nothing answers.
pub fn http_request(port: u16, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if conn.write_all(request.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut response = String::new();
    let _ = conn.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A PROXY-protocol-speaking "load balancer" on 127.0.0.1: every connection
/// to the returned port is forwarded to 127.0.0.1:`upstream`, preceded by
/// `header` (a v1 or v2 PROXY header). Threads, copied both ways.
pub fn proxy_forwarder(upstream: u16, header: Vec<u8>) -> u16 {
    forwarder(upstream, header, Duration::ZERO)
}

/// A TCP forwarder to 127.0.0.1:`upstream` that waits `delay` before it
/// connects onward: a box that is slow to answer. Returns its port.
pub fn slow_forwarder(upstream: u16, delay: Duration) -> u16 {
    forwarder(upstream, Vec::new(), delay)
}

fn forwarder(upstream: u16, header: Vec<u8>, delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind forwarder");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let header = header.clone();
            thread::spawn(move || {
                thread::sleep(delay);
                let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    return;
                };
                if server.write_all(&header).is_err() {
                    return;
                }
                let (Ok(mut c2), Ok(mut s2)) = (client.try_clone(), server.try_clone()) else {
                    return;
                };
                let up = thread::spawn(move || {
                    let mut client = client;
                    let _ = std::io::copy(&mut client, &mut server);
                    let _ = server.shutdown(std::net::Shutdown::Write);
                });
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
                let _ = up.join();
            });
        }
    });
    port
}

/// A PROXY v1 header declaring `client` (`"203.0.113.7:50000"`) as the source.
pub fn proxy_v1(client: &str) -> Vec<u8> {
    let (ip, port) = client.rsplit_once(':').expect("ip:port");
    format!("PROXY TCP4 {ip} 127.0.0.1 {port} 2233\r\n").into_bytes()
}

/// A PROXY v2 header declaring the IPv4 `client` as the source.
pub fn proxy_v2(client: &str) -> Vec<u8> {
    let addr: std::net::SocketAddrV4 = client.parse().expect("ipv4:port");
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend([0x21, 0x11, 0, 12]);
    h.extend(addr.ip().octets());
    h.extend([127, 0, 0, 1]);
    h.extend(addr.port().to_be_bytes());
    h.extend(2233u16.to_be_bytes());
    h
}

/// A "black hole": accepts TCP connections and never says anything.
pub fn black_hole() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind black hole");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    port
}
