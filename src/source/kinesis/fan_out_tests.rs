//! Reading by enhanced fan-out, on a stream in memory with file checkpoints: subscriptions that
//! the server ends are followed by new ones from the continuation with no record skipped or
//! read twice; a subscription still held elsewhere (right after a failover) is retried until
//! it is free; a closed shard whose end a server never announces (kinesis-mock) is found read
//! to its end, so its children are read after it. A server's continuations that are missing
//! or lag, and a subscription that falls silent, neither lose nor repeat a record. The fleet's rules with fan-out are in
//! fleet_tests.rs; tests/e2e/kinesis_fan_out.rs runs the real binary on kinesis-mock.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::checkpoint::{Checkpoints, Origin};
use super::metrics::{KinesisMetrics, SubscribeError};
use super::shard_source::IteratorAt;
use super::shard_source::memory::{Continuations, MemoryStream};
use super::{Feed, Mode, Running, Setup, ShardSource};
use crate::source::memlog::MemoryLog;
use crate::spec::{KinesisSourceSpec, KinesisStreamRef, StartingPosition};
use crate::sync::Lock;

/// What was delivered: (shard, data), in delivery order.
type Delivered = Arc<Mutex<Vec<(String, String)>>>;

struct Reading {
    running: Option<Running>,
    delivered: Delivered,
    metrics: Arc<KinesisMetrics>,
    _dir: tempfile::TempDir,
}

/// Starts reading `stream` by fan-out, delivering whatever is read at once.
fn start(stream: &Arc<MemoryStream>) -> Reading {
    let dir = tempfile::tempdir().expect("tempdir");
    let checkpoints = Arc::new(Checkpoints::load(dir.path()).expect("checkpoints"));
    let log = MemoryLog::new(1, 1024 * 1024, checkpoints.clone());
    let metrics = Arc::new(KinesisMetrics::default());
    let running = super::start(Setup {
        source: ShardSource::Memory(stream.clone()),
        config: KinesisSourceSpec {
            stream: KinesisStreamRef::Name("s".into()),
            endpoint_url: None,
            starting_position: StartingPosition::TrimHorizon,
            discovery_interval_seconds: 1,
            max_buffered_mib: 1,
            get_records_limit: 100,
            leases: None,
            enhanced_fan_out: None,
        },
        log: log.clone(),
        origin: Origin::TrimHorizon,
        metrics: metrics.clone(),
        label: "fan-out".into(),
        mode: Mode::Files {
            checkpoints,
            first_start_latest: false,
        },
        feed: Feed::FanOut {
            consumer: "arn:aws:kinesis:us-east-1:1:stream/s/consumer/c:1".into(),
        },
    });
    let delivered: Delivered = Arc::default();
    let out = delivered.clone();
    tokio::spawn(async move {
        let mut reader = log.reader(0);
        while reader.wait().await {
            let records = reader.read(usize::MAX);
            let mut out = out.locked();
            for r in &records {
                if let Some(k) = &r.kinesis {
                    let data = String::from_utf8_lossy(&r.data).into_owned();
                    out.push((k.shard_id.to_string(), data));
                }
            }
            log.release(0, reader.next_seq());
        }
    });
    Reading {
        running: Some(running),
        delivered,
        metrics,
        _dir: dir,
    }
}

impl Reading {
    fn data(&self) -> Vec<String> {
        self.delivered
            .locked()
            .iter()
            .map(|d| d.1.clone())
            .collect()
    }

    async fn until(&self, limit: Duration, done: impl Fn(&Reading) -> bool) -> bool {
        let start = tokio::time::Instant::now();
        while start.elapsed() < limit {
            if done(self) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.finish().await;
        }
    }
}

fn put(stream: &MemoryStream, shard: &str, from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| {
            let data = format!("{shard}#{i}");
            stream.put(shard, "k", data.as_bytes()).expect("open shard");
            data
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn ended_subscriptions_are_followed_from_their_continuation_without_a_gap_or_a_duplicate() {
    let stream = Arc::new(MemoryStream::new(1));
    let r = read_through_renewals(stream.clone()).await;
    let m = r.metrics.shard("shardId-000000000000");
    assert!(
        m.subscriptions_ended.get() >= 3,
        "subscriptions were renewed"
    );
    assert_eq!(m.subscriptions.get(), stream.subscriptions() as u64);
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_subscription_still_held_is_retried_until_it_is_free() {
    let stream = Arc::new(MemoryStream::new(1));
    let shard = "shardId-000000000000";
    // Another instance's subscription, not yet gone.
    let held = ShardSource::Memory(stream.clone())
        .subscribe("c", shard, &IteratorAt::Latest)
        .await
        .expect("the first subscription");
    let want = put(&stream, shard, 0, 20);
    let r = start(&stream);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(r.data().is_empty(), "nothing read while the shard is held");
    drop(held);
    let all = want.clone();
    assert!(
        r.until(Duration::from_secs(30), |r| r.data() == all).await,
        "read once free: {:?}",
        r.data()
    );
    let in_use = r.metrics.shard(shard).subscribe_errors[SubscribeError::InUse as usize].get();
    assert!(in_use >= 2, "refusals counted as in use: {in_use}");
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_closed_shard_whose_end_is_never_announced_is_read_to_its_end_before_its_children() {
    let stream = Arc::new(MemoryStream::new(1));
    stream.hide_shard_ends();
    let parent = "shardId-000000000000";
    let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
    want.insert(parent.into(), put(&stream, parent, 0, 30));
    let children = stream.split(parent);
    for c in &children {
        want.insert(c.clone(), put(&stream, c, 0, 10));
    }
    let r = start(&stream);
    let total: usize = want.values().map(Vec::len).sum();
    assert!(
        r.until(Duration::from_secs(60), |r| r.data().len() >= total)
            .await,
        "children read: {:?}",
        r.data()
    );
    let delivered = r.delivered.locked().clone();
    let last_parent = delivered.iter().rposition(|d| d.0 == parent);
    let first_child = delivered.iter().position(|d| d.0 != parent);
    assert!(last_parent < first_child, "parent first: {delivered:?}");
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (s, d) in delivered {
        got.entry(s).or_default().push(d);
    }
    assert_eq!(got, want);
    r.stop().await;
}

/// Records put in rounds while subscriptions end every 3 events; every record once, in order.
async fn read_through_renewals(stream: Arc<MemoryStream>) -> Reading {
    stream.end_subscriptions_after(3);
    let shard = "shardId-000000000000";
    let mut want = put(&stream, shard, 0, 250);
    let r = start(&stream);
    for round in 1..=5 {
        tokio::time::sleep(Duration::from_millis(70)).await;
        want.extend(put(&stream, shard, round * 1000, 40));
    }
    let all = want.clone();
    assert!(
        r.until(Duration::from_secs(300), |r| r.data().len() >= all.len())
            .await,
        "read {} of {}",
        r.data().len(),
        all.len()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(r.data(), want, "every record once, in order");
    r
}

#[tokio::test(start_paused = true)]
async fn events_without_a_continuation_neither_end_an_open_shard_nor_repeat_records() {
    let stream = Arc::new(MemoryStream::new(1));
    stream.send_continuations(Continuations::Omitted);
    let r = read_through_renewals(stream).await;
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_continuation_that_lags_behind_the_records_read_repeats_none() {
    let stream = Arc::new(MemoryStream::new(1));
    stream.send_continuations(Continuations::Stale);
    let r = read_through_renewals(stream).await;
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_subscription_that_falls_silent_is_replaced() {
    let stream = Arc::new(MemoryStream::new(1));
    stream.fall_silent_after(2);
    let r = read_through_renewals(stream.clone()).await;
    assert!(
        stream.subscriptions() >= 3,
        "replaced: {}",
        stream.subscriptions()
    );
    let other = r.metrics.shard("shardId-000000000000").subscribe_errors
        [SubscribeError::Other as usize]
        .get();
    assert!(other >= 1, "silences counted: {other}");
    r.stop().await;
}
