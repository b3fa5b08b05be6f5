//! The unit that flows through a delivery stream.

use std::sync::Arc;

use bytes::Bytes;

/// One record as a producer sent it, with the time firehosed accepted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) data: Bytes,
    /// Approximate arrival time, epoch milliseconds (the `approximateArrivalTimestamp` of AWS).
    pub(crate) arrival_ms: i64,
    /// Position in the stream's log (the spool, or the in-memory log of a Kinesis source):
    /// delivered objects move the destination's cursor past it.
    pub(crate) seq: u64,
    /// Position among the sub-records of one log record (record de-aggregation); 0 otherwise.
    /// Sub-records share their parent's `seq`.
    pub(crate) sub: u32,
    /// Where the record came from, for a Kinesis source.
    pub(crate) kinesis: Option<Arc<KinesisMeta>>,
}

/// A Kinesis record's identity (a user record of a KPL aggregate shares its parent's sequence
/// number and has its own subsequence number).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KinesisMeta {
    pub(crate) shard_id: Arc<str>,
    pub(crate) partition_key: String,
    pub(crate) sequence_number: Arc<str>,
    pub(crate) subsequence_number: u64,
    pub(crate) approximate_arrival_ms: i64,
    /// The lease tenure it was read under (`firehosedTenure`; "" without a lease table): an
    /// exactly-once destination stages each tenure's records apart, and drops those of a
    /// tenure another instance has since fenced off.
    pub(crate) tenure: Arc<str>,
}

/// Now, in epoch milliseconds.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
