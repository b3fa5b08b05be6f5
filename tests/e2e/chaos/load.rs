//! Steady load for a chaos run. Direct PUT producers send JSON records with PutRecordBatch and
//! log which ids were acknowledged; a record refused ("Slow down.", the daemon restarting, a
//! connection cut) is sent again under a new id, so an id appears in a destination at most once
//! unless the daemon wrote it twice. The Kinesis producer (tests/py/kinesis_tool.py) puts
//! records straight into kinesalite and logs each one Kinesis accepted.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// What a record asks of the at-least-once stream's Lambda handler (tests/transforms/blueprint.py).
pub(super) fn action(seq: u64) -> &'static str {
    ["keep", "keep", "drop", "fail"][(seq % 4) as usize]
}

/// Per stream, the ids acknowledged.
pub(super) type Acked = Vec<(String, BTreeSet<String>)>;

/// One producer thread per stream, each logging what was acknowledged.
pub(super) struct DirectPut {
    stop: Arc<AtomicBool>,
    /// stream -> acknowledged ids.
    pub(super) acked: Arc<Mutex<Acked>>,
    pub(super) refused: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl DirectPut {
    pub(super) fn start(url: Arc<RwLock<String>>, streams: &[&str]) -> DirectPut {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(
            streams
                .iter()
                .map(|s| (s.to_string(), BTreeSet::new()))
                .collect::<Vec<_>>(),
        ));
        let refused = Arc::new(AtomicU64::new(0));
        let threads = streams
            .iter()
            .enumerate()
            .map(|(n, stream)| {
                let stream = stream.to_string();
                let (url, stop, acked, refused) =
                    (url.clone(), stop.clone(), acked.clone(), refused.clone());
                std::thread::spawn(move || {
                    let mut seq = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let batch: Vec<(String, String)> = (0..50)
                            .map(|_| {
                                seq += 1;
                                let id = format!("{stream}-{seq}");
                                let record = json!({
                                    "id": id,
                                    "p": format!("k{}", seq % 4),
                                    "action": action(seq),
                                    "pad": "x".repeat(120),
                                });
                                (id, record.to_string())
                            })
                            .collect();
                        let url = url.read().expect("lock").clone();
                        let ok = send(&url, &stream, &batch);
                        let refused_now = batch.len() - ok.len();
                        refused.fetch_add(refused_now as u64, Ordering::Relaxed);
                        acked.lock().expect("lock")[n].1.extend(ok);
                        let pause = if refused_now > 0 { 200 } else { 100 };
                        std::thread::sleep(Duration::from_millis(pause));
                    }
                })
            })
            .collect();
        DirectPut {
            stop,
            acked,
            refused,
            threads,
        }
    }

    /// Stops the producers; stream -> acknowledged ids.
    pub(super) fn finish(self) -> Acked {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("producer");
        }
        self.acked.lock().expect("lock").clone()
    }
}

/// One PutRecordBatch; the ids acknowledged (none when the call failed as a whole).
fn send(url: &str, stream: &str, batch: &[(String, String)]) -> Vec<String> {
    let records: Vec<Value> = batch
        .iter()
        .map(|(_, r)| json!({"Data": base64(format!("{r}\n").as_bytes())}))
        .collect();
    let body = json!({"DeliveryStreamName": stream, "Records": records}).to_string();
    let Ok((200, text)) = try_http(
        url,
        "POST",
        &[
            ("x-amz-target", "Firehose_20150804.PutRecordBatch"),
            ("content-type", "application/x-amz-json-1.1"),
        ],
        body.as_bytes(),
    ) else {
        return Vec::new();
    };
    let Ok(v) = serde_json::from_str::<Value>(&text) else {
        return Vec::new();
    };
    let responses = v["RequestResponses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        responses.len(),
        batch.len(),
        "one answer per record: {text}"
    );
    batch
        .iter()
        .zip(responses)
        .filter(|(_, r)| r["RecordId"].is_string())
        .map(|((id, _), _)| id.clone())
        .collect()
}

/// The Kinesis producer: a process putting records until stopped (killed if the run panics).
pub(super) struct KinesisLoad {
    child: Option<std::process::Child>,
    produced: tempfile::NamedTempFile,
    stop_file: tempfile::TempDir,
}

/// A record Kinesis accepted: its data and its sequence number.
pub(super) struct Put {
    pub(super) data: String,
    pub(super) sequence: String,
}

impl KinesisLoad {
    pub(super) fn start(endpoint: &str, stream: &str) -> KinesisLoad {
        let produced = tempfile::NamedTempFile::new().expect("tempfile");
        let stop_file = tempfile::tempdir().expect("tempdir");
        let child = std::process::Command::new(python())
            .arg(py_script("kinesis_tool.py"))
            .args([endpoint, "produce", stream, "c", "40", "100000"])
            .arg(produced.path())
            .arg("--stop-file")
            .arg(stop_file.path().join("stop"))
            .args(["--pause-ms", "100"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("producer");
        KinesisLoad {
            child: Some(child),
            produced,
            stop_file,
        }
    }

    /// Stops it; every record Kinesis accepted.
    pub(super) fn finish(mut self) -> Vec<Put> {
        std::fs::write(self.stop_file.path().join("stop"), b"").expect("stop file");
        if let Some(mut child) = self.child.take() {
            let status = child.wait().expect("producer");
            assert!(status.success(), "the Kinesis producer failed");
        }
        std::fs::read_to_string(self.produced.path())
            .expect("produced")
            .lines()
            .map(|l| {
                // [data, partition key, sequence number, shard]
                let v: Value = serde_json::from_str(l).expect("json line");
                Put {
                    data: v[0].as_str().expect("data").to_string(),
                    sequence: v[2].as_str().expect("sequence number").to_string(),
                }
            })
            .collect()
    }
}

impl Drop for KinesisLoad {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
