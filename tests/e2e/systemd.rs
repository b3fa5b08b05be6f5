//! The bundled systemd unit: `systemd-analyze verify` accepts it (Debian's systemd, on the
//! test machine), and its own ExecStartPre / ExecStart lines, run with its Environment= lines
//! and a NOTIFY_SOCKET of the test's, validate the config, send READY=1 once the port is
//! serving, WATCHDOG=1 while running, STOPPING=1 on SIGTERM, log JSON lines, and exit 0.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

fn unit() -> String {
    std::fs::read_to_string(repo().join("systemd/firehosed.service")).expect("the unit")
}

/// The values of `key=` lines of the unit, in order.
fn values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
        .collect()
}

/// A command line of the unit with /usr/bin/firehosed replaced by the binary under test, and
/// the unit's Environment= lines (FIREHOSED_CONFIG pointed at `config`).
fn command(line: &str, unit: &str, config: &Path) -> Command {
    let mut words = line.split_whitespace();
    let program = words.next().expect("a program");
    assert_eq!(
        program, "/usr/bin/firehosed",
        "the unit runs the installed binary"
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_firehosed"));
    cmd.args(words).env_clear().env("PATH", "/usr/bin:/bin");
    for assignment in values(unit, "Environment") {
        let (k, v) = assignment.split_once('=').expect("KEY=VALUE");
        cmd.env(k, v);
    }
    cmd.env("FIREHOSED_CONFIG", config);
    cmd
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    for dir in ["usr/bin", "etc/systemd/system", "usr/lib/systemd"] {
        std::fs::create_dir_all(r.join(dir)).expect("dirs");
    }
    std::fs::copy(env!("CARGO_BIN_EXE_firehosed"), r.join("usr/bin/firehosed")).expect("binary");
    std::fs::write(r.join("etc/systemd/system/firehosed.service"), unit()).expect("unit");
    // The distribution's own units (sysinit.target, ...) that the unit's dependencies name.
    let system_units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.join("sysinit.target").exists())
        .expect("systemd's units (Debian's systemd package) are installed");
    let copied = run_output(
        Command::new("cp")
            .arg("-r")
            .arg(&system_units)
            .arg(r.join("usr/lib/systemd/system")),
    );
    assert!(copied.status.success());
    let out = run_output(
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(format!("--root={}", r.display()))
            .arg("/etc/systemd/system/firehosed.service"),
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_unit_asks_for_what_the_daemon_needs() {
    let u = unit();
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "Restart=on-failure",
        "StateDirectory=firehosed",
        "User=firehosed",
        "ProtectSystem=strict",
        "ProtectHome=true",
        "PrivateTmp=true",
        "NoNewPrivileges=true",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "EnvironmentFile=-/etc/firehosed/firehosed.env",
        "ExecReload=/bin/sh -c 'kill -HUP $MAINPID'",
    ] {
        assert!(u.lines().any(|l| l == line), "missing {line}");
    }
    assert!(
        !u.contains("MemoryDenyWriteExecute=true"),
        "the WASM runtime compiles code at run time"
    );
    let stop: u64 = values(&u, "TimeoutStopSec")[0].parse().expect("seconds");
    assert!(
        stop > firehosed::config::DEFAULT_DRAIN_TIMEOUT_SECONDS,
        "systemd must wait longer than the drain"
    );
}

#[test]
fn the_units_commands_notify_ready_watchdog_and_stopping() {
    let u = unit();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("firehosed.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:0\nstate_dir: '{}/state'\ndelivery_streams:\n  - name: s\n    source: {{direct_put: {{}}}}\n    destinations:\n      - directory: '{}/out'\n",
            dir.path().display(),
            dir.path().display()
        ),
    )
    .expect("config");

    let pre = values(&u, "ExecStartPre");
    assert_eq!(pre.len(), 1);
    let out = run_output(&mut command(&pre[0], &u, &config));
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("ok: 1"),
        "ExecStartPre: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let start = values(&u, "ExecStart");
    let mut cmd = command(&start[0], &u, &config);
    cmd.env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("ExecStart runs");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("a line");
    let url = line
        .trim()
        .strip_prefix("firehosed listening on ")
        .expect("the address line")
        .to_string();

    let recv = |want: &str| -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 512];
        loop {
            assert!(Instant::now() < deadline, "no {want} notification");
            let n = socket.recv(&mut buf).expect("a notification");
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.lines().any(|l| l == want) {
                return msg;
            }
        }
    };
    let ready = recv("READY=1");
    assert!(
        ready.contains("STATUS=serving 1 delivery streams"),
        "{ready}"
    );
    // READY=1 means serving: the port answers at once.
    let (status, body) = http(&format!("{url}/readyz"), "GET", &[], b"");
    assert_eq!((status, body.as_str()), (200, r#"{"ready":true}"#));
    recv("WATCHDOG=1");
    // SIGHUP (the unit's ExecReload) reloads: RELOADING=1, then READY=1 again.
    // SAFETY: kill(2) on the child's pid, which has not been reaped.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGHUP);
    }
    recv("RELOADING=1");
    recv("READY=1");
    assert!(
        child.try_wait().expect("status").is_none(),
        "SIGHUP must not end the daemon"
    );
    let (status, _) = http(&format!("{url}/readyz"), "GET", &[], b"");
    assert_eq!(status, 200, "and it still serves");

    // SAFETY: kill(2) on the child's pid, which has not been reaped.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    recv("STOPPING=1");
    let status = child.wait().expect("exits");
    assert!(status.success(), "a clean drain exits 0: {status:?}");
    // FIREHOSED_LOG_FORMAT=json from the unit: one JSON object per line, structured fields.
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("logs");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON log line: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|v| v["message"] == "ready" && v["streams"] == 1 && v["level"] == "INFO"),
        "{stderr}"
    );
    assert!(lines.iter().any(|v| v["message"] == "drained"), "{stderr}");
    assert!(
        lines
            .iter()
            .any(|v| v["message"] == "configuration reloaded"),
        "{stderr}"
    );
}
