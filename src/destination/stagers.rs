//! The objects a destination builds at once: the main object (or, with dynamic partitioning,
//! one per active partition), one error object per error-output-type, and the source-record
//! backup. Blocking I/O: the worker runs these steps on the blocking pool.
//!
//! Sealing rule: whenever any object seals, the "companions" (the unpartitioned main object,
//! the error objects and the backup) seal with it, so that a small error or backup object never
//! holds the destination's cursor behind main objects already written. Partitions seal on their
//! own (size, interval, flush), as AWS's do.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use chrono_tz::Tz;
use tokio::time::Instant;

use super::journal::{self, Entry, Journal, Pos};
use super::naming::{ErrorNaming, Naming};
use super::partition::{self, ACTIVE_PARTITIONS_EXCEEDED, RecordKeys, Unpartitioned};
use super::staging::{Identity, ObjectStager, Rejected, Sealed};
use crate::disk::Patience;
use crate::keys::template::{PartitionValues, Template};
use crate::metrics::DestinationMetrics;
use crate::processing::ErrorOutput;
use crate::record::Record;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Main,
    /// A partition's object (dynamic partitioning): delivered records, like `Main`.
    Partition,
    Error,
    Backup,
}

/// ObjectStager slots (the watermark's entries): 0 main, 1 backup, 2..ERRORS_END one per
/// error-output-type, then one per partition opened.
const MAIN: usize = 0;
const BACKUP: usize = 1;
const ERRORS_END: usize = 16;

/// What the processing stage hands one destination for a run of log records.
#[derive(Debug, Default)]
pub(crate) struct Delivery {
    pub(crate) records: Vec<Record>,
    /// Partition keys of `records`, one each, in order; empty when the destination does not
    /// partition.
    pub(crate) keys: Vec<Option<Arc<RecordKeys>>>,
    pub(crate) failed: Vec<ErrorOutput>,
    /// The records as they were before processing (source_record_backup).
    pub(crate) backup: Vec<Record>,
    /// Every log record below this is in this delivery or an earlier one, or was dropped.
    pub(crate) end: u64,
    /// The same per Kinesis shard (and lease tenure), as identity positions (exactly-once
    /// objects of a Kinesis source are cut per shard; see `shards`).
    pub(crate) shard_ends: Vec<ShardEnd>,
}

/// Every record of `shard` read under `tenure` below `end` is in this delivery or an earlier
/// one, or was dropped.
#[derive(Debug, Clone)]
pub(crate) struct ShardEnd {
    pub(crate) shard: Arc<str>,
    pub(crate) tenure: Arc<str>,
    pub(crate) end: Pos,
}

impl Delivery {
    pub(crate) fn bytes(&self) -> usize {
        self.records.iter().map(|r| r.data.len()).sum::<usize>()
            + self.failed.iter().map(|f| f.line.data.len()).sum::<usize>()
            + self.backup.iter().map(|r| r.data.len()).sum::<usize>()
    }
}

/// Makes a stager.
pub(crate) type MakeStager<T> = Box<dyn Fn(T) -> ObjectStager + Send>;

/// Dynamic partitioning of a destination.
pub(crate) struct Partitioning {
    pub(crate) template: Template,
    pub(crate) time_zone: Tz,
    pub(crate) max_active: usize,
    pub(crate) make: MakeStager<Arc<PartitionValues>>,
}

/// What a destination's objects are made with beyond their naming, built from its
/// specification by `streams::build`: the error and backup prefixes parsed, the format
/// conversion ready to make writers.
#[derive(Clone, Default)]
pub(crate) struct Layout {
    pub(crate) error_prefix: Option<Template>,
    pub(crate) backup_prefix: Option<Template>,
    pub(crate) conversion: Option<Arc<crate::encode::parquet::Conversion>>,
}

/// How a destination stages its objects.
pub(crate) struct StagingPlan {
    pub(crate) main: ObjectStager,
    pub(crate) backup: Option<ObjectStager>,
    /// Makes the stager of an error-output-type (called the first time one is needed).
    pub(crate) error_stager: MakeStager<ErrorNaming>,
    pub(crate) error_template: Option<Template>,
    pub(crate) partitioning: Option<Partitioning>,
    /// Main and partition objects are Parquet (format conversion).
    pub(crate) converting: bool,
    /// How every stager's writes wait for space on a full disk.
    pub(crate) patience: Arc<Patience>,
    /// Set for exactly-once delivery (`delivery: exactly_once`).
    pub(crate) exactly_once: Option<ExactlyOnce>,
    /// The backup takes every delivered record (an HTTP endpoint's `s3_backup.mode: AllData`).
    pub(crate) backup_all: bool,
}

/// A destination's exactly-once state at start-up.
pub(crate) struct ExactlyOnce {
    /// `<stream>/<destination index>`: names are derived from it, the slot and the position.
    pub(crate) namespace: Arc<str>,
    pub(crate) journal: Journal,
    /// The journal's entries that a replay may meet (see `Journal::open`).
    pub(crate) replay: Vec<Entry>,
    /// The Kinesis shard whose records this stager set takes (None: Direct PUT).
    pub(crate) shard: Option<Arc<str>>,
}

impl ExactlyOnce {
    fn identity(&self, slot: String) -> Identity {
        let replay = journal::of_slot(&self.replay, &slot);
        Identity::new(self.namespace.clone(), slot, replay)
    }
}

/// The journal slot of a partition's objects.
fn partition_slot(values: &PartitionValues) -> String {
    let json = serde_json::json!({"query": values.query, "lambda": values.lambda});
    format!("partition/{json}")
}

impl StagingPlan {
    /// The stagers of destination `d`, all writing under `dir`.
    pub(crate) fn build(
        dir: std::path::PathBuf,
        naming: Naming,
        d: &crate::spec::DestinationSpec,
        layout: &Layout,
        delimiter: bool,
        patience: Arc<Patience>,
    ) -> StagingPlan {
        let (compression, size) = (d.compression, d.buffering.size_bytes());
        let conversion = layout.conversion.clone();
        let with = |naming: Naming, delimiter: bool| {
            ObjectStager::new(dir.clone(), naming, compression, delimiter, size)
        };
        if let crate::spec::Target::Http(http) = &d.target {
            return Self::http(dir, naming, http, d, layout, delimiter, patience);
        }
        // Error and backup objects hold JSON lines, never Parquet: their extension is the
        // compression's own.
        let lines_naming = if conversion.is_some() {
            Naming {
                extension: compression.extension().to_string(),
                ..naming.clone()
            }
        } else {
            naming.clone()
        };
        let backup = layout.backup_prefix.as_ref().map(|t| {
            with(
                Naming {
                    prefix: t.clone(),
                    ..lines_naming.clone()
                },
                false,
            )
        });
        let error_stager: MakeStager<ErrorNaming> = {
            let (dir, naming) = (dir.clone(), lines_naming);
            Box::new(move |e: ErrorNaming| {
                let naming = Naming {
                    error: Some(e),
                    ..naming.clone()
                };
                ObjectStager::new(dir.clone(), naming, compression, false, size)
            })
        };
        let partitioning = d.dynamic_partitioning.map(|dp| {
            let (dir, naming, conversion) = (dir.clone(), naming.clone(), conversion.clone());
            Partitioning {
                template: naming.prefix.clone(),
                time_zone: naming.time_zone,
                max_active: dp.max_active_partitions,
                make: Box::new(move |values: Arc<PartitionValues>| {
                    let naming = Naming {
                        partition: Some(values),
                        ..naming.clone()
                    };
                    ObjectStager::new(dir.clone(), naming, compression, delimiter, size)
                        .with_buffer(PARTITION_BUFFER)
                        .with_lean_compression()
                        .with_conversion(conversion.clone())
                }),
            }
        });
        StagingPlan {
            main: with(naming, delimiter)
                .with_conversion(conversion.clone())
                .with_parallel_compression(),
            converting: conversion.is_some(),
            backup,
            error_stager,
            error_template: layout.error_prefix.clone(),
            partitioning,
            patience,
            exactly_once: None,
            backup_all: false,
        }
    }

    /// An HTTP endpoint's stagers: the main object is a request's records, framed, uncompressed
    /// (the sink builds the body); error objects, and with AllData a copy of every record, go
    /// to the backup under its prefixes, with its compression.
    fn http(
        dir: std::path::PathBuf,
        naming: Naming,
        http: &crate::spec::HttpEndpoint,
        d: &crate::spec::DestinationSpec,
        layout: &Layout,
        delimiter: bool,
        patience: Arc<Patience>,
    ) -> StagingPlan {
        let (compression, size) = (d.compression, d.buffering.size_bytes());
        let all = http.backup_mode == crate::spec::BackupMode::AllData;
        let main = ObjectStager::new(
            dir.clone(),
            naming.clone(),
            crate::encode::Compression::Uncompressed,
            delimiter,
            size,
        )
        .with_framing();
        let backup = all
            .then(|| ObjectStager::new(dir.clone(), naming.clone(), compression, delimiter, size));
        StagingPlan {
            main,
            backup,
            error_stager: Box::new(move |e: ErrorNaming| {
                let naming = Naming {
                    error: Some(e),
                    ..naming.clone()
                };
                ObjectStager::new(dir.clone(), naming, compression, false, size)
            }),
            error_template: layout.error_prefix.clone(),
            partitioning: None,
            converting: false,
            patience,
            exactly_once: None,
            backup_all: all,
        }
    }
}

/// Partitions that keep an encoder and an open staging file at once (under 0.2 MiB each with
/// GZIP: `encode::lean_gzip`); the least recently written beyond this are suspended (see `ObjectStager::suspend`). Above
/// AWS's default of 500 active partitions, so uniform traffic over them never thrashes.
pub(crate) const ACTIVE_ENCODERS: usize = 512;
/// A partition not written in this many deliveries is idle: it is suspended.
const IDLE_BATCHES: u64 = 4;

/// Write buffer of a partition's staging file (many partitions may be open at once).
/// Lean GZIP writes a compressed chunk at a time, so it needs little; plain and Snappy objects
/// write through it.
const PARTITION_BUFFER: usize = 16 * 1024;

pub(crate) struct StagerSet {
    main: ObjectStager,
    backup: Option<ObjectStager>,
    errors: Vec<(&'static str, ObjectStager)>,
    make_error: MakeStager<ErrorNaming>,
    error_template: Option<Template>,
    partitioning: Option<Partitioning>,
    /// Open partitions: slot, stager, and when it was last written (for suspending idle ones).
    partitions: HashMap<Arc<PartitionValues>, (usize, ObjectStager, u64)>,
    /// Counts deliveries: the "when" of `partitions`.
    writes: u64,
    /// Object ids, shared by every stager of the destination.
    ids: Arc<AtomicU64>,
    next_slot: usize,
    /// Partition slots closed since the watermark last heard of them.
    closed: Vec<usize>,
    metrics: Arc<DestinationMetrics>,
    /// Main and partition objects are Parquet (format conversion).
    converting: bool,
    patience: Arc<Patience>,
    exactly_once: Option<ExactlyOnce>,
    backup_all: bool,
}

/// A staging step that failed on local disk.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StagingError {
    #[error("cannot stage records on local disk")]
    Stage(#[source] std::io::Error),
    #[error("cannot seal a staged object")]
    Seal(#[source] std::io::Error),
    #[error("cannot record objects in the exactly-once journal")]
    Journal(#[source] std::io::Error),
    /// The journal is a lease's whose tenure ended: these objects are another instance's now.
    #[error("the shard's lease moved to another instance")]
    Fenced,
}

/// Sealed objects of one step, or why it failed.
pub(crate) type StepResult = Result<Vec<(Sealed, Kind)>, StagingError>;

impl StagerSet {
    /// The stagers of `staging`; object ids come from `ids`, shared by every stager set of the
    /// destination.
    pub(crate) fn new(
        staging: StagingPlan,
        metrics: Arc<DestinationMetrics>,
        ids: Arc<AtomicU64>,
    ) -> Self {
        let eo = staging.exactly_once;
        let identity = |slot: &str| eo.as_ref().map(|e| e.identity(slot.to_string()));
        StagerSet {
            main: staging
                .main
                .with_ids(ids.clone())
                .with_patience(staging.patience.clone())
                .with_identity(identity("main")),
            backup: staging.backup.map(|b| {
                b.with_ids(ids.clone())
                    .with_patience(staging.patience.clone())
                    .with_identity(identity("backup"))
            }),
            ids,
            errors: Vec::new(),
            make_error: staging.error_stager,
            error_template: staging.error_template,
            partitioning: staging.partitioning,
            partitions: HashMap::new(),
            writes: 0,
            next_slot: ERRORS_END,
            closed: Vec::new(),
            metrics,
            converting: staging.converting,
            patience: staging.patience,
            exactly_once: eo,
            backup_all: staging.backup_all,
        }
    }

    /// Exactly-once: journals the new identities of `sealed` (one fsync) before any of them is
    /// uploaded; `cursor` is the destination's, for the journal's rewrite.
    pub(crate) fn record(
        &mut self,
        sealed: &[(Sealed, Kind)],
        cursor: &Pos,
    ) -> Result<(), StagingError> {
        let Some(eo) = self.exactly_once.as_mut() else {
            return Ok(());
        };
        let new: Vec<Entry> = sealed
            .iter()
            .filter_map(|(o, _)| match &o.identity {
                Some((entry, false)) => Some(entry.clone()),
                _ => None,
            })
            .collect();
        eo.journal.record(&new, cursor).map_err(|e| match e {
            journal::JournalError::Io(e) => StagingError::Journal(e),
            journal::JournalError::Fenced => StagingError::Fenced,
        })
    }

    /// Seals the objects cut again whose journal entries end below `end`; forgets the start-up
    /// entries once the log is past them all.
    fn finish_replayed(&mut self, delivery_end: u64, shard_ends: &[ShardEnd]) -> StepResult {
        let Some(eo) = self.exactly_once.as_mut() else {
            return Ok(Vec::new());
        };
        if eo.replay.is_empty() {
            return Ok(Vec::new());
        }
        let end = match &eo.shard {
            None => Pos::log(delivery_end),
            // The shard's stager set is given its own tenure's end only (`shards`).
            Some(shard) => match shard_ends.iter().find(|e| e.shard == *shard) {
                Some(e) => e.end.clone(),
                None => return Ok(Vec::new()),
            },
        };
        eo.replay.retain(|e| e.last >= end);
        let mut sealed = Vec::new();
        for (_, kind, s) in self.all() {
            let objects = s.finish_replayed(&end).map_err(StagingError::Seal)?;
            sealed.extend(objects.into_iter().map(|o| (o, kind)));
        }
        Ok(sealed)
    }

    fn error(&mut self, output_type: &'static str) -> &mut ObjectStager {
        let i = match self.errors.iter().position(|(t, _)| *t == output_type) {
            Some(i) => i,
            None => {
                let naming = ErrorNaming {
                    template: self.error_template.clone(),
                    output_type,
                };
                let identity = self
                    .exactly_once
                    .as_ref()
                    .map(|e| e.identity(format!("error/{output_type}")));
                let stager = (self.make_error)(naming)
                    .with_ids(self.ids.clone())
                    .with_patience(self.patience.clone())
                    .with_identity(identity);
                self.errors.push((output_type, stager));
                self.errors.len() - 1
            }
        };
        &mut self.errors[i].1
    }

    /// Every stager that is not a partition.
    fn companions(&mut self) -> impl Iterator<Item = (usize, Kind, &mut ObjectStager)> {
        companions(&mut self.main, &mut self.backup, &mut self.errors)
    }

    fn all(&mut self) -> impl Iterator<Item = (usize, Kind, &mut ObjectStager)> {
        let partitions = self
            .partitions
            .values_mut()
            .map(|(slot, s, _)| (*slot, Kind::Partition, s));
        companions(&mut self.main, &mut self.backup, &mut self.errors).chain(partitions)
    }

    /// Open objects by slot, for the watermark (closed partitions reported once as None).
    pub(crate) fn open(&mut self) -> Vec<(usize, Option<u64>)> {
        let mut out: Vec<(usize, Option<u64>)> =
            self.closed.drain(..).map(|slot| (slot, None)).collect();
        out.extend(self.all().map(|(slot, _, s)| (slot, s.first_seq())));
        out
    }

    /// The earliest time an open object was opened, and the oldest record arrival.
    pub(crate) fn times(&mut self) -> (Option<Instant>, Option<i64>) {
        let mut opened: Option<Instant> = None;
        let mut oldest: Option<i64> = None;
        for (_, _, s) in self.all() {
            // An object cut again waits for its records, not for the interval.
            if let Some(o) = s.opened().filter(|_| !s.rebuilding()) {
                opened = Some(opened.map_or(o, |p| p.min(o)));
            }
            if let Some(t) = s.oldest_ms() {
                oldest = Some(oldest.map_or(t, |p| p.min(t)));
            }
        }
        (opened, oldest)
    }

    /// Stages one delivery; returns the objects that sealed.
    pub(crate) fn append(&mut self, delivery: Delivery, now: Instant) -> StepResult {
        let mut sealed = Vec::new();
        let err = |e: (std::io::Error, u64)| StagingError::Stage(e.0);
        let mut failed = delivery.failed;
        let mut rejected = Rejected::default();
        // AllData: the backup is a copy of what the destination takes (never partitioned).
        let backup = match self.backup_all {
            true => delivery.records.clone(),
            false => delivery.backup,
        };
        let staged = if self.partitioning.is_some() {
            let (unplaced, staged) = self.append_partitioned(
                delivery.records,
                delivery.keys,
                now,
                &mut sealed,
                &mut rejected,
            )?;
            failed.extend(unplaced);
            staged
        } else if !delivery.records.is_empty() {
            let objects = self
                .main
                .append(&delivery.records, now, &mut rejected)
                .map_err(err)?;
            sealed.extend(objects.into_iter().map(|o| (o, Kind::Main)));
            record_stats(&delivery.records)
        } else {
            (0, 0)
        };
        if self.converting {
            let m = &self.metrics;
            let bad = rejected.lines.len() as u64;
            m.conversion_ok_records.add(staged.0 - bad);
            m.conversion_ok_bytes.add(staged.1 - rejected.bytes);
            m.conversion_failed_records.add(bad);
            m.conversion_failed_bytes.add(rejected.bytes);
        }
        failed.extend(rejected.lines);
        if let Some(b) = self.backup.as_mut()
            && !backup.is_empty()
        {
            let objects = b
                .append(&backup, now, &mut Rejected::default())
                .map_err(err)?;
            sealed.extend(objects.into_iter().map(|o| (o, Kind::Backup)));
        }
        while !failed.is_empty() {
            let output_type = failed[0].output_type;
            let (same, rest): (Vec<_>, Vec<_>) = failed
                .into_iter()
                .partition(|f| f.output_type == output_type);
            failed = rest;
            let mut lines: Vec<Record> = same.into_iter().map(|f| f.line).collect();
            // In log order: they come partition by partition, and an exactly-once object's
            // identity is a range of positions.
            lines.sort_by_key(|r| (r.seq, r.sub));
            let objects = self
                .error(output_type)
                .append(&lines, now, &mut Rejected::default())
                .map_err(err)?;
            sealed.extend(objects.into_iter().map(|o| (o, Kind::Error)));
        }
        sealed.extend(self.finish_replayed(delivery.end, &delivery.shard_ends)?);
        if let Some(bound) = companion_bound(&sealed) {
            sealed.extend(self.seal_companions(bound)?);
        }
        self.forget_empty_partitions();
        Ok(sealed)
    }

    /// Stages records into their partitions; returns the error records of those without one,
    /// and the count and bytes of the records staged.
    fn append_partitioned(
        &mut self,
        records: Vec<Record>,
        keys: Vec<Option<Arc<RecordKeys>>>,
        now: Instant,
        sealed: &mut Vec<(Sealed, Kind)>,
        rejected: &mut Rejected,
    ) -> Result<(Vec<ErrorOutput>, (u64, u64)), StagingError> {
        let Some(p) = self.partitioning.as_ref() else {
            return Ok((Vec::new(), (0, 0)));
        };
        let mut staged = (0, 0);
        self.writes += 1;
        let (groups, mut failed) = group_by_partition(p, records, &keys);
        for (values, records) in groups {
            let open = self
                .partitions
                .get(&values)
                .is_some_and(|(_, s, _)| s.first_seq().is_some());
            let records = if open {
                records
            } else {
                let max = self.partitioning.as_ref().map_or(0, |p| p.max_active);
                let (admitted, refused) = self.admit(&values, records, max);
                if !refused.is_empty() {
                    let why = Unpartitioned {
                        output_type: "partitioning-failed",
                        code: ACTIVE_PARTITIONS_EXCEEDED,
                        message: format!("the destination already has {max} active partitions"),
                    };
                    self.metrics
                        .partition_count_exceeded
                        .add(refused.len() as u64);
                    failed.extend(refused.iter().map(|r| partition::error_output(r, &why)));
                }
                if admitted.is_empty() {
                    continue;
                }
                admitted
            };
            if !self.partitions.contains_key(&values) {
                let slot = self.next_slot;
                self.next_slot += 1;
                let Some(p) = self.partitioning.as_ref() else {
                    break;
                };
                let identity = self
                    .exactly_once
                    .as_ref()
                    .map(|e| e.identity(partition_slot(&values)));
                let stager = (p.make)(values.clone())
                    .with_ids(self.ids.clone())
                    .with_patience(self.patience.clone())
                    .with_identity(identity);
                self.partitions.insert(values.clone(), (slot, stager, 0));
            }
            let writes = self.writes;
            let Some((_, stager, last)) = self.partitions.get_mut(&values) else {
                continue;
            };
            *last = writes;
            let (n, bytes) = record_stats(&records);
            staged = (staged.0 + n, staged.1 + bytes);
            let objects = stager
                .append(&records, now, rejected)
                .map_err(|e| StagingError::Stage(e.0))?;
            sealed.extend(objects.into_iter().map(|o| (o, Kind::Partition)));
        }
        self.metrics.set_active_partitions(self.partitions.len());
        self.suspend_idle_partitions()
            .map_err(StagingError::Stage)?;
        Ok((failed, staged))
    }

    /// Which records of a partition with nothing open may open it under `max` active ones
    /// (stagers kept only for the journal's entries are not active), and which are refused.
    /// Exactly-once: a record the journal has in a `partitioning-failed` object was refused
    /// when it was cut, and one it has in this partition's objects was admitted; a replay
    /// decides as the first run did.
    fn admit(
        &self,
        values: &PartitionValues,
        records: Vec<Record>,
        max: usize,
    ) -> (Vec<Record>, Vec<Record>) {
        let active = self
            .partitions
            .values()
            .filter(|(_, s, _)| s.first_seq().is_some())
            .count();
        let Some(eo) = self.exactly_once.as_ref().filter(|e| !e.replay.is_empty()) else {
            return match active < max {
                true => (records, Vec::new()),
                false => (Vec::new(), records),
            };
        };
        let (slot, refused_slot) = (partition_slot(values), "error/partitioning-failed");
        let inside = |r: &Record, slot: &str| {
            let pos = Pos::of(r);
            eo.replay
                .iter()
                .any(|e| e.slot == slot && e.first <= pos && pos <= e.last)
        };
        records
            .into_iter()
            .partition(|r| !inside(r, refused_slot) && (active < max || inside(r, &slot)))
    }

    /// Suspends partitions that hold an encoder and an open file but were not written in the
    /// last `IDLE_BATCHES` deliveries, and beyond that the least recently written ones while
    /// more than `ACTIVE_ENCODERS` are active. A suspended object stays open; the next record
    /// starts a new compressed member. Memory and file handles follow the partitions in use,
    /// not the partitions ever seen.
    fn suspend_idle_partitions(&mut self) -> std::io::Result<()> {
        let now = self.writes;
        let mut active: Vec<(u64, &mut ObjectStager)> = self
            .partitions
            .values_mut()
            .filter(|(_, s, _)| s.is_active())
            .map(|(_, s, last)| (*last, s))
            .collect();
        active.sort_unstable_by_key(|(last, _)| *last);
        let over = active.len().saturating_sub(ACTIVE_ENCODERS);
        let mut suspended = 0;
        for (i, (last, stager)) in active.into_iter().enumerate() {
            if (i < over || last + IDLE_BATCHES < now) && stager.suspend()? {
                suspended += 1;
            }
        }
        self.metrics.partition_suspensions.add(suspended);
        Ok(())
    }

    /// Seals the companions holding a record below `bound`: they would hold the cursor behind
    /// the objects just sealed. One that opened after them (the main object's continuation,
    /// holding the rest of the delivery that filled it) stays open and fills up.
    fn seal_companions(&mut self, bound: Bound) -> StepResult {
        seal_each(self.companions().filter(|(_, kind, s)| {
            !(s.rebuilding() || *kind == Kind::Main && bound.main_sealed)
                && s.first_seq().is_some_and(|f| f < bound.below)
        }))
    }

    /// Drops every open object (their staging files removed): the shard's lease moved to
    /// another instance, which cuts them.
    pub(crate) fn discard_all(&mut self) {
        for (_, _, s) in self.all() {
            s.discard_open();
        }
    }

    /// Seals every open object (flush, close) but those a replay is cutting again: sealed
    /// early they would hold part of their entry under its name, and the rest would be lost or
    /// written twice. Left open, they keep holding the cursor, and the next run cuts them again.
    pub(crate) fn seal_all(&mut self) -> StepResult {
        let sealed = seal_each(self.all().filter(|(_, _, s)| !s.rebuilding()))?;
        self.forget_empty_partitions();
        Ok(sealed)
    }

    /// Seals the objects opened `interval` before `now` (and the companions with them).
    pub(crate) fn seal_due(&mut self, now: Instant, interval: std::time::Duration) -> StepResult {
        // An object cut again seals when complete, not on time.
        let due = self
            .all()
            .filter(|(_, _, s)| !s.rebuilding() && s.opened().is_some_and(|o| o + interval <= now));
        let mut sealed = seal_each(due)?;
        if let Some(bound) = companion_bound(&sealed) {
            sealed.extend(self.seal_companions(bound)?);
        }
        self.forget_empty_partitions();
        Ok(sealed)
    }

    /// Partitions with nothing open are no longer active: their stagers go.
    fn forget_empty_partitions(&mut self) {
        let before = self.partitions.len();
        let closed = &mut self.closed;
        self.partitions.retain(|_, (slot, s, _)| {
            // A partition the journal still has objects of keeps its stager (and their names).
            let keep = s.first_seq().is_some() || s.replaying();
            if !keep {
                closed.push(*slot);
            }
            keep
        });
        if self.partitions.len() != before {
            self.metrics.set_active_partitions(self.partitions.len());
        }
    }
}

/// Records grouped by partition, each group in arrival order, and the error records of those
/// without a partition.
type Groups = Vec<(Arc<PartitionValues>, Vec<Record>)>;

fn group_by_partition(
    p: &Partitioning,
    records: Vec<Record>,
    keys: &[Option<Arc<RecordKeys>>],
) -> (Groups, Vec<ErrorOutput>) {
    let mut groups: Groups = Vec::new();
    let mut failed = Vec::new();
    let mut index: HashMap<Arc<PartitionValues>, usize> = HashMap::new();
    for (i, record) in records.into_iter().enumerate() {
        let k = keys.get(i).and_then(Option::as_deref);
        match partition::resolve(&p.template, k, &record, p.time_zone) {
            Ok(values) => {
                let values = Arc::new(values);
                match index.get(&values) {
                    Some(&g) => groups[g].1.push(record),
                    None => {
                        index.insert(values.clone(), groups.len());
                        groups.push((values, vec![record]));
                    }
                }
            }
            Err(why) => failed.push(partition::error_output(&record, &why)),
        }
    }
    (groups, failed)
}

/// Whether the companions must seal now, and below which record: an object sealed that is not
/// a partition (a partition sealing takes nothing with it: the cursor is held by the oldest
/// partition anyway, and hundreds of tiny error objects would follow). The bound is one past
/// the highest record of the objects sealed.
fn companion_bound(sealed: &[(Sealed, Kind)]) -> Option<Bound> {
    let below = sealed
        .iter()
        .filter(|(_, kind)| *kind != Kind::Partition)
        .map(|(o, _)| o.next_seq)
        .max()?;
    Some(Bound {
        below,
        main_sealed: sealed.iter().any(|(_, kind)| *kind == Kind::Main),
    })
}

/// Which companions seal with the objects a step sealed.
#[derive(Clone, Copy)]
struct Bound {
    /// Those holding a record below this.
    below: u64,
    /// The main object sealed (on size): its continuation stays open whatever it holds (a
    /// sub-record of the last record it took may share that record's sequence number).
    main_sealed: bool,
}

/// How many records, and their bytes.
fn record_stats(records: &[Record]) -> (u64, u64) {
    (
        records.len() as u64,
        records.iter().map(|r| r.data.len() as u64).sum(),
    )
}

fn companions<'a>(
    main: &'a mut ObjectStager,
    backup: &'a mut Option<ObjectStager>,
    errors: &'a mut [(&'static str, ObjectStager)],
) -> impl Iterator<Item = (usize, Kind, &'a mut ObjectStager)> {
    std::iter::once((MAIN, Kind::Main, main))
        .chain(backup.as_mut().map(|s| (BACKUP, Kind::Backup, s)))
        .chain(
            errors
                .iter_mut()
                .enumerate()
                .map(|(i, (_, s))| (2 + i, Kind::Error, s)),
        )
}

/// Seals each stager that has an open object.
fn seal_each<'a>(stagers: impl Iterator<Item = (usize, Kind, &'a mut ObjectStager)>) -> StepResult {
    let mut sealed = Vec::new();
    for (_, kind, stager) in stagers {
        if let Some(o) = stager.seal().map_err(StagingError::Seal)? {
            sealed.push((o, kind));
        }
    }
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Compression;
    use crate::processing::ErrorOutput;
    use bytes::Bytes;

    fn rec(at: u64) -> Record {
        Record {
            data: Bytes::from_static(b"abcd"),
            arrival_ms: 1_714_568_862_000,
            seq: at,
            sub: 0,
            kinesis: None,
        }
    }

    /// A destination whose objects hold two records (size limit 10), exactly-once with the
    /// journal in `dir`, opened at `cursor`.
    fn set(dir: &std::path::Path, cursor: u64) -> StagerSet {
        set_with(dir, cursor, None)
    }

    /// Partitioned by `k`, at most one partition open.
    fn one_partition(dir: &std::path::Path) -> Partitioning {
        let dir = dir.to_path_buf();
        Partitioning {
            template: Template::parse("k=!{partitionKeyFromQuery:k}/").expect("template"),
            time_zone: chrono_tz::UTC,
            max_active: 1,
            make: Box::new(move |values: Arc<PartitionValues>| {
                let naming = Naming {
                    stream: "s".into(),
                    version: 1,
                    prefix: Template::parse("k=!{partitionKeyFromQuery:k}/").expect("template"),
                    extension: String::new(),
                    time_zone: chrono_tz::UTC,
                    error: None,
                    partition: Some(values),
                };
                ObjectStager::new(dir.clone(), naming, Compression::Uncompressed, false, 10)
            }),
        }
    }

    fn keyed(seqs: &[(u64, &str)]) -> Delivery {
        let keys = seqs
            .iter()
            .map(|(_, k)| {
                let map = std::collections::BTreeMap::from([("k".to_string(), k.to_string())]);
                Some(Arc::new(RecordKeys {
                    query: Some(Ok(Arc::new(map))),
                    lambda: None,
                }))
            })
            .collect();
        Delivery {
            records: seqs.iter().map(|(s, _)| rec(*s)).collect(),
            keys,
            end: seqs.iter().map(|(s, _)| s + 1).max().unwrap_or(0),
            ..Delivery::default()
        }
    }

    fn set_with(
        dir: &std::path::Path,
        cursor: u64,
        partitioning: Option<Partitioning>,
    ) -> StagerSet {
        let naming = Naming {
            stream: "s".into(),
            version: 1,
            prefix: Template::default(),
            extension: String::new(),
            time_zone: chrono_tz::UTC,
            error: None,
            partition: None,
        };
        let (d, n) = (dir.to_path_buf(), naming.clone());
        let (journal, replay) =
            Journal::open(&dir.join("journal"), &Pos::log(cursor)).expect("journal opens");
        let plan = StagingPlan {
            main: ObjectStager::new(d.clone(), naming, Compression::Uncompressed, false, 10),
            backup: None,
            error_stager: Box::new(move |e| {
                let naming = Naming {
                    error: Some(e),
                    ..n.clone()
                };
                ObjectStager::new(d.clone(), naming, Compression::Uncompressed, false, 1000)
            }),
            error_template: None,
            partitioning,
            converting: false,
            patience: Arc::default(),
            backup_all: false,
            exactly_once: Some(ExactlyOnce {
                namespace: "s/0".into(),
                journal,
                replay,
                shard: None,
            }),
        };
        StagerSet::new(plan, Arc::default(), Arc::default())
    }

    fn delivery(seqs: std::ops::Range<u64>, failed: &[u64]) -> Delivery {
        Delivery {
            records: seqs.clone().map(rec).collect(),
            failed: failed
                .iter()
                .map(|&s| ErrorOutput {
                    output_type: "processing-failed",
                    line: rec(s),
                })
                .collect(),
            end: seqs.end,
            ..Delivery::default()
        }
    }

    #[test]
    fn a_flush_never_seals_an_object_a_replay_is_cutting_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut first = set(dir.path(), 1000);
        let now = Instant::now();
        // Error lines arrive out of log order: staged in order, their identity the range.
        let sealed = first
            .append(delivery(1000..1007, &[1005, 1003]), now)
            .expect("stages");
        assert_eq!(sealed.len(), 4, "three main objects and the error object");
        let errors = sealed
            .iter()
            .find(|(_, k)| *k == Kind::Error)
            .and_then(|(o, _)| o.identity.clone())
            .expect("an error object");
        assert_eq!(
            (errors.0.first, errors.0.last),
            (Pos::log(1003), Pos::log(1005))
        );
        first.record(&sealed, &Pos::log(1000)).expect("journaled");
        let keys: Vec<String> = sealed.iter().map(|(o, _)| o.key.clone()).collect();
        drop(first);

        // The replay: 1000-1001 is cut again when 1002 comes; 1002-1003 is half there when a
        // flush comes, and stays open; the rest of it completes it under its journaled name.
        let mut again = set(dir.path(), 1000);
        let sealed = again
            .append(delivery(1000..1003, &[]), now)
            .expect("stages");
        assert_eq!(sealed.len(), 1);
        assert_eq!(sealed[0].0.key, keys[0]);
        assert!(again.seal_all().expect("flush").is_empty());
        assert!(
            again.open().contains(&(MAIN, Some(1002))),
            "the object cut again still holds the cursor"
        );
        let sealed = again
            .append(delivery(1003..1005, &[]), now)
            .expect("stages");
        let main: Vec<&Sealed> = sealed
            .iter()
            .filter(|(_, k)| *k == Kind::Main)
            .map(|(o, _)| o)
            .collect();
        assert_eq!(
            (main[0].key.as_str(), main[0].records),
            (keys[1].as_str(), 2)
        );
    }

    #[test]
    fn a_replay_refuses_and_admits_partitions_as_the_first_run_did() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = Instant::now();
        // First run, one delivery: partition a opens (max 1), b's record is refused.
        let mut first = set_with(dir.path(), 1000, Some(one_partition(dir.path())));
        let mut sealed = first
            .append(
                keyed(&[(1000, "a"), (1001, "a"), (1002, "b"), (1003, "a")]),
                now,
            )
            .expect("stages");
        sealed.extend(first.seal_all().expect("seals"));
        first.record(&sealed, &Pos::log(1000)).expect("journaled");
        let summary = |sealed: &[(Sealed, Kind)]| -> Vec<(String, u64)> {
            let mut v: Vec<(String, u64)> = sealed
                .iter()
                .map(|(o, _)| (o.key.clone(), o.records))
                .collect();
            v.sort();
            v
        };
        let want = summary(&sealed);
        assert!(
            want.iter()
                .any(|(k, n)| k.contains("partitioning-failed") && *n == 1),
            "{want:?}"
        );
        drop(first);
        // The replay hands the records over one at a time: when 1002 comes, no partition is
        // open, yet it is refused again, as it was.
        let mut again = set_with(dir.path(), 1000, Some(one_partition(dir.path())));
        let mut cut = Vec::new();
        for (s, k) in [(1000, "a"), (1001, "a"), (1002, "b"), (1003, "a")] {
            cut.extend(again.append(keyed(&[(s, k)]), now).expect("stages"));
        }
        cut.extend(again.seal_all().expect("seals"));
        assert_eq!(summary(&cut), want);
    }
}
