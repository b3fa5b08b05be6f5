//! Every seam keeps its contract on its real backend too: the suites the unit tier runs on the
//! in-memory stores (and a directory) run here on the local servers, so a unit test on memory
//! stands for what S3, DynamoDB and Kinesis do.

use crate::support::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

#[test]
fn an_s3_bucket_keeps_the_object_store_contract() {
    let moto = Moto::start();
    moto.create_bucket("contract");
    runtime()
        .block_on(firehosed::contracts::s3_sink(&moto.endpoint, "contract"))
        .expect("the S3 bucket keeps the contract");
}

#[test]
fn a_dynamodb_table_keeps_the_lease_store_contract() {
    let moto = Moto::start();
    runtime()
        .block_on(firehosed::contracts::dynamodb_leases(
            &moto.endpoint,
            "contract-leases",
        ))
        .expect("the DynamoDB table keeps the contract");
}

#[test]
fn kinesalite_keeps_the_shard_source_contract() {
    let kinesis = Kinesalite::start();
    runtime()
        .block_on(firehosed::contracts::kinesis_shards(
            &kinesis.endpoint,
            "contract-shards",
        ))
        .expect("kinesalite keeps the contract");
}
