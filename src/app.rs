//! The daemon's life: prepare state_dir, bind, serve, start the streams (`streams::Streams::open`
//! and `start_all`: CREATING meanwhile), serve until shutdown (or a fatal local error), drain.

mod network;
mod reload;

pub use network::check as check_network;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::anyhow;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::api::{self, AppState, ServeOptions};
use crate::aws;
use crate::config::Config;
use crate::fatal::Fatal;
use crate::notify::Notifier;
use crate::spool::Budget;
use crate::streams::{self, Builder, Streams};
use network::Network;

/// Where the configuration came from, and the signal to read it again (SIGHUP).
pub struct Reload {
    pub path: std::path::PathBuf,
    /// The command line's settings, over the file's at every reload too.
    pub overrides: crate::config::Overrides,
    pub requests: mpsc::Receiver<()>,
}

/// Runs until `shutdown` resolves, then drains every stream (all buffers delivered). Each
/// `reload` request re-reads the configuration file (see `reload`). Returns Err after a fatal
/// local error (nothing more is taken; what was acknowledged is replayed after a restart).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    reload: Option<Reload>,
) -> anyhow::Result<()> {
    streams::prepare_dir(&config.state_dir).map_err(|e| {
        anyhow!(
            "state_dir {} is not writable: {e}",
            config.state_dir.display()
        )
    })?;
    streams::check_open_files(&config.streams)?;
    warn_if_the_reserve_is_out_of_reach(&config);
    let network = Network::load(&config)?;
    let (listener, metrics_listener) = bind_all(&config).await?;
    let local = listener.local_addr()?;
    let (fatal_tx, mut fatal) = crate::fatal::channel();
    let builder = builder(&config, fatal_tx).await;
    let (streams, earlier) = Streams::open(&config, builder)?;
    let (stop, stopping) = watch::channel(false);
    let body_timeout = Duration::from_secs(config.server.body_timeout_seconds);
    let auth = network.auth.clone();
    let state = Arc::new(AppState::new(streams, stopping, auth, body_timeout));
    // Served while the streams start: a start-up check waiting out a fault (up to two minutes)
    // leaves the daemon answering, its streams CREATING and /readyz 503, as a stream being
    // created through the API is.
    let mut server = Server::start(
        Listeners {
            api: (listener, network.serve_options(&config)),
            metrics: metrics_listener.map(|l| (l, Network::metrics_options(&config))),
        },
        state.clone(),
        stop,
    );
    if let Err(e) = state.streams.start_all(&config, earlier).await {
        let _ = server.stop.send(true);
        let _ = tokio::time::timeout(FATAL_GRACE, &mut server.task).await;
        server.abort();
        return Err(e.into());
    }

    // Listeners bound, pipelines started: ready (/readyz; systemd's Type=notify below), before
    // the line that tells scripts so.
    state.ready.store(true, Ordering::Release);
    // The one line on stdout, once every stream runs: tests and scripts read the bound
    // address from it and send records at once.
    let scheme = if network.tls.is_some() {
        "https"
    } else {
        "http"
    };
    println!("firehosed listening on {scheme}://{local}");
    let count = state.streams.all().len();
    tracing::info!(listen = %local, streams = count, auth = network.auth.is_some(),
        tls = network.tls.is_some(), "ready");
    let notifier = Notifier::from_env();
    notifier.ready(&format!("serving {count} delivery streams on {local}"));
    notifier.spawn_watchdog();
    let network = Arc::new(network);
    let reloader = reload.map(|r| {
        let looping = reload_loop(state.clone(), network.clone(), r, notifier.clone());
        tokio::spawn(looping)
    });
    let stop = tokio::select! {
        () = shutdown => Stop::Signal,
        f = fatal.recv() => Stop::Fatal(f),
        ended = &mut server.task => Stop::ServerEnded(ended),
    };
    state.ready.store(false, Ordering::Release);
    notifier.stopping();
    match stop {
        Stop::Signal => {}
        Stop::Fatal(f) => return Err(fatal_error(f, server).await),
        Stop::ServerEnded(ended) => return Err(server_error(ended)),
    }
    let deadline = drain(&config, &state, server).await;
    // A reload in progress finished the change it was making (the drain waited for it) and
    // left the rest; the loop ends on the server's stop.
    if let Some(r) = reloader
        && tokio::time::timeout_at(deadline, r).await.is_err()
    {
        tracing::warn!("the reload in progress did not end within the drain timeout");
    }
    // A staging step that failed during the drain: its records are replayed after a restart;
    // the exit says so (1), as it would have while serving.
    if let Ok(f) = fatal.try_recv() {
        return Err(anyhow::Error::new(f));
    }
    Ok(())
}

/// A state_dir whose filesystem has less free space than the spool's reserve takes no record
/// until space is freed: say so at the start rather than only with every "Slow down.".
fn warn_if_the_reserve_is_out_of_reach(config: &Config) {
    let reserve = config.spool.disk_reserve_mib * 1024 * 1024;
    if let Ok(free) = crate::disk::available(&config.state_dir)
        && free <= reserve
    {
        tracing::warn!(state_dir = %config.state_dir.display(), free_mib = free / (1024 * 1024),
            reserve_mib = config.spool.disk_reserve_mib,
            "state_dir's filesystem has less free space than spool.disk_reserve_mib: no record is accepted until space is freed (or the reserve lowered)");
    }
}

/// The API's listener and the metrics listener, if any.
async fn bind_all(config: &Config) -> anyhow::Result<(TcpListener, Option<TcpListener>)> {
    let api = bind(config.listen).await?;
    let metrics = match config.metrics_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    Ok((api, metrics))
}

async fn bind(addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow!("cannot listen on {addr}: {e}"))
}

/// What ended the serving.
enum Stop {
    Signal,
    Fatal(Option<Fatal>),
    ServerEnded(Result<std::io::Result<()>, tokio::task::JoinError>),
}

/// The builder of streams, with the AWS SDK's configuration loaded only when a file stream
/// needs it (an API stream that does loads it then).
pub(crate) async fn builder(config: &Config, fatal: crate::fatal::FatalSender) -> Builder {
    let sdk = if config.streams.iter().any(|s| streams::needs_aws(s, false)) {
        Some(aws::sdk_config(&config.aws).await)
    } else {
        None
    };
    let region = sdk
        .as_ref()
        .map(aws::region_name)
        .or_else(|| config.aws.region.clone())
        .unwrap_or_else(|| "us-east-1".into());
    let reserve = config.spool.disk_reserve_mib * 1024 * 1024;
    let room = crate::disk::Room::new(config.state_dir.clone(), reserve);
    let budget = Budget::new(config.spool.max_size_mib * 1024 * 1024, Some(room));
    Builder::new(config.clone(), sdk, region, budget, fatal)
}

/// The API's listener and, when `metrics_listen` is set, the metrics listener.
struct Listeners {
    api: (TcpListener, ServeOptions),
    metrics: Option<(TcpListener, ServeOptions)>,
}

/// The HTTP server tasks and the switch that starts their shutdown.
struct Server {
    task: JoinHandle<std::io::Result<()>>,
    /// The metrics listener: it ends with the API's (the drain stops both).
    metrics: Option<JoinHandle<std::io::Result<()>>>,
    stop: watch::Sender<bool>,
}

impl Server {
    fn start(listeners: Listeners, state: Arc<AppState>, stop: watch::Sender<bool>) -> Server {
        let (listener, options) = listeners.api;
        let with_metrics = listeners.metrics.is_none();
        let router = api::router(state.clone(), with_metrics);
        let serve = api::serve(listener, router, stop.subscribe(), options);
        let metrics = listeners.metrics.map(|(listener, options)| {
            let router = api::metrics_router(state);
            tokio::spawn(api::serve(listener, router, stop.subscribe(), options))
        });
        Server {
            task: tokio::spawn(serve),
            metrics,
            stop,
        }
    }

    fn abort(&self) {
        self.task.abort();
        if let Some(m) = &self.metrics {
            m.abort();
        }
    }
}

/// How long answers being written when a fatal error stops the daemon may take: their records
/// are durable already, and a client that is cut off before its answer sends them again (found
/// by tests/e2e/durability.rs, whose PutRecordBatch lost its answer to the exit now and then).
const FATAL_GRACE: Duration = Duration::from_secs(2);

async fn fatal_error(fatal: Option<Fatal>, mut server: Server) -> anyhow::Error {
    // No new connection is taken; requests being handled finish, within the grace.
    let _ = server.stop.send(true);
    let _ = tokio::time::timeout(FATAL_GRACE, &mut server.task).await;
    server.abort();
    match fatal {
        Some(f) => {
            tracing::error!(destination = %f.component, error = %f.reason,
                "stopping: records past the delivered cursor will be replayed after a restart");
            anyhow::Error::new(f)
        }
        None => anyhow!("a fatal error was reported without its reason"),
    }
}

fn server_error(ended: Result<std::io::Result<()>, tokio::task::JoinError>) -> anyhow::Error {
    match ended {
        Ok(Ok(())) => anyhow!("the HTTP server stopped unexpectedly"),
        Ok(Err(e)) => anyhow!("HTTP server failed: {e}"),
        Err(e) => anyhow!("HTTP server failed: {e}"),
    }
}

/// How long requests being handled may take once the drain begins (the server stopped
/// taking new ones): enough to make records durable or answer; a client that does not read its
/// answer, or a flush waiting on a slow destination, is cut off after it so that the drain
/// itself keeps its time.
const REQUEST_GRACE: Duration = Duration::from_secs(5);

/// Everything shares one deadline: requests being handled (for at most `REQUEST_GRACE`), then
/// the drain of every stream; returns that deadline.
async fn drain(config: &Config, state: &AppState, mut server: Server) -> tokio::time::Instant {
    let grace = Duration::from_secs(config.drain_timeout_seconds);
    let deadline = tokio::time::Instant::now() + grace;
    let _ = server.stop.send(true);
    let requests_until = deadline.min(tokio::time::Instant::now() + REQUEST_GRACE);
    if tokio::time::timeout_at(requests_until, &mut server.task)
        .await
        .is_err()
    {
        tracing::warn!("requests still being handled when the drain began are cut off");
    }
    server.abort();
    tracing::info!(
        timeout_seconds = grace.as_secs(),
        "draining: sealing buffers and delivering them"
    );
    if state.streams.close_all(deadline).await {
        tracing::info!("drained");
    }
    deadline
}

/// Applies each reload request in turn (RELOADING=1 ... READY=1 to systemd around it).
async fn reload_loop(
    state: Arc<AppState>,
    network: Arc<Network>,
    mut r: Reload,
    notifier: Notifier,
) {
    let mut stopping = state.stopping.clone();
    loop {
        // The drain stops the loop between reloads; one in progress finishes its current change.
        let requested = tokio::select! {
            r = r.requests.recv() => r.is_some(),
            _ = stopping.wait_for(|s| *s) => false,
        };
        if !requested {
            return;
        }
        notifier.send("RELOADING=1");
        match reload::reload(&state.streams, &network, &r.path, &r.overrides).await {
            Ok(out) => {
                if !out.removed.is_empty() {
                    // Their records were delivered and their state is gone: say so loudly.
                    tracing::warn!(removed = ?out.removed,
                        "the reloaded configuration no longer has these delivery streams: they were drained and removed");
                }
                tracing::info!(added = ?out.added, removed = ?out.removed,
                    changed = ?out.changed, "configuration reloaded");
            }
            Err(e) => tracing::error!(file = %r.path.display(), errors = %e,
                "the new configuration is invalid; the running one stays"),
        }
        notifier.ready(&format!(
            "serving {} delivery streams",
            state.streams.all().len()
        ));
    }
}
