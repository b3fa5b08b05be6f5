//! A stream's shard progress: the one logic both checkpoint stores keep (files, for a single
//! instance: `checkpoint.rs`; a fleet's lease store, through the lease manager: `leases/`).
//! What every destination has delivered of each shard (the last record, never moving back: a
//! re-taken lease re-reads from its checkpoint), and which shards are finished: read to their
//! end, and that end delivered, whichever came last. Pure: no I/O and no lock; its owner takes
//! what there is to write, writes it, and puts back what it could not.

use std::collections::HashMap;
use std::sync::Arc;

use crate::record::{Record, ShardPosition};

/// Where the source tells what is delivered and read to its end: a checkpoint store (files, or
/// the lease manager's progress). Told from any thread, in order.
pub(crate) trait ShardProgress: Send + Sync {
    /// Every destination has delivered `records` and every log record below `floor`.
    fn released(&self, records: &[Record], floor: u64);

    /// The reader of `shard` reached its end: every record of it is below `end`.
    fn shard_ended(&self, shard: Arc<str>, end: u64);
}

/// The shard positions of released records (those that came from Kinesis).
pub(crate) fn positions(records: &[Record]) -> impl Iterator<Item = (Arc<str>, ShardPosition)> {
    records
        .iter()
        .filter_map(|r| r.kinesis.as_ref())
        .map(|k| (k.shard_id.clone(), k.position()))
}

#[derive(Debug, Default)]
pub(crate) struct Ledger {
    shards: HashMap<Arc<str>, Shard>,
    /// Every log record below this is delivered (the last release's floor).
    floor: u64,
}

#[derive(Debug, Default)]
struct Shard {
    /// The last record delivered since the last take, and how many were.
    delivered: Option<ShardPosition>,
    records: u64,
    /// One past the shard's last record in the log, once its reader reached the end and
    /// before that is delivered.
    end: Option<u64>,
    /// Read to its end and delivered: SHARD_END to write.
    finished: bool,
}

/// What a shard has to be written: the last delivered record (and how many records since the
/// last write), whether it is finished.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Taken {
    pub(crate) delivered: Option<ShardPosition>,
    pub(crate) records: u64,
    pub(crate) finished: bool,
}

impl Taken {
    pub(crate) fn is_empty(&self) -> bool {
        self.delivered.is_none() && !self.finished
    }
}

impl Ledger {
    /// Every destination has delivered the records at `positions` and every log record below
    /// `floor`: each shard's last delivered record moves on, shards whose end is delivered are
    /// finished.
    pub(crate) fn released(
        &mut self,
        positions: impl IntoIterator<Item = (Arc<str>, ShardPosition)>,
        floor: u64,
    ) {
        for (shard, at) in positions {
            let s = self.shards.entry(shard).or_default();
            if s.delivered.as_ref().is_none_or(|d| at > *d) {
                s.delivered = Some(at);
            }
            s.records += 1;
        }
        self.floor = self.floor.max(floor);
        for s in self.shards.values_mut() {
            if s.end.is_some_and(|end| end <= self.floor) {
                s.end = None;
                s.finished = true;
            }
        }
    }

    /// The reader of `shard` reached its end: every record of it is below log position
    /// `end`. When all of that is delivered already (the reader saw the end only after an
    /// empty read, and no later release may come), the shard is finished now.
    pub(crate) fn ended(&mut self, shard: Arc<str>, end: u64) {
        let floor = self.floor;
        let s = self.shards.entry(shard).or_default();
        if end <= floor {
            s.finished = true;
        } else {
            s.end = Some(end);
        }
    }

    /// What `shard` has to be written now; cleared until more comes (or `put_back`).
    pub(crate) fn take(&mut self, shard: &str) -> Taken {
        let Some(s) = self.shards.get_mut(shard) else {
            return Taken::default();
        };
        let taken = Taken {
            delivered: s.delivered.take(),
            records: std::mem::take(&mut s.records),
            finished: std::mem::take(&mut s.finished),
        };
        if s.end.is_none() {
            self.shards.remove(shard);
        }
        taken
    }

    /// A write of `taken` that failed: merged back with what came since (never moving back).
    pub(crate) fn put_back(&mut self, shard: &str, taken: Taken) {
        if taken.is_empty() {
            return;
        }
        let s = self.shards.entry(shard.into()).or_default();
        s.finished |= taken.finished;
        s.records += taken.records;
        if let Some(at) = taken.delivered
            && s.delivered.as_ref().is_none_or(|d| at > *d)
        {
            s.delivered = Some(at);
        }
    }

    /// The shards with something to write.
    pub(crate) fn pending(&self) -> Vec<Arc<str>> {
        self.shards
            .iter()
            .filter(|(_, s)| s.delivered.is_some() || s.finished)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Forgets what `shard` delivered, ended or finished (another instance reads it now, or a
    /// fresh tenure reads it again from its checkpoint); how many delivered records that was.
    pub(crate) fn forget(&mut self, shard: &str) -> u64 {
        self.shards.remove(shard).map_or(0, |s| s.records)
    }

    pub(crate) fn floor(&self) -> u64 {
        self.floor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seq: &str, sub: u64) -> ShardPosition {
        ShardPosition {
            sequence: seq.into(),
            sub,
        }
    }

    fn released(l: &mut Ledger, records: &[(&str, &str, u64)], floor: u64) {
        l.released(
            records
                .iter()
                .map(|(s, q, sub)| (Arc::from(*s), at(q, *sub))),
            floor,
        );
    }

    #[test]
    fn the_last_delivered_record_moves_forward_only() {
        let mut l = Ledger::default();
        released(&mut l, &[("s0", "200", 0), ("s0", "100", 5)], 2);
        let t = l.take("s0");
        assert_eq!(
            t.delivered,
            Some(at("200", 0)),
            "a re-read never moves back"
        );
        assert_eq!(t.records, 2);
        assert!(l.take("s0").is_empty(), "taken once");
        released(&mut l, &[("s0", "300", 1)], 3);
        let t = l.take("s0");
        released(&mut l, &[("s0", "250", 0)], 4);
        l.put_back("s0", t);
        assert_eq!(
            l.take("s0"),
            Taken {
                delivered: Some(at("300", 1)),
                records: 2,
                finished: false
            },
            "a failed write merges back without moving back"
        );
    }

    #[test]
    fn a_shard_finishes_once_its_end_is_delivered() {
        let mut l = Ledger::default();
        l.ended("s1".into(), 5);
        released(&mut l, &[("s1", "7", 0)], 3);
        assert!(!l.take("s1").finished, "its end (5) is not delivered yet");
        released(&mut l, &[], 5);
        assert!(l.take("s1").finished);
        assert!(l.pending().is_empty());
    }

    /// The bug fixed twice (34cfc87 in the lease store, 45b9ccc in the files), fixed here once:
    /// a reader sees a shard's end only after an empty read, so its records can all be
    /// delivered first; no later release moves the floor, so the end finishes the shard at
    /// once (left waiting, the shard never finished and its children were never read).
    #[test]
    fn an_end_reported_after_its_records_were_delivered_finishes_the_shard_at_once() {
        let mut l = Ledger::default();
        released(&mut l, &[("s", "9", 0)], 4);
        l.ended("s".into(), 4);
        let t = l.take("s");
        assert!(t.finished && t.delivered == Some(at("9", 0)));
        l.ended("t".into(), 6);
        assert!(!l.take("t").finished, "6 is not delivered");
    }

    #[test]
    fn a_forgotten_shard_starts_over() {
        let mut l = Ledger::default();
        released(&mut l, &[("s3", "1", 0), ("s3", "2", 0)], 7);
        l.ended("s3".into(), 9);
        assert_eq!(l.forget("s3"), 2);
        released(&mut l, &[], 10);
        assert!(l.take("s3").is_empty(), "its end was forgotten with it");
        assert_eq!(l.floor(), 10);
    }
}

/// Both checkpoint stores keep the ledger's word: one script of releases and shard ends, run
/// through the files (reloaded from disk) and through the lease manager's progress (what it
/// takes to write), ends in the same checkpoint and finished state for every shard.
#[cfg(test)]
mod both_stores {
    use super::*;
    use crate::record::KinesisMeta;
    use crate::source::kinesis::checkpoint::Checkpoints;
    use crate::source::kinesis::leases::Progress;

    fn rec(shard: &str, seq: &str, sub: u64) -> Record {
        Record {
            data: bytes::Bytes::new(),
            arrival_ms: 0,
            seq: 0,
            sub: 0,
            kinesis: Some(Arc::new(KinesisMeta {
                shard_id: shard.into(),
                partition_key: "k".into(),
                sequence_number: seq.into(),
                subsequence_number: sub,
                approximate_arrival_ms: 0,
                tenure: "".into(),
            })),
        }
    }

    /// A stream's life: records delivered out of shard order, a shard ended before and one
    /// after its records were delivered, one never ended.
    fn script(p: &dyn ShardProgress) {
        p.released(&[rec("shardId-a", "100", 0), rec("shardId-b", "7", 0)], 2);
        p.shard_ended("shardId-a".into(), 5);
        p.released(&[rec("shardId-a", "200", 3), rec("shardId-c", "9", 1)], 4);
        p.released(&[rec("shardId-b", "8", 0)], 5);
        p.shard_ended("shardId-b".into(), 5);
        p.shard_ended("shardId-c".into(), 9);
    }

    #[test]
    fn files_and_leases_end_in_the_same_checkpoints() {
        let want = [
            ("shardId-a", Some(("200".to_string(), 3)), true),
            ("shardId-b", Some(("8".to_string(), 0)), true),
            ("shardId-c", Some(("9".to_string(), 1)), false),
        ];
        let dir = tempfile::tempdir().expect("tempdir");
        script(&Checkpoints::load(dir.path()).expect("files"));
        let files = Checkpoints::load(dir.path()).expect("reloaded");
        let progress = Progress::default();
        script(&progress);
        for (shard, at, finished) in want {
            let ck = files.get(shard).expect("a checkpoint file");
            assert_eq!(
                (
                    ck.sequence_number.clone().zip(Some(ck.subsequence_number)),
                    ck.finished
                ),
                (at.clone(), finished),
                "files, {shard}"
            );
            let taken = progress.take(shard);
            assert_eq!(
                (
                    taken.delivered.map(|d| (d.sequence.to_string(), d.sub)),
                    taken.finished
                ),
                (at, finished),
                "leases, {shard}"
            );
        }
    }
}
