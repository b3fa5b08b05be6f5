//! CloudWatch Logs subscription payloads on the real binary, sent by boto3 the way a
//! subscription filter sends them (tests/py/cloudwatch_logs.py): with `decompression: GZIP` and
//! `cloudwatch_logs.data_message_extraction`, every log event's message is delivered once as its
//! own record (partitioned and transformed as such), CONTROL_MESSAGE documents are dropped, and a
//! record that is not GZIP, decompresses past the cap (a GZIP bomb) or is not a CloudWatch Logs
//! document goes to `decompression-failed` as it came, without touching its neighbours.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::transform::{decode_raw, error_records, gunzip, lines_under, python_runner};
use crate::support::*;
use serde_json::{Value, json};

/// Sends `spec` (see tests/py/cloudwatch_logs.py) to `stream`; every record must be accepted.
fn send(d: &Daemon, stream: &str, spec: &Value) {
    let path = d.dir.path().join(format!("spec-{stream}.json"));
    std::fs::write(&path, spec.to_string()).expect("spec");
    let out = run_output(
        std::process::Command::new(python())
            .arg(py_script("cloudwatch_logs.py"))
            .arg(&d.url)
            .arg(stream)
            .arg(&path),
    );
    assert!(
        out.status.success(),
        "cloudwatch_logs.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["failed"], 0, "{v}");
    assert_eq!(v["sent"], spec.as_array().map_or(0, Vec::len), "{v}");
}

fn data(group: &str, messages: &[String]) -> Value {
    json!({"data": {"logGroup": group, "logStream": "2026/12/02/[$LATEST]abc", "messages": messages}})
}

/// The three records that must fail, and the error code each must get.
fn bad_records() -> Vec<(Value, &'static str)> {
    vec![
        (
            json!({"raw_base64": base64(b"plain text, not GZIP")}),
            "Decompression.InvalidData",
        ),
        (json!({"bomb_mib": 64}), "Decompression.SizeLimitExceeded"),
        (
            json!({"gzip_of": "{\"hello\":\"world\"}"}),
            "CloudWatchLogs.MalformedData",
        ),
    ]
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The `decompression-failed` error records under `out`, by error code.
fn decompression_failures(out: &Path) -> BTreeMap<String, Value> {
    let mut by_code = BTreeMap::new();
    for e in error_records(out) {
        if e.get("lambdaArn").is_none() {
            let code = e["errorCode"].as_str().expect("errorCode").to_string();
            assert!(by_code.insert(code, e).is_none(), "one record per failure");
        }
    }
    by_code
}

fn check_failures(out: &Path) {
    let failures = decompression_failures(out);
    let codes: Vec<&str> = failures.keys().map(String::as_str).collect();
    let mut want: Vec<&str> = bad_records().iter().map(|(_, c)| *c).collect();
    want.sort();
    assert_eq!(codes, want);
    for e in failures.values() {
        assert_eq!(e["attemptsMade"], 1, "{e}");
        assert!(e["arrivalTimestamp"].as_i64().is_some(), "{e}");
        assert!(e["attemptEndingTimestamp"].as_i64().is_some(), "{e}");
        assert!(
            e["errorMessage"].as_str().is_some_and(|m| !m.is_empty()),
            "{e}"
        );
    }
    // As AWS does: the record as it came, still compressed.
    assert_eq!(
        decode_raw(&failures["Decompression.InvalidData"]),
        "plain text, not GZIP"
    );
    let malformed = base64_decode(
        failures["CloudWatchLogs.MalformedData"]["rawData"]
            .as_str()
            .expect("rawData"),
    );
    assert_eq!(gunzip(&malformed), br#"{"hello":"world"}"#);
    let bomb = base64_decode(
        failures["Decompression.SizeLimitExceeded"]["rawData"]
            .as_str()
            .expect("rawData"),
    );
    assert!(bomb.len() < 200_000, "the compressed bomb: {}", bomb.len());
    assert!(
        lines_under(out, "errors/decompression-failed/").len() == 3,
        "the error output type names the prefix"
    );
}

#[test]
fn log_events_are_delivered_once_each_and_partitioned_by_their_content() {
    let d = Daemon::start(
        "listen: 127.0.0.1:0
state_dir: '{dir}/state'
delivery_streams:
  - name: logs
    source: {direct_put: {}}
    processing:
      decompression: GZIP
      cloudwatch_logs: {data_message_extraction: true}
      append_delimiter_to_record: true
      metadata_extraction: {query: '{level: .level}'}
    destinations:
      - directory: '{dir}/out'
        prefix: 'level=!{partitionKeyFromQuery:level}/'
        error_output_prefix: 'errors/!{firehose:error-output-type}/'
        dynamic_partitioning: {enabled: true}
        buffering: {size_mib: 64, interval_seconds: 60}
        compression: GZIP
        source_record_backup: {prefix: 'backup/'}",
    );
    let levels = ["info", "warn", "error"];
    let mut want: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut spec = vec![json!({"control": true})];
    let mut bad = bad_records().into_iter();
    for i in 0..40 {
        let messages: Vec<String> = (0..(i % 7) + 1)
            .map(|j| {
                let level = levels[(i + j) % 3];
                let m = json!({"level": level, "i": i, "j": j, "text": "a \"quoted\" ünicode line\twith a tab"})
                    .to_string();
                want.entry(level).or_default().push(m.clone());
                m
            })
            .collect();
        spec.push(data(&format!("/aws/lambda/f{}", i % 3), &messages));
        if i % 13 == 5 {
            spec.extend(bad.next().map(|(r, _)| r));
        }
        if i == 20 {
            spec.push(json!({"control": true}));
        }
    }
    let events: usize = want.values().map(Vec::len).sum();
    send(&d, "logs", &Value::Array(spec.clone()));
    d.flush("logs");

    let out = d.dir.path().join("out");
    for level in levels {
        let got = lines_under(&out, &format!("level={level}/"));
        assert_eq!(sorted(got), sorted(want[level].clone()), "level {level}");
    }
    check_failures(&out);
    let everything: Vec<String> = files_under(&out)
        .iter()
        .filter(|k| !k.starts_with("backup/"))
        .flat_map(|k| lines_under(&out, k))
        .collect();
    assert!(
        !everything.iter().any(|l| l.contains("CWL CONTROL MESSAGE")),
        "control messages are dropped"
    );
    let metric = |name: &str| d.metric(&format!("{name}{{delivery_stream=\"logs\"}}"));
    assert_eq!(metric("firehose_incoming_records_total"), spec.len() as f64);
    assert_eq!(metric("firehose_decompressed_records_total"), 42.0);
    assert_eq!(metric("firehose_decompression_failed_records_total"), 3.0);
    assert_eq!(
        metric("firehose_cloudwatch_logs_events_extracted_total"),
        events as f64
    );
    assert_eq!(
        metric("firehose_cloudwatch_logs_control_messages_dropped_total"),
        2.0
    );
    // The source-record backup keeps what was sent: the compressed documents.
    let backup = files_under(&out)
        .into_iter()
        .filter(|k| k.starts_with("backup/"))
        .map(|k| gunzip(&std::fs::read(out.join(k)).expect("backup")))
        .fold(Vec::new(), |mut all, b| {
            all.extend(b);
            all
        });
    assert_eq!(
        &backup[..2],
        &[0x1f, 0x8b],
        "backup objects hold the GZIP records"
    );
}

#[test]
fn the_transform_sees_each_log_event_and_failed_records_keep_their_place() {
    let d = Daemon::start(&format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
delivery_streams:
  - name: logs
    source: {{direct_put: {{}}}}
    processing:
      decompression: GZIP
      cloudwatch_logs: {{data_message_extraction: true}}
      transform:
        subprocess: {}
        buffer_size_mib: 0.2
        buffer_interval_seconds: 900
    destinations:
      - directory: '{{dir}}/out'
        prefix: 'data/'
        error_output_prefix: 'errors/!{{firehose:error-output-type}}/'
        buffering: {{size_mib: 128, interval_seconds: 900}}
        compression: GZIP",
        python_runner("blueprint.lambda_handler")
    ));
    let actions = ["keep", "drop", "fail"];
    let (mut keep, mut fail, mut dropped) = (Vec::new(), Vec::new(), 0);
    let mut spec = Vec::new();
    let mut bad = bad_records().into_iter().cycle();
    let mut bad_sent = 0;
    // About 1 MB of events: several transform batches, with failed records between them.
    for i in 0..1500 {
        let messages: Vec<String> = (0..10)
            .map(|j| {
                let action = actions[(i + j) % 3];
                let m = json!({"id": i * 10 + j, "action": action, "pad": "x".repeat(40)});
                match action {
                    "keep" => {
                        let mut k = m.clone();
                        k["processed"] = json!(true);
                        keep.push(k);
                    }
                    "fail" => fail.push(m.to_string()),
                    _ => dropped += 1,
                }
                m.to_string()
            })
            .collect();
        spec.push(data("/ecs/app", &messages));
        if i % 250 == 100 {
            spec.extend(bad.next().map(|(r, _)| r));
            bad_sent += 1;
        }
        if i % 500 == 0 {
            spec.push(json!({"control": true}));
        }
    }
    send(&d, "logs", &Value::Array(spec));
    d.flush("logs");

    let out = d.dir.path().join("out");
    let mut got: Vec<Value> = lines_under(&out, "data/")
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    got.sort_by_key(|v| v["id"].as_u64());
    assert_eq!(got.len(), keep.len(), "every kept event once");
    assert_eq!(got, keep);
    let processing_failed: Vec<String> = error_records(&out)
        .iter()
        .filter(|e| e.get("lambdaArn").is_some())
        .map(decode_raw)
        .collect();
    assert_eq!(
        sorted(processing_failed),
        sorted(fail),
        "the transform's failures are the events it saw"
    );
    let failures = lines_under(&out, "errors/decompression-failed/");
    assert_eq!(failures.len(), bad_sent);
    assert!(
        d.metric("firehose_transform_records_dropped_total{delivery_stream=\"logs\"}")
            == dropped as f64
    );
    let invocations =
        d.metric("firehose_execute_processing_invocations_total{delivery_stream=\"logs\"}");
    assert!(invocations > 1.0, "the events filled several batches");
}

/// CreateDeliveryStream takes AWS's Decompression and CloudWatchLogProcessing processors
/// through the same checks as the configuration file, and DescribeDeliveryStream shows them.
#[test]
fn create_delivery_stream_takes_the_decompression_and_cloudwatch_log_processors() {
    let moto = Moto::start();
    moto.create_bucket("logs-lake");
    let d = Daemon::start(&format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
aws: {{region: us-east-1, endpoint_url: '{}', force_path_style: true}}
delivery_streams:
  - name: from-file
    source: {{direct_put: {{}}}}
    destinations:
      - directory: '{{dir}}/out'",
        moto.endpoint
    ));
    let processors = |extraction: &str, decompression: bool| {
        let mut list = vec![
            json!({"Type": "CloudWatchLogProcessing", "Parameters": [
                {"ParameterName": "DataMessageExtraction", "ParameterValue": extraction}]}),
            json!({"Type": "AppendDelimiterToRecord", "Parameters": []}),
        ];
        if decompression {
            list.insert(
                0,
                json!({"Type": "Decompression", "Parameters": [
                {"ParameterName": "CompressionFormat", "ParameterValue": "GZIP"}]}),
            );
        }
        json!({"Enabled": true, "Processors": list})
    };
    let request = |name: &str, processing: Value| {
        json!({
            "DeliveryStreamName": name,
            "DeliveryStreamType": "DirectPut",
            "ExtendedS3DestinationConfiguration": {
                "RoleARN": "arn:aws:iam::123456789012:role/firehose", "BucketARN": "arn:aws:s3:::logs-lake",
                "Prefix": "cwl/", "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
                "ProcessingConfiguration": processing
            }
        })
        .to_string()
    };
    let (status, v) = d.api(
        "CreateDeliveryStream",
        &request("cwl", processors("true", true)),
    );
    assert_eq!(status, 200, "{v}");
    let description = d.wait_active("cwl");
    let described = &description["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"]
        ["ProcessingConfiguration"];
    let types: Vec<&str> = described["Processors"]
        .as_array()
        .expect("processors")
        .iter()
        .filter_map(|p| p["Type"].as_str())
        .collect();
    assert_eq!(
        types,
        [
            "Decompression",
            "CloudWatchLogProcessing",
            "AppendDelimiterToRecord"
        ],
        "{described}"
    );
    assert_eq!(
        described["Processors"][1]["Parameters"][0],
        json!({"ParameterName": "DataMessageExtraction", "ParameterValue": "true"})
    );

    let messages: Vec<String> = (0..5).map(|i| format!("START RequestId: {i}")).collect();
    send(
        &d,
        "cwl",
        &json!([{"control": true}, data("/aws/lambda/x", &messages)]),
    );
    let keys = d.flush("cwl");
    assert_eq!(keys.len(), 1, "{keys:?}");
    let body = String::from_utf8(moto.get("logs-lake", &keys[0])).expect("text");
    assert_eq!(body, messages.join("\n") + "\n");

    for (name, processing, needle) in [
        (
            "no-decompression",
            processors("true", false),
            "needs processing.decompression",
        ),
        ("not-true", processors("false", true), "must be true"),
        ("not-a-bool", processors("yes", true), "true or false"),
    ] {
        let (status, v) = d.api("CreateDeliveryStream", &request(name, processing));
        assert_eq!(status, 400, "{name}: {v}");
        assert_eq!(v["__type"], "InvalidArgumentException", "{v}");
        let message = v["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{name}: {message}");
    }
}
