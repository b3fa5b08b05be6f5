//! End-to-end harness: the real `firehosed` binary, a real S3 server (moto, installed pinned by
//! scripts/test-tools.sh), boto3 and the AWS CLI, all on 127.0.0.1 ephemeral ports.
// Its items are `pub` for the test modules beside it, not for another crate.
#![allow(unreachable_pub)]

pub mod chaos_proxy;
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
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use chaos_proxy::ChaosProxy;
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

/// A running firehosed; SIGKILLed on drop unless stopped.
pub struct Daemon {
    child: Option<Child>,
    pub url: String,
    pub dir: tempfile::TempDir,
    config: String,
    stderr: mpsc::Receiver<String>,
    pub log: Vec<String>,
}

pub fn firehosed() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_firehosed"));
    cmd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env("RUST_LOG", "info");
    cmd
}

/// How a daemon is started: its configuration (`{dir}` replaced by its folder), and
/// optionally the folder, extra environment variables and an open-file limit.
pub struct Launch<'a> {
    config: &'a str,
    dir: Option<tempfile::TempDir>,
    env: Vec<(String, String)>,
    open_file_limit: Option<u64>,
    ready_within: Duration,
}

impl Launch<'_> {
    /// In `dir` (a fresh temp dir otherwise).
    pub fn in_dir(mut self, dir: tempfile::TempDir) -> Self {
        self.dir = Some(dir);
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// How long the start may take before it is given up (60 s unless set): a daemon waiting
    /// out faults at its start-up checks may take up to two minutes.
    pub fn ready_within(mut self, timeout: Duration) -> Self {
        self.ready_within = timeout;
        self
    }

    /// Under an open-file limit (soft and hard) of `limit`.
    pub fn open_file_limit(mut self, limit: u64) -> Self {
        self.open_file_limit = Some(limit);
        self
    }

    pub fn start(self) -> Daemon {
        match self.try_start() {
            Ok(d) => d,
            Err(log) => panic!("firehosed did not start:\n{log}"),
        }
    }

    /// Starts, or returns everything the daemon printed when it exited instead.
    pub fn try_start(self) -> Result<Daemon, String> {
        let dir = match self.dir {
            Some(d) => d,
            None => tempfile::tempdir().expect("tempdir"),
        };
        let (env, limit) = (self.env, self.open_file_limit);
        Daemon::try_start_cmd(dir, self.config, self.ready_within, |cmd| {
            cmd.envs(env);
            if let Some(limit) = limit {
                limit_open_files(cmd, limit);
            }
        })
    }
}

/// The child starts under an open-file limit (soft and hard) of `limit`.
fn limit_open_files(cmd: &mut Command, limit: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

impl Daemon {
    /// Writes `config` (with `{dir}` replaced by a fresh temp dir) and starts the daemon on it.
    pub fn start(config: &str) -> Daemon {
        Self::launch(config).start()
    }

    /// A daemon to start on `config`, set up further before it starts.
    pub fn launch(config: &str) -> Launch<'_> {
        Launch {
            config,
            dir: None,
            env: Vec::new(),
            open_file_limit: None,
            ready_within: Duration::from_secs(60),
        }
    }

    fn try_start_cmd(
        dir: tempfile::TempDir,
        config: &str,
        ready_within: Duration,
        customize: impl FnOnce(&mut Command),
    ) -> Result<Daemon, String> {
        let text = config.replace("{dir}", &dir.path().display().to_string());
        let path = dir.path().join("firehosed.yaml");
        std::fs::write(&path, text).expect("config written");
        let mut cmd = firehosed();
        customize(&mut cmd);
        let mut child = cmd
            .args(["run", "--config"])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("firehosed starts");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (err_tx, err_rx) = mpsc::channel();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if err_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        match rx.recv_timeout(ready_within) {
            Ok(line) => {
                let url = line
                    .strip_prefix("firehosed listening on ")
                    .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
                    .to_string();
                Ok(Daemon {
                    child: Some(child),
                    url,
                    dir,
                    config: config.to_string(),
                    stderr: err_rx,
                    log: Vec::new(),
                })
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                // Everything it printed before it exited: the reader ends at the pipe's end,
                // so no line is still on its way when the log is taken.
                let _ = stderr_reader.join();
                let log: Vec<String> = err_rx.try_iter().collect();
                Err(log.join("\n"))
            }
        }
    }

    /// Waits until the log has a line containing `needle`; returns the whole log.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let logs = self.logs();
            if logs.contains(needle) {
                return logs;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?} in:\n{logs}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no drain, no cleanup.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the daemon again on the same state and configuration (a new port).
    pub fn restart(self) -> Daemon {
        let (dir, config) = self.stop_for_restart();
        Daemon::launch(&config).in_dir(dir).start()
    }

    /// kill -9; its folder and configuration, to start again with.
    pub fn stop_for_restart(mut self) -> (tempfile::TempDir, String) {
        self.kill9();
        let placeholder = tempfile::tempdir().expect("tempdir");
        let dir = std::mem::replace(&mut self.dir, placeholder);
        (dir, self.config.clone())
    }

    /// DescribeDeliveryStream of `name` once it is ACTIVE.
    pub fn wait_active(&self, name: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        let request = serde_json::json!({"DeliveryStreamName": name}).to_string();
        loop {
            let (_, v) = self.api("DescribeDeliveryStream", &request);
            if v["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE" {
                return v;
            }
            assert!(Instant::now() < deadline, "never ACTIVE: {v}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The exit status, once the process has exited by itself (None while it runs, or after
    /// `kill9`).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Everything logged so far.
    pub fn logs(&mut self) -> String {
        self.log.extend(self.stderr.try_iter());
        self.log.join("\n")
    }

    /// SIGTERM, then waits for the exit (drain) at most `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.pid();
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        self.wait_exit(timeout)
    }

    /// Waits for the daemon to exit by itself (at most `timeout`); its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("firehosed did not exit within {timeout:?} (killed now)");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory now (VmRSS) in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.proc_status_kib("VmRSS:")
    }

    /// Peak resident memory (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.proc_status_kib("VmHWM:")
    }

    fn proc_status_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    pub fn post(&self, path: &str, body: &[u8]) -> (u16, String) {
        http(&format!("{}{path}", self.url), "POST", &[], body)
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http(&format!("{}{path}", self.url), "GET", &[], b"")
    }

    /// A Firehose API call with its X-Amz-Target.
    pub fn api(&self, op: &str, body: &str) -> (u16, serde_json::Value) {
        let (status, text) = http(
            &self.url,
            "POST",
            &[
                ("x-amz-target", &format!("Firehose_20150804.{op}")),
                ("content-type", "application/x-amz-json-1.1"),
            ],
            body.as_bytes(),
        );
        let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, value)
    }

    /// Flushes a stream and returns the keys written.
    pub fn flush(&self, stream: &str) -> Vec<String> {
        let (status, body) = self.post(&format!("/v1/streams/{stream}/flush"), b"");
        assert_eq!(status, 200, "flush failed: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("flush answers JSON");
        v["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k.as_str().expect("key").to_string())
            .collect()
    }

    /// A metric's value from /metrics (first series whose line starts with `series`).
    pub fn metric(&self, series: &str) -> f64 {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no metric {series} in:\n{text}"))
    }

    /// The sum of every series of `family` (all its labels: every shard, say); 0 when none.
    pub fn family_sum(&self, family: &str) -> f64 {
        let (_, text) = self.get("/metrics");
        let prefix = format!("{family}{{");
        text.lines()
            .filter(|l| l.starts_with(&prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
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
