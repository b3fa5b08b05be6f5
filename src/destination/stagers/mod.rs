//! The objects a destination builds at once: the main object (or, with dynamic partitioning,
//! one per active partition: `partitions`), one error object per error-output-type, and the
//! source-record backup; when they seal together (`sealing`); what they are made with
//! (`plan`). Blocking I/O: the worker runs these steps on the blocking pool.

mod partitions;
mod plan;
mod sealing;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::time::Instant;

use self::partitions::Partitions;
use super::journal::{self, Entry, Pos};
use super::naming::ErrorNaming;
use super::partition::RecordKeys;
use super::staging::{ObjectStager, Rejected, Sealed};
use crate::disk::Patience;
use crate::keys::template::Template;
use crate::metrics::DestinationMetrics;
use crate::processing::ErrorOutput;
use crate::record::Record;

pub(crate) use partitions::ACTIVE_ENCODERS;
pub(crate) use plan::{ExactlyOnce, Layout, MakeStager, StagingPlan};
#[cfg(test)]
use plan::{Partitioning, Route};

/// What an object holds, for the sink and the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Main,
    /// A partition's object (dynamic partitioning): delivered records, like `Main`.
    Partition,
    Error,
    Backup,
}

/// Which stager of a set an open object is in: the watermark knows open objects by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Slot {
    Main,
    Backup,
    /// The error objects of one error-output-type, under the destination's error prefix (0)
    /// or under one of its own (an Iceberg table's: the set's n-th such prefix).
    Error(&'static str, u16),
    /// A partition, by the serial number it got when it opened.
    Partition(u64),
}

impl Slot {
    pub(crate) fn kind(self) -> Kind {
        match self {
            Slot::Main => Kind::Main,
            Slot::Backup => Kind::Backup,
            Slot::Error(..) => Kind::Error,
            Slot::Partition(_) => Kind::Partition,
        }
    }
}

/// An open object's place in its destination: its stager set (0 unless the destination keeps
/// one per Kinesis shard: `shards`) and its slot in the set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Place {
    pub(crate) set: usize,
    pub(crate) slot: Slot,
}

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

/// What every stager of a set is fitted with: object ids from one counter (the watermark knows
/// sealed objects by id), the disk's patience, and (exactly-once) its identity in the
/// destination's journal.
pub(super) struct Fitting {
    ids: Arc<AtomicU64>,
    patience: Arc<Patience>,
    exactly_once: Option<ExactlyOnce>,
}

impl Fitting {
    /// `stager`, fitted; its objects are journaled under `slot` (exactly-once).
    fn fit(&self, stager: ObjectStager, slot: String) -> ObjectStager {
        stager
            .with_ids(self.ids.clone())
            .with_patience(self.patience.clone())
            .with_identity(self.exactly_once.as_ref().map(|e| e.identity(slot)))
    }
}

pub(crate) struct StagerSet {
    main: ObjectStager,
    backup: Option<ObjectStager>,
    errors: Vec<(&'static str, u16, ObjectStager)>,
    /// The error prefixes of their own met so far; `Slot::Error`'s number is one past the
    /// index here.
    own_prefixes: Vec<Arc<str>>,
    make_error: MakeStager<ErrorNaming>,
    error_template: Option<Template>,
    partitions: Option<Partitions>,
    fitting: Fitting,
    metrics: Arc<DestinationMetrics>,
    /// Main and partition objects are Parquet (format conversion).
    converting: bool,
    backup_all: bool,
}

impl StagerSet {
    /// The stagers of `staging`; object ids come from `ids`, shared by every stager set of the
    /// destination.
    pub(crate) fn new(
        staging: StagingPlan,
        metrics: Arc<DestinationMetrics>,
        ids: Arc<AtomicU64>,
    ) -> Self {
        let fitting = Fitting {
            ids,
            patience: staging.patience,
            exactly_once: staging.exactly_once,
        };
        StagerSet {
            main: fitting.fit(staging.main, "main".into()),
            backup: staging.backup.map(|b| fitting.fit(b, "backup".into())),
            errors: Vec::new(),
            own_prefixes: Vec::new(),
            make_error: staging.error_stager,
            error_template: staging.error_template,
            partitions: staging.partitioning.map(Partitions::new),
            fitting,
            metrics,
            converting: staging.converting,
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
        let Some(eo) = self.fitting.exactly_once.as_mut() else {
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
        let Some(eo) = self.fitting.exactly_once.as_mut() else {
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
        for (slot, s) in self.all() {
            let objects = s.finish_replayed(&end).map_err(StagingError::Seal)?;
            sealed.extend(objects.into_iter().map(|o| (o, slot.kind())));
        }
        Ok(sealed)
    }

    /// The stager of `output_type`'s error objects under the destination's error prefix, or
    /// under `prefix` (checked by the specification to parse).
    fn error(&mut self, output_type: &'static str, prefix: Option<&Arc<str>>) -> &mut ObjectStager {
        let n = match prefix {
            None => 0,
            Some(p) => match self.own_prefixes.iter().position(|q| q == p) {
                Some(i) => i as u16 + 1,
                None => {
                    self.own_prefixes.push(p.clone());
                    self.own_prefixes.len() as u16
                }
            },
        };
        let i = match self
            .errors
            .iter()
            .position(|(t, m, _)| *t == output_type && *m == n)
        {
            Some(i) => i,
            None => {
                let template = match prefix {
                    None => self.error_template.clone(),
                    Some(p) => Some(Template::parse(p).unwrap_or_default()),
                };
                let stager = (self.make_error)(ErrorNaming {
                    template,
                    output_type,
                });
                // The journal's slot of the destination's own prefix is the one earlier
                // releases wrote.
                let slot = match prefix {
                    None => format!("error/{output_type}"),
                    Some(p) => format!("error/{output_type}/{p}"),
                };
                let stager = self.fitting.fit(stager, slot);
                self.errors.push((output_type, n, stager));
                self.errors.len() - 1
            }
        };
        &mut self.errors[i].2
    }

    /// Every stager that is not a partition.
    fn companions(&mut self) -> impl Iterator<Item = (Slot, &mut ObjectStager)> {
        companions(&mut self.main, &mut self.backup, &mut self.errors)
    }

    fn all(&mut self) -> impl Iterator<Item = (Slot, &mut ObjectStager)> {
        let partitions = self.partitions.iter_mut().flat_map(Partitions::stagers);
        companions(&mut self.main, &mut self.backup, &mut self.errors).chain(partitions)
    }

    /// Open objects by slot, for the watermark (closed partitions reported once as None).
    pub(crate) fn open(&mut self) -> Vec<(Slot, Option<u64>)> {
        let closed = self.partitions.as_mut().map(Partitions::take_closed);
        let mut out: Vec<(Slot, Option<u64>)> = closed
            .into_iter()
            .flatten()
            .map(|slot| (slot, None))
            .collect();
        out.extend(self.all().map(|(slot, s)| (slot, s.first_seq())));
        out
    }

    /// The earliest time an open object was opened, and the oldest record arrival.
    pub(crate) fn times(&mut self) -> (Option<Instant>, Option<i64>) {
        let mut opened: Option<Instant> = None;
        let mut oldest: Option<i64> = None;
        for (_, s) in self.all() {
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
        let staged = if let Some(p) = self.partitions.as_mut() {
            let out = (&mut sealed, &mut rejected);
            let staged = p.append(
                delivery.records,
                &delivery.keys,
                now,
                &self.fitting,
                &self.metrics,
                out,
            )?;
            failed.extend(staged.failed);
            (staged.records, staged.bytes)
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
        self.count_conversion(staged, &rejected);
        failed.extend(rejected.lines);
        if let Some(b) = self.backup.as_mut()
            && !backup.is_empty()
        {
            let objects = b
                .append(&backup, now, &mut Rejected::default())
                .map_err(err)?;
            sealed.extend(objects.into_iter().map(|o| (o, Kind::Backup)));
        }
        sealed.extend(self.append_failed(failed, now)?);
        sealed.extend(self.finish_replayed(delivery.end, &delivery.shard_ends)?);
        let companions = self.seal_companions_of(&sealed)?;
        sealed.extend(companions);
        self.forget_empty_partitions();
        Ok(sealed)
    }

    /// Counts what the format conversion took (`staged`: records and bytes) and refused.
    fn count_conversion(&self, staged: (u64, u64), rejected: &Rejected) {
        if !self.converting {
            return;
        }
        let m = &self.metrics;
        let bad = rejected.lines.len() as u64;
        m.conversion_ok_records.add(staged.0 - bad);
        m.conversion_ok_bytes.add(staged.1 - rejected.bytes);
        m.conversion_failed_records.add(bad);
        m.conversion_failed_bytes.add(rejected.bytes);
    }

    /// Stages error records, each in its output type's object.
    fn append_failed(&mut self, mut failed: Vec<ErrorOutput>, now: Instant) -> StepResult {
        let mut sealed = Vec::new();
        while !failed.is_empty() {
            let (output_type, prefix) = (failed[0].output_type, failed[0].prefix.clone());
            let (same, rest): (Vec<_>, Vec<_>) = failed
                .into_iter()
                .partition(|f| f.output_type == output_type && f.prefix == prefix);
            failed = rest;
            let mut lines: Vec<Record> = same.into_iter().map(|f| f.line).collect();
            // In log order: they come partition by partition, and an exactly-once object's
            // identity is a range of positions.
            lines.sort_by_key(|r| (r.seq, r.sub));
            let objects = self
                .error(output_type, prefix.as_ref())
                .append(&lines, now, &mut Rejected::default())
                .map_err(|e| StagingError::Stage(e.0))?;
            sealed.extend(objects.into_iter().map(|o| (o, Kind::Error)));
        }
        Ok(sealed)
    }

    /// Drops every open object (their staging files removed): the shard's lease moved to
    /// another instance, which cuts them.
    pub(crate) fn discard_all(&mut self) {
        for (_, s) in self.all() {
            s.discard_open();
        }
    }

    fn forget_empty_partitions(&mut self) {
        if let Some(p) = self.partitions.as_mut() {
            p.forget_empty(&self.metrics);
        }
    }
}

/// The stagers that are not partitions, by slot (a free function: `all` borrows the
/// partitions beside them).
fn companions<'a>(
    main: &'a mut ObjectStager,
    backup: &'a mut Option<ObjectStager>,
    errors: &'a mut [(&'static str, u16, ObjectStager)],
) -> impl Iterator<Item = (Slot, &'a mut ObjectStager)> {
    std::iter::once((Slot::Main, main))
        .chain(backup.as_mut().map(|s| (Slot::Backup, s)))
        .chain(errors.iter_mut().map(|(t, n, s)| (Slot::Error(t, *n), s)))
}

/// How many records, and their bytes.
fn record_stats(records: &[Record]) -> (u64, u64) {
    (
        records.len() as u64,
        records.iter().map(|r| r.data.len() as u64).sum(),
    )
}
