//! The worker and its uploader, alone, against a sink in memory: objects are sealed on size,
//! interval, flush and close and uploaded in order; a failed upload is retried until written;
//! the log cursor moves only past records whose objects are written. Timers run on tokio's
//! paused clock, so the interval and the retry backoff take no real time.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::*;
use crate::destination::memory::MemorySink;
use crate::destination::naming::Naming;
use crate::destination::shards::Staging;
use crate::destination::stagers::Layout;
use crate::record::Record;
use crate::spec::{Buffering, DestinationSpec, Target};
use crate::sync::Lock;

struct Harness {
    handle: DestinationHandle,
    sink: Arc<MemorySink>,
    /// Every cursor the worker reported, in order.
    cursors: Arc<Mutex<Vec<u64>>>,
    _dir: tempfile::TempDir,
}

const MIB: usize = 1024 * 1024;

fn harness(size_mib: u64, interval: Duration) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = DestinationSpec {
        buffering: Buffering {
            size_mib,
            interval_seconds: interval.as_secs(),
        },
        ..crate::config::stand_in_destination(Target::Directory("unused".into()))
    };
    let naming = Naming {
        stream: "s".into(),
        version: 1,
        prefix: crate::keys::template::Template::default(),
        extension: String::new(),
        time_zone: chrono_tz::UTC,
        error: None,
        partition: None,
    };
    let metrics = Arc::new(DestinationMetrics::default());
    let patience = Arc::new(Patience::new(
        "s[0]".into(),
        metrics.disk_full_waits.clone(),
    ));
    let plan = crate::destination::StagingPlan::build(
        dir.path().to_path_buf(),
        naming,
        &spec,
        &Layout::default(),
        true,
        patience.clone(),
    );
    let sink = Arc::new(MemorySink::default());
    let cursors = Arc::new(Mutex::new(Vec::new()));
    let seen = cursors.clone();
    let (fatal, _) = crate::fatal::channel();
    let handle = DestinationHandle::spawn(WorkerSetup {
        label: "s[0]".into(),
        plan: Staging::One(Box::new(plan)),
        interval,
        sink: Sink::Memory(sink.clone()),
        metrics,
        on_delivered: Arc::new(move |next| {
            seen.locked().push(next);
            Ok(())
        }),
        cursor: 0,
        fatal,
        room: crate::disk::StagingRoom::new(dir.path().to_path_buf()),
        patience,
        tables: None,
    });
    Harness {
        handle,
        sink,
        cursors,
        _dir: dir,
    }
}

/// Records `seqs` of `size` bytes each (`{"n":seq}` padded with spaces).
fn delivery(seqs: std::ops::Range<u64>, size: usize) -> Delivery {
    let records: Vec<Record> = seqs
        .clone()
        .map(|seq| {
            let mut data = format!("{{\"n\":{seq}}}").into_bytes();
            data.resize(size.max(data.len()), b' ');
            Record {
                data: Bytes::from(data),
                arrival_ms: 1_700_000_000_000,
                seq,
                sub: 0,
                kinesis: None,
            }
        })
        .collect();
    Delivery {
        records,
        end: seqs.end,
        ..Delivery::default()
    }
}

impl Harness {
    async fn send(&self, d: Delivery) {
        assert!(
            self.handle.send_records(d).await,
            "the worker takes records"
        );
    }

    /// Seals what is open; the keys written since the last flush, once all are delivered.
    async fn flush(&self) -> Vec<String> {
        let (reply, rx) = oneshot::channel();
        assert!(self.handle.send(Input::Flush(reply)).await);
        rx.await.expect("the flush is answered")
    }

    fn cursor(&self) -> Option<u64> {
        self.cursors.locked().last().copied()
    }

    /// The records of every object, in key order, as the lines written.
    fn lines(&self) -> Vec<Vec<String>> {
        self.sink
            .objects()
            .values()
            .map(|bytes| {
                String::from_utf8_lossy(bytes)
                    .lines()
                    .map(|l| l.trim_end().to_string())
                    .collect()
            })
            .collect()
    }
}

#[tokio::test(start_paused = true)]
async fn an_object_is_sealed_before_its_records_pass_the_buffer_size() {
    let h = harness(1, Duration::from_secs(3600));
    // Three records of 400 KiB: the third would take the object past 1 MiB.
    h.send(delivery(0..2, 400 * 1024)).await;
    h.send(delivery(2..3, 400 * 1024)).await;
    let keys = h.flush().await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    let mut counts: Vec<usize> = h.lines().iter().map(Vec::len).collect();
    counts.sort_unstable();
    assert_eq!(counts, vec![1, 2]);
    assert!(h.sink.objects().values().all(|o| o.len() <= MIB));
    assert_eq!(h.cursor(), Some(3));
}

#[tokio::test(start_paused = true)]
async fn the_interval_seals_what_is_open_and_moves_the_cursor() {
    let h = harness(5, Duration::from_secs(60));
    h.send(delivery(0..3, 10)).await;
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert!(h.sink.objects().is_empty(), "not before the interval");
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The upload runs beside the clock: give it its turn.
    for _ in 0..100 {
        if h.cursor() == Some(3) {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        h.lines(),
        vec![vec![r#"{"n":0}"#, r#"{"n":1}"#, r#"{"n":2}"#]]
    );
    assert_eq!(h.cursor(), Some(3));
}

#[tokio::test(start_paused = true)]
async fn a_failed_upload_is_retried_until_written_and_the_cursor_waits_for_it() {
    let h = harness(5, Duration::from_secs(3600));
    h.sink.set_down(true);
    h.send(delivery(0..5, 10)).await;
    let flushed = {
        let (reply, rx) = oneshot::channel();
        assert!(h.handle.send(Input::Flush(reply)).await);
        rx
    };
    while h.sink.attempts() < 5 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        h.cursor(),
        None,
        "nothing is delivered while the sink is down"
    );
    assert!(h.sink.objects().is_empty());
    h.sink.set_down(false);
    let keys = flushed.await.expect("the flush is answered once written");
    assert_eq!(keys.len(), 1);
    assert_eq!(h.lines()[0].len(), 5, "every record, once");
    assert_eq!(h.cursor(), Some(5));
}

#[tokio::test(start_paused = true)]
async fn the_cursor_moves_only_past_written_objects_in_order() {
    let h = harness(5, Duration::from_secs(3600));
    h.sink.hold(true);
    h.send(delivery(0..2, 10)).await;
    let first = {
        let (reply, rx) = oneshot::channel();
        assert!(h.handle.send(Input::Flush(reply)).await);
        rx
    };
    h.send(delivery(2..4, 10)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(h.cursor(), None, "the first object is not written yet");
    h.sink.hold(false);
    assert_eq!(first.await.expect("answered").len(), 1);
    assert_eq!(h.cursor(), Some(2), "past the first object only");
    h.handle.close().await;
    assert_eq!(
        h.sink.objects().len(),
        2,
        "close sealed and delivered the rest"
    );
    assert_eq!(h.cursors.locked().clone(), vec![2, 4]);
}
