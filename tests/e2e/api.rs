//! The Firehose API and the plain endpoints on the real binary: shapes, AWS-shaped errors,
//! AWS's limits, and that a refused request changes nothing.

use crate::support::*;
use serde_json::json;

const CONFIG: &str = "
listen: 127.0.0.1:0
state_dir: '{dir}/state'
delivery_streams:
  - name: orders
    source: {direct_put: {}}
    processing: {append_delimiter_to_record: true}
    destinations:
      - directory: '{dir}/out'
        prefix: 'p/'
        buffering: {size_mib: 64, interval_seconds: 900}
  - name: zeta
    source: {direct_put: {}}
    destinations:
      - directory: '{dir}/out2'
        compression: gzip
        custom_time_zone: Europe/Paris
";

fn put_batch_body(stream: &str, records: &[&[u8]]) -> String {
    let recs: Vec<_> = records.iter().map(|r| json!({"Data": base64(r)})).collect();
    json!({"DeliveryStreamName": stream, "Records": recs}).to_string()
}

fn delivered(d: &Daemon, stream: &str) -> Vec<u8> {
    let keys = d.flush(stream);
    let mut all = Vec::new();
    for k in keys {
        all.extend(std::fs::read(d.dir.path().join("out").join(k)).expect("object"));
    }
    all
}

#[test]
fn put_record_and_batch_are_delivered_in_order() {
    let d = Daemon::start(CONFIG);
    let (status, v) = d.api(
        "PutRecord",
        &json!({"DeliveryStreamName": "orders", "Record": {"Data": base64(b"first")}}).to_string(),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["Encrypted"], json!(false));
    assert!(v["RecordId"].as_str().is_some_and(|s| !s.is_empty()));
    let (status, v) = d.api(
        "PutRecordBatch",
        &put_batch_body("orders", &[b"a", b"b", b""]),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["FailedPutCount"], json!(0));
    let responses = v["RequestResponses"].as_array().expect("responses");
    assert_eq!(responses.len(), 3);
    assert!(responses.iter().all(|r| r["RecordId"].is_string()));
    assert_eq!(delivered(&d, "orders"), b"first\na\nb\n\n");
}

#[test]
fn errors_are_aws_shaped() {
    let d = Daemon::start(CONFIG);
    let cases: Vec<(&str, String, &str)> = vec![
        ("Nope", "{}".into(), "UnknownOperationException"),
        ("PutRecord", "{not json".into(), "SerializationException"),
        (
            "PutRecord",
            json!({"DeliveryStreamName": "orders", "Record": {"Data": "!!!not base64"}})
                .to_string(),
            "SerializationException",
        ),
        (
            "PutRecord",
            json!({"DeliveryStreamName": "missing", "Record": {"Data": "eA=="}}).to_string(),
            "ResourceNotFoundException",
        ),
        (
            "PutRecord",
            json!({"DeliveryStreamName": "orders"}).to_string(),
            "ValidationException",
        ),
        (
            "PutRecord",
            json!({"DeliveryStreamName": "orders", "Record": {"Data": 5}}).to_string(),
            "SerializationException",
        ),
        (
            "DescribeDeliveryStream",
            json!({"DeliveryStreamName": "bad name!"}).to_string(),
            "ValidationException",
        ),
    ];
    for (op, body, kind) in cases {
        let (status, v) = d.api(op, &body);
        assert_eq!(status, 400, "{op} {body}: {v}");
        assert_eq!(v["__type"], json!(kind), "{op} {body}: {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    }
    let (status, text) = http(&d.url, "POST", &[], b"{}");
    assert_eq!(status, 400);
    assert!(text.contains("UnknownOperationException"), "{text}");
    assert_eq!(delivered(&d, "orders"), b"", "nothing was accepted");
}

#[test]
fn limits_are_enforced_and_refused_batches_change_nothing() {
    let d = Daemon::start(CONFIG);
    let one = vec![b"x".as_slice(); 501];
    // The service model's constraints: ValidationException in AWS's words.
    let (status, v) = d.api("PutRecordBatch", &put_batch_body("orders", &one));
    assert_eq!(
        (status, v["__type"].clone()),
        (400, json!("ValidationException")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap_or("").contains("at 'records' failed to satisfy constraint: Member must have length less than or equal to 500"), "{v}");

    let (status, v) = d.api("PutRecordBatch", &put_batch_body("orders", &[]));
    assert_eq!(
        (status, v["__type"].clone()),
        (400, json!("ValidationException")),
        "{v}"
    );

    let big = vec![b'x'; 1_024_001];
    let (status, v) = d.api("PutRecordBatch", &put_batch_body("orders", &[b"ok", &big]));
    assert_eq!(
        (status, v["__type"].clone()),
        (400, json!("ValidationException")),
        "{v}"
    );
    assert_eq!(
        v["message"],
        "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=1024001 cap=1024001]' at 'records.2.member.data' failed to satisfy constraint: Member must have length less than or equal to 1024000",
        "{v}"
    );

    let max = vec![b'y'; 1_024_000];
    let (status, v) = d.api(
        "PutRecord",
        &json!({"DeliveryStreamName": "orders", "Record": {"Data": base64(&max)}}).to_string(),
    );
    assert_eq!(
        status, 200,
        "a record of exactly 1,024,000 bytes is allowed: {v}"
    );

    // 5 records of 1,000,000 bytes: each is fine, together they pass 4 MiB.
    let chunk = vec![b'z'; 1_000_000];
    let five = vec![chunk.as_slice(); 5];
    let (status, v) = d.api("PutRecordBatch", &put_batch_body("orders", &five));
    assert_eq!(
        (status, v["__type"].clone()),
        (400, json!("InvalidArgumentException")),
        "{v}"
    );
    assert_eq!(v["message"], "Records size exceeds 4 MB limit", "{v}");

    let delivered = delivered(&d, "orders");
    assert_eq!(
        delivered.len(),
        1_024_001,
        "only the valid PutRecord was accepted"
    );
    assert_eq!(
        d.metric("firehose_incoming_records_total{delivery_stream=\"orders\"}"),
        1.0
    );
}

#[test]
fn describe_and_list_have_aws_defaults() {
    let d = Daemon::start(CONFIG);
    let (status, v) = d.api("DescribeDeliveryStream", r#"{"DeliveryStreamName":"zeta"}"#);
    assert_eq!(status, 200, "{v}");
    let desc = &v["DeliveryStreamDescription"];
    assert_eq!(desc["DeliveryStreamName"], json!("zeta"));
    assert_eq!(
        desc["DeliveryStreamARN"],
        json!("arn:aws:firehose:us-east-1:000000000000:deliverystream/zeta")
    );
    assert_eq!(desc["DeliveryStreamStatus"], json!("ACTIVE"));
    assert_eq!(desc["DeliveryStreamType"], json!("DirectPut"));
    assert_eq!(desc["VersionId"], json!("1"));
    let ext = &desc["Destinations"][0]["ExtendedS3DestinationDescription"];
    assert_eq!(
        ext["BufferingHints"],
        json!({"SizeInMBs": 5, "IntervalInSeconds": 300})
    );
    assert_eq!(ext["CompressionFormat"], json!("GZIP"));
    assert_eq!(ext["CustomTimeZone"], json!("Europe/Paris"));
    assert_eq!(
        desc["Destinations"][0]["DestinationId"],
        json!("destinationId-000000000001")
    );

    let (_, v) = d.api("ListDeliveryStreams", "{}");
    assert_eq!(
        v,
        json!({"DeliveryStreamNames": ["orders", "zeta"], "HasMoreDeliveryStreams": false})
    );
    let (_, v) = d.api("ListDeliveryStreams", r#"{"Limit":1}"#);
    assert_eq!(
        v,
        json!({"DeliveryStreamNames": ["orders"], "HasMoreDeliveryStreams": true})
    );
    let (_, v) = d.api(
        "ListDeliveryStreams",
        r#"{"ExclusiveStartDeliveryStreamName":"orders"}"#,
    );
    assert_eq!(v["DeliveryStreamNames"], json!(["zeta"]));
}

#[test]
fn plain_ingest_flush_health_and_metrics() {
    let d = Daemon::start(CONFIG);
    assert_eq!(d.get("/healthz").0, 200);
    let (status, body) = d.post(
        "/v1/streams/orders/records",
        b"{\"a\":1}\r\n{\"a\":2}\n\n{\"a\":3}",
    );
    assert_eq!((status, body.as_str()), (200, "{\"accepted\":3}"));
    let (status, body) = d.post("/v1/streams/nope/records", b"x");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("ResourceNotFoundException"));
    let mut too_big = vec![b'x'; 1_024_001];
    too_big.extend_from_slice(b"\nsmall\n");
    let (status, body) = d.post("/v1/streams/orders/records", &too_big);
    assert_eq!(status, 400, "{body}");

    let keys = d.flush("orders");
    assert_eq!(keys.len(), 1, "{keys:?}");
    let object = std::fs::read(d.dir.path().join("out").join(&keys[0])).expect("object");
    assert_eq!(object, b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n");
    assert!(
        d.flush("orders").is_empty(),
        "a second flush has nothing new"
    );

    let m = |s: &str| d.metric(s);
    assert_eq!(
        m("firehose_incoming_records_total{delivery_stream=\"orders\"}"),
        3.0
    );
    assert_eq!(
        m("firehose_incoming_bytes_total{delivery_stream=\"orders\"}"),
        21.0
    );
    assert_eq!(
        m("firehose_incoming_put_requests_total{delivery_stream=\"orders\"}"),
        1.0
    );
    assert_eq!(
        m("firehose_throttled_records_total{delivery_stream=\"orders\"}"),
        0.0
    );
    let dest = "{delivery_stream=\"orders\",destination=\"0\"}";
    assert_eq!(
        m(&format!("firehose_delivery_to_s3_records_total{dest}")),
        3.0
    );
    assert_eq!(
        m(&format!("firehose_delivery_to_s3_bytes_total{dest}")),
        24.0
    );
    assert_eq!(
        m(&format!("firehose_delivery_to_s3_object_count_total{dest}")),
        1.0
    );
    assert_eq!(
        m(&format!("firehose_delivery_to_s3_success_total{dest}")),
        1.0
    );
    assert_eq!(
        m(&format!(
            "firehose_delivery_to_s3_data_freshness_seconds{dest}"
        )),
        0.0
    );
    let (_, text) = d.get("/metrics");
    assert!(text.contains(
        "# HELP firehose_delivery_to_s3_data_freshness_seconds DeliveryToS3.DataFreshness"
    ));
}

#[test]
fn oversized_bodies_are_refused_before_they_are_read() {
    let d = Daemon::start(CONFIG);
    let body = vec![b'a'; 9 * 1024 * 1024];
    let (status, text) = http(
        &d.url,
        "POST",
        &[("x-amz-target", "Firehose_20150804.PutRecordBatch")],
        &body,
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("InvalidArgumentException"), "{text}");
    assert_eq!(d.get("/healthz").0, 200, "still serving");
}

/// Sends raw bytes on a fresh connection; everything the daemon answers before it closes.
fn raw(d: &Daemon, bytes: &[u8]) -> String {
    use std::io::{Read, Write};
    let addr = d.url.strip_prefix("http://").expect("http url");
    let mut s = std::net::TcpStream::connect(addr).expect("connects");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(bytes).expect("sent");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// An answer's status, and its JSON body's `__type`, checked to carry a request id.
fn aws_shaped(answer: &str) -> (u16, String) {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    assert!(
        head.to_ascii_lowercase().contains("\r\nx-amzn-requestid: "),
        "no request id in {answer:?}"
    );
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {answer:?}"));
    assert!(
        v["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{answer}"
    );
    (status, v["__type"].as_str().unwrap_or_default().to_string())
}

/// Errors at the HTTP layer (what hyper refuses before a handler runs, an unknown path or
/// method, the plain endpoints' own) are AWS-shaped with a request id like the API's; a request
/// with both Content-Length and Transfer-Encoding is refused (request smuggling), on the first
/// request of a connection or a later one, and nothing of it is taken.
#[test]
fn http_level_errors_are_aws_shaped_and_ambiguous_framing_is_refused() {
    let d = Daemon::start(CONFIG);
    let cases: [(&[u8], u16); 6] = [
        (b"GARBAGE\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
        (b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
        (b"DELETE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405),
        (b"POST /v1/streams/missing/records HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", 404),
    ];
    for (bytes, status) in cases {
        let answer = raw(&d, bytes);
        assert_eq!(aws_shaped(&answer).0, status, "{answer}");
    }
    // A head with bare line feeds is HTTP/1.1 too (RFC 9112 section 2.2), and is served.
    let answer = raw(&d, b"GET /healthz HTTP/1.1\nHost: x\nConnection: close\n\n");
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    let smuggled = b"POST /v1/streams/orders/records HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab\n\n\r\n0\r\n\r\n";
    let answer = raw(&d, smuggled);
    assert_eq!(
        aws_shaped(&answer),
        (400, "BadRequestException".into()),
        "{answer}"
    );
    assert!(
        answer.contains("Content-Length and Transfer-Encoding"),
        "{answer}"
    );
    // The same on a kept-alive connection, after a request that is served.
    let mut second = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    second.extend_from_slice(smuggled);
    let answer = raw(&d, &second);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(
        answer.contains("Content-Length and Transfer-Encoding"),
        "{answer}"
    );
    // Chunked alone is fine, and nothing of the refused ones was taken.
    let chunked = b"POST /v1/streams/orders/records HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nok\n\r\n0\r\n\r\n";
    let answer = raw(&d, chunked);
    assert!(answer.contains("{\"accepted\":1}"), "{answer}");
    assert_eq!(delivered(&d, "orders"), b"ok\n");
}

/// CPU time (user + system, in clock ticks) the process has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = stat.rsplit_once(')').expect("comm").1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// A client that half-closes its side in the middle of a request (a chunk-size line cut off,
/// a head cut off) costs nothing: the connection ends, no worker spins, others are served.
#[test]
fn a_client_that_half_closes_mid_request_costs_nothing() {
    use std::io::Write;
    let d = Daemon::start(CONFIG);
    let addr = d.url.strip_prefix("http://").expect("http url").to_string();
    let mut held = Vec::new();
    for cut in [
        &b"POST /v1/streams/orders/records HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5"[..],
        b"POST /v1/streams/orders/records HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Le",
    ] {
        for _ in 0..2 {
            let mut s = std::net::TcpStream::connect(&addr).expect("connects");
            s.write_all(cut).expect("sent");
            s.shutdown(std::net::Shutdown::Write).expect("half-closed");
            held.push(s);
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let before = cpu_ticks(d.pid());
    std::thread::sleep(std::time::Duration::from_secs(2));
    let used = cpu_ticks(d.pid()) - before;
    // 2 s of two spinning workers would be about 400 ticks; an idle daemon uses a few.
    assert!(
        used < 50,
        "the daemon used {used} ticks of CPU in 2 s while idle"
    );
    let (status, _) = d.get("/healthz");
    assert_eq!(status, 200);
    drop(held);
}
