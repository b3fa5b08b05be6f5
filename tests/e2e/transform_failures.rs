//! Transforms that fail: children that crash, hang, answer garbage, omit or repeat recordIds,
//! raise, write stray output; WASM traps, timeouts and memory; start-up errors; shutdown, kill -9
//! and restarts. Every record must end in exactly one place, with AWS's error code.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::transform::*;
use crate::support::*;

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
    let d = Daemon::launch(&config(&runtime, "", ""))
        .in_dir(dir)
        .start();
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
    let err = match Daemon::launch(&cfg).in_dir(dir).try_start() {
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
    let err = match Daemon::launch(&cfg).in_dir(dir).try_start() {
        Ok(_) => panic!("started with a module lacking the ABI"),
        Err(log) => log,
    };
    assert!(err.contains("does not export firehose_alloc"), "{err}");
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
