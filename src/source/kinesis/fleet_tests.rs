//! A fleet in one process, on tokio's paused clock: instances sharing a stream in memory
//! through a lease store in memory, each delivering what it reads at once. What tests/e2e/fleet.rs
//! proves against kinesalite and DynamoDB in minutes, proven here in virtual time: an even
//! split that stays put, a dead instance's shards taken within the failover time, a steal
//! handed off at the exact checkpoint, parents read to their end before their children, and
//! no record skipped anywhere; each both polling and subscribed by enhanced fan-out.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::checkpoint::{Checkpoints, Origin};
use super::lease_store::memory::MemoryLeases;
use super::lease_store::{LeaseStore, Position};
use super::leases::{LeaseSetup, Manager, Progress};
use super::metrics::{KinesisMetrics, LeaseMetrics};
use super::shard_source::memory::MemoryStream;
use super::{Feed, Mode, Running, Setup, ShardSource};
use crate::source::memlog::MemoryLog;
use crate::spec::{KinesisSourceSpec, KinesisStreamRef, StartingPosition};
use crate::sync::Lock;

const FAILOVER: Duration = Duration::from_secs(9);

/// What one instance delivered: (shard, sequence number, data), in delivery order.
type Delivered = Arc<Mutex<Vec<(String, String, String)>>>;

struct Member {
    running: Option<Running>,
    delivered: Delivered,
    metrics: Arc<LeaseMetrics>,
    _dir: tempfile::TempDir,
}

struct Fleet {
    /// Every delivery of the fleet, in the order they happened: (shard, data).
    order: Arc<Mutex<Vec<(String, String)>>>,
    stream: Arc<MemoryStream>,
    leases: Arc<MemoryLeases>,
    members: BTreeMap<String, Member>,
    /// Every record put: shard -> data, in order.
    put: BTreeMap<String, Vec<String>>,
    /// Readers subscribe (enhanced fan-out) instead of polling.
    fan_out: bool,
}

impl Fleet {
    fn new(shards: usize, fan_out: bool) -> Fleet {
        let stream = Arc::new(MemoryStream::new(shards));
        // Subscriptions end now and then, as AWS's after 5 minutes.
        stream.end_subscriptions_after(50);
        Fleet {
            order: Arc::default(),
            stream,
            leases: Arc::new(MemoryLeases::default()),
            members: BTreeMap::new(),
            put: BTreeMap::new(),
            fan_out,
        }
    }

    fn feed(&self) -> Feed {
        match self.fan_out {
            true => Feed::FanOut {
                consumer: "arn:aws:kinesis:us-east-1:1:stream/s/consumer/c:1".into(),
            },
            false => Feed::Poll,
        }
    }

    /// Starts instance `me`: its lease manager and readers, and a destination that delivers
    /// whatever it reads at once (the log's release moves its checkpoints).
    fn add(&mut self, me: &str) {
        let dir = tempfile::tempdir().expect("tempdir");
        let progress = Arc::new(Progress::default());
        let log = MemoryLog::new(1, 1024 * 1024, progress.clone());
        let metrics = Arc::new(LeaseMetrics::default());
        let manager = Manager::new(LeaseSetup {
            table: LeaseStore::Memory(self.leases.clone()),
            me: me.to_string(),
            failover: FAILOVER,
            progress,
            metrics: metrics.clone(),
            files: Arc::new(Checkpoints::load(dir.path()).expect("checkpoints")),
            origin: Origin::TrimHorizon,
        });
        let config = KinesisSourceSpec {
            stream: KinesisStreamRef::Name("s".into()),
            endpoint_url: None,
            starting_position: StartingPosition::TrimHorizon,
            discovery_interval_seconds: 2,
            max_buffered_mib: 1,
            get_records_limit: 100,
            leases: None,
            enhanced_fan_out: None,
        };
        let running = super::start(Setup {
            source: ShardSource::Memory(self.stream.clone()),
            config,
            log: log.clone(),
            origin: Origin::TrimHorizon,
            metrics: Arc::new(KinesisMetrics::default()),
            label: me.to_string(),
            mode: Mode::Leases(Box::new(manager)),
            feed: self.feed(),
        });
        let delivered: Delivered = Arc::default();
        let out = delivered.clone();
        let order = self.order.clone();
        tokio::spawn(async move {
            let mut reader = log.reader(0);
            while reader.wait().await {
                let records = reader.read(usize::MAX);
                {
                    let mut out = out.locked();
                    let mut order = order.locked();
                    for r in &records {
                        if let Some(k) = &r.kinesis {
                            let data = String::from_utf8_lossy(&r.data).into_owned();
                            order.push((k.shard_id.to_string(), data));
                            out.push((
                                k.shard_id.to_string(),
                                k.sequence_number.to_string(),
                                String::from_utf8_lossy(&r.data).into_owned(),
                            ));
                        }
                    }
                }
                log.release(0, reader.next_seq());
            }
        });
        self.members.insert(
            me.to_string(),
            Member {
                running: Some(running),
                delivered,
                metrics,
                _dir: dir,
            },
        );
    }

    /// Puts `n` records into `shard`.
    fn put(&mut self, shard: &str, n: usize) {
        let list = self.put.entry(shard.to_string()).or_default();
        for _ in 0..n {
            let data = format!("{shard}#{}", list.len());
            self.stream
                .put(shard, "k", data.as_bytes())
                .expect("an open shard");
            list.push(data);
        }
    }

    /// Who holds each lease now.
    fn owners(&self) -> BTreeMap<String, Option<String>> {
        self.leases
            .leases()
            .into_iter()
            .map(|l| (l.key, l.owner))
            .collect()
    }

    /// How many leases each instance holds.
    fn split(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for owner in self.owners().into_values().flatten() {
            *out.entry(owner).or_insert(0) += 1;
        }
        out
    }

    /// Every record delivered by any instance, once each: shard -> data, in delivery order.
    fn delivered(&self) -> BTreeMap<String, Vec<String>> {
        let mut seen = BTreeSet::new();
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for m in self.members.values() {
            for (shard, _, data) in m.delivered.locked().iter() {
                if seen.insert(data.clone()) {
                    out.entry(shard.clone()).or_default().push(data.clone());
                }
            }
        }
        for v in out.values_mut() {
            v.sort_by_key(|d| d.rsplit('#').next().and_then(|n| n.parse::<u64>().ok()));
        }
        out
    }

    /// How many records were delivered more than once, across the fleet.
    fn duplicates(&self) -> usize {
        let all: Vec<String> = self
            .members
            .values()
            .flat_map(|m| {
                m.delivered
                    .locked()
                    .iter()
                    .map(|d| d.2.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        all.len() - all.iter().collect::<BTreeSet<_>>().len()
    }

    /// Kills `me` as kill -9 would: its tasks stop, it renews and checkpoints nothing more.
    fn kill(&mut self, me: &str) {
        if let Some(r) = self.members.get_mut(me).and_then(|m| m.running.take()) {
            r.kill();
        }
    }

    /// Waits (virtual time) until `done` holds, at most `limit`; how long it took.
    async fn until(&self, limit: Duration, done: impl Fn(&Fleet) -> bool) -> Option<Duration> {
        let start = tokio::time::Instant::now();
        while start.elapsed() < limit {
            if done(self) {
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
}

#[tokio::test(start_paused = true)]
async fn the_fleet_splits_evenly_and_stays_put() {
    the_fleet_splits_evenly_and_stays_put_on(false).await;
}

#[tokio::test(start_paused = true)]
async fn the_fleet_splits_evenly_and_stays_put_with_fan_out() {
    the_fleet_splits_evenly_and_stays_put_on(true).await;
}

async fn the_fleet_splits_evenly_and_stays_put_on(fan_out: bool) {
    let mut f = Fleet::new(6, fan_out);
    for s in 0..6 {
        f.put(&format!("shardId-{s:012}"), 5);
    }
    for me in ["w1", "w2", "w3"] {
        f.add(me);
    }
    let even = |f: &Fleet| f.split().values().copied().collect::<Vec<_>>() == [2, 2, 2];
    assert!(
        f.until(FAILOVER * 10, even).await.is_some(),
        "never split evenly: {:?}",
        f.split()
    );
    let settled = f.owners();
    tokio::time::sleep(FAILOVER * 3).await;
    assert_eq!(f.owners(), settled, "no lease moved once even");
    assert_eq!(f.delivered(), f.put, "every record delivered");
}

#[tokio::test(start_paused = true)]
async fn a_dead_instances_shards_are_taken_within_the_failover_time_and_nothing_is_skipped() {
    a_dead_instances_shards_are_taken_within_the_failover_time_and_nothing_is_skipped_on(false)
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_dead_instances_shards_are_taken_within_the_failover_time_and_nothing_is_skipped_with_fan_out()
 {
    a_dead_instances_shards_are_taken_within_the_failover_time_and_nothing_is_skipped_on(true)
        .await;
}

async fn a_dead_instances_shards_are_taken_within_the_failover_time_and_nothing_is_skipped_on(
    fan_out: bool,
) {
    let mut f = Fleet::new(4, fan_out);
    for s in 0..4 {
        f.put(&format!("shardId-{s:012}"), 10);
    }
    f.add("w1");
    f.add("w2");
    let even = |f: &Fleet| f.split().values().copied().collect::<Vec<_>>() == [2, 2];
    assert!(f.until(FAILOVER * 10, even).await.is_some());
    f.kill("w2");
    for s in 0..4 {
        f.put(&format!("shardId-{s:012}"), 10);
    }
    let all_w1 = |f: &Fleet| f.split().get("w1") == Some(&4);
    let took = f
        .until(FAILOVER * 3, all_w1)
        .await
        .expect("w2's leases were taken");
    // Not before w2's last renewal is a failover time old; within the failover time, plus a
    // renewal interval, plus a pass.
    assert!(
        took >= FAILOVER * 2 / 3,
        "took {took:?}: before the failover time"
    );
    assert!(
        took <= FAILOVER + FAILOVER / 3 + FAILOVER / 6 + Duration::from_secs(1),
        "took {took:?}"
    );
    let delivered = |f: &Fleet| f.delivered() == f.put;
    assert!(
        f.until(FAILOVER * 3, delivered).await.is_some(),
        "skipped records: {:?}",
        f.delivered()
    );
}

#[tokio::test(start_paused = true)]
async fn a_stolen_lease_is_handed_off_at_its_last_checkpoint_without_a_duplicate() {
    a_stolen_lease_is_handed_off_at_its_last_checkpoint_without_a_duplicate_on(false).await;
}

#[tokio::test(start_paused = true)]
async fn a_stolen_lease_is_handed_off_at_its_last_checkpoint_without_a_duplicate_with_fan_out() {
    a_stolen_lease_is_handed_off_at_its_last_checkpoint_without_a_duplicate_on(true).await;
}

async fn a_stolen_lease_is_handed_off_at_its_last_checkpoint_without_a_duplicate_on(fan_out: bool) {
    let mut f = Fleet::new(4, fan_out);
    for s in 0..4 {
        f.put(&format!("shardId-{s:012}"), 10);
    }
    f.add("w1");
    let all_w1 = |f: &Fleet| f.split().get("w1") == Some(&4);
    assert!(f.until(FAILOVER * 5, all_w1).await.is_some());
    let everything = |f: &Fleet| f.delivered() == f.put;
    assert!(f.until(FAILOVER * 3, everything).await.is_some());
    f.add("w2");
    let even = |f: &Fleet| f.split().values().copied().collect::<Vec<_>>() == [2, 2];
    assert!(
        f.until(FAILOVER * 10, even).await.is_some(),
        "{:?}",
        f.split()
    );
    for s in 0..4 {
        f.put(&format!("shardId-{s:012}"), 10);
    }
    assert!(f.until(FAILOVER * 3, everything).await.is_some());
    let stolen = f.members["w2"].metrics.stolen.get();
    assert!(stolen >= 2, "w2 stole {stolen}");
    assert_eq!(
        f.duplicates(),
        0,
        "a hand-off resumes exactly where the holder's last checkpoint is"
    );
}

#[tokio::test(start_paused = true)]
async fn children_are_read_only_after_their_parents_are_read_to_their_end() {
    children_are_read_only_after_their_parents_are_read_to_their_end_on(false).await;
}

#[tokio::test(start_paused = true)]
async fn children_are_read_only_after_their_parents_are_read_to_their_end_with_fan_out() {
    children_are_read_only_after_their_parents_are_read_to_their_end_on(true).await;
}

async fn children_are_read_only_after_their_parents_are_read_to_their_end_on(fan_out: bool) {
    let mut f = Fleet::new(2, fan_out);
    f.put("shardId-000000000000", 20);
    f.put("shardId-000000000001", 20);
    let [a, b] = f.stream.split("shardId-000000000000");
    let merged = f.stream.merge(&b, "shardId-000000000001");
    f.put(&a, 10);
    f.put(&merged, 10);
    f.add("w1");
    f.add("w2");
    let everything = |f: &Fleet| f.delivered() == f.put;
    assert!(
        f.until(FAILOVER * 10, everything).await.is_some(),
        "{:?}",
        f.delivered()
    );
    // Across the fleet, every parent record is delivered before any of its children's.
    let order = f.order.locked().clone();
    let first = |shard: &str| order.iter().position(|d| d.0 == shard);
    let last = |shard: &str| order.iter().rposition(|d| d.0 == shard);
    for (child, parents) in [
        (a.clone(), vec!["shardId-000000000000".to_string()]),
        (
            merged.clone(),
            vec![b.clone(), "shardId-000000000001".to_string()],
        ),
    ] {
        for p in parents {
            if let (Some(c), Some(p_last)) = (first(&child), last(&p)) {
                assert!(
                    p_last < c,
                    "{child} was read before its parent {p} was read to its end"
                );
            }
        }
    }
    let finished = f
        .leases
        .leases()
        .into_iter()
        .filter(|l| l.checkpoint == Position::ShardEnd)
        .count();
    assert!(finished >= 1, "parents read to their end are finished");
}

#[tokio::test(start_paused = true)]
async fn outages_of_the_lease_store_and_of_the_stream_lose_nothing() {
    outages_of_the_lease_store_and_of_the_stream_lose_nothing_on(false).await;
}

#[tokio::test(start_paused = true)]
async fn outages_of_the_lease_store_and_of_the_stream_lose_nothing_with_fan_out() {
    outages_of_the_lease_store_and_of_the_stream_lose_nothing_on(true).await;
}

async fn outages_of_the_lease_store_and_of_the_stream_lose_nothing_on(fan_out: bool) {
    let mut f = Fleet::new(4, fan_out);
    for s in 0..4 {
        f.put(&format!("shardId-{s:012}"), 10);
    }
    f.add("w1");
    f.add("w2");
    let even = |f: &Fleet| f.split().values().copied().collect::<Vec<_>>() == [2, 2];
    assert!(f.until(FAILOVER * 10, even).await.is_some());
    // The lease store goes for two failover times: nobody can renew, every reader stops.
    f.leases.set_down(true);
    for s in 0..4 {
        f.put(&format!("shardId-{s:012}"), 10);
    }
    tokio::time::sleep(FAILOVER * 2).await;
    f.leases.set_down(false);
    // Then the stream goes for a while.
    f.stream.set_down(true);
    tokio::time::sleep(FAILOVER).await;
    f.stream.set_down(false);
    for s in 0..4 {
        f.put(&format!("shardId-{s:012}"), 10);
    }
    let everything = |f: &Fleet| f.delivered() == f.put;
    assert!(
        f.until(FAILOVER * 10, everything).await.is_some(),
        "skipped records: {:?}",
        f.delivered()
    );
    assert!(
        f.until(FAILOVER * 10, even).await.is_some(),
        "{:?}",
        f.split()
    );
}
