//! The packaged service under a real systemd: a Debian bookworm container (systemd-nspawn, its
//! root file system built by scripts/test-tools.sh into the tools cache) boots with systemd as
//! PID 1 and runs tests/systemd/inside.sh, which installs the .deb of the binary under test and
//! uses the service the way an operator would. This is where the unit's sandboxing meets the
//! daemon: the WASM transform compiles under SystemCallFilter=@system-service, NoNewPrivileges
//! and ProtectSystem=strict; the watchdog is shortened to 2 s so that missing pings would get
//! it killed; a kill -9 is restarted by Restart=on-failure; ExecReload applies a new file and
//! refuses a broken one.
//!
//! Needs root (systemd-nspawn); FIREHOSED_SKIP_SYSTEMD_CONTAINER=1 skips it on a machine
//! without, saying so.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use crate::support::*;

#[test]
fn the_packaged_service_runs_under_systemd_as_pid_1() {
    if std::env::var_os("FIREHOSED_SKIP_SYSTEMD_CONTAINER").is_some() {
        eprintln!("SKIPPED: FIREHOSED_SKIP_SYSTEMD_CONTAINER is set");
        return;
    }
    let root = tools().join("debian-bookworm");
    assert!(
        root.join(".complete").exists() && which("systemd-nspawn"),
        "no container root at {} or no systemd-nspawn: run scripts/test-tools.sh as root \
         (or set FIREHOSED_SKIP_SYSTEMD_CONTAINER=1 to skip this test)",
        root.display()
    );
    let work = tempfile::tempdir().expect("tempdir");
    let (input, results) = (work.path().join("in"), work.path().join("out"));
    std::fs::create_dir_all(&input).expect("in");
    std::fs::create_dir_all(&results).expect("out");
    let deb = build_deb(&work.path().join("deb"));
    std::fs::rename(&deb, input.join("firehosed.deb")).expect("the deb");
    for (from, to) in [
        ("tests/systemd/inside.sh", "inside.sh"),
        ("tests/wasm/blueprint.wat", "blueprint.wat"),
    ] {
        std::fs::copy(repo().join(from), input.join(to)).expect("copy");
    }

    let booted = run_output(
        Command::new("timeout")
            .arg("300")
            .arg("systemd-nspawn")
            .args(["--quiet", "--directory"])
            .arg(&root)
            .args([
                "--volatile=overlay",
                "--private-network",
                "--boot",
                "--register=no",
                "--keep-unit",
            ])
            .arg(format!("--machine=firehosed-test-{}", std::process::id()))
            .arg(format!("--bind-ro={}:/firehosed-test", input.display()))
            .arg(format!("--bind={}:/results", results.display()))
            .args([
                "--",
                "systemd.run=/firehosed-test/inside.sh",
                "systemd.run_success_action=exit",
                "systemd.run_failure_action=exit",
            ])
            .stdin(Stdio::null()),
    );
    let read = |name: &str| std::fs::read_to_string(results.join(name)).unwrap_or_default();
    let console = String::from_utf8_lossy(&booted.stdout).into_owned();
    let context = format!(
        "nspawn {:?}\n--- script log\n{}\n--- journal\n{}\n--- console (end)\n{}",
        booted.status,
        read("log"),
        read("journal"),
        console
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        booted.status.success(),
        "the container run failed: {context}"
    );
    let facts: BTreeMap<String, String> = read("facts")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect();
    let expect = [
        ("dpkg_rc", "0"),
        ("user", "firehosed /var/lib/firehosed:/usr/sbin/nologin"),
        ("unit_enabled_before", "disabled"),
        // Type=notify: `systemctl start` returns after READY=1, and then the port serves.
        ("start_rc", "0"),
        ("active", "active"),
        ("readyz", "200"),
        ("packaged_objects", "1"),
        ("packaged_content", "packaged"),
        ("owner", "firehosed"),
        ("watchdog_restarts", "0"),
        ("same_pid", "yes"),
        ("reload_rc", "0"),
        (
            "streams_after_reload",
            r#"{"DeliveryStreamNames":["example","wasm"],"HasMoreDeliveryStreams":false}"#,
        ),
        ("wasm_put", r#""FailedPutCount":0"#),
        ("wasm_delivered", "keep-1"),
        (
            "wasm_failed",
            r#""errorCode":"Lambda.ProcessingFailedStatus""#,
        ),
        ("bad_reload_rc", "1"),
        ("active_after_bad_reload", "active"),
        (
            "streams_after_bad_reload",
            r#"{"DeliveryStreamNames":["example","wasm"],"HasMoreDeliveryStreams":false}"#,
        ),
        ("restarted", "active"),
        ("restarts_after_kill", "1"),
        ("after_kill_content", "killed packaged"),
        ("stop_rc", "0"),
        ("stop_result", "success"),
        ("exit_status", "0"),
        ("drained_content", "drained killed packaged"),
    ];
    for (key, want) in expect {
        assert_eq!(
            facts.get(key).map(String::as_str),
            Some(want),
            "{key} (facts {facts:#?})\n{context}"
        );
    }
    // The service logs JSON lines to the journal (FIREHOSED_LOG_FORMAT=json in the unit).
    let journal = read("journal");
    assert!(
        journal
            .lines()
            .any(|l| l.contains(r#""message":"configuration reloaded""#)),
        "{journal}"
    );
    eprintln!(
        "systemd-analyze security: {}",
        facts.get("exposure").map_or("", String::as_str)
    );
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}
