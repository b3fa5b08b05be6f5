//! Load generator for bench/load.sh: PutRecordBatch calls of N x SIZE-byte JSON records over
//! several keep-alive connections, for a fixed time; prints records/s, MB/s, request latency
//! percentiles, and the speed of gzip (the level firehosed uses) on the same records on one
//! core: the ceiling a single GZIP destination can approach.
//!
//! usage: loadgen URL STREAM [--connections 4] [--seconds 20] [--records 500] [--size 1024]
//!                           [--pid PID] [--sigv4 KEY_ID:SECRET] [--ca CA.pem]
//!                           [--updates PCT --deletes PCT]
//!
//! `--updates` and `--deletes` give that share of the records an `"op"` of `update` or
//! `delete` (the rest `insert`), keyed by their `event_id`, which repeats every 16 requests'
//! worth of records: a change stream for an Iceberg table with unique keys.
//! An `https://` URL speaks TLS (rustls, trusting `--ca`); `--sigv4` signs every request as the
//! AWS SDKs do (the body's SHA-256 computed once per distinct body, as a client that signs a
//! body it built once would; the server hashes every body it verifies).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Args {
    url: String,
    stream: String,
    connections: usize,
    seconds: u64,
    records: usize,
    size: usize,
    pid: Option<u32>,
    sigv4: Option<(String, String)>,
    ca: Option<String>,
    /// Percent of records that are updates and deletes (`op` field), or none.
    ops: Option<(u64, u64)>,
}

/// A connection: TCP, or TLS over it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How to reach the server.
struct Target {
    host: String,
    tls: Option<tokio_rustls::TlsConnector>,
    sigv4: Option<(String, String)>,
}

impl Target {
    async fn connect(&self) -> Result<Box<dyn Io>, String> {
        let tcp = TcpStream::connect(&self.host)
            .await
            .map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let ip = self.host.rsplit_once(':').map_or(&*self.host, |(h, _)| h);
        let name =
            rustls::pki_types::ServerName::try_from(ip.to_string()).map_err(|e| e.to_string())?;
        let s = tls.connect(name, tcp).await.map_err(|e| e.to_string())?;
        Ok(Box::new(s))
    }

    /// The signing headers of a request (SigV4 as the AWS SDKs sign: content-type, host,
    /// x-amz-content-sha256, x-amz-date, x-amz-target).
    fn sign(&self, path: &str, target: &str, body_hash: &str) -> String {
        let Some((key_id, secret)) = &self.sigv4 else {
            return String::new();
        };
        let now = chrono::Utc::now();
        let date = now.format("%Y%m%d").to_string();
        let stamp = now.format("%Y%m%dT%H%M%SZ").to_string();
        let signed = "content-type;host;x-amz-content-sha256;x-amz-date;x-amz-target";
        let canonical = format!(
            "POST\n{path}\n\ncontent-type:application/x-amz-json-1.1\nhost:{}\nx-amz-content-sha256:{body_hash}\nx-amz-date:{stamp}\nx-amz-target:{target}\n\n{signed}\n{body_hash}",
            self.host
        );
        let scope = format!("{date}/us-east-1/firehose/aws4_request");
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let key = aws_sigv4::sign::v4::generate_signing_key(
            secret,
            std::time::SystemTime::now(),
            "us-east-1",
            "firehose",
        );
        let signature = aws_sigv4::sign::v4::calculate_signature(key, to_sign.as_bytes());
        format!(
            "x-amz-content-sha256: {body_hash}\r\nx-amz-date: {stamp}\r\nauthorization: AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={signed}, Signature={signature}\r\n"
        )
    }
}

fn tls_connector(ca: &str) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| e.to_string())? {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
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
        sigv4: None,
        ca: None,
        ops: None,
    };
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sigv4" => {
                let (k, s) = v.split_once(':').ok_or("--sigv4 KEY_ID:SECRET")?;
                a.sigv4 = Some((k.to_string(), s.to_string()));
                continue;
            }
            "--ca" => {
                a.ca = Some(v);
                continue;
            }
            _ => {}
        }
        let n: u64 = v
            .parse()
            .map_err(|_| format!("{flag}: not a number: {v}"))?;
        match flag.as_str() {
            "--connections" => a.connections = n as usize,
            "--seconds" => a.seconds = n,
            "--records" => a.records = n as usize,
            "--size" => a.size = n as usize,
            "--pid" => a.pid = Some(n as u32),
            "--updates" => a.ops = Some((n, a.ops.map_or(0, |o| o.1))),
            "--deletes" => a.ops = Some((a.ops.map_or(0, |o| o.0), n)),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

#[path = "../benches/common/records.rs"]
mod records;
use records::json_records as records;

/// The records with an `"op"` first: per 100 records, `updates` updates and `deletes`
/// deletes spread evenly, the rest inserts.
fn with_ops(records: Vec<Vec<u8>>, ops: Option<(u64, u64)>) -> Vec<Vec<u8>> {
    let Some((updates, deletes)) = ops else {
        return records;
    };
    records
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            // Spread each kind over the hundred: i * k / 100 steps once per k records.
            let at = |k: u64, i: u64| k > 0 && (i * k / 100) != ((i + 1) * k / 100);
            let i = (i % 100) as u64;
            let op = if at(deletes, i) {
                "delete"
            } else if at(updates, (i + 50) % 100) {
                "update"
            } else {
                "insert"
            };
            let mut out = format!("{{\"op\":\"{op}\",").into_bytes();
            out.extend_from_slice(&r[1..]);
            out
        })
        .collect()
}

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

/// A request body and its SHA-256 (hex).
struct Body {
    bytes: Vec<u8>,
    hash: String,
}

const TARGET: &str = "Firehose_20150804.PutRecordBatch";

async fn connection(
    target: Arc<Target>,
    bodies: Arc<Vec<Body>>,
    deadline: Instant,
    offset: usize,
) -> Result<Vec<Duration>, String> {
    let mut conn = BufReader::new(target.connect().await?);
    let mut latencies = Vec::new();
    let mut i = offset;
    while Instant::now() < deadline {
        let body = &bodies[i % bodies.len()];
        i += 1;
        let start = Instant::now();
        let head = format!(
            "POST / HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-amz-json-1.1\r\nx-amz-target: {TARGET}\r\n{}content-length: {}\r\n\r\n",
            target.host,
            target.sign("/", TARGET, &body.hash),
            body.bytes.len()
        );
        let body = &body.bytes;
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
async fn flush(target: &Target, stream: &str) -> Result<(), String> {
    let mut conn = target.connect().await?;
    let path = format!("/v1/streams/{stream}/flush");
    let empty = hex::encode(Sha256::digest(b""));
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-amz-json-1.1\r\nx-amz-target: {TARGET}\r\n{}content-length: 0\r\nconnection: close\r\n\r\n",
        target.host,
        target.sign(&path, TARGET, &empty)
    );
    conn.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut resp = Vec::new();
    // A TLS peer may close without close_notify once it has answered.
    let _ = conn.read_to_end(&mut resp).await;
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
    let tls = a.url.starts_with("https://");
    let host = a
        .url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    let tls = match (tls, &a.ca) {
        (false, _) => None,
        (true, Some(ca)) => match tls_connector(ca) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("loadgen: --ca {ca}: {e}");
                std::process::exit(2);
            }
        },
        (true, None) => {
            eprintln!("loadgen: an https:// URL needs --ca");
            std::process::exit(2);
        }
    };
    let target = Arc::new(Target {
        host,
        tls,
        sigv4: a.sigv4.clone(),
    });
    let sets: Vec<Vec<Vec<u8>>> = (0..16)
        .map(|s| with_ops(records(a.records, a.size, s), a.ops))
        .collect();
    let bodies: Arc<Vec<Body>> = Arc::new(
        sets.iter()
            .map(|r| {
                let bytes = request_body(&a.stream, r);
                let hash = hex::encode(Sha256::digest(&bytes));
                Body { bytes, hash }
            })
            .collect(),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let start = Instant::now();
    let deadline = start + Duration::from_secs(a.seconds);
    let results = rt.block_on(async {
        let tasks: Vec<_> = (0..a.connections)
            .map(|c| tokio::spawn(connection(target.clone(), bodies.clone(), deadline, c * 3)))
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.push(t.await.map_err(|e| e.to_string()).and_then(|r| r));
        }
        all
    });
    let elapsed = start.elapsed().as_secs_f64();
    let flush_start = Instant::now();
    let flushed = rt.block_on(flush(&target, &a.stream));
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
