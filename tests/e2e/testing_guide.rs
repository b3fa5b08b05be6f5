//! docs/testing.md's way for any language works as written: the binary started with
//! `--listen 127.0.0.1:0` and `--state-dir`, its address read from stdout, and the Node.js
//! example (examples/node/firehose.test.mjs: the AWS SDK v3 creates a stream, puts records,
//! flushes) finds its object under `api_s3_directory/<bucket>/<key>` with no S3 server. The
//! Python package and the example pytest suite are scripts/test-python-package.sh's.

use std::process::Command;

use crate::support::*;

#[test]
fn the_node_example_runs_against_the_binary_with_no_s3_server() {
    // ES modules do not read NODE_PATH: the script runs beside the SDK's node_modules.
    let dir = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(
        tools().join("js-sdk/node_modules"),
        dir.path().join("node_modules"),
    )
    .expect("symlink");
    std::fs::copy(
        repo().join("examples/node/firehose.test.mjs"),
        dir.path().join("firehose.test.mjs"),
    )
    .expect("copy");
    let out = run_output(
        Command::new("node")
            .arg("firehose.test.mjs")
            .current_dir(dir.path())
            .env("FIREHOSED_BINARY", env!("CARGO_BIN_EXE_firehosed")),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("ok: orders/"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
