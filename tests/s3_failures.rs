//! S3 failures during delivery: the object is retried with backoff until S3 is back, then
//! written once, whole; the failures show in the metrics.

mod support;

use std::time::{Duration, Instant};

use support::*;

#[test]
fn delivery_is_retried_until_s3_comes_back() {
    let mut moto = Moto::start();
    moto.create_bucket("flaky");
    let port = moto.port;
    let config = format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
aws: {{endpoint_url: '{}', force_path_style: true}}
delivery_streams:
  - name: f
    source: {{direct_put: {{}}}}
    processing: {{append_delimiter_to_record: true}}
    destinations:
      - s3: {{bucket: flaky}}
        compression: gzip
        buffering: {{size_mib: 1, interval_seconds: 900}}
",
        moto.endpoint
    );
    let mut d = Daemon::start(&config);
    let body: String = (0..1000).map(|i| format!("record-{i}\n")).collect();
    assert_eq!(d.post("/v1/streams/f/records", body.as_bytes()).0, 200);

    moto.stop();
    let url = d.url.clone();
    let flush =
        std::thread::spawn(move || http(&format!("{url}/v1/streams/f/flush"), "POST", &[], b""));
    let failures =
        "firehose_delivery_to_s3_failures_total{delivery_stream=\"f\",destination=\"0\"}";
    let deadline = Instant::now() + Duration::from_secs(30);
    while d.metric(failures) < 2.0 {
        assert!(Instant::now() < deadline, "no failed attempts were counted");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!flush.is_finished(), "flush waits for the delivery");

    let moto = Moto::start_on(port);
    moto.create_bucket("flaky");
    let (status, text) = flush.join().expect("flush thread");
    assert_eq!(status, 200, "{text}");
    let keys = moto.keys("flaky");
    assert_eq!(keys.len(), 1, "written once: {keys:?}");
    let (decoded, _) = py_decode("GZIP", &moto.get("flaky", &keys[0]));
    assert_eq!(decoded, body.as_bytes());
    assert_eq!(
        d.metric("firehose_delivery_to_s3_success_total{delivery_stream=\"f\",destination=\"0\"}"),
        1.0
    );
    d.wait_for_log("delivery failed; retrying", Duration::from_secs(5));
    d.wait_for_log("delivery recovered", Duration::from_secs(5));
}
