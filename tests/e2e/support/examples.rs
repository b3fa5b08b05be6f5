//! The repository's example programs (examples/*.rs) that tests run as processes, such as the
//! chaos proxy. A test build of all targets (the README's test command) compiles examples only as
//! test harnesses (`chaos_proxy-HASH`, which answers `--upstream` with "Unrecognized option"), so
//! the plain binary is built here with the same cargo, profile and target folder: a no-op when it
//! is fresh, a link of one small program when it is not. Asking cargo each time (not looking for a
//! file) also means a changed example is never run stale.

use std::path::PathBuf;
use std::process::Command;

/// The path of `target/<profile>/examples/<name>`, built first.
pub fn example_binary(name: &str) -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_firehosed"));
    let profile_dir = bin.parent().expect("the binary has a folder").to_path_buf();
    let target_dir = profile_dir.parent().expect("a target folder").to_path_buf();
    let mut build = Command::new(env!("CARGO"));
    build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "--example", name, "--target-dir"])
        .arg(&target_dir);
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        build.arg("--release");
    }
    let out = build.output().expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo build --example {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    profile_dir.join("examples").join(name)
}
