//! Stream versions survive upgrades (DESIGN.md guarantee 8): the fingerprints that firehosed
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
pub(super) fn glue_columns() -> serde_json::Value {
    serde_json::json!([{"name": "id", "type": "bigint"}, {"name": "ts", "type": "timestamp"},
        {"name": "amount", "type": "decimal(10,2)"}])
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
fn checked_streams() -> Vec<(&'static str, crate::config::StreamConfig)> {
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
        let sc = api_stream_config(&req, &records, Some(&glue)).expect("valid request");
        out.push(("api", sc));
    }
    out
}

#[test]
fn the_fingerprints_of_the_last_release_are_what_it_recorded() {
    let got: Vec<(&str, String, String)> = checked_streams()
        .into_iter()
        .map(|(file, sc)| (file, sc.name.clone(), fingerprint(&sc)))
        .collect();
    let want: Vec<(&str, String, String)> = RECORDED
        .iter()
        .map(|(f, n, p)| (*f, n.to_string(), p.to_string()))
        .collect();
    assert_eq!(got, want);
}
