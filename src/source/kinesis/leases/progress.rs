//! What the stream's destinations delivered of the shards this instance leases, not yet
//! written to the lease store: the shard ledger (`ledger.rs`, the same logic the checkpoint
//! files keep), fed by the memory log's release from any thread and taken by the lease
//! manager, which writes it conditional on still holding the lease. Beside it, per shard, the
//! tenure it is read under (records of any other tenure of the shard never move its checkpoint)
//! and the tenures fenced off (their records were dropped by an exactly-once destination).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::record::{Record, ShardPosition};
use crate::source::kinesis::ledger::{Ledger, ShardProgress, Taken};
use crate::sync::Lock;

#[derive(Default)]
pub(crate) struct Progress {
    state: Mutex<State>,
    /// Wakes the manager when something was delivered or a shard ended.
    pub(super) wake: Notify,
    /// A destination delivers exactly once: a tenure this instance stops reading under is
    /// fenced (its staged remainder dropped, the next owner cuts it).
    exactly_once: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct State {
    ledger: Ledger,
    /// Tenures whose exactly-once journal writes failed (another instance's tenure began):
    /// their records were dropped, never delivered, so they never move a checkpoint.
    fenced: HashSet<Arc<str>>,
    /// The last checkpoint written per shard (exactly-once journals forget below it).
    written: HashMap<String, ShardPosition>,
    /// The tenure each held shard is read under.
    current: HashMap<String, Arc<str>>,
}

impl ShardProgress for Progress {
    fn released(&self, records: &[Record], floor: u64) {
        {
            let mut s = self.state.locked();
            let positions: Vec<(Arc<str>, ShardPosition)> = records
                .iter()
                .filter_map(|r| r.kinesis.as_ref())
                .filter(|k| {
                    let other = s
                        .current
                        .get(k.shard_id.as_ref())
                        .is_some_and(|t| *t != k.tenure);
                    !other && !s.fenced.contains(&k.tenure)
                })
                .map(|k| (k.shard_id.clone(), k.position()))
                .collect();
            s.ledger.released(positions, floor);
        }
        self.wake.notify_one();
    }

    fn shard_ended(&self, shard: Arc<str>, end: u64) {
        self.state.locked().ledger.ended(shard, end);
        self.wake.notify_one();
    }
}

impl Progress {
    /// An exactly-once destination could not journal objects under `tenure`: another
    /// instance's tenure of the shard began, and that instance cuts the objects now.
    pub(crate) fn fence(&self, tenure: Arc<str>) {
        self.state.locked().fenced.insert(tenure);
    }

    /// A destination of the stream delivers exactly once (see `Manager::end_tenure`).
    pub(crate) fn set_exactly_once(&self) {
        self.exactly_once
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(super) fn exactly_once(&self) -> bool {
        self.exactly_once.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn is_fenced(&self, tenure: &str) -> bool {
        self.state.locked().fenced.contains(tenure)
    }

    /// `shard` is read under `tenure` from now on; `fresh`: a new tenure, reading from the
    /// checkpoint, so what earlier ones delivered, ended or finished is forgotten.
    pub(super) fn set_current(&self, shard: &str, tenure: Arc<str>, fresh: bool) {
        let mut s = self.state.locked();
        if fresh {
            s.ledger.forget(shard);
        }
        s.current.insert(shard.to_string(), tenure);
    }

    /// The last checkpoint this instance wrote for `shard`.
    pub(crate) fn written(&self, shard: &str) -> Option<ShardPosition> {
        self.state.locked().written.get(shard).cloned()
    }

    pub(super) fn note_written(&self, shard: &str, at: &ShardPosition) {
        self.state
            .locked()
            .written
            .insert(shard.to_string(), at.clone());
    }

    pub(super) fn floor(&self) -> u64 {
        self.state.locked().ledger.floor()
    }

    /// What to write for `shard`: the last delivered record, whether the shard is finished.
    pub(crate) fn take(&self, shard: &str) -> Taken {
        self.state.locked().ledger.take(shard)
    }

    /// A write that failed: merged back with what came since.
    pub(super) fn put_back(&self, shard: &str, taken: Taken) {
        self.state.locked().ledger.put_back(shard, taken);
    }

    pub(super) fn pending(&self) -> Vec<String> {
        let s = self.state.locked();
        s.ledger.pending().iter().map(|k| k.to_string()).collect()
    }

    /// Another instance owns `shard`: what this one delivered past its last checkpoint will
    /// be read again there. Returns how many records that is.
    pub(super) fn forget(&self, shard: &str) -> u64 {
        self.state.locked().ledger.forget(shard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::KinesisMeta;
    use bytes::Bytes;

    fn rec(shard: &str, seq: &str, tenure: &str) -> Record {
        Record {
            data: Bytes::new(),
            arrival_ms: 0,
            seq: 0,
            sub: 0,
            kinesis: Some(Arc::new(KinesisMeta {
                shard_id: shard.into(),
                partition_key: "k".into(),
                sequence_number: seq.into(),
                subsequence_number: 0,
                approximate_arrival_ms: 0,
                tenure: tenure.into(),
            })),
        }
    }

    #[test]
    fn records_of_another_or_a_fenced_tenure_never_move_a_checkpoint() {
        let p = Progress::default();
        p.set_current("s", "t2".into(), true);
        p.released(&[rec("s", "5", "t1"), rec("s", "6", "t2")], 2);
        assert_eq!(
            p.take("s").delivered.map(|a| a.sequence.to_string()),
            Some("6".into())
        );
        p.fence("t2".into());
        p.released(&[rec("s", "7", "t2")], 3);
        assert!(
            p.take("s").is_empty(),
            "a fenced tenure's records were dropped"
        );
        assert!(p.is_fenced("t2"));
    }
}
