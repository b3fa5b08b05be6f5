//! Transient failures while a stream starts do not stop it: S3 answering 500 InternalError to
//! the start-up bucket check and to the exactly-once conditional-write probe, several times
//! each, and Kinesis and DynamoDB answering 500 to the stream check and the lease table's calls,
//! are waited out with backoff (the start takes longer, then everything is delivered);
//! a permanent answer (the bucket does not exist) still stops a file stream's start with one
//! line (cli.rs `run_exits_non_zero_when_the_bucket_is_missing`). The API serves meanwhile: the
//! waiting stream is CREATING, puts to it are told to come back (503), /readyz says 503 until
//! it runs, and a stream created meanwhile starts once. A
//! probe whose first answer was lost leaves no probe object behind in the user's bucket.

use crate::support::faults::{ErrorProxy, LostAnswerProxy};
use crate::support::*;

#[test]
fn s3_errors_during_the_start_up_checks_are_waited_out() {
    let s3 = S3sFs::start();
    s3.create_bucket("lake");
    // HEAD: the bucket check (3 x 500); PUT: the probe's conditional puts (5 x 500, more than
    // the probe's quick retries used to take).
    let proxy = ErrorProxy::start(&s3.endpoint, &[("head /", 3), ("put /", 5)]);
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

#[test]
fn kinesis_and_dynamodb_errors_during_the_start_are_waited_out() {
    let k = Kinesalite::start();
    k.tool(&["create", "faulty", "2"]);
    let db = Moto::start();
    let kinesis = ErrorProxy::start(
        &k.endpoint,
        &[("kinesis_20131202.describestreamsummary", 4)],
    );
    let dynamo = ErrorProxy::start(&db.endpoint, &[("dynamodb_20120810.", 4)]);
    let put = k.tool(&["put", "faulty", "r", "20", "60"]);
    let sent: serde_json::Value = serde_json::from_slice(&put).expect("json");
    let config = format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
delivery_streams:
  - name: ks
    source:
      kinesis_stream:
        stream_name: faulty
        endpoint_url: '{}'
        starting_position: TRIM_HORIZON
        leases: {{table: faulty-leases, endpoint_url: '{}', worker_id: w1}}
    processing: {{append_delimiter_to_record: true}}
    destinations:
      - directory: '{{dir}}/out'
        buffering: {{size_mib: 1, interval_seconds: 1}}
",
        kinesis.endpoint, dynamo.endpoint
    );
    let d = Daemon::start(&config);
    assert_eq!(kinesis.answered(), [4]);
    assert_eq!(dynamo.answered(), [4]);
    let out = d.dir.path().join("out");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let lines: usize = files_under(&out)
            .iter()
            .map(|f| {
                std::fs::read(out.join(f)).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
            })
            .sum();
        if lines >= sent["records"].as_array().map_or(0, Vec::len) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{lines} records delivered"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn the_daemon_serves_while_a_stream_waits_out_its_start_up_checks() {
    let s3 = S3sFs::start();
    s3.create_bucket("lake");
    // Six 500s to the bucket check: about 13 s of backoff before the stream can start.
    let proxy = ErrorProxy::start(&s3.endpoint, &[("head /", 6)]);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let config = format!(
        "listen: 127.0.0.1:{port}
state_dir: '{{dir}}/state'
aws: {{endpoint_url: '{}', force_path_style: true}}
delivery_streams:
  - name: waiting
    source: {{direct_put: {{}}}}
    destinations:
      - s3: {{bucket: lake}}
        buffering: {{size_mib: 1, interval_seconds: 60}}
",
        proxy.endpoint
    );
    // What a client sees while the stream waits, seen from beside the start.
    let seen = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = try_http(&format!("{url}/healthz"), "GET", &[], b"") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never served");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let call = |op: &str, body: &str| {
            http(
                &url,
                "POST",
                &[("x-amz-target", &format!("Firehose_20150804.{op}"))],
                body.as_bytes(),
            )
        };
        let ready = http(&format!("{url}/readyz"), "GET", &[], b"").0;
        let described = call(
            "DescribeDeliveryStream",
            r#"{"DeliveryStreamName":"waiting"}"#,
        );
        let put = call(
            "PutRecord",
            r#"{"DeliveryStreamName":"waiting","Record":{"Data":"YQ=="}}"#,
        );
        // A stream created meanwhile starts once, by its own create.
        let created = call(
            "CreateDeliveryStream",
            r#"{"DeliveryStreamName":"during","ExtendedS3DestinationConfiguration":{"RoleARN":"arn:aws:iam::123456789012:role/firehose","BucketARN":"arn:aws:s3:::lake","BufferingHints":{"SizeInMBs":1,"IntervalInSeconds":60}}}"#,
        );
        assert_eq!(created.0, 200, "{}", created.1);
        (ready, described, put)
    });
    let mut d = Daemon::launch(&config).start();
    let (ready, (status, described), (put_status, put)) = seen.join().expect("the client");
    assert_eq!(proxy.answered(), [6]);
    assert_eq!(ready, 503, "not ready while a stream starts");
    assert_eq!(status, 200, "{described}");
    let v: serde_json::Value = serde_json::from_str(&described).expect("JSON");
    assert_eq!(
        v["DeliveryStreamDescription"]["DeliveryStreamStatus"], "CREATING",
        "{v}"
    );
    // Come back later (503, retried by SDKs), not "does not exist".
    assert_eq!(put_status, 503, "{put}");
    assert!(put.contains("ServiceUnavailableException"), "{put}");
    // Once started: ACTIVE, ready, and the records go through.
    let v = d.wait_active("waiting");
    assert_eq!(
        v["DeliveryStreamDescription"]["DeliveryStreamStatus"],
        "ACTIVE"
    );
    assert_eq!(d.get("/readyz").0, 200);
    let (status, body) = d.post("/v1/streams/waiting/records", b"a\nb");
    assert_eq!((status, body.as_str()), (200, r#"{"accepted":2}"#));
    d.wait_active("during");
    let (status, _) = d.post("/v1/streams/during/records", b"x");
    assert_eq!(status, 200);
    assert_eq!(d.flush("during").len(), 1);
    let logs = d.logs();
    assert!(logs.contains("retrying"));
    assert_eq!(
        logs.matches("destination ready destination=during[0]")
            .count(),
        1,
        "the stream created during the start was started once:\n{logs}"
    );
}

#[test]
fn a_probe_whose_first_answer_is_lost_leaves_no_probe_object_behind() {
    let s3 = S3sFs::start();
    s3.create_bucket("lake");
    // The probe's first conditional put is written, then the connection is cut: the probe is
    // tried again (under a new name), and the first one's object must not stay in the bucket.
    let proxy = LostAnswerProxy::cutting(&s3.endpoint, "PUT ", "conditional-write-probe", 1);
    let config = format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
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
    let d = match Daemon::launch(&config).try_start() {
        Ok(d) => d,
        Err(log) => panic!("the start was refused:\n{log}"),
    };
    assert_eq!(proxy.held(), 1);
    let (status, _) = d.post("/v1/streams/eo/records", b"a");
    assert_eq!(status, 200);
    assert_eq!(d.flush("eo").len(), 1);
    // The probe removed its object, the lost first answer notwithstanding.
    let left: Vec<String> = files_under(&s3.root.path().join("lake"))
        .into_iter()
        .filter(|k| k.contains("probe"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
