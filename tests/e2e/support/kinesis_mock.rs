//! kinesis-mock (npm `kinesis-local`, pinned by scripts/test-tools.sh): the Kinesis server with
//! enhanced fan-out (RegisterStreamConsumer, SubscribeToShard as an event stream). Started on
//! 127.0.0.1 ephemeral ports (tests/py/kinesis_mock.js moves its servers there) with a
//! certificate made here: a local CA and a leaf for 127.0.0.1 and localhost (its bundled
//! certificate has no subjectAltName, which rustls refuses). Clients reach its TLS port (h2,
//! as AWS) by trusting the CA: `SSL_CERT_FILE` for firehosed and the SDK's native roots.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use super::{py_script, python, spawn_reporting, tools};

pub struct KinesisMock {
    child: Child,
    /// `https://127.0.0.1:PORT`: h2 over TLS, as AWS.
    pub endpoint: String,
    /// The CA that signed its certificate (PEM), for SSL_CERT_FILE.
    pub ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl KinesisMock {
    pub fn start() -> KinesisMock {
        let main = tools().join("kinesis-mock/node_modules/kinesis-local/main.js");
        assert!(
            main.exists(),
            "kinesis-local is missing: run scripts/test-tools.sh"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let cert_json = make_certificate(dir.path());
        let (child, tls) = spawn_reporting(
            Command::new("node")
                .arg("-r")
                .arg(py_script("kinesis_mock.js"))
                .arg(&main)
                .current_dir(dir.path())
                .env("KINESIS_MOCK_TLS_PORT", "1")
                .env("KINESIS_MOCK_PLAIN_PORT", "2")
                .env("KINESIS_MOCK_CERT_PATH", &cert_json)
                .env("LOG_LEVEL", "WARN")
                // Streams and consumers become ACTIVE at once.
                .env("CREATE_STREAM_DURATION", "0ms")
                .env("REGISTER_STREAM_CONSUMER_DURATION", "100ms")
                .env("SPLIT_SHARD_DURATION", "0ms")
                .env("MERGE_SHARDS_DURATION", "0ms"),
            "kinesis-mock",
            |line| line.strip_prefix("tls-listening ")?.trim().parse().ok(),
        );
        KinesisMock {
            child,
            endpoint: format!("https://127.0.0.1:{tls}"),
            ca_file: dir.path().join("ca.pem"),
            _dir: dir,
        }
    }

    /// Runs tests/py/kinesis_tool.py against this server (boto3 trusting the CA through
    /// AWS_CA_BUNDLE); returns stdout.
    pub fn tool(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new(python())
            .arg(py_script("kinesis_tool.py"))
            .arg(&self.endpoint)
            .args(args)
            .env("AWS_CA_BUNDLE", &self.ca_file)
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "kinesis_tool.py {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

/// A CA and a leaf for 127.0.0.1 / localhost (openssl), written as kinesis-mock's certificate
/// JSON ({"server": {"key", "cert"}}); its path. `ca.pem` beside it.
fn make_certificate(dir: &Path) -> PathBuf {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .expect("write");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "30",
                "-subj",
                "/CN=firehosed test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "leaf.key",
                "-out",
                "leaf.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "30",
        "-extfile",
        "leaf.ext",
    ]);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("read");
    let json = serde_json::json!({"server": {"key": read("leaf.key"), "cert": read("leaf.pem")}});
    let path = dir.join("server.json");
    std::fs::write(&path, json.to_string()).expect("write");
    path
}

impl Drop for KinesisMock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
