//! A fault-injecting HTTP/1.1 proxy for the chaos runs (issue 37) and the tests that need faults:
//! put it in front of S3, Kinesis, DynamoDB or an HTTP endpoint, and each request, by a seeded
//! random schedule, passes, or gets one fault in the shape of the protocol it speaks:
//!
//! - `error`: 500 (S3: `InternalError` XML; awsJson: `InternalFailure` / DynamoDB's
//!   `InternalServerError`; anything else: a plain 500);
//! - `slowdown`: S3's 503 `SlowDown`, awsJson's 400 `ThrottlingException` (Kinesis data calls:
//!   `ProvisionedThroughputExceededException`; DynamoDB: its own), anything else a 429;
//! - `reset-before`: the connection reset before the request is forwarded (it did not happen);
//! - `reset-after`: forwarded, the answer read, then the connection reset (it happened; the
//!   client does not know);
//! - `delay`: forwarded after `--delay-ms`;
//! - `truncate`: the answer cut in half and the connection closed.
//!
//! usage: chaos_proxy --upstream http://127.0.0.1:PORT [--listen 127.0.0.1:0] [--seed N]
//!                    [--rate 0.05] [--kinds error,slowdown,reset-before,reset-after,delay,truncate]
//!                    [--delay-ms 1500]
//!
//! Prints `chaos-proxy listening on http://ADDR seed N` once bound. The n-th request the proxy
//! reads gets the n-th draw of the seed's generator: the same seed gives the same faults to the
//! same request numbers (which request is n-th depends on the clients' timing). Control, on the
//! proxy's own address: `GET /__chaos/stats` (requests and faults by kind, JSON), `POST
//! /__chaos/rate?value=R` (a burst: the fault rate from now on).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};

const KINDS: [&str; 6] = [
    "error",
    "slowdown",
    "reset-before",
    "reset-after",
    "delay",
    "truncate",
];

struct Options {
    listen: String,
    upstream: String,
    seed: u64,
    rate: f64,
    kinds: Vec<&'static str>,
    delay: Duration,
}

/// What the proxy decided and did, shared by its connections.
struct Chaos {
    rng: Mutex<rand::rngs::StdRng>,
    /// The fault rate in millionths (changed by `/__chaos/rate`).
    rate_ppm: AtomicU64,
    kinds: Vec<&'static str>,
    delay: Duration,
    upstream: String,
    requests: AtomicU64,
    faults: Mutex<BTreeMap<&'static str, u64>>,
}

fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("chaos_proxy: {e}");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(&o.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("chaos_proxy: cannot listen on {}: {e}", o.listen);
            std::process::exit(1);
        }
    };
    let addr = listener
        .local_addr()
        .map_or_else(|_| o.listen.clone(), |a| a.to_string());
    let chaos = Arc::new(Chaos {
        rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(o.seed)),
        rate_ppm: AtomicU64::new((o.rate * 1e6) as u64),
        kinds: o.kinds,
        delay: o.delay,
        upstream: o
            .upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string(),
        requests: AtomicU64::new(0),
        faults: Mutex::new(BTreeMap::new()),
    });
    println!("chaos-proxy listening on http://{addr} seed {}", o.seed);
    let _ = std::io::stdout().flush();
    for client in listener.incoming().flatten() {
        let chaos = chaos.clone();
        std::thread::spawn(move || {
            let _ = serve(client, &chaos);
        });
    }
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        listen: "127.0.0.1:0".into(),
        upstream: String::new(),
        seed: 1,
        rate: 0.05,
        kinds: KINDS.to_vec(),
        delay: Duration::from_millis(1500),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args
            .get(i + 1)
            .ok_or(format!("{} needs a value", args[i]))?;
        match args[i].as_str() {
            "--listen" => o.listen.clone_from(value),
            "--upstream" => o.upstream.clone_from(value),
            "--seed" => o.seed = value.parse().map_err(|e| format!("--seed: {e}"))?,
            "--rate" => o.rate = value.parse().map_err(|e| format!("--rate: {e}"))?,
            "--delay-ms" => {
                o.delay =
                    Duration::from_millis(value.parse().map_err(|e| format!("--delay-ms: {e}"))?);
            }
            "--kinds" => {
                o.kinds = value
                    .split(',')
                    .map(|k| {
                        KINDS
                            .iter()
                            .find(|x| **x == k)
                            .copied()
                            .ok_or(format!("unknown kind {k}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            other => return Err(format!("unknown argument {other}")),
        }
        i += 2;
    }
    if o.upstream.is_empty() {
        return Err("--upstream is required".into());
    }
    Ok(o)
}

/// A request as read: its head (request line and headers) and body.
struct Request {
    head: String,
    body: Vec<u8>,
}

fn read_request(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let end = line == "\r\n" || line == "\n";
        head.push_str(&line);
        if end {
            break;
        }
    }
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if lower.contains("transfer-encoding: chunked") {
        read_chunked(r, &mut body)?;
        // Forwarded with a length instead (the upstream sees the same bytes).
        head = head
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("transfer-encoding:"))
            .map(|l| format!("{l}\r\n"))
            .collect::<String>()
            .trim_end()
            .to_string()
            + &format!("\r\ncontent-length: {}\r\n\r\n", body.len());
    } else {
        let len = lower
            .lines()
            .find_map(|l| {
                l.strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0usize);
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    }
    Ok(Some(Request { head, body }))
}

fn read_chunked(r: &mut BufReader<TcpStream>, body: &mut Vec<u8>) -> std::io::Result<()> {
    loop {
        let mut size = String::new();
        r.read_line(&mut size)?;
        let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        if n == 0 {
            // Trailers, then the blank line.
            loop {
                let mut line = String::new();
                if r.read_line(&mut line)? == 0 || line == "\r\n" {
                    return Ok(());
                }
            }
        }
        let start = body.len();
        body.resize(start + n, 0);
        r.read_exact(&mut body[start..])?;
        let mut crlf = [0; 2];
        r.read_exact(&mut crlf)?;
    }
}

fn serve(client: TcpStream, chaos: &Chaos) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    while let Some(req) = read_request(&mut reader)? {
        let request_line = req.head.lines().next().unwrap_or_default().to_string();
        if let Some(path) = request_line
            .split(' ')
            .nth(1)
            .filter(|p| p.starts_with("/__chaos/"))
        {
            // Answered and closed: a control call is one request.
            return client.write_all(control(chaos, path).as_bytes());
        }
        chaos.requests.fetch_add(1, Ordering::Relaxed);
        let fault = chaos.draw();
        if let Some(kind) = fault {
            *chaos
                .faults
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(kind)
                .or_default() += 1;
        }
        let lower = req.head.to_ascii_lowercase();
        match fault {
            Some("error") => client.write_all(answer(&lower, false).as_bytes())?,
            Some("slowdown") => client.write_all(answer(&lower, true).as_bytes())?,
            Some("reset-before") => return reset(client),
            Some("reset-after") => {
                let _ = round_trip(&chaos.upstream, &req);
                return reset(client);
            }
            Some("truncate") => {
                let resp = round_trip(&chaos.upstream, &req)?;
                client.write_all(&resp[..resp.len() / 2])?;
                return client.shutdown(Shutdown::Both);
            }
            Some(_delay) => {
                std::thread::sleep(chaos.delay);
                client.write_all(&round_trip(&chaos.upstream, &req)?)?;
            }
            None => client.write_all(&round_trip(&chaos.upstream, &req)?)?,
        }
        if lower.contains("\r\nconnection: close") {
            return Ok(());
        }
    }
    Ok(())
}

impl Chaos {
    /// The next draw: a fault (by kind, uniformly) with the current rate, else none.
    fn draw(&self) -> Option<&'static str> {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let roll: f64 = rng.random();
        let pick = rng.random_range(0..self.kinds.len().max(1));
        let rate = self.rate_ppm.load(Ordering::Relaxed) as f64 / 1e6;
        (roll < rate)
            .then(|| self.kinds.get(pick).copied())
            .flatten()
    }
}

fn control(chaos: &Chaos, path: &str) -> String {
    let body = if let Some(v) = path.strip_prefix("/__chaos/rate?value=") {
        match v.parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => {
                chaos.rate_ppm.store((r * 1e6) as u64, Ordering::Relaxed);
                format!("{{\"rate\":{r}}}")
            }
            _ => "{\"error\":\"value must be 0..=1\"}".to_string(),
        }
    } else {
        let faults = chaos.faults.lock().unwrap_or_else(|p| p.into_inner());
        let by_kind: Vec<String> = faults.iter().map(|(k, n)| format!("\"{k}\":{n}")).collect();
        format!(
            "{{\"requests\":{},\"faults\":{{{}}}}}",
            chaos.requests.load(Ordering::Relaxed),
            by_kind.join(",")
        )
    };
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A 500 or a throttling answer in the shape of the request's protocol.
fn answer(lower_head: &str, throttle: bool) -> String {
    let target = lower_head
        .lines()
        .find_map(|l| l.strip_prefix("x-amz-target:"))
        .map(str::trim);
    let (status, content_type, body) = match target {
        Some(t) => {
            let dynamo = t.starts_with("dynamodb_");
            let json = if dynamo {
                "application/x-amz-json-1.0"
            } else {
                "application/x-amz-json-1.1"
            };
            let kind = match (throttle, dynamo) {
                (false, true) => "com.amazonaws.dynamodb.v20120810#InternalServerError",
                (false, false) => "InternalFailure",
                (true, true) => {
                    "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
                }
                (true, false)
                    if t.ends_with("getrecords")
                        || t.ends_with("putrecords")
                        || t.ends_with("putrecord") =>
                {
                    "ProvisionedThroughputExceededException"
                }
                (true, false) => "ThrottlingException",
            };
            let status = if throttle {
                "400 Bad Request"
            } else {
                "500 Internal Server Error"
            };
            (
                status,
                json,
                format!(r#"{{"__type":"{kind}","message":"chaos"}}"#),
            )
        }
        // S3: SigV4-signed with a payload hash; an HTTP endpoint's requests say x-amz-firehose-.
        None if lower_head.contains("x-amz-content-sha256:")
            && !lower_head.contains("x-amz-firehose-") =>
        {
            let (status, code) = if throttle {
                ("503 Slow Down", "SlowDown")
            } else {
                ("500 Internal Server Error", "InternalError")
            };
            let xml = if lower_head.starts_with("head ") {
                String::new()
            } else {
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>chaos</Message></Error>"
                )
            };
            (status, "application/xml", xml)
        }
        None => {
            let status = if throttle {
                "429 Too Many Requests"
            } else {
                "500 Internal Server Error"
            };
            (status, "application/json", "{}".to_string())
        }
    };
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Closes with a TCP reset (SO_LINGER 0): the client sees "connection reset", not an answer.
fn reset(client: TcpStream) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a pointer to a linger struct of the size given.
    let done = unsafe {
        libc::setsockopt(
            client.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if done != 0 {
        return Err(std::io::Error::last_os_error());
    }
    drop(client);
    Ok(())
}

/// One request to the upstream on a fresh connection (`connection: close`); the whole answer.
fn round_trip(upstream: &str, req: &Request) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(upstream)?;
    let head: String = req
        .head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:") && !l.is_empty())
        .map(|l| format!("{l}\r\n"))
        .collect();
    up.write_all(head.as_bytes())?;
    up.write_all(b"connection: close\r\n\r\n")?;
    up.write_all(&req.body)?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp)?;
    Ok(resp)
}
