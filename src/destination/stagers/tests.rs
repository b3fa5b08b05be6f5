//! A destination's stagers together: a flush never seals an object a replay is cutting again,
//! and a replay admits and refuses partitions as the first run did.

use super::*;
use crate::destination::journal::Journal;
use crate::destination::naming::Naming;
use crate::encode::Compression;
use crate::keys::template::PartitionValues;
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
        route: super::Route::Prefix {
            template: Template::parse("k=!{partitionKeyFromQuery:k}/").expect("template"),
            time_zone: chrono_tz::UTC,
        },
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

fn set_with(dir: &std::path::Path, cursor: u64, partitioning: Option<Partitioning>) -> StagerSet {
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
                prefix: None,
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
        again.open().contains(&(Slot::Main, Some(1002))),
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
