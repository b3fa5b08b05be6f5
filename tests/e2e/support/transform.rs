//! Helpers of the transform tests (tests/e2e/transform.rs, tests/e2e/transform_failures.rs):
//! runtimes as YAML, a stream config with one GZIP directory destination, readers of what it
//! wrote.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::*;

pub fn transforms() -> PathBuf {
    repo().join("tests/transforms")
}

pub fn python_runner(handler: &str) -> String {
    format!(
        "{{command: ['{}', '{}', '{handler}'], working_directory: '{}'}}",
        python().display(),
        repo().join("runners/python/firehosed_runner.py").display(),
        transforms().display()
    )
}

pub fn node_runner(handler: &str) -> String {
    format!(
        "{{command: ['node', '{}', '{handler}'], working_directory: '{}'}}",
        repo().join("runners/node/firehosed_runner.js").display(),
        transforms().display()
    )
}

/// A raw-protocol Python script of tests/transforms.
pub fn script(name: &str, args: &[&str]) -> String {
    let mut cmd = vec![
        python().display().to_string(),
        transforms().join(name).display().to_string(),
    ];
    cmd.extend(args.iter().map(|a| a.to_string()));
    let quoted: Vec<String> = cmd.iter().map(|c| format!("'{c}'")).collect();
    format!("{{command: [{}]}}", quoted.join(", "))
}

pub fn wasm(name: &str) -> String {
    format!(
        "{{module: '{}'}}",
        repo().join("tests/wasm").join(name).display()
    )
}

/// One Direct PUT stream with the transform `runtime` (`subprocess: ...` or `wasm: ...`) and a
/// GZIP directory destination: `data/` for records, `errors/<type>/` for error records.
pub fn config(runtime: &str, transform_extra: &str, destination_extra: &str) -> String {
    format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
delivery_streams:
  - name: t
    source: {{direct_put: {{}}}}
    processing:
      transform:
        {runtime}
        buffer_interval_seconds: 900
{transform_extra}
    destinations:
      - directory: '{{dir}}/out'
        prefix: 'data/'
        error_output_prefix: 'errors/!{{firehose:error-output-type}}/'
        buffering: {{size_mib: 128, interval_seconds: 900}}
        compression: GZIP
{destination_extra}"
    )
}

pub fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("gzip");
    out
}

/// Lines of every object under `out/<prefix>`, in key order.
pub fn lines_under(out: &Path, prefix: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for key in files_under(out) {
        if key.starts_with(prefix) {
            let data = gunzip(&std::fs::read(out.join(&key)).expect("object"));
            lines.extend(
                String::from_utf8(data)
                    .expect("utf8")
                    .lines()
                    .map(str::to_string),
            );
        }
    }
    lines
}

pub fn error_records(out: &Path) -> Vec<serde_json::Value> {
    lines_under(out, "errors/")
        .iter()
        .map(|l| serde_json::from_str(l).expect("an error record is JSON"))
        .collect()
}

pub fn decode_raw(e: &serde_json::Value) -> String {
    use base64::Engine;
    let raw = e["rawData"].as_str().expect("rawData");
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .expect("base64"),
    )
    .expect("utf8")
}

pub fn put_lines(d: &Daemon, lines: &[String]) {
    let mut body = lines.join("\n").into_bytes();
    body.push(b'\n');
    let (status, text) = d.post("/v1/streams/t/records", &body);
    assert_eq!(status, 200, "{text}");
}

/// JSON records with actions keep / drop / fail in turn, plus one record that is not JSON.
pub fn blueprint_input(n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..n)
        .map(|i| {
            let action = ["keep", "drop", "fail"][i % 3];
            format!(
                "{{\"id\":{i},\"action\":\"{action}\",\"pad\":\"{}\"}}",
                "x".repeat(i % 40)
            )
        })
        .collect();
    v.push("this is not json".into());
    v
}

/// The blueprint handlers' behaviour: keep -> Ok with "processed": true, drop -> Dropped,
/// fail or not JSON -> ProcessingFailed; every record in exactly one place.
pub fn check_blueprint_outcome(d: &Daemon, input: &[String]) {
    let out = d.dir.path().join("out");
    let delivered = lines_under(&out, "data/");
    let errors = error_records(&out);
    let mut expected_delivered = Vec::new();
    let mut expected_failed = Vec::new();
    let mut dropped = 0;
    for line in input {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) if v["action"] == "keep" => {
                let mut v = v.clone();
                v["processed"] = serde_json::Value::Bool(true);
                expected_delivered.push(v);
            }
            Ok(v) if v["action"] == "drop" => dropped += 1,
            _ => expected_failed.push(line.clone()),
        }
    }
    let got: Vec<serde_json::Value> = delivered
        .iter()
        .map(|l| serde_json::from_str(l).expect("delivered JSON"))
        .collect();
    assert_eq!(got, expected_delivered, "delivered records, in order");
    let mut failed: Vec<String> = errors.iter().map(decode_raw).collect();
    failed.sort();
    expected_failed.sort();
    assert_eq!(failed, expected_failed, "records in the error prefix");
    for e in &errors {
        assert_eq!(e["errorCode"], "Lambda.ProcessingFailedStatus", "{e}");
        assert_eq!(e["errorMessage"], "ProcessingFailed status set for record");
        assert_eq!(e["attemptsMade"], 1);
        assert!(
            e["arrivalTimestamp"]
                .as_i64()
                .is_some_and(|t| t > 1_600_000_000_000)
        );
        assert!(e["attemptEndingTimestamp"].as_i64() >= e["arrivalTimestamp"].as_i64());
        assert_eq!(
            e["lambdaArn"],
            "arn:aws:lambda:us-east-1:000000000000:function:firehosed-t"
        );
    }
    assert_eq!(
        d.metric("firehose_transform_records_dropped_total{delivery_stream=\"t\"}") as usize,
        dropped
    );
    assert_eq!(
        delivered.len() + errors.len() + dropped,
        input.len(),
        "every record in exactly one place"
    );
    assert_eq!(
        d.metric("firehose_error_output_records_total{delivery_stream=\"t\"") as usize,
        errors.len()
    );
}

/// Runs 20 records through a transform that always fails and checks that every one of them is
/// in the error prefix with `code`, after 1 + retries attempts, and nothing is delivered.
pub fn all_fail_with(runtime: &str, transform_extra: &str, code: &str, retries: u64) -> Daemon {
    let d = Daemon::start(&config(runtime, transform_extra, ""));
    let input: Vec<String> = (0..20).map(|i| format!("record-{i}")).collect();
    put_lines(&d, &input);
    d.flush("t");
    let out = d.dir.path().join("out");
    assert!(lines_under(&out, "data/").is_empty(), "nothing delivered");
    let errors = error_records(&out);
    let mut raw: Vec<String> = errors.iter().map(decode_raw).collect();
    raw.sort();
    let mut expected = input.clone();
    expected.sort();
    assert_eq!(raw, expected, "every record in the error prefix, once");
    for e in &errors {
        assert_eq!(e["errorCode"], code, "{e}");
        assert_eq!(e["attemptsMade"], retries + 1, "{e}");
        assert!(!e["errorMessage"].as_str().unwrap_or("").is_empty());
    }
    assert_eq!(
        d.metric("firehose_execute_processing_failures_total{delivery_stream=\"t\"}"),
        (retries + 1) as f64
    );
    d
}

/// Processes whose parent is `pid`, with their state letter.
pub fn children_of(pid: u32) -> Vec<(u32, char)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("proc").flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r.trim().to_string()) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next().and_then(|s| s.chars().next()).unwrap_or('?');
        if f.next().and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            out.push((child, state));
        }
    }
    out
}

pub fn no_zombies(d: &Daemon) {
    let zombies: Vec<_> = children_of(d.pid())
        .into_iter()
        .filter(|(_, s)| *s == 'Z')
        .collect();
    assert!(zombies.is_empty(), "zombie children: {zombies:?}");
}

/// The request event a handler sees, as the echo handler reports it.
pub fn echoed(out: &Path) -> Vec<BTreeMap<String, serde_json::Value>> {
    lines_under(out, "data/")
        .iter()
        .map(|l| serde_json::from_str(l).expect("echo JSON"))
        .collect()
}
