//! Request bodies, read with a cap: a body over the cap is refused before it is buffered whole.

use axum::body::Body;
use axum::http::HeaderMap;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

use tokio::sync::watch;

use super::error::AwsError;

/// Why a body was not read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("The request body exceeds the limit of {0} bytes")]
    TooLarge(usize),
    #[error("firehosed is shutting down and the request had not arrived whole; send it again")]
    ShuttingDown,
    #[error("cannot read the request body: {0}")]
    Broken(String),
    #[error("The request body did not arrive within {0} s")]
    TooSlow(u64),
}

impl From<BodyError> for AwsError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge(_) => AwsError::invalid_argument(e.to_string()),
            BodyError::ShuttingDown => AwsError::unavailable(e.to_string()),
            BodyError::Broken(_) => AwsError::serialization(e.to_string()),
            BodyError::TooSlow(_) => AwsError::request_timeout(e.to_string()),
        }
    }
}

/// Largest Firehose API request: 4 MiB of records in base64 (5.6 MB) plus JSON framing, with
/// room so that a batch just over 4 MiB gets the precise 4 MiB error.
pub(crate) const API_BODY_LIMIT: usize = 8 * 1024 * 1024;
/// Largest plain ingest request.
pub(crate) const PLAIN_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Where a body is read from, and how long it may take.
pub(crate) struct Limits<'a> {
    /// The most bytes.
    pub(crate) bytes: usize,
    /// The drain began: a body still arriving is cut off.
    pub(crate) stopping: &'a watch::Receiver<bool>,
    /// The whole body must have arrived within this (a client sending a byte at a time holds
    /// nothing for long).
    pub(crate) timeout: std::time::Duration,
}

/// Reads a whole body within `limits`.
pub(crate) async fn read(
    headers: &HeaderMap,
    body: Body,
    limits: Limits<'_>,
) -> Result<Bytes, BodyError> {
    let limit = limits.bytes;
    let deadline = tokio::time::Instant::now() + limits.timeout;
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    // The body's pieces as hyper hands them over, joined once at the end: memory follows what
    // arrives, not what the client announced (a thousand requests announcing 8 MiB and sending
    // nothing take none), and no buffer is copied as it grows.
    let mut pieces: Vec<Bytes> = Vec::new();
    let mut len = 0;
    let mut body = body;
    let mut stopping = limits.stopping.clone();
    loop {
        let frame = tokio::select! {
            // A frame that is there is taken before the stop is looked at.
            biased;
            frame = body.frame() => frame,
            _ = stopping.wait_for(|s| *s) => return Err(BodyError::ShuttingDown),
            () = tokio::time::sleep_until(deadline) => {
                crate::metrics::SERVER.connections_timed_out.add(1);
                return Err(BodyError::TooSlow(limits.timeout.as_secs()));
            }
        };
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            len += data.len();
            if len > limit {
                return Err(BodyError::TooLarge(limit));
            }
            pieces.push(data);
        }
    }
    if pieces.len() == 1 {
        return Ok(pieces.swap_remove(0));
    }
    let mut whole = BytesMut::with_capacity(len);
    for piece in pieces {
        whole.extend_from_slice(&piece);
    }
    Ok(whole.freeze())
}
