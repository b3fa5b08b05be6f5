//! Reading a shard by enhanced fan-out: SubscribeToShard as the registered consumer, records
//! pushed as they arrive, a new subscription from the last event's continuation when one ends
//! (AWS ends each after 5 minutes) or fails. The rules are polling's: nothing skipped or read
//! twice, a checkpoint resumed at its sequence number, the shard's end reached only when every
//! record of it is in the log.

use std::time::Duration;

use tokio::time::Instant;

use super::metrics::SubscribeError;
use super::shard::{ReadEnd, ShardReader};
use super::shard_source::{CallError, IteratorAt, Subscription};
use crate::retry::{Backoff, LogGate};

/// AWS allows one SubscribeToShard call per second per consumer and shard.
const MIN_SUBSCRIBE_GAP: Duration = Duration::from_millis(1000);
/// How often, at most, a reader asks whether a closed shard that pushes nothing is read to its
/// end (a server that does not announce the end; AWS does, with no continuation).
const END_CHECK_EVERY: Duration = Duration::from_secs(5);
/// A subscription that sends no event for this long is taken for dead (a half-open connection
/// would otherwise hold the reader, and its lease, forever): a new one goes on. Kinesis sends
/// events every few seconds even when nothing is put.
const SILENCE: Duration = Duration::from_secs(60);
/// A subscription that lived this long resets the backoff (one that fails as soon as it opens,
/// every time, backs off to the maximum).
const HEALTHY: Duration = Duration::from_secs(10);

pub(super) async fn run(r: &mut ShardReader<'_>, consumer: &str) -> ReadEnd {
    let mut backoff = fresh_backoff();
    let mut gate = LogGate::new(Duration::from_secs(30));
    // Where the next subscription starts: after the last event's continuation, else where
    // the reader is.
    let mut continuation: Option<String> = None;
    let mut last_subscribe = Instant::now() - MIN_SUBSCRIBE_GAP;
    let mut end_checked = Instant::now();
    loop {
        tokio::time::sleep_until(last_subscribe + MIN_SUBSCRIBE_GAP).await;
        let at = match &continuation {
            Some(c) => IteratorAt::AfterSequence(c.clone()),
            None => r.position(),
        };
        last_subscribe = Instant::now();
        let opened =
            tokio::time::timeout(SILENCE, r.shared.source.subscribe(consumer, &r.shard, &at))
                .await
                .unwrap_or_else(|_| Err(silent()));
        let mut sub = match opened {
            Ok(sub) => sub,
            Err(e) => {
                failed(r, &mut gate, &e);
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        r.metrics.subscriptions.add(1);
        let drained = drain(r, &mut sub, &mut continuation, &mut end_checked).await;
        // Closed before any pause, so that the server frees the shard for the next one.
        drop(sub);
        if last_subscribe.elapsed() >= HEALTHY {
            backoff = fresh_backoff();
        }
        match drained {
            Drained::ShardEnd => return r.ended(),
            Drained::Ended => r.metrics.subscriptions_ended.add(1),
            Drained::Failed(e) => {
                failed(r, &mut gate, &e);
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

/// How a subscription ended.
enum Drained {
    /// Every record of the closed shard is in the log.
    ShardEnd,
    /// The server ended it (its time limit): a new one goes on.
    Ended,
    Failed(CallError),
}

/// Takes a subscription's events until it ends.
async fn drain(
    r: &mut ShardReader<'_>,
    sub: &mut Subscription,
    continuation: &mut Option<String>,
    end_checked: &mut Instant,
) -> Drained {
    loop {
        let pushed = match tokio::time::timeout(SILENCE, sub.next()).await {
            Ok(Ok(Some(p))) => p,
            Ok(Ok(None)) => return Drained::Ended,
            Ok(Err(e)) => return Drained::Failed(e),
            Err(_) => return Drained::Failed(silent()),
        };
        if let Some(ms) = pushed.behind_ms {
            r.metrics.set_millis_behind(ms);
        }
        let idle = pushed.records.is_empty() && pushed.behind_ms.unwrap_or(0) == 0;
        r.take(pushed.records).await;
        if pushed.end {
            return Drained::ShardEnd;
        }
        *continuation = r.resume_after(pushed.continuation.or_else(|| continuation.take()));
        if idle && r.shared.is_closed(&r.shard) && end_checked.elapsed() >= END_CHECK_EVERY {
            *end_checked = Instant::now();
            if let Ok(true) = super::poll::at_end(r).await {
                return Drained::ShardEnd;
            }
        }
    }
}

fn silent() -> CallError {
    CallError::Other(format!("no event from the subscription for {SILENCE:?}"))
}

fn fresh_backoff() -> Backoff {
    Backoff::new(MIN_SUBSCRIBE_GAP, Duration::from_secs(10))
}

/// Counts a failure by its kind and logs it now and then.
fn failed(r: &ShardReader<'_>, gate: &mut LogGate, e: &CallError) {
    let kind = match e {
        CallError::InUse(_) => SubscribeError::InUse,
        CallError::Throttled(_) => SubscribeError::Throttled,
        CallError::NotFound(_) => SubscribeError::NotFound,
        CallError::Expired | CallError::Other(_) | CallError::NoIterator => SubscribeError::Other,
    };
    r.metrics.subscribe_errors[kind as usize].add(1);
    if gate.should_log(Instant::now()) {
        tracing::warn!(shard = %r.shard, error = %e, kind = kind.name(),
            "SubscribeToShard failed; subscribing again");
    }
}
