//! The command line: `validate` and `run`'s start-up failures, on the real binary.

use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

fn validate(yaml: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, yaml).expect("written");
    let out = run_output(firehosed().args(["validate", "--config"]).arg(&path));
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&path.display().to_string(), "FILE");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

/// `validate` refuses what a reload must refuse: an empty file, or one without the list of
/// streams (an empty list is fine).
#[test]
fn validate_refuses_an_empty_file_and_a_missing_stream_list() {
    let (code, _, err) = validate("");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the configuration is empty"), "{err}");
    let (code, _, err) = validate("listen: 127.0.0.1:4573\n");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("delivery_streams: required key is missing"),
        "{err}"
    );
    let (code, out, err) = validate("delivery_streams: []\n");
    assert_eq!((code, out.trim()), (0, "ok: 0 delivery streams"), "{err}");
}

#[test]
fn validate_accepts_every_bundled_config() {
    let mut n = 0;
    for entry in std::fs::read_dir(repo().join("config")).expect("config/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let out = run_output(firehosed().args(["validate", "--config"]).arg(&path));
            assert!(
                out.status.success(),
                "{} does not validate:\n{}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: "));
            n += 1;
        }
    }
    assert!(n >= 1, "config/ holds at least the example");
}

#[test]
fn validate_reports_every_error_with_file_line_column_and_exits_1() {
    let (code, stdout, stderr) = validate(
        "listen: 127.0.0.1:4573
delivery_streams:
  - name: orders
    source: {direct_put: {}}
    destinations:
      - directory: out
        buffering: {size_mib: 500, interval_seconds: 901}
        colour: red
  - name: orders
    source: {direct_put: {}}
    destinations:
      - s3: {}
",
    );
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        vec![
            "FILE:7:31: delivery_streams[0].destinations[0].buffering.size_mib: must be 1..=128 (got 500)",
            "FILE:7:54: delivery_streams[0].destinations[0].buffering.interval_seconds: must be 0..=900 (got 901)",
            "FILE:8:9: delivery_streams[0].destinations[0].colour: unknown key; allowed here: buffering, compression, custom_time_zone, data_format_conversion, delivery, directory, dynamic_partitioning, error_output_prefix, file_extension, prefix, s3, source_record_backup",
            "FILE:9:11: delivery_streams[1].name: duplicate delivery stream name \"orders\" (first defined on line 3)",
            "FILE:12:13: delivery_streams[1].destinations[0].s3.bucket: required key is missing",
        ],
        "{stderr}"
    );
}

#[test]
fn validate_substitutes_environment_variables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.yaml");
    std::fs::write(
        &path,
        "delivery_streams:\n  - name: ${NAME}\n    source: {direct_put: {}}\n    destinations:\n      - directory: out\n        buffering:\n          size_mib: ${SIZE}\n",
    )
    .expect("written");
    let out = run_output(
        firehosed()
            .args(["validate", "-c"])
            .arg(&path)
            .env("NAME", "from-env")
            .env("SIZE", "129"),
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("buffering.size_mib: must be 1..=128 (got 129)"),
        "{stderr}"
    );
    let out = run_output(
        firehosed()
            .args(["validate"])
            .env("FIREHOSED_CONFIG", &path)
            .env("NAME", "from-env")
            .env("SIZE", "64"),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok: 1 delivery streams\n"
    );
}

fn run_fails(yaml: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = yaml.replace("{dir}", &dir.path().display().to_string());
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, text).expect("written");
    let mut child = firehosed()
        .args(["run", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(!status.success(), "expected a start-up failure");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn run_exits_non_zero_when_the_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let stderr = run_fails(&format!(
        "listen: 127.0.0.1:{port}\nstate_dir: {{dir}}/state\ndelivery_streams: []\n"
    ));
    assert!(
        stderr.contains(&format!(
            "error: cannot listen on 127.0.0.1:{port}: Address already in use"
        )),
        "{stderr}"
    );
}

#[test]
fn run_exits_non_zero_when_state_dir_is_not_writable() {
    let stderr = run_fails(
        "listen: 127.0.0.1:0\nstate_dir: /proc/firehosed-cannot-write-here\ndelivery_streams: []\n",
    );
    assert!(
        stderr.contains("error: state_dir /proc/firehosed-cannot-write-here is not writable"),
        "{stderr}"
    );
}

#[test]
fn run_exits_non_zero_on_an_invalid_config() {
    let stderr = run_fails("listen: 127.0.0.1:0\nstate_dir: {dir}\nnope: 1\n");
    assert!(stderr.contains(":3:1: nope: unknown key"), "{stderr}");
    assert!(stderr.contains("is not a valid configuration"), "{stderr}");
}

#[test]
fn run_exits_non_zero_when_the_bucket_is_missing() {
    let moto = Moto::start();
    let stderr = run_fails(&format!(
        "listen: 127.0.0.1:0
state_dir: {{dir}}/state
aws: {{endpoint_url: '{}', force_path_style: true}}
delivery_streams:
  - name: s
    source: {{direct_put: {{}}}}
    destinations:
      - s3: {{bucket: no-such-bucket}}
",
        moto.endpoint
    ));
    assert!(
        stderr.contains("error: delivery stream s: S3 bucket \"no-such-bucket\" does not exist"),
        "{stderr}"
    );
}

/// Without AWS credentials, a stream that writes S3 on a local endpoint stops the start with
/// one line that names the variables to set, not an SDK error chain per provider tried.
#[test]
fn missing_aws_credentials_are_named_in_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.yaml");
    std::fs::write(
        &path,
        format!(
            "listen: 127.0.0.1:0
state_dir: '{}/state'
aws: {{region: us-east-1, endpoint_url: 'http://127.0.0.1:9', force_path_style: true}}
delivery_streams:
  - name: s
    source: {{direct_put: {{}}}}
    destinations: [{{s3: {{bucket: lake}}}}]
",
            dir.path().display()
        ),
    )
    .expect("written");
    let out = run_output(
        firehosed()
            .args(["run", "--config"])
            .arg(&path)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
            .env_remove("AWS_ROLE_ARN")
            .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
            .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            .env_remove("RUST_LOG")
            .env("HOME", dir.path()),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.last().copied(),
        Some(
            "error: delivery stream s: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (a local S3 or Kinesis server takes any values), or AWS_PROFILE with ~/.aws/credentials, or run with an instance or task role"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("provider failed") && lines.len() <= 3,
        "the credential chain's own warnings are not shown: {stderr}"
    );
}
