//! Read-only control plane: DescribeDeliveryStream (with AWS's defaults filled in),
//! ListDeliveryStreams, ListTagsForDeliveryStream.

use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::AwsError;
use super::firehose::{check_name, parse};
use crate::config::StreamConfig;
use crate::config::{Deaggregation, DestinationConfig, KinesisStreamRef, SourceConfig, Target};
use crate::control::{Status, StreamRecord};
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
    let config = match (&running, &record) {
        (Some(s), _) => &s.config,
        // Being created (or failed): described from its checked configuration.
        (None, Some(r)) if r.config.is_some() => r.config.as_ref().expect("checked above"),
        _ => return Err(streams.not_found(&name).into()),
    };
    let view = View {
        config,
        version: running
            .as_ref()
            .map_or_else(|| record.as_ref().map_or(1, |r| r.version), |s| s.version),
        arn: running
            .as_ref()
            .map_or_else(|| streams.arn(&name), |s| s.arn.clone()),
        created_ms: record.as_ref().map_or_else(
            || {
                running
                    .as_ref()
                    .map_or(0, |s| s.created_at.timestamp_millis())
            },
            |r| r.created_ms,
        ),
        record: record.as_ref(),
    };
    Ok(json!({"DeliveryStreamDescription": description(state, &view)}))
}

/// What a description is made of.
struct View<'a> {
    config: &'a StreamConfig,
    version: u32,
    arn: String,
    created_ms: i64,
    /// The control record: status, encryption, last update and, for an API stream, the
    /// request whose members the configuration does not keep (role ARNs, logging options):
    /// AWS describes what was sent.
    record: Option<&'a StreamRecord>,
}

impl<'a> View<'a> {
    fn status(&self) -> Status {
        self.record.map_or(Status::Active, |r| r.status.clone())
    }

    /// A member of the request, by path (`None` for file streams and members not sent).
    fn sent(&self, path: &[&str]) -> Option<&'a Value> {
        let mut v = self.record?.request.as_ref()?;
        for key in path {
            v = v.get(*key).filter(|x| !x.is_null())?;
        }
        Some(v)
    }
}

/// AWS's FailureDescription.Details is at most 1,024 characters.
const MAX_FAILURE_DETAILS: usize = 1024;

/// FailureDescription of a CREATING_FAILED stream, within the model's length (UTF-16 units,
/// as the model counts).
fn failure_description(why: &str) -> Value {
    let mut units = 0;
    let details: String = why
        .chars()
        .take_while(|c| {
            units += c.len_utf16();
            units <= MAX_FAILURE_DETAILS
        })
        .collect();
    json!({"Type": "UNKNOWN_ERROR", "Details": details})
}

fn description(state: &AppState, stream: &View) -> Value {
    let destinations: Vec<Value> = stream
        .config
        .destinations
        .iter()
        .enumerate()
        .map(|(i, d)| destination(state, i, d, stream))
        .collect();
    let created = stream.created_ms as f64 / 1000.0;
    let role = default_role(state);
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
                    "RoleARN": stream.sent(&["KinesisStreamSourceConfiguration", "RoleARN"])
                        .cloned().unwrap_or_else(|| json!(role)),
                    "DeliveryStartTimestamp": created,
                }})),
            )
        }
    };
    let status = stream.status();
    let mut description = json!({
        "DeliveryStreamName": stream.config.name,
        "DeliveryStreamARN": stream.arn,
        "DeliveryStreamStatus": status.api_name(),
        "DeliveryStreamType": kind,
        "VersionId": stream.version.to_string(),
        "CreateTimestamp": created,
        "Destinations": destinations,
        "HasMoreDestinations": false,
    });
    // A Kinesis-sourced stream has no encryption of its own to describe (AWS leaves it out).
    if source.is_none() {
        description["DeliveryStreamEncryptionConfiguration"] =
            match stream.record.and_then(|r| r.encryption.as_ref()) {
                Some(e) => {
                    let status = e.status_at(crate::record::now_ms());
                    let mut out = json!({"KeyType": e.key_type, "Status": status.api_name()});
                    if let Some(arn) = &e.key_arn {
                        out["KeyARN"] = json!(arn);
                    }
                    out
                }
                None => json!({"Status": "DISABLED"}),
            };
    }
    // A record of an earlier version has no update time: its creation is the best known.
    let updated = stream.record.and_then(|r| {
        r.updated_ms
            .or_else(|| (stream.version > 1).then_some(r.created_ms))
    });
    if let Some(updated) = updated {
        description["LastUpdateTimestamp"] = json!(updated as f64 / 1000.0);
    }
    if let Some(source) = source {
        description["Source"] = source;
    }
    if let Status::Failed(why) = &status {
        description["FailureDescription"] = failure_description(why);
    }
    description
}

/// The role a file stream is described with (it has none: firehosed uses its own
/// credentials); an API stream is described with the RoleARN it was created with.
fn default_role(state: &AppState) -> String {
    format!("arn:aws:iam::{}:role/firehosed", state.streams.account_id())
}

/// A member of the request's ExtendedS3DestinationConfiguration (by path below it).
fn sent_s3(view: &View, path: &[&str]) -> Option<Value> {
    let mut full = vec!["ExtendedS3DestinationConfiguration"];
    full.extend_from_slice(path);
    view.sent(&full).cloned()
}

/// Where a description's S3 members were sent in the request.
const EXTENDED_S3: &[&str] = &["ExtendedS3DestinationConfiguration"];
const HTTP: &str = "HttpEndpointDestinationConfiguration";
const HTTP_S3: &[&str] = &[HTTP, "S3Configuration"];

fn destination(state: &AppState, index: usize, d: &DestinationConfig, stream: &View) -> Value {
    if let Target::Http(h) = &d.target {
        return http_destination(state, index, d, h, stream);
    }
    let s3 = s3_description(state, d, &d.target, stream, EXTENDED_S3);
    let mut extended = s3.clone();
    extended["ProcessingConfiguration"] = processing(state, stream);
    match backup_description(d, stream, &s3) {
        Some(backup) => {
            extended["S3BackupMode"] = json!("Enabled");
            extended["S3BackupDescription"] = backup;
        }
        None => extended["S3BackupMode"] = json!("Disabled"),
    }
    extended_only(d, stream, &mut extended);
    json!({
        "DestinationId": format!("destinationId-{:012}", index + 1),
        "S3DestinationDescription": s3,
        "ExtendedS3DestinationDescription": extended,
    })
}

/// HttpEndpointDestinationDescription. The AccessKey is never described (AWS leaves it out);
/// the backup's S3DestinationDescription has the destination's buffering, which its objects
/// are written with.
fn http_destination(
    state: &AppState,
    index: usize,
    d: &DestinationConfig,
    h: &crate::config::HttpEndpoint,
    stream: &View,
) -> Value {
    let sent = |member: &str| stream.sent(&[HTTP, member]).cloned();
    let mut endpoint = json!({"Url": h.url});
    if let Some(name) = &h.name {
        endpoint["Name"] = json!(name);
    }
    let mut request = json!({"ContentEncoding": if h.gzip { "GZIP" } else { "NONE" }});
    if !h.common_attributes.is_empty() {
        let attributes: Vec<Value> = h
            .common_attributes
            .iter()
            .map(|(k, v)| json!({"AttributeName": k, "AttributeValue": v}))
            .collect();
        request["CommonAttributes"] = json!(attributes);
    }
    let mode = match h.backup_mode {
        crate::config::BackupMode::FailedDataOnly => "FailedDataOnly",
        crate::config::BackupMode::AllData => "AllData",
    };
    let description = json!({
        "RoleARN": sent("RoleARN").unwrap_or_else(|| json!(default_role(state))),
        "EndpointConfiguration": endpoint,
        "BufferingHints": {
            "SizeInMBs": d.buffering.size_mib,
            "IntervalInSeconds": d.buffering.interval_seconds,
        },
        "CloudWatchLoggingOptions": sent("CloudWatchLoggingOptions")
            .unwrap_or_else(|| json!({"Enabled": false})),
        "RequestConfiguration": request,
        "ProcessingConfiguration": processing(state, stream),
        "RetryOptions": {"DurationInSeconds": h.retry_duration_seconds},
        "S3BackupMode": mode,
        "S3DestinationDescription": s3_description(state, d, &h.backup, stream, HTTP_S3),
    });
    json!({
        "DestinationId": format!("destinationId-{:012}", index + 1),
        "HttpEndpointDestinationDescription": description,
    })
}

/// The members both S3 descriptions have (and an HTTP endpoint's backup has), of `target`;
/// `root`: where the request sent them.
fn s3_description(
    state: &AppState,
    d: &DestinationConfig,
    target: &Target,
    stream: &View,
    root: &[&str],
) -> Value {
    let sent = |member: &str| {
        let mut path = root.to_vec();
        path.push(member);
        stream.sent(&path).cloned()
    };
    // A directory destination (configuration file only) has no bucket; AWS's shape needs
    // one, so it is described with a placeholder name (docs/api.md).
    let (bucket_arn, encryption) = match target {
        Target::S3 {
            bucket,
            kms_key_arn,
            ..
        } => (
            format!("arn:aws:s3:::{bucket}"),
            match kms_key_arn {
                Some(key) => json!({"KMSEncryptionConfig": {"AWSKMSKeyARN": key}}),
                None => json!({"NoEncryptionConfig": "NoEncryption"}),
            },
        ),
        Target::Directory(_) | Target::Http(_) => (
            "arn:aws:s3:::firehosed-local-directory".to_string(),
            json!({"NoEncryptionConfig": "NoEncryption"}),
        ),
    };
    let mut s3 = json!({
        "RoleARN": sent("RoleARN").unwrap_or_else(|| json!(default_role(state))),
        "BucketARN": bucket_arn,
        "BufferingHints": {
            "SizeInMBs": d.buffering.size_mib,
            "IntervalInSeconds": d.buffering.interval_seconds,
        },
        "CompressionFormat": d.compression.api_name(),
        "EncryptionConfiguration": encryption,
        "CloudWatchLoggingOptions": sent("CloudWatchLoggingOptions")
            .unwrap_or_else(|| json!({"Enabled": false})),
    });
    if let Some(p) = &d.prefix {
        s3["Prefix"] = json!(p);
    }
    if let Some(p) = &d.error_output_prefix {
        s3["ErrorOutputPrefix"] = json!(p);
    }
    s3
}

/// S3BackupDescription, when source records are backed up.
fn backup_description(d: &DestinationConfig, stream: &View, s3: &Value) -> Option<Value> {
    d.source_record_backup.as_ref()?;
    let mut backup = s3.clone();
    if let Some(b) = backup.as_object_mut() {
        b.remove("ErrorOutputPrefix");
        b.remove("Prefix");
    }
    // The backup is written by the destination's own sink: its bucket and encryption.
    for member in ["RoleARN", "CloudWatchLoggingOptions"] {
        if let Some(v) = sent_s3(stream, &["S3BackupConfiguration", member]) {
            backup[member] = v;
        }
    }
    if let Some(p) = &d.source_record_backup_prefix {
        backup["Prefix"] = json!(p);
    }
    Some(backup)
}

/// The ExtendedS3DestinationDescription's own members, each left out where AWS leaves it out.
fn extended_only(d: &DestinationConfig, stream: &View, extended: &mut Value) {
    // Described when it was given (an API stream) or is not UTC (a file stream).
    match sent_s3(stream, &["CustomTimeZone"]) {
        Some(tz) => extended["CustomTimeZone"] = tz,
        None if stream.record.and_then(|r| r.request.as_ref()).is_none()
            && d.time_zone != chrono_tz::UTC =>
        {
            extended["CustomTimeZone"] = json!(d.time_zone.name());
        }
        None => {}
    }
    if d.file_extension != d.compression.extension() {
        extended["FileExtension"] = json!(d.file_extension);
    }
    match (
        &d.dynamic_partitioning,
        sent_s3(stream, &["DynamicPartitioningConfiguration"]),
    ) {
        (Some(p), _) => {
            extended["DynamicPartitioningConfiguration"] = json!({"Enabled": true,
                "RetryOptions": {"DurationInSeconds": p.retry_duration_seconds}});
        }
        (None, Some(off)) => extended["DynamicPartitioningConfiguration"] = off,
        (None, None) => {}
    }
    match (
        &d.format_conversion,
        sent_s3(stream, &["DataFormatConversionConfiguration"]),
    ) {
        (Some(c), _) => {
            let schema_role = sent_s3(
                stream,
                &[
                    "DataFormatConversionConfiguration",
                    "SchemaConfiguration",
                    "RoleARN",
                ],
            )
            .unwrap_or_else(|| extended["RoleARN"].clone());
            let mut described = conversion(c, &schema_role);
            // The table version read (GetTableVersion), as sent; LATEST when none was.
            if let Some(v) = sent_s3(
                stream,
                &[
                    "DataFormatConversionConfiguration",
                    "SchemaConfiguration",
                    "VersionId",
                ],
            ) {
                described["SchemaConfiguration"]["VersionId"] = v;
            }
            extended["DataFormatConversionConfiguration"] = described;
        }
        // Not converting, but it was sent (`{"Enabled": false}`): described as sent.
        (None, Some(off)) => extended["DataFormatConversionConfiguration"] = off,
        (None, None) => {}
    }
}

/// AWS's ProcessingConfiguration of the stream's processing, processors in the order they run
/// (docs/aws-behaviour.md section 1); AWS passes every parameter value as a string.
fn processing(state: &AppState, view: &View) -> Value {
    let stream = view.config;
    let p = &stream.processing;
    let param = |name: &str, value: String| json!({"ParameterName": name, "ParameterValue": value});
    let mut processors = Vec::new();
    if p.decompression {
        processors.push(json!({"Type": "Decompression",
            "Parameters": [param("CompressionFormat", "GZIP".into())]}));
    }
    if p.cloudwatch_logs_extraction {
        processors.push(json!({"Type": "CloudWatchLogProcessing",
            "Parameters": [param("DataMessageExtraction", "true".into())]}));
    }
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
        let role = sent_lambda_role(view).unwrap_or_else(|| default_role(state));
        // AWS's order of a Lambda processor's parameters.
        processors.push(json!({"Type": "Lambda", "Parameters": [
            param("LambdaArn", arn),
            param("NumberOfRetries", t.number_of_retries.to_string()),
            param("RoleArn", role),
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

/// The RoleArn parameter of the request's Lambda processor.
fn sent_lambda_role(view: &View) -> Option<String> {
    let processors = view.sent(&[
        "ExtendedS3DestinationConfiguration",
        "ProcessingConfiguration",
        "Processors",
    ])?;
    processors
        .as_array()?
        .iter()
        .filter(|p| p.get("Type").and_then(Value::as_str) == Some("Lambda"))
        .flat_map(|p| {
            p.get("Parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .find(|p| p.get("ParameterName").and_then(Value::as_str) == Some("RoleArn"))?
        .get("ParameterValue")?
        .as_str()
        .map(str::to_string)
}

/// AWS's DataFormatConversionConfiguration of a destination.
fn conversion(c: &Conversion, role: &Value) -> Value {
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
    let serializer = match &c.orc {
        Some(orc) => json!({"OrcSerDe": orc_serde(orc)}),
        None => json!({"ParquetSerDe": {
            "BlockSizeBytes": o.block_size_bytes,
            "PageSizeBytes": o.page_size_bytes,
            "Compression": compression,
            "EnableDictionaryCompression": o.dictionary,
            "MaxPaddingBytes": o.max_padding_bytes,
            "WriterVersion": if o.v2 { "V2" } else { "V1" },
        }}),
    };
    json!({
        "Enabled": true,
        "SchemaConfiguration": schema,
        "InputFormatConfiguration": {"Deserializer": deserializer},
        "OutputFormatConfiguration": {"Serializer": serializer},
    })
}

/// OrcSerDe as configured (with AWS's defaults for what was not).
fn orc_serde(o: &crate::encode::orc::OrcOptions) -> Value {
    let mut out = json!({
        "StripeSizeBytes": o.stripe_size_bytes,
        "BlockSizeBytes": o.block_size_bytes,
        "RowIndexStride": o.row_index_stride,
        "EnablePadding": o.enable_padding,
        "PaddingTolerance": o.padding_tolerance,
        "Compression": o.compression.api_name(),
        "BloomFilterFalsePositiveProbability": o.bloom_filter_false_positive_probability,
        "DictionaryKeyThreshold": o.dictionary_key_threshold,
        "FormatVersion": if o.format_v0_11 { "V0_11" } else { "V0_12" },
    });
    if !o.bloom_filter_columns.is_empty() {
        out["BloomFilterColumns"] = json!(o.bloom_filter_columns);
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_details_stay_within_the_models_1024_characters() {
        let long = "é".repeat(3000);
        let d = failure_description(&long);
        assert_eq!(d["Details"].as_str().map(|s| s.chars().count()), Some(1024));
        // Outside the BMP a character is two UTF-16 units.
        let wide = failure_description(&"😀".repeat(600));
        assert_eq!(
            wide["Details"].as_str().map(|s| s.encode_utf16().count()),
            Some(1024)
        );
        assert_eq!(d["Type"], "UNKNOWN_ERROR");
        assert_eq!(failure_description("short")["Details"], "short");
    }
}
