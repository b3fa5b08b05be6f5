//! CreateDeliveryStream and UpdateDestination requests (AWS's shapes) turned into the YAML
//! configuration's shape, so an API-created stream is checked by the same decoder, with the
//! same rules and defaults, as one in the config file.

use std::path::Path;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::api::error::AwsError;

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::invalid_argument(message.into())
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

fn text<'a>(v: &'a Value, key: &str) -> Result<Option<&'a str>, AwsError> {
    match get(v, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("{key} must be a string"))),
    }
}

/// The stream configuration (config-file shape) of a CreateDeliveryStream request; Glue tables
/// are read from `catalog` (`glue_catalog_dir`).
pub fn stream_config(input: &Value, catalog: Option<&Path>) -> Result<Value, AwsError> {
    let name = text(input, "DeliveryStreamName")?
        .ok_or_else(|| invalid("DeliveryStreamName is required"))?;
    let kind = text(input, "DeliveryStreamType")?.unwrap_or("DirectPut");
    let source = match kind {
        "DirectPut" => json!({"direct_put": {}}),
        "KinesisStreamAsSource" => {
            let k = get(input, "KinesisStreamSourceConfiguration").ok_or_else(|| {
                invalid("KinesisStreamSourceConfiguration is required with KinesisStreamAsSource")
            })?;
            let arn = text(k, "KinesisStreamARN")?.ok_or_else(|| {
                invalid("KinesisStreamSourceConfiguration.KinesisStreamARN is required")
            })?;
            json!({"kinesis_stream": {"stream_arn": arn, "starting_position": "LATEST"}})
        }
        other => {
            return Err(invalid(format!(
                "DeliveryStreamType {other} is not supported by firehosed (DirectPut, KinesisStreamAsSource)"
            )));
        }
    };
    for unsupported in [
        "S3DestinationConfiguration",
        "RedshiftDestinationConfiguration",
        "ElasticsearchDestinationConfiguration",
        "AmazonopensearchserviceDestinationConfiguration",
        "SplunkDestinationConfiguration",
        "HttpEndpointDestinationConfiguration",
        "SnowflakeDestinationConfiguration",
        "IcebergDestinationConfiguration",
        "MSKSourceConfiguration",
    ] {
        if get(input, unsupported).is_some() {
            return Err(invalid(format!(
                "{unsupported} is not supported by firehosed; use ExtendedS3DestinationConfiguration"
            )));
        }
    }
    let s3 = get(input, "ExtendedS3DestinationConfiguration")
        .ok_or_else(|| invalid("ExtendedS3DestinationConfiguration is required"))?;
    let (processing, destination) = destination(s3, catalog)?;
    let mut stream = json!({"name": name, "source": source, "destinations": [destination]});
    if !processing.is_empty() {
        stream["processing"] = Value::Object(processing);
    }
    Ok(stream)
}

/// An ExtendedS3DestinationConfiguration (or a complete update of one): the stream-level
/// processing settings it carries, and the destination.
pub fn destination(
    s3: &Value,
    catalog: Option<&Path>,
) -> Result<(Map<String, Value>, Value), AwsError> {
    let bucket_arn = text(s3, "BucketARN")?.ok_or_else(|| invalid("BucketARN is required"))?;
    let bucket = bucket_arn
        .strip_prefix("arn:aws:s3:::")
        .or_else(|| bucket_arn.strip_prefix("arn:aws-cn:s3:::"))
        .or_else(|| bucket_arn.strip_prefix("arn:aws-us-gov:s3:::"))
        .ok_or_else(|| invalid(format!("BucketARN {bucket_arn:?} is not an S3 bucket ARN")))?;
    let mut d = json!({"s3": {"bucket": bucket}});
    for (api, ours) in [
        ("Prefix", "prefix"),
        ("ErrorOutputPrefix", "error_output_prefix"),
        ("CompressionFormat", "compression"),
        ("FileExtension", "file_extension"),
        ("CustomTimeZone", "custom_time_zone"),
    ] {
        if let Some(v) = text(s3, api)? {
            d[ours] = json!(v);
        }
    }
    if let Some(b) = get(s3, "BufferingHints") {
        let mut buffering = Map::new();
        if let Some(v) = get(b, "SizeInMBs") {
            buffering.insert("size_mib".into(), v.clone());
        }
        if let Some(v) = get(b, "IntervalInSeconds") {
            buffering.insert("interval_seconds".into(), v.clone());
        }
        d["buffering"] = Value::Object(buffering);
    }
    if let Some(dp) = get(s3, "DynamicPartitioningConfiguration") {
        let mut out = json!({"enabled": get(dp, "Enabled").cloned().unwrap_or(json!(false))});
        if let Some(r) = get(dp, "RetryOptions").and_then(|r| get(r, "DurationInSeconds")) {
            out["retry_duration_seconds"] = r.clone();
        }
        d["dynamic_partitioning"] = out;
    }
    if let Some(c) = get(s3, "DataFormatConversionConfiguration")
        && get(c, "Enabled") != Some(&json!(false))
    {
        d["data_format_conversion"] = conversion(c, catalog)?;
    }
    if get(s3, "S3BackupMode").and_then(Value::as_str) == Some("Enabled") {
        let backup = get(s3, "S3BackupConfiguration").ok_or_else(|| {
            invalid("S3BackupConfiguration is required with S3BackupMode Enabled")
        })?;
        let prefix = text(backup, "Prefix")?.unwrap_or("");
        d["source_record_backup"] = json!({"prefix": prefix});
    }
    let processing = match get(s3, "ProcessingConfiguration") {
        Some(p) if get(p, "Enabled") == Some(&json!(true)) => processors(p)?,
        _ => Map::new(),
    };
    Ok((processing, d))
}

/// DataFormatConversionConfiguration: the Glue table's columns from the catalog folder, the
/// SerDe and the Parquet options, in the configuration's keys.
fn conversion(c: &Value, catalog: Option<&Path>) -> Result<Value, AwsError> {
    let schema = get(c, "SchemaConfiguration").ok_or_else(|| {
        invalid("DataFormatConversionConfiguration.SchemaConfiguration is required")
    })?;
    let database = text(schema, "DatabaseName")?
        .ok_or_else(|| invalid("SchemaConfiguration.DatabaseName is required"))?;
    let table = text(schema, "TableName")?
        .ok_or_else(|| invalid("SchemaConfiguration.TableName is required"))?;
    let dir = catalog.ok_or_else(|| {
        invalid("firehosed reads Glue tables from files: set glue_catalog_dir in the configuration file (<dir>/<DatabaseName>/<TableName>.json)")
    })?;
    let file = dir.join(database).join(format!("{table}.json"));
    if [database, table]
        .iter()
        .any(|n| n.is_empty() || n.contains(['/', '\\']) || n.starts_with('.'))
    {
        return Err(invalid("DatabaseName and TableName must be plain names"));
    }
    let mut schema_out = json!({
        "file": file.display().to_string(),
        "database_name": database,
        "table_name": table,
    });
    for (api, ours) in [("Region", "region"), ("CatalogId", "catalog_id")] {
        if let Some(v) = text(schema, api)? {
            schema_out[ours] = json!(v);
        }
    }
    let mut out = json!({"schema": schema_out});
    let deserializer = get(c, "InputFormatConfiguration").and_then(|i| get(i, "Deserializer"));
    if let Some(hive) = deserializer.and_then(|d| get(d, "HiveJsonSerDe")) {
        let formats = get(hive, "TimestampFormats").cloned().unwrap_or(json!([]));
        out["input"] = json!({"hive_json": {"timestamp_formats": formats}});
    } else if let Some(openx) = deserializer.and_then(|d| get(d, "OpenXJsonSerDe")) {
        let mut o = Map::new();
        for (api, ours) in [
            ("CaseInsensitive", "case_insensitive"),
            (
                "ConvertDotsInJsonKeysToUnderscores",
                "convert_dots_in_json_keys_to_underscores",
            ),
            ("ColumnToJsonKeyMappings", "column_to_json_key_mappings"),
        ] {
            if let Some(v) = get(openx, api) {
                o.insert(ours.into(), v.clone());
            }
        }
        out["input"] = json!({"openx_json": o});
    }
    let serializer = get(c, "OutputFormatConfiguration").and_then(|o| get(o, "Serializer"));
    if serializer.and_then(|s| get(s, "OrcSerDe")).is_some() {
        return Err(invalid(
            "OrcSerDe is not supported by firehosed: use ParquetSerDe",
        ));
    }
    if let Some(parquet) = serializer.and_then(|s| get(s, "ParquetSerDe")) {
        let mut p = Map::new();
        for (api, ours) in [
            ("BlockSizeBytes", "block_size_bytes"),
            ("PageSizeBytes", "page_size_bytes"),
            ("Compression", "compression"),
            (
                "EnableDictionaryCompression",
                "enable_dictionary_compression",
            ),
            ("MaxPaddingBytes", "max_padding_bytes"),
            ("WriterVersion", "writer_version"),
        ] {
            if let Some(v) = get(parquet, api) {
                p.insert(ours.into(), v.clone());
            }
        }
        out["output"] = json!({"parquet": p});
    }
    Ok(out)
}

fn parameter<'a>(processor: &'a Value, name: &str) -> Option<&'a str> {
    processor
        .get("Parameters")?
        .as_array()?
        .iter()
        .find(|p| p.get("ParameterName").and_then(Value::as_str) == Some(name))?
        .get("ParameterValue")?
        .as_str()
}

/// ProcessingConfiguration.Processors: metadata extraction, record de-aggregation, the
/// delimiter. A Lambda processor has no local runtime to map to.
fn processors(p: &Value) -> Result<Map<String, Value>, AwsError> {
    let mut out = Map::new();
    let list = get(p, "Processors")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for processor in &list {
        match processor.get("Type").and_then(Value::as_str) {
            Some("MetadataExtraction") => {
                let query = parameter(processor, "MetadataExtractionQuery")
                    .ok_or_else(|| invalid("MetadataExtraction needs MetadataExtractionQuery"))?;
                out.insert("metadata_extraction".into(), json!({"query": query}));
            }
            Some("AppendDelimiterToRecord") => {
                out.insert("append_delimiter_to_record".into(), json!(true));
            }
            Some("RecordDeAggregation") => {
                let kind = parameter(processor, "SubRecordType").unwrap_or("JSON");
                let value = if kind.eq_ignore_ascii_case("DELIMITED") {
                    let raw = parameter(processor, "Delimiter")
                        .ok_or_else(|| invalid("RecordDeAggregation DELIMITED needs Delimiter"))?;
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(raw)
                        .map_err(|_| invalid("Delimiter must be base64"))?;
                    let delimiter = String::from_utf8(bytes)
                        .map_err(|_| invalid("Delimiter must be UTF-8 text"))?;
                    json!({"delimited": delimiter})
                } else {
                    json!("json")
                };
                out.insert("record_deaggregation".into(), value);
            }
            Some("Lambda") => {
                return Err(invalid(
                    "a Lambda processor needs a local transform (subprocess or WASM): define the stream in the configuration file with processing.transform",
                ));
            }
            other => {
                return Err(invalid(format!(
                    "processor type {} is not supported",
                    other.unwrap_or("(none)")
                )));
            }
        }
    }
    Ok(out)
}

/// Merges an ExtendedS3DestinationUpdate into the ExtendedS3DestinationConfiguration it updates:
/// every field given replaces the old one, as AWS does.
pub fn merge_update(current: &Value, update: &Value) -> Value {
    let mut merged = current.clone();
    if let (Some(m), Some(u)) = (merged.as_object_mut(), update.as_object()) {
        for (k, v) in u {
            if !v.is_null() {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_request_becomes_the_config_shape() {
        let req = json!({
            "DeliveryStreamName": "orders",
            "ExtendedS3DestinationConfiguration": {
                "BucketARN": "arn:aws:s3:::lake",
                "RoleARN": "arn:aws:iam::123:role/x",
                "Prefix": "orders/!{partitionKeyFromQuery:c}/",
                "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
                "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
                "CompressionFormat": "GZIP",
                "DynamicPartitioningConfiguration": {"Enabled": true, "RetryOptions": {"DurationInSeconds": 30}},
                "ProcessingConfiguration": {"Enabled": true, "Processors": [
                    {"Type": "MetadataExtraction", "Parameters": [
                        {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{c: .c}"},
                        {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
                    {"Type": "AppendDelimiterToRecord", "Parameters": []}]}
            }
        });
        let c = stream_config(&req, None).expect("valid");
        assert_eq!(c["name"], "orders");
        assert_eq!(c["source"], json!({"direct_put": {}}));
        assert_eq!(c["processing"]["metadata_extraction"]["query"], "{c: .c}");
        assert_eq!(c["processing"]["append_delimiter_to_record"], true);
        let d = &c["destinations"][0];
        assert_eq!(d["s3"]["bucket"], "lake");
        assert_eq!(
            d["buffering"],
            json!({"size_mib": 64, "interval_seconds": 60})
        );
        assert_eq!(
            d["dynamic_partitioning"],
            json!({"enabled": true, "retry_duration_seconds": 30})
        );
    }

    #[test]
    fn what_firehosed_cannot_do_is_refused_by_name() {
        let base = json!({"DeliveryStreamName": "x", "ExtendedS3DestinationConfiguration": {
            "BucketARN": "arn:aws:s3:::b",
            "ProcessingConfiguration": {"Enabled": true, "Processors": [{"Type": "Lambda"}]}}});
        assert!(
            stream_config(&base, None)
                .unwrap_err()
                .message
                .contains("Lambda processor")
        );
        let redshift = json!({"DeliveryStreamName": "x", "RedshiftDestinationConfiguration": {}});
        assert!(
            stream_config(&redshift, None)
                .unwrap_err()
                .message
                .contains("Redshift")
        );
        let bad = json!({"DeliveryStreamName": "x", "ExtendedS3DestinationConfiguration": {"BucketARN": "lake"}});
        assert!(
            stream_config(&bad, None)
                .unwrap_err()
                .message
                .contains("not an S3 bucket ARN")
        );
    }
}
