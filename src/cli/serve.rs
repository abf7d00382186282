//! `switchboard serve`: load everything, bind every listen address, run the
//! gateway until SIGTERM/SIGINT (drain), or a second signal (exit now).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::{ConfigArg, Error, fingerprint, host_key};
use crate::config::Config;
use crate::hostkey::{HostIdentity, timestamp, unprotected_key_file, watch_expiry};
use crate::routes::{LoginMethod, NO_USER_CA, RouteSources, UserTrust, file, trust};
use crate::server::Gateway;
use crate::server::admin;
use crate::server::admin::auth::AdminAuth;
use crate::upstream::UserCa;
use crate::wake::{Starter, Wakes};

/// How often the routes file is polled for changes when `sources.file.watch`.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// `serve` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Development mode: without a configured seed, use a built-in, public one
    /// (loudly warned about; never for a gateway people rely on).
    #[arg(long)]
    pub dev: bool,
}

/// Loads the seed and the routes (every problem is exit 2), then runs.
pub fn run(args: Args, config: Config) -> Result<(), Error> {
    let prepared = prepare(&config, args.dev)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(Error::Runtime)?;
    runtime.block_on(serve(config, prepared))
}

/// What `serve` runs, in the caller's runtime, on listeners the caller bound,
/// until `shutdown` is cancelled (then it drains as `serve` does): the
/// configuration from `config_path` without environment overrides, the host
/// key, the route sources and the admin endpoint, as `serve` starts them; no
/// signal handlers (they are the process's) and no `--dev`. Integration tests
/// run gateways in process with it.
pub async fn serve_on(
    config_path: &Path,
    listener: TcpListener,
    admin: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let config = Config::load_with_env(Some(config_path), Vec::new())
        .map_err(|e| Error::Invalid(anyhow!("{e}")))?;
    let prepared = prepare(&config, false)?;
    serve_bound(config, prepared, vec![listener], admin, shutdown).await
}

/// What `serve` loads before it binds anything.
struct Prepared {
    identity: HostIdentity,
    routes: Arc<RouteSources>,
    /// The sessions API's tokens.
    admin_auth: AdminAuth,
    /// The user CA (`upstream.user_ca_key_file`), when configured.
    user_ca: Option<Arc<UserCa>>,
}

/// Logs the configuration's warnings, derives the host key, loads the
/// routes and reads the admin tokens: every problem here is exit 2.
fn prepare(config: &Config, dev: bool) -> Result<Prepared, Error> {
    for w in &config.warnings {
        warn!("{w}");
    }
    let (identity, _) = host_key(config, dev)?;
    for w in &identity.warnings {
        warn!("{w}");
    }
    let user_ca = UserCa::load(&config.upstream, |w| warn!("{w}"))
        .map_err(|e| Error::Invalid(e.into()))?
        .map(Arc::new);
    if let Some(ca) = &user_ca {
        info!(fingerprint = %ca.fingerprint(), "user CA loaded for certificate logins");
    }
    let routes = initial_routes(config, user_ca.is_some())?;
    let trust = UserTrust::load(&config.server)
        .map_err(|problems| Error::Invalid(anyhow!("{}", problems.join("\n"))))?;
    routes.set_trust(Arc::new(trust));
    let admin_auth = AdminAuth::load(&config.admin).map_err(|e| Error::Invalid(e.into()))?;
    for (path, field) in [
        (&config.admin.read_token_file, "admin.read_token_file"),
        (&config.admin.write_token_file, "admin.write_token_file"),
    ] {
        if let Some(warning) = path.as_deref().and_then(|p| unprotected_key_file(p, field)) {
            warn!("{warning}");
        }
    }
    Ok(Prepared {
        identity,
        routes,
        admin_auth,
        user_ca,
    })
}

/// The first load of the routes file: a broken route is logged and skipped
/// (as is a `login = "certificate"` route without `user_ca`); a file that
/// cannot be read, or whose every route is broken, stops the start.
fn initial_routes(config: &Config, user_ca: bool) -> Result<Arc<RouteSources>, Error> {
    let path = &config.sources.file.path;
    let mut load = file::load(path).map_err(|e| Error::Invalid(e.into()))?;
    let mut unservable: Vec<String> = Vec::new();
    if !user_ca {
        load.routes.retain(|r| {
            let servable = r.login != LoginMethod::Certificate;
            if !servable {
                unservable.push(format!(
                    "{}: route \"{}\": {NO_USER_CA}",
                    path.display(),
                    r.name
                ));
            }
            servable
        });
    }
    if load.routes.is_empty() && !(load.errors.is_empty() && unservable.is_empty()) {
        let mut all: Vec<String> = load.errors.iter().map(ToString::to_string).collect();
        all.extend(unservable);
        return Err(Error::Invalid(anyhow!(
            "no usable route in {}:\n{}",
            path.display(),
            all.join("\n")
        )));
    }
    for e in load
        .errors
        .iter()
        .map(ToString::to_string)
        .chain(unservable)
    {
        error!("{e}; route skipped");
    }
    let sources = RouteSources::new();
    sources.set_user_ca(user_ca);
    sources.publish(file::SOURCE, load.routes);
    Ok(sources)
}

async fn serve(config: Config, prepared: Prepared) -> Result<(), Error> {
    let mut listeners = Vec::new();
    for addr in &config.server.listen {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {addr} (server.listen; another gateway there? \
                     choose another with SWITCHBOARD_SERVER_LISTEN or [server] listen)"
                )
            })
            .map_err(Error::Runtime)?;
        listeners.push(listener);
    }
    let admin = TcpListener::bind(config.admin.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (admin.listen; another gateway there? choose another \
                 with SWITCHBOARD_ADMIN_LISTEN or [admin] listen)",
                config.admin.listen
            )
        })
        .map_err(Error::Runtime)?;
    let shutdown = CancellationToken::new();
    watch_signals(shutdown.clone(), config.server.shutdown_grace)?;
    serve_bound(config, prepared, listeners, admin, shutdown).await
}

/// Starts the route sources, the admin endpoint and the gateway on bound
/// listeners; runs until `shutdown` is cancelled or a listener fails, then drains.
async fn serve_bound(
    config: Config,
    Prepared {
        identity,
        routes,
        admin_auth,
        user_ca,
    }: Prepared,
    listeners: Vec<TcpListener>,
    admin: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let cluster = start_kubernetes(&config, &routes).await?;
    let starter = wake_starter(&config).await?;
    let watcher = config.sources.file.watch.then(|| {
        file::spawn_watcher(
            config.sources.file.path.clone(),
            routes.clone(),
            WATCH_INTERVAL,
        )
    });
    let trust_watcher = trust::spawn_watcher(config.server.clone(), routes.clone(), WATCH_INTERVAL);
    let addrs: Vec<String> = listeners.iter().map(local_addr).collect();
    info!(
        "listening on {}, host key {}, {} routes; admin on http://{}",
        addrs.join(", "),
        fingerprint(identity.primary()),
        routes.table().load().len(),
        local_addr(&admin),
    );
    log_identity(&identity);
    let expiry = watch_expiry(&identity);
    let grace = config.server.shutdown_grace;
    let unready_window = config.server.accept_after_unready;
    let wakes = Wakes::new(config.wake.clone(), routes.table().clone(), starter);
    let gateway = Gateway::new(Arc::new(config), &identity, routes, wakes, user_ca);
    let admin_stop = CancellationToken::new();
    let endpoint = Arc::new(admin::Admin {
        health: gateway.health(),
        sessions: gateway.sessions(),
        auth: admin_auth,
    });
    let admin_task = tokio::spawn(admin::serve(admin, endpoint, admin_stop.clone()));
    let accepting = CancellationToken::new();
    tokio::spawn(accept_after_unready(
        shutdown.clone(),
        accepting.clone(),
        gateway.health(),
        unready_window,
    ));
    let mut tasks = JoinSet::new();
    for listener in listeners {
        tasks.spawn(gateway.clone().run(listener, accepting.clone()));
    }
    // Listeners end when `accepting` is cancelled (a signal, after the
    // unready window) or one fails.
    let result = wait_all(&mut tasks, &accepting).await;
    shutdown.cancel();
    accepting.cancel();
    gateway.drain(grace).await;
    admin_stop.cancel();
    let _ = admin_task.await;
    for watcher in [watcher, trust_watcher].into_iter().flatten() {
        watcher.abort();
    }
    if let Some(expiry) = expiry {
        expiry.abort();
    }
    if let Some(cluster) = cluster {
        cluster.abort();
    }
    info!("stopped");
    result
}

/// Every host key and certificate presented, one line each.
fn log_identity(identity: &HostIdentity) {
    for k in &identity.keys {
        info!(
            "host key {} {} ({})",
            k.key.algorithm(),
            fingerprint(&k.key),
            k.source
        );
    }
    for c in &identity.certificates {
        let cert = &c.certificate;
        info!(
            "host certificate {} for {} (key ID {:?}, principals {}, valid until {})",
            c.path.display(),
            cert.public_key().fingerprint(russh::keys::HashAlg::Sha256),
            cert.key_id(),
            cert.valid_principals().join(","),
            timestamp(cert.valid_before()),
        );
    }
}

/// Once `shutdown` is cancelled: `/readyz` turns 503 at once, and new
/// connections are still accepted for `window` (`server.accept_after_unready`)
/// while load balancers and Endpoints stop sending; then `accepting` is
/// cancelled, which closes the listeners.
async fn accept_after_unready(
    shutdown: CancellationToken,
    accepting: CancellationToken,
    health: Arc<admin::Health>,
    window: Duration,
) {
    shutdown.cancelled().await;
    if !window.is_zero() {
        health.start_draining();
        info!("not ready; still accepting new connections for {window:?}");
        tokio::select! {
            () = tokio::time::sleep(window) => {}
            () = accepting.cancelled() => {}
        }
    }
    accepting.cancel();
}

/// Starts the Kubernetes route source when enabled. The gateway serves no
/// client (and `/readyz` is 503) until its first full sync.
#[cfg(feature = "kubernetes")]
async fn start_kubernetes(
    config: &Config,
    routes: &Arc<RouteSources>,
) -> Result<Option<tokio::task::JoinHandle<()>>, Error> {
    if !config.sources.kubernetes.enabled {
        return Ok(None);
    }
    crate::routes::kube::start(&config.sources.kubernetes, routes.clone())
        .await
        .context("starting the Kubernetes route source")
        .map(Some)
        .map_err(Error::Runtime)
}

/// The cluster client that starts stopped boxes, when
/// `sources.kubernetes.wake` is on.
#[cfg(feature = "kubernetes")]
async fn wake_starter(config: &Config) -> Result<Option<Arc<dyn Starter>>, Error> {
    let k = &config.sources.kubernetes;
    if !(k.enabled && k.wake) {
        return Ok(None);
    }
    let (client, _) = crate::routes::kube::client(k, None)
        .await
        .map_err(Error::Runtime)?;
    Ok(Some(Arc::new(crate::wake::kube::KubeStarter::new(client))))
}

#[cfg(not(feature = "kubernetes"))]
async fn wake_starter(_config: &Config) -> Result<Option<Arc<dyn Starter>>, Error> {
    Ok(None)
}

#[cfg(not(feature = "kubernetes"))]
async fn start_kubernetes(
    config: &Config,
    _routes: &Arc<RouteSources>,
) -> Result<Option<tokio::task::JoinHandle<()>>, Error> {
    if config.sources.kubernetes.enabled {
        return Err(Error::Invalid(anyhow!(
            "sources.kubernetes.enabled: this build has no Kubernetes support (cargo feature `kubernetes`)"
        )));
    }
    Ok(None)
}

fn local_addr(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map_or_else(|_| "?".into(), |a| a.to_string())
}

/// Waits for every listener; the first failure stops the others.
async fn wait_all(
    tasks: &mut JoinSet<std::io::Result<()>>,
    shutdown: &CancellationToken,
) -> Result<(), Error> {
    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        let failure = match joined {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => anyhow::Error::new(e).context("listener failed"),
            Err(e) => anyhow::Error::new(e).context("listener task ended abnormally"),
        };
        error!(error = format!("{failure:#}"), "stopping");
        shutdown.cancel();
        if result.is_ok() {
            result = Err(Error::Runtime(failure));
        }
    }
    result
}

/// First SIGTERM/SIGINT cancels `shutdown` (stop accepting, drain); a second
/// one exits at once.
fn watch_signals(shutdown: CancellationToken, grace: Duration) -> Result<(), Error> {
    let install = |kind, name| {
        signal(kind)
            .with_context(|| format!("installing the {name} handler"))
            .map_err(Error::Runtime)
    };
    let mut term = install(SignalKind::terminate(), "SIGTERM")?;
    let mut int = install(SignalKind::interrupt(), "SIGINT")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => info!(signal = "SIGTERM", "shutting down; draining for up to {grace:?}"),
            _ = int.recv() => info!(signal = "SIGINT", "shutting down; draining for up to {grace:?}"),
        }
        shutdown.cancel();
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        warn!("second signal: exiting now");
        std::process::exit(1);
    });
    Ok(())
}
