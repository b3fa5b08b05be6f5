//! The Kinesis source on the real binary against kinesalite: starting positions, checkpoints
//! only after delivery, KPL aggregates, resharding and a SIGKILL under load.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::{Value, json};

fn config(k: &Kinesalite, stream: &str, position: &str, buffering: &str) -> String {
    format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
delivery_streams:
  - name: ks
    source:
      kinesis_stream:
        stream_name: {stream}
        endpoint_url: '{}'
        {position}
        discovery_interval_seconds: 1
    processing: {{append_delimiter_to_record: true}}
    destinations:
      - directory: '{{dir}}/out'
        buffering: {buffering}
",
        k.endpoint
    )
}

const BUFFER: &str = "{size_mib: 1, interval_seconds: 900}";

fn wait_read(d: &Daemon, n: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while d.family_sum("firehose_data_read_from_kinesis_stream_records_total") < n as f64 {
        assert!(
            Instant::now() < deadline,
            "the daemon did not read {n} Kinesis records"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Delivered lines in write order (objects ordered by modification time), with their objects.
fn delivered(d: &Daemon) -> Vec<(String, String)> {
    let out = d.dir.path().join("out");
    let mut files: Vec<(std::time::SystemTime, String)> = files_under(&out)
        .into_iter()
        .map(|f| {
            (
                std::fs::metadata(out.join(&f))
                    .and_then(|m| m.modified())
                    .expect("mtime"),
                f,
            )
        })
        .collect();
    files.sort();
    let mut lines = Vec::new();
    for (_, f) in files {
        let text = std::fs::read_to_string(out.join(&f)).expect("object");
        lines.extend(text.lines().map(|l| (l.to_string(), f.clone())));
    }
    lines
}

fn put(k: &Kinesalite, stream: &str, prefix: &str, keys: usize, count: usize) -> Vec<Value> {
    let out = k.tool(&["put", stream, prefix, &keys.to_string(), &count.to_string()]);
    let v: Value = serde_json::from_slice(&out).expect("json");
    v["records"].as_array().expect("records").clone()
}

fn big_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Per partition key, the record numbers must come in the order they were produced.
fn assert_ordered_per_key(lines: &[String]) {
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for l in lines {
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

#[test]
fn trim_horizon_delivers_everything_and_checkpoints_only_after_delivery() {
    let k = Kinesalite::start();
    k.tool(&["create", "orders", "2"]);
    let sent = put(&k, "orders", "th", 10, 400);
    let mut d = Daemon::start(&config(
        &k,
        "orders",
        "starting_position: TRIM_HORIZON",
        BUFFER,
    ));
    wait_read(&d, 400, Duration::from_secs(30));
    let ck_dir = d.dir.path().join("state/checkpoints/ks/orders");
    let shard_files = |dir: &std::path::Path| {
        files_under(dir)
            .into_iter()
            .filter(|f| f.starts_with("shardId"))
            .count()
    };
    assert_eq!(
        shard_files(&ck_dir),
        0,
        "nothing is checkpointed before it is delivered"
    );

    d.flush("ks");
    let lines: Vec<String> = delivered(&d).into_iter().map(|(l, _)| l).collect();
    let expected: BTreeSet<String> = sent
        .iter()
        .map(|r| r[0].as_str().expect("data").to_string())
        .collect();
    assert_eq!(lines.len(), 400, "each record once");
    assert_eq!(lines.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert_ordered_per_key(&lines);

    // Each shard's checkpoint is its last record's sequence number (compared as integers).
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    for r in &sent {
        let (seq, shard) = (r[2].as_str().expect("seq"), r[3].as_str().expect("shard"));
        let e = last
            .entry(shard.to_string())
            .or_insert_with(|| seq.to_string());
        if big_cmp(seq, e).is_gt() {
            *e = seq.to_string();
        }
    }
    for (shard, seq) in &last {
        let text =
            std::fs::read_to_string(ck_dir.join(format!("{shard}.json"))).expect("checkpoint");
        let ck: Value = serde_json::from_str(&text).expect("json");
        assert!(
            big_cmp(ck["sequence_number"].as_str().expect("seq"), seq).is_eq(),
            "{shard}: {ck} vs {seq}"
        );
    }

    // After a restart nothing is read twice.
    let status = d.terminate(Duration::from_secs(20));
    assert!(status.success());
    let d = d.restart();
    put(&k, "orders", "more", 10, 20);
    wait_read(&d, 20, Duration::from_secs(30));
    d.flush("ks");
    let lines: Vec<String> = delivered(&d).into_iter().map(|(l, _)| l).collect();
    assert_eq!(
        lines.len(),
        420,
        "no record delivered twice after a clean restart"
    );
}

#[test]
fn latest_starts_after_the_first_start() {
    let k = Kinesalite::start();
    k.tool(&["create", "late", "1"]);
    put(&k, "late", "before", 5, 50);
    std::thread::sleep(Duration::from_millis(1100));
    let d = Daemon::start(&config(&k, "late", "", BUFFER));
    std::thread::sleep(Duration::from_millis(1500));
    put(&k, "late", "after", 5, 50);
    wait_read(&d, 50, Duration::from_secs(30));
    d.flush("ks");
    let lines: Vec<String> = delivered(&d).into_iter().map(|(l, _)| l).collect();
    assert_eq!(lines.len(), 50, "{:?}", &lines[..lines.len().min(3)]);
    assert!(lines.iter().all(|l| l.starts_with("after-")));
}

#[test]
fn at_timestamp_starts_at_the_timestamp() {
    let k = Kinesalite::start();
    k.tool(&["create", "ts", "2"]);
    put(&k, "ts", "old", 5, 40);
    std::thread::sleep(Duration::from_millis(1100));
    let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    std::thread::sleep(Duration::from_millis(1100));
    put(&k, "ts", "new", 5, 40);
    let position = format!("starting_position: AT_TIMESTAMP\n        starting_timestamp: '{ts}'");
    let d = Daemon::start(&config(&k, "ts", &position, BUFFER));
    wait_read(&d, 40, Duration::from_secs(30));
    d.flush("ks");
    let lines: Vec<String> = delivered(&d).into_iter().map(|(l, _)| l).collect();
    assert_eq!(lines.len(), 40);
    assert!(lines.iter().all(|l| l.starts_with("new-")), "{lines:?}");
}

#[test]
fn kpl_aggregates_are_split_among_plain_records() {
    let k = Kinesalite::start();
    k.tool(&["create", "agg", "1"]);
    let out = k.tool(&["put-mixed", "agg", "u", "7", "300", "10"]);
    let users: Vec<String> = serde_json::from_slice::<Value>(&out).expect("json")["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u.as_str().expect("str").to_string())
        .collect();
    let d = Daemon::start(&config(
        &k,
        "agg",
        "starting_position: TRIM_HORIZON",
        BUFFER,
    ));
    // 300 user records in 28 plain records and 28 aggregates (1 + 10 per pair, minus the tail).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        d.flush("ks");
        if delivered(&d).len() >= 300 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let lines: Vec<String> = delivered(&d).into_iter().map(|(l, _)| l).collect();
    assert_eq!(
        lines, users,
        "every user record, in order, aggregates split"
    );
    assert!(
        d.family_sum("firehose_data_read_from_kinesis_stream_records_total") < 100.0,
        "aggregates count as one Kinesis record"
    );
}

#[test]
fn direct_put_is_refused_and_a_missing_stream_stops_the_start() {
    let k = Kinesalite::start();
    k.tool(&["create", "here", "1"]);
    let d = Daemon::start(&config(&k, "here", "", BUFFER));
    let (status, v) = d.api(
        "PutRecord",
        &json!({"DeliveryStreamName": "ks", "Record": {"Data": "eA=="}}).to_string(),
    );
    assert_eq!(
        (status, v["__type"].clone()),
        (400, json!("InvalidArgumentException")),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("KinesisStreamAsSource")
    );
    let (status, _) = d.post("/v1/streams/ks/records", b"x\n");
    assert_eq!(status, 400);
    let (status, _) = d.post("/v1/streams/ks/records", b"");
    assert_eq!(status, 400, "refused even when empty");
    let (_, v) = d.api("DescribeDeliveryStream", r#"{"DeliveryStreamName":"ks"}"#);
    let desc = &v["DeliveryStreamDescription"];
    assert_eq!(desc["DeliveryStreamType"], json!("KinesisStreamAsSource"));
    assert_eq!(
        desc["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"],
        json!("arn:aws:kinesis:us-east-1:000000000000:stream/here")
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let Err(log) = Daemon::launch(&config(&k, "nowhere", "", BUFFER))
        .in_dir(dir)
        .try_start()
    else {
        panic!("a missing stream must stop the start")
    };
    assert!(
        log.contains("error: delivery stream ks: Kinesis stream \"nowhere\" does not exist"),
        "{log}"
    );
}

#[test]
fn throttling_and_expired_iterators_lose_nothing_and_calls_stay_within_5_per_second() {
    let k = Kinesalite::start();
    k.tool(&["create", "thr", "1"]);
    let sent = put(&k, "thr", "t", 5, 3000);
    let proxy = faults::FaultProxy::start(&k.endpoint, 3, 7);
    let cfg = config(
        &k,
        "thr",
        "starting_position: TRIM_HORIZON\n        get_records_limit: 100",
        BUFFER,
    )
    .replace(&k.endpoint, &proxy.endpoint);
    // Small GetRecords answers keep the reader busy for many calls: a backlog to catch up on.
    let d = Daemon::start(&cfg);
    wait_read(&d, 3000, Duration::from_secs(60));
    d.flush("ks");
    let lines: Vec<String> = delivered(&d).into_iter().map(|(l, _)| l).collect();
    let expected: Vec<String> = sent
        .iter()
        .map(|r| r[0].as_str().expect("data").to_string())
        .collect();
    assert_eq!(
        lines, expected,
        "every record once, in order, despite the faults"
    );
    assert!(proxy.injected.load(std::sync::atomic::Ordering::Relaxed) > 0);
    assert!(d.family_sum("firehose_kinesis_get_records_throttled_total") >= 1.0);
    let times = proxy.get_records_at.lock().expect("lock").clone();
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .take_while(|u| u.duration_since(*t) < Duration::from_secs(1))
            .count();
        assert!(
            in_window <= 5,
            "{in_window} GetRecords calls within one second"
        );
    }
}

#[test]
fn resharding_and_a_sigkill_under_load_lose_nothing_and_keep_per_key_order() {
    let k = Kinesalite::start();
    k.tool(&["create", "live", "4"]);
    let produced = tempfile::NamedTempFile::new().expect("tempfile");
    let mut producer = Command::new(python())
        .arg(py_script("kinesis_tool.py"))
        .args([&k.endpoint, "produce", "live", "p", "50", "12"])
        .arg(produced.path())
        .stdout(Stdio::null())
        .spawn()
        .expect("producer");
    let mut d = Daemon::start(&config(
        &k,
        "live",
        "starting_position: TRIM_HORIZON",
        "{size_mib: 1, interval_seconds: 1}",
    ));
    std::thread::sleep(Duration::from_secs(2));
    k.tool(&["split", "live", "shardId-000000000000"]);
    std::thread::sleep(Duration::from_secs(2));
    let open: Vec<String> = serde_json::from_slice(&k.tool(&["shards", "live"])).expect("json");
    let n = open.len();
    k.tool(&["merge", "live", &open[n - 2], &open[n - 1]]);
    std::thread::sleep(Duration::from_secs(2));
    d.kill9();
    let before_kill: BTreeSet<String> =
        files_under(&d.dir.path().join("out")).into_iter().collect();
    let d = d.restart();
    assert!(producer.wait().expect("producer").success());

    let sent: Vec<Value> = std::fs::read_to_string(produced.path())
        .expect("produced")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let expected: BTreeSet<String> = sent
        .iter()
        .map(|r| r[0].as_str().expect("data").to_string())
        .collect();
    assert!(
        expected.len() > 2000,
        "the producer ran: {}",
        expected.len()
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    let lines = loop {
        d.flush("ks");
        let lines = delivered(&d);
        let have: BTreeSet<&str> = lines.iter().map(|(l, _)| l.as_str()).collect();
        if expected.iter().all(|e| have.contains(e.as_str())) {
            break lines;
        }
        let missing = expected
            .iter()
            .filter(|e| !have.contains(e.as_str()))
            .count();
        assert!(
            Instant::now() < deadline,
            "{missing} of {} records never delivered",
            expected.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut seen: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (l, object) in &lines {
        seen.entry(l.as_str()).or_default().push(object.as_str());
    }
    for (line, objects) in &seen {
        assert!(expected.contains(*line), "a record nobody sent: {line}");
        if objects.len() > 1 {
            assert!(
                objects.iter().any(|o| before_kill.contains(*o)),
                "duplicate {line} is not from an object written before the kill: {objects:?}"
            );
        }
    }
    let mut first: Vec<String> = Vec::new();
    let mut taken = BTreeSet::new();
    for (l, _) in &lines {
        if taken.insert(l.clone()) {
            first.push(l.clone());
        }
    }
    assert_ordered_per_key(&first);
}

#[test]
fn sigterm_stops_readers_delivers_and_commits_checkpoints() {
    let k = Kinesalite::start();
    k.tool(&["create", "drain", "2"]);
    let sent = put(&k, "drain", "d", 10, 300);
    let mut d = Daemon::start(&config(
        &k,
        "drain",
        "starting_position: TRIM_HORIZON",
        BUFFER,
    ));
    wait_read(&d, 300, Duration::from_secs(30));
    let status = d.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status}");
    let lines: Vec<String> = delivered(&d).into_iter().map(|(l, _)| l).collect();
    assert_eq!(lines.len(), 300, "the buffer was delivered on SIGTERM");
    let ck_dir = d.dir.path().join("state/checkpoints/ks/drain");
    let shards: BTreeSet<&str> = sent.iter().map(|r| r[3].as_str().expect("shard")).collect();
    for shard in shards {
        let last = sent
            .iter()
            .filter(|r| r[3] == json!(shard))
            .map(|r| r[2].as_str().expect("seq"))
            .max_by(|a, b| big_cmp(a, b))
            .expect("a record");
        let ck: Value = serde_json::from_str(
            &std::fs::read_to_string(ck_dir.join(format!("{shard}.json"))).expect("checkpoint"),
        )
        .expect("json");
        assert!(
            big_cmp(ck["sequence_number"].as_str().expect("seq"), last).is_eq(),
            "{shard}: {ck}"
        );
    }
}

#[test]
fn the_standard_service_endpoint_variable_reaches_kinesis() {
    let k = Kinesalite::start();
    k.tool(&["create", "envs", "1"]);
    put(&k, "envs", "e", 3, 30);
    let cfg = config(&k, "envs", "starting_position: TRIM_HORIZON", BUFFER)
        .replace(&format!("endpoint_url: '{}'", k.endpoint), "");
    assert!(!cfg.contains(&k.endpoint));
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::launch(&cfg)
        .in_dir(dir)
        .env("AWS_ENDPOINT_URL_KINESIS", &k.endpoint)
        .try_start()
        .unwrap_or_else(|log| panic!("did not start:\n{log}"));
    wait_read(&d, 30, Duration::from_secs(30));
    d.flush("ks");
    assert_eq!(delivered(&d).len(), 30);
}

#[test]
fn a_buffer_larger_than_the_in_memory_bound_still_seals_on_size() {
    let k = Kinesalite::start();
    k.tool(&["create", "big", "1"]);
    // ~3 MiB of records; 1 MiB held in memory at most, 2 MiB buffers: objects must come from
    // the size trigger, not the 900 s interval.
    let out = k.tool(&["put-mixed", "big", &"w".repeat(1000), "3", "3000", "1"]);
    assert!(!out.is_empty());
    let cfg = config(
        &k,
        "big",
        "starting_position: TRIM_HORIZON\n        max_buffered_mib: 1\n        get_records_limit: 100",
        "{size_mib: 2, interval_seconds: 900}",
    );
    let d = Daemon::start(&cfg);
    let outdir = d.dir.path().join("out");
    let deadline = Instant::now() + Duration::from_secs(30);
    while files_under(&outdir).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no object sealed on size: the reader is stuck behind the buffer"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A Kinesis-sourced stream created through the API names its source by ARN, as AWS requires;
/// kinesalite takes only StreamName, and the stream still reads from it (the name is taken
/// from the ARN when the server refuses StreamARN).
#[test]
fn a_stream_created_through_the_api_reads_from_kinesalite_by_its_arn() {
    let k = Kinesalite::start();
    k.tool(&["create", "by-arn", "1"]);
    let moto = Moto::start();
    moto.create_bucket("lake");
    let cfg = "listen: 127.0.0.1:0
state_dir: '{dir}/state'
aws: {region: us-east-1, force_path_style: true}
delivery_streams: []
";
    // Each service's endpoint from the SDKs' standard variables (an API-created stream has
    // no endpoint key of its own).
    let d = Daemon::launch(cfg)
        .env("AWS_ENDPOINT_URL_KINESIS", &k.endpoint)
        .env("AWS_ENDPOINT_URL_S3", &moto.endpoint)
        .start();
    let request = json!({
        "DeliveryStreamName": "ks",
        "DeliveryStreamType": "KinesisStreamAsSource",
        "KinesisStreamSourceConfiguration": {
            "KinesisStreamARN": "arn:aws:kinesis:us-east-1:123456789012:stream/by-arn",
            "RoleARN": "arn:aws:iam::123456789012:role/firehose"
        },
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": "arn:aws:s3:::lake", "Prefix": "ks/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 900}
        }
    });
    let (status, v) = d.api("CreateDeliveryStream", &request.to_string());
    assert_eq!(status, 200, "{v}");
    let desc = d.wait_active("ks");
    assert_eq!(
        desc["DeliveryStreamDescription"]["DeliveryStreamStatus"], "ACTIVE",
        "{desc}"
    );
    // LATEST, as AWS starts an API-created stream: put until the reader sees records.
    let deadline = Instant::now() + Duration::from_secs(30);
    while d.family_sum("firehose_data_read_from_kinesis_stream_records_total") < 1.0 {
        assert!(Instant::now() < deadline, "nothing read from kinesalite");
        put(&k, "by-arn", "a", 2, 5);
        std::thread::sleep(Duration::from_millis(300));
    }
    d.flush("ks");
    let keys = moto.keys("lake");
    assert!(keys.iter().any(|k| k.starts_with("ks/")), "{keys:?}");
}
