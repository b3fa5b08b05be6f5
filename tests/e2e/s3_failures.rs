//! S3 failures during delivery: the object is retried with backoff until S3 is back, then
//! written once, whole; the failures show in the metrics.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::support::producers::Producers;
use crate::support::*;

#[test]
fn delivery_is_retried_until_s3_comes_back() {
    let mut moto = Moto::start();
    moto.create_bucket("flaky");
    let port = moto.port;
    let config = format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
aws: {{endpoint_url: '{}', force_path_style: true}}
delivery_streams:
  - name: f
    source: {{direct_put: {{}}}}
    processing: {{append_delimiter_to_record: true}}
    destinations:
      - s3: {{bucket: flaky}}
        compression: gzip
        buffering: {{size_mib: 1, interval_seconds: 900}}
",
        moto.endpoint
    );
    let mut d = Daemon::start(&config);
    let body: String = (0..1000).map(|i| format!("record-{i}\n")).collect();
    assert_eq!(d.post("/v1/streams/f/records", body.as_bytes()).0, 200);

    moto.stop();
    let url = d.url.clone();
    let flush =
        std::thread::spawn(move || http(&format!("{url}/v1/streams/f/flush"), "POST", &[], b""));
    let failures =
        "firehose_delivery_to_s3_failures_total{delivery_stream=\"f\",destination=\"0\"}";
    let deadline = Instant::now() + Duration::from_secs(30);
    while d.metric(failures) < 2.0 {
        assert!(Instant::now() < deadline, "no failed attempts were counted");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!flush.is_finished(), "flush waits for the delivery");

    let moto = Moto::start_on(port);
    moto.create_bucket("flaky");
    let (status, text) = flush.join().expect("flush thread");
    assert_eq!(status, 200, "{text}");
    let keys = moto.keys("flaky");
    assert_eq!(keys.len(), 1, "written once: {keys:?}");
    let (decoded, _) = py_decode("GZIP", &moto.get("flaky", &keys[0]));
    assert_eq!(decoded, body.as_bytes());
    assert_eq!(
        d.metric("firehose_delivery_to_s3_success_total{delivery_stream=\"f\",destination=\"0\"}"),
        1.0
    );
    d.wait_for_log("delivery failed; retrying", Duration::from_secs(5));
    d.wait_for_log("delivery recovered", Duration::from_secs(5));
}

#[test]
fn a_30_second_s3_outage_under_load_loses_and_duplicates_nothing() {
    let mut s3 = S3sFs::start();
    s3.create_bucket("outage");
    let config = format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
spool: {{max_size_mib: 8, segment_size_mib: 1}}
aws: {{endpoint_url: '{}', force_path_style: true}}
delivery_streams:
  - name: o
    source: {{direct_put: {{}}}}
    processing: {{append_delimiter_to_record: true}}
    destinations:
      - s3: {{bucket: outage}}
        compression: gzip
        buffering: {{size_mib: 1, interval_seconds: 1}}
",
        s3.endpoint
    );
    let mut d = Daemon::start(&config);
    let producers = Producers::start(&d.url, "o", 2);
    std::thread::sleep(Duration::from_secs(3));
    let delivered_before =
        d.metric("firehose_delivery_to_s3_records_total{delivery_stream=\"o\",destination=\"0\"}");
    assert!(delivered_before > 0.0, "delivery ran before the outage");

    s3.stop();
    let outage = Instant::now();
    let mut peak_rss_kib = 0;
    while outage.elapsed() < Duration::from_secs(30) {
        peak_rss_kib = peak_rss_kib.max(d.rss_kib());
        std::thread::sleep(Duration::from_millis(250));
    }
    let throttled_during = producers.throttled.load(Ordering::Relaxed);
    s3.resume();
    std::thread::sleep(Duration::from_secs(3));
    let (acked, throttled) = producers.finish();
    d.flush("o");

    assert!(
        throttled_during > 0,
        "producers saw backpressure during the outage"
    );
    assert!(throttled >= throttled_during);
    assert!(
        peak_rss_kib < 128 * 1024,
        "memory stayed bounded: {} MiB",
        peak_rss_kib / 1024
    );
    assert!(
        d.metric("firehose_delivery_to_s3_failures_total{delivery_stream=\"o\",destination=\"0\"}")
            > 0.0
    );
    d.wait_for_log("delivery recovered", Duration::from_secs(5));

    let objects = dump_lines(&s3.endpoint, "outage", "GZIP");
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for lines in objects.values() {
        for l in lines {
            *seen.entry(l.clone()).or_default() += 1;
        }
    }
    let lost = acked.iter().filter(|r| !seen.contains_key(*r)).count();
    let duplicated = seen.values().filter(|n| **n > 1).count();
    assert_eq!(
        lost,
        0,
        "acknowledged records lost ({} acknowledged)",
        acked.len()
    );
    assert_eq!(duplicated, 0, "records delivered twice");
    assert!(acked.len() > 5_000, "the load ran: {}", acked.len());
    eprintln!(
        "outage: {} records acknowledged, {throttled} refused with Slow down. and retried, peak RSS {} MiB, {} objects",
        acked.len(),
        peak_rss_kib / 1024,
        objects.len()
    );
}

#[test]
fn a_permanent_failure_is_logged_once_per_interval_and_keeps_the_records() {
    let moto = Moto::start();
    moto.create_bucket("gone");
    let config = format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
aws: {{endpoint_url: '{}', force_path_style: true}}
delivery_streams:
  - name: g
    source: {{direct_put: {{}}}}
    destinations:
      - s3: {{bucket: gone}}
        buffering: {{size_mib: 1, interval_seconds: 900}}
",
        moto.endpoint
    );
    let mut d = Daemon::start(&config);
    s3tool(&moto.endpoint, &["delete-bucket-force", "gone"]);
    assert_eq!(d.post("/v1/streams/g/records", b"kept-1\nkept-2\n").0, 200);
    let url = d.url.clone();
    let flush =
        std::thread::spawn(move || http(&format!("{url}/v1/streams/g/flush"), "POST", &[], b""));
    let failures =
        "firehose_delivery_to_s3_failures_total{delivery_stream=\"g\",destination=\"0\"}";
    let deadline = Instant::now() + Duration::from_secs(30);
    while d.metric(failures) < 3.0 {
        assert!(Instant::now() < deadline, "attempts are retried");
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs = d.logs();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("delivery failed"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one line per 30 s, not one per attempt: {lines:#?}"
    );
    assert!(
        lines[0].contains("transient=false") && lines[0].contains("NoSuchBucket"),
        "the reason is logged: {}",
        lines[0]
    );

    moto.create_bucket("gone");
    let (status, body) = flush.join().expect("flush");
    assert_eq!(status, 200, "{body}");
    let keys = moto.keys("gone");
    assert_eq!(keys.len(), 1);
    assert_eq!(moto.get("gone", &keys[0]), b"kept-1kept-2");
}

#[test]
fn sigterm_during_an_outage_exits_within_the_drain_timeout_and_delivers_after_restart() {
    let mut moto = Moto::start();
    moto.create_bucket("later");
    let port = moto.port;
    let config = format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
drain_timeout_seconds: 2
aws: {{endpoint_url: '{}', force_path_style: true}}
delivery_streams:
  - name: l
    source: {{direct_put: {{}}}}
    processing: {{append_delimiter_to_record: true}}
    destinations:
      - s3: {{bucket: later}}
        buffering: {{size_mib: 1, interval_seconds: 900}}
",
        moto.endpoint
    );
    let mut d = Daemon::start(&config);
    assert_eq!(
        d.post("/v1/streams/l/records", b"survives-1\nsurvives-2\n")
            .0,
        200
    );
    moto.stop();
    // A flush stuck on the outage must not hold the shutdown beyond the drain timeout.
    let url = d.url.clone();
    let _stuck = std::thread::spawn(move || {
        let _ = std::panic::catch_unwind(|| {
            http(&format!("{url}/v1/streams/l/flush"), "POST", &[], b"")
        });
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let status = d.terminate(Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );

    let moto = Moto::start_on(port);
    moto.create_bucket("later");
    let d = d.restart();
    let keys = d.flush("l");
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(moto.get("later", &keys[0]), b"survives-1\nsurvives-2\n");
}
