//! The contract every shard source keeps (Kinesis, memory), one suite run over each: the unit
//! tests run it on memory, tests/e2e/contracts.rs on kinesalite. Records are read in the order
//! put, from where an iterator says (the oldest, after or at a sequence number, only what comes
//! next); a split closes its parent, whose reading then ends (no next iterator) after its last
//! record, and lists the children with it as their parent; what is put after goes to a child.
//! Subscriptions (enhanced fan-out; tests/e2e/contracts.rs runs them on kinesis-mock) push the
//! records in order from where they start, go on after a continuation, and are one per
//! consumer and shard at a time.

use std::time::Duration;

use super::{CallError, IteratorAt, ShardSource, Subscription};

/// A scenario of the contract that a source broke.
#[derive(Debug, thiserror::Error)]
#[error("{scenario}: {what}")]
pub struct ShardContractError {
    scenario: &'static str,
    what: String,
}

/// A producer's or an operator's call that failed (not a breach of the contract itself).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct DriverError(String);

fn sdk_error<E: std::error::Error>(e: E) -> DriverError {
    DriverError(aws_sdk_kinesis::error::DisplayErrorContext(&e).to_string())
}

fn broke(scenario: &'static str, what: impl ToString) -> ShardContractError {
    ShardContractError {
        scenario,
        what: what.to_string(),
    }
}

/// How a scenario puts records and splits shards: what a producer and an operator do.
pub(crate) enum Driver {
    Kinesis {
        client: aws_sdk_kinesis::Client,
        stream: String,
    },
    #[cfg(test)]
    Memory(std::sync::Arc<super::memory::MemoryStream>),
}

impl Driver {
    /// Puts a record; its shard and sequence number.
    async fn put(&self, data: &str) -> Result<(String, String), DriverError> {
        match self {
            Driver::Kinesis { client, stream } => {
                let out = client
                    .put_record()
                    .stream_name(stream)
                    .partition_key("contract")
                    .data(aws_sdk_kinesis::primitives::Blob::new(data.as_bytes()))
                    .send()
                    .await
                    .map_err(sdk_error)?;
                Ok((out.shard_id, out.sequence_number))
            }
            #[cfg(test)]
            Driver::Memory(m) => {
                let open = m
                    .list_shards()
                    .map_err(|e| DriverError(e.to_string()))?
                    .into_iter()
                    .rev()
                    .find_map(|s| m.put(&s.id, "contract", data.as_bytes()).map(|q| (s.id, q)));
                open.ok_or_else(|| DriverError("no open shard".into()))
            }
        }
    }

    /// Splits `shard` in two.
    async fn split(&self, shard: &str) -> Result<(), DriverError> {
        match self {
            Driver::Kinesis { client, stream } => {
                // The middle of the whole hash key range (the stream has one shard).
                let middle = (u128::MAX / 2).to_string();
                client
                    .split_shard()
                    .stream_name(stream)
                    .shard_to_split(shard)
                    .new_starting_hash_key(middle)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                Ok(())
            }
            #[cfg(test)]
            Driver::Memory(m) => {
                m.split(shard);
                Ok(())
            }
        }
    }
}

/// Runs the contract on a Kinesis server (tests/e2e/contracts.rs: kinesalite on loopback): a
/// stream of one shard is made for it.
pub async fn kinesis(endpoint: &str, stream: &str) -> Result<(), ShardContractError> {
    let client = one_shard(endpoint, stream)
        .await
        .map_err(|e| broke("a stream of one shard is made", e))?;
    let (source, driver) = source_and_driver(&client, stream);
    all(&source, &driver, || wait_active(&client, stream)).await
}

/// A client of the server at `endpoint` and a new stream of one shard on it, ACTIVE.
async fn one_shard(endpoint: &str, stream: &str) -> Result<aws_sdk_kinesis::Client, DriverError> {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            "contract", "contract", None, None, "contract",
        ))
        .load()
        .await;
    let client = crate::aws::kinesis_client(&sdk, Some(endpoint));
    client
        .create_stream()
        .stream_name(stream)
        .shard_count(1)
        .send()
        .await
        .map_err(sdk_error)?;
    wait_active(&client, stream).await?;
    Ok(client)
}

fn source_and_driver(client: &aws_sdk_kinesis::Client, stream: &str) -> (ShardSource, Driver) {
    let source = ShardSource::Kinesis(super::KinesisShards::new(
        client.clone(),
        crate::spec::KinesisStreamRef::Name(stream.to_string()),
    ));
    let driver = Driver::Kinesis {
        client: client.clone(),
        stream: stream.to_string(),
    };
    (source, driver)
}

/// Runs the subscription scenarios on a Kinesis server with enhanced fan-out
/// (tests/e2e/contracts.rs: kinesis-mock on loopback): a stream of one shard and a consumer
/// are made for it.
pub async fn kinesis_fan_out(endpoint: &str, stream: &str) -> Result<(), ShardContractError> {
    let setup = |e: DriverError| broke("a stream of one shard and a consumer are made", e);
    let client = one_shard(endpoint, stream).await.map_err(setup)?;
    let arn = client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .map_err(|e| setup(sdk_error(e)))?
        .stream_description_summary()
        .map(|s| s.stream_arn().to_string())
        .ok_or_else(|| setup(DriverError("no stream ARN".into())))?;
    let consumer = crate::source::kinesis::fan_out::consumer(
        &client,
        &arn,
        "contract",
        Duration::from_secs(30),
    )
    .await
    .map_err(|e| setup(DriverError(e.to_string())))?;
    let (source, driver) = source_and_driver(&client, stream);
    subscriptions(&source, &driver, &consumer).await
}

/// Subscriptions as `consumer`, on a stream whose one open shard has no records: pushed in
/// order from TRIM_HORIZON, what comes after pushed as it arrives, one subscription at a time
/// per shard (a second is refused as in use), a new one going on after the continuation.
pub(crate) async fn subscriptions(
    source: &ShardSource,
    driver: &Driver,
    consumer: &str,
) -> Result<(), ShardContractError> {
    let scenario = "a subscription pushes records in order from where it starts";
    let mut put = Vec::new();
    for i in 0..3 {
        put.push(
            driver
                .put(&format!("s{i}"))
                .await
                .map_err(|e| broke(scenario, e))?,
        );
    }
    let shard = put[0].0.clone();
    let mut sub = subscribe(source, consumer, &shard, &IteratorAt::TrimHorizon)
        .await
        .map_err(|e| broke(scenario, e))?;
    let (got, continuation) = pushed(&mut sub, 3).await.map_err(|e| broke(scenario, e))?;
    expect(scenario, "TRIM_HORIZON", got, &["s0", "s1", "s2"])?;
    driver.put("s3").await.map_err(|e| broke(scenario, e))?;
    let (got, _) = pushed(&mut sub, 1).await.map_err(|e| broke(scenario, e))?;
    expect(scenario, "put while subscribed", got, &["s3"])?;

    let scenario = "one subscription per consumer and shard at a time";
    match source
        .subscribe(consumer, &shard, &IteratorAt::Latest)
        .await
    {
        Err(CallError::InUse(_)) => {}
        Err(e) => return Err(broke(scenario, format!("refused with {e}, not as in use"))),
        Ok(_) => return Err(broke(scenario, "a second subscription was opened")),
    }
    drop(sub);

    let scenario = "a new subscription goes on after the continuation";
    let Some(continuation) = continuation else {
        return Err(broke(scenario, "no continuation on an open shard"));
    };
    let at = IteratorAt::AfterSequence(continuation);
    let mut sub = subscribe(source, consumer, &shard, &at)
        .await
        .map_err(|e| broke(scenario, e))?;
    let (got, _) = pushed(&mut sub, 1).await.map_err(|e| broke(scenario, e))?;
    expect(scenario, "after the continuation of s2", got, &["s3"])?;
    drop(sub);
    let at = IteratorAt::AtSequence(put[1].1.clone());
    let mut sub = subscribe(source, consumer, &shard, &at)
        .await
        .map_err(|e| broke(scenario, e))?;
    let (got, _) = pushed(&mut sub, 3).await.map_err(|e| broke(scenario, e))?;
    expect(scenario, "AT_SEQUENCE_NUMBER", got, &["s1", "s2", "s3"])
}

/// A subscription, retried while the shard's last one is still held (a server frees it a
/// moment after its client goes).
async fn subscribe(
    source: &ShardSource,
    consumer: &str,
    shard: &str,
    at: &IteratorAt,
) -> Result<Subscription, DriverError> {
    let mut last = String::new();
    for _ in 0..20 {
        match source.subscribe(consumer, shard, at).await {
            Ok(s) => return Ok(s),
            Err(CallError::InUse(e)) => last = e,
            Err(e) => return Err(DriverError(e.to_string())),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(DriverError(format!("still in use after 10 s: {last}")))
}

/// The data of the next `want` records pushed (within 20 s), and the last continuation.
async fn pushed(
    sub: &mut Subscription,
    want: usize,
) -> Result<(Vec<String>, Option<String>), DriverError> {
    let mut out = Vec::new();
    let mut continuation = None;
    let give_up = tokio::time::Instant::now() + Duration::from_secs(20);
    while out.len() < want {
        let next = tokio::time::timeout_at(give_up, sub.next())
            .await
            .map_err(|_| DriverError(format!("pushed {out:?} in 20 s, want {want} records")))?;
        let Some(p) = next.map_err(|e| DriverError(e.to_string()))? else {
            return Err(DriverError(format!("the subscription ended after {out:?}")));
        };
        out.extend(
            p.records
                .iter()
                .map(|r| String::from_utf8_lossy(&r.data).into_owned()),
        );
        continuation = p.continuation;
    }
    Ok((out, continuation))
}

async fn wait_active(client: &aws_sdk_kinesis::Client, stream: &str) -> Result<(), DriverError> {
    for _ in 0..100 {
        let out = client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .map_err(sdk_error)?;
        let status = out
            .stream_description_summary()
            .map(|s| s.stream_status().clone());
        if status == Some(aws_sdk_kinesis::types::StreamStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(DriverError("the stream never became ACTIVE".into()))
}

/// Every scenario on `source`, whose stream has one open shard and no records; `settled`
/// waits for a split to take effect.
pub(crate) async fn all<F, W>(
    source: &ShardSource,
    driver: &Driver,
    settled: F,
) -> Result<(), ShardContractError>
where
    F: Fn() -> W,
    W: std::future::Future<Output = Result<(), DriverError>>,
{
    let scenario = "records are read in order from where an iterator says";
    let mut put = Vec::new();
    for i in 0..3 {
        put.push(
            driver
                .put(&format!("r{i}"))
                .await
                .map_err(|e| broke(scenario, e))?,
        );
    }
    let shard = put[0].0.clone();
    let read = |at: IteratorAt, want: usize| read(source, &shard, at, want);
    expect(
        scenario,
        "TRIM_HORIZON",
        read(IteratorAt::TrimHorizon, 3).await,
        &["r0", "r1", "r2"],
    )?;
    let after = IteratorAt::AfterSequence(put[0].1.clone());
    expect(
        scenario,
        "AFTER_SEQUENCE_NUMBER",
        read(after, 2).await,
        &["r1", "r2"],
    )?;
    let at = IteratorAt::AtSequence(put[1].1.clone());
    expect(
        scenario,
        "AT_SEQUENCE_NUMBER",
        read(at, 2).await,
        &["r1", "r2"],
    )?;
    let latest = source
        .iterator(&shard, &IteratorAt::Latest)
        .await
        .map_err(|e| broke(scenario, e.to_string()))?;
    driver.put("r3").await.map_err(|e| broke(scenario, e))?;
    let (fetched, _) = drain(source, latest, 1).await;
    expect(scenario, "LATEST", fetched, &["r3"])?;
    split(source, driver, &shard, settled).await
}

/// A split: the parent listed with its two children, its reading ending after its records,
/// what is put afterwards in a child.
async fn split<F, W>(
    source: &ShardSource,
    driver: &Driver,
    shard: &str,
    settled: F,
) -> Result<(), ShardContractError>
where
    F: Fn() -> W,
    W: std::future::Future<Output = Result<(), DriverError>>,
{
    let scenario = "a split closes its parent and lists its children";
    driver.split(shard).await.map_err(|e| broke(scenario, e))?;
    settled().await.map_err(|e| broke(scenario, e))?;
    let listed = source
        .list_shards()
        .await
        .map_err(|e| broke(scenario, e.to_string()))?;
    let children: Vec<String> = listed
        .iter()
        .filter(|s| s.parents == [shard.to_string()])
        .map(|s| s.id.clone())
        .collect();
    if children.len() != 2 || !listed.iter().any(|s| s.id == shard) {
        return Err(broke(scenario, format!("listed {listed:?}")));
    }
    let it = source
        .iterator(shard, &IteratorAt::TrimHorizon)
        .await
        .map_err(|e| broke(scenario, e.to_string()))?;
    let (all, ended) = drain(source, it, 4).await;
    if !ended {
        return Err(broke(scenario, "reading the closed parent did not end"));
    }
    expect(
        scenario,
        "the parent's records",
        all,
        &["r0", "r1", "r2", "r3"],
    )?;
    driver.put("r4").await.map_err(|e| broke(scenario, e))?;
    let mut in_children = Vec::new();
    for c in &children {
        in_children.extend(read(source, c, IteratorAt::TrimHorizon, 0).await);
    }
    expect(scenario, "put after the split", in_children, &["r4"])
}

/// The records' data read from `shard` at `at`: until `want` are read, or a few empty reads.
async fn read(source: &ShardSource, shard: &str, at: IteratorAt, want: usize) -> Vec<String> {
    let Ok(it) = source.iterator(shard, &at).await else {
        return Vec::new();
    };
    drain(source, it, want).await.0
}

/// Reads from `iterator` until `want` records (or the end, or a few empty reads); the data
/// read, and whether the shard ended.
async fn drain(source: &ShardSource, mut iterator: String, want: usize) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    for _ in 0..10 {
        let Ok(f) = source.get_records(&iterator, 100).await else {
            break;
        };
        out.extend(
            f.records
                .iter()
                .map(|r| String::from_utf8_lossy(&r.data).into_owned()),
        );
        match f.next {
            None => return (out, true),
            Some(n) => iterator = n,
        }
        if want > 0 && out.len() >= want {
            // One more read, to see the end of a closed shard.
            if let Ok(f) = source.get_records(&iterator, 100).await {
                return (out, f.next.is_none() && f.records.is_empty());
            }
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    (out, false)
}

fn expect(
    scenario: &'static str,
    what: &str,
    got: Vec<String>,
    want: &[&str],
) -> Result<(), ShardContractError> {
    if got == want {
        Ok(())
    } else {
        Err(broke(
            scenario,
            format!("{what}: read {got:?}, want {want:?}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_keeps_the_shard_source_contract() {
        let stream = std::sync::Arc::new(super::super::memory::MemoryStream::new(1));
        let source = ShardSource::Memory(stream.clone());
        let driver = Driver::Memory(stream);
        all(&source, &driver, || async { Ok(()) })
            .await
            .expect("the contract");
    }

    #[tokio::test]
    async fn memory_keeps_the_subscription_contract() {
        let stream = std::sync::Arc::new(super::super::memory::MemoryStream::new(1));
        let source = ShardSource::Memory(stream.clone());
        let driver = Driver::Memory(stream);
        subscriptions(&source, &driver, "arn:consumer")
            .await
            .expect("the contract");
    }
}
