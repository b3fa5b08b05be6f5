//! A stream's shards in memory, for the unit tier: records put into a named shard get
//! increasing sequence numbers; a shard split or merged is closed, its children list it as
//! their parent, and reading a closed shard ends (no next iterator) after its last record, as
//! Kinesis does (`contract.rs` holds both to one suite). A subscription pushes what the shard
//! holds from where it starts, one per shard at a time (a second is refused as in use until the
//! first is dropped), and ends after a set number of events as AWS's end after 5 minutes. A
//! test can take it down: every call fails as an unreachable Kinesis does.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use super::{CallError, Fetched, IteratorAt, Pushed, ShardInfo, ShardRecord};
use crate::sync::Lock;

#[derive(Debug)]
pub(crate) struct MemoryStream {
    shards: Mutex<BTreeMap<String, Shard>>,
    /// The last sequence number given (shared by every shard, as Kinesis's grow).
    sequence: AtomicU64,
    down: AtomicBool,
    /// Shards with a subscription open.
    subscribed: Arc<Mutex<HashSet<String>>>,
    /// Events a subscription pushes before it ends.
    events_per_subscription: AtomicUsize,
    /// Subscriptions opened, in all.
    subscriptions: AtomicUsize,
    /// A subscription says when a closed shard is read to its end (AWS does; kinesis-mock
    /// does not).
    announce_ends: AtomicBool,
    /// What continuations events carry: as AWS's, none, or a stale one (the shard's start).
    continuations: Mutex<Continuations>,
    /// Events a subscription pushes before it falls silent (a half-open connection).
    silent_after: AtomicUsize,
}

/// What continuations a memory subscription's events carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Continuations {
    /// The last record's sequence number, as AWS.
    Faithful,
    /// None in any event (some servers leave it out).
    Omitted,
    /// Always the shard's start (a server whose continuation lags).
    Stale,
}

#[derive(Debug, Default)]
struct Shard {
    parents: Vec<String>,
    records: Vec<ShardRecord>,
    open: bool,
}

/// Sequence numbers as Kinesis writes them: decimal strings, compared as numbers.
fn sequence(n: u64) -> String {
    format!("4959033827149025660855969253{n:020}")
}

/// An iterator's text: the shard, and the index of the next record.
fn iterator_text(shard: &str, index: usize) -> String {
    format!("{shard}/{index}")
}

impl MemoryStream {
    /// A stream of `shards` open shards, `shardId-000000000000` on.
    pub(crate) fn new(shards: usize) -> Self {
        let s = MemoryStream {
            shards: Mutex::new(BTreeMap::new()),
            sequence: AtomicU64::new(0),
            down: AtomicBool::new(false),
            subscribed: Arc::default(),
            events_per_subscription: AtomicUsize::new(usize::MAX),
            subscriptions: AtomicUsize::new(0),
            announce_ends: AtomicBool::new(true),
            continuations: Mutex::new(Continuations::Faithful),
            silent_after: AtomicUsize::new(usize::MAX),
        };
        for _ in 0..shards {
            s.add(Vec::new());
        }
        s
    }

    /// A new open shard with `parents`; its id.
    fn add(&self, parents: Vec<String>) -> String {
        let mut shards = self.shards.locked();
        let id = format!("shardId-{:012}", shards.len());
        shards.insert(
            id.clone(),
            Shard {
                parents,
                records: Vec::new(),
                open: true,
            },
        );
        id
    }

    /// Puts a record into `shard`; its sequence number (None: the shard is closed or unknown).
    pub(crate) fn put(&self, shard: &str, key: &str, data: &[u8]) -> Option<String> {
        let mut shards = self.shards.locked();
        let s = shards.get_mut(shard).filter(|s| s.open)?;
        let seq = sequence(self.sequence.fetch_add(1, Ordering::Relaxed) + 1);
        s.records.push(ShardRecord {
            sequence: seq.clone(),
            partition_key: key.to_string(),
            data: Bytes::copy_from_slice(data),
            arrival_ms: Some(crate::record::now_ms()),
        });
        Some(seq)
    }

    /// Closes `shard` and opens two children of it.
    pub(crate) fn split(&self, shard: &str) -> [String; 2] {
        self.close(shard);
        [
            self.add(vec![shard.to_string()]),
            self.add(vec![shard.to_string()]),
        ]
    }

    /// Closes `a` and `b` and opens one child of both.
    pub(crate) fn merge(&self, a: &str, b: &str) -> String {
        self.close(a);
        self.close(b);
        self.add(vec![a.to_string(), b.to_string()])
    }

    fn close(&self, shard: &str) {
        if let Some(s) = self.shards.locked().get_mut(shard) {
            s.open = false;
        }
    }

    /// Every call fails while `down`.
    pub(crate) fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Release);
    }

    fn up(&self) -> Result<(), CallError> {
        match self.down.load(Ordering::Acquire) {
            true => Err(CallError::Other("the memory stream is down".into())),
            false => Ok(()),
        }
    }

    pub(crate) fn list_shards(&self) -> Result<Vec<ShardInfo>, CallError> {
        self.up()?;
        Ok(self
            .shards
            .locked()
            .iter()
            .map(|(id, s)| ShardInfo {
                id: id.clone(),
                parents: s.parents.clone(),
                closed: !s.open,
            })
            .collect())
    }

    pub(crate) fn iterator(&self, shard: &str, at: &IteratorAt) -> Result<String, CallError> {
        self.up()?;
        let shards = self.shards.locked();
        let s = shards
            .get(shard)
            .ok_or_else(|| CallError::Other(format!("no shard {shard}")))?;
        let cmp = |r: &ShardRecord, seq: &str| {
            crate::record::SequenceNumber::from(r.sequence.as_str())
                .cmp(&crate::record::SequenceNumber::from(seq))
        };
        let index = match at {
            IteratorAt::TrimHorizon => 0,
            IteratorAt::Latest => s.records.len(),
            IteratorAt::AtTimestamp(ms) => s
                .records
                .iter()
                .position(|r| r.arrival_ms.unwrap_or(0) >= *ms)
                .unwrap_or(s.records.len()),
            IteratorAt::AtSequence(seq) => s
                .records
                .iter()
                .position(|r| cmp(r, seq).is_ge())
                .unwrap_or(s.records.len()),
            IteratorAt::AfterSequence(seq) => s
                .records
                .iter()
                .position(|r| cmp(r, seq).is_gt())
                .unwrap_or(s.records.len()),
        };
        Ok(iterator_text(shard, index))
    }

    pub(crate) fn get_records(&self, iterator: &str, limit: i32) -> Result<Fetched, CallError> {
        self.up()?;
        let (shard, index) = iterator
            .rsplit_once('/')
            .and_then(|(s, i)| Some((s, i.parse::<usize>().ok()?)))
            .ok_or_else(|| CallError::Other(format!("not an iterator: {iterator}")))?;
        let shards = self.shards.locked();
        let s = shards
            .get(shard)
            .ok_or_else(|| CallError::Other(format!("no shard {shard}")))?;
        let end = s
            .records
            .len()
            .min(index + usize::try_from(limit.max(1)).unwrap_or(1));
        let records: Vec<ShardRecord> = s.records.get(index..end).unwrap_or_default().to_vec();
        let at_end = end >= s.records.len();
        Ok(Fetched {
            records,
            next: (s.open || !at_end).then(|| iterator_text(shard, end)),
            behind_ms: Some(if at_end { 0 } else { 1000 }),
        })
    }
}

/// How often a memory subscription looks for new records (AWS pushes as records arrive).
const PUSH_EVERY: Duration = Duration::from_millis(10);

impl MemoryStream {
    /// Each subscription ends after `n` events (AWS: after 5 minutes).
    pub(crate) fn end_subscriptions_after(&self, n: usize) {
        self.events_per_subscription.store(n, Ordering::Relaxed);
    }

    /// Subscriptions never say that a closed shard is read to its end (as kinesis-mock's).
    pub(crate) fn hide_shard_ends(&self) {
        self.announce_ends.store(false, Ordering::Relaxed);
    }

    /// What continuations subscriptions send from now on.
    pub(crate) fn send_continuations(&self, c: Continuations) {
        *self.continuations.locked() = c;
    }

    /// Each subscription falls silent (sends nothing more, never ends) after `n` events.
    pub(crate) fn fall_silent_after(&self, n: usize) {
        self.silent_after.store(n, Ordering::Relaxed);
    }

    /// Subscriptions opened so far.
    pub(crate) fn subscriptions(&self) -> usize {
        self.subscriptions.load(Ordering::Relaxed)
    }

    pub(crate) fn subscribe(
        self: &Arc<Self>,
        shard: &str,
        at: &IteratorAt,
    ) -> Result<MemorySubscription, CallError> {
        let iterator = self.iterator(shard, at)?;
        // Before the first record read: the sequence number just before where it starts.
        let continuation = {
            let shards = self.shards.locked();
            let index = iterator
                .rsplit_once('/')
                .and_then(|(_, i)| i.parse::<usize>().ok())
                .unwrap_or(0);
            shards
                .get(shard)
                .and_then(|s| index.checked_sub(1).and_then(|i| s.records.get(i)))
                .map(|r| r.sequence.clone())
                .unwrap_or_else(|| sequence(0))
        };
        if !self.subscribed.locked().insert(shard.to_string()) {
            return Err(CallError::InUse(format!(
                "another subscription to {shard} is open"
            )));
        }
        self.subscriptions.fetch_add(1, Ordering::Relaxed);
        Ok(MemorySubscription {
            stream: self.clone(),
            shard: shard.to_string(),
            iterator: Some(iterator),
            continuation,
            events_left: self.events_per_subscription.load(Ordering::Relaxed),
            until_silent: self.silent_after.load(Ordering::Relaxed),
        })
    }
}

/// An open subscription to a memory shard; dropping it frees the shard for the next one.
pub(crate) struct MemorySubscription {
    stream: Arc<MemoryStream>,
    shard: String,
    /// Where the next event starts; None: the shard's end was pushed.
    iterator: Option<String>,
    continuation: String,
    events_left: usize,
    until_silent: usize,
}

impl MemorySubscription {
    pub(crate) async fn next(&mut self) -> Result<Option<Pushed>, CallError> {
        if self.until_silent == 0 {
            return std::future::pending().await;
        }
        if self.events_left == 0 {
            return Ok(None);
        }
        let Some(iterator) = self.iterator.take() else {
            return Ok(None);
        };
        tokio::time::sleep(PUSH_EVERY).await;
        let fetched = match self.stream.get_records(&iterator, 100) {
            Ok(f) => f,
            Err(e) => {
                self.iterator = Some(iterator);
                return Err(e);
            }
        };
        self.events_left -= 1;
        self.until_silent = self.until_silent.saturating_sub(1);
        if let Some(last) = fetched.records.last() {
            self.continuation = last.sequence.clone();
        }
        let announce = self.stream.announce_ends.load(Ordering::Relaxed);
        let stay = || {
            let (shard, index) = iterator.rsplit_once('/')?;
            let index = index.parse::<usize>().ok()?;
            Some(iterator_text(shard, index + fetched.records.len()))
        };
        self.iterator = match fetched.next.clone() {
            Some(next) => Some(next),
            None if !announce => stay(),
            None => None,
        };
        Ok(Some(Pushed {
            records: fetched.records,
            continuation: match *self.stream.continuations.locked() {
                _ if self.iterator.is_none() => None,
                Continuations::Faithful => Some(self.continuation.clone()),
                Continuations::Omitted => None,
                Continuations::Stale => Some(sequence(0)),
            },
            behind_ms: fetched.behind_ms,
            end: self.iterator.is_none(),
        }))
    }
}

impl Drop for MemorySubscription {
    fn drop(&mut self) {
        self.stream.subscribed.locked().remove(&self.shard);
    }
}
