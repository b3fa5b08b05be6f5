//! The daemon's life: prepare state_dir, bind, build pipelines, serve until shutdown, drain.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use std::future::IntoFuture;

use anyhow::{Context, anyhow};
use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::aws;
use crate::config::{
    Config, KinesisStreamRef, SourceConfig, StartingPosition, StreamConfig, Target,
};
use crate::destination::directory::DirectorySink;
use crate::destination::naming::Naming;
use crate::destination::s3::S3Sink;
use crate::destination::sink::Sink;
use crate::destination::stagers::ACTIVE_ENCODERS;
use crate::destination::staging::clear_leftovers;
use crate::destination::{DestinationHandle, OnDelivered, Staging};
use crate::encode::Compression;
use crate::metrics::{DestinationMetrics, StreamMetrics};
use crate::processing::transform;
use crate::source::Log;
use crate::source::kinesis::{self, checkpoint::Checkpoints, metrics::KinesisMetrics};
use crate::source::memlog::MemoryLog;
use crate::spool::{Budget, Spool, SpoolSettings};
use crate::stream::{DeliveryStream, Destination as StreamDestination};

/// Runs until `shutdown` resolves, then drains every stream (all buffers delivered).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    prepare_state_dir(&config.state_dir)?;
    check_open_files(&config)?;
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
    let mut streams = BTreeMap::new();
    for sc in &config.streams {
        let arn = format!(
            "arn:aws:firehose:{region}:{}:deliverystream/{}",
            config.aws.account_id, sc.name
        );
        let stream = build_stream(&config, sc, sdk.as_ref(), arn, &region, budget.clone()).await?;
        streams.insert(sc.name.clone(), Arc::new(stream));
    }
    let state = Arc::new(AppState {
        streams,
        region,
        account_id: config.aws.account_id.clone(),
        ready: std::sync::atomic::AtomicBool::new(false),
    });

    // The one line on stdout: tests and scripts read the bound address from it.
    println!("firehosed listening on http://{local}");
    tracing::info!(listen = %local, streams = state.streams.len(), "ready");
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
        state.streams.len()
    ));
    notifier.spawn_watchdog();
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
    for stream in state.streams.values() {
        let stream = stream.clone();
        closing.spawn(async move { stream.close().await });
    }
    let drained = tokio::time::timeout_at(deadline, async {
        while closing.join_next().await.is_some() {}
    })
    .await;
    match drained {
        Ok(()) => tracing::info!("drained"),
        Err(_) => {
            for s in state.streams.values() {
                tracing::warn!(stream = %s.name(), undelivered_records = s.log.backlog(),
                    "drain timeout: these records stay in the spool and are delivered after the next start");
            }
        }
    }
    Ok(())
}

/// A partitioning destination keeps up to `ACTIVE_ENCODERS` staging files open (idle partitions
/// are suspended): raise the open-file limit to its hard maximum and refuse a configuration
/// whose files could not all be open at once.
fn check_open_files(config: &Config) -> anyhow::Result<()> {
    let partitions: u64 = config
        .streams
        .iter()
        .flat_map(|s| &s.destinations)
        .filter_map(|d| d.dynamic_partitioning.map(|dp| (dp, d.compression)))
        .map(|(dp, compression)| {
            // A ZIP entry cannot be split: ZIP partitions are never suspended.
            let open = if compression == Compression::Zip {
                dp.max_active_partitions
            } else {
                dp.max_active_partitions.min(ACTIVE_ENCODERS)
            };
            open as u64
        })
        .sum();
    if partitions == 0 {
        return Ok(());
    }
    let limit = raise_open_file_limit();
    // Room for the spool, sockets, the transform's pipes and the other staging files.
    let needed = partitions + 256;
    if needed > limit {
        return Err(anyhow!(
            "the dynamic partitioning destinations may keep {partitions} staging files open at \
             once, but the open-file limit is {limit}: raise the limit (LimitNOFILE= in the \
             systemd unit, ulimit -n)"
        ));
    }
    Ok(())
}

/// Raises the soft open-file limit to the hard one; returns the limit in force.
fn raise_open_file_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    lim.rlim_cur
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

async fn build_stream(
    config: &Config,
    sc: &StreamConfig,
    sdk: Option<&aws_config::SdkConfig>,
    arn: String,
    region: &str,
    budget: Arc<Budget>,
) -> anyhow::Result<DeliveryStream> {
    let version = 1;
    let (log, kinesis) = match &sc.source {
        SourceConfig::DirectPut => {
            let spool_dir = config.state_dir.join("spool").join(&sc.name);
            let settings = SpoolSettings {
                segment_bytes: config.spool.segment_size_mib * 1024 * 1024,
                fsync: config.spool.fsync,
            };
            let spool = Spool::open(&spool_dir, sc.destinations.len(), settings, budget)
                .with_context(|| format!("opening the spool {}", spool_dir.display()))?;
            (Log::Spool(Arc::new(spool)), None)
        }
        SourceConfig::Kinesis(k) => {
            let sdk = sdk.ok_or_else(|| anyhow!("no AWS configuration was loaded"))?;
            let endpoint = k
                .endpoint_url
                .as_deref()
                .or(config.aws.endpoint_url.as_deref());
            let client = aws::kinesis_client(sdk, endpoint);
            kinesis::check_stream(&client, &k.stream)
                .await
                .map_err(|e| anyhow!("delivery stream {}: {e}", sc.name))?;
            let dir = config
                .state_dir
                .join("checkpoints")
                .join(&sc.name)
                .join(k.stream.name());
            let checkpoints = Arc::new(
                Checkpoints::load(&dir)
                    .with_context(|| format!("loading checkpoints from {}", dir.display()))?,
            );
            let (origin, first_start) =
                checkpoints.origin(k.starting_position, crate::record::now_ms())?;
            let first_start_latest = first_start && k.starting_position == StartingPosition::Latest;
            let ck = checkpoints.clone();
            let memory = MemoryLog::new(
                sc.destinations.len(),
                (k.max_buffered_mib * 1024 * 1024) as usize,
                Box::new(move |records, floor| ck.released(records, floor)),
            );
            (
                Log::Memory(memory.clone()),
                Some((client, k, memory, checkpoints, origin, first_start_latest)),
            )
        }
    };
    let mut destinations = Vec::new();
    for (i, d) in sc.destinations.iter().enumerate() {
        let label = format!("{}[{i}]", sc.name);
        let sink = match (&d.target, sdk) {
            (
                Target::S3 {
                    bucket,
                    endpoint_url,
                },
                Some(sdk),
            ) => {
                let endpoint = endpoint_url
                    .as_deref()
                    .or(config.aws.endpoint_url.as_deref());
                let client = aws::s3_client(sdk, endpoint, config.aws.force_path_style);
                let s3 = S3Sink::new(client, bucket.clone());
                check_with_retries(&s3)
                    .await
                    .map_err(|e| anyhow!("delivery stream {}: {e}", sc.name))?;
                Sink::S3(s3)
            }
            (Target::Directory(root), _) => {
                prepare_dir(root, "directory destination")
                    .map_err(|e| anyhow!("delivery stream {}: {e}", sc.name))?;
                Sink::Directory(DirectorySink::new(root.clone()))
            }
            (Target::S3 { .. }, None) => return Err(anyhow!("no AWS configuration was loaded")),
        };
        let staging_dir = config
            .state_dir
            .join("staging")
            .join(&sc.name)
            .join(i.to_string());
        std::fs::create_dir_all(&staging_dir)
            .with_context(|| format!("creating {}", staging_dir.display()))?;
        let left = clear_leftovers(&staging_dir)?;
        if left > 0 {
            tracing::warn!(destination = %label, files = left,
                "removed staging files of a previous run that were never delivered");
        }
        let naming = Naming {
            stream: sc.name.clone(),
            version,
            prefix: d.prefix_template.clone(),
            extension: d.file_extension.clone(),
            time_zone: d.time_zone,
            error: None,
            partition: None,
        };
        let staging = Staging::build(
            staging_dir,
            naming,
            d,
            sc.processing.append_delimiter_to_record,
        );
        let metrics = Arc::new(DestinationMetrics::default());
        tracing::info!(destination = %label, target = %sink.describe(), "destination ready");
        let acks = log.clone();
        let on_delivered: OnDelivered = Arc::new(move |next_seq| acks.release(i, next_seq));
        let handle = DestinationHandle::spawn(
            label,
            staging,
            Duration::from_secs(d.buffering.interval_seconds),
            sink,
            metrics.clone(),
            on_delivered,
            log.cursor(i),
        );
        destinations.push(StreamDestination {
            handle,
            metrics,
            backup: d.source_record_backup.is_some(),
            dynamic: d.dynamic_partitioning.is_some(),
        });
    }
    let stream_metrics = Arc::new(StreamMetrics::default());
    let transform = match &sc.processing.transform {
        Some(t) => {
            let kinesis_stream_arn = match &sc.source {
                SourceConfig::Kinesis(k) => Some(match &k.stream {
                    KinesisStreamRef::Arn(a) => a.clone(),
                    KinesisStreamRef::Name(n) => format!(
                        "arn:aws:kinesis:{region}:{}:stream/{n}",
                        config.aws.account_id
                    ),
                }),
                SourceConfig::DirectPut => None,
            };
            let setup = transform::Setup {
                stream: &sc.name,
                stream_arn: &arn,
                region,
                account_id: &config.aws.account_id,
                kinesis_stream_arn,
                metrics: stream_metrics.clone(),
            };
            Some(
                transform::build(t, setup)
                    .await
                    .map_err(|e| anyhow!("delivery stream {}: {e}", sc.name))?,
            )
        }
        None => None,
    };
    let stream = DeliveryStream::new(
        sc.clone(),
        version,
        arn,
        log,
        destinations,
        transform,
        stream_metrics,
    )
    .with_context(|| format!("starting delivery stream {}", sc.name))?;
    if let Some((client, k, memory, checkpoints, origin, latest)) = kinesis {
        let metrics = Arc::new(KinesisMetrics::default());
        let running = kinesis::start(kinesis::Setup {
            client,
            config: k.clone(),
            log: memory,
            checkpoints,
            origin,
            first_start_latest: latest,
            metrics: metrics.clone(),
            label: sc.name.clone(),
        });
        stream.set_source(running, metrics);
    }
    Ok(stream)
}

/// The start-up bucket check, with a few quick retries for a server that is still starting.
async fn check_with_retries(s3: &S3Sink) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..3 {
        match s3.check_bucket().await {
            Ok(()) => return Ok(()),
            Err(e) if e.contains("cannot be reached") => last = e,
            Err(e) => return Err(e),
        }
        tokio::time::sleep(Duration::from_millis(300 << attempt)).await;
    }
    Err(last)
}
