//! firehosed under test: started on a configuration (`{dir}` replaced by its own folder), its
//! address read from its one stdout line, its log collected; kill -9, restart on the same
//! state, SIGTERM and the API's calls as a test needs them.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::http;

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
