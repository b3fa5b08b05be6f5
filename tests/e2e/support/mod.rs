//! End-to-end harness: the real `firehosed` binary, a real S3 server (moto, installed pinned by
//! scripts/test-tools.sh), boto3 and the AWS CLI, all on 127.0.0.1 ephemeral ports.
// Its items are `pub` for the test modules beside it, not for another crate.
#![allow(unreachable_pub)]

pub mod chaos_proxy;
pub mod daemon;
pub mod examples;
pub mod faults;
pub mod http_receiver;
pub mod iceberg;
pub mod kinesis_mock;
pub mod producers;
pub mod tmpfs;
pub mod transform;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use chaos_proxy::ChaosProxy;
pub use daemon::{Daemon, firehosed};
pub use examples::example_binary;
pub use kinesis_mock::KinesisMock;

/// The tools cache; the tests fail (not skip) when it was not installed.
pub fn tools() -> PathBuf {
    let dir = std::env::var_os("FIREHOSED_TOOLS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/firehosed-tools"))
        })
        .expect("FIREHOSED_TOOLS or HOME must be set");
    assert!(
        dir.join("venv/bin/python").exists(),
        "test tools are missing in {}: run scripts/test.sh (or scripts/test-tools.sh) first",
        dir.display()
    );
    dir
}

pub fn python() -> PathBuf {
    tools().join("venv/bin/python")
}

pub fn venv_bin(name: &str) -> PathBuf {
    tools().join("venv/bin").join(name)
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn py_script(name: &str) -> PathBuf {
    repo().join("tests/py").join(name)
}

/// Spawns a server told to bind port 0 (or a given port) and reads the port it took from what
/// it prints (`find` looks at each line of stdout and stderr); its output keeps being drained
/// so it never blocks on a full pipe. No port is picked and released first: two servers
/// started at once can never be handed the same one.
fn spawn_reporting(cmd: &mut Command, what: &str, find: fn(&str) -> Option<u16>) -> (Child, u16) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what} starts: {e}"));
    let (tx, rx) = mpsc::channel::<String>();
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx2.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                if let Some(port) = find(&line) {
                    // From here on the lines go nowhere; the threads still drain the pipes.
                    std::thread::spawn(move || for _ in rx {});
                    return (child, port);
                }
                seen.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                panic!(
                    "{what} exited ({status}) before it listened:\n{}",
                    seen.join("\n")
                );
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early: {status}\n{}", seen.join("\n"));
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not say where it listens within 30 s:\n{}",
            seen.join("\n")
        );
    }
}

/// The port of the first `http://127.0.0.1:PORT` in a line.
fn url_port(line: &str) -> Option<u16> {
    let rest = &line[line.find("http://127.0.0.1:")? + "http://127.0.0.1:".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A moto server (S3) on an ephemeral port; killed on drop.
pub struct Moto {
    child: Child,
    pub port: u16,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        Self::start_on(0)
    }

    /// A moto on a given port (to restart one where a daemon expects it), or 0 for any.
    pub fn start_on(port: u16) -> Moto {
        // werkzeug prints ` * Running on http://127.0.0.1:PORT` with the port it bound.
        let (child, port) = spawn_reporting(
            Command::new(venv_bin("moto_server")).args([
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ]),
            "moto_server",
            url_port,
        );
        Moto {
            child,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn create_bucket(&self, bucket: &str) {
        s3tool(&self.endpoint, &["create-bucket", bucket]);
    }

    /// Keys in the bucket, sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.objects(bucket)
            .into_iter()
            .map(|(key, _, _)| key)
            .collect()
    }

    /// (key, size, etag) of every object, sorted by key.
    pub fn objects(&self, bucket: &str) -> Vec<(String, u64, String)> {
        let out = s3tool(&self.endpoint, &["list", bucket]);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("list prints JSON");
        let mut objects: Vec<_> = v
            .as_array()
            .expect("a list")
            .iter()
            .map(|o| {
                (
                    o["key"].as_str().expect("key").to_string(),
                    o["size"].as_u64().expect("size"),
                    o["etag"].as_str().expect("etag").to_string(),
                )
            })
            .collect();
        objects.sort();
        objects
    }

    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        s3tool(&self.endpoint, &["get", bucket, key])
    }
}

impl Moto {
    /// SIGSTOP / SIGCONT: the server stays on its port, holding its state, but answers nothing.
    pub fn pause(&self, paused: bool) {
        let signal = if paused { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} moto");
    }

    /// The items of a DynamoDB table (tests/py/lease_tool.py), attribute values unwrapped.
    pub fn items(&self, table: &str) -> Vec<serde_json::Value> {
        let out = run_py("lease_tool.py", &self.endpoint, &["scan", table]);
        serde_json::from_slice(&out).expect("json")
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An s3s-fs server (S3 on a local folder: survives restarts) on an ephemeral port.
pub struct S3sFs {
    child: Option<Child>,
    pub port: u16,
    pub endpoint: String,
    pub root: tempfile::TempDir,
}

impl S3sFs {
    pub fn start() -> S3sFs {
        let root = tempfile::tempdir().expect("tempdir");
        let mut s = S3sFs {
            child: None,
            port: 0,
            endpoint: String::new(),
            root,
        };
        s.resume();
        s
    }

    /// (Re)starts the server on its folder, on the port it had (any port the first time).
    pub fn resume(&mut self) {
        let bin = tools().join("s3s-fs/bin/s3s-fs");
        assert!(bin.exists(), "s3s-fs is missing: run scripts/test-tools.sh");
        // It logs `server is running at http://127.0.0.1:PORT` at INFO.
        let (child, port) = spawn_reporting(
            Command::new(bin)
                .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
                .args(["--access-key", "test", "--secret-key", "test"])
                .arg(self.root.path())
                .env("RUST_LOG", "s3s_fs=info"),
            "s3s-fs",
            url_port,
        );
        self.port = port;
        self.endpoint = format!("http://127.0.0.1:{port}");
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn create_bucket(&self, bucket: &str) {
        s3tool(&self.endpoint, &["create-bucket", bucket]);
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A kinesalite server (Kinesis) on an ephemeral port.
pub struct Kinesalite {
    child: Child,
    pub endpoint: String,
}

impl Kinesalite {
    pub fn start() -> Kinesalite {
        let modules = tools().join("node/node_modules");
        assert!(
            modules.join("kinesalite").exists(),
            "kinesalite is missing: run scripts/test-tools.sh"
        );
        // tests/py/kinesalite.js prints `listening PORT` once bound.
        let (child, port) = spawn_reporting(
            Command::new("node")
                .arg(py_script("kinesalite.js"))
                .arg("0")
                .env("NODE_PATH", &modules),
            "kinesalite",
            |line| line.strip_prefix("listening ")?.trim().parse().ok(),
        );
        Kinesalite {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Runs tests/py/kinesis_tool.py against this server; returns stdout.
    pub fn tool(&self, args: &[&str]) -> Vec<u8> {
        run_py("kinesis_tool.py", &self.endpoint, args)
    }
}

impl Drop for Kinesalite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every object of a bucket, decoded by Python: key -> lines.
pub fn dump_lines(
    endpoint: &str,
    bucket: &str,
    format: &str,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let out = s3tool(endpoint, &["dump-lines", bucket, format]);
    serde_json::from_slice(&out).expect("dump-lines prints JSON")
}

/// Runs tests/py/s3tool.py (boto3) and returns its stdout.
pub fn s3tool(endpoint: &str, args: &[&str]) -> Vec<u8> {
    run_py("s3tool.py", endpoint, args)
}

/// Runs a helper of tests/py/ against `endpoint`; fails the test if it fails.
fn run_py(script: &str, endpoint: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(python())
        .arg(py_script(script))
        .arg(endpoint)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Decodes `data` with Python's own decoders (gzip, zipfile, cramjam); returns (bytes, stderr).
pub fn py_decode(format: &str, data: &[u8]) -> (Vec<u8>, String) {
    let mut child = Command::new(python())
        .arg(py_script("s3tool.py"))
        .args(["-", "decode", format])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = data.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("decoder finishes");
    let _ = writer.join();
    assert!(
        out.status.success(),
        "python could not decode {format}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A minimal HTTP/1.1 client: (status, body). Plain TCP so tests can send exactly what they mean.
pub fn http(url: &str, method: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    try_http(url, method, headers, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// The same, with a connection that fails (refused, reset, no whole answer) as an error: for
/// clients of a daemon that a test kills on purpose.
pub fn try_http(
    url: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes())?;
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("no HTTP status in {text:?}"),
            )
        })?;
    let body = match text.split_once("\r\n\r\n") {
        Some((head, b))
            if head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked") =>
        {
            dechunk(b)
        }
        Some((_, b)) => b.to_string(),
        None => String::new(),
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A port free now on 127.0.0.1, for a daemon whose address a test must know before its
/// listening line (another process could take it first; the tests that use it are few).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// All files under `root`, as paths relative to it, sorted.
pub fn files_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// Builds the .deb of the binary under test (scripts/build-deb.sh, uncompressed) in `out`.
pub fn build_deb(out: &Path) -> PathBuf {
    let built = run_output(
        Command::new(repo().join("scripts/build-deb.sh"))
            .args(["--binary", env!("CARGO_BIN_EXE_firehosed"), "--out"])
            .arg(out)
            .env("DEB_COMPRESSION", "none"),
    );
    assert!(
        built.status.success(),
        "build-deb.sh: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&built.stdout).trim())
}

pub fn run_output(cmd: &mut Command) -> Output {
    cmd.output().expect("command runs")
}

pub fn base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

pub fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}
