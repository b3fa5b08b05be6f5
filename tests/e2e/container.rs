//! The OCI image (scripts/build-image.sh, packaging/container/Containerfile) built from the
//! binary under test and run by podman: its default configuration serves the Firehose API,
//! a stream created through it writes its objects into a named volume (which takes the image's
//! ownership, nothing prepared by hand) under `s3/<bucket>/<key>` (api_s3_directory), as the
//! image's user, and `podman stop` drains it (exit 0).
//!
//! Needs podman and runc (scripts/test-tools.sh installs them as root);
//! FIREHOSED_SKIP_CONTAINER_IMAGE=1 skips it on a machine without, saying so. This machine's VM
//! refuses resource limits at or above the session's own and crun's cgroup setup: the test runs
//! podman with runc and lower `--ulimit`s, the way a user on such a host would.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::*;

#[test]
fn the_image_serves_the_api_and_writes_into_its_volume() {
    if std::env::var_os("FIREHOSED_SKIP_CONTAINER_IMAGE").is_some() {
        eprintln!("SKIPPED: FIREHOSED_SKIP_CONTAINER_IMAGE is set");
        return;
    }
    assert!(
        has("podman") && has("runc"),
        "podman or runc is missing: run scripts/test-tools.sh as root \
         (or set FIREHOSED_SKIP_CONTAINER_IMAGE=1 to skip this test)"
    );
    let tag = format!("firehosed-test:{}", std::process::id());
    let built = run_output(Command::new(repo().join("scripts/build-image.sh")).args([
        "--binary",
        env!("CARGO_BIN_EXE_firehosed"),
        "--tag",
        &tag,
    ]));
    assert!(
        built.status.success(),
        "build-image.sh: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let name = format!("firehosed-test-{}", std::process::id());
    let _cleanup = Cleanup {
        container: name.clone(),
        image: tag.clone(),
    };
    let mut podman = Command::new("podman")
        .args([
            "--runtime",
            "runc",
            "run",
            "--rm",
            "--name",
            &name,
            "--network",
            "host",
        ])
        .args([
            "--ulimit",
            "nofile=16384:16384",
            "--ulimit",
            "nproc=4096:4096",
        ])
        .args(["-v", &format!("{name}:/var/lib/firehosed")])
        .args([&tag, "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("podman runs");
    let mut line = String::new();
    BufReader::new(podman.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the address line");
    let url = line
        .trim()
        .strip_prefix("firehosed listening on ")
        .unwrap_or_else(|| panic!("no address line: {line:?}"))
        .to_string();

    let create = r#"{"DeliveryStreamName":"boxed","ExtendedS3DestinationConfiguration":{"RoleARN":"arn:aws:iam::000000000000:role/r","BucketARN":"arn:aws:s3:::lake","Prefix":"in-image/"}}"#;
    let api = |op: &str, body: &str| {
        http(
            &format!("{url}/"),
            "POST",
            &[
                ("x-amz-target", &format!("Firehose_20150804.{op}")),
                ("content-type", "application/x-amz-json-1.1"),
            ],
            body.as_bytes(),
        )
    };
    assert_eq!(api("CreateDeliveryStream", create).0, 200);
    let describe = r#"{"DeliveryStreamName":"boxed"}"#;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !api("DescribeDeliveryStream", describe)
        .1
        .contains("\"ACTIVE\"")
    {
        assert!(std::time::Instant::now() < deadline, "never ACTIVE");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (status, body) = http(
        &format!("{url}/v1/streams/boxed/records"),
        "POST",
        &[],
        b"one\ntwo",
    );
    assert_eq!((status, body.as_str()), (200, r#"{"accepted":2}"#));
    let (status, body) = http(&format!("{url}/v1/streams/boxed/flush"), "POST", &[], b"");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let key = v["keys"][0].as_str().expect("a key").to_string();
    assert!(key.starts_with("in-image/"), "{key}");
    let mount = run_output(Command::new("podman").args([
        "volume",
        "inspect",
        "--format",
        "{{.Mountpoint}}",
        &name,
    ]));
    let mount = String::from_utf8_lossy(&mount.stdout).trim().to_string();
    let object = std::path::Path::new(&mount).join("s3/lake").join(&key);
    assert_eq!(std::fs::read(&object).expect("the object"), b"onetwo");
    let meta = std::fs::metadata(&object).expect("metadata");
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&meta),
        65532,
        "written as the image's user"
    );

    let stop = run_output(Command::new("podman").args(["stop", "-t", "20", &name]));
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    let status = podman.wait().expect("podman run ends");
    assert!(
        status.success(),
        "the container drained and exited 0: {status}"
    );
}

/// Whatever the test's outcome: the container, its volume and the image go.
struct Cleanup {
    container: String,
    image: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let podman = |args: &[&str]| {
            let _ = Command::new("podman").args(args).output();
        };
        podman(&["rm", "-f", "-t", "0", &self.container]);
        podman(&["volume", "rm", "-f", &self.container]);
        podman(&["rmi", "-f", &self.image]);
    }
}

fn has(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}
