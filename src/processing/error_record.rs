//! Error records (docs/aws-behaviour.md section 3): one JSON line per failed record, with the original
//! record in `rawData`.

use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;

use super::ErrorOutput;
use crate::record::Record;

/// A transform failure of one record.
#[derive(Debug, Clone)]
pub(crate) struct LambdaFailure {
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) attempts: u32,
    pub(crate) ending_ms: i64,
}

/// The line of `processing-failed` (AWS's Lambda error record) and `decompression-failed`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LambdaLine<'a> {
    attempts_made: u32,
    arrival_timestamp: i64,
    error_code: &'a str,
    error_message: &'a str,
    attempt_ending_timestamp: i64,
    raw_data: String,
    /// Absent from the error records of processors other than Lambda (decompression).
    #[serde(skip_serializing_if = "Option::is_none")]
    lambda_arn: Option<&'a str>,
}

/// The `processing-failed` error record of `original`.
pub(crate) fn processing_failed(
    original: &Record,
    failure: &LambdaFailure,
    lambda_arn: &str,
) -> ErrorOutput {
    processor_line(original, "processing-failed", failure, Some(lambda_arn))
}

/// A processor's error record of `original` (the Lambda record's fields; `lambda_arn` only
/// for a Lambda).
fn processor_line(
    original: &Record,
    output_type: &'static str,
    failure: &LambdaFailure,
    lambda_arn: Option<&str>,
) -> ErrorOutput {
    let line = LambdaLine {
        attempts_made: failure.attempts,
        arrival_timestamp: original.arrival_ms,
        error_code: failure.code,
        error_message: &failure.message,
        attempt_ending_timestamp: failure.ending_ms,
        raw_data: base64::engine::general_purpose::STANDARD.encode(&original.data),
        lambda_arn,
    };
    ErrorOutput {
        output_type,
        line: as_line(original, &line),
        prefix: None,
    }
}

/// The error-output-type of records an Iceberg destination could not deliver.
pub(crate) const ICEBERG_FAILED: &str = "iceberg-failed";
/// AWS: the record is routed to a table that does not exist (or is not format v2).
pub(crate) const ICEBERG_NO_SUCH_TABLE: &str = "Iceberg.NoSuchTable";
/// AWS: a null or empty table name.
pub(crate) const ICEBERG_INVALID_TABLE_NAME: &str = "Iceberg.InvalidTableName";
/// The record has no value for a required column (the code AWS is seen to use for it).
pub(crate) const ICEBERG_MISSING_COLUMN: &str = "Iceberg.MissingColumnWithinRecord";
/// firehosed's code for a value that does not fit its column's type (AWS documents none).
pub(crate) const ICEBERG_SCHEMA_MISMATCH: &str = "Iceberg.SchemaMismatch";

/// The `iceberg-failed` error record of `original`, in the shape of AWS's other error records.
pub(crate) fn iceberg_failed(original: &Record, code: &'static str, message: &str) -> ErrorOutput {
    let failure = LambdaFailure {
        attempts: 1,
        code,
        message: message.to_string(),
        ending_ms: crate::record::now_ms(),
    };
    processor_line(original, ICEBERG_FAILED, &failure, None)
}

/// The `decompression-failed` error record of `original`: as AWS does, the record as it came
/// (still compressed) with the error's code and message.
pub(crate) fn decompression_failed(
    original: &Record,
    failure: &super::cloudwatch_logs::Failure,
) -> ErrorOutput {
    let failure = LambdaFailure {
        code: failure.code(),
        message: failure.to_string(),
        attempts: 1,
        ending_ms: crate::record::now_ms(),
    };
    processor_line(original, "decompression-failed", &failure, None)
}

/// Why an HTTP endpoint did not take a request within the retry duration: the fields of a
/// transform failure.
pub(crate) type HttpFailure = LambdaFailure;

/// The `http-endpoint-failed` error record of `original`: the fields of AWS's error records
/// of processors, without a Lambda ARN.
pub(crate) fn http_endpoint_failed(original: &Record, failure: &HttpFailure) -> ErrorOutput {
    processor_line(original, "http-endpoint-failed", failure, None)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConversionLine<'a> {
    attempts_made: u32,
    arrival_timestamp: i64,
    last_error_code: &'a str,
    last_error_message: &'a str,
    attempt_ending_timestamp: i64,
    raw_data: String,
    sequence_number: String,
    sub_sequence_number: u64,
    data_catalog_table: CatalogLine<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CatalogLine<'a> {
    catalog_id: Option<&'a str>,
    database_name: Option<&'a str>,
    table_name: Option<&'a str>,
    region: Option<&'a str>,
    version_id: &'a str,
    catalog_arn: Option<&'a str>,
}

/// The error code of every record that does not fit the schema.
pub(crate) const MALFORMED_DATA: &str = "DataFormatConversion.MalformedData";

/// The `format-conversion-failed` error record of `original`, which did not fit the schema of
/// `table` for the reason `message`.
pub(crate) fn format_conversion_failed(
    original: &Record,
    message: &str,
    table: &crate::encode::conversion::CatalogTable,
) -> ErrorOutput {
    let (sequence_number, sub_sequence_number) = match &original.kinesis {
        Some(k) => (k.sequence_number.to_string(), k.subsequence_number),
        None => (original.seq.to_string(), u64::from(original.sub)),
    };
    let line = ConversionLine {
        attempts_made: 1,
        arrival_timestamp: original.arrival_ms,
        last_error_code: MALFORMED_DATA,
        last_error_message: message,
        attempt_ending_timestamp: crate::record::now_ms(),
        raw_data: base64::engine::general_purpose::STANDARD.encode(&original.data),
        sequence_number,
        sub_sequence_number,
        data_catalog_table: CatalogLine {
            catalog_id: table.catalog_id.as_deref(),
            database_name: table.database.as_deref(),
            table_name: table.table.as_deref(),
            region: table.region.as_deref(),
            version_id: "LATEST",
            catalog_arn: None,
        },
    };
    ErrorOutput {
        output_type: "format-conversion-failed",
        line: as_line(original, &line),
        prefix: None,
    }
}

fn as_line(original: &Record, value: &impl Serialize) -> Record {
    let mut json = serde_json::to_vec(value).unwrap_or_default();
    json.push(b'\n');
    Record {
        data: Bytes::from(json),
        arrival_ms: original.arrival_ms,
        seq: original.seq,
        sub: original.sub,
        // The original's place in its shard: exactly-once identities are ranges of it.
        kinesis: original.kinesis.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_has_the_aws_fields_and_the_original_data() {
        let original = Record {
            data: Bytes::from_static(b"hello"),
            arrival_ms: 1627921286181,
            seq: 7,
            sub: 0,
            kinesis: None,
        };
        let f = LambdaFailure {
            code: "Lambda.FunctionError",
            message: "boom".into(),
            attempts: 4,
            ending_ms: 1627921366634,
        };
        let out = processing_failed(
            &original,
            &f,
            "arn:aws:lambda:us-east-1:000000000000:function:x",
        );
        assert_eq!(out.output_type, "processing-failed");
        assert_eq!(out.line.seq, 7);
        let text = std::str::from_utf8(&out.line.data).expect("utf8");
        assert!(text.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(text).expect("json");
        assert_eq!(v["attemptsMade"], 4);
        assert_eq!(v["arrivalTimestamp"], 1627921286181i64);
        assert_eq!(v["errorCode"], "Lambda.FunctionError");
        assert_eq!(v["errorMessage"], "boom");
        assert_eq!(v["attemptEndingTimestamp"], 1627921366634i64);
        assert_eq!(v["rawData"], "aGVsbG8=");
        assert_eq!(
            v["lambdaArn"],
            "arn:aws:lambda:us-east-1:000000000000:function:x"
        );
    }

    #[test]
    fn a_conversion_failure_names_the_kinesis_record_and_the_table() {
        use crate::record::KinesisMeta;
        use std::sync::Arc;
        let original = Record {
            data: Bytes::from_static(b"{\"ti\":300}"),
            arrival_ms: 1627921286181,
            seq: 3,
            sub: 0,
            kinesis: Some(Arc::new(KinesisMeta {
                shard_id: "shardId-000000000000".into(),
                partition_key: "k".into(),
                sequence_number: "49590338271490256608559692538361571095921575989136588898".into(),
                subsequence_number: 2,
                approximate_arrival_ms: 1627921286181,
                tenure: "".into(),
            })),
        };
        let table = crate::encode::conversion::CatalogTable {
            database: Some("db".into()),
            table: Some("t".into()),
            ..Default::default()
        };
        let out = format_conversion_failed(&original, "column ti: out of range", &table);
        assert_eq!(out.output_type, "format-conversion-failed");
        let v: serde_json::Value = serde_json::from_slice(&out.line.data).expect("json");
        assert_eq!(v["lastErrorCode"], MALFORMED_DATA);
        assert_eq!(v["lastErrorMessage"], "column ti: out of range");
        assert_eq!(
            v["sequenceNumber"],
            "49590338271490256608559692538361571095921575989136588898"
        );
        assert_eq!(v["subSequenceNumber"], 2);
        assert_eq!(v["rawData"], "eyJ0aSI6MzAwfQ==");
        assert_eq!(v["dataCatalogTable"]["databaseName"], "db");
        assert_eq!(v["dataCatalogTable"]["catalogId"], serde_json::Value::Null);
        assert!(
            v.get("errorCode").is_none(),
            "conversion errors use lastErrorCode"
        );
    }
}
