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
    pub(crate) sequence_number: SequenceNumber,
    pub(crate) subsequence_number: u64,
    pub(crate) approximate_arrival_ms: i64,
    /// The lease tenure it was read under (`firehosedTenure`; "" without a lease table): an
    /// exactly-once destination stages each tenure's records apart, and drops those of a
    /// tenure another instance has since fenced off.
    pub(crate) tenure: Arc<str>,
}

impl KinesisMeta {
    /// Where the record is in its shard.
    pub(crate) fn position(&self) -> ShardPosition {
        ShardPosition {
            sequence: self.sequence_number.clone(),
            sub: self.subsequence_number,
        }
    }
}

/// A Kinesis sequence number: a decimal string of up to 128 digits, compared as the number it
/// is (length first, leading zeros ignored), never as a string. Serialized as the string.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct SequenceNumber(Arc<str>);

impl SequenceNumber {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    fn digits(&self) -> &str {
        self.0.trim_start_matches('0')
    }
}

impl From<&str> for SequenceNumber {
    fn from(s: &str) -> Self {
        SequenceNumber(s.into())
    }
}

impl From<String> for SequenceNumber {
    fn from(s: String) -> Self {
        SequenceNumber(s.into())
    }
}

impl std::fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let (a, b) = (self.digits(), other.digits());
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SequenceNumber {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for SequenceNumber {}

impl std::hash::Hash for SequenceNumber {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.digits().hash(state);
    }
}

/// A Kinesis record's place in its shard: its sequence number, and its subsequence number among
/// the user records of one KPL aggregate. Ordered as the shard orders them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ShardPosition {
    pub(crate) sequence: SequenceNumber,
    pub(crate) sub: u64,
}

/// Now, in epoch milliseconds.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_compare_as_numbers_not_strings() {
        let n = |s: &str| SequenceNumber::from(s);
        assert!(n("9") < n("10"));
        assert!(
            n("49590338271490256608559692538361571095921575989136588898")
                < n("49590338271490256608559692540925702759324208523137515618")
        );
        assert_eq!(n("007"), n("7"));
        assert!(n("100") > n("99"));
        let at = |s: &str, sub| ShardPosition {
            sequence: n(s),
            sub,
        };
        assert!(at("9", 5) < at("10", 0));
        assert!(at("10", 1) > at("10", 0));
        assert_eq!(serde_json::to_string(&n("42")).expect("json"), "\"42\"");
    }
}
