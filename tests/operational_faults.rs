//! Faults an operator's VM meets, on the real binary: a client stalled mid-request when the
//! service stops (the drain still delivers everything, at once), and a full disk under
//! state_dir, filled by the spool itself or by another process (the daemon keeps running,
//! answers "Slow down.", and resumes by itself when space returns; nothing acknowledged is lost).

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

fn batch(stream: &str, from: usize, n: usize) -> String {
    let recs: Vec<_> = (from..from + n)
        .map(|i| json!({"Data": base64(format!("{{\"i\":{i}}}").as_bytes())}))
        .collect();
    json!({"DeliveryStreamName": stream, "Records": recs}).to_string()
}

/// Every line of every object under `out`.
fn lines_under(out: &std::path::Path) -> Vec<String> {
    let mut lines: Vec<String> = files_under(out)
        .iter()
        .flat_map(|k| {
            std::fs::read_to_string(out.join(k))
                .expect("object")
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    lines.sort();
    lines
}

/// A connection that sent part of a request and then nothing: headers cut off, or a body
/// shorter than its Content-Length. Neither is a request in flight: SIGTERM does not wait for
/// them, and every buffered record is delivered before the exit.
#[test]
fn a_stalled_client_does_not_hold_the_drain() {
    let d = Daemon::start(
        "listen: 127.0.0.1:0
state_dir: '{dir}/state'
drain_timeout_seconds: 60
delivery_streams:
  - name: s
    source: {direct_put: {}}
    processing: {append_delimiter_to_record: true}
    destinations:
      - directory: '{dir}/out'
        buffering: {size_mib: 64, interval_seconds: 900}
",
    );
    let mut d = d;
    for from in [0, 500] {
        let (status, v) = d.api("PutRecordBatch", &batch("s", from, 500));
        assert_eq!(
            (status, v["FailedPutCount"].clone()),
            (200, json!(0)),
            "{v}"
        );
    }
    let addr = d.url.strip_prefix("http://").expect("http url").to_string();
    let mut headers_cut = TcpStream::connect(&addr).expect("connects");
    headers_cut
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Le")
        .expect("sent");
    let mut body_cut = TcpStream::connect(&addr).expect("connects");
    body_cut
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: Firehose_20150804.PutRecord\r\nContent-Length: 1000\r\n\r\n{")
        .expect("sent");
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let status = d.terminate(Duration::from_secs(20));
    let took = started.elapsed();
    assert_eq!(status.code(), Some(0), "a clean drain");
    assert!(
        took < Duration::from_secs(10),
        "the drain waited {took:?} for clients that were still sending"
    );
    let lines = lines_under(&d.dir.path().join("out"));
    assert_eq!(
        lines.len(),
        1000,
        "every buffered record delivered before the exit"
    );
    drop((headers_cut, body_cut));
}
