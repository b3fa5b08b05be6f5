//! Stream versions survive upgrades (docs/durability.md, "Stream versions"): the fingerprints that firehosed
//! at f84b598 (the last release before the typed control plane) recorded for the bundled
//! configurations and for a set of file and API streams. A record holding one of these must
//! keep its version when the same configuration starts on a later release.

use super::*;

/// The bundled configurations, read with an empty environment (every `${VAR:-default}` takes
/// its default).
pub(super) const BUNDLED: [(&str, &str); 4] = [
    ("example.yaml", include_str!("../../config/example.yaml")),
    (
        "kinesis-example.yaml",
        include_str!("../../config/kinesis-example.yaml"),
    ),
    (
        "parquet-example.yaml",
        include_str!("../../config/parquet-example.yaml"),
    ),
    (
        "transform-example.yaml",
        include_str!("../../config/transform-example.yaml"),
    ),
];

/// File streams beyond the bundled ones: every destination kind, partitioning, format
/// conversion to Parquet and ORC, exactly-once, a fleet, the pre-transform processors.
pub(super) const FILE_STREAMS: &str = r#"
relax_aws_limits: true
delivery_streams:
  - name: plain-s3
    source: {direct_put: {}}
    destinations:
      - s3: {bucket: lake}
  - name: partitioned
    source: {direct_put: {}}
    processing:
      metadata_extraction: {query: "{customer_id: .customer_id}"}
      append_delimiter_to_record: true
      record_deaggregation: json
    destinations:
      - s3: {bucket: lake, encryption: {kms_key_arn: "arn:aws:kms:us-east-1:123456789012:key/k"}}
        prefix: "orders/!{partitionKeyFromQuery:customer_id}/!{timestamp:yyyy/MM/dd}/"
        error_output_prefix: "errors/!{firehose:error-output-type}/"
        buffering: {size_mib: 64, interval_seconds: 60}
        compression: Snappy
        custom_time_zone: Europe/Paris
        dynamic_partitioning: {enabled: true, retry_duration_seconds: 120}
  - name: parquet-exactly-once
    source: {direct_put: {}}
    destinations:
      - directory: /var/out
        prefix: "events/!{timestamp:yyyy/MM/dd}/"
        error_output_prefix: "errors/!{firehose:error-output-type}/"
        delivery: exactly_once
        buffering: {size_mib: 1, interval_seconds: 0}
        data_format_conversion:
          schema:
            columns:
              - {name: id, type: bigint}
              - {name: ts, type: timestamp}
              - {name: m, type: 'map<string,int>'}
          input: {hive_json: {timestamp_formats: ["yyyy-MM-dd'T'HH:mm:ss", millis]}}
          output: {parquet: {compression: GZIP, enable_dictionary_compression: false, writer_version: V2}}
  - name: orc
    source: {direct_put: {}}
    destinations:
      - s3: {bucket: lake}
        buffering: {size_mib: 64, interval_seconds: 60}
        data_format_conversion:
          schema:
            columns: [{name: id, type: int}, {name: name, type: string}]
          input: {openx_json: {case_insensitive: false, convert_dots_in_json_keys_to_underscores: true}}
          output: {orc: {compression: ZLIB}}
  - name: fleet
    source:
      kinesis_stream:
        stream_arn: arn:aws:kinesis:us-east-1:123456789012:stream/orders
        starting_position: AT_TIMESTAMP
        starting_timestamp: 2026-01-01T00:00:00Z
        leases: {table: firehosed-leases, worker_id: w1, failover_seconds: 20}
    destinations:
      - s3: {bucket: lake}
        delivery: exactly_once
        compression: GZIP
  - name: logs
    source: {direct_put: {}}
    processing:
      decompression: GZIP
      cloudwatch_logs: {data_message_extraction: true}
    destinations:
      - directory: /var/out
        compression: ZIP
        file_extension: .zip
  - name: http
    source: {direct_put: {}}
    destinations:
      - http_endpoint: {url: "https://example.com/firehose", access_key: secret,
                        content_encoding: GZIP, common_attributes: {env: prod, team: data}}
        s3_backup: {mode: AllData, bucket: backup, prefix: "http-backup/"}
        buffering: {size_mib: 1, interval_seconds: 60}
"#;

/// CreateDeliveryStream requests: what an API stream's record keeps.
pub(super) fn api_requests() -> Vec<serde_json::Value> {
    use serde_json::json;
    let role = "arn:aws:iam::123456789012:role/firehose";
    vec![
        json!({"DeliveryStreamName": "api-s3", "S3DestinationConfiguration": {
            "RoleARN": role, "BucketARN": "arn:aws:s3:::lake", "Prefix": "old/",
            "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 60}}}),
        json!({"DeliveryStreamName": "api-partitioned", "ExtendedS3DestinationConfiguration": {
            "RoleARN": role, "BucketARN": "arn:aws:s3:::lake",
            "Prefix": "data/!{partitionKeyFromQuery:k}/",
            "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
            "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
            "CompressionFormat": "GZIP",
            "EncryptionConfiguration": {"KMSEncryptionConfig": {"AWSKMSKeyARN": "arn:aws:kms:us-east-1:123456789012:key/k"}},
            "DynamicPartitioningConfiguration": {"Enabled": true, "RetryOptions": {"DurationInSeconds": 120}},
            "DataFormatConversionConfiguration": {"Enabled": false},
            "S3BackupMode": "Enabled",
            "S3BackupConfiguration": {"RoleARN": role, "BucketARN": "arn:aws:s3:::lake", "Prefix": "raw/"},
            "ProcessingConfiguration": {"Enabled": true, "Processors": [
                {"Type": "MetadataExtraction", "Parameters": [
                    {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{k: .k}"},
                    {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
                {"Type": "RecordDeAggregation", "Parameters": [
                    {"ParameterName": "SubRecordType", "ParameterValue": "DELIMITED"},
                    {"ParameterName": "Delimiter", "ParameterValue": "IyMjIw=="}]},
                {"Type": "AppendDelimiterToRecord", "Parameters": []}]}}}),
        json!({"DeliveryStreamName": "api-parquet", "ExtendedS3DestinationConfiguration": {
            "RoleARN": role, "BucketARN": "arn:aws:s3:::lake",
            "Prefix": "p/!{timestamp:yyyy}/", "ErrorOutputPrefix": "e/!{firehose:error-output-type}/",
            "BufferingHints": {"SizeInMBs": 128, "IntervalInSeconds": 300},
            "DataFormatConversionConfiguration": {"Enabled": true,
                "SchemaConfiguration": {"DatabaseName": "db", "TableName": "events", "RoleARN": role},
                "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {"CaseInsensitive": true}}},
                "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}}}}}),
        json!({"DeliveryStreamName": "api-kinesis", "DeliveryStreamType": "KinesisStreamAsSource",
            "KinesisStreamSourceConfiguration": {
                "KinesisStreamARN": "arn:aws:kinesis:us-east-1:123456789012:stream/src", "RoleARN": role},
            "ExtendedS3DestinationConfiguration": {"RoleARN": role, "BucketARN": "arn:aws:s3:::lake",
                "ProcessingConfiguration": {"Enabled": true, "Processors": [
                    {"Type": "Decompression", "Parameters": [{"ParameterName": "CompressionFormat", "ParameterValue": "GZIP"}]},
                    {"Type": "CloudWatchLogProcessing", "Parameters": [{"ParameterName": "DataMessageExtraction", "ParameterValue": "true"}]}]}}}),
        json!({"DeliveryStreamName": "api-http", "HttpEndpointDestinationConfiguration": {
            "EndpointConfiguration": {"Url": "https://example.com/in", "Name": "in", "AccessKey": "k"},
            "RequestConfiguration": {"ContentEncoding": "GZIP",
                "CommonAttributes": [{"AttributeName": "env", "AttributeValue": "prod"}]},
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
            "RetryOptions": {"DurationInSeconds": 60},
            "S3BackupMode": "FailedDataOnly",
            "S3Configuration": {"RoleARN": role, "BucketARN": "arn:aws:s3:::backup", "Prefix": "b/",
                "CompressionFormat": "GZIP"}}}),
    ]
}

/// The Glue columns of `api-parquet`'s table, as the Data Catalog answers.
pub(super) fn glue_columns() -> Vec<crate::glue::GlueColumn> {
    serde_json::from_value(serde_json::json!([{"name": "id", "type": "bigint"},
        {"name": "ts", "type": "timestamp"}, {"name": "amount", "type": "decimal(10,2)"}]))
    .expect("columns")
}

/// A request of the model's shapes.
fn typed(v: &serde_json::Value) -> CreateDeliveryStreamInput {
    serde_json::from_value(v.clone()).expect("a request")
}

/// (file or "api", stream, the fingerprint firehosed at f84b598 recorded for it).
pub(super) const RECORDED: [(&str, &str, &str); 16] = [
    (
        "example.yaml",
        "example",
        "88e522535e3a750ae9d659d6064f5e93",
    ),
    (
        "kinesis-example.yaml",
        "orders-from-kinesis",
        "1e086ad93c2976dee48785b752d6f2f5",
    ),
    (
        "parquet-example.yaml",
        "events",
        "db0b6508abfffe63318afcad30bc477f",
    ),
    (
        "transform-example.yaml",
        "events",
        "a64daad8bec96ab019e75b5e628a8b6c",
    ),
    (
        "streams.yaml",
        "plain-s3",
        "07abde89f756197d23879c59dd272fb8",
    ),
    (
        "streams.yaml",
        "partitioned",
        "fc2aeb12224c6cba4351309c01e2529b",
    ),
    (
        "streams.yaml",
        "parquet-exactly-once",
        "952d6c1561a8a27df08b70a1e423c8cf",
    ),
    ("streams.yaml", "orc", "f038fd736c9154f208e5af8f22fdd9f2"),
    ("streams.yaml", "fleet", "88935189613f94e6991a9330c9a3b71e"),
    ("streams.yaml", "logs", "59a1ce9078ecde673461c0b5a1dda81d"),
    ("streams.yaml", "http", "d72d6142fa5f17675bd81016cd759e84"),
    ("api", "api-s3", "329dcc1caf46aa2b1ccd1d1805760ea3"),
    ("api", "api-partitioned", "d2ca83421c228afaec5d6ff86a073fa9"),
    ("api", "api-parquet", "314e608db3182d6b403ea324709b48ef"),
    ("api", "api-kinesis", "52ce5c96978d369e0b19dec7ff201d47"),
    ("api", "api-http", "1a091319fb8c598a8873f27553be779a"),
];

/// Every stream above, checked as this release checks it: (file or "api", config).
fn checked_streams() -> Vec<(&'static str, crate::spec::StreamSpec)> {
    let empty = |_: &str| None;
    let mut out = Vec::new();
    for (file, text) in BUNDLED {
        let c = crate::config::parse(file, text, &empty).expect("bundled config");
        out.extend(c.streams.into_iter().map(|s| (file, s)));
    }
    let c = crate::config::parse("streams.yaml", FILE_STREAMS, &empty).expect("file streams");
    out.extend(c.streams.into_iter().map(|s| ("streams.yaml", s)));
    let records = StreamRecords {
        dir: PathBuf::new(),
        records: Mutex::new(BTreeMap::new()),
        relax: false,
        local: request::Local::default(),
    };
    let glue = glue_columns();
    for req in api_requests() {
        let sc = api_stream_config(&typed(&req), &records, Some(&glue)).expect("valid request");
        out.push(("api", sc));
    }
    out
}

/// The canonical digest of every stream above. These never change: a change here moves the
/// version (object names) of every stream of that configuration at an upgrade.
const DIGESTS: [(&str, &str); 16] = [
    (
        "example",
        "sha256:3b248d58b15b0d91841656dcbf1927ab81070008d4d76d8e8e765e087cd143e8",
    ),
    (
        "orders-from-kinesis",
        "sha256:279cf38eec95bbece52a3caa9463b6b2a280d91335b3545e2ba24d8f34095e9a",
    ),
    (
        "events",
        "sha256:7e6da6762d7327e5d6795a549ad215be8c63628cf3a678e038efe6067aeef8bb",
    ),
    (
        "events",
        "sha256:3604653727f0daa05c7ef27510384c570d23a3737565c5decbaaa58d4cced227",
    ),
    (
        "plain-s3",
        "sha256:4b8d7448e59575cea62bee0af15c3f55b5a916469c5187a27000e515b8b38ae8",
    ),
    (
        "partitioned",
        "sha256:e6ef84783a8b86c9de1609821bec7983826061beb01b3c4a0b4d3c31ce964ed0",
    ),
    (
        "parquet-exactly-once",
        "sha256:961af77139f40195329215240154bfb2421d1d3f6045ba0239fefaa08ed65884",
    ),
    (
        "orc",
        "sha256:3bde944bc5380b436e7304ffb1dacbd5895ceeac1e5b1e1a299a5b6d18c6608e",
    ),
    (
        "fleet",
        "sha256:199c4173f54b534d9a3f5c3d05c26d5e1178e30f62ac29c81c9211cd70f8f0b0",
    ),
    (
        "logs",
        "sha256:b7b10d2ce46ac027aa813032afe7a473dc40188b8a93b71c6879a6594d7a6d8f",
    ),
    (
        "http",
        "sha256:0c2fc3bf8e01b35ee31e67d2d6d15c1aad586f2e4a2fa2ac1b9ac72960938e29",
    ),
    (
        "api-s3",
        "sha256:ccce6a5b09cacc4154d5f9bf012709c403ba7268d100689d990f30d950a243c4",
    ),
    (
        "api-partitioned",
        "sha256:cc87c1a2e6e46fbcf1289e212b2ddaad84f6649338c098353b9284a2e1d73c07",
    ),
    (
        "api-parquet",
        "sha256:6b9e025814e429ad0a73589378c9e63a79bfbb306c1bf3c43013c410315df71d",
    ),
    (
        "api-kinesis",
        "sha256:536bd34a6fac222ee45911bb3036a4a1cc09e25dc394b4886445fceddadd2d16",
    ),
    (
        "api-http",
        "sha256:de3c5b30eb37f0f693ba5101332b09eb0f792a60b7457089d5b63f6cc5ce6ac3",
    ),
];

#[test]
fn the_canonical_digests_do_not_move() {
    let got: Vec<(String, String)> = checked_streams()
        .into_iter()
        .map(|(_, sc)| {
            (
                sc.name.clone(),
                crate::spec::digest(&sc).as_str().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = DIGESTS
        .iter()
        .map(|(n, d)| (n.to_string(), d.to_string()))
        .collect();
    assert_eq!(got, want);
}

/// A file stream's record as the last release wrote it: its fingerprint and version.
fn legacy_record(fingerprint: &str, version: u32) -> String {
    format!(
        r#"{{"origin": "File", "version": {version}, "tags": {{"team": "data"}}, "created_ms": 1700000000000, "updated_ms": 1700000001000, "fingerprint": "{fingerprint}"}}"#
    )
}

/// Upgrading keeps every file stream's version (guarantee 8); the next change of its
/// configuration moves it on, as before.
#[test]
fn file_streams_of_the_last_release_keep_their_versions() {
    let streams = checked_streams();
    for ((file, sc), (rfile, rname, print)) in streams.iter().zip(RECORDED) {
        assert_eq!((*file, sc.name.as_str()), (rfile, rname));
        if *file == "api" {
            continue;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let records = dir.path().join("streams");
        std::fs::create_dir_all(&records).expect("dir");
        std::fs::write(
            records.join(format!("{}.json", sc.name)),
            legacy_record(print, 7),
        )
        .expect("record");
        let one = std::slice::from_ref(sc);
        let open = || {
            StreamRecords::open(dir.path(), one, false, request::Local::default())
                .expect("opens")
                .get(&sc.name)
                .expect("record")
        };
        let upgraded = open();
        assert_eq!(
            upgraded.version, 7,
            "{}: the upgrade kept the version",
            sc.name
        );
        assert_eq!(upgraded.tags.get("team").map(String::as_str), Some("data"));
        assert_eq!(upgraded.fingerprint, None);
        assert_eq!(
            upgraded.digest.as_deref(),
            Some(crate::spec::digest(sc).as_str())
        );
        assert_eq!(open().version, 7, "{}: and the restart after it", sc.name);
        let mut changed = sc.clone();
        changed.destinations[0].buffering.interval_seconds += 1;
        let moved = StreamRecords::open(
            dir.path(),
            std::slice::from_ref(&changed),
            false,
            request::Local::default(),
        )
        .expect("opens")
        .get(&sc.name)
        .expect("record");
        assert_eq!(moved.version, 8, "{}: a change moves it on", sc.name);
    }
}

/// An API stream's record as the last release wrote it reads back with its version, and its
/// request is checked into the same stream.
#[test]
fn api_streams_of_the_last_release_read_back() {
    let glue = glue_columns();
    for req in api_requests() {
        let name = req["DeliveryStreamName"]
            .as_str()
            .expect("name")
            .to_string();
        let dir = tempfile::tempdir().expect("tempdir");
        let records = dir.path().join("streams");
        std::fs::create_dir_all(&records).expect("dir");
        let kept = request::normalized(typed(&req));
        let record = serde_json::json!({"origin": "Api", "request": kept, "version": 3,
            "tags": {}, "created_ms": 1700000000000i64, "glue_columns": glue});
        std::fs::write(records.join(format!("{name}.json")), record.to_string()).expect("record");
        let control =
            StreamRecords::open(dir.path(), &[], false, request::Local::default()).expect("opens");
        let (got, r) = control
            .api_streams()
            .into_iter()
            .next()
            .expect("the API stream");
        assert_eq!((got.as_str(), r.version), (name.as_str(), 3));
        let request = r.request.as_ref().expect("its request");
        let again = api_stream_config(request, &control, r.glue_columns.as_deref())
            .expect("the kept request is checked again");
        let first = api_stream_config(&typed(&req), &control, Some(&glue)).expect("valid request");
        assert_eq!(again, first, "{name}");
    }
}
