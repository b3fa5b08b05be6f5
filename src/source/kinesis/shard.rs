//! One shard reader: GetRecords in a loop, within 5 calls/s, again at once while behind, slower
//! when idle; retries throttling, expired iterators and network errors without skipping a
//! record; de-aggregates KPL records; hands records to the stream's log; stops at the shard end.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;

use super::kpl;
use super::ledger::ShardProgress;
use super::metrics::ShardMetrics;
use super::shard_source::{CallError as Failure, IteratorAt, ShardRecord, ShardSource};
use crate::record::{KinesisMeta, Record, ShardPosition};
use crate::retry::{Backoff, LogGate};
use crate::source::memlog::MemoryLog;

/// At most 5 GetRecords calls per second per shard: the next call leaves at least this long
/// after the previous one was answered, so the server sees them at least this far apart
/// whatever the latency (a gap counted from the send could shrink on the way).
const MIN_CALL_GAP: Duration = Duration::from_millis(205);
/// Pause between polls of a shard that has nothing new.
const IDLE_POLL: Duration = Duration::from_secs(1);

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

pub(crate) struct Shared {
    pub(crate) source: ShardSource,
    pub(crate) log: Arc<MemoryLog>,
    /// Told when a reader reaches its shard's end.
    pub(crate) progress: Arc<dyn ShardProgress>,
    pub(crate) limit: i32,
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

struct ShardReader<'a> {
    shared: &'a Shared,
    shard: Arc<str>,
    start: Start,
    /// Sequence number of the last Kinesis record converted.
    last_read: Option<String>,
    /// The last record the log took (an append cut short by a stop is not in the log).
    appended: Option<ShardPosition>,
    metrics: Arc<ShardMetrics>,
    tenure: Arc<str>,
}

impl ShardReader<'_> {
    async fn run(&mut self) -> ReadEnd {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        let mut gate = LogGate::new(Duration::from_secs(30));
        let mut iterator: Option<String> = None;
        let mut last_call = Instant::now() - MIN_CALL_GAP;
        loop {
            let it = match iterator.take() {
                Some(it) => it,
                None => match self.iterator().await {
                    Ok(it) => it,
                    Err(e) => {
                        self.complain(&mut gate, &e);
                        tokio::time::sleep(backoff.next_delay()).await;
                        continue;
                    }
                },
            };
            tokio::time::sleep_until(last_call + MIN_CALL_GAP).await;
            let result = self.shared.source.get_records(&it, self.shared.limit).await;
            last_call = Instant::now();
            let out = match result {
                Ok(out) => out,
                Err(failure) => {
                    // Expired: re-acquired right after the last record handed on, nothing
                    // skipped. Otherwise the same iterator again after a pause.
                    if !matches!(failure, Failure::Expired) {
                        if matches!(failure, Failure::Throttled(_)) {
                            self.metrics.throttled.add(1);
                        }
                        self.complain(&mut gate, &failure);
                        iterator = Some(it);
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                    continue;
                }
            };
            backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
            let behind = out.behind_ms;
            if let Some(ms) = behind {
                self.metrics.set_millis_behind(ms);
            }
            let next = out.next;
            let count = out.records.len();
            let batch = self.convert(out.records);
            if let Some(k) = batch.last().and_then(|r| r.kinesis.clone()) {
                self.shared.log.append(batch).await;
                self.appended = Some(k.position());
            }
            match next {
                None => {
                    self.shared
                        .progress
                        .shard_ended(self.shard.clone(), self.shared.log.end());
                    return ReadEnd::Ended;
                }
                Some(n) => iterator = Some(n),
            }
            if count == 0 && behind.unwrap_or(0) == 0 {
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }

    fn complain(&self, gate: &mut LogGate, failure: &Failure) {
        if gate.should_log(Instant::now()) {
            tracing::warn!(shard = %self.shard, error = %failure, "GetRecords failed; retrying");
        }
    }

    /// An iterator right after the last record read, or where the reader starts.
    async fn iterator(&self) -> Result<String, Failure> {
        let at = match (&self.last_read, &self.start) {
            (Some(seq), _) => IteratorAt::AfterSequence(seq.clone()),
            (None, Start::TrimHorizon) => IteratorAt::TrimHorizon,
            (None, Start::Latest) => IteratorAt::Latest,
            (None, Start::AtTimestamp(ms)) => IteratorAt::AtTimestamp(*ms),
            (None, Start::AtCheckpoint { sequence, .. }) => {
                IteratorAt::AtSequence(sequence.clone())
            }
        };
        self.shared.source.iterator(&self.shard, &at).await
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
