//! Fault-injecting HTTP proxies. `FaultProxy`, in front of a Kinesis server: no local server
//! enforces Kinesis limits, so this one answers some GetRecords calls with
//! ProvisionedThroughputExceeded or ExpiredIterator (as AWS would) and records when every
//! GetRecords call came. Everything else is forwarded unchanged to the real server.
//! `LostAnswerProxy`, in front of an S3 server: the answer to a chosen request is lost after the
//! server acted on it. `ErrorProxy`, in front of S3, Kinesis or DynamoDB: the first requests that
//! match a needle are answered 500 in the protocol's own shape (S3's XML error document,
//! awsJson's `__type`), without reaching the server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub struct FaultProxy {
    pub endpoint: String,
    pub get_records_at: Arc<Mutex<Vec<Instant>>>,
    pub injected: Arc<AtomicU64>,
}

impl FaultProxy {
    /// Every `throttle_every`-th GetRecords is throttled, every `expire_every`-th expired.
    pub fn start(upstream: &str, throttle_every: u64, expire_every: u64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let upstream = upstream.trim_start_matches("http://").to_string();
        let get_records_at: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let injected = Arc::new(AtomicU64::new(0));
        let count = Arc::new(AtomicU64::new(0));
        let (times, inj) = (get_records_at.clone(), injected.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (up, times, inj, count) =
                    (upstream.clone(), times.clone(), inj.clone(), count.clone());
                std::thread::spawn(move || {
                    let _ = serve(
                        client,
                        &up,
                        &times,
                        &inj,
                        &count,
                        throttle_every,
                        expire_every,
                    );
                });
            }
        });
        FaultProxy {
            endpoint,
            get_records_at,
            injected,
        }
    }
}

fn read_request(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let end = line == "\r\n";
        head.push_str(&line);
        if end {
            break;
        }
    }
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(Some((head, body)))
}

fn serve(
    client: TcpStream,
    upstream: &str,
    times: &Mutex<Vec<Instant>>,
    injected: &AtomicU64,
    count: &AtomicU64,
    throttle_every: u64,
    expire_every: u64,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    while let Some((head, body)) = read_request(&mut reader)? {
        if head
            .to_ascii_lowercase()
            .contains("x-amz-target: kinesis_20131202.getrecords")
        {
            times.lock().expect("lock").push(Instant::now());
            let n = count.fetch_add(1, Ordering::Relaxed) + 1;
            let fault = if n.is_multiple_of(throttle_every) {
                Some((
                    "ProvisionedThroughputExceededException",
                    "Rate exceeded for shard",
                ))
            } else if n.is_multiple_of(expire_every) {
                Some(("ExpiredIteratorException", "Iterator expired"))
            } else {
                None
            };
            if let Some((kind, message)) = fault {
                injected.fetch_add(1, Ordering::Relaxed);
                let body = format!("{{\"__type\":\"{kind}\",\"message\":\"{message}\"}}");
                let resp = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.1\r\nx-amzn-errortype: {kind}\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                client.write_all(resp.as_bytes())?;
                continue;
            }
        }
        let mut up = TcpStream::connect(upstream)?;
        let head = head.replacen("\r\n\r\n", "\r\n", 1);
        let head: String = head
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("connection:") && !l.is_empty())
            .map(|l| format!("{l}\r\n"))
            .collect();
        up.write_all(head.as_bytes())?;
        up.write_all(b"connection: close\r\n\r\n")?;
        up.write_all(&body)?;
        let mut resp = Vec::new();
        up.read_to_end(&mut resp)?;
        client.write_all(&resp)?;
    }
    Ok(())
}

/// A proxy in front of an S3 server that forwards every request and, for the first `times`
/// requests whose head contains both `method` and `needle` (e.g. `POST ` and `uploadId=`:
/// CompleteMultipartUpload), holds the server's answer: the request took effect, the client
/// never hears so (a network failure between the two).
pub struct LostAnswerProxy {
    pub endpoint: String,
    held: Arc<AtomicU64>,
}

impl LostAnswerProxy {
    pub fn start(upstream: &str, method: &'static str, needle: &'static str, times: u64) -> Self {
        Self::start_with(upstream, method, needle, times, false)
    }

    /// The same, the connection closed at once instead of held silent (a reset after the
    /// request took effect: the client's SDK retries it at once).
    pub fn cutting(upstream: &str, method: &'static str, needle: &'static str, times: u64) -> Self {
        Self::start_with(upstream, method, needle, times, true)
    }

    fn start_with(
        upstream: &str,
        method: &'static str,
        needle: &'static str,
        times: u64,
        cut: bool,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let upstream = upstream.trim_start_matches("http://").to_string();
        let held = Arc::new(AtomicU64::new(0));
        let h = held.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (up, h) = (upstream.clone(), h.clone());
                std::thread::spawn(move || {
                    let _ = forward_holding(client, &up, &h, (method, needle, times), cut);
                });
            }
        });
        LostAnswerProxy { endpoint, held }
    }

    /// How many answers were held.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }
}

fn forward_holding(
    client: TcpStream,
    upstream: &str,
    held: &AtomicU64,
    (method, needle, times): (&str, &str, u64),
    cut: bool,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    while let Some((head, body)) = read_request(&mut reader)? {
        let request_line = head.lines().next().unwrap_or_default().to_string();
        let resp = round_trip(upstream, &head, &body)?;
        if request_line.starts_with(method)
            && request_line.contains(needle)
            && held.load(Ordering::Relaxed) < times
        {
            held.fetch_add(1, Ordering::Relaxed);
            if cut {
                return Ok(());
            }
            // Never answered: the client's connection stays open and silent.
            std::thread::sleep(std::time::Duration::from_secs(600));
            return Ok(());
        }
        client.write_all(&resp)?;
    }
    Ok(())
}

pub struct ErrorProxy {
    pub endpoint: String,
    answered: Arc<Mutex<Vec<u64>>>,
}

impl ErrorProxy {
    /// For each (needle, n): the first n requests whose head (request line and headers, lower
    /// case) contains the needle get a 500; everything else is forwarded. Needles: `"head /"`,
    /// `"put /"` for S3; `"kinesis_20131202.describestreamsummary"`, `"dynamodb_20120810."`.
    pub fn start(upstream: &str, faults: &'static [(&'static str, u64)]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let upstream = upstream.trim_start_matches("http://").to_string();
        let answered = Arc::new(Mutex::new(vec![0; faults.len()]));
        let a = answered.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (up, a) = (upstream.clone(), a.clone());
                std::thread::spawn(move || {
                    let _ = forward_failing(client, &up, &a, faults);
                });
            }
        });
        ErrorProxy { endpoint, answered }
    }

    /// How many requests of each needle got the 500.
    pub fn answered(&self) -> Vec<u64> {
        self.answered.lock().expect("lock").clone()
    }
}

fn forward_failing(
    client: TcpStream,
    upstream: &str,
    answered: &Mutex<Vec<u64>>,
    faults: &[(&str, u64)],
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    while let Some((head, body)) = read_request(&mut reader)? {
        let lower = head.to_ascii_lowercase();
        let fault = {
            let mut counts = answered.lock().expect("lock");
            faults
                .iter()
                .position(|(needle, _)| lower.contains(needle))
                .filter(|&i| counts[i] < faults[i].1)
                .inspect(|&i| counts[i] += 1)
        };
        if fault.is_some() {
            client.write_all(internal_error(&lower).as_bytes())?;
            continue;
        }
        let resp = round_trip(upstream, &head, &body)?;
        client.write_all(&resp)?;
    }
    Ok(())
}

/// A 500 as the request's protocol words it: awsJson (an `x-amz-target` header) with
/// `__type`, S3 with its XML error document (none for a HEAD: S3 sends only the status).
fn internal_error(lower_head: &str) -> String {
    let (content_type, body) = if lower_head.contains("x-amz-target:") {
        let json = if lower_head.contains("dynamodb_") {
            "application/x-amz-json-1.0"
        } else {
            "application/x-amz-json-1.1"
        };
        let kind = if lower_head.contains("dynamodb_") {
            "com.amazonaws.dynamodb.v20120810#InternalServerError"
        } else {
            "InternalFailure"
        };
        (
            json,
            format!(r#"{{"__type":"{kind}","message":"Internal service error"}}"#),
        )
    } else if lower_head.starts_with("head ") {
        ("application/xml", String::new())
    } else {
        ("application/xml", "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>".to_string())
    };
    format!(
        "HTTP/1.1 500 Internal Server Error\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// One request to `upstream` on a fresh connection (`connection: close`); the whole answer.
fn round_trip(upstream: &str, head: &str, body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(upstream)?;
    let head: String = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:") && !l.is_empty())
        .map(|l| format!("{l}\r\n"))
        .collect();
    up.write_all(head.as_bytes())?;
    up.write_all(b"connection: close\r\n\r\n")?;
    up.write_all(body)?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp)?;
    Ok(resp)
}
