//! Every seam keeps its contract on its real backend too: the suites the unit tier runs on the
//! in-memory stores (and a directory) run here on the local servers, so a unit test on memory
//! stands for what S3, DynamoDB and Kinesis do. Subscriptions (enhanced fan-out) run on
//! kinesis-mock over TLS and HTTP/2, as against AWS; the first of them also proves that the
//! SDK takes kinesis-mock's SubscribeToShard, which sends no `initial-response` event.

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

#[test]
fn kinesis_mock_keeps_the_subscription_contract() {
    let kinesis = KinesisMock::start();
    // SAFETY: nextest runs each test in its own process; nothing else reads the environment
    // meanwhile. The SDK's TLS trusts the test CA through rustls-native-certs' SSL_CERT_FILE.
    unsafe { std::env::set_var("SSL_CERT_FILE", &kinesis.ca_file) };
    runtime()
        .block_on(firehosed::contracts::kinesis_subscriptions(
            &kinesis.endpoint,
            "contract-subscriptions",
        ))
        .expect("kinesis-mock keeps the subscription contract");
}
