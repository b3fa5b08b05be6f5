//! The transform stage on the real binary: unmodified Lambda handlers through the shipped
//! runners, WASM modules, and children that crash, hang or answer garbage. Every input record
//! must end in exactly one place: delivered, counted as dropped, or in the error prefix with
//! AWS's error code.

mod support;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::*;

fn transforms() -> PathBuf {
    repo().join("tests/transforms")
}

fn python_runner(handler: &str) -> String {
    format!(
        "{{command: ['{}', '{}', '{handler}'], working_directory: '{}'}}",
        python().display(),
        repo().join("runners/python/firehosed_runner.py").display(),
        transforms().display()
    )
}

fn node_runner(handler: &str) -> String {
    format!(
        "{{command: ['node', '{}', '{handler}'], working_directory: '{}'}}",
        repo().join("runners/node/firehosed_runner.js").display(),
        transforms().display()
    )
}

/// A raw-protocol Python script of tests/transforms.
fn script(name: &str, args: &[&str]) -> String {
    let mut cmd = vec![
        python().display().to_string(),
        transforms().join(name).display().to_string(),
    ];
    cmd.extend(args.iter().map(|a| a.to_string()));
    let quoted: Vec<String> = cmd.iter().map(|c| format!("'{c}'")).collect();
    format!("{{command: [{}]}}", quoted.join(", "))
}

fn wasm(name: &str) -> String {
    format!(
        "{{module: '{}'}}",
        repo().join("tests/wasm").join(name).display()
    )
}

/// One Direct PUT stream with the transform `runtime` (`subprocess: ...` or `wasm: ...`) and a
/// GZIP directory destination: `data/` for records, `errors/<type>/` for error records.
fn config(runtime: &str, transform_extra: &str, destination_extra: &str) -> String {
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

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("gzip");
    out
}

/// Lines of every object under `out/<prefix>`, in key order.
fn lines_under(out: &Path, prefix: &str) -> Vec<String> {
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

fn error_records(out: &Path) -> Vec<serde_json::Value> {
    lines_under(out, "errors/")
        .iter()
        .map(|l| serde_json::from_str(l).expect("an error record is JSON"))
        .collect()
}

fn decode_raw(e: &serde_json::Value) -> String {
    use base64::Engine;
    let raw = e["rawData"].as_str().expect("rawData");
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .expect("base64"),
    )
    .expect("utf8")
}

fn put_lines(d: &Daemon, lines: &[String]) {
    let mut body = lines.join("\n").into_bytes();
    body.push(b'\n');
    let (status, text) = d.post("/v1/streams/t/records", &body);
    assert_eq!(status, 200, "{text}");
}

/// JSON records with actions keep / drop / fail in turn, plus one record that is not JSON.
fn blueprint_input(n: usize) -> Vec<String> {
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
fn check_blueprint_outcome(d: &Daemon, input: &[String]) {
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

fn blueprint_through(runtime: &str) {
    let d = Daemon::start(&config(runtime, "", ""));
    let input = blueprint_input(300);
    put_lines(&d, &input);
    let keys = d.flush("t");
    assert!(
        keys.iter()
            .any(|k| k.starts_with("errors/processing-failed/t-1-") && k.ends_with(".gz")),
        "error objects are named like the destination's and take its compression: {keys:?}"
    );
    check_blueprint_outcome(&d, &input);
}

#[test]
fn python_blueprint_handler_runs_unchanged_through_the_runner() {
    blueprint_through(&format!(
        "subprocess: {}",
        python_runner("blueprint.lambda_handler")
    ));
}

#[test]
fn node_async_handler_runs_unchanged_through_the_runner() {
    blueprint_through(&format!("subprocess: {}", node_runner("blueprint.handler")));
}

#[test]
fn node_callback_handler_runs_unchanged_through_the_runner() {
    blueprint_through(&format!(
        "subprocess: {}",
        node_runner("blueprint_callback.handler")
    ));
}

#[test]
fn wasm_module_keeps_drops_and_fails_records() {
    let d = Daemon::start(&config(&format!("wasm: {}", wasm("blueprint.wat")), "", ""));
    let input: Vec<String> = (0..90)
        .map(|i| format!("{}-{i}", ["keep", "drop", "fail"][i % 3]))
        .collect();
    put_lines(&d, &input);
    d.flush("t");
    let out = d.dir.path().join("out");
    let delivered = lines_under(&out, "data/");
    let kept: Vec<String> = input
        .iter()
        .filter(|l| l.starts_with("keep"))
        .cloned()
        .collect();
    // The module returns the data unchanged and without a delimiter: one line of all of them.
    assert_eq!(delivered, vec![kept.concat()]);
    let mut failed: Vec<String> = error_records(&out).iter().map(decode_raw).collect();
    failed.sort();
    let mut expected: Vec<String> = input
        .iter()
        .filter(|l| l.starts_with("fail"))
        .cloned()
        .collect();
    expected.sort();
    assert_eq!(failed, expected);
    assert_eq!(
        d.metric("firehose_transform_records_dropped_total{delivery_stream=\"t\"}"),
        30.0
    );
}

/// Runs 20 records through a transform that always fails and checks that every one of them is
/// in the error prefix with `code`, after 1 + retries attempts, and nothing is delivered.
fn all_fail_with(runtime: &str, transform_extra: &str, code: &str, retries: u64) -> Daemon {
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
fn children_of(pid: u32) -> Vec<(u32, char)> {
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

fn no_zombies(d: &Daemon) {
    let zombies: Vec<_> = children_of(d.pid())
        .into_iter()
        .filter(|(_, s)| *s == 'Z')
        .collect();
    assert!(zombies.is_empty(), "zombie children: {zombies:?}");
}

#[test]
fn a_child_that_crashes_on_every_call_sends_the_batch_to_the_error_prefix() {
    let d = all_fail_with(
        &format!("subprocess: {}", script("crash.py", &[])),
        "        number_of_retries: 2",
        "Lambda.FunctionError",
        2,
    );
    no_zombies(&d);
}

#[test]
fn a_hanging_child_is_killed_at_the_timeout() {
    let mut d = all_fail_with(
        &format!("subprocess: {}", script("hang.py", &[])),
        "        number_of_retries: 1\n        timeout_seconds: 1",
        "Lambda.FunctionTimedOut",
        1,
    );
    let logs = d.logs();
    let started = logs.matches("transform process started").count();
    assert!(started >= 2, "a new child after the timeout:\n{logs}");
    // Only the current child (started for the next batch, or none) is alive; none is a zombie.
    let alive: Vec<_> = children_of(d.pid())
        .into_iter()
        .filter(|(_, s)| *s != 'Z')
        .collect();
    assert!(alive.len() <= 1, "hung children were not killed: {alive:?}");
    no_zombies(&d);
}

#[test]
fn garbage_answers_are_json_processing_exceptions() {
    all_fail_with(
        &format!("subprocess: {}", script("garbage.py", &[])),
        "        number_of_retries: 1",
        "Lambda.JsonProcessingException",
        1,
    );
}

#[test]
fn a_missing_record_id_fails_the_invocation() {
    all_fail_with(
        &format!("subprocess: {}", script("missing_id.py", &[])),
        "        number_of_retries: 0",
        "Lambda.MissingRecordId",
        0,
    );
}

#[test]
fn a_duplicated_record_id_fails_the_invocation() {
    all_fail_with(
        &format!("subprocess: {}", script("duplicate_id.py", &[])),
        "        number_of_retries: 0",
        "Lambda.DuplicatedRecordId",
        0,
    );
}

#[test]
fn a_handler_that_raises_is_a_function_error_and_the_runner_stays_up() {
    let mut d = all_fail_with(
        &format!(
            "subprocess: {}",
            python_runner("raises_handler.lambda_handler")
        ),
        "        number_of_retries: 3",
        "Lambda.FunctionError",
        3,
    );
    let errors = error_records(&d.dir.path().join("out"));
    assert!(
        errors[0]["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("boom")),
        "{}",
        errors[0]
    );
    let logs = d.logs();
    assert_eq!(
        logs.matches("transform process started").count(),
        1,
        "a handler error does not restart the runner:\n{logs}"
    );
}

#[test]
fn wasm_traps_timeouts_memory_and_bad_json_are_failed_invocations() {
    all_fail_with(
        &format!("wasm: {}", wasm("trap.wat")),
        "        number_of_retries: 1",
        "Lambda.FunctionError",
        1,
    );
    all_fail_with(
        &format!("wasm: {}", wasm("loop.wat")),
        "        number_of_retries: 0\n        timeout_seconds: 1",
        "Lambda.FunctionTimedOut",
        0,
    );
    all_fail_with(
        &format!(
            "wasm: {{module: '{}', max_memory_mib: 16}}",
            repo().join("tests/wasm/oom.wat").display()
        ),
        "        number_of_retries: 0",
        "Lambda.FunctionError",
        0,
    );
    all_fail_with(
        &format!("wasm: {}", wasm("badjson.wat")),
        "        number_of_retries: 0",
        "Lambda.JsonProcessingException",
        0,
    );
}

#[test]
fn a_crashed_invocation_is_retried_on_a_new_child_and_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("crashed-once");
    let runtime = format!(
        "subprocess: {}",
        script("crash_once.py", &[&marker.display().to_string()])
    );
    let d = Daemon::start_in(dir, &config(&runtime, "", ""));
    let input: Vec<String> = (0..50).map(|i| format!("r{i}")).collect();
    put_lines(&d, &input);
    d.flush("t");
    let out = d.dir.path().join("out");
    assert_eq!(lines_under(&out, "data/"), vec![input.concat()]);
    assert!(error_records(&out).is_empty());
    assert_eq!(
        d.metric("firehose_execute_processing_failures_total{delivery_stream=\"t\"}"),
        1.0
    );
    no_zombies(&d);
}

#[test]
fn batches_follow_the_transform_buffer_and_the_6_mb_request_limit() {
    let runtime = format!("subprocess: {}", script("batch_sizes.py", &[]));
    let mut d = Daemon::start(&config(&runtime, "        buffer_size_mib: 0.2", ""));
    // 1 MiB of 1 KiB records: at least five invocations of at most 0.2 MiB of data.
    let big: Vec<String> = (0..1024).map(|i| format!("{i:0>1024}")).collect();
    put_lines(&d, &big);
    d.flush("t");
    let logs = d.logs();
    let batches: Vec<(usize, usize)> = logs
        .lines()
        .filter_map(|l| {
            let b = l.split("request_bytes=").nth(1)?;
            let (bytes, rest) = b.split_once(' ')?;
            let records = rest.split("records=").nth(1)?.split_whitespace().next()?;
            Some((bytes.parse().ok()?, records.parse().ok()?))
        })
        .collect();
    assert_eq!(batches.iter().map(|b| b.1).sum::<usize>(), 1024, "{logs}");
    assert!(batches.len() >= 5, "{batches:?}");
    for (_, records) in &batches {
        assert!(records * 1024 <= 209_716, "{batches:?}");
    }
    assert_eq!(
        lines_under(&d.dir.path().join("out"), "data/"),
        vec![big.concat()]
    );
    drop(d);

    // Many tiny records with a 3 MiB buffer: the request limit cuts the batches first.
    let mut d = Daemon::start(&config(&runtime, "        buffer_size_mib: 3", ""));
    let tiny: Vec<String> = (0..80_000).map(|i| format!("{}", i % 10)).collect();
    put_lines(&d, &tiny);
    d.flush("t");
    let logs = d.logs();
    let sizes: Vec<usize> = logs
        .lines()
        .filter_map(|l| {
            l.split("request_bytes=")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(sizes.len() >= 2, "{sizes:?}");
    assert!(sizes.iter().all(|&s| s <= 6_000_000), "{sizes:?}");
}

#[test]
fn the_transform_buffer_interval_delivers_without_a_flush() {
    let runtime = format!("subprocess: {}", script("batch_sizes.py", &[]));
    let cfg = config(&runtime, "", "")
        .replace("buffer_interval_seconds: 900", "buffer_interval_seconds: 1")
        .replace("interval_seconds: 900}", "interval_seconds: 0}");
    let d = Daemon::start(&cfg);
    put_lines(&d, &["a".to_string(), "b".to_string()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let out = d.dir.path().join("out");
    while lines_under(&out, "data/").is_empty() {
        assert!(Instant::now() < deadline, "nothing delivered within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(lines_under(&out, "data/"), vec!["ab".to_string()]);
}

#[test]
fn source_record_backup_keeps_the_records_before_the_transform() {
    let d = Daemon::start(&config(
        &format!("subprocess: {}", python_runner("blueprint.lambda_handler")),
        "",
        "        source_record_backup: {prefix: 'raw/'}",
    ));
    let input = blueprint_input(60);
    put_lines(&d, &input);
    let keys = d.flush("t");
    assert!(
        keys.iter()
            .any(|k| k.starts_with("raw/") && k.ends_with(".gz")),
        "{keys:?}"
    );
    let out = d.dir.path().join("out");
    // Backups are the records as sent (no delimiter was appended: they are concatenated).
    assert_eq!(lines_under(&out, "raw/"), vec![input.concat()]);
    check_blueprint_outcome(&d, &input);
    assert_eq!(
        d.metric("firehose_backup_to_s3_records_total{delivery_stream=\"t\"") as usize,
        input.len()
    );
}

#[test]
fn the_transform_child_is_stopped_on_shutdown() {
    let mut d = Daemon::start(&config(
        &format!("subprocess: {}", python_runner("blueprint.lambda_handler")),
        "",
        "",
    ));
    let children: Vec<u32> = children_of(d.pid()).into_iter().map(|c| c.0).collect();
    assert_eq!(children.len(), 1, "one transform child: {children:?}");
    put_lines(&d, &blueprint_input(10));
    let status = d.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    // The records buffered at SIGTERM went through the transform before exit.
    let out = d.dir.path().join("out");
    assert_eq!(lines_under(&out, "data/").len(), 4);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{}", children[0])).exists() {
        assert!(
            Instant::now() < deadline,
            "the transform child outlived the daemon"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn one_invocation_per_record_whatever_the_number_of_destinations() {
    let cfg = config(
        &format!("subprocess: {}", python_runner("blueprint.lambda_handler")),
        "",
        "      - directory: '{dir}/second'
        prefix: 'data/'
        buffering: {size_mib: 128, interval_seconds: 900}
        compression: GZIP",
    );
    let d = Daemon::start(&cfg);
    let input = blueprint_input(30);
    put_lines(&d, &input);
    d.flush("t");
    assert_eq!(
        d.metric("firehose_execute_processing_invocations_total{delivery_stream=\"t\"}"),
        1.0
    );
    let first = lines_under(&d.dir.path().join("out"), "data/");
    // (data/20..: the second destination's own default error location is data/processing-failed/)
    let second = lines_under(&d.dir.path().join("second"), "data/20");
    assert_eq!(first, second);
    assert_eq!(first.len(), 10);
    // The second destination has no error prefix: AWS's default location under its prefix.
    let defaults: Vec<String> = files_under(&d.dir.path().join("second"))
        .into_iter()
        .filter(|k| k.starts_with("data/processing-failed/"))
        .collect();
    assert_eq!(defaults.len(), 1, "{defaults:?}");
}

#[test]
fn records_replayed_after_kill_9_go_through_the_transform_again() {
    let cfg = config(
        &format!("subprocess: {}", python_runner("blueprint.lambda_handler")),
        "",
        "",
    );
    let mut d = Daemon::start(&cfg);
    let input = blueprint_input(90);
    put_lines(&d, &input);
    d.kill9();
    let d = d.restart();
    d.flush("t");
    check_blueprint_outcome(&d, &input);
}

#[test]
fn a_command_that_cannot_start_fails_the_start_up_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config("subprocess: {command: ['/nonexistent/transform']}", "", "");
    let err = match Daemon::try_start_in(dir, &cfg) {
        Ok(_) => panic!("started with a missing transform command"),
        Err(log) => log,
    };
    assert!(
        err.contains("cannot start the transform command")
            && err.contains("/nonexistent/transform"),
        "{err}"
    );
}

#[test]
fn a_wasm_module_without_the_abi_exports_fails_the_start_up_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let module = dir.path().join("empty.wat");
    std::fs::write(&module, "(module (memory (export \"memory\") 1))").expect("module");
    let cfg = config(&format!("wasm: {{module: '{}'}}", module.display()), "", "");
    let err = match Daemon::try_start_in(dir, &cfg) {
        Ok(_) => panic!("started with a module lacking the ABI"),
        Err(log) => log,
    };
    assert!(err.contains("does not export firehose_alloc"), "{err}");
}

/// The request event a handler sees, as the echo handler reports it.
fn echoed(out: &Path) -> Vec<BTreeMap<String, serde_json::Value>> {
    lines_under(out, "data/")
        .iter()
        .map(|l| serde_json::from_str(l).expect("echo JSON"))
        .collect()
}

#[test]
fn the_lambda_event_carries_the_aws_fields() {
    let d = Daemon::start(&config(
        &format!("subprocess: {}", python_runner("echo_event.handler")),
        "",
        "",
    ));
    put_lines(&d, &["one".to_string(), "two".to_string()]);
    d.flush("t");
    let seen = echoed(&d.dir.path().join("out"));
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0]["data"], "one");
    assert_eq!(seen[1]["data"], "two");
    assert_eq!(
        seen[0]["deliveryStreamArn"],
        "arn:aws:firehose:us-east-1:000000000000:deliverystream/t"
    );
    assert_eq!(seen[0]["region"], "us-east-1");
    assert_eq!(seen[0]["functionName"], "firehosed-t");
    assert_eq!(seen[0]["requestId"], seen[0]["invocationId"]);
    assert!(seen[0]["sourceKinesisStreamArn"].is_null());
    assert!(seen[0]["approximateArrivalTimestamp"].as_i64().is_some());
}

#[test]
fn a_kinesis_source_adds_the_stream_arn_and_record_metadata() {
    let k = Kinesalite::start();
    k.tool(&["create", "src", "1"]);
    k.tool(&["put", "src", "hello", "1", "1"]);
    let cfg = format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
delivery_streams:
  - name: t
    source:
      kinesis_stream: {{stream_name: src, endpoint_url: '{}', starting_position: TRIM_HORIZON}}
    processing:
      transform:
        subprocess: {}
        buffer_interval_seconds: 900
    destinations:
      - directory: '{{dir}}/out'
        prefix: 'data/'
        buffering: {{size_mib: 128, interval_seconds: 900}}
        compression: GZIP",
        k.endpoint,
        python_runner("echo_event.handler")
    );
    let d = Daemon::start(&cfg);
    let out = d.dir.path().join("out");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        d.flush("t");
        if !echoed(&out).is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "nothing read from the stream");
        std::thread::sleep(Duration::from_millis(300));
    }
    let seen = echoed(&out);
    assert_eq!(seen[0]["data"], "hello-k0-0");
    assert_eq!(
        seen[0]["sourceKinesisStreamArn"],
        "arn:aws:kinesis:us-east-1:000000000000:stream/src"
    );
    let meta = &seen[0]["kinesisRecordMetadata"];
    assert_eq!(meta["shardId"], "shardId-000000000000");
    assert_eq!(meta["partitionKey"], "k0");
    assert!(meta["sequenceNumber"].is_string(), "{meta}");
    assert_eq!(meta["subsequenceNumber"], 0);
    assert!(meta["approximateArrivalTimestamp"].as_i64().is_some());
}

#[test]
fn the_assemblyscript_example_upper_cases_records() {
    let out = run_output(
        std::process::Command::new("bash")
            .arg(repo().join("scripts/build-wasm-example.sh"))
            .env("FIREHOSED_TOOLS", tools()),
    );
    assert!(
        out.status.success(),
        "build-wasm-example.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let module = String::from_utf8(out.stdout).expect("path");
    let d = Daemon::start(&config(
        &format!("wasm: {{module: '{}'}}", module.trim()),
        "",
        "",
    ));
    let input: Vec<String> = (0..500)
        .map(|i| format!("{{\"id\":{i},\"msg\":\"hello firehose \u{e9}t\u{e9}\"}}"))
        .collect();
    put_lines(&d, &input);
    d.flush("t");
    let delivered = lines_under(&d.dir.path().join("out"), "data/");
    // ASCII letters upper-cased, other characters kept; records concatenated (no delimiter).
    let expected: String = input.iter().map(|l| l.to_ascii_uppercase()).collect();
    assert_eq!(delivered, vec![expected]);
}

#[test]
fn error_and_backup_objects_are_sealed_with_the_main_object() {
    // A destination's cursor waits for its oldest open object; an error or backup object left
    // open while main objects are written would make a kill -9 write those again.
    let cfg = config(
        &format!("subprocess: {}", python_runner("blueprint.lambda_handler")),
        "        buffer_size_mib: 0.5",
        "        source_record_backup: {prefix: 'raw/'}",
    )
    .replace(
        "size_mib: 128, interval_seconds: 900",
        "size_mib: 1, interval_seconds: 900",
    );
    let d = Daemon::start(&cfg);
    let input: Vec<String> = (0..3000)
        .map(|i| {
            // One small failed record: its error object never fills up on its own.
            let action = if i == 0 { "fail" } else { "keep" };
            format!(
                "{{\"id\":{i},\"action\":\"{action}\",\"pad\":\"{}\"}}",
                "x".repeat(1000)
            )
        })
        .collect();
    put_lines(&d, &input);
    let out = d.dir.path().join("out");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let files = files_under(&out);
        let has = |p: &str| files.iter().any(|f| f.starts_with(p));
        if has("data/") && has("errors/") && has("raw/") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no flush was asked and the buffers are 1 MiB: main objects sealed on size must take the error and backup objects with them: {files:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_child_that_writes_stray_stdout_is_restarted_before_the_next_request() {
    let mut d = Daemon::start(&config(
        &format!("subprocess: {}", script("chatty.py", &[])),
        "        number_of_retries: 0",
        "",
    ));
    put_lines(&d, &["one".to_string()]);
    d.flush("t");
    std::thread::sleep(Duration::from_millis(500));
    put_lines(&d, &["two".to_string()]);
    d.flush("t");
    let out = d.dir.path().join("out");
    // Two objects written in the same second: key order is the uuid's, not time's.
    let mut lines = lines_under(&out, "data/");
    lines.sort();
    assert_eq!(lines, ["one", "two"]);
    assert!(error_records(&out).is_empty());
    let logs = d.logs();
    assert!(
        logs.contains("wrote to stdout outside an answer"),
        "the stray line was noticed:\n{logs}"
    );
}

#[test]
fn a_record_that_fills_the_transform_buffer_is_not_delivered_again_after_a_clean_restart() {
    let cfg = config(
        &format!("subprocess: {}", script("passthrough.py", &[])),
        "        buffer_size_mib: 0.2",
        "",
    );
    let mut d = Daemon::start(&cfg);
    // Exactly the transform buffer (0.2 MiB = 209,715 bytes): it is invoked as the record is
    // buffered, and the record's log position must count as handed over.
    put_lines(&d, &["x".repeat(209_715)]);
    d.flush("t");
    assert!(d.terminate(Duration::from_secs(30)).success());
    let d = d.restart();
    d.flush("t");
    let delivered = files_under(&d.dir.path().join("out"))
        .into_iter()
        .filter(|k| k.starts_with("data/"))
        .count();
    assert_eq!(delivered, 1, "the record was written once, not replayed");
}
