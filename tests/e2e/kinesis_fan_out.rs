//! Enhanced fan-out on the real binary against kinesis-mock over TLS and HTTP/2 (as against
//! AWS): the named consumer is registered when missing and reused when it exists (a restart
//! registers nothing new, and nothing deregisters it); records, KPL aggregates among them, are
//! pushed, de-aggregated and delivered once each; subscriptions and MillisBehindLatest show in
//! /metrics. Records of 10 MiB (a stream made for large records) pass through polling and
//! fan-out alike, byte for byte. The fleet with fan-out (kill -9, exactly-once) is in
//! fleet.rs; the subscription contract in contracts.rs.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::Value;

/// A Kinesis-sourced delivery stream `name` reading `stream` from TRIM_HORIZON into
/// `{dir}/<name>`; `fan_out`: as the consumer `firehosed`.
fn stream_config(k: &KinesisMock, name: &str, stream: &str, fan_out: bool, extra: &str) -> String {
    let efo = if fan_out {
        "        enhanced_fan_out: {consumer_name: firehosed}\n"
    } else {
        ""
    };
    format!(
        "  - name: {name}
    source:
      kinesis_stream:
        stream_name: {stream}
        endpoint_url: '{endpoint}'
        starting_position: TRIM_HORIZON
        discovery_interval_seconds: 1
{efo}{extra}    destinations:
      - directory: '{{dir}}/{name}'
        buffering: {{size_mib: 1, interval_seconds: 1}}
",
        endpoint = k.endpoint
    )
}

fn start(k: &KinesisMock, streams: &str) -> Daemon {
    let config =
        format!("listen: 127.0.0.1:0\nstate_dir: '{{dir}}/state'\ndelivery_streams:\n{streams}");
    Daemon::launch(&config)
        .env("SSL_CERT_FILE", &k.ca_file.display().to_string())
        .start()
}

/// Every object under `{dir}/<name>`, as bytes.
fn objects(d: &Daemon, name: &str) -> Vec<Vec<u8>> {
    let root = d.dir.path().join(name);
    files_under(&root)
        .into_iter()
        .map(|f| std::fs::read(root.join(f)).expect("object"))
        .collect()
}

fn lines(d: &Daemon, name: &str) -> Vec<String> {
    objects(d, name)
        .iter()
        .flat_map(|o| {
            String::from_utf8_lossy(o)
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn consumers(k: &KinesisMock, stream: &str) -> Vec<Value> {
    serde_json::from_slice(&k.tool(&["consumers", stream])).expect("json")
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn records_are_pushed_to_a_registered_consumer_once_each_kpl_aggregates_split() {
    let k = KinesisMock::start();
    k.tool(&["create", "pushed", "2"]);
    assert!(consumers(&k, "pushed").is_empty());
    let streams = stream_config(
        &k,
        "efo",
        "pushed",
        true,
        "    processing: {append_delimiter_to_record: true}\n",
    );
    let mut d = start(&k, &streams);
    let registered = consumers(&k, "pushed");
    assert_eq!(registered.len(), 1, "{registered:?}");
    assert_eq!(registered[0][0], "firehosed");
    assert_eq!(registered[0][2], "ACTIVE");
    let out: Value =
        serde_json::from_slice(&k.tool(&["put-mixed", "pushed", "m", "8", "300", "5"]))
            .expect("json");
    let want: BTreeSet<String> = out["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u.as_str().expect("data").to_string())
        .collect();
    wait_until("every record delivered", Duration::from_secs(60), || {
        d.flush("efo");
        lines(&d, "efo").len() >= want.len()
    });
    let got = lines(&d, "efo");
    assert_eq!(got.len(), want.len(), "none twice");
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want);
    assert!(d.family_sum("firehose_kinesis_subscriptions_started_total") >= 2.0);
    let (_, text) = d.get("/metrics");
    assert!(
        text.contains("firehose_kinesis_millis_behind_latest{delivery_stream=\"efo\",shard=\"shardId-000000000001\"}"),
        "{text}"
    );
    assert!(
        text.contains("firehose_kinesis_subscription_errors_total{delivery_stream=\"efo\",shard=\"shardId-000000000000\",kind=\"in_use\"}"),
        "{text}"
    );
    // A restart reuses the consumer: nothing is registered, nothing deregistered.
    let arn = registered[0][1].clone();
    let logs = d.logs();
    assert!(logs.contains("registered the stream consumer"), "{logs}");
    let (dir, config) = d.stop_for_restart();
    let d = Daemon::launch(&config)
        .in_dir(dir)
        .env("SSL_CERT_FILE", &k.ca_file.display().to_string())
        .start();
    let again = consumers(&k, "pushed");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0][1], arn, "the same consumer");
    drop(d);
    assert_eq!(consumers(&k, "pushed").len(), 1, "never deregistered");
}

#[test]
fn records_of_10_mib_pass_through_polling_and_fan_out_byte_for_byte() {
    let k = KinesisMock::start();
    // kinesis-mock answers GetRecords with a 500 for a record of the full 10 MiB (up to 9 MiB
    // it answers): polling reads 9 MiB records, fan-out 10 MiB ones (the Kinesis maximum).
    k.tool(&["create", "large9", "1", "10240"]);
    k.tool(&["create", "large10", "1", "10240"]);
    let streams = [
        // AWS returns fewer records when they pass 10 MiB together: one per call here.
        stream_config(
            &k,
            "polled",
            "large9",
            false,
            "        get_records_limit: 1\n",
        ),
        stream_config(&k, "pushed", "large10", true, ""),
    ]
    .concat();
    let mut d = start(&k, &streams);
    for (name, stream, size) in [
        ("polled", "large9", 9 * 1024 * 1024),
        ("pushed", "large10", 10 * 1024 * 1024),
    ] {
        let put = k.tool(&["put-large", stream, &size.to_string(), "2"]);
        let out: Value = serde_json::from_slice(&put).expect("json");
        let want: BTreeSet<String> = out["records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| r[0].as_str().expect("sha256").to_string())
            .collect();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            d.flush(name);
            if objects(&d, name).iter().map(Vec::len).sum::<usize>() >= 2 * size {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: both records delivered\n{}",
                d.logs()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        // Each object holds one record (the buffer is 1 MiB): their digests are the records'.
        let got: BTreeSet<String> = objects(&d, name).iter().map(|o| sha256_hex(o)).collect();
        assert_eq!(got, want, "{name}");
    }
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
