//! Load generator for bench/load.sh: PutRecordBatch calls of N x SIZE-byte JSON records over
//! several keep-alive connections, for a fixed time; prints records/s, MB/s, request latency
//! percentiles, and the speed of gzip (the level firehosed uses) on the same records on one
//! core: the ceiling a single GZIP destination can approach.
//!
//! usage: loadgen URL STREAM [--connections 4] [--seconds 20] [--records 500] [--size 1024]
//!                           [--pid PID]

use std::io::Write;
use std::time::{Duration, Instant};

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Args {
    url: String,
    stream: String,
    connections: usize,
    seconds: u64,
    records: usize,
    size: usize,
    pid: Option<u32>,
}

fn args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let url = it.next().ok_or("usage: loadgen URL STREAM [options]")?;
    let stream = it.next().ok_or("usage: loadgen URL STREAM [options]")?;
    let mut a = Args {
        url,
        stream,
        connections: 4,
        seconds: 20,
        records: 500,
        size: 1024,
        pid: None,
    };
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let n: u64 = v
            .parse()
            .map_err(|_| format!("{flag}: not a number: {v}"))?;
        match flag.as_str() {
            "--connections" => a.connections = n as usize,
            "--seconds" => a.seconds = n,
            "--records" => a.records = n as usize,
            "--size" => a.size = n as usize,
            "--pid" => a.pid = Some(n as u32),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

#[path = "../benches/common/records.rs"]
mod records;
use records::json_records as records;

fn request_body(stream: &str, recs: &[Vec<u8>]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let items: Vec<String> = recs
        .iter()
        .map(|r| format!("{{\"Data\":\"{}\"}}", b64.encode(r)))
        .collect();
    format!(
        "{{\"DeliveryStreamName\":\"{stream}\",\"Records\":[{}]}}",
        items.join(",")
    )
    .into_bytes()
}

async fn connection(
    host: String,
    bodies: std::sync::Arc<Vec<Vec<u8>>>,
    deadline: Instant,
    offset: usize,
) -> Result<Vec<Duration>, String> {
    let mut conn = BufReader::new(TcpStream::connect(&host).await.map_err(|e| e.to_string())?);
    let mut latencies = Vec::new();
    let mut i = offset;
    while Instant::now() < deadline {
        let body = &bodies[i % bodies.len()];
        i += 1;
        let head = format!(
            "POST / HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/x-amz-json-1.1\r\nx-amz-target: Firehose_20150804.PutRecordBatch\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let start = Instant::now();
        conn.get_mut()
            .write_all(head.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        conn.get_mut()
            .write_all(body)
            .await
            .map_err(|e| e.to_string())?;
        let mut status = String::new();
        conn.read_line(&mut status)
            .await
            .map_err(|e| e.to_string())?;
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            conn.read_line(&mut line).await.map_err(|e| e.to_string())?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut resp = vec![0u8; len];
        conn.read_exact(&mut resp)
            .await
            .map_err(|e| e.to_string())?;
        let failed = serde_json::from_slice::<serde_json::Value>(&resp)
            .ok()
            .and_then(|v| v["FailedPutCount"].as_u64());
        if !status.contains(" 200 ") || failed != Some(0) {
            let text = String::from_utf8_lossy(&resp[..resp.len().min(200)]).into_owned();
            return Err(format!("request failed: {} {text}", status.trim()));
        }
        latencies.push(start.elapsed());
    }
    Ok(latencies)
}

/// POST /v1/streams/STREAM/flush: returns once everything acknowledged is written.
async fn flush(host: &str, stream: &str) -> Result<(), String> {
    let mut conn = TcpStream::connect(host).await.map_err(|e| e.to_string())?;
    let req = format!(
        "POST /v1/streams/{stream}/flush HTTP/1.1\r\nhost: {host}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    conn.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut resp = Vec::new();
    conn.read_to_end(&mut resp)
        .await
        .map_err(|e| e.to_string())?;
    if resp.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&resp).into_owned())
    }
}

fn peak_rss_mib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024)
}

fn gzip_ceiling(recs: &[Vec<u8>]) -> f64 {
    let data: Vec<u8> = recs.concat();
    let start = Instant::now();
    let mut rounds = 0usize;
    while start.elapsed() < Duration::from_secs(3) {
        let mut enc = flate2::write::GzEncoder::new(
            std::io::sink(),
            flate2::Compression::new(firehosed::encode::GZIP_LEVEL),
        );
        enc.write_all(&data).expect("sink never fails");
        enc.finish().expect("sink never fails");
        rounds += 1;
    }
    (rounds * data.len()) as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let host = a
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let sets: Vec<Vec<Vec<u8>>> = (0..16).map(|s| records(a.records, a.size, s)).collect();
    let bodies: std::sync::Arc<Vec<Vec<u8>>> =
        std::sync::Arc::new(sets.iter().map(|r| request_body(&a.stream, r)).collect());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let start = Instant::now();
    let deadline = start + Duration::from_secs(a.seconds);
    let results = rt.block_on(async {
        let tasks: Vec<_> = (0..a.connections)
            .map(|c| tokio::spawn(connection(host.clone(), bodies.clone(), deadline, c * 3)))
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.push(t.await.map_err(|e| e.to_string()).and_then(|r| r));
        }
        all
    });
    let elapsed = start.elapsed().as_secs_f64();
    let flush_start = Instant::now();
    let flushed = rt.block_on(flush(&host, &a.stream));
    let flush_s = flush_start.elapsed().as_secs_f64();
    if let Err(e) = flushed {
        eprintln!("loadgen: flush failed: {e}");
        std::process::exit(1);
    }
    let mut latencies = Vec::new();
    for r in results {
        match r {
            Ok(l) => latencies.extend(l),
            Err(e) => {
                eprintln!("loadgen: {e}");
                std::process::exit(1);
            }
        }
    }
    latencies.sort();
    let requests = latencies.len();
    let recs = requests * a.records;
    let mb = (recs * a.size) as f64 / 1e6;
    let pct = |p: f64| {
        latencies
            .get(((requests as f64 * p) as usize).min(requests.saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    let rss = a
        .pid
        .and_then(peak_rss_mib)
        .map(|m| m.to_string())
        .unwrap_or_else(|| "-".into());
    let ceiling = gzip_ceiling(&sets[0]);
    let delivered = mb / (elapsed + flush_s);
    println!(
        "connections={} load_seconds={elapsed:.1} requests={requests} records={recs} final_flush_seconds={flush_s:.1}",
        a.connections
    );
    println!(
        "acknowledged: records_per_s={:.0} MB_per_s={:.1} p50_ms={:.1} p99_ms={:.1}",
        recs as f64 / elapsed,
        mb / elapsed,
        pct(0.50),
        pct(0.99)
    );
    println!(
        "delivered (load + final flush): records_per_s={:.0} MB_per_s={delivered:.1} peak_rss_MiB={rss}",
        recs as f64 / (elapsed + flush_s)
    );
    println!(
        "ceiling: gzip level {} on one core, same records: MB_per_s={ceiling:.1}; delivered/ceiling={:.0}%",
        firehosed::encode::GZIP_LEVEL,
        100.0 * delivered / ceiling
    );
}
