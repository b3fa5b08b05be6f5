//! Error records (FIREHOSE.md section 3): one JSON line per failed record, with the original
//! record in `rawData`.

use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;

use super::ErrorOutput;
use crate::record::Record;

/// A transform failure of one record.
#[derive(Debug, Clone)]
pub struct LambdaFailure {
    pub code: &'static str,
    pub message: String,
    pub attempts: u32,
    pub ending_ms: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LambdaLine<'a> {
    attempts_made: u32,
    arrival_timestamp: i64,
    error_code: &'a str,
    error_message: &'a str,
    attempt_ending_timestamp: i64,
    raw_data: String,
    lambda_arn: &'a str,
}

/// The `processing-failed` error record of `original`.
pub fn processing_failed(
    original: &Record,
    failure: &LambdaFailure,
    lambda_arn: &str,
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
        output_type: "processing-failed",
        line: as_line(original, &line),
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
        kinesis: None,
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
}
