//! The transform stage on the real binary: unmodified Lambda handlers through the shipped
//! runners, WASM modules, batching, backups, the Lambda event. Every input record must end in
//! exactly one place: delivered, counted as dropped, or in the error prefix. Failure cases are
//! in tests/e2e/transform_failures.rs.

use std::time::{Duration, Instant};

use crate::support::transform::*;
use crate::support::*;

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

/// `transform.concurrency: 4`: four invocations run at once (the transform waits until it
/// sees four, and says how many it saw), they finish out of order, and still every record ends
/// where its answer says, in log order: delivered records in one object in the order sent,
/// Dropped counted, ProcessingFailed in the error prefix in the order sent.
#[test]
fn concurrent_invocations_keep_log_order() {
    const N: usize = 6000;
    let rendezvous = tempfile::tempdir().expect("tempdir");
    let dir = rendezvous.path().display().to_string();
    let runtime = format!("subprocess: {}", script("rendezvous.py", &[&dir, "4"]));
    let mut d = Daemon::start(&config(
        &runtime,
        "        buffer_size_mib: 0.2\n        concurrency: 4",
        "",
    ));
    let input: Vec<String> = (0..N).map(|i| format!("{i}:{}", "x".repeat(300))).collect();
    put_lines(&d, &input);
    d.flush("t");
    let logs = d.logs();
    let seen: Vec<usize> = logs
        .lines()
        .filter_map(|l| {
            l.split("active_at_start=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(seen.len() >= 8, "at least eight invocations: {seen:?}");
    assert_eq!(seen.iter().max(), Some(&4), "{seen:?}");

    let out = d.dir.path().join("out");
    let want: Vec<String> = (0..N)
        .filter(|n| n % 7 != 3 && n % 7 != 5)
        .map(|n| format!("v{n}"))
        .collect();
    assert_eq!(lines_under(&out, "data/"), want);
    let failed: Vec<String> = error_records(&out)
        .iter()
        .map(|e| decode_raw(e).split(':').next().unwrap_or("").to_string())
        .collect();
    let want_failed: Vec<String> = (0..N)
        .filter(|n| n % 7 == 5)
        .map(|n| n.to_string())
        .collect();
    assert_eq!(failed, want_failed);
    assert_eq!(
        d.metric("firehose_transform_records_dropped_total{delivery_stream=\"t\"") as usize,
        (0..N).filter(|n| n % 7 == 3).count()
    );
}
