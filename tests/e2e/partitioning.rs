//! Dynamic partitioning on the real binary: jq keys (jaq) on nested fields and epoch times,
//! transform-supplied keys, both together, the active-partition limit, records that cannot be
//! partitioned, and partition values that try to leave a directory destination.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use crate::support::*;

fn gunzip(data: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::MultiGzDecoder::new(data)
        .read_to_string(&mut out)
        .expect("gzip text");
    out
}

/// Object key -> its lines, for every object under `out`.
fn objects(out: &Path) -> BTreeMap<String, Vec<String>> {
    files_under(out)
        .into_iter()
        .map(|k| {
            let text = gunzip(&std::fs::read(out.join(&k)).expect("object"));
            // (the blueprint handler adds a newline and so does append_delimiter_to_record)
            let lines = text
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect();
            (k, lines)
        })
        .collect()
}

fn config(processing: &str, prefix: &str, extra: &str) -> String {
    format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
delivery_streams:
  - name: p
    source: {{direct_put: {{}}}}
    processing:
      append_delimiter_to_record: true
{processing}
    destinations:
      - directory: '{{dir}}/out'
        prefix: '{prefix}'
        error_output_prefix: 'errors/!{{firehose:error-output-type}}/'
        buffering: {{size_mib: 64, interval_seconds: 60}}
        compression: GZIP
        dynamic_partitioning: {{enabled: true{extra}}}"
    )
}

fn put(d: &Daemon, lines: &[String]) {
    let mut body = lines.join("\n").into_bytes();
    body.push(b'\n');
    let (status, text) = d.post("/v1/streams/p/records", &body);
    assert_eq!(status, 200, "{text}");
}

/// 2024-05-01T13:07:42Z plus `i` days.
fn epoch(i: usize) -> i64 {
    1_714_568_862 + (i as i64 % 3) * 366 * 86_400
}

#[test]
fn two_hundred_customers_with_jq_keys_on_nested_fields_and_strftime() {
    let query = r#"{customer: .order.customer.id, year: (.ts | strftime(\"%Y\"))}"#;
    let d = Daemon::start(&config(
        &format!("      metadata_extraction: {{query: \"{query}\"}}"),
        "customer=!{partitionKeyFromQuery:customer}/year=!{partitionKeyFromQuery:year}/",
        "",
    ));
    let lines: Vec<String> = (0..2000)
        .map(|i| {
            let c = i % 200;
            format!(
                "{{\"n\":{i},\"order\":{{\"customer\":{{\"id\":\"c{c:03}\"}}}},\"ts\":{}}}",
                epoch(c)
            )
        })
        .collect();
    put(&d, &lines);
    let keys = d.flush("p");
    assert_eq!(keys.len(), 200, "one object per partition");
    let objs = objects(&d.dir.path().join("out"));
    let mut seen = 0;
    for (key, lines) in &objs {
        let (prefix, name) = key.rsplit_once('/').expect("a prefix");
        assert!(name.starts_with("p-1-") && name.ends_with(".gz"), "{key}");
        let customer = prefix
            .strip_prefix("customer=")
            .and_then(|p| p.split('/').next())
            .expect("customer=");
        for l in lines {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            assert_eq!(v["order"]["customer"]["id"], customer, "{key}");
            let c: usize = customer[1..].parse().expect("number");
            let year = 2024 + (c % 3);
            assert_eq!(prefix, format!("customer={customer}/year={year}"), "{key}");
        }
        assert_eq!(lines.len(), 10, "{key}");
        seen += lines.len();
    }
    assert_eq!(seen, 2000);
    assert_eq!(
        d.metric("firehose_active_partitions{delivery_stream=\"p\""),
        0.0,
        "every partition was flushed"
    );
}

#[test]
fn transform_keys_and_jq_keys_together() {
    let handler = format!(
        "      transform:\n        subprocess: {{command: ['{}', '{}', 'blueprint.lambda_handler'], working_directory: '{}'}}\n      metadata_extraction: {{query: '{{id_mod: (.id % 2)}}'}}",
        python().display(),
        repo().join("runners/python/firehosed_runner.py").display(),
        repo().join("tests/transforms").display()
    );
    let d = Daemon::start(&config(
        &handler,
        "action=!{partitionKeyFromLambda:action}/odd=!{partitionKeyFromQuery:id_mod}/",
        "",
    ));
    let lines: Vec<String> = (0..30)
        .map(|i| {
            let action = ["keep", "drop", "fail"][i % 3];
            format!("{{\"id\":{i},\"action\":\"{action}\"}}")
        })
        .collect();
    put(&d, &lines);
    d.flush("p");
    let objs = objects(&d.dir.path().join("out"));
    let data: BTreeMap<&str, usize> = objs
        .iter()
        .filter(|(k, _)| k.starts_with("action="))
        .map(|(k, l)| (k.rsplit_once('/').map_or("", |p| p.0), l.len()))
        .collect();
    // blueprint.py keeps ids 0,3,6,... with partitionKeys {"action":"keep"}; the query splits
    // them by parity.
    assert_eq!(
        data,
        BTreeMap::from([("action=keep/odd=0", 5), ("action=keep/odd=1", 5)])
    );
    let failed: usize = objs
        .iter()
        .filter(|(k, _)| k.starts_with("errors/processing-failed/"))
        .map(|(_, l)| l.len())
        .sum();
    assert_eq!(failed, 10);
}

#[test]
fn records_that_cannot_be_partitioned_go_to_the_error_prefix_with_aws_codes() {
    let d = Daemon::start(&config(
        "      metadata_extraction: {query: '{c: .c}'}",
        "c=!{partitionKeyFromQuery:c}/",
        "",
    ));
    let lines = vec![
        r#"{"c":"a"}"#.to_string(),
        "not json".to_string(),
        r#"{"other":1}"#.to_string(),
        r#"{"c":""}"#.to_string(),
        r#"{"c":{"nested":true}}"#.to_string(),
    ];
    put(&d, &lines);
    d.flush("p");
    let objs = objects(&d.dir.path().join("out"));
    let errors = |ty: &str| -> Vec<serde_json::Value> {
        objs.iter()
            .filter(|(k, _)| k.starts_with(&format!("errors/{ty}/")))
            .flat_map(|(_, l)| l.iter().map(|l| serde_json::from_str(l).expect("json")))
            .collect()
    };
    let extraction = errors("metadata-extraction-failed");
    assert_eq!(extraction.len(), 2, "not JSON, and a key that is an object");
    for e in &extraction {
        assert_eq!(
            e["errorCode"],
            "DynamicPartitioning.MetadataExtractionFailed"
        );
        assert!(e["rawData"].is_string() && e["errorMessage"].is_string());
    }
    let partitioning = errors("partitioning-failed");
    assert_eq!(partitioning.len(), 2, "a missing key and an empty key");
    let delivered: Vec<&String> = objs
        .iter()
        .filter(|(k, _)| k.starts_with("c=a/"))
        .flat_map(|(_, l)| l)
        .collect();
    assert_eq!(delivered, [r#"{"c":"a"}"#]);
}

#[test]
fn records_beyond_the_active_partition_limit_go_to_the_error_prefix_and_are_counted() {
    let d = Daemon::start(&config(
        "      metadata_extraction: {query: '{c: .c}'}",
        "c=!{partitionKeyFromQuery:c}/",
        ", max_active_partitions: 10",
    ));
    let lines: Vec<String> = (0..40)
        .map(|i| format!("{{\"c\":\"k{}\"}}", i % 20))
        .collect();
    put(&d, &lines);
    d.flush("p");
    let objs = objects(&d.dir.path().join("out"));
    let partitions: BTreeSet<&str> = objs
        .keys()
        .filter(|k| k.starts_with("c="))
        .map(|k| k.split('/').next().unwrap_or(""))
        .collect();
    assert_eq!(partitions.len(), 10);
    let over: Vec<serde_json::Value> = objs
        .iter()
        .filter(|(k, _)| k.starts_with("errors/partitioning-failed/"))
        .flat_map(|(_, l)| l.iter().map(|l| serde_json::from_str(l).expect("json")))
        .collect();
    assert_eq!(over.len(), 20);
    assert!(
        over.iter()
            .all(|e| e["errorCode"] == "DynamicPartitioning.ActivePartitionsLimitExceeded")
    );
    assert_eq!(
        d.metric("firehose_partition_count_exceeded_records_total{delivery_stream=\"p\""),
        20.0
    );
}

#[test]
fn partition_values_cannot_leave_a_directory_destination() {
    let d = Daemon::start(&config(
        "      metadata_extraction: {query: '{c: .c}'}",
        "!{partitionKeyFromQuery:c}/",
        "",
    ));
    let lines = vec![
        r#"{"c":"../../escaped"}"#.to_string(),
        r#"{"c":"/abs"}"#.to_string(),
        r#"{"c":"."}"#.to_string(),
    ];
    put(&d, &lines);
    let keys = d.flush("p");
    assert_eq!(keys.len(), 3, "{keys:?}");
    let root = d.dir.path();
    let everything = files_under(root);
    let outside: Vec<&String> = everything
        .iter()
        .filter(|f| !f.starts_with("out/") && !f.starts_with("state/") && *f != "firehosed.yaml")
        .collect();
    assert!(
        outside.is_empty(),
        "files outside the destination: {outside:?}"
    );
    let out = files_under(&root.join("out"));
    assert!(
        out.iter().any(|f| f.starts_with("%2E%2E/%2E%2E/escaped/")),
        "{out:?}"
    );
    assert!(out.iter().any(|f| f.starts_with("abs/")), "{out:?}");
    assert!(out.iter().any(|f| f.starts_with("%2E/")), "{out:?}");
}

#[test]
fn concatenated_json_records_are_split_before_partitioning() {
    let d = Daemon::start(&config(
        "      record_deaggregation: json\n      metadata_extraction: {query: '{c: .c}'}",
        "c=!{partitionKeyFromQuery:c}/",
        "",
    ));
    // Each record holds three objects, concatenated and newline-separated.
    let lines: Vec<String> = (0..50)
        .map(|i| {
            format!("{{\"c\":\"x\",\"i\":{i}}}{{\"c\":\"y\",\"i\":{i}}} {{\"c\":\"z\",\"i\":{i}}}")
        })
        .collect();
    put(&d, &lines);
    d.flush("p");
    let objs = objects(&d.dir.path().join("out"));
    for c in ["x", "y", "z"] {
        let got: Vec<&String> = objs
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("c={c}/")))
            .flat_map(|(_, l)| l)
            .collect();
        let want: Vec<String> = (0..50)
            .map(|i| format!("{{\"c\":\"{c}\",\"i\":{i}}}"))
            .collect();
        assert_eq!(got, want.iter().collect::<Vec<_>>(), "partition {c}");
    }
}

#[test]
fn delimited_records_are_split_and_go_through_the_transform_one_by_one() {
    let cfg = format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
delivery_streams:
  - name: p
    source: {{direct_put: {{}}}}
    processing:
      append_delimiter_to_record: true
      record_deaggregation: {{delimited: '####'}}
      transform:
        subprocess: {{command: ['{}', '{}', 'echo_event.handler'], working_directory: '{}'}}
    destinations:
      - directory: '{{dir}}/out'
        compression: GZIP",
        python().display(),
        repo().join("runners/python/firehosed_runner.py").display(),
        repo().join("tests/transforms").display()
    );
    let d = Daemon::start(&cfg);
    put(&d, &["a####bb####ccc####".to_string(), "plain".to_string()]);
    d.flush("p");
    let objs = objects(&d.dir.path().join("out"));
    let data: Vec<String> = objs
        .values()
        .flatten()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("echo json");
            v["data"].as_str().expect("data").to_string()
        })
        .collect();
    assert_eq!(data, ["a", "bb", "ccc", "plain"]);
}

#[test]
fn staging_files_that_could_not_all_be_open_at_once_stop_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(
        "      metadata_extraction: {query: '{c: .c}'}",
        "c=!{partitionKeyFromQuery:c}/",
        ", max_active_partitions: 1000",
    )
    .replace("{dir}", &dir.path().display().to_string());
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, cfg).expect("config");
    let stderr = failed_start_with_open_files(&path, 200);
    assert!(
        stderr.contains("may keep 512 staging files open at once, but the open-file limit is 200"),
        "{stderr}"
    );
    // ZIP partitions are never suspended (a ZIP entry cannot be split): all may be open.
    let zip = std::fs::read_to_string(&path)
        .expect("config")
        .replace("compression: GZIP", "compression: ZIP");
    std::fs::write(&path, zip).expect("config");
    let stderr = failed_start_with_open_files(&path, 1100);
    assert!(
        stderr
            .contains("may keep 1000 staging files open at once, but the open-file limit is 1100"),
        "{stderr}"
    );
}

/// Runs the daemon on `config` under an open-file limit; it must exit at start: its stderr.
fn failed_start_with_open_files(config: &Path, limit: u32) -> String {
    let out = run_output(std::process::Command::new("bash").args([
        "-c",
        &format!(
            "ulimit -n {limit} && exec '{}' run --config '{}'",
            env!("CARGO_BIN_EXE_firehosed"),
            config.display()
        ),
    ]));
    assert!(!out.status.success(), "started under ulimit -n {limit}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_idle_partition_is_suspended_and_resumed_as_a_new_gzip_member() {
    let d = Daemon::start(&config(
        "      metadata_extraction: {query: '{c: .c}'}",
        "c=!{partitionKeyFromQuery:c}/",
        "",
    ));
    put(&d, &[r#"{"c":"idle","n":1}"#.to_string()]);
    // Other partitions keep the destination busy for more than four deliveries.
    for i in 0..8 {
        put(&d, &[format!("{{\"c\":\"busy\",\"n\":{i}}}")]);
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    put(&d, &[r#"{"c":"idle","n":2}"#.to_string()]);
    let keys = d.flush("p");
    assert!(
        d.metric("firehose_partition_suspensions_total{delivery_stream=\"p\"") >= 1.0,
        "the idle partition was suspended"
    );
    let idle = keys
        .iter()
        .find(|k| k.starts_with("c=idle/"))
        .expect("the idle partition's object");
    let data = std::fs::read(d.dir.path().join("out").join(idle)).expect("object");
    // Two gzip members; an independent reader (Python's gzip) reads the object whole.
    let (decoded, _) = py_decode("GZIP", &data);
    assert_eq!(
        String::from_utf8_lossy(&decoded),
        "{\"c\":\"idle\",\"n\":1}\n{\"c\":\"idle\",\"n\":2}\n"
    );
}
