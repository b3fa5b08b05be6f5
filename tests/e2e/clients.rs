//! Real clients, unchanged but for the endpoint: boto3's firehose client and the AWS CLI
//! (`aws firehose put-record-batch --endpoint-url ...`), delivering to a real S3 server (moto).

use std::process::Command;

use crate::support::*;
use serde_json::{Value, json};

fn config(moto: &Moto, bucket: &str) -> String {
    format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
aws: {{endpoint_url: '{}', force_path_style: true}}
delivery_streams:
  - name: clicks
    source: {{direct_put: {{}}}}
    destinations:
      - s3: {{bucket: {bucket}}}
        prefix: 'clicks/'
        buffering: {{size_mib: 1, interval_seconds: 900}}
",
        moto.endpoint
    )
}

#[test]
fn boto3_firehose_client_works_unchanged() {
    let moto = Moto::start();
    moto.create_bucket("boto");
    let d = Daemon::start(&config(&moto, "boto"));
    let out = Command::new(python())
        .arg(py_script("firehose_boto3.py"))
        .args([&d.url, "clicks"])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "boto3 script failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("script prints JSON");
    assert_eq!(v["list"]["DeliveryStreamNames"], json!(["clicks"]));
    assert_eq!(v["list"]["HasMoreDeliveryStreams"], json!(false));
    let desc = &v["describe"];
    assert_eq!(desc["DeliveryStreamStatus"], json!("ACTIVE"));
    assert_eq!(
        v["has_last_update"],
        json!(false),
        "never updated: no LastUpdateTimestamp"
    );
    let ext = &desc["Destinations"][0]["ExtendedS3DestinationDescription"];
    assert_eq!(ext["BucketARN"], json!("arn:aws:s3:::boto"));
    assert_eq!(ext["Prefix"], json!("clicks/"));
    assert_eq!(
        ext["BufferingHints"],
        json!({"SizeInMBs": 1, "IntervalInSeconds": 900})
    );
    assert_eq!(v["put_record"]["Encrypted"], json!(false));
    assert_eq!(
        v["batch"],
        json!({"FailedPutCount": 0, "count": 500, "ids": 500})
    );
    assert_eq!(
        v["errors"]["unknown_stream"],
        json!(["ResourceNotFoundException", 400])
    );
    assert_eq!(v["errors"]["too_many"], json!(["ValidationException", 400]));
    assert_eq!(v["errors"]["too_big"], json!(["ValidationException", 400]));

    let keys = d.flush("clicks");
    assert_eq!(keys, moto.keys("boto"));
    let mut lines = Vec::new();
    for k in &keys {
        assert!(k.starts_with("clicks/"), "{k}");
        lines.extend(
            String::from_utf8(moto.get("boto", k))
                .expect("utf8")
                .lines()
                .map(str::to_string),
        );
    }
    assert_eq!(lines.len(), 501);
    assert_eq!(lines[0], r#"{"via":"put_record"}"#);
    assert_eq!(lines[500], r#"{"via": "batch", "i": 499}"#);
}

#[test]
fn aws_cli_put_record_batch_works_unchanged() {
    let moto = Moto::start();
    moto.create_bucket("cli");
    let d = Daemon::start(&config(&moto, "cli"));
    let dir = tempfile::tempdir().expect("tempdir");
    // AWS CLI v1 base64-encodes blob members itself: the file holds the raw data.
    let records: Vec<Value> = (0..3)
        .map(|i| json!({"Data": format!("cli-{i}\n")}))
        .collect();
    let file = dir.path().join("records.json");
    std::fs::write(&file, serde_json::to_vec(&records).expect("json")).expect("written");
    let out = Command::new(venv_bin("aws"))
        .args(["firehose", "put-record-batch", "--endpoint-url", &d.url])
        .args(["--delivery-stream-name", "clicks", "--records"])
        .arg(format!("file://{}", file.display()))
        .args(["--region", "us-east-1", "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_CONFIG_FILE", dir.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .env("HOME", dir.path())
        .output()
        .expect("aws runs");
    assert!(
        out.status.success(),
        "aws cli failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(v["FailedPutCount"], json!(0));
    assert_eq!(v["RequestResponses"].as_array().map(Vec::len), Some(3));

    let out = Command::new(venv_bin("aws"))
        .args([
            "firehose",
            "describe-delivery-stream",
            "--endpoint-url",
            &d.url,
        ])
        .args(["--delivery-stream-name", "nope", "--region", "us-east-1"])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("HOME", dir.path())
        .output()
        .expect("aws runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ResourceNotFoundException"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let keys = d.flush("clicks");
    assert_eq!(keys.len(), 1);
    assert_eq!(moto.get("cli", &keys[0]), b"cli-0\ncli-1\ncli-2\n");
}
