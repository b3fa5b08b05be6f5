//! The Lambda contract of Firehose (docs/aws-behaviour.md section 6): the request event firehosed builds
//! and the checks on the response, with AWS's error codes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::record::Record;

/// The Lambda payload limit: a request is cut before it would pass this.
pub(crate) const MAX_REQUEST_BYTES: usize = 6_000_000;
/// Longest response accepted (Lambda's own limit is 6 MB).
pub(crate) const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// Why an invocation failed, as Firehose names it in error records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InvokeError {
    Function(String),
    TimedOut(String),
    Json(String),
    MissingRecordId(String),
    DuplicatedRecordId(String),
}

impl InvokeError {
    pub(crate) fn code(&self) -> &'static str {
        match self {
            InvokeError::Function(_) => "Lambda.FunctionError",
            InvokeError::TimedOut(_) => "Lambda.FunctionTimedOut",
            InvokeError::Json(_) => "Lambda.JsonProcessingException",
            InvokeError::MissingRecordId(_) => "Lambda.MissingRecordId",
            InvokeError::DuplicatedRecordId(_) => "Lambda.DuplicatedRecordId",
        }
    }

    pub(crate) fn message(&self) -> &str {
        match self {
            InvokeError::Function(m)
            | InvokeError::TimedOut(m)
            | InvokeError::Json(m)
            | InvokeError::MissingRecordId(m)
            | InvokeError::DuplicatedRecordId(m) => m,
        }
    }
}

/// What stays the same across the invocations of one stream.
#[derive(Debug, Clone)]
pub(crate) struct Invocation {
    pub(crate) delivery_stream_arn: String,
    pub(crate) region: String,
    /// Set for a Kinesis source.
    pub(crate) source_kinesis_stream_arn: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Request<'a> {
    invocation_id: String,
    delivery_stream_arn: &'a str,
    region: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_kinesis_stream_arn: Option<&'a str>,
    records: Vec<RequestRecord<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestRecord<'a> {
    record_id: String,
    approximate_arrival_timestamp: i64,
    data: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    kinesis_record_metadata: Option<KinesisMetadata<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KinesisMetadata<'a> {
    shard_id: &'a str,
    partition_key: &'a str,
    approximate_arrival_timestamp: i64,
    sequence_number: &'a str,
    subsequence_number: u64,
}

/// The recordId of a record: its position in the stream's log and among the sub-records of
/// its log record (always three digits), so unique and opaque.
pub(crate) fn record_id(r: &Record) -> String {
    format!("{}{:03}", r.seq, r.sub)
}

/// Bytes one record adds to a request: base64 data plus the JSON around it.
pub(crate) fn request_cost(r: &Record) -> usize {
    let meta = r.kinesis.as_ref().map_or(0, |k| {
        200 + k.partition_key.len() + k.sequence_number.as_str().len() + k.shard_id.len()
    });
    r.data.len().div_ceil(3) * 4 + 100 + meta
}

/// Fixed bytes of a request around its records.
pub(crate) const REQUEST_OVERHEAD: usize = 1024;

/// The request event for `records` (one line of JSON, no newline).
pub(crate) fn request(inv: &Invocation, invocation_id: &str, records: &[Record]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let req = Request {
        invocation_id: invocation_id.to_string(),
        delivery_stream_arn: &inv.delivery_stream_arn,
        region: &inv.region,
        source_kinesis_stream_arn: inv.source_kinesis_stream_arn.as_deref(),
        records: records
            .iter()
            .map(|r| RequestRecord {
                record_id: record_id(r),
                approximate_arrival_timestamp: r.arrival_ms,
                data: b64.encode(&r.data),
                kinesis_record_metadata: r.kinesis.as_ref().map(|k| KinesisMetadata {
                    shard_id: &k.shard_id,
                    partition_key: &k.partition_key,
                    approximate_arrival_timestamp: k.approximate_arrival_ms,
                    sequence_number: k.sequence_number.as_str(),
                    subsequence_number: k.subsequence_number,
                }),
            })
            .collect(),
    };
    serde_json::to_vec(&req).unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    records: Option<Vec<ResponseRecord>>,
    error_message: Option<serde_json::Value>,
    error_type: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResponseRecord {
    record_id: Option<String>,
    result: Option<String>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    metadata: Option<Metadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    #[serde(default)]
    partition_keys: Option<BTreeMap<String, serde_json::Value>>,
    /// An Iceberg destination's routing (`destinationDatabaseName`, `destinationTableName`,
    /// `operation`): kept among the record's keys under those names (docs/iceberg.md).
    #[serde(default)]
    otf_metadata: Option<BTreeMap<String, serde_json::Value>>,
}

impl Metadata {
    /// The partition keys and the routing keys together, as text.
    fn keys(self) -> BTreeMap<String, String> {
        let mut keys: BTreeMap<String, String> = self
            .partition_keys
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, text(&v)))
            .collect();
        for (k, v) in self.otf_metadata.unwrap_or_default() {
            if OTF_KEYS.contains(&k.as_str()) && !v.is_null() {
                keys.insert(k, text(&v));
            }
        }
        keys
    }
}

/// The members of `metadata.otfMetadata` an Iceberg destination routes by.
pub(crate) const OTF_KEYS: [&str; 3] = [
    "destinationDatabaseName",
    "destinationTableName",
    "operation",
];

/// The transform's verdict on one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Ok(Bytes, Option<Arc<BTreeMap<String, String>>>),
    Dropped,
    ProcessingFailed,
}

/// Checks a response against its request; the verdicts come in request order.
pub(crate) fn parse_response(records: &[Record], body: &[u8]) -> Result<Vec<Verdict>, InvokeError> {
    let response: Response = serde_json::from_slice(body).map_err(|e| {
        InvokeError::Json(format!(
            "the response is not the transform's JSON: {e}: {}",
            excerpt(body)
        ))
    })?;
    let Some(items) = response.records else {
        if let Some(msg) = response.error_message {
            let kind = response.error_type.map(|t| text(&t)).unwrap_or_default();
            let msg = text(&msg);
            return Err(InvokeError::Function(if kind.is_empty() {
                msg
            } else {
                format!("{kind}: {msg}")
            }));
        }
        return Err(InvokeError::Json(
            "the response has no records array".into(),
        ));
    };
    let mut index: HashMap<String, usize> = HashMap::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        index.insert(record_id(r), i);
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut verdicts: Vec<Option<Verdict>> = vec![None; records.len()];
    for item in items {
        let Some(id) = item.record_id else {
            return Err(InvokeError::MissingRecordId(
                "a record of the response has no recordId".into(),
            ));
        };
        let Some(&i) = index.get(&id) else {
            return Err(InvokeError::MissingRecordId(format!(
                "recordId {id} of the response is not in the request"
            )));
        };
        if verdicts[i].is_some() {
            return Err(InvokeError::DuplicatedRecordId(format!(
                "recordId {id} appears more than once in the response"
            )));
        }
        let verdict = match item.result.as_deref() {
            Some("Ok") => {
                let Some(d) = item.data.as_deref() else {
                    return Err(InvokeError::Json(format!(
                        "recordId {id}: an Ok record needs data"
                    )));
                };
                let data = b64.decode(d).map_err(|e| {
                    InvokeError::Json(format!("recordId {id}: data is not base64: {e}"))
                })?;
                let keys = item
                    .metadata
                    .map(Metadata::keys)
                    .filter(|k| !k.is_empty())
                    .map(Arc::new);
                Verdict::Ok(Bytes::from(data), keys)
            }
            Some("Dropped") => Verdict::Dropped,
            Some("ProcessingFailed") => Verdict::ProcessingFailed,
            other => {
                return Err(InvokeError::Json(format!(
                    "recordId {id}: result must be Ok, Dropped or ProcessingFailed (got {other:?})"
                )));
            }
        };
        verdicts[i] = Some(verdict);
    }
    if let Some(i) = verdicts.iter().position(Option::is_none) {
        let missing = verdicts.iter().filter(|v| v.is_none()).count();
        return Err(InvokeError::MissingRecordId(format!(
            "the response leaves out {missing} recordId(s), the first {}",
            record_id(&records[i])
        )));
    }
    Ok(verdicts.into_iter().flatten().collect())
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The start of a body, for an error message.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
    if body.len() > 120 {
        format!("{s}...")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, data: &'static [u8]) -> Record {
        Record {
            data: Bytes::from_static(data),
            arrival_ms: 1000 + seq as i64,
            seq,
            sub: 0,
            kinesis: None,
        }
    }

    fn inv() -> Invocation {
        Invocation {
            delivery_stream_arn: "arn:aws:firehose:us-east-1:000000000000:deliverystream/s".into(),
            region: "us-east-1".into(),
            source_kinesis_stream_arn: None,
        }
    }

    #[test]
    fn request_has_the_lambda_event_fields() {
        let body = request(&inv(), "id-1", &[rec(5, b"hi")]);
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["invocationId"], "id-1");
        assert_eq!(v["region"], "us-east-1");
        assert!(v.get("sourceKinesisStreamArn").is_none());
        assert_eq!(v["records"][0]["recordId"], "5000");
        assert_eq!(v["records"][0]["approximateArrivalTimestamp"], 1005);
        assert_eq!(v["records"][0]["data"], "aGk=");
        assert!(request_cost(&rec(0, b"hi")) + REQUEST_OVERHEAD > body.len());
    }

    #[test]
    fn verdicts_in_request_order() {
        let records = [rec(1, b"a"), rec(2, b"b"), rec(3, b"c")];
        let body = br#"{"records":[
            {"recordId":"3000","result":"ProcessingFailed","data":"Yw=="},
            {"recordId":"1000","result":"Ok","data":"QQ==","metadata":{"partitionKeys":{"k":"v","n":7}}},
            {"recordId":"2000","result":"Dropped","data":""}]}"#;
        let v = parse_response(&records, body).expect("valid");
        let keys: BTreeMap<String, String> = [
            ("k".to_string(), "v".to_string()),
            ("n".to_string(), "7".to_string()),
        ]
        .into();
        assert_eq!(
            v[0],
            Verdict::Ok(Bytes::from_static(b"A"), Some(Arc::new(keys)))
        );
        assert_eq!(v[1], Verdict::Dropped);
        assert_eq!(v[2], Verdict::ProcessingFailed);
    }

    #[test]
    fn contract_breaches_have_aws_codes() {
        let records = [rec(1, b"a"), rec(2, b"b")];
        let code = |body: &[u8]| {
            parse_response(&records, body)
                .map(|_| ())
                .unwrap_err()
                .code()
        };
        assert_eq!(code(b"not json"), "Lambda.JsonProcessingException");
        assert_eq!(code(br#"{"foo":1}"#), "Lambda.JsonProcessingException");
        assert_eq!(
            code(br#"{"records":[{"recordId":"1000","result":"Ok","data":"QQ=="}]}"#),
            "Lambda.MissingRecordId"
        );
        assert_eq!(
            code(br#"{"records":[{"recordId":"1000","result":"Ok","data":"QQ=="},{"recordId":"1000","result":"Ok","data":"QQ=="},{"recordId":"2000","result":"Ok","data":""}]}"#),
            "Lambda.DuplicatedRecordId"
        );
        assert_eq!(
            code(br#"{"records":[{"recordId":"1000","result":"Fine","data":""},{"recordId":"2000","result":"Ok","data":""}]}"#),
            "Lambda.JsonProcessingException"
        );
        assert_eq!(
            code(br#"{"records":[{"recordId":"1000","result":"Ok","data":"***"},{"recordId":"2000","result":"Ok","data":""}]}"#),
            "Lambda.JsonProcessingException"
        );
        assert_eq!(
            code(br#"{"records":[{"recordId":"1000","result":"Ok"},{"recordId":"2000","result":"Ok","data":""}]}"#),
            "Lambda.JsonProcessingException"
        );
        assert_eq!(
            code(br#"{"errorMessage":"boom","errorType":"ValueError"}"#),
            "Lambda.FunctionError"
        );
    }
}
