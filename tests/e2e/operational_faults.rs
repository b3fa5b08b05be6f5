//! Faults an operator's VM meets, on the real binary: a client stalled mid-request when the
//! service stops (the drain still delivers everything, at once), and a full disk under
//! state_dir, filled by the spool itself or by another process (the daemon keeps running,
//! answers "Slow down.", and resumes by itself when space returns; nothing acknowledged is lost).

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::producers::Producers;
use crate::support::tmpfs::Tmpfs;
use crate::support::*;
use serde_json::json;

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
    let mut plain_cut = TcpStream::connect(&addr).expect("connects");
    plain_cut
        .write_all(
            b"POST /v1/streams/s/records HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab\n",
        )
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

/// Lets the load run `more`, stops the producers, flushes, and checks the daemon never stopped;
/// what was acknowledged, how many refusals, and the log.
fn settle(
    d: &mut Daemon,
    producers: Producers,
    more: Duration,
) -> (std::collections::BTreeSet<String>, u64, String) {
    std::thread::sleep(more);
    let (acked, refused) = producers.finish();
    d.flush("d");
    let log = d.logs();
    assert!(
        !log.contains("stopping:"),
        "the daemon kept running:\n{log}"
    );
    (acked, refused, log)
}

/// The daemon's configuration for the disk tests: state on `state` (a small tmpfs), objects
/// to `target`, uncompressed 2 MiB objects (staging takes as much disk as the spool does).
fn disk_config(state: &std::path::Path, target: &str, reserve_mib: u64) -> String {
    format!(
        "listen: 127.0.0.1:0
state_dir: '{}/state'
relax_aws_limits: true
spool: {{segment_size_mib: 1, disk_reserve_mib: {reserve_mib}}}
delivery_streams:
  - name: d
    source: {{direct_put: {{}}}}
    processing: {{append_delimiter_to_record: true}}
    destinations:
      - {target}
        buffering: {{size_mib: 2, interval_seconds: 1}}
",
        state.display()
    )
}

/// The spool must never take the disk that delivery needs: with state_dir on a 40 MiB
/// filesystem and the destination down (nothing drains), producers are slowed down while the
/// reserve is still free, the daemon keeps running, and when S3 is back every acknowledged
/// record is delivered. (Before the reserve, the spool filled the disk, every seal failed with
/// ENOSPC, and the daemon exited 1 at every start.)
#[test]
fn the_spool_leaves_room_for_the_delivery_that_drains_it() {
    let Some(fs) = Tmpfs::mount(40) else { return };
    let mut s3 = S3sFs::start();
    s3.create_bucket("drain");
    let target = format!(
        "s3: {{bucket: drain, endpoint_url: '{}'}}\n        compression: UNCOMPRESSED",
        s3.endpoint
    );
    let cfg = disk_config(fs.path(), &target, 12).replace(
        "relax_aws_limits: true",
        "relax_aws_limits: true\naws: {force_path_style: true}",
    );
    let mut d = Daemon::start(&cfg);
    s3.stop();
    let producers = Producers::start(&d.url, "d", 2);
    let outage = Instant::now();
    let mut least_free = u64::MAX;
    while outage.elapsed() < Duration::from_secs(8) {
        least_free = least_free.min(fs.free());
        std::thread::sleep(Duration::from_millis(100));
    }
    let refused_in_outage = producers
        .throttled
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(refused_in_outage > 0, "producers were slowed down");
    assert!(
        least_free > 4 * 1024 * 1024,
        "the spool left room on the disk ({least_free} bytes at the least)"
    );
    s3.resume();
    let (acked, refused, _) = settle(&mut d, producers, Duration::from_secs(3));
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for lines in dump_lines(&s3.endpoint, "drain", "UNCOMPRESSED").values() {
        for l in lines {
            *seen.entry(l.clone()).or_default() += 1;
        }
    }
    let missing = acked.iter().filter(|r| !seen.contains_key(*r)).count();
    assert_eq!(missing, 0, "of {} acknowledged", acked.len());
    eprintln!(
        "spool on a full disk: {} acknowledged, {refused} refused with Slow down, {} delivered, least free {} KiB",
        acked.len(),
        seen.len(),
        least_free / 1024
    );
    let _ = d.terminate(Duration::from_secs(30));
}

/// Another process fills the disk under state_dir: the daemon keeps running, producers get
/// "Slow down." (never InternalFailure), the condition is logged a few times, not per request,
/// and when the space is back delivery resumes by itself and every acknowledged record is
/// delivered. (Before, the daemon exited 1 within 60 ms.)
#[test]
fn a_disk_filled_by_another_process_slows_producers_down_until_space_returns() {
    let Some(fs) = Tmpfs::mount(64) else { return };
    let out = tempfile::tempdir().expect("tempdir");
    let target = format!("directory: '{}'", out.path().display());
    let mut d = Daemon::start(&disk_config(fs.path(), &target, 8));
    let producers = Producers::start(&d.url, "d", 2);
    std::thread::sleep(Duration::from_secs(2));
    let before = producers.acked_count();
    assert!(before > 0, "records flowed before the disk filled");
    let filler = fs.fill();
    let full = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let full_for = full.elapsed();
    let during = producers.acked_count();
    let refused_full = producers
        .throttled
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        refused_full > 0,
        "producers were slowed down on the full disk"
    );
    std::fs::remove_file(&filler).expect("space returns");
    let freed = Instant::now();
    while producers.acked_count() <= during {
        assert!(
            freed.elapsed() < Duration::from_secs(30),
            "acknowledgements did not resume after the space returned"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let resumed_after = freed.elapsed();
    let (acked, refused, log) = settle(&mut d, producers, Duration::from_secs(2));
    let warnings = log.matches("the disk under state_dir").count();
    assert!(
        (1..=6).contains(&warnings),
        "the full disk is logged once per interval, not per request ({warnings} lines)"
    );
    let lines = lines_under(out.path());
    let seen: std::collections::BTreeSet<&String> = lines.iter().collect();
    let missing = acked.iter().filter(|r| !seen.contains(r)).count();
    assert_eq!(missing, 0, "of {} acknowledged", acked.len());
    eprintln!(
        "disk filled by another process for {:.1} s: {} acknowledged ({} before, {} while full), {refused} refused with Slow down, {} delivered, resumed {} ms after the space returned",
        full_for.as_secs_f64(),
        acked.len(),
        before,
        during - before,
        lines.len(),
        resumed_after.as_millis()
    );
    let _ = d.terminate(Duration::from_secs(30));
}
