//! The contract every shard source keeps (Kinesis, memory), one suite run over each: the unit
//! tests run it on memory, tests/e2e/contracts.rs on kinesalite. Records are read in the order
//! put, from where an iterator says (the oldest, after or at a sequence number, only what comes
//! next); a split closes its parent, whose reading then ends (no next iterator) after its last
//! record, and lists the children with it as their parent; what is put after goes to a child.

use super::{IteratorAt, ShardSource};

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
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            "contract", "contract", None, None, "contract",
        ))
        .load()
        .await;
    let client = crate::aws::kinesis_client(&sdk, Some(endpoint));
    let setup = |e: DriverError| broke("a stream of one shard is made", e);
    client
        .create_stream()
        .stream_name(stream)
        .shard_count(1)
        .send()
        .await
        .map_err(|e| setup(sdk_error(e)))?;
    wait_active(&client, stream).await.map_err(setup)?;
    let source = ShardSource::Kinesis(super::KinesisShards::new(
        client.clone(),
        crate::spec::KinesisStreamRef::Name(stream.to_string()),
    ));
    let driver = Driver::Kinesis {
        client: client.clone(),
        stream: stream.to_string(),
    };
    all(&source, &driver, || wait_active(&client, stream)).await
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
}
