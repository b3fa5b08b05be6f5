//! Where a stream's shards are read from: Kinesis through the SDK (`kinesis.rs`: ListShards,
//! GetShardIterator, GetRecords, SubscribeToShard), or memory (the unit tier: `memory.rs`),
//! which keeps the same contract (`contract.rs`, run over both): shards listed with their
//! parents, records read in order from where an iterator says, a closed shard's reading ending
//! (no next iterator) after its last record; a subscription pushing records in order from
//! where it starts, one subscription per consumer and shard at a time.

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
    /// Closed by a split or a merge (it has an ending sequence number): nothing more is added.
    pub(crate) closed: bool,
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

/// What one event of a subscription pushed.
#[derive(Debug, Default)]
pub(crate) struct Pushed {
    pub(crate) records: Vec<ShardRecord>,
    /// Where a new subscription goes on (AFTER_SEQUENCE_NUMBER); None: the event gave none.
    pub(crate) continuation: Option<String>,
    pub(crate) behind_ms: Option<i64>,
    /// The shard is closed and every record of it was pushed: AWS sends no
    /// ContinuationSequenceNumber and the ChildShards then. (No continuation alone is not the
    /// end: some servers leave it out of every event.)
    pub(crate) end: bool,
}

/// Why a call failed, as the reader treats it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    #[error("{0}")]
    Throttled(String),
    /// ResourceInUseException: the consumer still holds a subscription to the shard (another
    /// instance's, or this one's just closed), or the consumer is not ACTIVE yet.
    #[error("{0}")]
    InUse(String),
    /// ResourceNotFoundException: the consumer, the stream or the shard is not there.
    #[error("{0}")]
    NotFound(String),
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

    /// A subscription of `consumer` (its ARN) to `shard`, starting `at`.
    pub(crate) async fn subscribe(
        &self,
        consumer: &str,
        shard: &str,
        at: &IteratorAt,
    ) -> Result<Subscription, CallError> {
        match self {
            ShardSource::Kinesis(k) => k
                .subscribe(consumer, shard, at)
                .await
                .map(|s| Subscription::Kinesis(Box::new(s))),
            #[cfg(test)]
            ShardSource::Memory(m) => m.subscribe(shard, at).map(Subscription::Memory),
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

/// A subscription to one shard: events pushed until it ends (AWS ends each after 5 minutes)
/// or fails. Dropping it closes it.
pub(crate) enum Subscription {
    Kinesis(Box<kinesis::KinesisSubscription>),
    #[cfg(test)]
    Memory(memory::MemorySubscription),
}

impl Subscription {
    /// The next event; None: the subscription ended (a new one goes on from the last event's
    /// continuation).
    pub(crate) async fn next(&mut self) -> Result<Option<Pushed>, CallError> {
        match self {
            Subscription::Kinesis(k) => k.next().await,
            #[cfg(test)]
            Subscription::Memory(m) => m.next().await,
        }
    }
}
