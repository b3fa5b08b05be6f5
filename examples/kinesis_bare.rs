//! The ceiling for bench/kinesis.sh: a bare GetRecords loop over every shard of a stream, from
//! TRIM_HORIZON, as fast as the server answers (no pacing, no processing), until every shard is
//! caught up. Prints records, MB and the rate.
//!
//! usage: kinesis_bare ENDPOINT STREAM

use std::time::Instant;

use aws_config::BehaviorVersion;
use aws_sdk_kinesis::types::ShardIteratorType;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (endpoint, stream) = match (args.next(), args.next()) {
        (Some(e), Some(s)) => (e, s),
        _ => return Err("usage: kinesis_bare ENDPOINT STREAM".into()),
    };
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .load()
        .await;
    let client = aws_sdk_kinesis::Client::new(&sdk);
    let shards = client.list_shards().stream_name(&stream).send().await?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for shard in shards.shards() {
        let (client, stream, id) = (client.clone(), stream.clone(), shard.shard_id().to_string());
        tasks.push(tokio::spawn(async move {
            let mut it = client
                .get_shard_iterator()
                .stream_name(&stream)
                .shard_id(&id)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await?
                .shard_iterator()
                .map(str::to_string);
            let (mut records, mut bytes) = (0u64, 0u64);
            while let Some(i) = it {
                let out = client
                    .get_records()
                    .shard_iterator(i)
                    .limit(10_000)
                    .send()
                    .await?;
                records += out.records().len() as u64;
                bytes += out
                    .records()
                    .iter()
                    .map(|r| r.data().as_ref().len() as u64)
                    .sum::<u64>();
                if out.records().is_empty() && out.millis_behind_latest().unwrap_or(0) == 0 {
                    break;
                }
                it = out.next_shard_iterator().map(str::to_string);
            }
            Ok::<_, aws_sdk_kinesis::Error>((records, bytes))
        }));
    }
    let (mut records, mut bytes) = (0, 0);
    for t in tasks {
        let (r, b) = t.await??;
        records += r;
        bytes += b;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "bare GetRecords loop: records={records} seconds={secs:.1} records_per_s={:.0} MB_per_s={:.1}",
        records as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    Ok(())
}
