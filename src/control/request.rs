//! CreateDeliveryStream and UpdateDestination requests (AWS's shapes) turned into the YAML
//! configuration's shape, so an API-created stream is checked by the same decoder, with the
//! same rules and defaults, as one in the config file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::config::transform::{LambdaFunction, function_name};

/// Why a request cannot become a delivery stream (AWS answers InvalidArgumentException).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct InvalidRequest {
    pub(crate) message: String,
}

fn invalid(message: impl Into<String>) -> InvalidRequest {
    InvalidRequest {
        message: message.into(),
    }
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

fn text<'a>(v: &'a Value, key: &str) -> Result<Option<&'a str>, InvalidRequest> {
    match get(v, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("{key} must be a string"))),
    }
}

/// What names in a request resolve to on this machine.
#[derive(Default)]
pub(crate) struct Local {
    /// `glue_catalog_dir`: Glue tables as `<dir>/<DatabaseName>/<TableName>.json`.
    pub(crate) catalog: Option<PathBuf>,
    /// `lambda_functions`: what a Lambda processor's LambdaArn runs.
    pub(crate) functions: BTreeMap<String, LambdaFunction>,
}

/// The stream configuration (config-file shape) of a CreateDeliveryStream request.
/// `glue`: the columns of the request's Glue table (`glue_table`), read by the caller.
pub(crate) fn stream_config(
    input: &Value,
    local: &Local,
    glue: Option<&Value>,
) -> Result<Value, InvalidRequest> {
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
    let given: Vec<&str> = DESTINATIONS
        .iter()
        .copied()
        .filter(|d| get(input, d).is_some())
        .collect();
    if given.len() > 1 {
        return Err(invalid(format!(
            "Only one destination configuration can be specified (got {})",
            given.join(", ")
        )));
    }
    for unsupported in [
        "RedshiftDestinationConfiguration",
        "ElasticsearchDestinationConfiguration",
        "AmazonopensearchserviceDestinationConfiguration",
        "SplunkDestinationConfiguration",
        "SnowflakeDestinationConfiguration",
        "IcebergDestinationConfiguration",
        "AmazonOpenSearchServerlessDestinationConfiguration",
        "MSKSourceConfiguration",
        "DatabaseSourceConfiguration",
    ] {
        if get(input, unsupported).is_some() {
            return Err(invalid(format!(
                "{unsupported} is not supported by firehosed; use ExtendedS3DestinationConfiguration or HttpEndpointDestinationConfiguration"
            )));
        }
    }
    // S3DestinationConfiguration (deprecated, still accepted by AWS) holds a subset of the
    // extended shape's members: the same reading serves both.
    let (processing, destination) = match get(input, "HttpEndpointDestinationConfiguration") {
        Some(h) => http_destination(h, local)?,
        None => {
            let s3 = get(input, "ExtendedS3DestinationConfiguration")
                .or_else(|| get(input, "S3DestinationConfiguration"))
                .ok_or_else(|| invalid("A destination configuration is required: ExtendedS3DestinationConfiguration (or S3DestinationConfiguration, HttpEndpointDestinationConfiguration)"))?;
            destination(s3, local, glue)?
        }
    };
    let mut stream = json!({"name": name, "source": source, "destinations": [destination]});
    if !processing.is_empty() {
        stream["processing"] = Value::Object(processing);
    }
    Ok(stream)
}

/// The rules a new request (CreateDeliveryStream, or a stream's request with an
/// UpdateDestination merged in) must follow beyond the model's, which `stream_config` leaves
/// to this: a request kept by an earlier version, which did not check them, still starts.
pub(crate) fn incoming_rules(input: &Value) -> Result<(), InvalidRequest> {
    let kind = text(input, "DeliveryStreamType")?.unwrap_or("DirectPut");
    if kind == "DirectPut" && get(input, "KinesisStreamSourceConfiguration").is_some() {
        return Err(invalid(
            "KinesisSourceStreamConfig is only applicable for KinesisStreamAsSource stream type",
        ));
    }
    let Some(s3) = get(input, "ExtendedS3DestinationConfiguration")
        .or_else(|| get(input, "S3DestinationConfiguration"))
    else {
        return Ok(());
    };
    let Some(backup) = get(s3, "S3BackupConfiguration")
        .filter(|_| get(s3, "S3BackupMode").and_then(Value::as_str) == Some("Enabled"))
    else {
        return Ok(());
    };
    // One bucket per destination: the backup goes where the objects go, as they go.
    let bucket_arn = text(s3, "BucketARN")?;
    if let Some(other) = text(backup, "BucketARN")?
        && Some(other) != bucket_arn
    {
        return Err(invalid(format!(
            "firehosed writes the source-record backup to the destination's bucket: S3BackupConfiguration.BucketARN {other} must be {}",
            bucket_arn.unwrap_or("the destination's")
        )));
    }
    let kms_of = |v: &Value| {
        get(v, "EncryptionConfiguration")
            .and_then(|e| get(e, "KMSEncryptionConfig"))
            .and_then(|k| get(k, "AWSKMSKeyARN"))
            .cloned()
    };
    let backup_kms = kms_of(backup);
    if backup_kms.is_some() && backup_kms != kms_of(s3) {
        return Err(invalid(
            "firehosed writes the source-record backup with the destination's encryption: S3BackupConfiguration.EncryptionConfiguration must be the destination's",
        ));
    }
    Ok(())
}

/// Every destination member of CreateDeliveryStreamInput (AWS takes exactly one).
const DESTINATIONS: [&str; 10] = [
    "S3DestinationConfiguration",
    "ExtendedS3DestinationConfiguration",
    "RedshiftDestinationConfiguration",
    "ElasticsearchDestinationConfiguration",
    "AmazonopensearchserviceDestinationConfiguration",
    "SplunkDestinationConfiguration",
    "HttpEndpointDestinationConfiguration",
    "AmazonOpenSearchServerlessDestinationConfiguration",
    "SnowflakeDestinationConfiguration",
    "IcebergDestinationConfiguration",
];

/// The request as it is kept: an S3DestinationConfiguration is kept as the
/// ExtendedS3DestinationConfiguration it is a subset of, so that updates of either shape merge
/// into one place (AWS describes such a stream with both descriptions, as any S3 stream).
pub(crate) fn normalized(mut input: Value) -> Value {
    if let Some(map) = input.as_object_mut()
        && !map.contains_key("ExtendedS3DestinationConfiguration")
        && let Some(s3) = map.remove("S3DestinationConfiguration")
    {
        map.insert("ExtendedS3DestinationConfiguration".into(), s3);
    }
    input
}

/// An ExtendedS3DestinationConfiguration (or a complete update of one): the stream-level
/// processing settings it carries, and the destination.
fn destination(
    s3: &Value,
    local: &Local,
    glue: Option<&Value>,
) -> Result<(Map<String, Value>, Value), InvalidRequest> {
    let bucket_arn = text(s3, "BucketARN")?.ok_or_else(|| invalid("BucketARN is required"))?;
    let bucket = bucket_arn
        .strip_prefix("arn:aws:s3:::")
        .or_else(|| bucket_arn.strip_prefix("arn:aws-cn:s3:::"))
        .or_else(|| bucket_arn.strip_prefix("arn:aws-us-gov:s3:::"))
        .ok_or_else(|| invalid(format!("BucketARN {bucket_arn:?} is not an S3 bucket ARN")))?;
    let mut d = json!({"s3": {"bucket": bucket}});
    let kms = get(s3, "EncryptionConfiguration")
        .and_then(|e| get(e, "KMSEncryptionConfig"))
        .and_then(|k| get(k, "AWSKMSKeyARN"));
    if let Some(key) = kms {
        d["s3"]["encryption"] = json!({"kms_key_arn": key});
    }
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
        d["buffering"] = buffering(b);
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
        d["data_format_conversion"] = conversion(c, local.catalog.as_deref(), glue)?;
    }
    if get(s3, "S3BackupMode").and_then(Value::as_str) == Some("Enabled") {
        let backup = get(s3, "S3BackupConfiguration").ok_or_else(|| {
            invalid("S3BackupConfiguration is required with S3BackupMode Enabled")
        })?;
        let prefix = text(backup, "Prefix")?.unwrap_or("");
        d["source_record_backup"] = json!({"prefix": prefix});
    }
    let processing = match get(s3, "ProcessingConfiguration") {
        Some(p) if get(p, "Enabled") == Some(&json!(true)) => processors(p, &local.functions)?,
        _ => Map::new(),
    };
    Ok((processing, d))
}

/// An HttpEndpointDestinationConfiguration (or a complete update of one): the stream-level
/// processing settings, and the destination in the configuration's shape (`http_endpoint`,
/// `s3_backup`, `buffering`).
fn http_destination(
    h: &Value,
    local: &Local,
) -> Result<(Map<String, Value>, Value), InvalidRequest> {
    let e = get(h, "EndpointConfiguration")
        .ok_or_else(|| invalid("EndpointConfiguration is required"))?;
    let url = text(e, "Url")?.ok_or_else(|| invalid("EndpointConfiguration.Url is required"))?;
    let mut endpoint = json!({"url": url});
    if let Some(n) = text(e, "Name")? {
        endpoint["name"] = json!(n);
    }
    if let Some(k) = text(e, "AccessKey")? {
        endpoint["access_key"] = json!(k);
    }
    if let Some(sm) = get(h, "SecretsManagerConfiguration")
        && get(sm, "Enabled") == Some(&json!(true))
    {
        return Err(invalid(
            "SecretsManagerConfiguration is not supported by firehosed; give EndpointConfiguration.AccessKey",
        ));
    }
    if let Some(r) = get(h, "RequestConfiguration") {
        if let Some(c) = text(r, "ContentEncoding")? {
            endpoint["content_encoding"] = json!(c);
        }
        let mut attributes = Map::new();
        for a in get(r, "CommonAttributes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = text(a, "AttributeName")?
                .ok_or_else(|| invalid("CommonAttributes[].AttributeName is required"))?;
            let value = text(a, "AttributeValue")?.unwrap_or("");
            if attributes.insert(name.to_string(), json!(value)).is_some() {
                return Err(invalid(format!(
                    "CommonAttributes has the AttributeName {name:?} more than once"
                )));
            }
        }
        if !attributes.is_empty() {
            endpoint["common_attributes"] = Value::Object(attributes);
        }
    }
    if let Some(r) = get(h, "RetryOptions").and_then(|r| get(r, "DurationInSeconds")) {
        endpoint["retry_duration_seconds"] = r.clone();
    }
    let s3 = get(h, "S3Configuration").ok_or_else(|| invalid("S3Configuration is required"))?;
    let (_, backup) = destination(s3, local, None)?;
    let mut s3_backup = json!({"bucket": backup["s3"]["bucket"]});
    for key in ["prefix", "error_output_prefix", "compression"] {
        if let Some(v) = backup.get(key) {
            s3_backup[key] = v.clone();
        }
    }
    if let Some(mode) = text(h, "S3BackupMode")? {
        s3_backup["mode"] = json!(mode);
    }
    let mut d = json!({"http_endpoint": endpoint, "s3_backup": s3_backup});
    if let Some(b) = get(h, "BufferingHints") {
        d["buffering"] = buffering(b);
    }
    let processing = match get(h, "ProcessingConfiguration") {
        Some(p) if get(p, "Enabled") == Some(&json!(true)) => processors(p, &local.functions)?,
        _ => Map::new(),
    };
    Ok((processing, d))
}

/// BufferingHints in the configuration's shape.
fn buffering(b: &Value) -> Value {
    let mut buffering = Map::new();
    if let Some(v) = get(b, "SizeInMBs") {
        buffering.insert("size_mib".into(), v.clone());
    }
    if let Some(v) = get(b, "IntervalInSeconds") {
        buffering.insert("interval_seconds".into(), v.clone());
    }
    Value::Object(buffering)
}

/// Merges an HttpEndpointDestinationUpdate into the HttpEndpointDestinationConfiguration it
/// updates: members given replace the old ones, its S3Update merges into S3Configuration.
pub(crate) fn merge_http_update(current: &Value, update: &Value) -> Value {
    let mut rest = update.clone();
    let s3_update = rest.as_object_mut().and_then(|m| m.remove("S3Update"));
    let mut merged = merge_update(current, &rest);
    if let Some(u) = s3_update {
        merged["S3Configuration"] = merge_update(&current["S3Configuration"], &u);
    }
    merged
}

/// The SchemaConfiguration of an enabled format conversion, where the Glue Data Catalog
/// (not `glue_catalog_dir`) is to be read: the caller reads its columns before the request is
/// checked.
pub(crate) fn glue_table(input: &Value, local: &Local) -> Option<crate::glue::TableRef> {
    if local.catalog.is_some() {
        return None;
    }
    let c = get(input, "ExtendedS3DestinationConfiguration")
        .and_then(|s3| get(s3, "DataFormatConversionConfiguration"))
        .filter(|c| get(c, "Enabled") != Some(&json!(false)))?;
    let schema = get(c, "SchemaConfiguration")?;
    let string = |k: &str| get(schema, k).and_then(Value::as_str).map(str::to_string);
    Some(crate::glue::TableRef {
        catalog_id: string("CatalogId"),
        database: string("DatabaseName")?,
        table: string("TableName")?,
        region: string("Region"),
        version_id: string("VersionId"),
    })
}

/// DataFormatConversionConfiguration: the Glue table's columns (from the catalog folder, or
/// read from the Data Catalog by the caller), the SerDe and the Parquet options, in the
/// configuration's keys.
fn conversion(
    c: &Value,
    catalog: Option<&Path>,
    glue: Option<&Value>,
) -> Result<Value, InvalidRequest> {
    let schema = get(c, "SchemaConfiguration").ok_or_else(|| {
        invalid("DataFormatConversionConfiguration.SchemaConfiguration is required")
    })?;
    let database = text(schema, "DatabaseName")?
        .ok_or_else(|| invalid("SchemaConfiguration.DatabaseName is required"))?;
    let table = text(schema, "TableName")?
        .ok_or_else(|| invalid("SchemaConfiguration.TableName is required"))?;
    let schema_out = schema_of(schema, database, table, catalog, glue)?;
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
    if let Some(orc) = serializer.and_then(|s| get(s, "OrcSerDe")) {
        let mut o = Map::new();
        for (api, ours) in [
            ("StripeSizeBytes", "stripe_size_bytes"),
            ("BlockSizeBytes", "block_size_bytes"),
            ("RowIndexStride", "row_index_stride"),
            ("EnablePadding", "enable_padding"),
            ("PaddingTolerance", "padding_tolerance"),
            ("Compression", "compression"),
            ("BloomFilterColumns", "bloom_filter_columns"),
            (
                "BloomFilterFalsePositiveProbability",
                "bloom_filter_false_positive_probability",
            ),
            ("DictionaryKeyThreshold", "dictionary_key_threshold"),
            ("FormatVersion", "format_version"),
        ] {
            if let Some(v) = get(orc, api) {
                o.insert(ours.into(), v.clone());
            }
        }
        out["output"] = json!({"orc": o});
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

/// The configuration's `schema` of a SchemaConfiguration: the table file in the catalog
/// folder, or the columns read from the Data Catalog, with the table's names.
fn schema_of(
    schema: &Value,
    database: &str,
    table: &str,
    catalog: Option<&Path>,
    glue: Option<&Value>,
) -> Result<Value, InvalidRequest> {
    let mut schema_out = match (catalog, glue) {
        (Some(dir), _) => {
            if [database, table]
                .iter()
                .any(|n| n.is_empty() || n.contains(['/', '\\']) || n.starts_with('.'))
            {
                return Err(invalid("DatabaseName and TableName must be plain names"));
            }
            let file = dir.join(database).join(format!("{table}.json"));
            json!({"file": file.display().to_string()})
        }
        (None, Some(columns)) => json!({"columns": columns}),
        (None, None) => {
            return Err(invalid(format!(
                "the columns of Glue table {database}.{table} were not read: configure the Glue endpoint (aws.endpoint_url or AWS_ENDPOINT_URL_GLUE), or glue_catalog_dir"
            )));
        }
    };
    schema_out["database_name"] = json!(database);
    schema_out["table_name"] = json!(table);
    for (api, ours) in [("Region", "region"), ("CatalogId", "catalog_id")] {
        if let Some(v) = text(schema, api)? {
            schema_out[ours] = json!(v);
        }
    }
    Ok(schema_out)
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

/// ProcessingConfiguration.Processors: decompression and CloudWatch Logs extraction, metadata
/// extraction, record de-aggregation, the delimiter, and a Lambda function, run by its
/// `lambda_functions` entry.
fn processors(
    p: &Value,
    functions: &BTreeMap<String, LambdaFunction>,
) -> Result<Map<String, Value>, InvalidRequest> {
    let mut out = Map::new();
    let list = get(p, "Processors")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut seen = Vec::new();
    for processor in &list {
        let kind = processor.get("Type").and_then(Value::as_str);
        if seen.contains(&kind) {
            return Err(invalid(format!(
                "processor type {} is given more than once",
                kind.unwrap_or("(none)")
            )));
        }
        seen.push(kind);
        match kind {
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
                out.insert("transform".into(), lambda(processor, functions)?);
            }
            Some("Decompression") => {
                // AWS's only value; anything else is refused by the configuration check.
                let format = parameter(processor, "CompressionFormat").unwrap_or("GZIP");
                out.insert("decompression".into(), json!(format));
            }
            Some("CloudWatchLogProcessing") => {
                let value = parameter(processor, "DataMessageExtraction").ok_or_else(|| {
                    invalid("CloudWatchLogProcessing needs the DataMessageExtraction parameter")
                })?;
                let on = match value.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid("DataMessageExtraction must be true or false")),
                };
                out.insert(
                    "cloudwatch_logs".into(),
                    json!({"data_message_extraction": on}),
                );
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

/// A Lambda processor: its function's local runtime (`lambda_functions`), with the processor's
/// retries and buffering.
fn lambda(
    processor: &Value,
    functions: &BTreeMap<String, LambdaFunction>,
) -> Result<Value, InvalidRequest> {
    let arn = parameter(processor, "LambdaArn")
        .ok_or_else(|| invalid("a Lambda processor needs the LambdaArn parameter"))?;
    let name = function_name(arn).ok_or_else(|| {
        invalid(format!(
            "LambdaArn {arn:?} is not a Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)"
        ))
    })?;
    let function = functions.get(name).ok_or_else(|| {
        invalid(format!(
            "Lambda function {name} has no local runtime: add it under lambda_functions in the configuration file (subprocess or wasm)"
        ))
    })?;
    let mut t = function.shape();
    t["lambda_arn"] = json!(arn);
    for (api, ours) in [
        ("NumberOfRetries", "number_of_retries"),
        ("BufferSizeInMBs", "buffer_size_mib"),
        ("BufferIntervalInSeconds", "buffer_interval_seconds"),
    ] {
        if let Some(v) = parameter(processor, api) {
            // AWS passes every parameter as a string; the decoder checks the number.
            t[ours] = json!(v);
        }
    }
    Ok(t)
}

/// Merges an ExtendedS3DestinationUpdate into the ExtendedS3DestinationConfiguration it updates:
/// every field given replaces the old one, as AWS does.
pub(crate) fn merge_update(current: &Value, update: &Value) -> Value {
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
        let c = stream_config(&req, &Local::default(), None).expect("valid");
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
            stream_config(&base, &Local::default(), None)
                .unwrap_err()
                .message
                .contains("Lambda processor")
        );
        let redshift = json!({"DeliveryStreamName": "x", "RedshiftDestinationConfiguration": {}});
        assert!(
            stream_config(&redshift, &Local::default(), None)
                .unwrap_err()
                .message
                .contains("Redshift")
        );
        let bad = json!({"DeliveryStreamName": "x", "ExtendedS3DestinationConfiguration": {"BucketARN": "lake"}});
        assert!(
            stream_config(&bad, &Local::default(), None)
                .unwrap_err()
                .message
                .contains("not an S3 bucket ARN")
        );
    }

    #[test]
    fn a_lambda_processor_becomes_its_functions_transform() {
        use crate::config::transform::Runtime;
        let mut local = Local::default();
        local.functions.insert(
            "upper".into(),
            LambdaFunction {
                runtime: Runtime::Wasm {
                    module: "/opt/upper.wasm".into(),
                    max_memory_mib: 64,
                },
                timeout_seconds: 30,
                concurrency: 3,
            },
        );
        let arn = "arn:aws:lambda:eu-west-1:111122223333:function:upper:live";
        let req = json!({"DeliveryStreamName": "x", "ExtendedS3DestinationConfiguration": {
            "BucketARN": "arn:aws:s3:::lake",
            "ProcessingConfiguration": {"Enabled": true, "Processors": [{"Type": "Lambda", "Parameters": [
                {"ParameterName": "LambdaArn", "ParameterValue": arn},
                {"ParameterName": "NumberOfRetries", "ParameterValue": "5"},
                {"ParameterName": "BufferSizeInMBs", "ParameterValue": "2"},
                {"ParameterName": "BufferIntervalInSeconds", "ParameterValue": "10"}]}]}}});
        let shape = stream_config(&req, &local, None).expect("valid");
        let checked = crate::config::parse_stream("request", &shape.to_string(), false)
            .expect("the decoder takes the shape");
        let t = checked.processing.transform.expect("a transform");
        assert_eq!(
            t.runtime,
            Runtime::Wasm {
                module: "/opt/upper.wasm".into(),
                max_memory_mib: 64
            }
        );
        assert_eq!(t.timeout_seconds, 30);
        assert_eq!(t.concurrency, 3);
        assert_eq!(t.number_of_retries, 5);
        assert_eq!(t.buffer_bytes, 2 * 1024 * 1024);
        assert_eq!(t.buffer_interval_seconds, 10);
        assert_eq!(t.lambda_arn("r", "a", "x"), arn);

        let mut disabled = req.clone();
        disabled["ExtendedS3DestinationConfiguration"]["ProcessingConfiguration"]["Enabled"] =
            json!(false);
        let shape = stream_config(&disabled, &Local::default(), None).expect("disabled is ignored");
        assert!(shape.get("processing").is_none(), "{shape}");

        let missing = stream_config(&req, &Local::default(), None)
            .unwrap_err()
            .message;
        assert!(
            missing.contains("upper") && missing.contains("lambda_functions"),
            "{missing}"
        );
        let mut not_arn = req.clone();
        not_arn["ExtendedS3DestinationConfiguration"]["ProcessingConfiguration"]["Processors"][0]
            ["Parameters"][0]["ParameterValue"] = json!("upper");
        let message = stream_config(&not_arn, &local, None).unwrap_err().message;
        assert!(message.contains("not a Lambda function ARN"), "{message}");
    }

    #[test]
    fn function_names_are_read_from_lambda_arns() {
        use crate::config::transform::function_name;
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:my-fn"),
            Some("my-fn")
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:my_fn:$LATEST"),
            Some("my_fn")
        );
        assert_eq!(
            function_name("arn:aws-cn:lambda:cn-north-1:1:function:f:3"),
            Some("f")
        );
        for bad in [
            "my-fn",
            "arn:aws:lambda:us-east-1:1:layer:x",
            "arn:aws:s3:::bucket",
            "arn:aws:lambda:us-east-1:1:function:",
            "arn:aws:lambda:us-east-1:1:function:a b",
            "arn:aws:lambda:us-east-1:1:function:f:",
            "arn:aws:lambda:us-east-1:1:function:f:1:2",
        ] {
            assert_eq!(function_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_processor_type_given_twice_is_refused() {
        let m = json!({"Type": "AppendDelimiterToRecord", "Parameters": []});
        let req = json!({"DeliveryStreamName": "x", "ExtendedS3DestinationConfiguration": {
            "BucketARN": "arn:aws:s3:::lake",
            "ProcessingConfiguration": {"Enabled": true, "Processors": [m.clone(), m]}}});
        let message = stream_config(&req, &Local::default(), None)
            .unwrap_err()
            .message;
        assert!(message.contains("more than once"), "{message}");
    }
}
