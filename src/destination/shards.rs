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
use super::stagers::{Delivery, Kind, Place, StagerSet, StagingError, StagingPlan, StepResult};
use super::staging::Sealed;
use crate::metrics::DestinationMetrics;
use crate::record::Record;

/// Which records a shard set takes: a shard, and the lease tenure they were read under ("":
/// no lease table). A fleet's instance may read a shard again under a new tenure while records
/// of the old one are still on their way; each tenure's records are staged apart.
type Key = (Arc<str>, Arc<str>);

/// Where an exactly-once destination's shard sets come from, and what they tell back: the
/// Kinesis source's checkpoint store behind it (files, or the lease store; `streams::
/// shard_journals` joins them, so neither this module nor the source knows the other).
pub(crate) trait ShardPlans: Send {
    /// The staging plan of a shard and tenure, its journal opened at the shard's checkpoint;
    /// None when the tenure has ended already (its records are another instance's to deliver).
    fn plan(
        &mut self,
        shard: &Arc<str>,
        tenure: &Arc<str>,
    ) -> Result<Option<StagingPlan>, StagingError>;

    /// The durable checkpoint of a shard, as a journal cursor: entries wholly below it are
    /// forgotten when a shard's journal is rewritten.
    fn cursor(&self, shard: &str) -> Pos;

    /// A tenure's journal writes were refused: its records are dropped, never delivered by
    /// this instance, so they must never move a checkpoint.
    fn fenced(&self, tenure: &Arc<str>);

    /// Whether a tenure has ended (the source stopped reading under it): its sets are dropped.
    fn is_fenced(&self, tenure: &Arc<str>) -> bool;
}

/// How a destination stages, as its worker is told.
pub(crate) enum Staging {
    One(Box<StagingPlan>),
    /// Exactly-once from a Kinesis source: a plan per shard, made when the shard is first met.
    PerShard(Box<dyn ShardPlans>),
}

pub(crate) enum Stagers {
    One(Box<StagerSet>),
    PerShard(PerShard),
}

/// A shard set, or the mark of one whose tenure ended (its records are dropped).
enum Set {
    Live(Box<StagerSet>),
    Fenced,
}

pub(crate) struct PerShard {
    /// In the order they were first met (their slots follow it).
    sets: Vec<(Key, Set)>,
    plan: Box<dyn ShardPlans>,
    /// Object ids, shared by every set: the watermark knows objects by id.
    ids: Arc<AtomicU64>,
    metrics: Arc<DestinationMetrics>,
    /// Slots of fenced sets, not yet reported closed to the watermark.
    closed: Vec<Place>,
}

impl PerShard {
    fn index(&mut self, key: &Key) -> Result<usize, StagingError> {
        if let Some(i) = self.sets.iter().position(|(k, _)| k == key) {
            return Ok(i);
        }
        let set = match self.plan.plan(&key.0, &key.1)? {
            Some(plan) => Set::Live(Box::new(StagerSet::new(
                plan,
                self.metrics.clone(),
                self.ids.clone(),
            ))),
            None => {
                self.plan.fenced(&key.1);
                Set::Fenced
            }
        };
        self.sets.push((key.clone(), set));
        Ok(self.sets.len() - 1)
    }

    /// Runs `step` on set `i` and journals what it sealed (in the set's own journal) before
    /// any of it is handed on. A journal that refuses (the tenure ended) fences the set: what
    /// it sealed and holds open is dropped, and so are its later records.
    fn step(&mut self, i: usize, step: impl FnOnce(&mut StagerSet) -> StepResult) -> StepResult {
        let Some(((shard, tenure), Set::Live(set))) = self.sets.get_mut(i) else {
            return Ok(Vec::new());
        };
        if self.plan.is_fenced(tenure) {
            self.fence(i, &[]);
            return Ok(Vec::new());
        }
        let objects = step(set)?;
        match set.record(&objects, &self.plan.cursor(shard)) {
            Ok(()) => Ok(objects),
            Err(StagingError::Fenced) => {
                self.fence(i, &objects);
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    /// Drops set `i`'s objects (`sealed` just now, and those open) and its later records: its
    /// tenure ended, and the lease's next owner cuts them from the same records.
    fn fence(&mut self, i: usize, sealed: &[(Sealed, Kind)]) {
        let Some(((shard, tenure), Set::Live(set))) = self.sets.get_mut(i) else {
            return;
        };
        tracing::warn!(shard = %shard, tenure = %tenure,
            "the shard's lease moved on: what this instance staged of it is dropped, the lease's next owner cuts it");
        for (o, _) in sealed {
            let _ = std::fs::remove_file(&o.path);
        }
        let open = set.open();
        let held = open.iter().filter(|(_, first)| first.is_some()).count();
        self.metrics
            .objects_fenced
            .add((sealed.len() + held) as u64);
        self.closed
            .extend(open.into_iter().map(|(slot, _)| Place { set: i, slot }));
        set.discard_all();
        self.plan.fenced(tenure);
        self.sets[i].1 = Set::Fenced;
    }

    fn each(&mut self, mut step: impl FnMut(&mut StagerSet) -> StepResult) -> StepResult {
        let mut sealed = Vec::new();
        for i in 0..self.sets.len() {
            sealed.extend(self.step(i, &mut step)?);
        }
        Ok(sealed)
    }

    /// Stages each shard's share of `delivery` in its set (made when a shard is first met, or
    /// first ends a stretch of records: a replayed object whose records were all dropped still
    /// ends there).
    fn append(&mut self, delivery: Delivery, now: Instant) -> StepResult {
        let mut shares: Vec<(Key, Delivery)> = Vec::new();
        let partitioned = !delivery.keys.is_empty();
        let mut keys = delivery.keys.into_iter();
        for r in delivery.records {
            let i = share(&mut shares, key_of(&r));
            let key = keys.next().flatten();
            let d = &mut shares[i].1;
            if partitioned {
                d.keys.push(key);
            }
            d.records.push(r);
        }
        for f in delivery.failed {
            let i = share(&mut shares, key_of(&f.line));
            shares[i].1.failed.push(f);
        }
        for r in delivery.backup {
            let i = share(&mut shares, key_of(&r));
            shares[i].1.backup.push(r);
        }
        for e in &delivery.shard_ends {
            share(&mut shares, (e.shard.clone(), e.tenure.clone()));
        }
        let mut sealed = Vec::new();
        for (key, mut d) in shares {
            d.end = delivery.end;
            d.shard_ends = delivery
                .shard_ends
                .iter()
                .filter(|e| e.shard == key.0 && e.tenure == key.1)
                .cloned()
                .collect();
            let i = self.index(&key)?;
            sealed.extend(self.step(i, |set| set.append(d, now))?);
        }
        Ok(sealed)
    }
}

/// The index of `key`'s share, added when it has none yet.
fn share(shares: &mut Vec<(Key, Delivery)>, key: Key) -> usize {
    match shares.iter().position(|(k, _)| *k == key) {
        Some(i) => i,
        None => {
            shares.push((key, Delivery::default()));
            shares.len() - 1
        }
    }
}

/// The shard and tenure a record was read under ("" for one without Kinesis metadata, which
/// a Kinesis source never hands over).
fn key_of(r: &Record) -> Key {
    match &r.kinesis {
        Some(k) => (k.shard_id.clone(), k.tenure.clone()),
        None => (Arc::from(""), Arc::from("")),
    }
}

impl Stagers {
    pub(crate) fn new(staging: Staging, metrics: Arc<DestinationMetrics>) -> Self {
        let ids = Arc::new(AtomicU64::new(0));
        match staging {
            Staging::One(plan) => Stagers::One(Box::new(StagerSet::new(*plan, metrics, ids))),
            Staging::PerShard(plan) => Stagers::PerShard(PerShard {
                sets: Vec::new(),
                plan,
                ids,
                metrics,
                closed: Vec::new(),
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
    pub(crate) fn open(&mut self) -> Vec<(Place, Option<u64>)> {
        match self {
            Stagers::One(s) => (s.open().into_iter())
                .map(|(slot, first)| (Place { set: 0, slot }, first))
                .collect(),
            Stagers::PerShard(p) => {
                let mut out: Vec<(Place, Option<u64>)> =
                    p.closed.drain(..).map(|place| (place, None)).collect();
                for (k, (_, set)) in p.sets.iter_mut().enumerate() {
                    if let Set::Live(set) = set {
                        out.extend(
                            set.open()
                                .into_iter()
                                .map(|(slot, first)| (Place { set: k, slot }, first)),
                        );
                    }
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
                    let Set::Live(set) = set else { continue };
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
