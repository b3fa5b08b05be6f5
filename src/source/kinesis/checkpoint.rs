//! Checkpoints of a Kinesis source, one file per shard under
//! `state_dir/checkpoints/<delivery stream>/<kinesis stream>/`: the sequence and subsequence
//! number of the last record of the shard whose object is written, and whether the shard is
//! finished (read to its end and all of it delivered). They move only when every destination
//! has delivered the records (`released`), and are written atomically.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::ledger::{Ledger, ShardProgress, positions};
use crate::record::Record;
use crate::spec::StartingPosition;
use crate::spool::write_atomically;
use crate::sync::Lock;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sequence_number: Option<String>,
    #[serde(default)]
    pub(crate) subsequence_number: u64,
    #[serde(default)]
    pub(crate) finished: bool,
}

/// Where shards without a checkpoint or a parent start: fixed at the first start, so that a
/// restart never skips what a `LATEST` start would have read (LATEST becomes AT_TIMESTAMP of
/// that first start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "position", rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum Origin {
    TrimHorizon,
    AtTimestamp { timestamp_ms: i64 },
}

pub(crate) struct Checkpoints {
    dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// What is on disk, per shard.
    saved: HashMap<String, Checkpoint>,
    ledger: Ledger,
}

impl Checkpoints {
    pub(crate) fn load(dir: &Path) -> io::Result<Checkpoints> {
        std::fs::create_dir_all(dir)?;
        let mut saved = HashMap::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(shard) = name
                .strip_suffix(".json")
                .filter(|n| n.starts_with("shardId-"))
            {
                let text = std::fs::read_to_string(&path)?;
                let ck: Checkpoint = serde_json::from_str(&text).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {e}", path.display()),
                    )
                })?;
                saved.insert(shard.to_string(), ck);
            }
        }
        Ok(Checkpoints {
            dir: dir.to_path_buf(),
            state: Mutex::new(State {
                saved,
                ..State::default()
            }),
        })
    }

    /// The origin written at the first start, or `configured` (written now); true when it was
    /// written now (this is the first start).
    pub(crate) fn origin(
        &self,
        configured: StartingPosition,
        now_ms: i64,
    ) -> io::Result<(Origin, bool)> {
        let path = self.dir.join("origin.json");
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(origin) = serde_json::from_str(&text)
        {
            return Ok((origin, false));
        }
        let origin = match configured {
            StartingPosition::TrimHorizon => Origin::TrimHorizon,
            StartingPosition::Latest => Origin::AtTimestamp {
                timestamp_ms: now_ms,
            },
            StartingPosition::AtTimestamp(t) => Origin::AtTimestamp { timestamp_ms: t },
        };
        let text = serde_json::to_string(&origin).map_err(io::Error::other)?;
        write_atomically(&path, text.as_bytes())?;
        Ok((origin, true))
    }

    pub(crate) fn get(&self, shard: &str) -> Option<Checkpoint> {
        self.state.locked().saved.get(shard).cloned()
    }

    pub(crate) fn is_finished(&self, shard: &str) -> bool {
        self.get(shard).is_some_and(|c| c.finished)
    }

    /// Writes what the ledger has for each shard (each file atomically); a write that fails is
    /// put back, to be written with the next change. Blocking I/O.
    fn save(&self, s: &mut State) {
        for shard in s.ledger.pending() {
            let taken = s.ledger.take(&shard);
            let base = s.saved.get(shard.as_ref()).cloned().unwrap_or_default();
            let ck = Checkpoint {
                sequence_number: taken
                    .delivered
                    .as_ref()
                    .map(|at| at.sequence.to_string())
                    .or(base.sequence_number),
                subsequence_number: taken
                    .delivered
                    .as_ref()
                    .map_or(base.subsequence_number, |at| at.sub),
                finished: taken.finished || base.finished,
            };
            let path = self.dir.join(format!("{shard}.json"));
            let result = serde_json::to_string(&ck)
                .map_err(io::Error::other)
                .and_then(|text| write_atomically(&path, text.as_bytes()));
            if let Err(e) = result {
                tracing::error!(shard = %shard, error = %e,
                    "cannot write a checkpoint; it is written with the next change, or its records are read again after a restart");
                // What `get` answers is what is on disk: exactly-once journals forget below it.
                s.ledger.put_back(&shard, taken);
                continue;
            }
            if ck.finished {
                tracing::info!(shard = %shard, "shard finished: read to its end and delivered");
            }
            s.saved.insert(shard.to_string(), ck);
        }
    }
}

impl ShardProgress for Checkpoints {
    /// Every destination has delivered `records` and everything below `floor`: the checkpoints
    /// of their shards move, the shards whose end is delivered finish. Blocking I/O.
    fn released(&self, records: &[Record], floor: u64) {
        let mut s = self.state.locked();
        s.ledger.released(positions(records), floor);
        self.save(&mut s);
    }

    fn shard_ended(&self, shard: Arc<str>, end: u64) {
        let mut s = self.state.locked();
        s.ledger.ended(shard, end);
        self.save(&mut s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::KinesisMeta;
    use bytes::Bytes;

    fn rec(shard: &str, seq: &str, sub: u64) -> Record {
        Record {
            data: Bytes::new(),
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

    #[test]
    fn checkpoints_move_with_delivery_and_survive_a_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = Checkpoints::load(dir.path()).expect("loads");
        assert!(c.get("shardId-000000000000").is_none());
        c.released(
            &[
                rec("shardId-000000000000", "100", 0),
                rec("shardId-000000000000", "200", 3),
            ],
            2,
        );
        c.shard_ended("shardId-000000000001".into(), 5);
        c.released(&[rec("shardId-000000000001", "7", 0)], 3);
        assert!(
            !c.is_finished("shardId-000000000001"),
            "its end (5) is not delivered yet"
        );
        c.released(&[], 5);
        let again = Checkpoints::load(dir.path()).expect("reloads");
        assert_eq!(
            again.get("shardId-000000000000"),
            Some(Checkpoint {
                sequence_number: Some("200".into()),
                subsequence_number: 3,
                finished: false
            })
        );
        assert!(again.is_finished("shardId-000000000001"));
    }

    /// The reader sees a shard's end only after an empty read, so the records before it can
    /// be delivered first; with nothing after them to move a cursor, the shard is finished
    /// when its end is reported.
    #[test]
    fn an_end_reported_after_its_records_were_delivered_finishes_the_shard() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = Checkpoints::load(dir.path()).expect("loads");
        c.released(&[rec("shardId-000000000002", "9", 0)], 4);
        c.shard_ended("shardId-000000000002".into(), 4);
        assert!(c.is_finished("shardId-000000000002"));
        let again = Checkpoints::load(dir.path()).expect("reloads");
        assert_eq!(
            again.get("shardId-000000000002"),
            Some(Checkpoint {
                sequence_number: Some("9".into()),
                subsequence_number: 0,
                finished: true
            })
        );
        c.shard_ended("shardId-000000000003".into(), 6);
        assert!(!c.is_finished("shardId-000000000003"), "6 is not delivered");
    }

    #[test]
    fn latest_is_pinned_at_the_first_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = Checkpoints::load(dir.path()).expect("loads");
        assert_eq!(
            c.origin(StartingPosition::Latest, 1000).expect("origin"),
            (Origin::AtTimestamp { timestamp_ms: 1000 }, true)
        );
        assert_eq!(
            c.origin(StartingPosition::Latest, 9999).expect("origin"),
            (Origin::AtTimestamp { timestamp_ms: 1000 }, false),
            "pinned at the first start"
        );
    }
}
