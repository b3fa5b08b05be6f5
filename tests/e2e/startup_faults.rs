//! Transient failures while a stream starts do not stop it: S3 answering 500 InternalError to
//! the start-up bucket check and to the exactly-once conditional-write probe, several times
//! each, is waited out with backoff (the start takes longer, then everything is delivered);
//! a permanent answer (the bucket does not exist) still stops a file stream's start with one
//! line (cli.rs `run_exits_non_zero_when_the_bucket_is_missing`).

use crate::support::faults::S3ErrorProxy;
use crate::support::*;

#[test]
fn s3_errors_during_the_start_up_checks_are_waited_out() {
    let s3 = S3sFs::start();
    s3.create_bucket("lake");
    // HEAD: the bucket check (3 x 500); PUT: the probe's conditional puts (5 x 500, more than
    // the probe's quick retries used to take).
    let proxy = S3ErrorProxy::start(&s3.endpoint, &[("HEAD", 3), ("PUT", 5)]);
    let config = format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
relax_aws_limits: true
aws: {{force_path_style: true}}
delivery_streams:
  - name: eo
    source: {{direct_put: {{}}}}
    destinations:
      - s3: {{bucket: lake, endpoint_url: '{}'}}
        delivery: exactly_once
        buffering: {{size_mib: 1, interval_seconds: 60}}
",
        proxy.endpoint
    );
    let mut d = Daemon::start(&config);
    assert_eq!(proxy.answered(), [3, 5]);
    let (status, body) = d.post("/v1/streams/eo/records", b"a\nb\nc");
    assert_eq!((status, body.as_str()), (200, r#"{"accepted":3}"#));
    let keys = d.flush("eo");
    assert_eq!(keys.len(), 1, "{keys:?}");
    let object = std::fs::read(s3.root.path().join("lake").join(&keys[0])).expect("the object");
    assert_eq!(object, b"abc");
    let logs = d.logs();
    assert!(logs.contains("retrying"), "the waits are logged:\n{logs}");
}
