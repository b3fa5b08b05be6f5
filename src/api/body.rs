//! Request bodies, read with a cap: a body over the cap is refused before it is buffered whole.

use axum::body::Body;
use axum::http::HeaderMap;
use bytes::BytesMut;
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
}

impl From<BodyError> for AwsError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge(_) => AwsError::invalid_argument(e.to_string()),
            BodyError::ShuttingDown => AwsError::unavailable(e.to_string()),
            BodyError::Broken(_) => AwsError::serialization(e.to_string()),
        }
    }
}

/// Largest Firehose API request: 4 MiB of records in base64 (5.6 MB) plus JSON framing, with
/// room so that a batch just over 4 MiB gets the precise 4 MiB error.
pub(crate) const API_BODY_LIMIT: usize = 8 * 1024 * 1024;
/// Largest plain ingest request.
pub(crate) const PLAIN_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Reads a whole body of at most `limit` bytes. Once `stopping` turns true (the drain began), a
/// body still arriving is cut off: a client that stalls mid-request must not hold the drain.
pub(crate) async fn read(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    stopping: &watch::Receiver<bool>,
) -> Result<bytes::Bytes, BodyError> {
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    // One buffer of the declared size, filled frame by frame: no second copy of the body.
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0) as usize);
    let mut body = body;
    let mut stopping = stopping.clone();
    loop {
        let frame = tokio::select! {
            // A frame that is there is taken before the stop is looked at.
            biased;
            frame = body.frame() => frame,
            _ = stopping.wait_for(|s| *s) => return Err(BodyError::ShuttingDown),
        };
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(BodyError::TooLarge(limit));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}
