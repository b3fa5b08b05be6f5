//! The unit that flows through a delivery stream.

use bytes::Bytes;

/// One record as a producer sent it, with the time firehosed accepted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub data: Bytes,
    /// Approximate arrival time, epoch milliseconds (the `approximateArrivalTimestamp` of AWS).
    pub arrival_ms: i64,
    /// Position in the stream's spool: delivered objects move the spool cursor past it.
    pub seq: u64,
}

/// Now, in epoch milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
