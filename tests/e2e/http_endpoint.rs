//! HTTP endpoint destinations on the real binary, against a receiver started by the test
//! (tests/py/http_receiver.py) that checks every request against AWS's HTTP endpoint delivery
//! request and response specification: every record reaches the endpoint exactly once in
//! requests of the configured size, with the headers and body the specification names; a
//! failed attempt (5xx, another 2xx, a timeout, a wrong requestId, a body that is not JSON) is
//! retried with the same request id and body; the log cursor moves only after a 200 (kill -9
//! while failing delivers after the restart); past the retry duration the records go to the
//! backup as `http-endpoint-failed` error records, and with AllData every record is backed up.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::http_receiver::{Expect, Receiver};
use crate::support::transform::gunzip;
use crate::support::*;
use serde_json::{Value, json};

/// No request broke the specification.
fn assert_conforming(requests: &[Value]) {
    for r in requests {
        assert_eq!(r["violations"], json!([]), "{r}");
    }
}

/// The records of the requests answered `ok`, decoded, with how often each arrived.
fn delivered(requests: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in requests.iter().filter(|r| r["answer"] == "ok") {
        for d in r["records"].as_array().expect("records") {
            let text = String::from_utf8(base64_decode(d.as_str().expect("data"))).expect("utf-8");
            *out.entry(text).or_insert(0) += 1;
        }
    }
    out
}

fn post_lines(d: &Daemon, stream: &str, lines: &[String]) {
    for chunk in lines.chunks(500) {
        let body = chunk.join("\n");
        let (status, text) = d.post(&format!("/v1/streams/{stream}/records"), body.as_bytes());
        assert_eq!(status, 200, "{text}");
    }
}

fn records(tag: &str, n: usize, size: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let head = format!("{{\"tag\":\"{tag}\",\"i\":{i},\"pad\":\"");
            let pad = "x".repeat(size.saturating_sub(head.len() + 2));
            format!("{head}{pad}\"}}")
        })
        .collect()
}

#[test]
fn requests_follow_the_specification_and_every_record_arrives_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let attributes = json!({"env": "prod", "team": "data"});
    let gz = Receiver::start(
        dir.path(),
        "gz",
        &Expect {
            stream: "web",
            path: "/ingest?source=firehose",
            access_key: Some("secret-key-1"),
            attributes: Some(attributes.clone()),
            gzip: true,
            tls: None,
        },
        json!({"default": "ok"}),
    );
    let plain = Receiver::start(
        dir.path(),
        "plain",
        &Expect {
            stream: "web",
            path: "/",
            access_key: None,
            attributes: None,
            gzip: false,
            tls: None,
        },
        json!({"default": "ok"}),
    );
    let config = format!(
        "listen: 127.0.0.1:0\nstate_dir: '{{dir}}/state'\ndelivery_streams:\n  - name: web\n    source: {{direct_put: {{}}}}\n    destinations:\n      - http_endpoint: {{url: '{}', access_key: secret-key-1, content_encoding: GZIP, common_attributes: {{env: prod, team: data}}}}\n        s3_backup: {{directory: '{{dir}}/backup-gz'}}\n        buffering: {{size_mib: 1, interval_seconds: 60}}\n      - http_endpoint: {{url: '{}'}}\n        s3_backup: {{directory: '{{dir}}/backup-plain'}}\n        buffering: {{size_mib: 1, interval_seconds: 60}}\n",
        gz.url("http", "/ingest?source=firehose"),
        plain.url("http", "/"),
    );
    let d = Daemon::start(&config);
    // 2.5 MiB of 1 KiB records: at least three requests of at most 1 MiB each.
    let sent = records("spec", 2500, 1024);
    post_lines(&d, "web", &sent);
    let keys = d.flush("web");
    for r in [&gz, &plain] {
        let requests = r.requests();
        assert_conforming(&requests);
        assert!(requests.len() >= 3, "{} requests", requests.len());
        for q in &requests {
            assert_eq!(q["answer"], "ok");
            let bytes: usize = q["records"]
                .as_array()
                .expect("records")
                .iter()
                .map(|d| base64_decode(d.as_str().expect("data")).len())
                .sum();
            assert!(bytes <= 1024 * 1024, "a request of {bytes} record bytes");
            // The flush answers with the request ids it delivered.
            assert!(
                keys.iter()
                    .any(|k| Some(k.as_str()) == q["request_id"].as_str())
            );
        }
        let got = delivered(&requests);
        assert_eq!(got.len(), sent.len());
        assert!(got.values().all(|&n| n == 1), "a record arrived twice");
        assert!(sent.iter().all(|s| got.contains_key(s)));
    }
    assert_eq!(
        d.metric(
            "firehose_delivery_to_s3_records_total{delivery_stream=\"web\",destination=\"0\"}"
        ),
        2500.0
    );
    assert_eq!(d.metric("firehose_delivery_to_http_endpoint_failed_requests_total{delivery_stream=\"web\",destination=\"1\"}"), 0.0);
    for b in ["backup-gz", "backup-plain"] {
        assert!(
            files_under(&d.dir.path().join(b)).is_empty(),
            "nothing is backed up"
        );
    }
}

#[test]
fn failures_are_retried_as_the_same_request_and_the_cursor_waits_for_a_200() {
    let dir = tempfile::tempdir().expect("tempdir");
    let expect = Expect {
        stream: "retry",
        path: "/r",
        access_key: None,
        attributes: None,
        gzip: true,
        tls: None,
    };
    let failures = [
        "500",
        "sleep:3",
        "wrong_id",
        "bad_json",
        "201",
        "text_plain",
    ];
    let mut plan = json!({"sequence": failures, "default": "ok"});
    let r = Receiver::start(dir.path(), "r", &expect, plan.clone());
    let config = format!(
        "listen: 127.0.0.1:0\nstate_dir: '{{dir}}/state'\ndelivery_streams:\n  - name: retry\n    source: {{direct_put: {{}}}}\n    destinations:\n      - http_endpoint: {{url: '{}', content_encoding: GZIP, request_timeout_seconds: 1, retry_duration_seconds: 600}}\n        s3_backup: {{directory: '{{dir}}/backup'}}\n        buffering: {{size_mib: 1, interval_seconds: 1}}\n",
        r.url("http", "/r")
    );
    let mut d = Daemon::start(&config);
    let first = records("first", 10, 100);
    post_lines(&d, "retry", &first);
    d.flush("retry");
    let requests = r.requests();
    assert_conforming(&requests);
    let answers: Vec<&str> = requests
        .iter()
        .filter_map(|q| q["answer"].as_str())
        .collect();
    let mut want: Vec<&str> = failures.to_vec();
    want.push("ok");
    assert_eq!(answers, want);
    // Every attempt is the same request: one id, the same records.
    assert!(
        requests
            .iter()
            .all(|q| q["request_id"] == requests[0]["request_id"])
    );
    assert!(
        requests
            .iter()
            .all(|q| q["records"] == requests[0]["records"])
    );
    assert_eq!(delivered(&requests).len(), 10);
    let failed = "firehose_delivery_to_http_endpoint_failed_requests_total{delivery_stream=\"retry\",destination=\"0\"}";
    assert_eq!(d.metric(failed), failures.len() as f64);
    assert!(files_under(&d.dir.path().join("backup")).is_empty());

    // The endpoint fails: the records stay in the log through a kill -9, and are delivered
    // after the restart once it answers; what it took before is not sent again.
    plan["sequence"] = json!([]);
    plan["default"] = json!("500");
    r.set_plan(plan.clone());
    let before = r.requests().len();
    let second = records("second", 5, 100);
    post_lines(&d, "retry", &second);
    r.wait_requests(before + 2, Duration::from_secs(30));
    d.kill9();
    plan["default"] = json!("ok");
    r.set_plan(plan);
    let d = d.restart();
    d.flush("retry");
    let requests = r.requests();
    assert_conforming(&requests);
    let got = delivered(&requests);
    assert_eq!(got.len(), 15, "{got:?}");
    assert!(got.values().all(|&n| n == 1), "{got:?}");
    assert!(second.iter().all(|s| got.contains_key(s)));
}

#[test]
fn records_the_endpoint_never_takes_go_to_the_backup_as_http_endpoint_failed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s3 = S3sFs::start();
    s3.create_bucket("http-backup");
    let expect = |path| Expect {
        stream: "down",
        path,
        access_key: None,
        attributes: None,
        gzip: false,
        tls: None,
    };
    let down = Receiver::start(dir.path(), "down", &expect("/a"), json!({"default": "500"}));
    let once = Receiver::start(dir.path(), "once", &expect("/b"), json!({"default": "500"}));
    let config = format!(
        "listen: 127.0.0.1:0\nstate_dir: '{{dir}}/state'\naws: {{endpoint_url: '{}', force_path_style: true}}\ndelivery_streams:\n  - name: down\n    source: {{direct_put: {{}}}}\n    processing: {{append_delimiter_to_record: true}}\n    destinations:\n      - http_endpoint: {{url: '{}', retry_duration_seconds: 2}}\n        s3_backup: {{mode: AllData, bucket: http-backup, prefix: 'all/', error_output_prefix: 'errors/', compression: GZIP}}\n        buffering: {{size_mib: 1, interval_seconds: 1}}\n      - http_endpoint: {{url: '{}', retry_duration_seconds: 0}}\n        s3_backup: {{directory: '{{dir}}/once'}}\n        buffering: {{size_mib: 1, interval_seconds: 1}}\n",
        s3.endpoint,
        down.url("http", "/a"),
        once.url("http", "/b"),
    );
    let d = Daemon::start(&config);
    let sent = records("down", 20, 200);
    let started = record_now_ms();
    post_lines(&d, "down", &sent);
    d.flush("down");
    let want: Vec<String> = sent.iter().map(|s| format!("{s}\n")).collect();

    let keys = s3tool_keys(&s3.endpoint, "http-backup");
    let (all, errors): (Vec<&String>, Vec<&String>) =
        keys.iter().partition(|k| k.starts_with("all/"));
    assert!(!all.is_empty() && !errors.is_empty(), "{keys:?}");
    let read = |key: &str| gunzip(&s3tool(&s3.endpoint, &["get", "http-backup", key]));
    let backed: Vec<u8> = all.iter().flat_map(|k| read(k)).collect();
    assert_eq!(
        String::from_utf8(backed).expect("utf-8"),
        want.concat(),
        "AllData keeps every record"
    );
    let mut raw = Vec::new();
    for key in &errors {
        assert!(key.starts_with("errors/http-endpoint-failed/"), "{key}");
        for line in String::from_utf8(read(key)).expect("utf-8").lines() {
            let e: Value = serde_json::from_str(line).expect("an error record");
            assert_eq!(e["errorCode"], "HttpEndpoint.DestinationException", "{e}");
            assert!(
                e["errorMessage"]
                    .as_str()
                    .is_some_and(|m| m.contains("500")),
                "{e}"
            );
            assert!(e["attemptsMade"].as_u64().is_some_and(|n| n >= 2), "{e}");
            assert!(
                e["arrivalTimestamp"]
                    .as_i64()
                    .is_some_and(|t| t >= started - 1000),
                "{e}"
            );
            assert!(e["attemptEndingTimestamp"].as_i64() >= e["arrivalTimestamp"].as_i64());
            raw.push(
                String::from_utf8(base64_decode(e["rawData"].as_str().expect("rawData")))
                    .expect("utf-8"),
            );
        }
    }
    assert_eq!(raw, want, "every record, once, in order, as it was");
    let metric = |name: &str, dest: u32| {
        d.metric(&format!(
            "{name}{{delivery_stream=\"down\",destination=\"{dest}\"}}"
        ))
    };
    assert_eq!(
        metric("firehose_delivery_to_http_endpoint_failed_records_total", 0),
        20.0
    );
    assert_eq!(metric("firehose_delivery_to_s3_records_total", 0), 0.0);

    // Retry duration 0: one attempt per request, then the backup.
    let requests = once.requests();
    let mut ids: Vec<&str> = requests
        .iter()
        .filter_map(|q| q["request_id"].as_str())
        .collect();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "no request was sent twice");
    let failed: usize = lines_in(&d.dir.path().join("once"));
    assert_eq!(failed, 20);
}

/// Error-record lines in the files under `root`.
fn lines_in(root: &Path) -> usize {
    files_under(root)
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(root.join(f)).expect("read");
            assert!(f.contains("http-endpoint-failed/"), "{f}");
            text.lines().count()
        })
        .sum()
}

fn s3tool_keys(endpoint: &str, bucket: &str) -> Vec<String> {
    let out = s3tool(endpoint, &["list", bucket]);
    let v: Value = serde_json::from_slice(&out).expect("JSON");
    v.as_array()
        .expect("keys")
        .iter()
        .filter_map(|o| o["key"].as_str().map(str::to_string))
        .collect()
}

fn record_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[test]
fn the_api_creates_describes_and_updates_an_http_endpoint_stream_over_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_output(
        Command::new(python())
            .arg(py_script("sigv4_boto3.py"))
            .args(["certs", &dir.path().display().to_string(), "endpoint"]),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s3 = S3sFs::start();
    s3.create_bucket("api-backup");
    let (cert, key) = (
        dir.path().join("endpoint.crt"),
        dir.path().join("endpoint.key"),
    );
    let r = Receiver::start(
        dir.path(),
        "api",
        &Expect {
            stream: "api-http",
            path: "/api",
            access_key: Some("k-123"),
            attributes: Some(json!({"source": "boto3"})),
            gzip: true,
            tls: Some((&cert, &key)),
        },
        json!({"default": "ok"}),
    );
    let config = format!(
        "listen: 127.0.0.1:0\nstate_dir: '{{dir}}/state'\naws: {{endpoint_url: '{}', force_path_style: true}}\ndelivery_streams: []\n",
        s3.endpoint
    );
    let ca = dir.path().join("ca.pem").display().to_string();
    let d = Daemon::launch(&config)
        .in_dir(tempfile::tempdir().expect("tempdir"))
        .env("SSL_CERT_FILE", &ca)
        .try_start()
        .unwrap_or_else(|log| panic!("firehosed did not start:\n{log}"));
    let out = run_output(
        Command::new(python())
            .arg(py_script("http_endpoint_api.py"))
            .arg(&d.url)
            .arg(r.url("https", "/api")),
    );
    assert!(
        out.status.success(),
        "http_endpoint_api.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let desc = &v["created"]["Destinations"][0]["HttpEndpointDestinationDescription"];
    assert_eq!(
        desc["EndpointConfiguration"],
        json!({"Url": r.url("https", "/api"), "Name": "receiver"})
    );
    assert_eq!(
        desc["RequestConfiguration"],
        json!({"ContentEncoding": "GZIP", "CommonAttributes": [{"AttributeName": "source", "AttributeValue": "boto3"}]})
    );
    assert_eq!(
        desc["BufferingHints"],
        json!({"SizeInMBs": 1, "IntervalInSeconds": 1})
    );
    assert_eq!(desc["RetryOptions"], json!({"DurationInSeconds": 60}));
    assert_eq!(desc["S3BackupMode"], "FailedDataOnly");
    assert_eq!(
        desc["S3DestinationDescription"]["BucketARN"],
        "arn:aws:s3:::api-backup"
    );
    assert!(
        !desc.to_string().contains("k-123"),
        "the access key is never described"
    );
    assert_eq!(v["put_failed"], 0);
    let requests = r.wait_requests(1, Duration::from_secs(30));
    assert_conforming(&requests);
    let got = delivered(&requests);
    assert_eq!(got.len(), 50, "{got:?}");
    // UpdateDestination's HttpEndpointDestinationUpdate merges into what was created.
    let updated = &v["updated"]["Destinations"][0]["HttpEndpointDestinationDescription"];
    assert_eq!(updated["RetryOptions"], json!({"DurationInSeconds": 120}));
    assert_eq!(updated["EndpointConfiguration"]["Name"], "receiver");
    assert_eq!(v["updated"]["VersionId"], "2");
    assert_eq!(v["errors"]["http_url"], "ValidationException", "{v}");
    assert_eq!(v["errors"]["size_65"], "ValidationException", "{v}");
    assert_eq!(
        v["errors"]["duplicate_attribute"], "InvalidArgumentException",
        "{v}"
    );
    assert_eq!(
        v["errors"]["s3_update_of_http"], "InvalidArgumentException",
        "{v}"
    );
}
