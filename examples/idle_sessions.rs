//! Benchmark helper (bench/suite.py, section `many`): thousands of idle SSH
//! sessions without thousands of processes, to measure the gateway's memory
//! and idle CPU per session where OpenSSH clients and sshd boxes (a process,
//! several MiB, per session) would run out of memory first.
//!
//! ```text
//! idle_sessions box PORT
//!     an SSH server on 127.0.0.1:PORT that accepts any key and any session
//!     and lets it idle (a box for the gateway's key mode)
//! idle_sessions clients PORT KEY USER COUNT PARALLEL
//!     COUNT connections to 127.0.0.1:PORT, each logged in with KEY as USER
//!     and running `sleep` in one session; prints "open N failed M" as it
//!     goes and "ready" when all are open, then holds them until killed
//! ```
//!
//! Loopback only; not part of the product.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, load_secret_key};
use russh::server::{self, Auth, Msg, Server as _, Session};
use russh::{Channel, ChannelId, client};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("box") if args.len() == 3 => serve_box(args[2].parse()?).await,
        Some("clients") if args.len() == 7 => {
            let key = load_secret_key(&args[3], None)?;
            let (count, parallel) = (args[5].parse()?, args[6].parse()?);
            open_clients(args[2].parse()?, key, &args[4], count, parallel).await
        }
        _ => Err("usage: idle_sessions box PORT | clients PORT KEY USER COUNT PARALLEL".into()),
    }
}

/// The box: accepts everyone, answers every request, sends nothing.
#[derive(Clone)]
struct IdleBox;

impl server::Server for IdleBox {
    type Handler = Self;
    fn new_client(&mut self, _: Option<std::net::SocketAddr>) -> Self {
        IdleBox
    }
}

impl server::Handler for IdleBox {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        _: &str,
        _: server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        _: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        // Held by russh's own channel table; this end never reads it.
        drop(channel);
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }
}

async fn serve_box(port: u16) -> Result<(), Error> {
    let key = switchboard::hostkey::derive(b"idle-sessions benchmark box, not secret");
    let config = Arc::new(server::Config {
        keys: vec![key],
        inactivity_timeout: None,
        auth_rejection_time: Duration::ZERO,
        ..server::Config::default()
    });
    let socket = TcpListener::bind(("127.0.0.1", port)).await?;
    IdleBox.run_on_socket(config, &socket).await?;
    Ok(())
}

/// Trusts the gateway's host key: both ends are this benchmark's own.
struct Trusting;

impl client::Handler for Trusting {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

async fn open_one(
    config: Arc<client::Config>,
    port: u16,
    key: Arc<PrivateKey>,
    user: String,
) -> Result<(client::Handle<Trusting>, Channel<client::Msg>), Error> {
    let mut handle = client::connect(config, ("127.0.0.1", port), Trusting).await?;
    let auth = handle
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, None))
        .await?;
    if !auth.success() {
        return Err("login refused".into());
    }
    let channel = handle.channel_open_session().await?;
    channel.exec(true, "sleep 86400").await?;
    Ok((handle, channel))
}

async fn open_clients(
    port: u16,
    key: PrivateKey,
    user: &str,
    count: usize,
    parallel: usize,
) -> Result<(), Error> {
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        ..client::Config::default()
    });
    let key = Arc::new(key);
    let gate = Arc::new(Semaphore::new(parallel));
    let (opened, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        let (config, key, user, gate) =
            (config.clone(), key.clone(), user.to_owned(), gate.clone());
        let (opened, failed) = (opened.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let result = open_one(config, port, key, user).await;
            drop(permit);
            match result {
                Ok(session) => {
                    let n = opened.fetch_add(1, Ordering::AcqRel) + 1;
                    if n % 500 == 0 {
                        println!("open {n} failed {}", failed.load(Ordering::Acquire));
                    }
                    // Held until the process is killed.
                    std::future::pending::<()>().await;
                    drop(session);
                }
                Err(e) => {
                    if failed.fetch_add(1, Ordering::AcqRel) == 0 {
                        eprintln!("first failure: {e}");
                    }
                }
            }
        }));
    }
    while opened.load(Ordering::Acquire) + failed.load(Ordering::Acquire) < count {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "ready open {} failed {}",
        opened.load(Ordering::Acquire),
        failed.load(Ordering::Acquire)
    );
    std::future::pending::<()>().await;
    Ok(())
}
