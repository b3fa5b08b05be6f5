//! A fleet of firehosed instances sharing one Kinesis stream through a DynamoDB lease table
//! (real processes, kinesalite, moto's DynamoDB): they converge to an even split and stay
//! there; a killed instance's shards are taken within the failover time and nothing is
//! skipped; across a split and a merge no child is read before its parents are finished, and
//! per-key order holds across instances; a rolling SIGTERM restart under load delivers every
//! record exactly once; a 30-second DynamoDB outage loses nothing and every duplicate it causes
//! is counted; an instance that moves from its checkpoint file to a lease table goes on from
//! the file's checkpoints. With `delivery: exactly_once` into S3, instances killed and one frozen
//! past the failover time (its leases move while it has objects staged and in flight), a split
//! and a merge among them: every record is in exactly one object. The same with enhanced
//! fan-out (kinesis-mock, TLS and HTTP/2): each instance subscribes only to the shards it
//! leases, a lease moved by kill -9 ends the old subscription before the new owner's starts
//! (ResourceInUse retried meanwhile), and exactly-once objects still hold every record once.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::support::*;
use serde_json::Value;

const FAILOVER: u64 = 6;
const TABLE: &str = "fleet-leases";

/// The fleet's Kinesis server: kinesalite (polling), or kinesis-mock (enhanced fan-out).
enum Kinesis {
    Lite(Kinesalite),
    Mock(KinesisMock),
}

impl Kinesis {
    fn endpoint(&self) -> &str {
        match self {
            Kinesis::Lite(k) => &k.endpoint,
            Kinesis::Mock(k) => &k.endpoint,
        }
    }

    fn tool(&self, args: &[&str]) -> Vec<u8> {
        match self {
            Kinesis::Lite(k) => k.tool(args),
            Kinesis::Mock(k) => k.tool(args),
        }
    }

    /// The test CA for TLS clients (kinesis-mock).
    fn ca_file(&self) -> Option<&std::path::Path> {
        match self {
            Kinesis::Lite(_) => None,
            Kinesis::Mock(k) => Some(&k.ca_file),
        }
    }
}

struct Fleet {
    k: Kinesis,
    db: Moto,
    stream: String,
    members: Vec<Member>,
    /// The destinations' YAML (default: a directory per instance).
    destinations: Option<String>,
}

struct Member {
    d: Daemon,
    alive: bool,
}

impl Fleet {
    fn new(stream: &str, shards: usize) -> Fleet {
        Self::on(Kinesis::Lite(Kinesalite::start()), stream, shards)
    }

    /// Instances read by enhanced fan-out, from kinesis-mock.
    fn with_fan_out(stream: &str, shards: usize) -> Fleet {
        Self::on(Kinesis::Mock(KinesisMock::start()), stream, shards)
    }

    fn on(k: Kinesis, stream: &str, shards: usize) -> Fleet {
        k.tool(&["create", stream, &shards.to_string()]);
        Fleet {
            k,
            db: Moto::start(),
            stream: stream.to_string(),
            members: Vec::new(),
            destinations: None,
        }
    }

    fn config(&self, worker: &str) -> String {
        format!(
            "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
delivery_streams:
  - name: ks
    source:
      kinesis_stream:
        stream_name: {stream}
        endpoint_url: '{k}'
        starting_position: TRIM_HORIZON
        discovery_interval_seconds: 1
        leases: {{table: {TABLE}, endpoint_url: '{db}', worker_id: {worker}, failover_seconds: {FAILOVER}}}
{fan_out}    processing: {{append_delimiter_to_record: true}}
    destinations:
{destinations}aws: {{force_path_style: true}}
",
            stream = self.stream,
            k = self.k.endpoint(),
            fan_out = match self.k {
                Kinesis::Mock(_) => "        enhanced_fan_out: {consumer_name: fleet}\n",
                Kinesis::Lite(_) => "",
            },
            db = self.db.endpoint,
            destinations = self.destinations.as_deref().unwrap_or(
                "      - directory: '{dir}/out'
        buffering: {size_mib: 1, interval_seconds: 2}
"
            ),
        )
    }

    /// Starts instance `w<i>` (i = its index).
    fn add(&mut self) {
        let worker = format!("w{}", self.members.len() + 1);
        let config = self.config(&worker);
        let d = self.launch(&config, None);
        self.members.push(Member { d, alive: true });
    }

    /// A daemon on `config` (in `dir`), trusting the test CA when the server is kinesis-mock.
    fn launch(&self, config: &str, dir: Option<tempfile::TempDir>) -> Daemon {
        let mut l = Daemon::launch(config);
        if let Some(dir) = dir {
            l = l.in_dir(dir);
        }
        if let Some(ca) = self.k.ca_file() {
            l = l.env("SSL_CERT_FILE", &ca.display().to_string());
        }
        l.start()
    }

    /// kill -9 of instance `i` and a start on its state.
    fn kill_and_restart(&mut self, i: usize) {
        let member = self.members.remove(i);
        let (dir, config) = member.d.stop_for_restart();
        let d = self.launch(&config, Some(dir));
        self.members.insert(i, Member { d, alive: true });
    }

    fn items(&self) -> Vec<Value> {
        self.db.items(TABLE)
    }

    /// Unfinished leases per owner ("" for none).
    fn owners(&self) -> BTreeMap<String, usize> {
        owners_of(&self.items())
    }

    /// Waits until every unfinished lease is owned and the owners' counts are `want`.
    fn wait_split(&self, want: &[usize], timeout: Duration) -> BTreeMap<String, usize> {
        let deadline = Instant::now() + timeout;
        loop {
            let owners = self.owners();
            let mut counts: Vec<usize> = owners
                .iter()
                .filter(|(o, _)| !o.is_empty())
                .map(|(_, n)| *n)
                .collect();
            counts.sort_unstable_by(|a, b| b.cmp(a));
            if counts == want && !owners.contains_key("") {
                return owners;
            }
            assert!(
                Instant::now() < deadline,
                "the fleet did not converge to {want:?}: {owners:?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn produce(&self, prefix: &str, seconds: u64) -> (Child, tempfile::NamedTempFile) {
        let produced = tempfile::NamedTempFile::new().expect("tempfile");
        let mut cmd = Command::new(python());
        cmd.arg(py_script("kinesis_tool.py"))
            .args([self.k.endpoint(), "produce", &self.stream, prefix, "40"])
            .arg(seconds.to_string())
            .arg(produced.path())
            .stdout(Stdio::null());
        if let Some(ca) = self.k.ca_file() {
            cmd.env("AWS_CA_BUNDLE", ca);
        }
        let child = cmd.spawn().expect("producer");
        (child, produced)
    }

    /// Every delivered line of every instance (dead ones too), objects in write order.
    fn delivered(&self) -> Vec<String> {
        let mut objects: Vec<(SystemTime, std::path::PathBuf)> = Vec::new();
        for m in &self.members {
            let out = m.d.dir.path().join("out");
            for f in files_under(&out) {
                let path = out.join(f);
                let mtime = std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .expect("mtime");
                objects.push((mtime, path));
            }
        }
        objects.sort();
        let mut lines = Vec::new();
        for (_, path) in objects {
            let text = std::fs::read_to_string(&path).expect("object");
            lines.extend(text.lines().map(str::to_string));
        }
        lines
    }

    /// Waits until every line of `expected` was delivered; returns every delivered line.
    fn wait_delivered(&mut self, expected: &BTreeSet<String>, timeout: Duration) -> Vec<String> {
        self.wait_delivered_by(expected, timeout, Fleet::delivered)
    }

    /// The same, with the delivered lines as `delivered` reads them.
    fn wait_delivered_by(
        &mut self,
        expected: &BTreeSet<String>,
        timeout: Duration,
        delivered: impl Fn(&Fleet) -> Vec<String>,
    ) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            for m in self.members.iter().filter(|m| m.alive) {
                m.d.flush("ks");
            }
            let lines = delivered(self);
            let have: BTreeSet<&str> = lines.iter().map(String::as_str).collect();
            let missing = expected
                .iter()
                .filter(|e| !have.contains(e.as_str()))
                .count();
            if missing == 0 {
                return lines;
            }
            if Instant::now() >= deadline {
                let some: Vec<&String> = expected
                    .iter()
                    .filter(|e| !have.contains(e.as_str()))
                    .take(5)
                    .collect();
                panic!(
                    "{missing} of {} records never delivered (owners {:?}, leases {:?}), such as \
                     {some:?}\n{}",
                    expected.len(),
                    self.owners(),
                    self.items(),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Every instance's log, for a failure's message.
    fn logs(&mut self) -> String {
        let mut out = String::new();
        for (i, m) in self.members.iter_mut().enumerate() {
            out.push_str(&format!("--- w{} ---\n{}\n", i + 1, m.d.logs()));
        }
        out
    }

    /// A destination metric (destination 0) summed over the live instances.
    fn metric_sum_of(&self, family: &str) -> f64 {
        self.members
            .iter()
            .filter(|m| m.alive)
            .map(|m| {
                m.d.metric(&format!(
                    "{family}{{delivery_stream=\"ks\",destination=\"0\"}}"
                ))
            })
            .sum()
    }

    /// A lease metric summed over the live instances.
    fn metric_sum(&self, family: &str) -> f64 {
        self.members
            .iter()
            .filter(|m| m.alive)
            .map(|m| m.d.metric(&format!("{family}{{delivery_stream=\"ks\"}}")))
            .sum()
    }
}

fn owners_of(items: &[Value]) -> BTreeMap<String, usize> {
    let mut owners = BTreeMap::new();
    for i in items.iter().filter(|i| i["checkpoint"] != "SHARD_END") {
        let o = i["leaseOwner"].as_str().unwrap_or("").to_string();
        *owners.entry(o).or_default() += 1;
    }
    owners
}

fn sent(produced: &tempfile::NamedTempFile) -> BTreeSet<String> {
    std::fs::read_to_string(produced.path())
        .expect("produced")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json line");
            v[0].as_str().expect("data").to_string()
        })
        .collect()
}

/// Lines delivered more than once.
fn duplicates(lines: &[String]) -> usize {
    let unique: BTreeSet<&String> = lines.iter().collect();
    lines.len() - unique.len()
}

/// Per partition key, the first delivery of each record comes in the order it was produced.
fn assert_ordered_per_key(lines: &[String]) {
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    let mut taken = BTreeSet::new();
    for l in lines.iter().filter(|l| taken.insert(l.as_str())) {
        let parts: Vec<&str> = l.rsplitn(3, '-').collect();
        let (i, key) = (
            parts[0].parse::<u64>().expect("record number"),
            parts[1].to_string(),
        );
        if let Some(prev) = last.insert(key.clone(), i) {
            assert!(i > prev, "key {key}: record {i} delivered after {prev}");
        }
    }
}

fn put(k: &Kinesis, stream: &str, prefix: &str, count: usize) -> BTreeSet<String> {
    let out = k.tool(&["put", stream, prefix, "20", &count.to_string()]);
    let v: Value = serde_json::from_slice(&out).expect("json");
    v["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r[0].as_str().expect("data").to_string())
        .collect()
}

#[test]
fn three_instances_converge_to_3_3_2_stay_there_and_count_every_duplicate() {
    let mut f = Fleet::new("even", 8);
    let mut expected = put(&f.k, "even", "a", 400);
    f.add();
    f.wait_split(&[8], Duration::from_secs(30));
    f.add();
    f.add();
    let settled = f.wait_split(&[3, 3, 2], Duration::from_secs(90));
    // The table is the KCL's: operators and tools that know it recognise every item.
    for item in f.items() {
        for attr in [
            "leaseKey",
            "leaseOwner",
            "leaseCounter",
            "checkpoint",
            "checkpointSubSequenceNumber",
            "ownerSwitchesSinceCheckpoint",
        ] {
            assert!(item.get(attr).is_some(), "{attr} missing in {item}");
        }
    }
    // No flapping: the same owners for four renew intervals.
    let owner_by_key = |items: Vec<Value>| -> BTreeMap<String, String> {
        items
            .into_iter()
            .map(|i| {
                (
                    i["leaseKey"].as_str().expect("key").to_string(),
                    i["leaseOwner"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let before = owner_by_key(f.items());
    std::thread::sleep(Duration::from_secs(FAILOVER * 4 / 3));
    assert_eq!(owner_by_key(f.items()), before, "settled at {settled:?}");
    expected.extend(put(&f.k, "even", "b", 400));
    let lines = f.wait_delivered(&expected, Duration::from_secs(60));
    let counted = f.metric_sum("firehose_kinesis_lease_duplicate_records_total");
    let delivered_twice = duplicates(&lines);
    assert!(
        delivered_twice as f64 <= counted,
        "{delivered_twice} duplicates delivered, {counted} counted\n{}",
        f.logs()
    );
    assert!(f.metric_sum("firehose_kinesis_leases_stolen_total") >= 5.0);
    assert_eq!(f.metric_sum("firehose_kinesis_leases_held"), 8.0);
}

#[test]
fn a_killed_instance_s_shards_are_taken_within_the_failover_time_and_nothing_is_skipped() {
    let mut f = Fleet::new("kill", 8);
    for _ in 0..3 {
        f.add();
    }
    f.wait_split(&[3, 3, 2], Duration::from_secs(90));
    let (mut producer, produced) = f.produce("p", 16);
    std::thread::sleep(Duration::from_secs(5));
    f.members[1].d.kill9();
    f.members[1].alive = false;
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(FAILOVER * 3);
    while f.owners().contains_key("w2") {
        assert!(Instant::now() < deadline, "w2's leases were never taken");
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = killed.elapsed();
    // The bound itself (failover time + a renewal interval + a pass) is proven in virtual
    // time by the unit tier (source/kinesis/fleet_tests.rs): here, on a loaded machine's
    // wall clock, only that they are taken well within three failover times (the loop above).
    println!("w2's shards were taken {took:?} after kill -9");
    assert!(producer.wait().expect("producer").success());
    let expected = sent(&produced);
    assert!(
        expected.len() > 1000,
        "the producer ran: {}",
        expected.len()
    );
    f.wait_split(&[4, 4], Duration::from_secs(30));
    f.wait_delivered(&expected, Duration::from_secs(90));
}

#[test]
fn a_split_and_a_merge_under_three_instances_keep_parents_first_and_per_key_order() {
    let mut f = Fleet::new("reshard", 4);
    for _ in 0..3 {
        f.add();
    }
    f.wait_split(&[2, 1, 1], Duration::from_secs(90));
    let scans = tempfile::NamedTempFile::new().expect("tempfile");
    let mut watcher = Command::new(python())
        .arg(py_script("lease_tool.py"))
        .args([&f.db.endpoint, "watch", TABLE, "30"])
        .arg(scans.path())
        .spawn()
        .expect("watcher");
    let (mut producer, produced) = f.produce("r", 16);
    std::thread::sleep(Duration::from_secs(3));
    f.k.tool(&["split", "reshard", "shardId-000000000000"]);
    std::thread::sleep(Duration::from_secs(4));
    let open: Vec<String> =
        serde_json::from_slice(&f.k.tool(&["shards", "reshard"])).expect("json");
    let n = open.len();
    f.k.tool(&["merge", "reshard", &open[n - 2], &open[n - 1]]);
    assert!(producer.wait().expect("producer").success());
    let expected = sent(&produced);
    assert!(
        expected.len() > 1000,
        "the producer ran: {}",
        expected.len()
    );
    let lines = f.wait_delivered(&expected, Duration::from_secs(120));
    assert_ordered_per_key(&lines);
    assert!(watcher.wait().expect("watcher").success());
    // In no scan of the table is a child owned while a parent's item says it is unfinished.
    let mut checked = 0;
    for scan in std::fs::read_to_string(scans.path())
        .expect("scans")
        .lines()
    {
        let items: Vec<Value> = serde_json::from_str(scan).expect("scan");
        let by_key: BTreeMap<&str, &Value> = items
            .iter()
            .map(|i| (i["leaseKey"].as_str().expect("key"), i))
            .collect();
        for child in items.iter().filter(|i| i["leaseOwner"].is_string()) {
            for p in child["parentShardId"].as_array().into_iter().flatten() {
                if let Some(parent) = by_key.get(p.as_str().expect("parent id")) {
                    checked += 1;
                    assert_eq!(
                        parent["checkpoint"], "SHARD_END",
                        "child {} owned while its parent is unfinished: {scan}",
                        child["leaseKey"]
                    );
                }
            }
        }
    }
    assert!(
        checked > 0,
        "the watcher saw children being read beside their parents' items"
    );
    // The split parent's item goes once its children are being read.
    let deadline = Instant::now() + Duration::from_secs(40);
    while f
        .items()
        .iter()
        .any(|i| i["leaseKey"] == "shardId-000000000000")
    {
        assert!(
            Instant::now() < deadline,
            "the finished parent's item stayed: {:?}",
            f.items()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_rolling_sigterm_restart_under_load_delivers_every_record_exactly_once() {
    let mut f = Fleet::new("rolling", 8);
    for _ in 0..3 {
        f.add();
    }
    f.wait_split(&[3, 3, 2], Duration::from_secs(90));
    let (mut producer, produced) = f.produce("g", 50);
    for i in 0..3 {
        std::thread::sleep(Duration::from_secs(2));
        let status = f.members[i].d.terminate(Duration::from_secs(30));
        assert!(status.success(), "w{} exited {status}", i + 1);
        let member = f.members.remove(i);
        let d = member.d.restart();
        f.members.insert(i, Member { d, alive: true });
        f.wait_split(&[3, 3, 2], Duration::from_secs(90));
    }
    assert!(producer.wait().expect("producer").success());
    let expected = sent(&produced);
    assert!(
        expected.len() > 1000,
        "the producer ran: {}",
        expected.len()
    );
    let lines = f.wait_delivered(&expected, Duration::from_secs(90));
    let mut seen = BTreeMap::new();
    for l in &lines {
        *seen.entry(l.as_str()).or_insert(0) += 1;
    }
    let twice: Vec<&&str> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(l, _)| l)
        .collect();
    assert!(
        twice.is_empty(),
        "{} records delivered twice, e.g. {:?}",
        twice.len(),
        twice.iter().take(5).collect::<Vec<_>>()
    );
    assert_eq!(lines.len(), expected.len());
}

#[test]
fn a_30_second_dynamodb_outage_loses_nothing_and_the_leases_resolve_when_it_returns() {
    let mut f = Fleet::new("outage", 8);
    for _ in 0..3 {
        f.add();
    }
    f.wait_split(&[3, 3, 2], Duration::from_secs(90));
    let checkpoints = |items: Vec<Value>| -> BTreeMap<String, String> {
        items
            .into_iter()
            .map(|i| (i["leaseKey"].to_string(), i["checkpoint"].to_string()))
            .collect()
    };
    let (mut producer, produced) = f.produce("o", 45);
    std::thread::sleep(Duration::from_secs(5));
    let before = checkpoints(f.items());
    f.db.pause(true);
    std::thread::sleep(Duration::from_secs(30));
    f.db.pause(false);
    // No checkpoint moved back: what was delivered before stays delivered.
    let after = checkpoints(f.items());
    for (key, was) in &before {
        let now = &after[key];
        let big = |s: &str| {
            let digits = s.trim_matches('"').trim_start_matches('0').to_string();
            (digits.len(), digits)
        };
        assert!(
            now.contains("SHARD_END") || was.contains("TRIM_HORIZON") || big(now) >= big(was),
            "{key}: checkpoint {was} became {now}"
        );
    }
    f.wait_split(&[3, 3, 2], Duration::from_secs(60));
    assert!(producer.wait().expect("producer").success());
    let expected = sent(&produced);
    assert!(
        expected.len() > 1000,
        "the producer ran: {}",
        expected.len()
    );
    let lines = f.wait_delivered(&expected, Duration::from_secs(90));
    assert!(f.metric_sum("firehose_kinesis_lease_renew_failures_total") > 0.0);
    assert!(
        f.metric_sum("firehose_kinesis_leases_lost_total") >= 8.0,
        "every lease expired locally during the outage"
    );
    let counted = f.metric_sum("firehose_kinesis_lease_duplicate_records_total");
    let delivered_twice = duplicates(&lines);
    println!("after the outage: {delivered_twice} duplicates delivered, {counted} counted");
    assert!(
        delivered_twice as f64 <= counted,
        "{delivered_twice} duplicates delivered, {counted} counted\n{}",
        f.logs()
    );
}

#[test]
fn an_instance_moving_from_its_checkpoint_file_to_a_lease_table_starts_from_the_file() {
    let mut f = Fleet::new("moved", 4);
    let first = put(&f.k, "moved", "a", 300);
    // The same instance, first without `leases`: checkpoints in its state folder's file.
    let with_leases = f.config("w1");
    let without: String = with_leases
        .lines()
        .filter(|l| !l.trim_start().starts_with("leases:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without, with_leases);
    f.members.push(Member {
        d: Daemon::start(&without),
        alive: true,
    });
    f.wait_delivered(&first, Duration::from_secs(60));
    let status = f.members[0].d.terminate(Duration::from_secs(30));
    assert!(status.success(), "exited {status}");
    let (dir, _) = f.members.remove(0).d.stop_for_restart();
    f.members.push(Member {
        d: Daemon::launch(&with_leases).in_dir(dir).start(),
        alive: true,
    });
    f.wait_split(&[4], Duration::from_secs(30));
    // The leases start where the file left off: the first records are not read again.
    let positions: Vec<String> = f
        .items()
        .iter()
        .map(|i| i["checkpoint"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        positions
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_digit())),
        "every lease starts at a sequence number from the file: {positions:?}"
    );
    let mut expected = first.clone();
    expected.extend(put(&f.k, "moved", "b", 300));
    let lines = f.wait_delivered(&expected, Duration::from_secs(60));
    assert_eq!(
        duplicates(&lines),
        0,
        "records read again after the move\n{}",
        f.logs()
    );
    assert_eq!(lines.len(), expected.len());
}

/// Sends `signal` to instance `i` (STOP freezes it, CONT thaws it).
fn signal(f: &Fleet, i: usize, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &f.members[i].d.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn exactly_once_objects_hold_when_instances_are_killed_a_frozen_one_loses_its_leases_and_shards_split_and_merge()
 {
    let s3 = S3sFs::start();
    s3.create_bucket("fleet-eo");
    let mut f = Fleet::new("eo", 4);
    f.destinations = Some(format!(
        "      - s3: {{bucket: fleet-eo, endpoint_url: '{}'}}
        delivery: exactly_once
        compression: GZIP
        buffering: {{size_mib: 1, interval_seconds: 1}}
",
        s3.endpoint
    ));
    f.add();
    f.add();
    f.wait_split(&[2, 2], Duration::from_secs(90));
    let (mut producer, produced) = f.produce("e", 55);
    for round in 0..6 {
        std::thread::sleep(Duration::from_secs(3));
        if round == 1 {
            f.k.tool(&["split", "eo", "shardId-000000000000"]);
        }
        if round == 4 {
            let open: Vec<String> =
                serde_json::from_slice(&f.k.tool(&["shards", "eo"])).expect("json");
            f.k.tool(&["merge", "eo", &open[0], &open[1]]);
        }
        let i = round % 2;
        if round % 3 == 2 {
            // Frozen past the failover time: the other instance takes its leases while it has
            // objects staged, sealed and uploading; thawed, it finds its tenure over.
            signal(&f, i, "STOP");
            std::thread::sleep(Duration::from_secs(FAILOVER + 4));
            signal(&f, i, "CONT");
        } else {
            f.kill_and_restart(i);
        }
    }
    assert!(producer.wait().expect("producer").success());
    let expected = sent(&produced);
    assert!(
        expected.len() > 1000,
        "the producer ran: {}",
        expected.len()
    );
    let lines = f.wait_delivered_by(&expected, Duration::from_secs(120), |_| {
        dump_lines(&s3.endpoint, "fleet-eo", "GZIP")
            .into_values()
            .flatten()
            .collect()
    });
    // How often a frozen instance still had objects of a moved lease depends on the timing.
    let fenced = f.metric_sum_of("firehose_delivery_objects_fenced_total");
    let there = f.metric_sum_of("firehose_delivery_objects_already_there_total");
    println!("objects fenced: {fenced}, found already there: {there}");
    let unknown = lines.iter().filter(|l| !expected.contains(*l)).count();
    assert_eq!(unknown, 0, "records nobody sent");
    assert_eq!(
        duplicates(&lines),
        0,
        "records in two objects (with at_least_once there are hundreds)\n{}",
        f.logs()
    );
}

#[test]
fn with_enhanced_fan_out_kill_9_under_load_loses_nothing_and_exactly_once_writes_nothing_twice() {
    let s3 = S3sFs::start();
    s3.create_bucket("fleet-efo");
    let mut f = Fleet::with_fan_out("efo", 4);
    f.destinations = Some(format!(
        "      - s3: {{bucket: fleet-efo, endpoint_url: '{}'}}
        delivery: exactly_once
        buffering: {{size_mib: 1, interval_seconds: 1}}
",
        s3.endpoint
    ));
    f.add();
    f.add();
    f.wait_split(&[2, 2], Duration::from_secs(90));
    let (mut producer, produced) = f.produce("f", 40);
    for round in 0..4 {
        std::thread::sleep(Duration::from_secs(6));
        // kill -9 alternately: the survivor takes the leases (and their subscriptions, once
        // the dead one's are given up by the server) and gives half back when it returns.
        f.kill_and_restart(round % 2);
    }
    assert!(producer.wait().expect("producer").success());
    let expected = sent(&produced);
    assert!(expected.len() > 500, "the producer ran: {}", expected.len());
    // AWS lets a SubscribeToShard made 5 s or more after the last one take the shard over (the
    // API reference, SubscribeToShard); kinesis-mock 0.6 keeps the old subscription until it
    // sees its connection close, and when it misses the close of a killed instance's
    // connection (seen on a loaded machine), until the subscription's 5-minute end: the new
    // owner is refused (ResourceInUse, retried) until then. Nothing is lost meanwhile, so the
    // wait covers that end.
    let lines = f.wait_delivered_by(&expected, Duration::from_secs(360), |_| {
        dump_lines(&s3.endpoint, "fleet-efo", "UNCOMPRESSED")
            .into_values()
            .flatten()
            .collect()
    });
    let unknown = lines.iter().filter(|l| !expected.contains(*l)).count();
    assert_eq!(unknown, 0, "records nobody sent");
    assert_eq!(
        duplicates(&lines),
        0,
        "records in two objects\n{}",
        f.logs()
    );
    // Per-key order is not checked here: `dump_lines` gives the objects in key-name order, which
    // is not the order they were written in (kinesis.rs and the directory fleet tests check
    // order by write time).
    // Every instance read by subscriptions.
    let subscribed: f64 = f
        .members
        .iter()
        .map(|m| {
            m.d.family_sum("firehose_kinesis_subscriptions_started_total")
        })
        .sum();
    assert!(subscribed >= 2.0, "subscriptions started: {subscribed}");
}
