//! SIGHUP re-reads the configuration file: a stream added starts, a stream removed drains (its
//! records delivered) and goes, a stream changed drains on the old configuration and goes on
//! with the next version in its object names; nothing acknowledged is lost or written twice;
//! an invalid file is logged and the running configuration stays.

use std::time::{Duration, Instant};

use crate::support::*;

fn stream(name: &str, prefix: &str) -> String {
    format!(
        "  - name: {name}
    source: {{direct_put: {{}}}}
    processing: {{append_delimiter_to_record: true}}
    destinations:
      - directory: '{{dir}}/out'
        prefix: '{prefix}'
        buffering: {{size_mib: 64, interval_seconds: 900}}
"
    )
}

fn config(streams: &[String]) -> String {
    format!(
        "listen: 127.0.0.1:0\nstate_dir: '{{dir}}/state'\ndelivery_streams:\n{}",
        streams.concat()
    )
}

fn put(d: &Daemon, name: &str, lines: &str) {
    let (status, body) = d.post(&format!("/v1/streams/{name}/records"), lines.as_bytes());
    assert_eq!(status, 200, "{body}");
}

/// Rewrites the daemon's config file (its `{dir}` filled in) and sends SIGHUP; waits for the
/// log line that ends the reload.
fn reload(d: &mut Daemon, text: &str, done: &str) -> String {
    let path = d.dir.path().join("firehosed.yaml");
    std::fs::write(
        &path,
        text.replace("{dir}", &d.dir.path().display().to_string()),
    )
    .expect("config");
    // SAFETY: kill(2) on the daemon's pid.
    unsafe {
        libc::kill(d.pid() as i32, libc::SIGHUP);
    }
    d.wait_for_log(done, Duration::from_secs(30))
}

fn lines_under(out: &std::path::Path, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = files_under(out)
        .into_iter()
        .filter(|k| k.starts_with(prefix))
        .flat_map(|k| {
            std::fs::read_to_string(out.join(&k))
                .expect("object")
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn sighup_adds_removes_and_changes_streams_without_losing_a_record() {
    let mut d = Daemon::start(&config(&[stream("keep", "k1/"), stream("gone", "g/")]));
    put(&d, "keep", "a\nb\n");
    put(&d, "gone", "x\ny\n");
    let log = reload(
        &mut d,
        &config(&[stream("keep", "k2/"), stream("new", "n/")]),
        "configuration reloaded",
    );
    assert!(log.contains("configuration reloaded"), "{log}");
    let warned = log.lines().any(|l| {
        l.contains("WARN")
            && l.contains("no longer has these delivery streams")
            && l.contains("gone")
    });
    assert!(
        warned,
        "removing streams is a warning that names them:\n{log}"
    );
    put(&d, "keep", "c\n");
    put(&d, "new", "z\n");
    d.flush("keep");
    d.flush("new");
    let out = d.dir.path().join("out");
    let keys = files_under(&out);
    // Changed: the buffered records went out on the old configuration (version 1), the rest
    // on the new one (version 2).
    assert_eq!(lines_under(&out, "k1"), vec!["a", "b"], "{keys:?}");
    assert!(
        keys.iter()
            .any(|k| k.starts_with("k1") && k.contains("/keep-1-")),
        "{keys:?}"
    );
    assert_eq!(lines_under(&out, "k2"), vec!["c"], "{keys:?}");
    assert!(
        keys.iter()
            .any(|k| k.starts_with("k2") && k.contains("/keep-2-")),
        "{keys:?}"
    );
    // Removed: drained, then gone.
    assert_eq!(lines_under(&out, "g"), vec!["x", "y"], "{keys:?}");
    let (status, _) = d.api("DescribeDeliveryStream", r#"{"DeliveryStreamName":"gone"}"#);
    assert_eq!(status, 400);
    // Added.
    assert_eq!(lines_under(&out, "n"), vec!["z"], "{keys:?}");
    let (_, v) = d.api("DescribeDeliveryStream", r#"{"DeliveryStreamName":"keep"}"#);
    assert_eq!(v["DeliveryStreamDescription"]["VersionId"], "2");

    // Versions are kept: a restart on the first file (keep changed back while down) is
    // version 3, and the next reload version 4; an unchanged stream keeps its version.
    let mut d = d.restart();
    let (_, v) = d.api("DescribeDeliveryStream", r#"{"DeliveryStreamName":"keep"}"#);
    assert_eq!(v["DeliveryStreamDescription"]["VersionId"], "3");
    let log = reload(
        &mut d,
        &config(&[stream("keep", "k3/"), stream("gone", "g/")]),
        "configuration reloaded",
    );
    assert!(log.contains(r#"changed=["keep"]"#), "{log}");
    let (_, v) = d.api("DescribeDeliveryStream", r#"{"DeliveryStreamName":"keep"}"#);
    assert_eq!(v["DeliveryStreamDescription"]["VersionId"], "4");
    let (_, v) = d.api("DescribeDeliveryStream", r#"{"DeliveryStreamName":"gone"}"#);
    assert_eq!(v["DeliveryStreamDescription"]["VersionId"], "1");
}

#[test]
fn an_invalid_file_on_sighup_changes_nothing() {
    let mut d = Daemon::start(&config(&[stream("keep", "k/")]));
    put(&d, "keep", "a\n");
    let log = reload(
        &mut d,
        "delivery_streams:\n  - name: keep\n    source: {direct_put: {}}\n    destinations:\n      - directory: x\n        buffering: {size_mib: 500}\n",
        "the running one stays",
    );
    assert!(
        log.contains("buffering.size_mib: must be 1..=128 (got 500)"),
        "{log}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && d.get("/readyz").0 != 200 {
        std::thread::sleep(Duration::from_millis(50));
    }
    put(&d, "keep", "b\n");
    d.flush("keep");
    assert_eq!(lines_under(&d.dir.path().join("out"), "k"), vec!["a", "b"]);
    let (_, v) = d.api("DescribeDeliveryStream", r#"{"DeliveryStreamName":"keep"}"#);
    assert_eq!(v["DeliveryStreamDescription"]["VersionId"], "1");
}

/// A file emptied (or cut short to nothing) while it was being written is an error on SIGHUP,
/// not "no streams": nothing is removed and the stream goes on.
#[test]
fn an_empty_file_on_sighup_removes_nothing() {
    let mut d = Daemon::start(&config(&[stream("keep", "k/")]));
    put(&d, "keep", "a\n");
    let log = reload(&mut d, "", "the running one stays");
    assert!(log.contains("the configuration is empty"), "{log}");
    assert!(!log.contains("removed"), "{log}");
    put(&d, "keep", "b\n");
    d.flush("keep");
    assert_eq!(lines_under(&d.dir.path().join("out"), "k"), vec!["a", "b"]);
}

/// A CreateDeliveryStream whose dynamic partitioning may keep 500 staging files open.
fn partitioned_request() -> serde_json::Value {
    serde_json::json!({
        "DeliveryStreamName": "parts",
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": "arn:aws:iam::123456789012:role/firehose", "BucketARN": "arn:aws:s3:::lake",
            "Prefix": "p/!{partitionKeyFromQuery:c}/",
            "ErrorOutputPrefix": "e/!{firehose:error-output-type}/",
            "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
            "DynamicPartitioningConfiguration": {"Enabled": true},
            "ProcessingConfiguration": {"Enabled": true, "Processors": [{"Type": "MetadataExtraction",
                "Parameters": [{"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{c: .c}"},
                    {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]}}
    })
}

/// Streams added after start-up count against the open-file limit like the file's: under a
/// limit of 700, a CreateDeliveryStream whose partitioning could keep 500 staging files open
/// gets LimitExceededException, and a reload to such a file changes nothing.
#[test]
fn streams_added_later_must_fit_the_open_file_limit() {
    let base = config(&[stream("a", "a/")]);
    let mut d = Daemon::launch(&base).open_file_limit(700).start();
    let request = partitioned_request();
    let (status, v) = d.api("CreateDeliveryStream", &request.to_string());
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["__type"], "LimitExceededException", "{v}");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("500 staging files") && m.contains("limit is 700")),
        "{v}"
    );
    let (_, gone) = d.api(
        "DescribeDeliveryStream",
        r#"{"DeliveryStreamName":"parts"}"#,
    );
    assert_eq!(
        gone["__type"], "ResourceNotFoundException",
        "a refused create leaves nothing"
    );
    let partitioned = "  - name: parts
    source: {direct_put: {}}
    processing: {metadata_extraction: {query: '{c: .c}'}}
    destinations:
      - directory: '{dir}/parts'
        prefix: 'p/!{partitionKeyFromQuery:c}/'
        error_output_prefix: 'e/!{firehose:error-output-type}/'
        buffering: {size_mib: 64, interval_seconds: 60}
        dynamic_partitioning: {enabled: true}
"
    .to_string();
    let log = reload(
        &mut d,
        &config(&[stream("a", "a/"), partitioned]),
        "the running one stays",
    );
    assert!(log.contains("limit is 700"), "{log}");
    let (_, listed) = d.api("ListDeliveryStreams", "{}");
    assert_eq!(listed["DeliveryStreamNames"], serde_json::json!(["a"]));
}

/// An API stream created under a higher open-file limit does not start after a restart under
/// one it would pass: it is CREATING_FAILED with the reason, the others serve.
#[test]
fn an_api_stream_over_a_lowered_open_file_limit_fails_at_start_up() {
    let moto = Moto::start();
    moto.create_bucket("lake");
    let base = format!(
        "listen: 127.0.0.1:0\nstate_dir: '{{dir}}/state'\naws: {{region: us-east-1, endpoint_url: '{}', force_path_style: true}}\ndelivery_streams:\n{}",
        moto.endpoint,
        stream("a", "a/")
    );
    let d = Daemon::launch(&base).open_file_limit(4096).start();
    let (status, v) = d.api("CreateDeliveryStream", &partitioned_request().to_string());
    assert_eq!(status, 200, "{v}");
    d.wait_active("parts");
    let (dir, config) = d.stop_for_restart();
    let d = Daemon::launch(&config)
        .in_dir(dir)
        .open_file_limit(700)
        .start();
    let (_, v) = d.api(
        "DescribeDeliveryStream",
        r#"{"DeliveryStreamName":"parts"}"#,
    );
    let desc = &v["DeliveryStreamDescription"];
    assert_eq!(desc["DeliveryStreamStatus"], "CREATING_FAILED", "{v}");
    assert!(
        desc["FailureDescription"]["Details"]
            .as_str()
            .is_some_and(|m| m.contains("limit is 700")),
        "{v}"
    );
    put(&d, "a", "still served\n");
}
