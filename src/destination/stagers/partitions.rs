//! Dynamic partitioning's table of open partitions: records grouped by their partition, a
//! stager opened per partition under AWS's cap on active partitions (a replay admits and
//! refuses as the first run did), idle partitions suspended so memory and file handles follow
//! the partitions in use, and partitions with nothing open forgotten.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;

use super::plan::{Partitioning, Route};
use super::{Fitting, Slot, StagingError, record_stats};
use crate::destination::iceberg::changes::Change;
use crate::destination::journal::Pos;
use crate::destination::partition::{self, ACTIVE_PARTITIONS_EXCEEDED, RecordKeys, Unpartitioned};
use crate::destination::staging::{ObjectStager, Rejected, Sealed};
use crate::keys::template::PartitionValues;
use crate::metrics::DestinationMetrics;
use crate::processing::ErrorOutput;
use crate::record::Record;

/// Partitions that keep an encoder and an open staging file at once (under 0.2 MiB each with
/// GZIP: `encode::lean_gzip`); the least recently written beyond this are suspended (see
/// `ObjectStager::suspend`). Above AWS's default of 500 active partitions, so uniform traffic
/// over them never thrashes.
pub(crate) const ACTIVE_ENCODERS: usize = 512;
/// A partition not written in this many deliveries is idle: it is suspended.
const IDLE_BATCHES: u64 = 4;

/// Write buffer of a partition's staging file (many partitions may be open at once).
/// Lean GZIP writes a compressed chunk at a time, so it needs little; plain and Snappy objects
/// write through it.
pub(super) const PARTITION_BUFFER: usize = 16 * 1024;

/// The error output type of records refused a partition.
const PARTITIONING_FAILED: &str = "partitioning-failed";

/// A partition's stager.
struct Open {
    /// Its watermark slot is `Slot::Partition(serial)`: never reused, so a partition closed
    /// and opened again is a new slot.
    serial: u64,
    stager: ObjectStager,
    /// The delivery that last wrote it (for suspending idle ones).
    last: u64,
}

/// The partitions of one stager set.
pub(super) struct Partitions {
    rule: Partitioning,
    open: HashMap<Arc<PartitionValues>, Open>,
    /// Counts deliveries: the "when" of `Open::last`.
    writes: u64,
    next_serial: u64,
    /// Partition slots closed since the watermark last heard of them.
    closed: Vec<Slot>,
}

/// What staging one delivery's records into their partitions made.
#[derive(Default)]
pub(super) struct Staged {
    /// Error records of those with no partition (or refused one).
    pub(super) failed: Vec<ErrorOutput>,
    /// Records staged, and their bytes.
    pub(super) records: u64,
    pub(super) bytes: u64,
}

impl Partitions {
    pub(super) fn new(rule: Partitioning) -> Self {
        Partitions {
            rule,
            open: HashMap::new(),
            writes: 0,
            next_serial: 0,
            closed: Vec::new(),
        }
    }

    /// The stagers of the open partitions.
    pub(super) fn stagers(&mut self) -> impl Iterator<Item = (Slot, &mut ObjectStager)> {
        self.open
            .values_mut()
            .map(|o| (Slot::Partition(o.serial), &mut o.stager))
    }

    /// The slots closed since the last call.
    pub(super) fn take_closed(&mut self) -> Vec<Slot> {
        std::mem::take(&mut self.closed)
    }

    /// Stages records into their partitions; sealed objects go to `sealed`, records the
    /// conversion refused to `rejected`.
    pub(super) fn append(
        &mut self,
        records: Vec<Record>,
        keys: &[Option<Arc<RecordKeys>>],
        now: Instant,
        fitting: &Fitting,
        metrics: &DestinationMetrics,
        out: (&mut Vec<(Sealed, super::Kind)>, &mut Rejected),
    ) -> Result<Staged, StagingError> {
        let (sealed, rejected) = out;
        let mut staged = Staged::default();
        self.writes += 1;
        let (groups, failed) = group_by_partition(&self.rule, records, keys);
        staged.failed = failed;
        for (values, records, changes) in groups {
            let (records, changes) = match self.open.get(&values) {
                Some(o) if o.stager.first_seq().is_some() => (records, changes),
                _ => {
                    let (admitted, refused) = self.admit(&values, records, changes, fitting);
                    if !refused.is_empty() {
                        metrics.partition_count_exceeded.add(refused.len() as u64);
                        let why = self.refusal();
                        staged
                            .failed
                            .extend(refused.iter().map(|r| partition::error_output(r, &why)));
                    }
                    admitted
                }
            };
            if records.is_empty() {
                continue;
            }
            let writes = self.writes;
            // An Iceberg table's schema may have changed (schema evolution): its converter too.
            let conversion = match &self.rule.route {
                Route::Tables(router) => crate::destination::iceberg::router::table_of(&values)
                    .and_then(|(t, _)| router.ready(&t))
                    .map(|r| r.conversion.clone()),
                Route::Prefix { .. } => None,
            };
            let open = self.stager_of(&values, fitting);
            open.last = writes;
            if let Some(c) = conversion
                && let Some(o) = open
                    .stager
                    .change_conversion(&c)
                    .map_err(StagingError::Stage)?
            {
                sealed.push((o, super::Kind::Partition));
            }
            let (n, bytes) = record_stats(&records);
            (staged.records, staged.bytes) = (staged.records + n, staged.bytes + bytes);
            let objects = open
                .stager
                .append_changes(&records, &changes, now, rejected)
                .map_err(|e| StagingError::Stage(e.0))?;
            sealed.extend(objects.into_iter().map(|o| (o, super::Kind::Partition)));
        }
        metrics.set_active_partitions(self.open.len());
        self.suspend_idle(metrics).map_err(StagingError::Stage)?;
        Ok(staged)
    }

    fn refusal(&self) -> Unpartitioned {
        let max = self.rule.max_active;
        Unpartitioned {
            output_type: PARTITIONING_FAILED,
            code: ACTIVE_PARTITIONS_EXCEEDED,
            message: format!("the destination already has {max} active partitions"),
            prefix: None,
        }
    }

    /// The stager of partition `values`, opened if it has none.
    fn stager_of(&mut self, values: &Arc<PartitionValues>, fitting: &Fitting) -> &mut Open {
        let (rule, serial) = (&self.rule, &mut self.next_serial);
        self.open.entry(values.clone()).or_insert_with(|| {
            *serial += 1;
            let stager = fitting.fit((rule.make)(values.clone()), journal_slot(values));
            Open {
                serial: *serial,
                stager,
                last: 0,
            }
        })
    }

    /// Which records of a partition with nothing open may open it under `max_active` active
    /// ones (stagers kept only for the journal's entries are not active), and which are
    /// refused. Exactly-once: a record the journal has in a `partitioning-failed` object was
    /// refused when it was cut, and one it has in this partition's objects was admitted; a
    /// replay decides as the first run did.
    fn admit(
        &self,
        values: &PartitionValues,
        records: Vec<Record>,
        changes: Vec<Option<Change>>,
        fitting: &Fitting,
    ) -> (Changed, Vec<Record>) {
        let max = self.rule.max_active;
        let active = self
            .open
            .values()
            .filter(|o| o.stager.first_seq().is_some())
            .count();
        let replay = fitting
            .exactly_once
            .as_ref()
            .map(|e| &e.replay)
            .filter(|r| !r.is_empty());
        let Some(replay) = replay else {
            return match active < max {
                true => ((records, changes), Vec::new()),
                false => ((Vec::new(), Vec::new()), records),
            };
        };
        let (slot, refused_slot) = (journal_slot(values), format!("error/{PARTITIONING_FAILED}"));
        let inside = |r: &Record, slot: &str| {
            let pos = Pos::of(r);
            replay
                .iter()
                .any(|e| e.slot == slot && e.first <= pos && pos <= e.last)
        };
        let (mut admitted, mut admitted_changes, mut refused) =
            (Vec::new(), Vec::new(), Vec::new());
        let mut changes = changes.into_iter();
        for r in records {
            let change = changes.next().flatten();
            if !inside(&r, &refused_slot) && (active < max || inside(&r, &slot)) {
                admitted.push(r);
                admitted_changes.push(change);
            } else {
                refused.push(r);
            }
        }
        ((admitted, admitted_changes), refused)
    }

    /// Suspends partitions that hold an encoder and an open file but were not written in the
    /// last `IDLE_BATCHES` deliveries, and beyond that the least recently written ones while
    /// more than `ACTIVE_ENCODERS` are active. A suspended object stays open; the next record
    /// starts a new compressed member. Memory and file handles follow the partitions in use,
    /// not the partitions ever seen.
    fn suspend_idle(&mut self, metrics: &DestinationMetrics) -> std::io::Result<()> {
        let now = self.writes;
        let mut active: Vec<(u64, &mut ObjectStager)> = self
            .open
            .values_mut()
            .filter(|o| o.stager.is_active())
            .map(|o| (o.last, &mut o.stager))
            .collect();
        active.sort_unstable_by_key(|(last, _)| *last);
        let over = active.len().saturating_sub(ACTIVE_ENCODERS);
        let mut suspended = 0;
        for (i, (last, stager)) in active.into_iter().enumerate() {
            if (i < over || last + IDLE_BATCHES < now) && stager.suspend()? {
                suspended += 1;
            }
        }
        metrics.partition_suspensions.add(suspended);
        Ok(())
    }

    /// Partitions with nothing open are no longer active: their stagers go.
    pub(super) fn forget_empty(&mut self, metrics: &DestinationMetrics) {
        let before = self.open.len();
        let closed = &mut self.closed;
        self.open.retain(|_, o| {
            // A partition the journal still has objects of keeps its stager (and their names).
            let keep = o.stager.first_seq().is_some() || o.stager.replaying();
            if !keep {
                closed.push(Slot::Partition(o.serial));
            }
            keep
        });
        if self.open.len() != before {
            metrics.set_active_partitions(self.open.len());
        }
    }
}

/// The journal slot of a partition's objects.
fn journal_slot(values: &PartitionValues) -> String {
    let json = serde_json::json!({"query": values.query, "lambda": values.lambda});
    format!("partition/{json}")
}

/// Records with their row-level operations (none, or one per record).
type Changed = (Vec<Record>, Vec<Option<Change>>);

/// Records grouped by partition, each group in arrival order with the records' row-level
/// operations (none, or one per record), and the error records of those without a partition.
type Groups = Vec<(Arc<PartitionValues>, Vec<Record>, Vec<Option<Change>>)>;

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
        let resolved = match &p.route {
            Route::Prefix {
                template,
                time_zone,
            } => partition::resolve(template, k, &record, *time_zone).map(|v| (v, None)),
            Route::Tables(router) => router.resolve(&record, k),
        };
        match resolved {
            Ok((values, change)) => {
                let values = Arc::new(values);
                let g = match index.get(&values) {
                    Some(&g) => g,
                    None => {
                        index.insert(values.clone(), groups.len());
                        groups.push((values, Vec::new(), Vec::new()));
                        groups.len() - 1
                    }
                };
                let (_, records, changes) = &mut groups[g];
                if change.is_some() && changes.len() < records.len() {
                    changes.resize(records.len(), None);
                }
                if change.is_some() || !changes.is_empty() {
                    changes.push(change);
                }
                records.push(record);
            }
            Err(why) => failed.push(partition::error_output(&record, &why)),
        }
    }
    (groups, failed)
}
