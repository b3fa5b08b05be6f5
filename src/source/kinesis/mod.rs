//! The Kinesis Data Streams source: shard discovery with ListShards on an interval, one reader
//! per shard being read, parents read to their end before their children start (as the KCL
//! does), checkpoints that move only after delivery (`checkpoint`), KPL de-aggregation (`kpl`).

pub mod checkpoint;
pub mod kpl;
pub mod metrics;
pub mod seqnum;
pub mod shard;

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
use shard::{Outcome, Shared, Start};

/// The running readers of a stream; `stop` ends them (what they read stays in the log).
pub struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Start-up check: the stream exists and can be described.
pub async fn check_stream(client: &Client, stream: &KinesisStreamRef) -> Result<(), String> {
    let mut req = client.describe_stream_summary();
    req = match stream {
        KinesisStreamRef::Name(n) => req.stream_name(n),
        KinesisStreamRef::Arn(a) => req.stream_arn(a),
    };
    match req.send().await {
        Ok(_) => Ok(()),
        Err(SdkError::ServiceError(se)) if se.err().code() == Some("ResourceNotFoundException") => {
            Err(format!("Kinesis stream {:?} does not exist", stream.name()))
        }
        Err(e) => Err(format!(
            "Kinesis stream {:?} cannot be described: {}",
            stream.name(),
            DisplayErrorContext(&e)
        )),
    }
}

struct ShardInfo {
    id: String,
    parents: Vec<String>,
}

async fn list_shards(client: &Client, stream: &KinesisStreamRef) -> Result<Vec<ShardInfo>, String> {
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
            .map_err(|e| DisplayErrorContext(&e).to_string())?;
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
pub struct Setup {
    pub client: Client,
    pub config: KinesisSourceConfig,
    pub log: Arc<crate::source::memlog::MemoryLog>,
    pub checkpoints: Arc<Checkpoints>,
    pub origin: Origin,
    /// The very first start with LATEST: root shards get a real LATEST iterator.
    pub first_start_latest: bool,
    pub metrics: Arc<KinesisMetrics>,
    /// The delivery stream's name, for logs.
    pub label: String,
}

/// Starts discovery and the shard readers.
pub fn start(setup: Setup) -> Running {
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
    let mut readers: JoinSet<(String, Outcome)> = JoinSet::new();
    let mut running: HashSet<String> = HashSet::new();
    let mut read_to_end: HashSet<String> = HashSet::new();
    let (wake_tx, mut wake) = mpsc::channel::<()>(1);
    let mut failures = 0u32;
    loop {
        match list_shards(&shared.client, &shared.stream).await {
            Ok(shards) => {
                failures = 0;
                let listed: HashMap<&str, &ShardInfo> =
                    shards.iter().map(|s| (s.id.as_str(), s)).collect();
                for s in &shards {
                    if running.contains(&s.id)
                        || read_to_end.contains(&s.id)
                        || shared.checkpoints.is_finished(&s.id)
                    {
                        continue;
                    }
                    // A parent still listed must be read to its end first (both, for a merge).
                    let waiting = s.parents.iter().any(|p| {
                        listed.contains_key(p.as_str())
                            && !read_to_end.contains(p)
                            && !shared.checkpoints.is_finished(p)
                    });
                    if waiting {
                        continue;
                    }
                    let start = match shared.checkpoints.get(&s.id) {
                        Some(ck) => match ck.sequence_number {
                            Some(sequence) => Start::AtCheckpoint {
                                sequence,
                                subsequence: ck.subsequence_number,
                            },
                            None => start_of(s, origin),
                        },
                        None => start_of(s, origin),
                    };
                    tracing::info!(stream = %label, shard = %s.id, start = ?start, "reading shard");
                    running.insert(s.id.clone());
                    let (shared, id, m, wake) = (
                        shared.clone(),
                        s.id.clone(),
                        metrics.shard(&s.id),
                        wake_tx.clone(),
                    );
                    readers.spawn(async move {
                        let outcome = shard::read(shared, id.as_str().into(), start, m).await;
                        let _ = wake.try_send(());
                        (id, outcome)
                    });
                }
            }
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(30) {
                    tracing::warn!(stream = %label, error = %e, "ListShards failed; retrying");
                }
            }
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = tokio::time::sleep(interval) => {}
            _ = wake.recv() => {}
        }
        while let Some(done) = readers.try_join_next() {
            if let Ok((id, outcome)) = done {
                running.remove(&id);
                if matches!(outcome, Outcome::Ended) {
                    tracing::info!(stream = %label, shard = %id, "shard read to its end");
                    read_to_end.insert(id);
                }
            }
        }
    }
    while readers.join_next().await.is_some() {}
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
