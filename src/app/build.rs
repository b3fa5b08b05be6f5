//! Building a running delivery stream from its configuration: its log (the spool, or the
//! Kinesis source's memory log and readers), destinations (sinks, staging), the transform and
//! the processor. Used for the config file's streams at start-up and for CreateDeliveryStream
//! and UpdateDestination while running.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};

use super::prepare_dir;
use crate::aws;
use crate::config::{
    Config, KinesisStreamRef, SourceConfig, StartingPosition, StreamConfig, Target,
};
use crate::destination::directory::DirectorySink;
use crate::destination::naming::Naming;
use crate::destination::s3::S3Sink;
use crate::destination::sink::Sink;
use crate::destination::staging::clear_leftovers;
use crate::destination::{DestinationHandle, OnDelivered, Staging};
use crate::metrics::{DestinationMetrics, StreamMetrics};
use crate::processing::transform;
use crate::source::Log;
use crate::source::kinesis::{self, checkpoint::Checkpoints, metrics::KinesisMetrics};
use crate::source::memlog::MemoryLog;
use crate::spool::{Budget, Spool, SpoolSettings};
use crate::stream::{DeliveryStream, Destination as StreamDestination};

/// What building a stream needs besides its own configuration.
pub struct Builder {
    pub config: Config,
    sdk: tokio::sync::OnceCell<aws_config::SdkConfig>,
    pub region: String,
    budget: Arc<Budget>,
}

impl Builder {
    pub fn new(
        config: Config,
        sdk: Option<aws_config::SdkConfig>,
        region: String,
        budget: Arc<Budget>,
    ) -> Self {
        Builder {
            config,
            sdk: tokio::sync::OnceCell::new_with(sdk),
            region,
            budget,
        }
    }

    pub fn arn(&self, name: &str) -> String {
        format!(
            "arn:aws:firehose:{}:{}:deliverystream/{name}",
            self.region, self.config.aws.account_id
        )
    }

    /// Starts stream `sc`; its objects carry `version` in their names.
    pub async fn build(&self, sc: &StreamConfig, version: u32) -> anyhow::Result<DeliveryStream> {
        let needs_aws = matches!(sc.source, SourceConfig::Kinesis(_))
            || sc
                .destinations
                .iter()
                .any(|d| matches!(d.target, Target::S3 { .. }));
        let sdk = if needs_aws {
            Some(
                self.sdk
                    .get_or_init(|| aws::sdk_config(&self.config.aws))
                    .await,
            )
        } else {
            None
        };
        build_stream(
            &self.config,
            sc,
            sdk,
            self.arn(&sc.name),
            &self.region,
            self.budget.clone(),
            version,
        )
        .await
    }
}

async fn build_stream(
    config: &Config,
    sc: &StreamConfig,
    sdk: Option<&aws_config::SdkConfig>,
    arn: String,
    region: &str,
    budget: Arc<Budget>,
    version: u32,
) -> anyhow::Result<DeliveryStream> {
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
        tracing::info!(destination = %label, sink = %sink.describe(), "destination ready");
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
