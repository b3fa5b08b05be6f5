//! A test suite written against AWS runs unchanged against firehosed's control plane: the
//! boto3 scenario of tests/py/aws_fidelity.py (the older S3 destination shape, what was sent
//! echoed by Describe, validation in AWS's order and words, encryption status moves), every
//! check held to AWS's documented behaviour, and every response body checked against the
//! output shapes of AWS's own service model (the pinned botocore's).
//! `bench/fidelity.sh` runs the same script against moto's Firehose, side by side.
//! A stream whose bucket did not exist is ACTIVE, counts its failed deliveries and delivers its
//! records once the bucket is created, as AWS retries delivery failures.

use crate::support::*;
use serde_json::Value;

#[test]
fn the_control_plane_behaves_as_aws_documents_it() {
    use crate::support::transform::python_runner;
    let moto = Moto::start();
    moto.create_bucket("lake");
    let config = format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
aws: {{region: us-east-1, account_id: '123456789012', endpoint_url: '{}', force_path_style: true}}
lambda_functions:
  echo-event:
    subprocess: {}
delivery_streams: []
",
        moto.endpoint,
        python_runner("echo_event.handler")
    );
    let d = Daemon::start(&config);
    let out = run_output(
        std::process::Command::new(python())
            .arg(py_script("aws_fidelity.py"))
            .args([d.url.as_str(), "lake", "echo-event"]),
    );
    assert!(
        out.status.success(),
        "aws_fidelity.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let checks = v["checks"].as_object().expect("checks");
    // Every check ran: none was skipped because a stream it needs was refused.
    let mut names: Vec<&str> = checks.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names.len(), 38, "{names:#?}");
    for needed in [
        "S3DestinationUpdate applies, LastUpdateTimestamp appears",
        "StartDeliveryStreamEncryption: ENABLING, then ENABLED",
        "StopDeliveryStreamEncryption: DISABLING, then DISABLED",
        "... and PutRecord then answers Encrypted: true",
    ] {
        assert!(names.contains(&needed), "{needed} did not run: {names:#?}");
    }
    let failed: Vec<_> = checks
        .iter()
        .filter(|(_, c)| c["ok"] != true)
        .map(|(name, c)| format!("{name}: expected {} got {}", c["expected"], c["got"]))
        .collect();
    assert!(
        failed.is_empty(),
        "differs from AWS:\n{}",
        failed.join("\n")
    );
    assert_eq!(
        v["model_violations"],
        serde_json::json!([]),
        "responses outside AWS's output shapes"
    );
    bucket_made_later_gets_the_records(&d, &moto);
}

/// The scenario left `fid-later` ACTIVE with one record and no bucket: its delivery fails
/// (counted), and once the bucket exists the record is there, with nothing else done.
fn bucket_made_later_gets_the_records(d: &Daemon, moto: &Moto) {
    // The flush seals the object and answers once it is written: after the bucket exists.
    let flush_url = format!("{}/v1/streams/fid-later/flush", d.url);
    let flushing = std::thread::spawn(move || http(&flush_url, "POST", &[], b""));
    let failures =
        "firehose_delivery_to_s3_failures_total{delivery_stream=\"fid-later\",destination=\"0\"}";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while d.metric(failures) < 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no failed delivery counted"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(moto.keys("lake").iter().all(|k| !k.contains("fid-later")));
    moto.create_bucket("lake-later");
    let (status, body) = flushing.join().expect("the flush thread");
    assert_eq!(status, 200, "{body}");
    let keys = moto.keys("lake-later");
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(moto.get("lake-later", &keys[0]), b"{\"waits\": true}\n");
}
