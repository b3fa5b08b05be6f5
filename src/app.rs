//! The daemon's life: prepare state_dir, bind, build pipelines (`build`), serve until
//! shutdown, drain.

pub mod build;
pub mod open_files;
pub mod reload;

use std::collections::BTreeMap;
use std::future::{Future, IntoFuture};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::aws;
use crate::config::{Config, SourceConfig, Target};
use crate::control::{Control, Status, api_stream_config};
use crate::spool::Budget;
use build::Builder;

/// Where the configuration came from, and the signal to read it again (SIGHUP).
pub struct Reload {
    pub path: std::path::PathBuf,
    pub requests: tokio::sync::mpsc::Receiver<()>,
}

/// Runs until `shutdown` resolves, then drains every stream (all buffers delivered). Each
/// `reload` request re-reads the configuration file (see `reload`).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    reload: Option<Reload>,
) -> anyhow::Result<()> {
    prepare_state_dir(&config.state_dir)?;
    open_files::check(&config.streams).map_err(|e| anyhow!(e))?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow!("cannot listen on {}: {e}", config.listen))?;
    let local = listener.local_addr()?;

    let needs_aws = config.streams.iter().any(|s| {
        matches!(s.source, SourceConfig::Kinesis(_))
            || s.destinations
                .iter()
                .any(|d| matches!(d.target, Target::S3 { .. }))
    });
    let sdk = if needs_aws {
        Some(aws::sdk_config(&config.aws).await)
    } else {
        None
    };
    let region = sdk
        .as_ref()
        .map(aws::region_name)
        .or_else(|| config.aws.region.clone())
        .unwrap_or_else(|| "us-east-1".into());

    let budget = Budget::new(config.spool.max_size_mib * 1024 * 1024);
    let control = Control::open(
        &config.state_dir,
        &config.streams,
        config.relax_aws_limits,
        crate::control::request::Local {
            catalog: config.glue_catalog_dir.clone(),
            functions: config.lambda_functions.clone(),
        },
    )
    .with_context(|| format!("reading {}", config.state_dir.join("streams").display()))?;
    let builder = Builder::new(config.clone(), sdk, region.clone(), budget);
    let mut streams = BTreeMap::new();
    for sc in &config.streams {
        let version = control.get(&sc.name).map_or(1, |r| r.version);
        let stream = builder.build(sc, version).await?;
        streams.insert(sc.name.clone(), Arc::new(stream));
    }
    // Streams created through the API in an earlier run: one that cannot start is reported as
    // CREATING_FAILED and does not stop the others.
    for (name, record) in control.api_streams() {
        if record.deleting {
            // DeleteDeliveryStream began before the restart: finish it.
            crate::control::remove_state(&config.state_dir, &name);
            control.remove(&name);
            tracing::info!(stream = %name, "finished deleting a stream");
            continue;
        }
        if let Status::Failed(_) = record.status {
            continue;
        }
        let checked = match record.request.as_ref() {
            Some(req) => api_stream_config(req, &control).map_err(|e| anyhow!(e.message)),
            None => Err(anyhow!("its record holds no request")),
        };
        if let Ok(sc) = &checked {
            let sc = sc.clone();
            let _ = control.update(&name, |r| {
                r.config = Some(sc);
                Ok(())
            });
        }
        // Counted with the streams already started: one that would pass the open-file limit
        // (lowered since it was created) does not start.
        let checked = checked.and_then(|sc| {
            let started = streams.values().map(|s: &Arc<_>| &s.config);
            open_files::check(started.chain([&sc]))
                .map(|()| sc)
                .map_err(|e| anyhow!(e))
        });
        let built = match checked {
            Ok(sc) => builder.build(&sc, record.version).await,
            Err(e) => Err(e),
        };
        match built {
            Ok(stream) => {
                streams.insert(name.clone(), Arc::new(stream));
            }
            Err(e) => {
                tracing::error!(stream = %name, error = %format!("{e:#}"),
                    "a stream created through the API cannot start (delete it, or restart once its target is reachable)");
                control.set_status(&name, Status::Failed(format!("{e:#}")));
            }
        }
    }
    let state = Arc::new(AppState {
        streams: std::sync::RwLock::new(streams),
        region,
        account_id: config.aws.account_id.clone(),
        ready: std::sync::atomic::AtomicBool::new(false),
        control,
        builder,
        changes: std::sync::Mutex::new(BTreeMap::new()),
        admission: tokio::sync::Mutex::new(()),
    });

    // The one line on stdout: tests and scripts read the bound address from it.
    println!("firehosed listening on http://{local}");
    tracing::info!(listen = %local, streams = state.all_streams().len(), "ready");
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server =
        axum::serve(listener, api::router(state.clone())).with_graceful_shutdown(async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        });
    let mut server = tokio::spawn(server.into_future());
    // Listeners bound, pipelines started: ready (systemd's Type=notify, /readyz).
    state
        .ready
        .store(true, std::sync::atomic::Ordering::Release);
    let notifier = crate::notify::Notifier::from_env();
    notifier.ready(&format!(
        "serving {} delivery streams on {local}",
        state.all_streams().len()
    ));
    notifier.spawn_watchdog();
    let reloader = reload.map(|r| tokio::spawn(reload_loop(state.clone(), r, notifier.clone())));
    tokio::select! {
        () = shutdown => {}
        ended = &mut server => {
            return match ended {
                Ok(Ok(())) => Err(anyhow!("the HTTP server stopped unexpectedly")),
                Ok(Err(e)) => Err(anyhow!("HTTP server failed: {e}")),
                Err(e) => Err(anyhow!("HTTP server failed: {e}")),
            };
        }
    }

    // Everything from here on shares one deadline: requests in flight (a flush waiting on S3),
    // then the drain of every stream.
    let grace = Duration::from_secs(config.drain_timeout_seconds);
    let deadline = tokio::time::Instant::now() + grace;
    state
        .ready
        .store(false, std::sync::atomic::Ordering::Release);
    notifier.stopping();
    if let Some(r) = reloader {
        r.abort();
    }
    let _ = stop_tx.send(true);
    if tokio::time::timeout_at(deadline, &mut server)
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight at the drain timeout are cut off");
        server.abort();
    }
    tracing::info!(
        timeout_seconds = grace.as_secs(),
        "draining: sealing buffers and delivering them"
    );
    let mut closing = tokio::task::JoinSet::new();
    for stream in state.all_streams() {
        closing.spawn(async move { stream.close().await });
    }
    let drained = tokio::time::timeout_at(deadline, async {
        while closing.join_next().await.is_some() {}
    })
    .await;
    match drained {
        Ok(()) => tracing::info!("drained"),
        Err(_) => {
            for s in state.all_streams() {
                tracing::warn!(stream = %s.name(), undelivered_records = s.log.backlog(),
                    "drain timeout: these records stay in the spool and are delivered after the next start");
            }
        }
    }
    Ok(())
}

/// Applies each reload request in turn (RELOADING=1 ... READY=1 to systemd around it).
async fn reload_loop(state: Arc<AppState>, mut r: Reload, notifier: crate::notify::Notifier) {
    while r.requests.recv().await.is_some() {
        notifier.send("RELOADING=1");
        match reload::reload(&state, &r.path).await {
            Ok(out) => tracing::info!(added = ?out.added, removed = ?out.removed,
                changed = ?out.changed, "configuration reloaded"),
            Err(e) => tracing::error!(file = %r.path.display(), errors = %e,
                "the new configuration is invalid; the running one stays"),
        }
        notifier.ready(&format!(
            "serving {} delivery streams",
            state.all_streams().len()
        ));
    }
}

fn prepare_state_dir(dir: &Path) -> anyhow::Result<()> {
    prepare_dir(dir, "state_dir")
}

/// Creates `dir` and proves it writable.
fn prepare_dir(dir: &Path, what: &str) -> anyhow::Result<()> {
    let fail = |e: std::io::Error| anyhow!("{what} {} is not writable: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(".write-probe");
    std::fs::write(&probe, b"ok").map_err(fail)?;
    std::fs::remove_file(&probe).map_err(fail)?;
    Ok(())
}
