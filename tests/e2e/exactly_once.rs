//! `delivery: exactly_once`: a crash and replay never writes a record into a second object.
//! Twenty kill -9 cycles under load, into S3 (s3s-fs: GZIP with a source-record backup; GZIP
//! with dynamic partitioning; Parquet, with records that fail the schema going to the error
//! prefix): every acknowledged record is delivered, and no record is in two objects, backups
//! and error records included. An answer to CompleteMultipartUpload lost to
//! the network, then a kill -9 before the retry: the replay finds the object there and writes
//! nothing twice. A Kinesis source (KPL aggregates among plain records) split and merged during
//! twenty kill -9 cycles, into S3 and a directory: every record put is delivered once, each
//! object holding one shard's.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::faults::LostAnswerProxy;
use crate::support::*;
use serde_json::{Value, json};

fn config(s3: &str) -> String {
    format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
relax_aws_limits: true
delivery_streams:
  - name: eo
    source: {{direct_put: {{}}}}
    processing:
      append_delimiter_to_record: true
      metadata_extraction: {{query: '{{k: .k}}'}}
    destinations:
      - s3: {{bucket: plain, endpoint_url: '{s3}'}}
        delivery: exactly_once
        compression: GZIP
        prefix: 'data/'
        source_record_backup: {{prefix: 'backup/'}}
        buffering: {{size_mib: 1, interval_seconds: 1}}
      - s3: {{bucket: parts, endpoint_url: '{s3}'}}
        delivery: exactly_once
        compression: GZIP
        prefix: 'k=!{{partitionKeyFromQuery:k}}/'
        error_output_prefix: 'errors/!{{firehose:error-output-type}}/'
        dynamic_partitioning: {{enabled: true}}
        buffering: {{size_mib: 1, interval_seconds: 1}}
      - s3: {{bucket: parquet, endpoint_url: '{s3}'}}
        delivery: exactly_once
        prefix: 'data/'
        error_output_prefix: 'errors/!{{firehose:error-output-type}}/'
        buffering: {{size_mib: 1, interval_seconds: 1}}
        data_format_conversion:
          schema:
            columns: [{{name: c, type: int}}, {{name: i, type: bigint}}, {{name: k, type: string}}, {{name: p, type: string}}]
          output: {{parquet: {{}}}}
aws: {{force_path_style: true}}
"
    )
}

/// PutRecordBatch without panicking on a dead daemon: Some(acknowledged) or None.
pub(crate) fn try_put(url: &str, records: &[String]) -> Option<bool> {
    let recs: Vec<Value> = records
        .iter()
        .map(|r| json!({"Data": base64(r.as_bytes())}))
        .collect();
    let body = json!({"DeliveryStreamName": "eo", "Records": recs}).to_string();
    let result = std::panic::catch_unwind(|| {
        http(
            url,
            "POST",
            &[("x-amz-target", "Firehose_20150804.PutRecordBatch")],
            body.as_bytes(),
        )
    });
    let (status, text) = result.ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    Some(status == 200 && v["FailedPutCount"] == json!(0))
}

/// Two producers for `run`, each record `{"c":client,"i":n,"k":key,"p":pad}`; what the
/// daemon acknowledged goes into `acked`.
pub(crate) fn load(
    url: &str,
    run: Duration,
    next: &Arc<Mutex<u64>>,
    acked: &Arc<Mutex<BTreeSet<u64>>>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..2 {
        let (url, next, acked, stop) = (url.to_string(), next.clone(), acked.clone(), stop.clone());
        clients.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let first = {
                    let mut n = next.lock().expect("lock");
                    *n += 50;
                    *n - 50
                };
                let ids: Vec<u64> = (first..first + 50).collect();
                let records: Vec<String> = ids
                    .iter()
                    .map(|i| {
                        let p = "x".repeat(150 + (*i as usize % 50));
                        // Every 97th record does not fit the Parquet schema (c is an int).
                        let c = if bad(*i) {
                            "\"x\"".to_string()
                        } else {
                            c.to_string()
                        };
                        format!(r#"{{"c":{c},"i":{i},"k":"k{}","p":"{p}"}}"#, i % 5)
                    })
                    .collect();
                match try_put(&url, &records) {
                    Some(true) => acked.lock().expect("lock").extend(ids),
                    Some(false) => {}
                    None => break,
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }));
    }
    std::thread::sleep(run);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
}

pub(crate) fn bad(i: u64) -> bool {
    i.is_multiple_of(97)
}

/// Record id -> how many times it is in the objects of `bucket` whose keys start with `prefix`.
fn counts_in_bucket(s3: &S3sFs, bucket: &str, prefix: &str) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for (key, lines) in dump_lines(&s3.endpoint, bucket, "GZIP") {
        assert!(!key.starts_with("errors/"), "an error object: {key}");
        if !key.starts_with(prefix) {
            continue;
        }
        // Backups hold the records concatenated as received (no delimiter added).
        for line in lines {
            for v in serde_json::Deserializer::from_str(&line).into_iter::<Value>() {
                let v = v.expect("a record");
                *counts.entry(v["i"].as_u64().expect("i")).or_default() += 1;
            }
        }
    }
    counts
}

/// Record id -> how many times its error record is in the error objects under `errors`.
fn counts_in_errors(errors: &std::path::Path) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for key in files_under(errors) {
        assert!(key.starts_with("format-conversion-failed/"), "{key}");
        let text = std::fs::read_to_string(errors.join(&key)).expect("error object");
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).expect("an error record");
            let raw = base64_decode(v["rawData"].as_str().expect("rawData"));
            let record: Value = serde_json::from_slice(&raw).expect("the record");
            *counts.entry(record["i"].as_u64().expect("i")).or_default() += 1;
        }
    }
    counts
}

/// Record id -> how many times it is in the Parquet files under `out` (pyarrow and DuckDB).
fn counts_in_parquet(out: &std::path::Path) -> BTreeMap<u64, usize> {
    let files: Vec<String> = files_under(out)
        .into_iter()
        .map(|k| out.join(k).display().to_string())
        .collect();
    let run = run_output(
        Command::new(python())
            .arg(py_script("parquet_read.py"))
            .args(&files),
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let v: Value = serde_json::from_slice(&run.stdout).expect("json");
    assert_eq!(v["pyarrow"]["rows"], v["duckdb"]["rows"]);
    let mut counts = BTreeMap::new();
    for row in v["pyarrow"]["rows"].as_array().expect("rows") {
        *counts.entry(row["i"].as_u64().expect("i")).or_default() += 1;
    }
    counts
}

fn keys(s3: &S3sFs, bucket: &str) -> Vec<String> {
    let out = s3tool(&s3.endpoint, &["list", bucket]);
    let v: Value = serde_json::from_slice(&out).expect("list prints JSON");
    v.as_array()
        .expect("a list")
        .iter()
        .map(|o| o["key"].as_str().expect("key").to_string())
        .collect()
}

pub(crate) fn assert_once(what: &str, counts: &BTreeMap<u64, usize>, acked: &BTreeSet<u64>) {
    let missing: Vec<&u64> = acked.iter().filter(|i| !counts.contains_key(i)).collect();
    let twice: Vec<(&u64, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        missing.is_empty(),
        "{what}: {} acknowledged records missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        twice.is_empty(),
        "{what}: {} records delivered more than once, e.g. {:?}",
        twice.len(),
        &twice[..twice.len().min(5)]
    );
}

#[test]
fn twenty_kill_9_cycles_under_load_deliver_every_acknowledged_record_once() {
    let s3 = S3sFs::start();
    s3.create_bucket("plain");
    s3.create_bucket("parts");
    s3.create_bucket("parquet");
    let mut d = Daemon::start(&config(&s3.endpoint));
    // The start-up says what it found (the log is read as the daemon writes it).
    d.wait_for_log(
        "exactly-once delivery: conditional writes supported",
        Duration::from_secs(10),
    );
    let (next, acked) = (
        Arc::new(Mutex::new(0)),
        Arc::new(Mutex::new(BTreeSet::new())),
    );
    let mut already_there = 0.0;
    for cycle in 0..20 {
        // 1.0-1.9 s of load: kills land before, during and after uploads.
        let run = Duration::from_millis(1000 + (cycle * 347) % 900);
        load(&d.url, run, &next, &acked);
        already_there += (0..3)
            .map(|i| {
                d.metric(&format!(
                    "firehose_delivery_objects_already_there_total{{delivery_stream=\"eo\",destination=\"{i}\"}}"
                ))
            })
            .sum::<f64>();
        d.kill9();
        d = d.restart();
    }
    d.flush("eo");
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() > 20_000, "the load ran: {}", acked.len());
    assert_once("GZIP", &counts_in_bucket(&s3, "plain", "data/"), &acked);
    assert_once("backup", &counts_in_bucket(&s3, "plain", "backup/"), &acked);
    assert_once("partitioned", &counts_in_bucket(&s3, "parts", "k="), &acked);
    let (bad_ones, good): (BTreeSet<u64>, BTreeSet<u64>) = acked.iter().partition(|i| bad(**i));
    assert!(bad_ones.len() > 100, "{} bad records", bad_ones.len());
    let out = tempfile::tempdir().expect("tempdir");
    let out = out.path();
    s3tool(
        &s3.endpoint,
        &["download", "parquet", &out.display().to_string()],
    );
    assert_once("Parquet", &counts_in_parquet(&out.join("data")), &good);
    assert_once(
        "error records",
        &counts_in_errors(&out.join("errors")),
        &bad_ones,
    );
    // How often a kill landed between an upload and the cursor's move depends on the machine
    // (the lost-answer test below makes that case happen on purpose); with at_least_once the
    // duplicate checks above fail (thousands of records twice).
    println!("objects found already there after a restart: {already_there}");
}

#[test]
fn a_lost_answer_to_complete_multipart_upload_then_a_crash_writes_the_object_once() {
    let s3 = S3sFs::start();
    s3.create_bucket("big");
    // The first CompleteMultipartUpload of an object under the date prefix (not the start-up
    // probe's, under .firehosed/) reaches S3; its answer never comes back.
    let proxy = LostAnswerProxy::start(&s3.endpoint, "POST /big/2", "uploadId=", 1);
    let d = Daemon::start(&format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
delivery_streams:
  - name: big
    source: {{direct_put: {{}}}}
    processing: {{append_delimiter_to_record: true}}
    destinations:
      - s3: {{bucket: big, endpoint_url: '{}'}}
        delivery: exactly_once
        buffering: {{size_mib: 24, interval_seconds: 900}}
aws: {{force_path_style: true}}
",
        proxy.endpoint
    ));
    // 20 MiB of records: one object, uploaded in parts (16 MiB and more).
    let line = |i: usize| format!("{i:08}-{}\n", "r".repeat(1015));
    for chunk in 0..20 {
        let body: String = (chunk * 1024..(chunk + 1) * 1024).map(line).collect();
        let (status, text) = d.post("/v1/streams/big/records", body.as_bytes());
        assert_eq!(status, 200, "{text}");
    }
    // Flush in the background: it waits for the upload, whose answer is held.
    let flush_url = format!("{}/v1/streams/big/flush", d.url);
    std::thread::spawn(move || {
        let _ = std::panic::catch_unwind(|| http(&flush_url, "POST", &[], b""));
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.held() == 0 {
        assert!(
            Instant::now() < deadline,
            "CompleteMultipartUpload never came"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(keys(&s3, "big").len(), 1, "S3 completed the upload");
    let (dir, config) = d.stop_for_restart();
    let d = Daemon::launch(&config).in_dir(dir).start();
    d.flush("big");
    let objects = keys(&s3, "big");
    assert_eq!(objects.len(), 1, "one object, not two: {objects:?}");
    let lines: Vec<String> = dump_lines(&s3.endpoint, "big", "UNCOMPRESSED")
        .into_values()
        .flatten()
        .collect();
    let unique: BTreeSet<&String> = lines.iter().collect();
    assert_eq!((lines.len(), unique.len()), (20 * 1024, 20 * 1024));
    assert_eq!(
        d.metric(
            "firehose_delivery_objects_already_there_total{delivery_stream=\"big\",destination=\"0\"}"
        ),
        1.0,
        "the replay found the object there"
    );
}

fn kinesis_config(k: &Kinesalite, s3: &str) -> String {
    format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
relax_aws_limits: true
delivery_streams:
  - name: ks
    source:
      kinesis_stream:
        stream_name: eo
        endpoint_url: '{}'
        starting_position: TRIM_HORIZON
        discovery_interval_seconds: 1
    processing: {{append_delimiter_to_record: true}}
    destinations:
      - s3: {{bucket: kinesis, endpoint_url: '{s3}'}}
        delivery: exactly_once
        compression: GZIP
        prefix: 'data/'
        source_record_backup: {{prefix: 'backup/'}}
        buffering: {{size_mib: 1, interval_seconds: 1}}
      - directory: '{{dir}}/out'
        delivery: exactly_once
        buffering: {{size_mib: 1, interval_seconds: 3}}
aws: {{force_path_style: true}}
",
        k.endpoint
    )
}

/// Record -> how many times it is in `objects` (key -> lines); a backup's records are
/// concatenated as received, each starting with `p-`.
fn kinesis_counts(
    objects: &BTreeMap<String, Vec<String>>,
    prefix: &str,
) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (_, lines) in objects.iter().filter(|(k, _)| k.starts_with(prefix)) {
        for line in lines {
            for r in line.split("p-").filter(|r| !r.is_empty()) {
                *counts.entry(format!("p-{r}")).or_default() += 1;
            }
        }
    }
    counts
}

fn assert_each_once(what: &str, counts: &BTreeMap<String, usize>, sent: &BTreeMap<String, String>) {
    let missing = sent.keys().filter(|r| !counts.contains_key(*r)).count();
    let twice: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    let unknown: Vec<&String> = counts.keys().filter(|r| !sent.contains_key(*r)).collect();
    assert_eq!(
        missing,
        0,
        "{what}: {missing} of {} records missing",
        sent.len()
    );
    assert!(
        twice.is_empty(),
        "{what}: {} records delivered more than once, e.g. {:?}",
        twice.len(),
        &twice[..twice.len().min(5)]
    );
    assert!(
        unknown.is_empty(),
        "{what}: records nobody sent: {unknown:?}"
    );
}

#[test]
fn a_kinesis_source_split_and_merged_under_twenty_kill_9_cycles_delivers_every_record_once() {
    let k = Kinesalite::start();
    k.tool(&["create", "eo", "2"]);
    let s3 = S3sFs::start();
    s3.create_bucket("kinesis");
    let work = tempfile::tempdir().expect("tempdir");
    let (produced, stop) = (work.path().join("produced"), work.path().join("stop"));
    let mut producer = Command::new(python())
        .arg(py_script("kinesis_tool.py"))
        .args([&k.endpoint, "produce", "eo", "p", "20", "600"])
        .arg(&produced)
        .arg("--aggregate")
        .arg("--stop-file")
        .arg(&stop)
        .stdout(Stdio::null())
        .spawn()
        .expect("producer");
    let mut d = Daemon::start(&kinesis_config(&k, &s3.endpoint));
    // The start-up says how it cuts objects (the log is read as the daemon writes it).
    d.wait_for_log("objects are cut per shard", Duration::from_secs(10));
    let mut already_there = 0.0;
    for cycle in 0..20u64 {
        if cycle == 6 {
            k.tool(&["split", "eo", "shardId-000000000000"]);
        }
        if cycle == 13 {
            let open: Vec<String> =
                serde_json::from_slice(&k.tool(&["shards", "eo"])).expect("json");
            assert_eq!(open.len(), 3, "after the split: {open:?}");
            k.tool(&["merge", "eo", &open[0], &open[1]]);
        }
        // 1.0-3.9 s: the directory (3 s) often has not delivered what S3 (1 s) has, so the
        // checkpoints lag behind objects already written.
        std::thread::sleep(Duration::from_millis(1000 + (cycle * 347) % 2900));
        already_there += (0..2)
            .map(|i| {
                d.metric(&format!(
                    "firehose_delivery_objects_already_there_total{{delivery_stream=\"ks\",destination=\"{i}\"}}"
                ))
            })
            .sum::<f64>();
        d.kill9();
        d = d.restart();
    }
    std::fs::write(&stop, b"").expect("stop file");
    assert!(producer.wait().expect("producer").success());
    // Record -> the shard Kinesis put it in.
    let sent: BTreeMap<String, String> = std::fs::read_to_string(&produced)
        .expect("produced")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json line");
            let field = |i: usize| v[i].as_str().expect("a string").to_string();
            (field(0), field(3))
        })
        .collect();
    assert!(sent.len() > 20_000, "the producer ran: {}", sent.len());
    let out = d.dir.path().join("out");
    let read_dir = || -> BTreeMap<String, Vec<String>> {
        files_under(&out)
            .into_iter()
            .map(|f| {
                let text = std::fs::read_to_string(out.join(&f)).expect("object");
                (f, text.lines().map(str::to_string).collect())
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let local = loop {
        d.flush("ks");
        let objects = read_dir();
        let counts = kinesis_counts(&objects, "");
        if sent.keys().all(|r| counts.contains_key(r)) || Instant::now() > deadline {
            break objects;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    d.flush("ks");
    assert_each_once("directory", &kinesis_counts(&local, ""), &sent);
    let bucket = dump_lines(&s3.endpoint, "kinesis", "GZIP");
    assert_each_once("GZIP", &kinesis_counts(&bucket, "data/"), &sent);
    assert_each_once("backup", &kinesis_counts(&bucket, "backup/"), &sent);
    // One shard per object: its identity is a range of that shard's sequence numbers.
    let mut shards_seen = BTreeSet::new();
    for (key, lines) in &local {
        let shards: BTreeSet<&String> = lines.iter().map(|l| &sent[l]).collect();
        assert_eq!(shards.len(), 1, "{key} mixes shards: {shards:?}");
        shards_seen.extend(shards);
    }
    assert_eq!(
        shards_seen.len(),
        5,
        "2 shards, 2 children, 1 merged: {shards_seen:?}"
    );
    // With at_least_once the checks above fail: about 50,000 records twice in S3, 5,000 in the
    // directory (the directory's 3 s interval holds the checkpoints behind S3's objects).
    println!("objects found already there after a restart: {already_there}");
}
