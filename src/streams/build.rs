//! Building a running delivery stream from its configuration, in named steps: its log (the
//! spool, or the Kinesis source's memory log), each destination (sink, staging, worker), the
//! transform, the processor that joins them, then the Kinesis readers. Used by the registry for
//! the file's streams and for streams created or changed through the API.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod checks;
mod iceberg;
mod kinesis_source;
mod layout;
mod sinks;

use super::shard_journals::{self, PlanParts, ShardJournals};
use crate::aws;
use crate::config::Config;
use crate::control::Origin;
use crate::destination::journal::{Journal, Pos};
use crate::destination::naming::Naming;
use crate::destination::s3::BucketError;
use crate::destination::shards::Staging;
use crate::destination::sink::Sink;
use crate::destination::stagers::ExactlyOnce;
use crate::destination::staging::clear_leftovers;
use crate::destination::{DestinationHandle, OnDelivered};
use crate::disk::{Patience, StagingRoom};
use crate::fatal::FatalSender;
use crate::metrics::{DestinationMetrics, StreamMetrics};
use crate::processing::transform::{self, Transform, TransformStartError};
use crate::source::Log;
use crate::source::kinesis::lease_store::{LeaseStore, LeaseTable, TableError};
use crate::source::kinesis::leases::{LeaseSetup, Manager, Progress};
use crate::source::kinesis::ledger::ShardProgress;
use crate::source::kinesis::metrics::LeaseMetrics;
use crate::source::kinesis::{
    self, KinesisError, checkpoint::Checkpoints, metrics::KinesisMetrics,
};
use crate::source::memlog::MemoryLog;
use crate::spec::{
    Delivery, DestinationSpec, KinesisSourceSpec, KinesisStreamRef, SourceSpec, StartingPosition,
    StreamSpec, Target,
};
use crate::spool::{Budget, Spool, SpoolSettings};
use crate::stream::{DeliveryStream, StreamDestination, StreamParts};
use checks::{patiently, probe_with_retries};

/// How long a start waits for the enhanced fan-out consumer to be ACTIVE (AWS: seconds),
/// retrying throttling and server errors meanwhile.
const CONSUMER_PATIENCE: Duration = Duration::from_secs(120);

/// Why a stream could not start. Causes are kept as sources (`report::Chain` prints them).
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    #[error("delivery stream {stream}")]
    Kinesis {
        stream: String,
        #[source]
        source: KinesisError,
    },
    #[error("delivery stream {stream}: enhanced fan-out")]
    FanOut {
        stream: String,
        #[source]
        source: kinesis::fan_out::FanOutError,
    },
    #[error("delivery stream {stream}: lease table")]
    Leases {
        stream: String,
        #[source]
        source: TableError,
    },
    #[error("delivery stream {stream}")]
    Credentials {
        stream: String,
        #[source]
        source: aws::NoCredentials,
    },
    /// `api_s3_directory` stands for buckets; a name S3 would refuse must not become a path.
    #[error(
        "delivery stream {stream}: {bucket:?} is not an S3 bucket name (3-63 of a-z 0-9 . -), so api_s3_directory has no folder for it"
    )]
    BucketName { stream: String, bucket: String },
    #[error("delivery stream {stream}")]
    Bucket {
        stream: String,
        #[source]
        source: BucketError,
    },
    #[error(
        "delivery stream {stream}: delivery: exactly_once needs conditional writes (If-None-Match), and S3 bucket {bucket:?} ignored them; use at_least_once with this server"
    )]
    NoConditionalWrites { stream: String, bucket: String },
    #[error("delivery stream {stream}: delivery: exactly_once needs hard links, and the file system of {} makes none; use at_least_once there", path.display())]
    NoExclusiveLinks { stream: String, path: PathBuf },
    #[error("delivery stream {stream}: checking conditional writes on S3 bucket {bucket:?}")]
    ConditionalProbe {
        stream: String,
        bucket: String,
        #[source]
        source: crate::destination::sink::DeliveryError,
    },
    #[error("delivery stream {stream}")]
    Transform {
        stream: String,
        #[source]
        source: TransformStartError,
    },
    #[error("delivery stream {stream}: {what} {} is not writable", path.display())]
    Folder {
        stream: String,
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("delivery stream {stream}: {what} {}", path.display())]
    State {
        stream: String,
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("delivery stream {stream}: HTTP endpoint")]
    Http {
        stream: String,
        #[source]
        source: crate::destination::http::SetupError,
    },
    /// The configuration never makes one (an HTTP endpoint's backup is a bucket or directory).
    #[error("delivery stream {stream}: an HTTP endpoint cannot back up to an HTTP endpoint")]
    NestedHttp { stream: String },
    #[error("delivery stream {stream}: Iceberg destination")]
    Iceberg {
        stream: String,
        #[source]
        source: iceberg::IcebergBuildError,
    },
    #[error("delivery stream {stream}: its specification")]
    Layout {
        stream: String,
        #[source]
        source: layout::LayoutError,
    },
    #[error("starting delivery stream {stream}")]
    Start {
        stream: String,
        #[source]
        source: std::io::Error,
    },
}

/// What building a stream needs besides its own configuration.
pub(crate) struct Builder {
    pub(crate) config: Config,
    sdk: tokio::sync::OnceCell<aws_config::SdkConfig>,
    /// Set once credentials were found: the chain is not walked again for every stream (a
    /// failure is not kept: a profile file may be fixed while the daemon runs).
    credentials_found: tokio::sync::OnceCell<()>,
    pub(crate) region: String,
    budget: Arc<Budget>,
    fatal: FatalSender,
    /// Free space for staging, shared by every destination.
    staging_room: Arc<StagingRoom>,
    /// The unit tier's: every S3 destination delivers into this store (no AWS involved).
    #[cfg(test)]
    memory_sink: Option<Arc<crate::destination::memory::MemorySink>>,
}

/// A Kinesis source made ready while the log is opened, started once the stream runs.
struct KinesisStart {
    client: aws_sdk_kinesis::Client,
    config: KinesisSourceSpec,
    memory: Arc<MemoryLog>,
    origin: kinesis::checkpoint::Origin,
    mode: kinesis::Mode,
    leases: Option<Arc<LeaseMetrics>>,
    feed: kinesis::Feed,
}

/// One stream being built: its configuration and what the steps share.
struct Build<'a> {
    builder: &'a Builder,
    sc: &'a StreamSpec,
    sdk: Option<&'a aws_config::SdkConfig>,
    version: u32,
    /// A file stream refuses to start without its bucket; an API stream starts and its records
    /// wait for the bucket, as on AWS (and may write into `api_s3_directory` instead).
    origin: Origin,
}

impl Builder {
    pub(crate) fn new(
        config: Config,
        sdk: Option<aws_config::SdkConfig>,
        region: String,
        budget: Arc<Budget>,
        fatal: FatalSender,
    ) -> Self {
        let staging_room = StagingRoom::new(config.state_dir.clone());
        Builder {
            config,
            sdk: tokio::sync::OnceCell::new_with(sdk),
            credentials_found: tokio::sync::OnceCell::new(),
            region,
            budget,
            fatal,
            staging_room,
            #[cfg(test)]
            memory_sink: None,
        }
    }

    /// Every S3 destination delivers into `sink` instead.
    #[cfg(test)]
    pub(crate) fn with_memory_sink(
        mut self,
        sink: Arc<crate::destination::memory::MemorySink>,
    ) -> Self {
        self.memory_sink = Some(sink);
        self
    }

    /// The sink every S3 destination takes instead of its bucket (the unit tier's).
    #[cfg(test)]
    fn memory_sink(&self) -> Option<Sink> {
        self.memory_sink.clone().map(Sink::Memory)
    }

    #[cfg(not(test))]
    fn memory_sink(&self) -> Option<Sink> {
        None
    }

    pub(crate) fn arn(&self, name: &str) -> String {
        format!(
            "arn:aws:firehose:{}:{}:deliverystream/{name}",
            self.region, self.config.aws.account_id
        )
    }

    /// The SDK configuration with credentials found (the one-line error otherwise).
    pub(crate) async fn sdk_with_credentials(
        &self,
    ) -> Result<&aws_config::SdkConfig, aws::NoCredentials> {
        let sdk = self.sdk().await;
        self.credentials_found
            .get_or_try_init(|| aws::check_credentials(sdk))
            .await?;
        Ok(sdk)
    }

    /// The AWS SDK's configuration, loaded the first time a stream needs it.
    pub(crate) async fn sdk(&self) -> &aws_config::SdkConfig {
        self.sdk
            .get_or_init(|| aws::sdk_config(&self.config.aws))
            .await
    }

    pub(crate) fn account_id(&self) -> &str {
        &self.config.aws.account_id
    }

    /// The folder that stands for every bucket of a stream from `origin`: `api_s3_directory`,
    /// for API streams when it is set.
    fn s3_directory(&self, origin: Origin) -> Option<&Path> {
        match origin {
            Origin::Api => self.config.api_s3_directory.as_deref(),
            Origin::File => None,
        }
    }

    /// Starts stream `sc`; its objects carry `version` in their names.
    pub(crate) async fn build(
        &self,
        sc: &StreamSpec,
        version: u32,
        origin: Origin,
    ) -> Result<DeliveryStream, BuildError> {
        let s3_local = self.s3_directory(origin).is_some();
        let sdk = if needs_aws(sc, s3_local) && self.memory_sink().is_none() {
            let sdk =
                self.sdk_with_credentials()
                    .await
                    .map_err(|source| BuildError::Credentials {
                        stream: sc.name.clone(),
                        source,
                    })?;
            Some(sdk)
        } else {
            None
        };
        let b = Build {
            builder: self,
            sc,
            sdk,
            version,
            origin,
        };
        b.run().await
    }
}

/// Whether a stream reads Kinesis or writes S3 (it needs the AWS SDK's configuration);
/// `s3_local`: its S3 destinations write into `api_s3_directory`.
pub(crate) fn needs_aws(sc: &StreamSpec, s3_local: bool) -> bool {
    let s3 = !s3_local;
    matches!(sc.source, SourceSpec::Kinesis(_))
        || sc.destinations.iter().any(|d| match &d.target {
            Target::S3 { .. } => s3,
            Target::Http(h) => s3 && matches!(h.backup, Target::S3 { .. }),
            Target::Iceberg(i) => {
                (s3 && matches!(i.backup, Target::S3 { .. }))
                    || !matches!(i.catalog, crate::spec::CatalogSpec::Sql { .. })
                    || i.warehouse
                        .as_deref()
                        .is_some_and(|w| w.starts_with("s3://"))
            }
            Target::Directory(_) => false,
        })
}

impl Build<'_> {
    async fn run(self) -> Result<DeliveryStream, BuildError> {
        let (log, kinesis) = self.open_log().await?;
        let mut destinations = Vec::new();
        for (i, d) in self.sc.destinations.iter().enumerate() {
            let shards = kinesis.as_ref().map(|k| match &k.mode {
                kinesis::Mode::Files { checkpoints, .. } => ShardJournals::Files(checkpoints),
                kinesis::Mode::Leases(m) => ShardJournals::Leases(m),
            });
            destinations.push(self.destination(i, d, &log, shards).await?);
        }
        let metrics = Arc::new(StreamMetrics::default());
        let transform = self.transform(&metrics).await?;
        let stream = DeliveryStream::new(StreamParts {
            config: self.sc.clone(),
            version: self.version,
            arn: self.builder.arn(&self.sc.name),
            log,
            destinations,
            transform,
            metrics,
            fatal: self.builder.fatal.clone(),
        })
        .map_err(|source| BuildError::Start {
            stream: self.sc.name.clone(),
            source,
        })?;
        if let Some(k) = kinesis {
            let metrics = Arc::new(KinesisMetrics::default());
            if let Some(l) = k.leases {
                let _ = metrics.leases.set(l);
            }
            let mut mode = k.mode;
            if let kinesis::Mode::Leases(m) = &mut mode {
                m.set_hurry(Arc::new(stream.hurrier()));
            }
            let running = kinesis::start(kinesis::Setup {
                source: kinesis::ShardSource::Kinesis(kinesis::shard_source::KinesisShards::new(
                    k.client,
                    k.config.stream.clone(),
                )),
                config: k.config,
                log: k.memory,
                origin: k.origin,
                metrics: metrics.clone(),
                label: self.sc.name.clone(),
                mode,
                feed: k.feed,
            });
            stream.set_source(running, metrics);
        }
        Ok(stream)
    }

    fn state_error(
        &self,
        what: &'static str,
        path: PathBuf,
    ) -> impl FnOnce(std::io::Error) -> BuildError {
        let stream = self.sc.name.clone();
        move |source| BuildError::State {
            stream,
            what,
            path,
            source,
        }
    }

    /// The stream's log: its spool (Direct PUT), or the memory log a Kinesis source will feed.
    async fn open_log(&self) -> Result<(Log, Option<KinesisStart>), BuildError> {
        let config = &self.builder.config;
        let k = match &self.sc.source {
            SourceSpec::DirectPut => {
                let dir = config.state_dir.join("spool").join(&self.sc.name);
                let settings = SpoolSettings {
                    segment_bytes: config.spool.segment_size_mib * 1024 * 1024,
                    fsync: config.spool.fsync,
                };
                let budget = self.builder.budget.clone();
                let consumers = self.sc.destinations.len();
                let spool = Spool::open(&dir, consumers, settings, budget)
                    .map_err(self.state_error("opening the spool", dir.clone()))?;
                return Ok((Log::Spool(Arc::new(spool)), None));
            }
            SourceSpec::Kinesis(k) => k,
        };
        self.open_kinesis(k).await
    }

    /// Destination `i`: its sink, a clean staging folder, and its worker, which moves the log
    /// cursor of `log` as objects are delivered. `shards`: a Kinesis source's checkpoints.
    async fn destination(
        &self,
        i: usize,
        d: &DestinationSpec,
        log: &Log,
        shards: Option<ShardJournals<'_>>,
    ) -> Result<StreamDestination, BuildError> {
        let sc = self.sc;
        let label = format!("{}[{i}]", sc.name);
        let staging_dir = self
            .builder
            .config
            .state_dir
            .join("staging")
            .join(&sc.name)
            .join(i.to_string());
        let creating = self.state_error("creating", staging_dir.clone());
        std::fs::create_dir_all(&staging_dir).map_err(creating)?;
        let clearing = self.state_error("clearing", staging_dir.clone());
        let left = clear_leftovers(&staging_dir).map_err(clearing)?;
        if left > 0 {
            tracing::warn!(destination = %label, files = left,
                "removed staging files of a previous run that were never delivered");
        }
        let metrics = Arc::new(DestinationMetrics::default());
        let patience = Arc::new(Patience::new(
            label.clone(),
            metrics.disk_full_waits.clone(),
        ));
        let (prefix, mut layout) = layout::layout(d).map_err(|source| BuildError::Layout {
            stream: sc.name.clone(),
            source,
        })?;
        if let Target::Iceberg(i) = &d.target {
            layout.tables = Some(self.iceberg_router(i, &label)?);
        }
        let tables = layout.tables.clone();
        let parts = PlanParts {
            dir: staging_dir,
            naming: Naming {
                stream: sc.name.clone(),
                version: self.version,
                prefix,
                extension: d.extension(),
                time_zone: d.tz(),
                error: None,
                partition: None,
            },
            destination: d.clone(),
            layout,
            delimiter: sc.processing.append_delimiter_to_record,
            patience: patience.clone(),
        };
        let sink = self.sink(d, &parts, &metrics, &label).await?;
        let plan = self.staging(i, &sink, parts, log.cursor(i), shards).await?;
        tracing::info!(destination = %label, sink = %sink.describe(), "destination ready");
        let acks = log.clone();
        let on_delivered: OnDelivered = Arc::new(move |next_seq| acks.release(i, next_seq));
        let handle = DestinationHandle::spawn(crate::destination::WorkerSetup {
            label,
            plan,
            interval: Duration::from_secs(d.buffering.interval_seconds),
            sink,
            metrics: metrics.clone(),
            on_delivered,
            cursor: log.cursor(i),
            fatal: self.builder.fatal.clone(),
            room: self.builder.staging_room.clone(),
            patience,
            tables: tables.clone(),
        });
        let query = match &d.target {
            Target::Iceberg(i) => i.routing_query.as_deref().map(Arc::from),
            _ => None,
        };
        Ok(StreamDestination {
            handle,
            metrics,
            backup: d.source_record_backup.is_some(),
            dynamic: d.dynamic_partitioning.is_some() || tables.is_some(),
            query,
        })
    }

    /// How destination `i` stages. Exactly-once: the sink's conditional writes checked, then
    /// from a spool one journal opened with the entries a replay from `cursor` meets; from a
    /// Kinesis source one stager set and journal per shard, opened at the shard's checkpoint
    /// when the shard is first met (`shards`). At-least-once: the journals of an earlier
    /// exactly-once run are removed.
    async fn staging(
        &self,
        i: usize,
        sink: &Sink,
        parts: PlanParts,
        cursor: u64,
        shards: Option<ShardJournals<'_>>,
    ) -> Result<Staging, BuildError> {
        let path = parts.dir.join("journal");
        let journals = parts.dir.join("journals");
        if parts.destination.delivery == Delivery::AtLeastOnce {
            self.remove_state(&path, |p| std::fs::remove_file(p))?;
            self.remove_state(&journals, |p| std::fs::remove_dir_all(p))?;
            return Ok(Staging::One(Box::new(parts.plan())));
        }
        self.check_exactly_once(sink).await?;
        let stream = self.sc.name.clone();
        let namespace = format!("{stream}/{i}");
        let Some(shards) = shards else {
            let opening = self.state_error("opening the journal", path.clone());
            let (journal, replay) = Journal::open(&path, &Pos::log(cursor)).map_err(opening)?;
            tracing::info!(stream = %stream, destination = i, sink = %sink.describe(),
                replayed_objects = replay.iter().filter(|e| !e.delivered).count(),
                "exactly-once delivery: conditional writes supported");
            let mut plan = parts.plan();
            plan.exactly_once = Some(ExactlyOnce {
                namespace: namespace.into(),
                journal,
                replay,
                shard: None,
            });
            return Ok(Staging::One(Box::new(plan)));
        };
        let plan = match shards {
            ShardJournals::Files(checkpoints) => {
                let preparing = self.state_error("preparing the journals in", journals.clone());
                shard_journals::forget_finished_shards(&journals, checkpoints)
                    .map_err(preparing)?;
                shard_journals::in_files(parts, namespace, journals, checkpoints.clone())
            }
            ShardJournals::Leases(m) => shard_journals::in_leases(
                parts,
                namespace,
                i,
                m.table().clone(),
                m.progress(),
                tokio::runtime::Handle::current(),
            ),
        };
        tracing::info!(stream = %stream, destination = i, sink = %sink.describe(),
            "exactly-once delivery: conditional writes supported; objects are cut per shard");
        Ok(Staging::PerShard(plan))
    }

    /// Removes `path` (a file or folder of an earlier run) if it is there.
    fn remove_state(
        &self,
        path: &Path,
        remove: fn(&Path) -> std::io::Result<()>,
    ) -> Result<(), BuildError> {
        match remove(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(self.state_error("removing", path.to_path_buf())(e))
            }
            _ => Ok(()),
        }
    }

    /// Exactly-once needs the sink to refuse a second write of a name: S3 conditional writes
    /// (probed), hard links in a directory.
    async fn check_exactly_once(&self, sink: &Sink) -> Result<(), BuildError> {
        let stream = self.sc.name.clone();
        match sink {
            Sink::S3(s3) => {
                let bucket = s3.bucket().to_string();
                match probe_with_retries(s3).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(BuildError::NoConditionalWrites { stream, bucket }),
                    Err(source) => Err(BuildError::ConditionalProbe {
                        stream,
                        bucket,
                        source,
                    }),
                }
            }
            // The configuration refuses exactly_once for an HTTP endpoint.
            Sink::Http(_) => Err(BuildError::NestedHttp { stream }),
            // Commits are exactly-once by their marks; error objects need the backup's
            // conditional writes.
            Sink::Iceberg(i) => Box::pin(self.check_exactly_once(i.backup())).await,
            Sink::Directory(dir) => {
                let probing = self.state_error("probing hard links in", dir.root().to_path_buf());
                match dir.exclusive_links().map_err(probing)? {
                    true => Ok(()),
                    false => Err(BuildError::NoExclusiveLinks {
                        stream,
                        path: dir.root().to_path_buf(),
                    }),
                }
            }
            // The memory store refuses a second write of a name; it answers the probe as S3
            // does, once any hold is let go.
            #[cfg(test)]
            Sink::Memory(memory) => {
                memory.probe().await;
                Ok(())
            }
        }
    }

    /// The stream's transform runtimes, started (a command that cannot start fails the
    /// stream); none without a transform.
    async fn transform(&self, metrics: &Arc<StreamMetrics>) -> Result<Vec<Transform>, BuildError> {
        let Some(t) = &self.sc.processing.transform else {
            return Ok(Vec::new());
        };
        let (config, region) = (&self.builder.config, &self.builder.region);
        let kinesis_stream_arn = match &self.sc.source {
            SourceSpec::Kinesis(k) => Some(match &k.stream {
                KinesisStreamRef::Arn(a) => a.clone(),
                KinesisStreamRef::Name(n) => format!(
                    "arn:aws:kinesis:{region}:{}:stream/{n}",
                    config.aws.account_id
                ),
            }),
            SourceSpec::DirectPut => None,
        };
        let arn = self.builder.arn(&self.sc.name);
        let setup = transform::Setup {
            stream: &self.sc.name,
            stream_arn: &arn,
            region,
            account_id: &config.aws.account_id,
            kinesis_stream_arn,
            metrics: metrics.clone(),
        };
        let started = transform::build(t, setup)
            .await
            .map_err(|source| BuildError::Transform {
                stream: self.sc.name.clone(),
                source,
            })?;
        Ok(started)
    }
}

/// Creates `dir` and proves it writable.
pub(crate) fn prepare_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(".write-probe");
    std::fs::write(&probe, b"ok")?;
    std::fs::remove_file(&probe)
}
