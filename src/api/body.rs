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
    let mut pieces = Pieces::default();
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
            if pieces.len + data.len() > limit {
                return Err(BodyError::TooLarge(limit));
            }
            pieces.push(data);
        }
    }
    Ok(pieces.join())
}

/// Pieces from this size are kept as hyper hands them over; smaller ones are copied together.
/// A body sent as one-byte chunks would otherwise cost a handle (32 bytes) and a pin on one of
/// hyper's read buffers per byte: tens of times its size, before its signature is checked.
const KEPT_PIECE: usize = 16 * 1024;

/// A body as it arrives: memory follows what arrives, not what the client announced (a
/// thousand requests announcing 8 MiB and sending nothing take none), and no buffer is copied
/// as it grows; joined once at the end. Each kept piece holds at least `KEPT_PIECE` bytes, so
/// the pieces cost about the body's size, as one growing buffer did.
#[derive(Default)]
struct Pieces {
    kept: Vec<Bytes>,
    /// Small pieces since the last kept one, copied together.
    small: BytesMut,
    len: usize,
}

impl Pieces {
    fn push(&mut self, data: Bytes) {
        self.len += data.len();
        if data.len() < KEPT_PIECE {
            self.small.extend_from_slice(&data);
            return;
        }
        if !self.small.is_empty() {
            self.kept.push(std::mem::take(&mut self.small).freeze());
        }
        self.kept.push(data);
    }

    /// The whole body: the one piece as it is, else the pieces copied into one buffer.
    fn join(mut self) -> Bytes {
        if !self.small.is_empty() {
            self.kept.push(self.small.freeze());
        }
        if self.kept.len() == 1 {
            return self.kept.swap_remove(0);
        }
        let mut whole = BytesMut::with_capacity(self.len);
        for piece in self.kept {
            whole.extend_from_slice(&piece);
        }
        whole.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body in one-byte pieces is copied together (one handle, its own size), large pieces
    /// are kept as they came, and the joined body is every byte in order.
    #[test]
    fn tiny_pieces_are_copied_together_and_large_ones_kept() {
        let mut pieces = Pieces::default();
        for i in 0..100_000u32 {
            pieces.push(Bytes::from(vec![(i % 251) as u8]));
        }
        assert!(pieces.kept.is_empty(), "no handle per byte");
        assert!(
            pieces.small.capacity() < 2 * 100_000,
            "{}",
            pieces.small.capacity()
        );
        let large = Bytes::from(vec![7u8; KEPT_PIECE]);
        pieces.push(large.clone());
        pieces.push(Bytes::from_static(b"end"));
        assert_eq!(pieces.kept.len(), 2);
        assert_eq!(pieces.kept[1].as_ptr(), large.as_ptr(), "kept, not copied");
        let whole = pieces.join();
        assert_eq!(whole.len(), 100_000 + KEPT_PIECE + 3);
        assert!(
            whole[..100_000]
                .iter()
                .enumerate()
                .all(|(i, b)| *b == (i % 251) as u8)
        );
        assert!(whole[100_000..100_000 + KEPT_PIECE].iter().all(|b| *b == 7));
        assert_eq!(&whole[100_000 + KEPT_PIECE..], b"end");
        let mut one = Pieces::default();
        one.push(large.clone());
        assert_eq!(
            one.join().as_ptr(),
            large.as_ptr(),
            "a single piece is not copied"
        );
    }
}
