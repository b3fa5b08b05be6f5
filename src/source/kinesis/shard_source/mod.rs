//! Where a stream's shards are read from: Kinesis through the SDK (`kinesis.rs`: ListShards,
//! GetShardIterator, GetRecords), or memory (the unit tier: `memory.rs`), which keeps the same
//! contract (`contract.rs`, run over both): shards listed with their parents, records read in
//! order from where an iterator says, a closed shard's reading ending (no next iterator) after
//! its last record.

pub(crate) mod contract;
mod kinesis;
#[cfg(test)]
pub(crate) mod memory;

use bytes::Bytes;

pub(crate) use kinesis::KinesisShards;

/// A shard as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShardInfo {
    pub(crate) id: String,
    pub(crate) parents: Vec<String>,
}

/// Where an iterator starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IteratorAt {
    TrimHorizon,
    Latest,
    /// Epoch milliseconds.
    AtTimestamp(i64),
    AtSequence(String),
    AfterSequence(String),
}

/// One record as the shard holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShardRecord {
    pub(crate) sequence: String,
    pub(crate) partition_key: String,
    pub(crate) data: Bytes,
    pub(crate) arrival_ms: Option<i64>,
}

/// What one read returned.
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    pub(crate) records: Vec<ShardRecord>,
    /// None: the shard is closed and read to its end.
    pub(crate) next: Option<String>,
    pub(crate) behind_ms: Option<i64>,
}

/// Why a call failed, as the reader treats it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    #[error("{0}")]
    Throttled(String),
    #[error("expired iterator")]
    Expired,
    #[error("{0}")]
    Other(String),
    #[error("GetShardIterator returned no iterator")]
    NoIterator,
}

/// The shards of one stream.
pub(crate) enum ShardSource {
    Kinesis(KinesisShards),
    #[cfg(test)]
    Memory(std::sync::Arc<memory::MemoryStream>),
}

impl ShardSource {
    /// Every shard the stream lists, open or closed.
    pub(crate) async fn list_shards(&self) -> Result<Vec<ShardInfo>, CallError> {
        match self {
            ShardSource::Kinesis(k) => k.list_shards().await,
            #[cfg(test)]
            ShardSource::Memory(m) => m.list_shards(),
        }
    }

    /// An iterator of `shard` at `at`.
    pub(crate) async fn iterator(&self, shard: &str, at: &IteratorAt) -> Result<String, CallError> {
        match self {
            ShardSource::Kinesis(k) => k.iterator(shard, at).await,
            #[cfg(test)]
            ShardSource::Memory(m) => m.iterator(shard, at),
        }
    }

    /// At most `limit` records from `iterator`, and where to go on.
    pub(crate) async fn get_records(
        &self,
        iterator: &str,
        limit: i32,
    ) -> Result<Fetched, CallError> {
        match self {
            ShardSource::Kinesis(k) => k.get_records(iterator, limit).await,
            #[cfg(test)]
            ShardSource::Memory(m) => m.get_records(iterator, limit),
        }
    }
}
