//! The promise of the spool: an acknowledged record is never lost, whatever kills the daemon;
//! duplicates come only from objects written but not yet marked delivered; a full spool slows
//! producers down instead of dropping anything; delivered records give their space back.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;
use serde_json::{Value, json};

fn config(extra: &str, buffering: &str) -> String {
    format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
{extra}
delivery_streams:
  - name: d
    source: {{direct_put: {{}}}}
    processing: {{append_delimiter_to_record: true}}
    destinations:
      - directory: '{{dir}}/out'
        buffering: {buffering}
"
    )
}

fn batch(records: &[String]) -> String {
    let recs: Vec<Value> = records
        .iter()
        .map(|r| json!({"Data": base64(r.as_bytes())}))
        .collect();
    json!({"DeliveryStreamName": "d", "Records": recs}).to_string()
}

/// Every line of every delivered object: line -> keys of the objects holding it.
fn delivered_lines(out: &std::path::Path) -> BTreeMap<String, Vec<String>> {
    let mut lines: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in files_under(out) {
        let text = std::fs::read_to_string(out.join(&key)).expect("object");
        for line in text.lines() {
            lines.entry(line.to_string()).or_default().push(key.clone());
        }
    }
    lines
}

/// PutRecordBatch without panicking on a dead daemon: Some(acked) or None.
fn try_put(url: &str, body: &str) -> Option<bool> {
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

#[test]
fn sigkill_under_load_loses_no_acknowledged_record() {
    let mut d = Daemon::start(&config("", "{size_mib: 1, interval_seconds: 900}"));
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (url, acked, stop) = (d.url.clone(), acked.clone(), stop.clone());
        clients.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let records: Vec<String> = (0..50)
                    .map(|j| format!("client{c}-call{i}-rec{j}-{}", "p".repeat(400)))
                    .collect();
                match try_put(&url, &batch(&records)) {
                    Some(true) => acked.lock().expect("lock").extend(records),
                    Some(false) => {}
                    None => break,
                }
                i += 1;
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(2500));
    d.kill9();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client");
    }
    let out = d.dir.path().join("out");
    let before_kill: BTreeSet<String> = files_under(&out).into_iter().collect();
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() > 1000,
        "the load ran: {} records acknowledged",
        acked.len()
    );
    // Objects written before the kill are usual but depend on the machine's speed; the
    // duplicate check below holds either way.

    let d = d.restart();
    d.flush("d");
    let lines = delivered_lines(&out);
    let missing: Vec<&String> = acked.iter().filter(|r| !lines.contains_key(*r)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged records lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    for (line, keys) in &lines {
        assert!(
            line.starts_with("client"),
            "a record nobody sent: {line:.60}"
        );
        if keys.len() > 1 {
            assert!(
                keys.iter().any(|k| before_kill.contains(k)),
                "duplicate {line:.40} is not from an object written before the kill: {keys:?}"
            );
        }
    }
    assert!(
        files_under(&d.dir.path().join("state/staging")).is_empty(),
        "staging leftovers of the killed run were removed"
    );
}

fn spool_bytes(d: &Daemon) -> u64 {
    let dir = d.dir.path().join("state/spool/d");
    files_under(&dir)
        .iter()
        .filter(|f| f.ends_with(".seg"))
        .map(|f| std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0))
        .sum()
}

#[test]
fn delivered_records_give_their_spool_space_back() {
    let d = Daemon::start(&config(
        "spool: {segment_size_mib: 1}",
        "{size_mib: 128, interval_seconds: 900}",
    ));
    let line = format!("{}\n", "s".repeat(1000));
    let body = line.repeat(1024);
    for _ in 0..5 {
        assert_eq!(d.post("/v1/streams/d/records", body.as_bytes()).0, 200);
    }
    let before = spool_bytes(&d);
    assert!(
        before > 5 * 1_000_000,
        "the spool holds what is not delivered: {before}"
    );
    d.flush("d");
    let after = spool_bytes(&d);
    assert_eq!(
        after, 0,
        "everything delivered, every segment reclaimed (was {before})"
    );
    assert_eq!(
        delivered_lines(&d.dir.path().join("out"))
            .values()
            .map(Vec::len)
            .sum::<usize>(),
        5 * 1024
    );
}

#[test]
fn a_full_spool_slows_producers_down_and_keeps_what_it_acknowledged() {
    let d = Daemon::start(&config(
        "spool: {max_size_mib: 1, segment_size_mib: 1}",
        "{size_mib: 128, interval_seconds: 900}",
    ));
    let mut accepted = Vec::new();
    let mut refused = None;
    for b in 0..20 {
        let records: Vec<String> = (0..100)
            .map(|i| format!("b{b}-r{i}-{}", "f".repeat(1000)))
            .collect();
        let (status, v) = d.api("PutRecordBatch", &batch(&records));
        assert_eq!(status, 200, "{v}");
        if v["FailedPutCount"] == json!(0) {
            accepted.extend(records.clone());
        } else {
            refused = Some(v);
            break;
        }
    }
    let v = refused.expect("the 1 MiB budget fills up");
    assert_eq!(v["FailedPutCount"], json!(100));
    let entry = &v["RequestResponses"][0];
    assert_eq!(entry["ErrorCode"], json!("ServiceUnavailableException"));
    assert_eq!(entry["ErrorMessage"], json!("Slow down."));
    assert!(entry.get("RecordId").is_none());

    // Less than one batch is left: a record bigger than that does not fit either.
    let big = "b".repeat(150_000);
    let (status, v) = d.api(
        "PutRecord",
        &json!({"DeliveryStreamName": "d", "Record": {"Data": base64(big.as_bytes())}}).to_string(),
    );
    assert_eq!(
        (status, v["__type"].clone()),
        (503, json!("ServiceUnavailableException")),
        "{v}"
    );
    assert_eq!(v["message"], json!("Slow down."));
    let (status, body) = d.post("/v1/streams/d/records", big.as_bytes());
    assert_eq!(status, 503, "{body}");
    assert!(d.metric("firehose_throttled_records_total{delivery_stream=\"d\"}") >= 102.0);

    // Delivering frees the budget; nothing acknowledged was dropped.
    d.flush("d");
    let lines = delivered_lines(&d.dir.path().join("out"));
    assert_eq!(lines.len(), accepted.len());
    assert!(accepted.iter().all(|r| lines.contains_key(r)));
    let (status, v) = d.api("PutRecordBatch", &batch(&accepted[..10]));
    assert_eq!(
        (status, v["FailedPutCount"].clone()),
        (200, json!(0)),
        "accepted again: {v}"
    );
}

/// A staging failure that is not a full disk (its folder gone) stops the process: it exits 1
/// with the reason once, moves no cursor past what it could not stage, and after a restart
/// every acknowledged record is delivered.
#[test]
fn a_staging_failure_stops_the_daemon_and_the_restart_delivers_everything() {
    let cfg = config("", "{size_mib: 1, interval_seconds: 900}");
    let mut d = Daemon::start(&cfg);
    let staging = d.dir.path().join("state/staging/d/0");
    assert!(staging.is_dir(), "the destination's staging folder");
    std::fs::remove_dir_all(&staging).expect("staging folder removed");
    let records: Vec<String> = (0..20).map(|i| format!("{{\"n\":{i}}}")).collect();
    let (status, v) = d.api("PutRecordBatch", &batch(&records));
    assert_eq!(
        (status, v["FailedPutCount"].clone()),
        (200, json!(0)),
        "{v}"
    );
    let exit = d.wait_exit(Duration::from_secs(30));
    assert_eq!(
        exit.code(),
        Some(1),
        "a staging failure ends the process with 1"
    );
    let log = d.logs();
    assert_eq!(
        log.matches("stopping: records past the delivered cursor")
            .count(),
        1,
        "the reason is logged once:\n{log}"
    );
    assert!(
        log.contains("error: destination d[0]: cannot stage records on local disk"),
        "{log}"
    );

    let d = d.restart();
    d.flush("d");
    let lines = delivered_lines(&d.dir.path().join("out"));
    let got: BTreeSet<&String> = lines.keys().collect();
    assert_eq!(
        got,
        records.iter().collect(),
        "every acknowledged record, after the restart"
    );
}
