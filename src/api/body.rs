//! Request bodies, read with a cap: a body over the cap is refused before it is buffered whole.

use axum::body::Body;
use axum::http::HeaderMap;

use super::error::AwsError;

/// Largest Firehose API request: 4 MiB of records in base64 (5.6 MB) plus JSON framing, with
/// room so that a batch just over 4 MiB gets the precise 4 MiB error.
pub const API_BODY_LIMIT: usize = 8 * 1024 * 1024;
/// Largest plain ingest request.
pub const PLAIN_BODY_LIMIT: usize = 16 * 1024 * 1024;

pub async fn read(headers: &HeaderMap, body: Body, limit: usize) -> Result<bytes::Bytes, AwsError> {
    let too_large = || {
        AwsError::invalid_argument(format!(
            "The request body exceeds the limit of {limit} bytes"
        ))
    };
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|_| too_large())
}
