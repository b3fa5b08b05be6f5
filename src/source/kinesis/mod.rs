//! The Kinesis Data Streams source: shard discovery with ListShards on an interval, one reader
//! per shard being read, parents read to their end before their children start (as the KCL
//! does), checkpoints that move only after delivery (`checkpoint`), KPL de-aggregation (`kpl`).

pub(crate) mod checkpoint;
pub(crate) mod kpl;
pub(crate) mod metrics;
pub(crate) mod seqnum;
pub(crate) mod shard;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::config::{KinesisSourceConfig, KinesisStreamRef};
use checkpoint::{Checkpoints, Origin};
use metrics::KinesisMetrics;
use shard::{ReadEnd, Shared, Start};

/// The running readers of a stream; `stop` ends them (what they read stays in the log).
pub(crate) struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Why the source's stream cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KinesisError {
    #[error("Kinesis stream {0:?} does not exist")]
    StreamMissing(String),
    #[error("Kinesis stream {stream:?} cannot be described: {detail}")]
    Describe { stream: String, detail: String },
    /// ListShards failed (the SDK's error with its context).
    #[error("ListShards failed: {0}")]
    ListShards(String),
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
) -> Result<KinesisStreamRef, KinesisError> {
    let refused = match describe_summary(client, stream).await {
        Ok(_) => return Ok(stream.clone()),
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
    tracing::warn!(requested = %arn, found = %found.unwrap_or_default(),
        "the Kinesis server does not find the stream by StreamARN: reading the stream of that name");
    Ok(by_name)
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
        .map(|s| s.stream_arn().to_string()))
}

fn summary_error(stream: &KinesisStreamRef, e: SummaryError) -> KinesisError {
    match &e {
        SdkError::ServiceError(se) if se.err().code() == Some("ResourceNotFoundException") => {
            KinesisError::StreamMissing(stream.name().to_string())
        }
        _ => KinesisError::Describe {
            stream: stream.name().to_string(),
            detail: DisplayErrorContext(&e).to_string(),
        },
    }
}

struct ShardInfo {
    id: String,
    parents: Vec<String>,
}

async fn list_shards(
    client: &Client,
    stream: &KinesisStreamRef,
) -> Result<Vec<ShardInfo>, KinesisError> {
    let mut shards = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = client.list_shards().max_results(1000);
        req = match (&token, stream) {
            (Some(t), _) => req.next_token(t),
            (None, KinesisStreamRef::Name(n)) => req.stream_name(n),
            (None, KinesisStreamRef::Arn(a)) => req.stream_arn(a),
        };
        let out = req
            .send()
            .await
            .map_err(|e| KinesisError::ListShards(DisplayErrorContext(&e).to_string()))?;
        for s in out.shards() {
            let parents = [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                .into_iter()
                .flatten()
                .map(str::to_string)
                .collect();
            shards.push(ShardInfo {
                id: s.shard_id().to_string(),
                parents,
            });
        }
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(shards),
        }
    }
}

/// What a Kinesis source is started with.
pub(crate) struct Setup {
    pub(crate) client: Client,
    pub(crate) config: KinesisSourceConfig,
    pub(crate) log: Arc<crate::source::memlog::MemoryLog>,
    pub(crate) checkpoints: Arc<Checkpoints>,
    pub(crate) origin: Origin,
    /// The very first start with LATEST: root shards get a real LATEST iterator.
    pub(crate) first_start_latest: bool,
    pub(crate) metrics: Arc<KinesisMetrics>,
    /// The delivery stream's name, for logs.
    pub(crate) label: String,
}

/// Starts discovery and the shard readers.
pub(crate) fn start(setup: Setup) -> Running {
    let Setup {
        client,
        config,
        log,
        checkpoints,
        origin,
        first_start_latest,
        metrics,
        label,
    } = setup;
    let (stop, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        client,
        stream: config.stream.clone(),
        log,
        checkpoints,
        stop: stop_rx,
        limit: config.get_records_limit as i32,
    });
    let interval = Duration::from_secs(config.discovery_interval_seconds);
    let task = tokio::spawn(coordinate(
        shared,
        (origin, first_start_latest),
        interval,
        metrics,
        label,
    ));
    Running { stop, task }
}

/// Decides which shards to read and from where; restarts discovery when a reader ends.
async fn coordinate(
    shared: Arc<Shared>,
    origin: (Origin, bool),
    interval: Duration,
    metrics: Arc<KinesisMetrics>,
    label: String,
) {
    let mut stop = shared.stop.clone();
    let (wake_tx, mut wake) = mpsc::channel::<()>(1);
    let mut c = Coordinator {
        shared,
        origin,
        metrics,
        label,
        readers: JoinSet::new(),
        running: HashSet::new(),
        read_to_end: HashSet::new(),
        wake: wake_tx,
    };
    let mut failures = 0u32;
    loop {
        match list_shards(&c.shared.client, &c.shared.stream).await {
            Ok(shards) => {
                failures = 0;
                c.start_ready(&shards);
            }
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(30) {
                    tracing::warn!(stream = %c.label, error = %e, "retrying");
                }
            }
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = tokio::time::sleep(interval) => {}
            _ = wake.recv() => {}
        }
        c.reap();
    }
    while c.readers.join_next().await.is_some() {}
}

/// The shard readers of one stream and what they have read.
struct Coordinator {
    shared: Arc<Shared>,
    origin: (Origin, bool),
    metrics: Arc<KinesisMetrics>,
    label: String,
    readers: JoinSet<(String, ReadEnd)>,
    running: HashSet<String>,
    /// Shards read to their end in this run (their checkpoint may not say so yet).
    read_to_end: HashSet<String>,
    /// Wakes discovery when a reader ends (its children may start).
    wake: mpsc::Sender<()>,
}

impl Coordinator {
    /// Starts a reader for every listed shard that is not being read, not finished, and whose
    /// parents (both, for a merge) are read to their end or no longer listed.
    fn start_ready(&mut self, shards: &[ShardInfo]) {
        let listed: HashMap<&str, &ShardInfo> = shards.iter().map(|s| (s.id.as_str(), s)).collect();
        let done =
            |c: &Self, id: &str| c.read_to_end.contains(id) || c.shared.checkpoints.is_finished(id);
        for s in shards {
            if self.running.contains(&s.id) || done(self, &s.id) {
                continue;
            }
            let waiting = s
                .parents
                .iter()
                .any(|p| listed.contains_key(p.as_str()) && !done(self, p));
            if !waiting {
                self.spawn_reader(s);
            }
        }
    }

    fn spawn_reader(&mut self, s: &ShardInfo) {
        let start = match self
            .shared
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
        tracing::info!(stream = %self.label, shard = %s.id, start = ?start, "reading shard");
        self.running.insert(s.id.clone());
        let (shared, id, m, wake) = (
            self.shared.clone(),
            s.id.clone(),
            self.metrics.shard(&s.id),
            self.wake.clone(),
        );
        self.readers.spawn(async move {
            let outcome = shard::read(shared, id.as_str().into(), start, m).await;
            let _ = wake.try_send(());
            (id, outcome)
        });
    }

    /// Takes in the readers that ended.
    fn reap(&mut self) {
        while let Some(done) = self.readers.try_join_next() {
            if let Ok((id, outcome)) = done {
                self.running.remove(&id);
                if matches!(outcome, ReadEnd::Ended) {
                    tracing::info!(stream = %self.label, shard = %id, "shard read to its end");
                    self.read_to_end.insert(id);
                }
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
