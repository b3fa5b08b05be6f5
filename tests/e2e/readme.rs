//! The README's first commands, run as written: the daemon command on the bundled example
//! config (with the port moved by the config's own FIREHOSED_LISTEN, so a daemon already on
//! 4573 does not matter), the curl lines, the `find | zcat` line and the AWS CLI snippet; and
//! the test command is what .ci/run calls.

use std::process::{Command, Stdio};

use crate::support::*;

/// The lines of the README's `sh` blocks, comments removed, `\` continuations joined.
fn sh_blocks(readme: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    let mut pending = String::new();
    for line in readme.lines() {
        match (&mut current, line.trim()) {
            (None, "```sh") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.push(current.take().expect("open block")),
            (Some(block), l) => {
                let l = match l.find("   #") {
                    Some(i) => l[..i].trim_end(),
                    None => l,
                };
                if let Some(head) = l.strip_suffix('\\') {
                    pending.push_str(head);
                    continue;
                }
                pending.push_str(l);
                block.push(std::mem::take(&mut pending));
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn the_readme_commands_run_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    let blocks = sh_blocks(&readme);
    assert_eq!(
        blocks[0],
        vec![
            "cargo run -- run --config config/example.yaml".to_string(),
            "scripts/test.sh".to_string()
        ],
        "the two commands open the README"
    );
    let ci = std::fs::read_to_string(repo().join(".ci/run")).expect(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == "scripts/test.sh"),
        ".ci/run calls the test command"
    );

    // The daemon command, from a fresh folder holding the bundled config.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("config")).expect("dir");
    std::fs::copy(
        repo().join("config/example.yaml"),
        dir.path().join("config/example.yaml"),
    )
    .expect("config");
    let args: Vec<&str> = blocks[0][0]
        .strip_prefix("cargo run -- ")
        .expect("cargo run --")
        .split_whitespace()
        .collect();
    // Port 0: the daemon binds any free port and prints which.
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_firehosed"))
        .args(&args)
        .current_dir(dir.path())
        .env("FIREHOSED_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the daemon starts");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(daemon.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("the address line");
    let port: u16 = line
        .trim()
        .strip_prefix("firehosed listening on http://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the address line: {line:?}"));

    // The next two blocks, with the port moved; the AWS CLI from the test tools.
    let shell = |cmd: &str| {
        let cmd = cmd.replace("127.0.0.1:4573", &format!("127.0.0.1:{port}"));
        let out = run_output(
            Command::new("bash")
                .args(["-c", &cmd])
                .current_dir(dir.path())
                .env(
                    "PATH",
                    format!(
                        "{}:{}",
                        venv_bin("").display(),
                        std::env::var("PATH").unwrap_or_default()
                    ),
                ),
        );
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let curl = &blocks[1];
    assert_eq!(shell(&curl[0]), r#"{"accepted":2}"#);
    assert!(shell(&curl[1]).starts_with(r#"{"keys":["example/20"#));
    assert_eq!(shell(&curl[2]), "{\"id\":1}\n{\"id\":2}\n");
    let cli = blocks[2].join("\n");
    let answer: serde_json::Value =
        serde_json::from_str(&shell(&cli)).expect("the CLI prints JSON");
    assert!(answer["RecordId"].is_string(), "{answer}");

    // SAFETY: kill(2) on the daemon's pid, not yet reaped.
    unsafe {
        libc::kill(daemon.id() as i32, libc::SIGTERM);
    }
    assert!(daemon.wait().expect("exits").success());
}
