//! The subprocess runtime: a long-lived child that reads one request per line on stdin and
//! answers one response per line on stdout (docs/transform.md). It runs in its own process
//! group; the group is killed and reaped when the child exits, hangs or the stream closes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::contract::{InvokeError, MAX_RESPONSE_BYTES};

/// How to start the child.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) command: Vec<String>,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) working_directory: Option<PathBuf>,
    pub(crate) label: String,
}

struct Running {
    child: Child,
    pid: i32,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

pub(crate) struct Subprocess {
    spec: Spec,
    running: Option<Running>,
    /// Wait before the next start, after a child failed; grows while it keeps failing.
    restart_delay: Option<Duration>,
}

/// Longest stderr line passed to the log.
const MAX_LOG_LINE: usize = 8 * 1024;

impl Subprocess {
    pub(crate) fn new(spec: Spec) -> Self {
        Subprocess {
            spec,
            running: None,
            restart_delay: None,
        }
    }

    /// Starts the child now, so a command that cannot start is reported at start-up.
    pub(crate) fn start(&mut self) -> std::io::Result<()> {
        if self.running.is_none() {
            self.running = Some(spawn(&self.spec)?);
        }
        Ok(())
    }

    /// Sends one request and waits for its response line, at most `timeout`.
    pub(crate) async fn call(
        &mut self,
        request: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, InvokeError> {
        if self.out_of_step().await {
            let status = self.kill().await;
            tracing::warn!(transform = %self.spec.label, %status,
                "the transform wrote to stdout outside an answer, or exited; restarting it");
        }
        if self.running.is_none() {
            if let Some(d) = self.restart_delay {
                tokio::time::sleep(d).await;
            }
            match spawn(&self.spec) {
                Ok(r) => self.running = Some(r),
                Err(e) => {
                    self.failed();
                    return Err(InvokeError::Function(format!(
                        "cannot start the transform command {:?}: {e}",
                        self.spec.command
                    )));
                }
            }
        }
        let Some(running) = self.running.as_mut() else {
            return Err(InvokeError::Function("the transform is not running".into()));
        };
        let exchange = async {
            running.stdin.write_all(request).await?;
            running.stdin.write_all(b"\n").await?;
            running.stdin.flush().await?;
            read_line_capped(&mut running.stdout, MAX_RESPONSE_BYTES).await
        };
        let outcome = tokio::time::timeout(timeout, exchange).await;
        match outcome {
            Ok(Ok(Line::Complete(line))) => {
                self.restart_delay = None;
                Ok(line)
            }
            Ok(Ok(Line::TooLong)) => {
                self.kill().await;
                self.failed();
                Err(InvokeError::Function(format!(
                    "the transform's response is longer than {MAX_RESPONSE_BYTES} bytes"
                )))
            }
            Ok(Ok(Line::Eof)) | Ok(Err(_)) => {
                let status = self.kill().await;
                self.failed();
                Err(InvokeError::Function(format!(
                    "the transform process exited without answering ({status})"
                )))
            }
            Err(_) => {
                self.kill().await;
                self.failed();
                Err(InvokeError::TimedOut(format!(
                    "the transform did not answer within {} s; its process was killed",
                    timeout.as_secs_f64()
                )))
            }
        }
    }

    /// Whether the child has output nobody asked for (a stray line would be read as the next
    /// answer) or has exited: either way it is restarted before the next request.
    async fn out_of_step(&mut self) -> bool {
        let Some(r) = self.running.as_mut() else {
            return false;
        };
        // A zero timeout still polls once: ready means bytes, end of file or an error.
        tokio::time::timeout(Duration::ZERO, r.stdout.fill_buf())
            .await
            .is_ok()
    }

    fn failed(&mut self) {
        let next = self.restart_delay.map_or(Duration::from_millis(100), |d| {
            (d * 2).min(Duration::from_secs(5))
        });
        self.restart_delay = Some(next);
    }

    /// Kills the child's process group, reaps the child, and says how it ended.
    async fn kill(&mut self) -> String {
        let Some(mut r) = self.running.take() else {
            return "not running".into();
        };
        // The child is not reaped before the `wait` below, so its group id is still ours.
        signal_group(r.pid, libc::SIGKILL);
        match r.child.wait().await {
            Ok(s) => s.to_string(),
            Err(_) => "status unknown".into(),
        }
    }

    /// Stops the child: closes its stdin, then SIGTERM to the group, then SIGKILL; whatever it
    /// left in its group goes too.
    pub(crate) async fn close(&mut self) {
        let Some(r) = self.running.take() else {
            return;
        };
        let Running {
            mut child,
            pid,
            stdin,
            ..
        } = r;
        drop(stdin);
        let grace = Duration::from_secs(2);
        if !exited_within(pid, grace).await {
            signal_group(pid, libc::SIGTERM);
            exited_within(pid, grace).await;
        }
        signal_group(pid, libc::SIGKILL);
        let _ = child.wait().await;
    }
}

/// Waits up to `limit` for the child to exit, without reaping it (so its process group id
/// cannot be reused while we may still signal it).
async fn exited_within(pid: i32, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        // SAFETY: waitid with WNOWAIT only inspects the child's state; `info` is a zeroed
        // siginfo_t that the call fills in.
        let exited = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let rc = libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            rc != 0 || info.si_pid() != 0
        };
        if exited {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn spawn(spec: &Spec) -> std::io::Result<Running> {
    let mut cmd = Command::new(&spec.command[0]);
    cmd.args(&spec.command[1..])
        .envs(&spec.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &spec.working_directory {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn()?;
    let pid = child.id().map_or(0, |p| p as i32);
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(std::io::Error::other("the child's pipes are missing"));
    };
    let label = spec.label.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr);
        loop {
            match read_line_capped(&mut lines, MAX_LOG_LINE).await {
                Ok(Line::Complete(l)) => {
                    let text = String::from_utf8_lossy(&l);
                    tracing::info!(transform = %label, pid, "{}", text.trim_end());
                }
                Ok(Line::TooLong) => {
                    tracing::info!(transform = %label, pid, "(a stderr line longer than 8 KiB was cut)");
                }
                Ok(Line::Eof) | Err(_) => break,
            }
        }
    });
    tracing::info!(transform = %spec.label, pid, command = ?spec.command, "transform process started");
    Ok(Running {
        child,
        pid,
        stdin,
        stdout: BufReader::with_capacity(256 * 1024, stdout),
    })
}

fn signal_group(pid: i32, signal: i32) {
    if pid > 0 {
        // SAFETY: kill(2) with a negative pid signals the process group the child leads; it
        // has no memory effects on this process.
        unsafe {
            libc::kill(-pid, signal);
        }
    }
}

enum Line {
    Complete(Vec<u8>),
    /// The line passed the cap; the rest of it was not read (the stream is out of step).
    TooLong,
    Eof,
}

/// Reads up to and without the next `\n`, at most `max` bytes.
async fn read_line_capped<R: AsyncBufRead + Unpin>(r: &mut R, max: usize) -> std::io::Result<Line> {
    let mut out = Vec::new();
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if out.is_empty() {
                Line::Eof
            } else {
                Line::Complete(out)
            });
        }
        if let Some(i) = memchr(buf) {
            if out.len() + i > max {
                return Ok(Line::TooLong);
            }
            out.extend_from_slice(&buf[..i]);
            r.consume(i + 1);
            return Ok(Line::Complete(out));
        }
        let n = buf.len();
        if out.len() + n > max {
            return Ok(Line::TooLong);
        }
        out.extend_from_slice(buf);
        r.consume(n);
    }
}

fn memchr(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}
