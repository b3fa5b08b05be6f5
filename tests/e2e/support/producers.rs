//! Producers for load under faults: threads that keep sending unique records with
//! PutRecordBatch, retry the ones refused with "Slow down." (any other per-record error fails
//! the test), and remember what was acknowledged.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::{base64, http};

/// Producers that keep sending unique records, retrying the ones refused with "Slow down.",
/// and remember what was acknowledged.
pub struct Producers {
    stop: Arc<AtomicBool>,
    pub acked: Arc<Mutex<BTreeSet<String>>>,
    pub throttled: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Producers {
    pub fn start(url: &str, stream: &str, n: usize) -> Producers {
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let throttled = Arc::new(AtomicU64::new(0));
        let threads = (0..n)
            .map(|p| {
                let (url, stream) = (url.to_string(), stream.to_string());
                let (stop, acked, throttled) = (stop.clone(), acked.clone(), throttled.clone());
                std::thread::spawn(move || {
                    let mut i = 0u64;
                    let mut pending: Vec<String> = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        if pending.is_empty() {
                            pending = (0..100)
                                .map(|j| format!("p{p}-b{i}-r{j}-{}", "o".repeat(400)))
                                .collect();
                            i += 1;
                        }
                        let recs: Vec<Value> = pending
                            .iter()
                            .map(|r| json!({"Data": base64(r.as_bytes())}))
                            .collect();
                        let body =
                            json!({"DeliveryStreamName": stream, "Records": recs}).to_string();
                        let (status, text) = http(
                            &url,
                            "POST",
                            &[("x-amz-target", "Firehose_20150804.PutRecordBatch")],
                            body.as_bytes(),
                        );
                        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                        assert_eq!(status, 200, "{text}");
                        let responses = v["RequestResponses"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        let mut retry = Vec::new();
                        for (r, resp) in pending.drain(..).zip(responses) {
                            if resp["RecordId"].is_string() {
                                acked.lock().expect("lock").insert(r);
                            } else {
                                assert_eq!(resp["ErrorMessage"], json!("Slow down."), "{resp}");
                                throttled.fetch_add(1, Ordering::Relaxed);
                                retry.push(r);
                            }
                        }
                        pending = retry;
                        let pause = if pending.is_empty() { 10 } else { 200 };
                        std::thread::sleep(Duration::from_millis(pause));
                    }
                })
            })
            .collect();
        Producers {
            stop,
            acked,
            throttled,
            threads,
        }
    }

    /// Records acknowledged so far.
    pub fn acked_count(&self) -> usize {
        self.acked.lock().expect("lock").len()
    }

    pub fn finish(self) -> (BTreeSet<String>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("producer");
        }
        let acked = self.acked.lock().expect("lock").clone();
        (acked, self.throttled.load(Ordering::Relaxed))
    }
}
