//! An HTTP endpoint for http_endpoint destinations: tests/py/http_receiver.py, which checks every
//! request against AWS's HTTP endpoint delivery specification and logs each one (its records,
//! what it answered, the violations found), as a process of a test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{py_script, python};

/// The test's endpoint: the receiver process, its request log and its plan.
pub struct Receiver {
    child: Child,
    pub port: u16,
    log: PathBuf,
    plan: PathBuf,
}

/// What a receiver expects of the requests it gets.
pub struct Expect<'a> {
    pub stream: &'a str,
    pub path: &'a str,
    pub access_key: Option<&'a str>,
    pub attributes: Option<Value>,
    pub gzip: bool,
    /// `(cert, key)`: serve HTTPS.
    pub tls: Option<(&'a Path, &'a Path)>,
}

impl Receiver {
    pub fn start(dir: &Path, name: &str, expect: &Expect, plan: Value) -> Receiver {
        let log = dir.join(format!("{name}.jsonl"));
        let plan_path = dir.join(format!("{name}-plan.json"));
        std::fs::write(&plan_path, plan.to_string()).expect("plan");
        let mut cmd = Command::new(python());
        cmd.arg(py_script("http_receiver.py"))
            .arg(&log)
            .arg(&plan_path)
            .args(["--path", expect.path, "--stream", expect.stream])
            .args(["--gzip", if expect.gzip { "yes" } else { "no" }]);
        if let Some(k) = expect.access_key {
            cmd.args(["--access-key", k]);
        }
        if let Some(a) = &expect.attributes {
            cmd.args(["--attributes", &a.to_string()]);
        }
        if let Some((cert, key)) = expect.tls {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("receiver starts");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("port line");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("receiver said {line:?}"));
        Receiver {
            child,
            port,
            log,
            plan: plan_path,
        }
    }

    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    /// The request log (one JSON line per request).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn set_plan(&self, plan: Value) {
        let tmp = self.plan.with_extension("tmp");
        std::fs::write(&tmp, plan.to_string()).expect("plan");
        std::fs::rename(&tmp, &self.plan).expect("plan renamed");
    }

    pub fn requests(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("log line"))
            .collect()
    }

    pub fn wait_requests(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let r = self.requests();
            if r.len() >= n || start.elapsed() > timeout {
                return r;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
