//! The stagers of one destination, as the worker sees them: one `StagerSet`, or, for
//! exactly-once delivery from a Kinesis source, one per shard. A Kinesis source's memory log
//! interleaves the shards differently on every run, so an object mixing shards could not be cut
//! again from the same records after a crash; an object of one shard can: its identity is a
//! range of that shard's sequence numbers, which every read of the shard returns in the same
//! order (Kafka Connect's S3 sink cuts its objects per partition for the same reason). Each
//! shard's set has its own journal and its own name space, and forgets below the shard's
//! durable checkpoint.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::time::Instant;

use super::journal::Pos;
use super::stagers::{Delivery, Kind, StagerSet, StagingError, StagingPlan, StepResult};
use super::staging::Sealed;
use crate::metrics::DestinationMetrics;

/// Makes the staging plan of a shard, its journal opened at the shard's checkpoint.
pub(crate) type MakeShardPlan =
    Box<dyn FnMut(&Arc<str>) -> Result<StagingPlan, StagingError> + Send>;

/// The durable checkpoint of a shard, as a journal cursor: entries wholly below it are
/// forgotten when a shard's journal is rewritten.
pub(crate) type ShardCursor = Box<dyn Fn(&str) -> Pos + Send>;

/// Watermark slots of shard set `k` start at `k * SHARD_SLOTS` (a set numbers its own from 0).
const SHARD_SLOTS: usize = 1 << 32;

/// How a destination stages, as its worker is told.
pub(crate) enum Staging {
    One(StagingPlan),
    /// Exactly-once from a Kinesis source: a plan per shard, made when the shard is first met.
    PerShard(MakeShardPlan, ShardCursor),
}

pub(crate) enum Stagers {
    One(StagerSet),
    PerShard(PerShard),
}

pub(crate) struct PerShard {
    /// In the order the shards were first met (their slots follow it).
    sets: Vec<(Arc<str>, StagerSet)>,
    make: MakeShardPlan,
    cursor: ShardCursor,
    /// Object ids, shared by every set: the watermark knows objects by id.
    ids: Arc<AtomicU64>,
    metrics: Arc<DestinationMetrics>,
}

impl PerShard {
    fn index(&mut self, shard: &Arc<str>) -> Result<usize, StagingError> {
        if let Some(i) = self.sets.iter().position(|(s, _)| s == shard) {
            return Ok(i);
        }
        let plan = (self.make)(shard)?;
        let set = StagerSet::new(plan, self.metrics.clone(), self.ids.clone());
        self.sets.push((shard.clone(), set));
        Ok(self.sets.len() - 1)
    }

    /// Runs `step` on every shard set, journaling what each seals (in its own journal) before
    /// any of it is handed on.
    fn each(&mut self, mut step: impl FnMut(&mut StagerSet) -> StepResult) -> StepResult {
        let mut sealed = Vec::new();
        for (shard, set) in &mut self.sets {
            let objects = step(set)?;
            set.record(&objects, &(self.cursor)(shard))?;
            sealed.extend(objects);
        }
        Ok(sealed)
    }

    /// Stages each shard's share of `delivery` in its set (made when a shard is first met, or
    /// first ends a stretch of records: a replayed object whose records were all dropped still
    /// ends there).
    fn append(&mut self, delivery: Delivery, now: Instant) -> StepResult {
        let mut shares: Vec<(Arc<str>, Delivery)> = Vec::new();
        let partitioned = !delivery.keys.is_empty();
        let mut keys = delivery.keys.into_iter();
        for r in delivery.records {
            let i = share(&mut shares, shard_of(&r));
            let key = keys.next().flatten();
            let d = &mut shares[i].1;
            if partitioned {
                d.keys.push(key);
            }
            d.records.push(r);
        }
        for f in delivery.failed {
            let i = share(&mut shares, shard_of(&f.line));
            shares[i].1.failed.push(f);
        }
        for r in delivery.backup {
            let i = share(&mut shares, shard_of(&r));
            shares[i].1.backup.push(r);
        }
        for (shard, _) in &delivery.shard_ends {
            share(&mut shares, shard.clone());
        }
        let mut sealed = Vec::new();
        for (shard, mut d) in shares {
            d.end = delivery.end;
            d.shard_ends = delivery
                .shard_ends
                .iter()
                .filter(|(s, _)| *s == shard)
                .cloned()
                .collect();
            let i = self.index(&shard)?;
            let (_, set) = &mut self.sets[i];
            let objects = set.append(d, now)?;
            set.record(&objects, &(self.cursor)(&shard))?;
            sealed.extend(objects);
        }
        Ok(sealed)
    }
}

/// The index of `shard`'s share, added when it has none yet.
fn share(shares: &mut Vec<(Arc<str>, Delivery)>, shard: Arc<str>) -> usize {
    match shares.iter().position(|(s, _)| *s == shard) {
        Some(i) => i,
        None => {
            shares.push((shard, Delivery::default()));
            shares.len() - 1
        }
    }
}

/// The shard a record came from ("" for one without Kinesis metadata, which a Kinesis source
/// never hands over).
fn shard_of(r: &crate::record::Record) -> Arc<str> {
    match &r.kinesis {
        Some(k) => k.shard_id.clone(),
        None => Arc::from(""),
    }
}

impl Stagers {
    pub(crate) fn new(staging: Staging, metrics: Arc<DestinationMetrics>) -> Self {
        let ids = Arc::new(AtomicU64::new(0));
        match staging {
            Staging::One(plan) => Stagers::One(StagerSet::new(plan, metrics, ids)),
            Staging::PerShard(make, cursor) => Stagers::PerShard(PerShard {
                sets: Vec::new(),
                make,
                cursor,
                ids,
                metrics,
            }),
        }
    }

    pub(crate) fn append(&mut self, delivery: Delivery, now: Instant) -> StepResult {
        match self {
            Stagers::One(s) => s.append(delivery, now),
            Stagers::PerShard(p) => p.append(delivery, now),
        }
    }

    pub(crate) fn seal_all(&mut self) -> StepResult {
        match self {
            Stagers::One(s) => s.seal_all(),
            Stagers::PerShard(p) => p.each(StagerSet::seal_all),
        }
    }

    pub(crate) fn seal_due(&mut self, now: Instant, interval: std::time::Duration) -> StepResult {
        match self {
            Stagers::One(s) => s.seal_due(now, interval),
            Stagers::PerShard(p) => p.each(|s| s.seal_due(now, interval)),
        }
    }

    /// Exactly-once: journals what a step sealed before it is uploaded; `durable` is the log
    /// cursor last recorded (shard sets journaled their objects in the step already).
    pub(crate) fn record(
        &mut self,
        sealed: &[(Sealed, Kind)],
        durable: u64,
    ) -> Result<(), StagingError> {
        match self {
            Stagers::One(s) => s.record(sealed, &Pos::log(durable)),
            Stagers::PerShard(_) => Ok(()),
        }
    }

    /// Open objects by watermark slot (see `StagerSet::open`).
    pub(crate) fn open(&mut self) -> Vec<(usize, Option<u64>)> {
        match self {
            Stagers::One(s) => s.open(),
            Stagers::PerShard(p) => {
                let mut out = Vec::new();
                for (k, (_, set)) in p.sets.iter_mut().enumerate() {
                    out.extend(
                        set.open()
                            .into_iter()
                            .map(|(slot, first)| (k * SHARD_SLOTS + slot, first)),
                    );
                }
                out
            }
        }
    }

    /// The earliest time an open object was opened, and the oldest record arrival.
    pub(crate) fn times(&mut self) -> (Option<Instant>, Option<i64>) {
        match self {
            Stagers::One(s) => s.times(),
            Stagers::PerShard(p) => {
                let (mut opened, mut oldest): (Option<Instant>, Option<i64>) = (None, None);
                for (_, set) in &mut p.sets {
                    let (o, t) = set.times();
                    opened = match (opened, o) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    oldest = match (oldest, t) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                (opened, oldest)
            }
        }
    }
}
