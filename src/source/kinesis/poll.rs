//! Polling a shard: GetRecords in a loop, within 5 calls/s, again at once while behind, slower
//! when idle; retries throttling, expired iterators and network errors without skipping a
//! record.

use std::time::Duration;

use tokio::time::Instant;

use super::shard::{ReadEnd, ShardReader};
use super::shard_source::CallError as Failure;
use crate::retry::{Backoff, LogGate};

/// At most 5 GetRecords calls per second per shard: the next call leaves at least this long
/// after the previous one was answered, so the server sees them at least this far apart
/// whatever the latency (a gap counted from the send could shrink on the way).
const MIN_CALL_GAP: Duration = Duration::from_millis(205);
/// Pause between polls of a shard that has nothing new.
const IDLE_POLL: Duration = Duration::from_secs(1);

pub(super) async fn run(r: &mut ShardReader<'_>) -> ReadEnd {
    let mut backoff = fresh_backoff();
    let mut gate = LogGate::new(Duration::from_secs(30));
    let mut iterator: Option<String> = None;
    let mut last_call = Instant::now() - MIN_CALL_GAP;
    loop {
        let it = match iterator.take() {
            Some(it) => it,
            None => match r.shared.source.iterator(&r.shard, &r.position()).await {
                Ok(it) => it,
                Err(e) => {
                    complain(r, &mut gate, &e);
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            },
        };
        tokio::time::sleep_until(last_call + MIN_CALL_GAP).await;
        let result = r.shared.source.get_records(&it, r.shared.limit).await;
        last_call = Instant::now();
        let out = match result {
            Ok(out) => out,
            Err(failure) => {
                // Expired: re-acquired right after the last record handed on, nothing
                // skipped. Otherwise the same iterator again after a pause.
                if !matches!(failure, Failure::Expired) {
                    if matches!(failure, Failure::Throttled(_)) {
                        r.metrics.throttled.add(1);
                    }
                    complain(r, &mut gate, &failure);
                    iterator = Some(it);
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                continue;
            }
        };
        backoff = fresh_backoff();
        let behind = out.behind_ms;
        if let Some(ms) = behind {
            r.metrics.set_millis_behind(ms);
        }
        let count = out.records.len();
        r.take(out.records).await;
        match out.next {
            None => return r.ended(),
            Some(n) => iterator = Some(n),
        }
        if count == 0 && behind.unwrap_or(0) == 0 {
            tokio::time::sleep(IDLE_POLL).await;
        }
    }
}

fn fresh_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(200), Duration::from_secs(10))
}

fn complain(r: &ShardReader<'_>, gate: &mut LogGate, failure: &Failure) {
    if gate.should_log(Instant::now()) {
        tracing::warn!(shard = %r.shard, error = %failure, "GetRecords failed; retrying");
    }
}

/// Whether the shard is read to its end from where the reader is: one GetRecords from its
/// position that returns no record and no next iterator. For a subscription whose server
/// does not announce a closed shard's end (no null ContinuationSequenceNumber).
pub(super) async fn at_end(r: &ShardReader<'_>) -> Result<bool, Failure> {
    let it = r.shared.source.iterator(&r.shard, &r.position()).await?;
    let out = r.shared.source.get_records(&it, 1).await?;
    Ok(out.next.is_none() && out.records.is_empty())
}
