//! The Kinesis Data Streams source: shard discovery with ListShards on an interval, one reader
//! per shard being read (`readers`, `shard`), polling (`poll`) or subscribed by enhanced fan-out
//! (`subscribe`, as the consumer `fan_out` registers), parents read to their end before their children
//! start (as the KCL does), checkpoints that move only after delivery: in files (`checkpoint`),
//! or, for a fleet sharing the stream, in a lease store (`lease_store`: DynamoDB, or memory), `leases`,
//! `balance`); KPL de-aggregation (`kpl`).

mod balance;
pub(crate) mod checkpoint;
pub(crate) mod fan_out;
pub(crate) mod kpl;
pub(crate) mod lease_store;
pub(crate) mod leases;
pub(crate) mod ledger;
pub(crate) mod metrics;
mod poll;
mod readers;
pub(crate) mod shard;
pub(crate) mod shard_source;
mod subscribe;

#[cfg(test)]
mod fan_out_tests;
#[cfg(test)]
mod fleet_tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use tokio::sync::{mpsc, oneshot, watch};

use crate::spec::{KinesisSourceSpec, KinesisStreamRef};
use checkpoint::{Checkpoints, Origin};
use ledger::ShardProgress;
use metrics::KinesisMetrics;
use readers::Readers;
pub(crate) use shard::Feed;
use shard::{ReadEnd, Shared, Start};
pub(crate) use shard_source::{ShardInfo, ShardSource};

/// The running readers of a stream. `stop` ends them (what they read stays in the log);
/// `finish`, once everything read is delivered, writes the last checkpoints and releases the
/// leases (with a lease table, which keeps its leases renewed in between; with files there is
/// nothing left to do).
pub(crate) struct Running {
    stop: watch::Sender<bool>,
    stopped: Option<oneshot::Receiver<()>>,
    finish: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub(crate) async fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(rx) = self.stopped.take() {
            let _ = rx.await;
        }
    }

    /// Stops everything at once, as kill -9 would: nothing more is renewed, checkpointed or
    /// released (the unit tier's crashed instance).
    #[cfg(test)]
    pub(crate) fn kill(self) {
        self.task.abort();
    }

    pub(crate) async fn finish(mut self) {
        self.stop().await;
        if let Some(tx) = self.finish.take() {
            let _ = tx.send(());
        }
        let _ = self.task.await;
    }
}

/// What a source's task is told and tells: stop reading, readers stopped, finish.
pub(crate) struct Signals {
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) stopped: oneshot::Sender<()>,
    pub(crate) finish: oneshot::Receiver<()>,
}

/// Why the source's stream cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KinesisError {
    #[error("Kinesis stream {0:?} does not exist")]
    StreamMissing(String),
    #[error("Kinesis stream {stream:?} cannot be described: {detail}")]
    Describe {
        stream: String,
        detail: String,
        /// A server error, throttling or no answer: worth waiting out at start.
        transient: bool,
    },
}

impl KinesisError {
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self,
            KinesisError::Describe {
                transient: true,
                ..
            }
        )
    }
}

/// The stream as a start-up check found it.
pub(crate) struct Checked {
    /// How the stream is named in every later call.
    pub(crate) stream: KinesisStreamRef,
    /// Its ARN as the server gives it (RegisterStreamConsumer takes only an ARN).
    pub(crate) arn: Option<String>,
}

/// Start-up check: the stream exists and can be described. Returns how the stream is to be
/// named in every later call: an ARN as given where the server finds the stream by
/// `StreamARN` (AWS, for a stream of any account). On a local server (`local`: an endpoint
/// override is in effect) that does not take StreamARN (ValidationException) or keeps streams
/// under another account id (ResourceNotFoundException: kinesalite's account is
/// 000000000000), the ARN's stream name, found by `StreamName`; which stream, under which ARN,
/// is logged. Against AWS an ARN is never swapped for a name: that could read another
/// account's namesake.
pub(crate) async fn check_stream(
    client: &Client,
    stream: &KinesisStreamRef,
    local: bool,
) -> Result<Checked, KinesisError> {
    let refused = match describe_summary(client, stream).await {
        Ok(arn) => {
            return Ok(Checked {
                stream: stream.clone(),
                arn,
            });
        }
        Err(e) => e,
    };
    let code = match &refused {
        SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    };
    let KinesisStreamRef::Arn(arn) = stream else {
        return Err(summary_error(stream, refused));
    };
    if !local
        || !matches!(
            code,
            Some("ValidationException" | "ResourceNotFoundException")
        )
    {
        return Err(summary_error(stream, refused));
    }
    let by_name = KinesisStreamRef::Name(stream.name().to_string());
    let found = describe_summary(client, &by_name)
        .await
        .map_err(|_| summary_error(stream, refused))?;
    tracing::warn!(requested = %arn, found = %found.clone().unwrap_or_default(),
        "the Kinesis server does not find the stream by StreamARN: reading the stream of that name");
    Ok(Checked {
        stream: by_name,
        arn: found,
    })
}

type SummaryError = SdkError<
    aws_sdk_kinesis::operation::describe_stream_summary::DescribeStreamSummaryError,
    aws_sdk_kinesis::config::http::HttpResponse,
>;

/// DescribeStreamSummary: the ARN the server gives the stream.
async fn describe_summary(
    client: &Client,
    stream: &KinesisStreamRef,
) -> Result<Option<String>, SummaryError> {
    let req = client.describe_stream_summary();
    let req = match stream {
        KinesisStreamRef::Name(n) => req.stream_name(n),
        KinesisStreamRef::Arn(a) => req.stream_arn(a),
    };
    let out = req.send().await?;
    Ok(out
        .stream_description_summary()
        .map(|s| s.stream_arn().to_string())
        .filter(|a| !a.is_empty()))
}

fn summary_error(stream: &KinesisStreamRef, e: SummaryError) -> KinesisError {
    match &e {
        SdkError::ServiceError(se) if se.err().code() == Some("ResourceNotFoundException") => {
            KinesisError::StreamMissing(stream.name().to_string())
        }
        _ => KinesisError::Describe {
            stream: stream.name().to_string(),
            detail: DisplayErrorContext(&e).to_string(),
            transient: match &e {
                SdkError::ServiceError(se) => {
                    let status = se.raw().status().as_u16();
                    status >= 500
                        || status == 429
                        || matches!(
                            se.err().code(),
                            Some(
                                "LimitExceededException"
                                    | "ProvisionedThroughputExceededException"
                                    | "ThrottlingException"
                            )
                        )
                }
                SdkError::ConstructionFailure(_) => false,
                _ => true,
            },
        },
    }
}

/// What a Kinesis source is started with.
pub(crate) struct Setup {
    pub(crate) source: ShardSource,
    pub(crate) config: KinesisSourceSpec,
    pub(crate) log: Arc<crate::source::memlog::MemoryLog>,
    pub(crate) origin: Origin,
    pub(crate) metrics: Arc<KinesisMetrics>,
    /// The delivery stream's name, for logs.
    pub(crate) label: String,
    pub(crate) mode: Mode,
    /// Polling, or enhanced fan-out as a registered consumer.
    pub(crate) feed: Feed,
}

/// Who decides which shards this instance reads, and where checkpoints live.
pub(crate) enum Mode {
    /// Every shard, checkpoints in files.
    Files {
        checkpoints: Arc<Checkpoints>,
        /// The very first start with LATEST: root shards get a real LATEST iterator.
        first_start_latest: bool,
    },
    /// The shards this instance holds leases on (`leases`).
    Leases(Box<leases::Manager>),
}

/// Starts discovery and the shard readers.
pub(crate) fn start(setup: Setup) -> Running {
    let Setup {
        source,
        config,
        log,
        origin,
        metrics,
        label,
        mode,
        feed,
    } = setup;
    let (stop, stop_rx) = watch::channel(false);
    let (stopped_tx, stopped) = oneshot::channel();
    let (finish, finish_rx) = oneshot::channel();
    let signals = Signals {
        stop: stop_rx,
        stopped: stopped_tx,
        finish: finish_rx,
    };
    let (wake_tx, wake) = mpsc::channel::<()>(1);
    let progress: Arc<dyn ShardProgress> = match &mode {
        Mode::Files { checkpoints, .. } => checkpoints.clone(),
        Mode::Leases(m) => m.progress(),
    };
    let shared = Arc::new(Shared {
        source,
        log,
        progress,
        limit: config.get_records_limit as i32,
        feed,
        closed: Default::default(),
    });
    let readers = Readers::new(shared, metrics, label, wake_tx);
    let interval = Duration::from_secs(config.discovery_interval_seconds);
    let task = match mode {
        Mode::Files {
            checkpoints,
            first_start_latest,
        } => {
            let c = Coordinator {
                readers,
                checkpoints,
                origin: (origin, first_start_latest),
                read_to_end: HashSet::new(),
            };
            tokio::spawn(async move {
                c.run(signals.stop, wake, interval).await;
                let _ = signals.stopped.send(());
            })
        }
        Mode::Leases(m) => tokio::spawn(leases::coordinate(*m, readers, signals, wake, interval)),
    };
    Running {
        stop,
        stopped: Some(stopped),
        finish: Some(finish),
        task,
    }
}

/// Lists the shards; None (logged now and then) when ListShards fails.
async fn discover(shared: &Shared, failures: &mut u32, label: &str) -> Option<Vec<ShardInfo>> {
    match shared.source.list_shards().await {
        Ok(shards) => {
            *failures = 0;
            shared.note_listing(&shards);
            Some(shards)
        }
        Err(e) => {
            *failures += 1;
            if *failures == 1 || failures.is_multiple_of(30) {
                tracing::warn!(stream = %label, error = %e, "retrying");
            }
            None
        }
    }
}

/// The shard readers of one stream read with file checkpoints: every shard, parents first.
struct Coordinator {
    readers: Readers,
    checkpoints: Arc<Checkpoints>,
    origin: (Origin, bool),
    /// Shards read to their end in this run (their checkpoint may not say so yet).
    read_to_end: HashSet<String>,
}

impl Coordinator {
    /// Decides which shards to read and from where; lists again when a reader ends.
    async fn run(
        mut self,
        mut stop: watch::Receiver<bool>,
        mut wake: mpsc::Receiver<()>,
        interval: Duration,
    ) {
        let mut failures = 0u32;
        loop {
            let label = self.readers.label().to_string();
            if let Some(shards) = discover(self.readers.shared(), &mut failures, &label).await {
                self.start_ready(&shards);
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(interval) => {}
                _ = wake.recv() => {}
            }
            for (id, end) in self.readers.reap().await {
                if matches!(end, ReadEnd::Ended) {
                    self.read_to_end.insert(id);
                }
            }
        }
        self.readers.stop_all().await;
    }

    /// Starts a reader for every listed shard that is not being read, not finished, and whose
    /// parents (both, for a merge) are read to their end or no longer listed.
    fn start_ready(&mut self, shards: &[ShardInfo]) {
        let listed: HashMap<&str, &ShardInfo> = shards.iter().map(|s| (s.id.as_str(), s)).collect();
        let done = |c: &Self, id: &str| c.read_to_end.contains(id) || c.checkpoints.is_finished(id);
        for s in shards {
            if self.readers.is_reading(&s.id) || done(self, &s.id) {
                continue;
            }
            let waiting = s
                .parents
                .iter()
                .any(|p| listed.contains_key(p.as_str()) && !done(self, p));
            if !waiting {
                let start = match self
                    .checkpoints
                    .get(&s.id)
                    .and_then(|ck| ck.sequence_number.map(|seq| (seq, ck.subsequence_number)))
                {
                    Some((sequence, subsequence)) => Start::AtCheckpoint {
                        sequence,
                        subsequence,
                    },
                    None => start_of(s, self.origin),
                };
                self.readers.spawn(&s.id, start, None);
            }
        }
    }
}

/// Children start at TRIM_HORIZON (their parents were read first); other shards at the origin:
/// LATEST on the first start with LATEST, the first start's time on later starts (so records
/// that came after the first start are never skipped, even before a shard's first checkpoint).
fn start_of(shard: &ShardInfo, (origin, first_start_latest): (Origin, bool)) -> Start {
    if !shard.parents.is_empty() {
        return Start::TrimHorizon;
    }
    match origin {
        _ if first_start_latest => Start::Latest,
        Origin::TrimHorizon => Start::TrimHorizon,
        Origin::AtTimestamp { timestamp_ms } => Start::AtTimestamp(timestamp_ms),
    }
}
