//! The Firehose API on `POST /` (awsJson 1.1): dispatch on X-Amz-Target and the data-plane
//! operations PutRecord and PutRecordBatch, with AWS's limits.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{self, RequestParts};
use super::error::AwsError;
use super::{AppState, body, control, describe, model, put_batch};
use crate::record::now_ms;
use crate::spool::{Frames, segment};
use crate::stream::{DeliveryStream, PutError};

pub(super) const TARGET_PREFIX: &str = "Firehose_20150804.";
/// The operations firehosed answers (each is the IAM action `firehose:<operation>`).
const OPERATIONS: [&str; 12] = [
    "PutRecord",
    "PutRecordBatch",
    "DescribeDeliveryStream",
    "ListDeliveryStreams",
    "ListTagsForDeliveryStream",
    "CreateDeliveryStream",
    "DeleteDeliveryStream",
    "UpdateDestination",
    "TagDeliveryStream",
    "UntagDeliveryStream",
    "StartDeliveryStreamEncryption",
    "StopDeliveryStreamEncryption",
];
/// Records per PutRecordBatch.
pub(super) const MAX_BATCH_RECORDS: usize = 500;
/// Bytes of one record, before base64.
pub(super) const MAX_RECORD_BYTES: usize = 1_024_000;
/// Bytes of all records of one PutRecordBatch, before base64.
pub(super) const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

pub(super) async fn handle(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let parts = RequestParts {
        method: &method,
        uri: &uri,
        headers: &headers,
    };
    let result = dispatch(&state, &parts, body).await;
    let mut response = match result {
        Ok(text) => (
            StatusCode::OK,
            [("content-type", "application/x-amz-json-1.1")],
            text,
        )
            .into_response(),
        Err(e) => e.into_response(),
    };
    if let Ok(v) = request_id.parse() {
        response.headers_mut().insert("x-amzn-requestid", v);
    }
    response
}

/// The operation's answer, as the body's text.
async fn dispatch(
    state: &AppState,
    parts: &RequestParts<'_>,
    body: Body,
) -> Result<String, AwsError> {
    let headers = parts.headers;
    let bytes = body::read(headers, body, state.body_limits(body::API_BODY_LIMIT)).await?;
    // Who is calling, before anything of the body is read.
    let caller = access::authenticate(state, parts, &bytes)?;
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(op) = target.strip_prefix(TARGET_PREFIX) else {
        return Err(AwsError::unknown_operation(format!(
            "X-Amz-Target {target:?} is not a Firehose_20150804 operation"
        )));
    };
    // A valid PutRecordBatch, the call that carries the data, is read without a JSON tree;
    // anything else about it (an error to report, a member firehosed does not read) takes the
    // general way below, which says what AWS says.
    if op == "PutRecordBatch"
        && let Some(batch) = put_batch::read(&bytes)
    {
        access::authorize(state, &caller, "firehose:PutRecordBatch", Some(batch.name))?;
        let stream = stream(state, Some(batch.name.to_string()))?;
        return put_decoded(state, &stream, batch.data).await;
    }
    let input: Value = if bytes.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&bytes).map_err(|e| {
            AwsError::serialization(format!("The request body is not valid JSON: {e}"))
        })?
    };
    if OPERATIONS.contains(&op) {
        let stream = input.get("DeliveryStreamName").and_then(Value::as_str);
        access::authorize(state, &caller, &format!("firehose:{op}"), stream)?;
        // AWS's order: the model's constraints first, then whether the stream exists, then
        // the operation's own rules.
        model::check_input(op, &input)?;
    }
    let answer = match op {
        "PutRecord" => put_record(state, input).await,
        "PutRecordBatch" => return put_record_batch(state, input).await,
        "DescribeDeliveryStream" => describe::describe(state, input),
        "ListDeliveryStreams" => describe::list(state, input),
        "ListTagsForDeliveryStream" => control::list_tags(state, input),
        "CreateDeliveryStream" => control::create(state, input).await,
        "DeleteDeliveryStream" => control::delete(state, input).await,
        "UpdateDestination" => control::update_destination(state, input).await,
        "TagDeliveryStream" => control::tag(state, input),
        "UntagDeliveryStream" => control::untag(state, input),
        "StartDeliveryStreamEncryption" => control::set_encryption(state, input, true),
        "StopDeliveryStreamEncryption" => control::set_encryption(state, input, false),
        _ => Err(AwsError::unknown_operation(format!(
            "Operation {op} is not supported by Firehose"
        ))),
    };
    answer.map(|v| v.to_string())
}

/// Parses the input shape; a wrong JSON type is a SerializationException, as AWS.
pub(super) fn parse<T: for<'de> Deserialize<'de>>(input: Value) -> Result<T, AwsError> {
    serde_json::from_value(input)
        .map_err(|e| AwsError::serialization(format!("Cannot read the request: {e}")))
}

/// An operation's answer, from its output shape.
pub(super) fn answer<T: serde::Serialize>(out: &T) -> Result<Value, AwsError> {
    serde_json::to_value(out)
        .map_err(|e| AwsError::unavailable(format!("cannot write the answer: {e}")))
}

/// A required, non-null member.
pub(super) fn required<T>(value: Option<T>, name: &str) -> Result<T, AwsError> {
    value.ok_or_else(|| {
        AwsError::validation(format!(
            "1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// A stream name from a request, checked against AWS's constraints.
pub(super) fn check_name(name: Option<String>) -> Result<String, AwsError> {
    let name = required(name, "deliveryStreamName")?;
    if !crate::config::valid_stream_name(&name) {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{name}' at 'deliveryStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length between 1 and 64"
        )));
    }
    Ok(name)
}

/// The answer to a put into a stream that is CREATING (created through the API, or started with
/// the daemon): 503, which SDKs and agents retry, rather than a not-found they give up on.
pub(super) fn starting(name: &str) -> AwsError {
    AwsError::unavailable(format!(
        "Firehose {name} is being created or started; try again shortly"
    ))
}

/// Looks a running stream up by name, checking the name's constraints first.
pub(super) fn stream(
    state: &AppState,
    name: Option<String>,
) -> Result<Arc<DeliveryStream>, AwsError> {
    let name = check_name(name)?;
    let streams = &state.streams;
    streams.get(&name).ok_or_else(|| {
        if streams.is_creating(&name) {
            starting(&name)
        } else {
            streams.not_found(&name).into()
        }
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecordIn {
    data: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordIn {
    delivery_stream_name: Option<String>,
    record: Option<RecordIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordBatchIn {
    delivery_stream_name: Option<String>,
    records: Option<Vec<RecordIn>>,
}

fn decode_record(record: RecordIn, member: &str) -> Result<Bytes, AwsError> {
    let data = required(record.data, &format!("{member}.data"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.as_bytes())
        .map_err(|e| AwsError::serialization(format!("{member}.data is not valid base64: {e}")))?;
    // The model's check (model.rs) has counted the bytes already; this holds for input that
    // reaches here another way.
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(too_large(member, bytes.len()));
    }
    Ok(Bytes::from(bytes))
}

/// AWS's error for a record over 1000 KiB (it shows a blob as Java's ByteBuffer).
fn too_large(member: &str, len: usize) -> AwsError {
    AwsError::validation(format!(
        "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim={len} cap={len}]' at '{member}.data' failed to satisfy constraint: Member must have length less than or equal to {MAX_RECORD_BYTES}"
    ))
}

/// Every record of a batch decoded straight into its spool frame, in one buffer: one
/// allocation per request instead of one per record (the profile of the acknowledgement path
/// showed malloc and free next to base64 itself: BENCHMARKS.md), and no copy between the
/// decoded record and what the spool writes. The errors are `decode_record`'s.
pub(super) fn decode_batch(records: &[Option<&[u8]>]) -> Result<Frames, AwsError> {
    let estimate: usize = records
        .iter()
        .map(|r| r.map_or(0, |d| base64::decoded_len_estimate(d.len())) + segment::HEADER)
        .sum();
    // Not zeroed: each record is decoded into the bytes after the last frame's (zeroing 4 MiB
    // per request was a tenth of the acknowledgement path's instructions).
    let mut frames = Frames::new(now_ms(), estimate);
    for (i, record) in records.iter().enumerate() {
        // The member's name only for an error: formatting it per record costs an allocation.
        let member = || format!("records.{}.member", i + 1);
        let data = match record {
            Some(d) => d,
            None => return required(None, &format!("{}.data", member())),
        };
        let decoded = frames.push_with(|buf| decode_simd(data, buf).map(drop).ok_or(()));
        let Ok(len) = decoded else {
            return Err(not_base64(data, &member()));
        };
        if len > MAX_RECORD_BYTES {
            return Err(too_large(&member(), len));
        }
    }
    Ok(frames)
}

/// Why `data` is not base64, in `base64`'s words (it refuses the same text as the SIMD
/// decoder: both want STANDARD padding and zero trailing bits).
fn not_base64(data: &[u8], member: &str) -> AwsError {
    match base64::engine::general_purpose::STANDARD.decode(data) {
        Err(e) => AwsError::serialization(format!("{member}.data is not valid base64: {e}")),
        Ok(_) => AwsError::serialization(format!("{member}.data is not valid base64")),
    }
}

/// Decodes standard, padded base64 with SIMD after the bytes `out` holds, within its
/// capacity; the decoded length, or None when it is not that (or would not fit).
fn decode_simd(src: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let len = base64_simd::STANDARD.decoded_length(src).ok()?;
    let spare = out.spare_capacity_mut().get_mut(..len)?;
    let written = base64_simd::STANDARD
        .decode(src, base64_simd::Out::from_uninit_slice(spare))
        .ok()?
        .len();
    // SAFETY: the decoder initialized the first `written` bytes after the vector's length,
    // all within its capacity.
    unsafe { out.set_len(out.len() + written) };
    Some(written)
}

fn put_failed(e: PutError) -> AwsError {
    match e {
        PutError::NotDirectPut => AwsError::invalid_argument(e.to_string()),
        _ => AwsError::unavailable(e.to_string()),
    }
}

/// The per-record error of a batch that could not be made durable.
fn batch_error(e: &PutError) -> (&'static str, String) {
    match e {
        PutError::Throttled | PutError::Closed(_) => {
            ("ServiceUnavailableException", "Slow down.".into())
        }
        PutError::Io(m) => ("InternalFailure", m.clone()),
        PutError::NotDirectPut => ("InvalidArgumentException", e.to_string()),
    }
}

async fn put_record(state: &AppState, input: Value) -> Result<Value, AwsError> {
    let input: PutRecordIn = parse(input)?;
    let stream = stream(state, input.delivery_stream_name)?;
    let record = required(input.record, "record")?;
    let data = decode_record(record, "record")?;
    let ids = stream.put(vec![data]).await.map_err(put_failed)?;
    let encrypted = state.streams.records().encrypted(stream.name());
    Ok(json!({"RecordId": ids.iter().next(), "Encrypted": encrypted}))
}

async fn put_record_batch(state: &AppState, input: Value) -> Result<String, AwsError> {
    let input: PutRecordBatchIn = parse(input)?;
    let stream = stream(state, input.delivery_stream_name)?;
    let records = required(input.records, "records")?;
    if records.is_empty() || records.len() > MAX_BATCH_RECORDS {
        // Checked by the model first (model.rs): 1-500 members.
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length between 1 and {MAX_BATCH_RECORDS} (got {})",
            records.len()
        )));
    }
    let texts: Vec<Option<&[u8]>> = records
        .iter()
        .map(|r| r.data.as_deref().map(str::as_bytes))
        .collect();
    let data = decode_batch(&texts)?;
    let total = data.data_bytes();
    if total > MAX_BATCH_BYTES {
        // AWS's words (the model has no constraint for it).
        tracing::debug!(total, "a PutRecordBatch over 4 MiB");
        return Err(AwsError::invalid_argument(
            "Records size exceeds 4 MB limit",
        ));
    }
    put_decoded(state, &stream, data).await
}

/// Puts a batch's decoded records; the answer's text (every record's id, or, as AWS when they
/// could not be made durable, HTTP 200 with every record failed).
async fn put_decoded(
    state: &AppState,
    stream: &DeliveryStream,
    data: Frames,
) -> Result<String, AwsError> {
    let count = data.len();
    let encrypted = state.streams.records().encrypted(stream.name());
    match stream.put_frames(data).await {
        Err(PutError::NotDirectPut) => Err(put_failed(PutError::NotDirectPut)),
        Ok(ids) => {
            // Keys in serde_json's order (sorted), as the other answers.
            let mut text = String::with_capacity(64 + ids.len() * 48);
            text.push_str(if encrypted {
                r#"{"Encrypted":true,"FailedPutCount":0,"RequestResponses":["#
            } else {
                r#"{"Encrypted":false,"FailedPutCount":0,"RequestResponses":["#
            });
            ids.write_json_entries(&mut text);
            text.push_str("]}");
            Ok(text)
        }
        Err(e) => {
            // As AWS: HTTP 200, every record failed with its own error, FailedPutCount > 0.
            let (code, message) = batch_error(&e);
            let entry = json!({"ErrorCode": code, "ErrorMessage": message});
            Ok(json!({
                "FailedPutCount": count,
                "Encrypted": encrypted,
                "RequestResponses": vec![entry; count],
            })
            .to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch<'a>(data: &[&'a str]) -> Vec<Option<&'a [u8]>> {
        data.iter().map(|d| Some(d.as_bytes())).collect()
    }

    /// The SIMD decoder accepts exactly what `base64` accepts, and a batch's records come out
    /// as they went in, each in its own spool frame.
    #[test]
    fn a_batch_decodes_as_base64_does_record_by_record() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let texts: Vec<String> = (0..300)
            .map(|i| b64.encode("x".repeat(i) + &i.to_string()))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let out = decode_batch(&batch(&refs)).expect("valid");
        assert_eq!(out.len(), texts.len());
        for (t, o) in texts.iter().zip(out.records()) {
            assert_eq!(b64.decode(t).expect("valid"), o.to_vec());
        }
        for bad in [
            "YR==", "YQ", "YQ=", "Y===", "YQ==YQ==", "!!!!", "YWJj\n", " YWJj",
        ] {
            let ours = decode_batch(&batch(&["YWJj", bad]));
            let theirs = b64.decode(bad);
            assert_eq!(ours.is_ok(), theirs.is_ok(), "{bad:?}");
            if let Err(e) = ours {
                let shown = format!("{e:?}");
                assert!(
                    shown.contains("records.2.member.data is not valid base64"),
                    "{shown}"
                );
            }
        }
        assert!(decode_batch(&batch(&[""])).expect("empty").len() == 1);
    }
}
