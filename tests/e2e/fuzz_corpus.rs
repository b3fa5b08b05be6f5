//! Every input the fuzz targets of fuzz/ were seeded with, and every input a fuzz run found a
//! crash, a hang or unbounded memory with (fuzz/seeds/TARGET/, committed), goes through the same
//! entry point again on the stable toolchain in every CI run: a parser of untrusted input that
//! once failed on one of them fails this test if it fails again.

use std::path::PathBuf;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no inputs in {}", dir.display());
    for path in inputs {
        let data = std::fs::read(&path).expect("input");
        // A panic names the input that caused it.
        eprintln!("replaying {}", path.display());
        run(&data);
    }
}

#[test]
fn api_request() {
    replay("api_request", firehosed::fuzzing::api_request);
}

#[test]
fn plain_split() {
    replay("plain_split", firehosed::fuzzing::plain_split);
}

#[test]
fn sigv4() {
    replay("sigv4", firehosed::fuzzing::sigv4);
}

#[test]
fn config_yaml() {
    replay("config_yaml", firehosed::fuzzing::config_yaml);
}

#[test]
fn kpl() {
    replay("kpl", firehosed::fuzzing::kpl);
}

#[test]
fn deaggregate() {
    replay("deaggregate", firehosed::fuzzing::deaggregate);
}

#[test]
fn parquet() {
    replay("parquet", firehosed::fuzzing::parquet);
}

#[test]
fn jq() {
    replay("jq", firehosed::fuzzing::jq);
}

#[test]
fn deflate_join() {
    replay("deflate_join", firehosed::fuzzing::deflate_join);
}
