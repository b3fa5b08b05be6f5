//! No client can hold the server by holding connections: idle and slow connections are closed
//! (header, idle and body timeouts) while valid calls are answered; connections over the cap
//! are told to slow down, and the cap keeps room for the daemon's own files.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::*;

const LIMITED: &str = "
listen: 127.0.0.1:0
state_dir: '{dir}/state'
server: {header_timeout_seconds: 2, idle_timeout_seconds: 3, body_timeout_seconds: 3}
delivery_streams:
  - name: logs-a
    source: {direct_put: {}}
    processing: {append_delimiter_to_record: true}
    destinations: [{directory: '{dir}/out'}]
";

/// A connection holding a slot: it has sent `sent` and waits.
fn hold(addr: &str, sent: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    if !sent.is_empty() {
        s.write_all(sent).expect("sent");
    }
    s
}

/// What the server sent before it closed the connection (a test failure if it did not close).
fn until_closed(mut s: TcpStream) -> String {
    let mut raw = Vec::new();
    match s.read_to_end(&mut raw) {
        Ok(_) => String::from_utf8_lossy(&raw).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            String::from_utf8_lossy(&raw).into_owned()
        }
        Err(e) => panic!("the server did not close the connection: {e}"),
    }
}

#[test]
fn idle_and_slow_connections_are_closed_while_valid_calls_are_answered() {
    let mut d = Daemon::start(LIMITED);
    let addr = d.url.strip_prefix("http://").expect("http").to_string();
    let rss_before = d.rss_kib();
    let idle: Vec<TcpStream> = (0..200).map(|_| hold(&addr, b"")).collect();
    let partial_head = b"POST /v1/streams/logs-a/records HTTP/1.1\r\nhost: x\r\ncontent-le";
    let heads: Vec<TcpStream> = (0..100).map(|_| hold(&addr, partial_head)).collect();
    let slow_body = b"POST /v1/streams/logs-a/records HTTP/1.1\r\nhost: x\r\ncontent-length: 8000000\r\n\r\n{\"a\":1}";
    let bodies: Vec<TcpStream> = (0..100).map(|_| hold(&addr, slow_body)).collect();
    let opened = Instant::now();
    // All 400 are held, and valid calls are answered at once beside them.
    for i in 0..20 {
        let (status, body) = d.post(
            "/v1/streams/logs-a/records",
            format!("{{\"ok\":{i}}}\n").as_bytes(),
        );
        assert_eq!(status, 200, "{body}");
    }
    // Bodies announced as 8 MB each are not buffered by what they announce.
    let rss_held = d.rss_kib();
    assert!(
        rss_held < rss_before + 100 * 1024,
        "RSS grew from {rss_before} to {rss_held} KiB with 400 connections held"
    );
    for s in idle {
        assert_eq!(until_closed(s), "", "an idle connection closes quietly");
    }
    for s in heads {
        let answer = until_closed(s);
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
        assert!(answer.contains("RequestTimeoutException"), "{answer}");
        assert!(answer.contains("did not arrive in time"), "{answer}");
    }
    for s in bodies {
        let answer = until_closed(s);
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
        assert!(answer.contains("RequestTimeoutException"), "{answer}");
    }
    // Closed by their timeouts (2 to 3 s), not by the test's 30 s read timeout.
    assert!(opened.elapsed() < Duration::from_secs(20));
    let keys = d.flush("logs-a");
    let mut lines = 0;
    for k in keys {
        let text = std::fs::read_to_string(d.dir.path().join("out").join(k)).expect("object");
        lines += text.lines().count();
    }
    assert_eq!(lines, 20, "every accepted record, none of the slow bodies'");
    assert_eq!(d.metric("firehose_api_connections_timed_out_total"), 400.0);
    assert!(d.logs().lines().all(|l| !l.contains("panicked")));
}

#[test]
fn connections_over_the_cap_are_told_to_slow_down_and_the_cap_keeps_room_for_files() {
    // Under a 400 open-file limit the cap is 400 - 256 = 144 connections, whatever
    // max_connections says (4096 by default).
    let mut d = Daemon::launch(LIMITED).open_file_limit(400).start();
    d.wait_for_log(
        "the open-file limit leaves room for fewer connections",
        Duration::from_secs(5),
    );
    let addr = d.url.strip_prefix("http://").expect("http").to_string();
    let held: Vec<TcpStream> = (0..144).map(|_| hold(&addr, b"")).collect();
    // Accepted connections are counted once the server has seen them.
    std::thread::sleep(Duration::from_millis(300));
    let over = hold(&addr, b"");
    let answer = until_closed(over);
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("Slow down."), "{answer}");
    // The idle ones are closed at the idle timeout; then there is room again.
    for s in held {
        assert_eq!(until_closed(s), "");
    }
    let (status, body) = d.post("/v1/streams/logs-a/records", b"{\"after\":1}\n");
    assert_eq!(status, 200, "{body}");
    assert_eq!(d.metric("firehose_api_connections_refused_total"), 1.0);
    assert_eq!(d.metric("firehose_api_connections_timed_out_total"), 144.0);
}
