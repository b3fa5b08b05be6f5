//! The plain HTTP endpoints: newline-delimited ingest, flush, health and metrics.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;

use super::access::{self, RequestParts};
use super::error::AwsError;
use super::firehose::MAX_RECORD_BYTES;
use super::{AppState, body};
use crate::metrics::{self, StreamView};
use crate::stream::DeliveryStream;

fn find(state: &AppState, name: &str) -> Result<Arc<DeliveryStream>, AwsError> {
    state.streams.get(name).ok_or_else(|| {
        if state.streams.is_creating(name) {
            super::firehose::starting(name)
        } else {
            AwsError::not_found(format!("Delivery stream {name} not found"))
                .with_status(StatusCode::NOT_FOUND)
        }
    })
}

fn json_response(value: serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// Splits a body into records: one per line, the newline (and a `\r` before it) removed,
/// empty lines skipped.
pub(crate) fn split_lines(body: &Bytes) -> Vec<Bytes> {
    let mut records = Vec::new();
    let mut start = 0;
    for (i, b) in body.iter().enumerate() {
        if *b == b'\n' {
            push_line(body, start, i, &mut records);
            start = i + 1;
        }
    }
    push_line(body, start, body.len(), &mut records);
    records
}

fn push_line(body: &Bytes, start: usize, mut end: usize, out: &mut Vec<Bytes>) {
    if end > start && body[end - 1] == b'\r' {
        end -= 1;
    }
    if end > start {
        out.push(body.slice(start..end));
    }
}

pub(super) async fn ingest(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let bytes = body::read(&headers, body, state.body_limits(body::PLAIN_BODY_LIMIT))
            .await
            .map_err(|e| match e {
                // REST clients expect 413 for a body too large; the rest keeps AWS's status.
                body::BodyError::TooLarge(_) => {
                    AwsError::from(e).with_status(StatusCode::PAYLOAD_TOO_LARGE)
                }
                other => AwsError::from(other),
            })?;
        let parts = RequestParts {
            method: &method,
            uri: &uri,
            headers: &headers,
        };
        let caller = access::authenticate(&state, &parts, &bytes)?;
        // Plain ingest is a PutRecordBatch as far as permissions go.
        access::authorize(&state, &caller, "firehose:PutRecordBatch", Some(&name))?;
        let stream = find(&state, &name)?;
        let records = split_lines(&bytes);
        if let Some((i, r)) = records.iter().enumerate().find(|(_, r)| r.len() > MAX_RECORD_BYTES) {
            return Err(AwsError::invalid_argument(format!(
                "record {} is {} bytes; at most {MAX_RECORD_BYTES} bytes are allowed (nothing was accepted)",
                i + 1,
                r.len()
            )));
        }
        let n = records.len();
        if !matches!(stream.config.source, crate::spec::SourceSpec::DirectPut) {
            return Err(AwsError::invalid_argument(crate::stream::PutError::NotDirectPut.to_string()));
        }
        if n > 0 {
            stream.put(records).await.map_err(|e| match e {
                crate::stream::PutError::NotDirectPut => AwsError::invalid_argument(e.to_string()),
                _ => AwsError::unavailable(e.to_string()),
            })?;
        }
        Ok(n)
    }
    .await;
    match result {
        Ok(n) => json_response(json!({"accepted": n})),
        Err(e) => e.into_response(),
    }
}

/// The permission a flush needs (a firehosed action, not one of AWS's).
pub(crate) const FLUSH_ACTION: &str = "firehose:FlushDeliveryStream";

pub(super) async fn flush(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let bytes = body::read(&headers, body, state.body_limits(body::API_BODY_LIMIT)).await?;
        let parts = RequestParts {
            method: &method,
            uri: &uri,
            headers: &headers,
        };
        let caller = access::authenticate(&state, &parts, &bytes)?;
        access::authorize(&state, &caller, FLUSH_ACTION, Some(&name))?;
        let stream = find(&state, &name)?;
        stream
            .flush()
            .await
            .map_err(|e| AwsError::unavailable(e.to_string()))
    }
    .await;
    match result {
        Ok(keys) => json_response(json!({"keys": keys})),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn healthz() -> Response {
    json_response(json!({"status": "ok"}))
}

/// 200 while serving with every pipeline started; 503 before that and while draining (a load
/// balancer stops sending).
pub(super) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.ready.load(std::sync::atomic::Ordering::Acquire) {
        json_response(json!({"ready": true}))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [("content-type", "application/json")],
            json!({"ready": false}).to_string(),
        )
            .into_response()
    }
}

pub(super) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let streams = state.streams.all();
    let views: Vec<StreamView> = streams
        .iter()
        .map(|s| StreamView {
            name: s.name(),
            stream: &s.metrics,
            destinations: s.destination_metrics.iter().map(|m| m.as_ref()).collect(),
            spool_bytes: s.log.disk_bytes(),
            backlog_records: s.log.backlog(),
            shards: s
                .kinesis_metrics
                .get()
                .map(|k| {
                    k.snapshot()
                        .into_iter()
                        .map(|(id, m)| metrics::ShardView {
                            id,
                            records: m.records.get(),
                            bytes: m.bytes.get(),
                            millis_behind: m.millis_behind(),
                            throttled: m.throttled.get(),
                            subscriptions: m.subscriptions.get(),
                            subscriptions_ended: m.subscriptions_ended.get(),
                            subscribe_errors: m.subscribe_errors.each_ref().map(|c| c.get()),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            leases: s
                .kinesis_metrics
                .get()
                .and_then(|k| k.leases.get())
                .map(|l| l.view()),
        })
        .collect();
    let text = metrics::render(&views, crate::record::now_ms());
    (
        StatusCode::OK,
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let b = Bytes::from_static(b"a\nbb\r\n\nccc");
        let lines = split_lines(&b);
        let r: Vec<&[u8]> = lines.iter().map(|x| &x[..]).collect();
        assert_eq!(r, vec![&b"a"[..], b"bb", b"ccc"]);
        assert!(split_lines(&Bytes::from_static(b"\n\n")).is_empty());
    }
}
