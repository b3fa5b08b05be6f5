//! The fault-injecting proxy (examples/chaos_proxy.rs) does what the chaos runs rely on: the
//! same seed gives the same faults to the same request numbers; each fault has the shape of the
//! protocol it interrupts (S3's XML `InternalError` / `SlowDown`, awsJson's `__type` for Kinesis
//! and DynamoDB); a reset before forwarding leaves the request undone and a reset after it done;
//! a truncated answer is short; the rate changes on request. And firehosed, delivering through it
//! into S3 at a 30% fault rate (errors, throttling, resets before and after, cut answers,
//! delays), delivers
//! every acknowledged record: once with `exactly_once`, at least once otherwise.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::support::*;

/// One request on its own connection: Ok((status, body)), or Err when the connection was reset
/// or closed before a whole answer.
fn raw(endpoint: &str, head: &str, body: &[u8]) -> Result<(u16, String), String> {
    let mut s =
        TcpStream::connect(endpoint.trim_start_matches("http://")).map_err(|e| e.to_string())?;
    let head = format!(
        "{head}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    s.write_all(body).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("truncated: {} bytes, no whole head", answer.len()))?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let length = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("content-length:")
            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
    });
    if length.is_some_and(|n| rest.len() < n) {
        return Err(format!("truncated: {} of {:?} bytes", rest.len(), length));
    }
    Ok((status, rest.to_string()))
}

fn s3_put(endpoint: &str, key: &str) -> Result<(u16, String), String> {
    raw(
        endpoint,
        &format!(
            "PUT /lake/{key} HTTP/1.1\r\nhost: 127.0.0.1\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD"
        ),
        b"x",
    )
}

/// The outcome of a request, named: the fault's code, or "passed" (the upstream's own answer),
/// "reset", "truncated".
fn outcome(r: &Result<(u16, String), String>) -> String {
    match r {
        Ok((status, body)) if !matches!(status, 400 | 500 | 503) || body.is_empty() => {
            // The upstream's own answer, whatever it was.
            let _ = body;
            "passed".into()
        }
        Ok((status, body)) => {
            let code = body
                .split("<Code>")
                .nth(1)
                .and_then(|c| c.split('<').next())
                .map(str::to_string)
                .or_else(|| {
                    serde_json::from_str::<serde_json::Value>(body)
                        .ok()
                        .and_then(|v| v["__type"].as_str().map(str::to_string))
                })
                .unwrap_or_default();
            format!("{status} {code}")
        }
        Err(e) if e.starts_with("truncated") => "truncated".into(),
        Err(_) => "reset".into(),
    }
}

#[test]
fn faults_follow_the_seed_and_speak_each_protocol() {
    let moto = Moto::start();
    moto.create_bucket("lake");
    let kinds = "error,slowdown,reset-before,reset-after,truncate,delay";
    let runs = std::sync::atomic::AtomicU64::new(0);
    let run = |seed: u64| -> Vec<String> {
        let p = ChaosProxy::start(&moto.endpoint, seed, 0.5, kinds);
        let n = runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (0..40)
            .map(|i| outcome(&s3_put(&p.endpoint, &format!("run{n}-{i}"))))
            .collect()
    };
    let first = run(7);
    assert_eq!(first, run(7), "the same seed, the same faults");
    assert_ne!(first, run(8));
    let shapes = [
        "passed",
        "500 InternalError",
        "503 SlowDown",
        "reset",
        "truncated",
    ];
    for seen in shapes {
        assert!(
            first.iter().any(|o| o == seen),
            "{seen} never seen in {first:?}"
        );
    }
    assert!(
        first.iter().all(|o| shapes.contains(&o.as_str())),
        "{first:?}"
    );
    // Reset before: the PUT did not happen; reset after: it did.
    let before = ChaosProxy::start(&moto.endpoint, 1, 1.0, "reset-before");
    assert_eq!(outcome(&s3_put(&before.endpoint, "never")), "reset");
    let after = ChaosProxy::start(&moto.endpoint, 1, 1.0, "reset-after");
    assert_eq!(outcome(&s3_put(&after.endpoint, "done")), "reset");
    let keys = moto.keys("lake");
    assert!(
        keys.contains(&"done".to_string()) && !keys.contains(&"never".to_string()),
        "{keys:?}"
    );
    // awsJson: Kinesis and DynamoDB in their own words.
    let json = ChaosProxy::start(&moto.endpoint, 3, 1.0, "slowdown");
    let call = |target: &str| {
        outcome(&raw(
            &json.endpoint,
            &format!(
                "POST / HTTP/1.1\r\nhost: x\r\nx-amz-target: {target}\r\ncontent-type: application/x-amz-json-1.1"
            ),
            b"{}",
        ))
    };
    assert_eq!(
        call("Kinesis_20131202.GetRecords"),
        "400 ProvisionedThroughputExceededException"
    );
    assert_eq!(
        call("Kinesis_20131202.ListShards"),
        "400 ThrottlingException"
    );
    assert_eq!(
        call("DynamoDB_20120810.PutItem"),
        "400 com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
    );
    let errors = ChaosProxy::start(&moto.endpoint, 3, 1.0, "error");
    let (status, body) = raw(
        &errors.endpoint,
        "POST / HTTP/1.1\r\nhost: x\r\nx-amz-target: DynamoDB_20120810.GetItem",
        b"{}",
    )
    .expect("an answer");
    assert_eq!((status, body.contains("InternalServerError")), (500, true));
    // The rate moves on request; the stats count what was done.
    let (status, _) = http(
        &format!("{}/__chaos/rate?value=0", json.endpoint),
        "POST",
        &[],
        b"",
    );
    assert_eq!(status, 200);
    assert_eq!(
        call("Kinesis_20131202.GetRecords"),
        "passed",
        "rate 0: moto's own answer"
    );
    let stats = json.stats();
    assert_eq!(stats["requests"], 4);
    assert_eq!(stats["faults"]["slowdown"], 3);
}

#[test]
fn every_acknowledged_record_is_delivered_through_a_30_percent_fault_rate() {
    let s3 = S3sFs::start();
    s3.create_bucket("chaos-eo");
    s3.create_bucket("chaos-alo");
    let p = ChaosProxy::start(
        &s3.endpoint,
        42,
        0.3,
        "error,slowdown,reset-before,reset-after,truncate,delay",
    );
    let config = format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
relax_aws_limits: true
aws: {{force_path_style: true, endpoint_url: '{}'}}
delivery_streams:
  - name: chaos
    source: {{direct_put: {{}}}}
    processing: {{append_delimiter_to_record: true}}
    destinations:
      - s3: {{bucket: chaos-eo}}
        delivery: exactly_once
        buffering: {{size_mib: 1, interval_seconds: 1}}
      - s3: {{bucket: chaos-alo}}
        buffering: {{size_mib: 1, interval_seconds: 1}}
",
        p.endpoint
    );
    let mut d = Daemon::start(&config);
    let mut acknowledged = Vec::new();
    // Eight rounds of 250 records, each flushed: every round's objects go through the faults.
    for round in 0..8 {
        let lines: Vec<String> = (0..250).map(|i| format!("r{}", round * 250 + i)).collect();
        let (status, body) = d.post("/v1/streams/chaos/records", lines.join("\n").as_bytes());
        assert_eq!(status, 200, "{body}");
        acknowledged.extend(lines);
        d.flush("chaos");
    }
    let count = |bucket: &str| {
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for key in files_under(&s3.root.path().join(bucket)) {
            let data = std::fs::read(s3.root.path().join(bucket).join(&key)).expect("object");
            for line in String::from_utf8_lossy(&data).lines() {
                *seen.entry(line.to_string()).or_default() += 1;
            }
        }
        seen
    };
    let (eo, alo) = (count("chaos-eo"), count("chaos-alo"));
    for r in &acknowledged {
        assert_eq!(eo.get(r), Some(&1), "{r} in the exactly-once bucket");
        assert!(
            alo.get(r).is_some_and(|&n| n >= 1),
            "{r} in the at-least-once bucket"
        );
    }
    assert_eq!(
        eo.len(),
        acknowledged.len(),
        "nothing else in the exactly-once bucket"
    );
    let stats = p.stats();
    eprintln!("through {stats}");
    let injected: u64 = stats["faults"].as_object().map_or(0, |f| {
        f.values().filter_map(serde_json::Value::as_u64).sum()
    });
    assert!(injected >= 3, "{stats}\n{}", d.logs());
}
