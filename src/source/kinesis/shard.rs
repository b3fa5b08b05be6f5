//! One shard reader: records polled (`poll`: GetRecords) or pushed (`subscribe`: enhanced
//! fan-out), de-aggregated (KPL), handed to the stream's log in order; stops at the shard end,
//! when told, or when the lease it reads under is no longer certainly held.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;

use super::kpl;
use super::ledger::ShardProgress;
use super::metrics::ShardMetrics;
use super::shard_source::{IteratorAt, ShardInfo, ShardRecord, ShardSource};
use crate::record::{KinesisMeta, Record, ShardPosition};
use crate::source::memlog::MemoryLog;
use crate::sync::Lock;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Start {
    /// Only on the very first start with LATEST (a restart uses the first start's time).
    Latest,
    TrimHorizon,
    AtTimestamp(i64),
    /// Resume at a checkpoint: records up to (sequence, subsequence) are skipped.
    AtCheckpoint {
        sequence: String,
        subsequence: u64,
    },
}

/// How records come from a shard.
pub(crate) enum Feed {
    /// GetRecords in a loop (the shard's 2 MB/s and 5 calls/s shared with other consumers).
    Poll,
    /// SubscribeToShard as this registered consumer (its ARN): its own 2 MB/s per shard.
    FanOut { consumer: Arc<str> },
}

pub(crate) struct Shared {
    pub(crate) source: ShardSource,
    pub(crate) log: Arc<MemoryLog>,
    /// Told when a reader reaches its shard's end.
    pub(crate) progress: Arc<dyn ShardProgress>,
    /// GetRecords' Limit.
    pub(crate) limit: i32,
    pub(crate) feed: Feed,
    /// The shards the last listing showed closed (a subscription may need to confirm an end
    /// that its server does not announce).
    pub(crate) closed: Mutex<HashSet<String>>,
}

impl Shared {
    /// Remembers which shards a listing showed closed.
    pub(crate) fn note_listing(&self, shards: &[ShardInfo]) {
        let closed = shards
            .iter()
            .filter(|s| s.closed)
            .map(|s| s.id.clone())
            .collect();
        *self.closed.locked() = closed;
    }

    pub(crate) fn is_closed(&self, shard: &str) -> bool {
        self.closed.locked().contains(shard)
    }
}

pub(crate) enum ReadEnd {
    /// Read to its end: every record is in the log.
    Ended,
    /// Told to stop; the last record it appended, if any.
    Stopped(Option<ShardPosition>),
}

/// The lease a reader reads under: until when it is certainly held, and its tenure.
pub(crate) struct Tenure {
    pub(crate) valid: watch::Receiver<Instant>,
    pub(crate) token: Arc<str>,
}

pub(crate) async fn read(
    shared: Arc<Shared>,
    shard: Arc<str>,
    start: Start,
    metrics: Arc<ShardMetrics>,
    mut stop: watch::Receiver<bool>,
    lease: Option<Tenure>,
) -> ReadEnd {
    let (valid, tenure) = match lease {
        Some(t) => (Some(t.valid), t.token),
        None => (None, Arc::from("")),
    };
    let mut reader = ShardReader {
        shared: &shared,
        shard: shard.clone(),
        start,
        last_read: None,
        appended: None,
        metrics,
        tenure,
    };
    let ended = tokio::select! {
        outcome = reader.run() => Some(outcome),
        _ = stop.wait_for(|s| *s) => None,
        _ = expiry(valid) => {
            tracing::warn!(shard = %shard, "lease not renewed in time: stopped reading");
            None
        }
    };
    ended.unwrap_or(ReadEnd::Stopped(reader.appended))
}

/// Resolves once the lease the reader reads under is no longer certainly held (its last
/// renewal was sent a failover time ago), however busy the manager renewing it is; never
/// without a lease.
async fn expiry(valid: Option<watch::Receiver<Instant>>) {
    let Some(mut valid) = valid else {
        return std::future::pending().await;
    };
    loop {
        let until = *valid.borrow_and_update();
        if Instant::now() >= until {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(until) => {}
            changed = valid.changed() => {
                if changed.is_err() {
                    // The manager let go of the lease: it stops the reader itself.
                    return std::future::pending().await;
                }
            }
        }
    }
}

pub(super) struct ShardReader<'a> {
    pub(super) shared: &'a Shared,
    pub(super) shard: Arc<str>,
    start: Start,
    /// Sequence number of the last Kinesis record converted.
    last_read: Option<String>,
    /// The last record the log took (an append cut short by a stop is not in the log).
    appended: Option<ShardPosition>,
    pub(super) metrics: Arc<ShardMetrics>,
    tenure: Arc<str>,
}

impl ShardReader<'_> {
    async fn run(&mut self) -> ReadEnd {
        match &self.shared.feed {
            Feed::Poll => super::poll::run(self).await,
            Feed::FanOut { consumer } => {
                let consumer = consumer.clone();
                super::subscribe::run(self, &consumer).await
            }
        }
    }

    /// Where reading goes on: right after the last record read, or where the reader starts.
    pub(super) fn position(&self) -> IteratorAt {
        match (&self.last_read, &self.start) {
            (Some(seq), _) => IteratorAt::AfterSequence(seq.clone()),
            (None, Start::TrimHorizon) => IteratorAt::TrimHorizon,
            (None, Start::Latest) => IteratorAt::Latest,
            (None, Start::AtTimestamp(ms)) => IteratorAt::AtTimestamp(*ms),
            (None, Start::AtCheckpoint { sequence, .. }) => {
                IteratorAt::AtSequence(sequence.clone())
            }
        }
    }

    /// Where a new subscription goes on, given the last event's continuation: never before
    /// the last record read (a server's continuation that lags would read records twice), and
    /// at a checkpoint not yet passed, at the checkpoint itself (AFTER a continuation would skip
    /// its remaining user records).
    pub(super) fn resume_after(&self, continuation: Option<String>) -> Option<String> {
        use crate::record::SequenceNumber as N;
        if self.last_read.is_none() && matches!(self.start, Start::AtCheckpoint { .. }) {
            return None;
        }
        match (continuation, self.last_read.clone()) {
            (Some(c), Some(l)) if N::from(l.as_str()) > N::from(c.as_str()) => Some(l),
            (Some(c), _) => Some(c),
            (None, l) => l,
        }
    }

    /// Hands what was read to the stream's log (waiting while the log is full).
    pub(super) async fn take(&mut self, records: Vec<ShardRecord>) {
        let batch = self.convert(records);
        if let Some(k) = batch.last().and_then(|r| r.kinesis.clone()) {
            self.shared.log.append(batch).await;
            self.appended = Some(k.position());
        }
    }

    /// The shard is read to its end: every record is in the log.
    pub(super) fn ended(&self) -> ReadEnd {
        self.shared
            .progress
            .shard_ended(self.shard.clone(), self.shared.log.end());
        ReadEnd::Ended
    }

    /// Kinesis records -> log records: KPL aggregates split, a resumed checkpoint's records
    /// skipped.
    fn convert(&mut self, records: Vec<ShardRecord>) -> Vec<Record> {
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            let seq = crate::record::SequenceNumber::from(r.sequence.as_str());
            let arrival = r.arrival_ms.unwrap_or_else(crate::record::now_ms);
            let data = r.data;
            self.metrics.read(data.len() as u64);
            let parts: Vec<(String, Bytes)> = match kpl::deaggregate(&data) {
                Some(users) => users
                    .into_iter()
                    .map(|u| (u.partition_key, u.data))
                    .collect(),
                None => vec![(r.partition_key, data)],
            };
            for (sub, (key, data)) in parts.into_iter().enumerate() {
                if let Start::AtCheckpoint {
                    sequence,
                    subsequence,
                } = &self.start
                    && self.last_read.is_none()
                    && seq == crate::record::SequenceNumber::from(sequence.as_str())
                    && sub as u64 <= *subsequence
                {
                    continue;
                }
                out.push(Record {
                    data,
                    arrival_ms: arrival,
                    seq: 0,
                    sub: 0,
                    kinesis: Some(Arc::new(KinesisMeta {
                        shard_id: self.shard.clone(),
                        partition_key: key,
                        sequence_number: seq.clone(),
                        subsequence_number: sub as u64,
                        approximate_arrival_ms: arrival,
                        tenure: self.tenure.clone(),
                    })),
                });
            }
            self.last_read = Some(seq.to_string());
        }
        out
    }
}
