//! Shards read from Kinesis Data Streams with the SDK: ListShards (paged), GetShardIterator,
//! GetRecords, and SubscribeToShard (an event stream: HTTP/2 over TLS against AWS); a failure
//! sorted into what the reader does with it (throttled: slower, expired: a new iterator after
//! the last record read, in use: the same subscription again later, anything else: the same
//! call again later).

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::{ShardIteratorType, StartingPosition, SubscribeToShardEventStream};
use bytes::Bytes;

use super::{CallError, Fetched, IteratorAt, Pushed, ShardInfo, ShardRecord};
use crate::spec::KinesisStreamRef;

pub(crate) struct KinesisShards {
    client: Client,
    stream: KinesisStreamRef,
}

impl KinesisShards {
    pub(crate) fn new(client: Client, stream: KinesisStreamRef) -> Self {
        KinesisShards { client, stream }
    }

    pub(crate) async fn list_shards(&self) -> Result<Vec<ShardInfo>, CallError> {
        let mut shards = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = self.client.list_shards().max_results(1000);
            req = match (&token, &self.stream) {
                (Some(t), _) => req.next_token(t),
                (None, KinesisStreamRef::Name(n)) => req.stream_name(n),
                (None, KinesisStreamRef::Arn(a)) => req.stream_arn(a),
            };
            let out = req.send().await.map_err(|e| classify(&e))?;
            for s in out.shards() {
                let parents = [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                    .into_iter()
                    .flatten()
                    .map(str::to_string)
                    .collect();
                let closed = s
                    .sequence_number_range()
                    .and_then(|r| r.ending_sequence_number())
                    .is_some();
                shards.push(ShardInfo {
                    id: s.shard_id().to_string(),
                    parents,
                    closed,
                });
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(shards),
            }
        }
    }

    pub(crate) async fn iterator(&self, shard: &str, at: &IteratorAt) -> Result<String, CallError> {
        let mut req = self.client.get_shard_iterator().shard_id(shard);
        req = match &self.stream {
            KinesisStreamRef::Name(n) => req.stream_name(n),
            KinesisStreamRef::Arn(a) => req.stream_arn(a),
        };
        req = match at {
            IteratorAt::TrimHorizon => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
            IteratorAt::Latest => req.shard_iterator_type(ShardIteratorType::Latest),
            IteratorAt::AtTimestamp(ms) => req
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(DateTime::from_millis(*ms)),
            IteratorAt::AtSequence(seq) => req
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .starting_sequence_number(seq),
            IteratorAt::AfterSequence(seq) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq),
        };
        let out = req.send().await.map_err(|e| classify(&e))?;
        out.shard_iterator()
            .map(str::to_string)
            .ok_or(CallError::NoIterator)
    }

    pub(crate) async fn get_records(
        &self,
        iterator: &str,
        limit: i32,
    ) -> Result<Fetched, CallError> {
        let out = self
            .client
            .get_records()
            .shard_iterator(iterator)
            .limit(limit)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let behind_ms = out.millis_behind_latest();
        let next = out.next_shard_iterator().map(str::to_string);
        let records = out.records.into_iter().map(shard_record).collect();
        Ok(Fetched {
            records,
            next,
            behind_ms,
        })
    }

    /// SubscribeToShard: answered once the server sent its first event (the SDK waits for an
    /// `initial-response`, and takes the first event in its place when there is none). A
    /// refusal sent as the stream's first event (kinesis-mock sends ResourceInUse so; AWS as
    /// the HTTP answer) is the call's error either way.
    pub(crate) async fn subscribe(
        &self,
        consumer: &str,
        shard: &str,
        at: &IteratorAt,
    ) -> Result<KinesisSubscription, CallError> {
        let position = match at {
            IteratorAt::TrimHorizon => {
                StartingPosition::builder().r#type(ShardIteratorType::TrimHorizon)
            }
            IteratorAt::Latest => StartingPosition::builder().r#type(ShardIteratorType::Latest),
            IteratorAt::AtTimestamp(ms) => StartingPosition::builder()
                .r#type(ShardIteratorType::AtTimestamp)
                .timestamp(DateTime::from_millis(*ms)),
            IteratorAt::AtSequence(seq) => StartingPosition::builder()
                .r#type(ShardIteratorType::AtSequenceNumber)
                .sequence_number(seq),
            IteratorAt::AfterSequence(seq) => StartingPosition::builder()
                .r#type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq),
        }
        .build()
        .map_err(|e| CallError::Other(e.to_string()))?;
        let out = self
            .client
            .subscribe_to_shard()
            .consumer_arn(consumer)
            .shard_id(shard)
            .starting_position(position)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let mut sub = KinesisSubscription {
            events: out,
            first: None,
        };
        sub.first = sub.next().await?;
        Ok(sub)
    }
}

/// A subscription's event stream.
pub(crate) struct KinesisSubscription {
    events: aws_sdk_kinesis::operation::subscribe_to_shard::SubscribeToShardOutput,
    /// The first event, read by `subscribe` (None once taken, or when the stream ended at
    /// once: the next `recv` says so again).
    first: Option<Pushed>,
}

impl KinesisSubscription {
    pub(crate) async fn next(&mut self) -> Result<Option<Pushed>, CallError> {
        if let Some(first) = self.first.take() {
            return Ok(Some(first));
        }
        loop {
            let event = match self.events.event_stream.recv().await {
                Ok(Some(e)) => e,
                Ok(None) => return Ok(None),
                Err(e) => return Err(classify_event(&e)),
            };
            // Event types a newer service sends and this SDK does not know are skipped.
            let SubscribeToShardEventStream::SubscribeToShardEvent(e) = event else {
                continue;
            };
            // The SDK reads a null or missing ContinuationSequenceNumber as "". The shard's end
            // is that with its children (AWS sends both).
            let continuation = Some(e.continuation_sequence_number).filter(|c| !c.is_empty());
            let end = continuation.is_none() && e.child_shards.is_some_and(|c| !c.is_empty());
            return Ok(Some(Pushed {
                records: e.records.into_iter().map(shard_record).collect(),
                continuation,
                behind_ms: Some(e.millis_behind_latest),
                end,
            }));
        }
    }
}

/// An error event of a subscription: typed by the event's `:exception-type` (its metadata
/// carries no code).
fn classify_event<R: std::fmt::Debug>(
    e: &SdkError<aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError, R>,
) -> CallError {
    use aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError as E;
    let text = DisplayErrorContext(e).to_string();
    match e {
        SdkError::ServiceError(se) => match se.err() {
            E::ResourceInUseException(_) => CallError::InUse(text),
            E::ResourceNotFoundException(_) => CallError::NotFound(text),
            E::KmsThrottlingException(_) => CallError::Throttled(text),
            _ => CallError::Other(text),
        },
        _ => CallError::Other(text),
    }
}

fn shard_record(r: aws_sdk_kinesis::types::Record) -> ShardRecord {
    ShardRecord {
        sequence: r.sequence_number,
        partition_key: r.partition_key.unwrap_or_default(),
        arrival_ms: r
            .approximate_arrival_timestamp
            .and_then(|t| t.to_millis().ok()),
        data: Bytes::from(r.data.into_inner()),
    }
}

fn classify<E, R>(e: &SdkError<E, R>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let text = DisplayErrorContext(e).to_string();
    match e {
        SdkError::ServiceError(se) => match se.err().code() {
            Some("ExpiredIteratorException") => CallError::Expired,
            Some("ResourceInUseException") => CallError::InUse(text),
            Some("ResourceNotFoundException") => CallError::NotFound(text),
            Some(
                "ProvisionedThroughputExceededException"
                | "LimitExceededException"
                | "KMSThrottlingException"
                | "ThrottlingException",
            ) => CallError::Throttled(text),
            _ => CallError::Other(text),
        },
        _ => CallError::Other(text),
    }
}
