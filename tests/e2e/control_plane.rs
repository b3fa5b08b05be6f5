//! The control plane with boto3 (tests/py/control_plane.py) against the real binary and a real
//! S3 server (moto): create, put, describe, update, put again, delete, and the keys of the
//! objects before and after the update; and streams created through the API survive a restart.

use crate::support::*;
use serde_json::{Value, json};

fn config(moto: &Moto) -> String {
    format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
aws: {{region: us-east-1, endpoint_url: '{}', force_path_style: true}}
delivery_streams:
  - name: from-file
    source: {{direct_put: {{}}}}
    destinations:
      - directory: '{{dir}}/out'",
        moto.endpoint
    )
}

#[test]
fn boto3_creates_updates_and_deletes_a_stream() {
    let moto = Moto::start();
    moto.create_bucket("lake");
    let d = Daemon::start(&config(&moto));
    let out = run_output(
        std::process::Command::new(python())
            .arg(py_script("control_plane.py"))
            .args([d.url.as_str(), "lake", "from-file"]),
    );
    assert!(
        out.status.success(),
        "control_plane.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        v["arn"],
        "arn:aws:firehose:us-east-1:000000000000:deliverystream/api"
    );
    assert_eq!(
        v["statuses"].as_array().and_then(|s| s.last()),
        Some(&json!("ACTIVE"))
    );
    assert_eq!(v["errors"]["duplicate"][0], "ResourceInUseException");
    // A constraint of AWS's service model: ValidationException, in AWS's words.
    assert_eq!(v["errors"]["invalid"][0], "ValidationException");
    assert_eq!(
        v["errors"]["invalid"][1],
        "1 validation error detected: Value '500' at 'extendedS3DestinationConfiguration.bufferingHints.sizeInMBs' failed to satisfy constraint: Member must have value less than or equal to 128",
    );
    assert_eq!(
        v["errors"]["delete_file_stream"][0],
        "ResourceInUseException"
    );
    assert_eq!(
        v["errors"]["stale_version"][0],
        "ConcurrentModificationException"
    );
    assert_eq!(
        v["before"],
        json!({"version": "1", "prefix": "v1/", "processing": {"Enabled": true,
            "Processors": [{"Type": "AppendDelimiterToRecord", "Parameters": []}]}})
    );
    assert_eq!(
        v["after"],
        json!({"version": "2", "prefix": "v2/", "compression": "GZIP", "status": "ACTIVE"})
    );
    let before: Vec<&str> = v["keys_before"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let after: Vec<&str> = v["keys_after"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(before.len(), 1, "{before:?}");
    assert!(
        before[0].starts_with("v1") && before[0].contains("/api-1-"),
        "{before:?}"
    );
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(
        after[0].starts_with("v2") && after[0].contains("/api-2-") && after[0].ends_with(".gz"),
        "a changed destination writes objects with the next version: {after:?}"
    );
    // What the two objects hold: each record once, before and after the update.
    let lines = |range: std::ops::Range<i32>| -> String {
        range.map(|n| format!("{{\"n\": {n}}}\n")).collect()
    };
    let first = String::from_utf8(moto.get("lake", before[0])).expect("text");
    assert_eq!(first, lines(0..10));
    let second = gunzip_text(&moto.get("lake", after[0]));
    assert_eq!(
        second,
        lines(10..20),
        "every record once, none carried over twice"
    );
    // The records buffered when the update came went out on the old configuration, once.
    let keys = moto.keys("lake");
    let v1: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with("v1") && k.contains("/api-1-"))
        .collect();
    assert_eq!(v1.len(), 2, "{keys:?}");
    let drained: String = v1
        .iter()
        .map(|k| String::from_utf8(moto.get("lake", k)).expect("text"))
        .filter(|t| !t.contains(r#"{"n": 0}"#))
        .collect();
    assert_eq!(drained, lines(100..105));
    // Deleted: the record and the spool are gone, the file stream's stay.
    let state = d.dir.path().join("state");
    assert!(!state.join("streams/api.json").exists());
    assert!(!state.join("spool/api").exists());
    assert!(state.join("spool/from-file").exists());
    assert_eq!(v["tags"], json!([{"Key": "env", "Value": "test"}]));
    assert_eq!(v["listed"], json!(["api", "from-file"]));
    assert_eq!(v["errors"]["after_delete"][0], "ResourceNotFoundException");
    assert_eq!(v["listed_after_delete"], json!(["from-file"]));
}

fn gunzip_text(data: &[u8]) -> String {
    String::from_utf8(crate::support::transform::gunzip(data)).expect("text")
}

#[test]
fn a_stream_created_through_the_api_survives_a_restart() {
    let moto = Moto::start();
    moto.create_bucket("lake");
    let d = Daemon::start(&config(&moto));
    let (status, v) = d.api(
        "CreateDeliveryStream",
        r#"{"DeliveryStreamName":"kept","ExtendedS3DestinationConfiguration":{"RoleARN":"arn:aws:iam::123456789012:role/firehose","BucketARN":"arn:aws:s3:::lake","Prefix":"kept/","BufferingHints":{"SizeInMBs":1,"IntervalInSeconds":60}},"Tags":[{"Key":"k","Value":"v"}]}"#,
    );
    assert_eq!(status, 200, "{v}");
    d.wait_active("kept");
    let (status, _) = d.api(
        "PutRecord",
        r#"{"DeliveryStreamName":"kept","Record":{"Data":"YmVmb3JlCg=="}}"#,
    );
    assert_eq!(status, 200);
    // kill -9: the record is in the spool, the stream in state_dir/streams.
    let d = d.restart();
    let (status, v) = d.api("DescribeDeliveryStream", r#"{"DeliveryStreamName":"kept"}"#);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["DeliveryStreamDescription"]["DeliveryStreamStatus"],
        "ACTIVE"
    );
    let (_, tags) = d.api(
        "ListTagsForDeliveryStream",
        r#"{"DeliveryStreamName":"kept"}"#,
    );
    assert_eq!(tags["Tags"], json!([{"Key": "k", "Value": "v"}]));
    let keys = d.flush("kept");
    assert_eq!(
        keys.len(),
        1,
        "the record acknowledged before the kill: {keys:?}"
    );
    assert_eq!(moto.get("lake", &keys[0]), b"before\n");
}

#[test]
fn format_conversion_through_the_api_reads_the_table_from_the_catalog_folder() {
    let moto = Moto::start();
    moto.create_bucket("lake");
    let dir = tempfile::tempdir().expect("tempdir");
    let tables = dir.path().join("glue/analytics");
    std::fs::create_dir_all(&tables).expect("dir");
    std::fs::write(
        tables.join("events.json"),
        r#"{"Table":{"StorageDescriptor":{"Columns":[{"Name":"id","Type":"bigint"},{"Name":"tags","Type":"array<string>"}]}}}"#,
    )
    .expect("table");
    // glue_catalog_dir is a top-level key: before delivery_streams.
    let config = config(&moto).replacen(
        "delivery_streams:",
        "glue_catalog_dir: '{dir}/glue'\ndelivery_streams:",
        1,
    );
    let d = Daemon::launch(&config).in_dir(dir).start();
    let create_with = |name: &str, table: &str, serializer: Value| {
        d.api(
            "CreateDeliveryStream",
            &json!({
                "DeliveryStreamName": name,
                "ExtendedS3DestinationConfiguration": {
                    "RoleARN": "arn:aws:iam::123456789012:role/firehose", "BucketARN": "arn:aws:s3:::lake", "Prefix": "pq/",
                    "ErrorOutputPrefix": "errors/",
                    "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
                    "DataFormatConversionConfiguration": {
                        "Enabled": true,
                        "SchemaConfiguration": {"DatabaseName": "analytics", "TableName": table, "RoleARN": "arn:aws:iam::123456789012:role/firehose"},
                        "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {"CaseInsensitive": true}}},
                        "OutputFormatConfiguration": {"Serializer": serializer}
                    }
                }
            })
            .to_string(),
        )
    };
    let create = |table: &str| {
        create_with(
            &format!("pq-{table}"),
            table,
            json!({"ParquetSerDe": {"Compression": "GZIP"}}),
        )
    };
    let (status, v) = create("missing");
    assert_eq!(status, 400);
    assert_eq!(v["__type"], "InvalidArgumentException");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("missing.json: cannot read the schema file")),
        "{v}"
    );
    let (status, v) = create("events");
    assert_eq!(status, 200, "{v}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, v) = d.api(
            "DescribeDeliveryStream",
            r#"{"DeliveryStreamName":"pq-events"}"#,
        );
        let desc = &v["DeliveryStreamDescription"];
        if desc["DeliveryStreamStatus"] == "ACTIVE" {
            let conv = &desc["Destinations"][0]["ExtendedS3DestinationDescription"]["DataFormatConversionConfiguration"];
            assert_eq!(conv["SchemaConfiguration"]["TableName"], "events");
            assert_eq!(
                conv["OutputFormatConfiguration"]["Serializer"]["ParquetSerDe"]["Compression"],
                "GZIP"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ACTIVE: {v}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (status, _) = d.post(
        "/v1/streams/pq-events/records",
        b"{\"ID\":1,\"tags\":[\"a\"]}\n{\"id\":\"x\"}\n",
    );
    assert_eq!(status, 200);
    let keys = d.flush("pq-events");
    let parquet: Vec<&String> = keys.iter().filter(|k| k.ends_with(".parquet")).collect();
    assert_eq!(parquet.len(), 1, "{keys:?}");
    assert!(parquet[0].starts_with("pq/") && parquet[0].contains("/pq-events-1-"));
    assert_eq!(&moto.get("lake", parquet[0])[..4], b"PAR1");
    let errors: Vec<&String> = keys.iter().filter(|k| k.starts_with("errors/")).collect();
    assert_eq!(errors.len(), 1, "{keys:?}");
    let line: Value = serde_json::from_slice(&moto.get("lake", errors[0])).expect("error record");
    assert_eq!(line["lastErrorCode"], "DataFormatConversion.MalformedData");
    assert_eq!(line["dataCatalogTable"]["tableName"], "events");

    // OrcSerDe: the model's ranges, a bloom filter column that is not one, then ORC objects
    // described with every member.
    let orc = |extra: Value| {
        let mut serde = json!({"Compression": "ZLIB", "RowIndexStride": 5000});
        for (k, v) in extra.as_object().expect("object") {
            serde[k] = v.clone();
        }
        json!({"OrcSerDe": serde})
    };
    let (status, v) = create_with("orc-small", "events", orc(json!({"StripeSizeBytes": 1000})));
    assert_eq!(
        (status, v["__type"].as_str()),
        (400, Some("ValidationException")),
        "{v}"
    );
    let (status, v) = create_with(
        "orc-bloom",
        "events",
        orc(json!({"BloomFilterColumns": ["nope"]})),
    );
    assert_eq!(
        (status, v["__type"].as_str()),
        (400, Some("InvalidArgumentException")),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"nope\" is not a column")),
        "{v}"
    );
    let (status, v) = create_with(
        "orc-events",
        "events",
        orc(json!({"BloomFilterColumns": ["id"]})),
    );
    assert_eq!(status, 200, "{v}");
    let desc = d.wait_active("orc-events");
    let serde = &desc["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"]
        ["DataFormatConversionConfiguration"]["OutputFormatConfiguration"]["Serializer"]["OrcSerDe"];
    assert_eq!(serde["Compression"], "ZLIB");
    assert_eq!(serde["RowIndexStride"], 5000);
    assert_eq!(serde["BloomFilterColumns"], json!(["id"]));
    assert_eq!(serde["StripeSizeBytes"], 67108864);
    assert_eq!(serde["FormatVersion"], "V0_12");
    let (status, _) = d.post(
        "/v1/streams/orc-events/records",
        b"{\"id\":7,\"tags\":[\"b\"]}\n",
    );
    assert_eq!(status, 200);
    let keys = d.flush("orc-events");
    let orc: Vec<&String> = keys.iter().filter(|k| k.ends_with(".orc")).collect();
    assert_eq!(orc.len(), 1, "{keys:?}");
    assert_eq!(&moto.get("lake", orc[0])[..3], b"ORC");
}

/// AWS creates a stream whose bucket does not exist (a missing bucket is a delivery failure,
/// retried while records wait); it is ACTIVE, with no FailureDescription, and can be deleted.
#[test]
fn a_stream_whose_bucket_is_missing_is_active_and_can_be_deleted() {
    let moto = Moto::start();
    moto.create_bucket("lake");
    let d = Daemon::start(&config(&moto));
    let (status, v) = d.api(
        "CreateDeliveryStream",
        r#"{"DeliveryStreamName":"nowhere","ExtendedS3DestinationConfiguration":{"RoleARN":"arn:aws:iam::123456789012:role/firehose","BucketARN":"arn:aws:s3:::no-such-bucket"}}"#,
    );
    assert_eq!(status, 200, "{v}");
    let v = d.wait_active("nowhere");
    let desc = &v["DeliveryStreamDescription"];
    assert!(desc.get("FailureDescription").is_none(), "{desc}");
    let (status, _) = d.api(
        "DeleteDeliveryStream",
        r#"{"DeliveryStreamName":"nowhere"}"#,
    );
    assert_eq!(status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while d
        .api(
            "DescribeDeliveryStream",
            r#"{"DeliveryStreamName":"nowhere"}"#,
        )
        .0
        == 200
    {
        assert!(std::time::Instant::now() < deadline, "not deleted");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A Lambda processor in CreateDeliveryStream runs the `lambda_functions` entry its LambdaArn
/// names: the handler sees the function's name, the retries and buffering come from the
/// processor's parameters, DescribeDeliveryStream shows the processor; a function with no local
/// runtime is refused, naming the key to add.
#[test]
fn a_lambda_processor_runs_the_function_named_in_lambda_functions() {
    use crate::support::transform::python_runner;
    let moto = Moto::start();
    moto.create_bucket("lake");
    let text = format!(
        "{}\nlambda_functions:\n  echo-event:\n    subprocess: {}\n    timeout_seconds: 20\n",
        config(&moto),
        python_runner("echo_event.handler")
    );
    let d = Daemon::start(&text);
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:echo-event:$LATEST";
    let request = json!({
        "DeliveryStreamName": "lambda",
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": "arn:aws:iam::123456789012:role/firehose", "BucketARN": "arn:aws:s3:::lake", "Prefix": "lambda/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
            "S3BackupMode": "Enabled",
            "S3BackupConfiguration": {"RoleARN": "arn:aws:iam::123456789012:role/firehose", "BucketARN": "arn:aws:s3:::lake", "Prefix": "raw/"},
            "ProcessingConfiguration": {"Enabled": true, "Processors": [{"Type": "Lambda", "Parameters": [
                {"ParameterName": "LambdaArn", "ParameterValue": arn},
                {"ParameterName": "NumberOfRetries", "ParameterValue": "2"},
                {"ParameterName": "BufferIntervalInSeconds", "ParameterValue": "0"}]}]}
        }
    });
    let (status, v) = d.api("CreateDeliveryStream", &request.to_string());
    assert_eq!(status, 200, "{v}");
    let description = d.wait_active("lambda");
    let processing = &description["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"]
        ["ProcessingConfiguration"];
    assert_eq!(processing["Enabled"], true, "{processing}");
    let lambda = &processing["Processors"][0];
    assert_eq!(lambda["Type"], "Lambda");
    let param = |name: &str| {
        lambda["Parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["ParameterName"] == name))
            .map(|p| p["ParameterValue"].clone())
    };
    assert_eq!(param("LambdaArn"), Some(json!(arn)));
    assert_eq!(param("NumberOfRetries"), Some(json!("2")));
    assert_eq!(param("BufferIntervalInSeconds"), Some(json!("0")));
    let extended = &description["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"];
    assert_eq!(extended["S3BackupMode"], "Enabled");
    assert_eq!(
        extended["S3BackupDescription"]["Prefix"], "raw/",
        "{extended}"
    );

    let (status, v) = d.api(
        "PutRecord",
        r#"{"DeliveryStreamName":"lambda","Record":{"Data":"aGVsbG8="}}"#,
    );
    assert_eq!(status, 200, "{v}");
    let mut keys = d.flush("lambda");
    keys.sort();
    assert!(
        keys.len() == 2 && keys[0].starts_with("lambda/") && keys[1].starts_with("raw/"),
        "{keys:?}"
    );
    assert_eq!(
        moto.get("lake", &keys[1]),
        b"hello",
        "the record before the transform"
    );
    let seen: Value =
        serde_json::from_slice(&moto.get("lake", &keys[0])).expect("the handler's JSON");
    assert_eq!(seen["data"], "hello");
    assert_eq!(seen["functionName"], "echo-event");
    assert_eq!(
        seen["deliveryStreamArn"],
        "arn:aws:firehose:us-east-1:000000000000:deliverystream/lambda"
    );

    let mut unknown = request.clone();
    unknown["DeliveryStreamName"] = json!("unknown-function");
    unknown["ExtendedS3DestinationConfiguration"]["ProcessingConfiguration"]["Processors"][0]["Parameters"]
        [0]["ParameterValue"] = json!("arn:aws:lambda:us-east-1:123456789012:function:not-here");
    let (status, v) = d.api("CreateDeliveryStream", &unknown.to_string());
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["__type"], "InvalidArgumentException", "{v}");
    let message = v["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("not-here") && message.contains("lambda_functions"),
        "{message}"
    );
    let (status, _) = d.api(
        "DescribeDeliveryStream",
        r#"{"DeliveryStreamName":"unknown-function"}"#,
    );
    assert_eq!(status, 400, "a refused create leaves no stream");
}

/// Objects are written with SSE-KMS under the key the destination names, from the
/// configuration file (`s3.encryption.kms_key_arn`) or CreateDeliveryStream
/// (EncryptionConfiguration.KMSEncryptionConfig), as head_object on the S3 server shows;
/// Describe shows the key.
#[test]
fn objects_are_encrypted_with_the_configured_kms_key() {
    let moto = Moto::start();
    moto.create_bucket("lake");
    let file_key = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555";
    let api_key = "arn:aws:kms:us-east-1:123456789012:alias/firehose-objects";
    let text = format!(
        "{}
  - name: sealed
    source: {{direct_put: {{}}}}
    destinations:
      - s3: {{bucket: lake, encryption: {{kms_key_arn: '{file_key}'}}}}
        prefix: file/
        buffering: {{size_mib: 1, interval_seconds: 900}}
",
        config(&moto)
    );
    let d = Daemon::start(&text);
    let request = json!({"DeliveryStreamName": "sealed-api", "ExtendedS3DestinationConfiguration": {
        "RoleARN": "arn:aws:iam::123456789012:role/firehose", "BucketARN": "arn:aws:s3:::lake",
        "Prefix": "api/", "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 900},
        "EncryptionConfiguration": {"KMSEncryptionConfig": {"AWSKMSKeyARN": api_key}}}});
    let (status, v) = d.api("CreateDeliveryStream", &request.to_string());
    assert_eq!(status, 200, "{v}");
    d.wait_active("sealed-api");
    for (stream, key) in [("sealed", file_key), ("sealed-api", api_key)] {
        let (status, v) = d.api(
            "PutRecord",
            &json!({"DeliveryStreamName": stream, "Record": {"Data": "eyJhIjoxfQo="}}).to_string(),
        );
        assert_eq!(status, 200, "{v}");
        d.flush(stream);
        let desc = d.wait_active(stream);
        assert_eq!(
            desc["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"]
                ["EncryptionConfiguration"],
            json!({"KMSEncryptionConfig": {"AWSKMSKeyARN": key}}),
            "{desc}"
        );
    }
    for (prefix, key) in [("file/", file_key), ("api/", api_key)] {
        let keys = moto.keys("lake");
        let object = keys
            .iter()
            .find(|k| k.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} object in {keys:?}"));
        let head: Value =
            serde_json::from_slice(&s3tool(&moto.endpoint, &["head", "lake", object]))
                .expect("JSON");
        assert_eq!(
            head,
            json!({"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key}),
            "{object}"
        );
    }
}

/// Without glue_catalog_dir, a format conversion's schema is read from the Glue Data Catalog
/// (moto's Glue, tables made with boto3), as AWS reads it: GetTable for LATEST, GetTableVersion
/// for a VersionId; the Parquet files carry the table's columns (read back by pyarrow); an
/// unknown table is refused by name.
#[test]
fn format_conversion_reads_the_schema_from_the_glue_data_catalog() {
    let moto = Moto::start();
    moto.create_bucket("lake");
    let glue = r#"
import sys, boto3
g = boto3.client("glue", endpoint_url=sys.argv[1], region_name="us-east-1",
                 aws_access_key_id="test", aws_secret_access_key="test")
g.create_database(DatabaseInput={"Name": "analytics"})
cols = [{"Name": "id", "Type": "bigint"}, {"Name": "tags", "Type": "array<string>"}]
g.create_table(DatabaseName="analytics", TableInput={"Name": "events",
    "StorageDescriptor": {"Columns": cols}})
# Version 2 adds a column: LATEST has three, VersionId 1 has two.
g.update_table(DatabaseName="analytics", TableInput={"Name": "events",
    "StorageDescriptor": {"Columns": cols + [{"Name": "note", "Type": "string"}]}})
"#;
    let out = run_output(std::process::Command::new(python()).args(["-c", glue, &moto.endpoint]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = Daemon::start(&config(&moto));
    let create = |name: &str, table: &str, version: Option<&str>| {
        let mut schema = json!({"DatabaseName": "analytics", "TableName": table,
            "RoleARN": "arn:aws:iam::123456789012:role/firehose"});
        if let Some(v) = version {
            schema["VersionId"] = json!(v);
        }
        d.api(
            "CreateDeliveryStream",
            &json!({
                "DeliveryStreamName": name,
                "ExtendedS3DestinationConfiguration": {
                    "RoleARN": "arn:aws:iam::123456789012:role/firehose", "BucketARN": "arn:aws:s3:::lake",
                    "Prefix": format!("{name}/"), "ErrorOutputPrefix": "errors/",
                    "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
                    "DataFormatConversionConfiguration": {
                        "Enabled": true,
                        "SchemaConfiguration": schema,
                        "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
                        "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}}
                    }
                }
            })
            .to_string(),
        )
    };
    let (status, v) = create("pq-missing", "missing", None);
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["__type"], "InvalidArgumentException");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("Glue table analytics.missing does not exist")),
        "{v}"
    );
    for (name, version, columns) in [
        ("pq-latest", None, vec!["id", "tags", "note"]),
        ("pq-v1", Some("1"), vec!["id", "tags"]),
    ] {
        let (status, v) = create(name, "events", version);
        assert_eq!(status, 200, "{name}: {v}");
        d.wait_active(name);
        let (status, _) = d.post(
            &format!("/v1/streams/{name}/records"),
            b"{\"id\":1,\"tags\":[\"a\"],\"note\":\"n\"}\n",
        );
        assert_eq!(status, 200);
        let keys = d.flush(name);
        let parquet: Vec<&String> = keys.iter().filter(|k| k.ends_with(".parquet")).collect();
        assert_eq!(parquet.len(), 1, "{keys:?}");
        let file = d.dir.path().join(format!("{name}.parquet"));
        std::fs::write(&file, moto.get("lake", parquet[0])).expect("written");
        let read = run_output(
            std::process::Command::new(python())
                .arg(py_script("parquet_read.py"))
                .arg(&file),
        );
        assert!(
            read.status.success(),
            "{}",
            String::from_utf8_lossy(&read.stderr)
        );
        let seen: Value = serde_json::from_slice(&read.stdout).expect("JSON");
        let names: Vec<&str> = seen["pyarrow"]["types"]
            .as_object()
            .map(|t| t.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut want = columns.clone();
        want.sort();
        let mut got = names.clone();
        got.sort();
        assert_eq!(got, want, "{name}: {seen}");
    }
}

/// A stream that drains through an S3 outage does not hold the control plane: while one
/// UpdateDestination waits for its old configuration's objects to be written, another stream
/// is created, a third deleted and the configuration file reloaded, each answered before S3
/// comes back (none holds a lock across the drain); the update itself completes once S3 does.
#[test]
fn an_update_draining_through_an_s3_outage_holds_no_other_change() {
    let mut moto = Moto::start();
    moto.create_bucket("lake");
    let port = moto.port;
    let mut d = Daemon::start(&config(&moto));
    let create = |name: &str, prefix: &str| {
        let (status, body) = d.api(
            "CreateDeliveryStream",
            &json!({"DeliveryStreamName": name, "ExtendedS3DestinationConfiguration": {
                "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                "BucketARN": "arn:aws:s3:::lake", "Prefix": prefix,
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 900}}})
            .to_string(),
        );
        assert_eq!(status, 200, "{body}");
    };
    create("draining", "v1/");
    create("doomed", "d/");
    for name in ["draining", "doomed"] {
        d.wait_active(name);
    }
    let (status, body) = d.post("/v1/streams/draining/records", b"{\"n\": 1}\n{\"n\": 2}\n");
    assert_eq!(status, 200, "{body}");

    moto.stop();
    let url = d.url.clone();
    let update = std::thread::spawn(move || {
        let body = json!({"DeliveryStreamName": "draining", "CurrentDeliveryStreamVersionId": "1",
            "DestinationId": "destinationId-000000000001",
            "ExtendedS3DestinationUpdate": {"Prefix": "v2/"}});
        http(
            &url,
            "POST",
            &[
                ("x-amz-target", "Firehose_20150804.UpdateDestination"),
                ("content-type", "application/x-amz-json-1.1"),
            ],
            body.to_string().as_bytes(),
        )
    });
    // The old configuration's object is being retried: the update is in its drain.
    let failures =
        "firehose_delivery_to_s3_failures_total{delivery_stream=\"draining\",destination=\"0\"}";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while d.metric(failures) < 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no failed attempt was counted"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!update.is_finished(), "the update waits for its drain");

    // Each call runs on its own thread; S3 stays down until all have answered (or 30 s).
    let calls: Vec<(&str, std::thread::JoinHandle<(u16, String)>)> = [
        ("create", "CreateDeliveryStream", json!({"DeliveryStreamName": "newcomer",
            "ExtendedS3DestinationConfiguration": {"RoleARN": "arn:aws:iam::123456789012:role/firehose",
                "BucketARN": "arn:aws:s3:::lake"}})),
        ("delete", "DeleteDeliveryStream", json!({"DeliveryStreamName": "doomed"})),
    ]
    .into_iter()
    .map(|(what, op, body)| {
        let url = d.url.clone();
        let target = format!("Firehose_20150804.{op}");
        let call = std::thread::spawn(move || {
            http(
                &url,
                "POST",
                &[
                    ("x-amz-target", target.as_str()),
                    ("content-type", "application/x-amz-json-1.1"),
                ],
                body.to_string().as_bytes(),
            )
        });
        (what, call)
    })
    .collect();
    let path = d.dir.path().join("firehosed.yaml");
    let reloaded = config(&moto).replace("{dir}", &d.dir.path().display().to_string())
        + &format!(
            "\n  - name: added\n    source: {{direct_put: {{}}}}\n    destinations:\n      - directory: '{}/added'\n",
            d.dir.path().display()
        );
    std::fs::write(&path, reloaded).expect("config");
    // SAFETY: kill(2) on the daemon's pid.
    unsafe {
        libc::kill(d.pid() as i32, libc::SIGHUP);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut reload_done = false;
    while std::time::Instant::now() < deadline {
        reload_done = reload_done || d.logs().contains("configuration reloaded");
        if reload_done && calls.iter().all(|(_, c)| c.is_finished()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let waiting: Vec<&str> = calls
        .iter()
        .filter(|(_, c)| !c.is_finished())
        .map(|(what, _)| *what)
        .collect();
    assert!(
        waiting.is_empty() && reload_done,
        "answered only once S3 came back: {waiting:?}, reload done: {reload_done}"
    );
    assert!(!update.is_finished(), "S3 is still down");
    for (what, call) in calls {
        let (status, body) = call.join().expect("call");
        assert_eq!(status, 200, "{what}: {body}");
    }

    let moto = Moto::start_on(port);
    moto.create_bucket("lake");
    let (status, body) = update.join().expect("update");
    assert_eq!(status, 200, "{body}");
    let described = d.wait_active("draining");
    assert_eq!(described["DeliveryStreamDescription"]["VersionId"], "2");
    let keys = moto.keys("lake");
    assert!(
        keys.iter()
            .any(|k| k.starts_with("v1/") && k.contains("/draining-1-")),
        "the drained object is written once S3 is back: {keys:?}"
    );
}
