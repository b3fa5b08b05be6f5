//! Read-only control plane: DescribeDeliveryStream (with AWS's defaults filled in),
//! ListDeliveryStreams, ListTagsForDeliveryStream.

use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::AwsError;
use super::firehose::{check_name, parse};
use crate::config::StreamConfig;
use crate::config::{Deaggregation, DestinationConfig, KinesisStreamRef, SourceConfig, Target};
use crate::control::Status;
use crate::encode::parquet::{Conversion, Deserializer, ParquetCompression};
use base64::Engine as _;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NameIn {
    delivery_stream_name: Option<String>,
}

pub(super) fn describe(state: &AppState, input: Value) -> Result<Value, AwsError> {
    let input: NameIn = parse(input)?;
    let name = check_name(input.delivery_stream_name)?;
    let streams = &state.streams;
    let record = streams.records().get(&name);
    let running = streams.get(&name);
    let view = match (&running, &record) {
        (Some(s), r) => View {
            config: &s.config,
            version: s.version,
            arn: s.arn.clone(),
            created_ms: r
                .as_ref()
                .map_or(s.created_at.timestamp_millis(), |r| r.created_ms),
            status: r.as_ref().map_or(Status::Active, |r| r.status.clone()),
        },
        // Being created (or failed): described from its checked configuration.
        (None, Some(r)) if r.config.is_some() => View {
            config: r.config.as_ref().expect("checked above"),
            version: r.version,
            arn: streams.arn(&name),
            created_ms: r.created_ms,
            status: r.status.clone(),
        },
        _ => return Err(streams.not_found(&name).into()),
    };
    Ok(json!({"DeliveryStreamDescription": description(state, &view)}))
}

/// What a description is made of.
struct View<'a> {
    config: &'a StreamConfig,
    version: u32,
    arn: String,
    created_ms: i64,
    status: Status,
}

fn description(state: &AppState, stream: &View) -> Value {
    let destinations: Vec<Value> = stream
        .config
        .destinations
        .iter()
        .enumerate()
        .map(|(i, d)| destination(state, i, d, stream.config))
        .collect();
    let created = stream.created_ms as f64 / 1000.0;
    let (kind, source) = match &stream.config.source {
        SourceConfig::DirectPut => ("DirectPut", None),
        SourceConfig::Kinesis(k) => {
            let arn = match &k.stream {
                KinesisStreamRef::Arn(a) => a.clone(),
                KinesisStreamRef::Name(n) => {
                    format!(
                        "arn:aws:kinesis:{}:{}:stream/{n}",
                        state.streams.region(),
                        state.streams.account_id()
                    )
                }
            };
            (
                "KinesisStreamAsSource",
                Some(json!({"KinesisStreamSourceDescription": {
                    "KinesisStreamARN": arn,
                    "RoleARN": format!("arn:aws:iam::{}:role/firehosed", state.streams.account_id()),
                    "DeliveryStartTimestamp": created,
                }})),
            )
        }
    };
    let mut description = json!({
        "DeliveryStreamName": stream.config.name,
        "DeliveryStreamARN": stream.arn,
        "DeliveryStreamStatus": stream.status.api_name(),
        "DeliveryStreamEncryptionConfiguration": {"Status": "DISABLED"},
        "DeliveryStreamType": kind,
        "VersionId": stream.version.to_string(),
        "CreateTimestamp": created,
        "LastUpdateTimestamp": created,
        "Destinations": destinations,
        "HasMoreDestinations": false,
    });
    if let Some(source) = source {
        description["Source"] = source;
    }
    if let Status::Failed(why) = &stream.status {
        description["FailureDescription"] = json!({"Type": "UNKNOWN_ERROR", "Details": why});
    }
    description
}

fn destination(
    state: &AppState,
    index: usize,
    d: &DestinationConfig,
    stream: &StreamConfig,
) -> Value {
    let (bucket_arn, directory) = match &d.target {
        Target::S3 { bucket, .. } => (format!("arn:aws:s3:::{bucket}"), None),
        Target::Directory(path) => (
            "arn:aws:s3:::firehosed-local-directory".to_string(),
            Some(path.display().to_string()),
        ),
    };
    let role = format!("arn:aws:iam::{}:role/firehosed", state.streams.account_id());
    let buffering = json!({
        "SizeInMBs": d.buffering.size_mib,
        "IntervalInSeconds": d.buffering.interval_seconds,
    });
    let mut s3 = json!({
        "RoleARN": role,
        "BucketARN": bucket_arn,
        "BufferingHints": buffering,
        "CompressionFormat": d.compression.api_name(),
        "EncryptionConfiguration": {"NoEncryptionConfig": "NoEncryption"},
        "CloudWatchLoggingOptions": {"Enabled": false},
    });
    if let Some(p) = &d.prefix {
        s3["Prefix"] = json!(p);
    }
    if let Some(p) = &d.error_output_prefix {
        s3["ErrorOutputPrefix"] = json!(p);
    }
    let mut extended = s3.clone();
    extended["ProcessingConfiguration"] = processing(state, stream);
    if d.source_record_backup.is_some() {
        extended["S3BackupMode"] = json!("Enabled");
        let mut backup = s3.clone();
        if let Some(b) = backup.as_object_mut() {
            b.remove("ErrorOutputPrefix");
            b.remove("Prefix");
        }
        if let Some(p) = &d.source_record_backup_prefix {
            backup["Prefix"] = json!(p);
        }
        extended["S3BackupDescription"] = backup;
    } else {
        extended["S3BackupMode"] = json!("Disabled");
    }
    extended["CustomTimeZone"] = json!(d.time_zone.name());
    if d.file_extension != d.compression.extension() {
        extended["FileExtension"] = json!(d.file_extension);
    }
    if let Some(c) = &d.format_conversion {
        extended["DataFormatConversionConfiguration"] = conversion(c, &role);
    }
    if let Some(dir) = directory {
        extended["FirehosedDirectory"] = json!(dir);
    }
    json!({
        "DestinationId": format!("destinationId-{:012}", index + 1),
        "S3DestinationDescription": s3,
        "ExtendedS3DestinationDescription": extended,
    })
}

/// AWS's ProcessingConfiguration of the stream's processing, processors in the order they run
/// (docs/aws-behaviour.md section 1); AWS passes every parameter value as a string.
fn processing(state: &AppState, stream: &StreamConfig) -> Value {
    let p = &stream.processing;
    let param = |name: &str, value: String| json!({"ParameterName": name, "ParameterValue": value});
    let mut processors = Vec::new();
    match &p.deaggregation {
        Some(Deaggregation::Json) => processors.push(json!({"Type": "RecordDeAggregation",
            "Parameters": [param("SubRecordType", "JSON".into())]})),
        Some(Deaggregation::Delimited(d)) => processors.push(json!({"Type": "RecordDeAggregation",
            "Parameters": [param("SubRecordType", "DELIMITED".into()),
                param("Delimiter", base64::engine::general_purpose::STANDARD.encode(d))]})),
        None => {}
    }
    if let Some(t) = &p.transform {
        let arn = t.lambda_arn(
            state.streams.region(),
            state.streams.account_id(),
            &stream.name,
        );
        let mib = t.buffer_bytes as f64 / (1024.0 * 1024.0);
        processors.push(json!({"Type": "Lambda", "Parameters": [
            param("LambdaArn", arn),
            param("RoleArn", format!("arn:aws:iam::{}:role/firehosed", state.streams.account_id())),
            param("NumberOfRetries", t.number_of_retries.to_string()),
            param("BufferSizeInMBs", format!("{}", (mib * 100.0).round() / 100.0)),
            param("BufferIntervalInSeconds", t.buffer_interval_seconds.to_string()),
        ]}));
    }
    if let Some(q) = &p.metadata_query {
        processors.push(json!({"Type": "MetadataExtraction", "Parameters": [
            param("MetadataExtractionQuery", q.clone()),
            param("JsonParsingEngine", "JQ-1.6".into()),
        ]}));
    }
    if p.append_delimiter_to_record {
        processors.push(json!({"Type": "AppendDelimiterToRecord", "Parameters": []}));
    }
    json!({"Enabled": !processors.is_empty(), "Processors": processors})
}

/// AWS's DataFormatConversionConfiguration of a destination.
fn conversion(c: &Conversion, role: &str) -> Value {
    let deserializer = match &c.deserializer {
        Deserializer::OpenX => {
            let mappings: serde_json::Map<String, Value> = c
                .mappings
                .iter()
                .map(|(col, key)| (col.clone(), json!(key)))
                .collect();
            let mut openx = json!({
                "CaseInsensitive": c.rules.keys.case_insensitive,
                "ConvertDotsInJsonKeysToUnderscores": c.rules.keys.dots_to_underscores,
            });
            if !mappings.is_empty() {
                openx["ColumnToJsonKeyMappings"] = Value::Object(mappings);
            }
            json!({"OpenXJsonSerDe": openx})
        }
        Deserializer::Hive(formats) => json!({"HiveJsonSerDe": {"TimestampFormats": formats}}),
    };
    let o = &c.options;
    let compression = ParquetCompression::NAMES[match o.compression {
        ParquetCompression::Uncompressed => 0,
        ParquetCompression::Gzip => 1,
        ParquetCompression::Snappy => 2,
        ParquetCompression::Zstd => 3,
    }];
    let mut schema = json!({"RoleARN": role, "VersionId": "LATEST"});
    for (key, value) in [
        ("CatalogId", &c.table.catalog_id),
        ("DatabaseName", &c.table.database),
        ("TableName", &c.table.table),
        ("Region", &c.table.region),
    ] {
        if let Some(v) = value {
            schema[key] = json!(v);
        }
    }
    json!({
        "Enabled": true,
        "SchemaConfiguration": schema,
        "InputFormatConfiguration": {"Deserializer": deserializer},
        "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {
            "BlockSizeBytes": o.block_size_bytes,
            "PageSizeBytes": o.page_size_bytes,
            "Compression": compression,
            "EnableDictionaryCompression": o.dictionary,
            "MaxPaddingBytes": o.max_padding_bytes,
            "WriterVersion": if o.v2 { "V2" } else { "V1" },
        }}},
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListIn {
    limit: Option<i64>,
    delivery_stream_type: Option<String>,
    exclusive_start_delivery_stream_name: Option<String>,
}

pub(super) fn list(state: &AppState, input: Value) -> Result<Value, AwsError> {
    let input: ListIn = parse(input)?;
    let limit = input.limit.unwrap_or(10);
    if !(1..=10_000).contains(&limit) {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 10000"
        )));
    }
    // Without DeliveryStreamType every type is listed, as AWS.
    let kind = input.delivery_stream_type;
    let known = [
        "DirectPut",
        "KinesisStreamAsSource",
        "MSKAsSource",
        "DatabaseAsSource",
    ];
    if let Some(kind) = kind.as_deref()
        && !known.contains(&kind)
    {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{kind}' at 'deliveryStreamType' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            known.join(", ")
        )));
    }
    let start = input
        .exclusive_start_delivery_stream_name
        .unwrap_or_default();
    let streams = state.streams.all();
    let records = state.streams.records();
    let mut matching: Vec<String> = records
        .names()
        .into_iter()
        .filter(|name| {
            let source = streams
                .iter()
                .find(|s| s.name() == name)
                .map(|s| &s.config.source)
                .cloned()
                .or_else(|| records.get(name).and_then(|r| r.config.map(|c| c.source)));
            let this = match source {
                Some(SourceConfig::Kinesis(_)) => "KinesisStreamAsSource",
                _ => "DirectPut",
            };
            name.as_str() > start.as_str() && kind.as_deref().is_none_or(|k| k == this)
        })
        .collect();
    matching.sort();
    let take = limit as usize;
    Ok(json!({
        "DeliveryStreamNames": matching.iter().take(take).collect::<Vec<_>>(),
        "HasMoreDeliveryStreams": matching.len() > take,
    }))
}
