//! Safe on a network: with `auth`, every request must carry a valid SigV4 signature made by a
//! key of the credentials file, and its principal's IAM-shaped policy must allow the action on
//! the stream, each refusal AWS's own error; with `tls` the API speaks HTTPS and a SIGHUP picks
//! up a renewed certificate and rotated keys without dropping a connection or a record
//! (security_reload.rs); without `auth` only loopback addresses are served (clients holding
//! connections: connections.rs).
//! Proven with the real binary and the clients people sign with: boto3, the AWS CLI, the AWS
//! SDK for JavaScript v3 and `curl --aws-sigv4`.

use std::path::Path;
use std::process::Command;

use crate::support::*;
use serde_json::{Value, json};

pub(crate) const CREDENTIALS: &str = "\
# producer: puts records into logs-*; admin: everything but deleting logs-keep
[producer]
aws_access_key_id = AKIDPRODUCER
aws_secret_access_key = producer-secret

[admin]
aws_access_key_id = AKIDADMIN
aws_secret_access_key = admin-secret

[nobody]
aws_access_key_id = AKIDNOBODY
aws_secret_access_key = nobody-secret
";

const POLICIES: &str = r#"
auth:
  credentials_file: '{dir}/credentials'
  policies:
    producer:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Action: ["firehose:PutRecord", "firehose:PutRecordBatch"]
          Resource: "arn:aws:firehose:*:*:deliverystream/logs-*"
    admin:
      Version: "2012-10-17"
      Statement:
        - {Sid: All, Effect: Allow, Action: "firehose:*", Resource: "*"}
        - Effect: Deny
          Action: "firehose:Delete*"
          Resource: "arn:aws:firehose:us-east-1:000000000000:deliverystream/logs-keep"
"#;

pub(crate) const STREAMS: &str = "
delivery_streams:
  - name: logs-a
    source: {direct_put: {}}
    processing: {append_delimiter_to_record: true}
    destinations:
      - directory: '{dir}/out'
        buffering: {size_mib: 64, interval_seconds: 900}
  - name: logs-keep
    source: {direct_put: {}}
    destinations: [{directory: '{dir}/keep'}]
  - name: other
    source: {direct_put: {}}
    destinations: [{directory: '{dir}/other'}]
";

/// A temp dir with the credentials file (0600), a test CA and a server certificate "one".
pub(crate) fn prepared() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write_private(&dir.path().join("credentials"), CREDENTIALS);
    make_certificate(dir.path(), "one");
    for ext in ["crt", "key"] {
        std::fs::copy(
            dir.path().join(format!("one.{ext}")),
            dir.path().join(format!("tls.{ext}")),
        )
        .expect("copied");
    }
    dir
}

pub(crate) fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("written");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// `NAME.crt` / `NAME.key` for localhost and 127.0.0.1, signed by the dir's CA (`ca.pem`).
pub(crate) fn make_certificate(dir: &Path, name: &str) {
    let out = Command::new(python())
        .arg(py_script("sigv4_boto3.py"))
        .args(["certs", &dir.display().to_string(), name])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "certificates: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) fn secured_config(tls: bool) -> String {
    let tls = if tls {
        "tls: {cert_file: '{dir}/tls.crt', key_file: '{dir}/tls.key'}\n"
    } else {
        ""
    };
    format!("listen: 127.0.0.1:0\nstate_dir: '{{dir}}/state'\n{POLICIES}{tls}{STREAMS}")
}

fn ca(d: &Daemon) -> String {
    d.dir.path().join("ca.pem").display().to_string()
}

/// Runs tests/py/sigv4_boto3.py; its JSON output.
pub(crate) fn boto3(args: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(py_script("sigv4_boto3.py"))
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "sigv4_boto3.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

fn denied(principal: &str, action: &str, stream: Option<&str>, explicit: bool) -> Value {
    let on = stream.map_or(String::new(), |s| {
        format!(" on resource: arn:aws:firehose:us-east-1:000000000000:deliverystream/{s}")
    });
    let why = if explicit {
        "with an explicit deny in an identity-based policy".to_string()
    } else {
        format!("because no identity-based policy allows the {action} action")
    };
    json!({
        "code": "AccessDeniedException",
        "status": 400,
        "message": format!(
            "User: arn:aws:iam::000000000000:user/{principal} is not authorized to perform: {action}{on} {why}"
        ),
    })
}

/// (status, body) of `curl -sS ARGS URL`.
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status = status.trim().parse().unwrap_or_else(|_| {
        panic!(
            "curl {args:?}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (status, body.to_string())
}

/// curl signing as `key` with `--aws-sigv4`, trusting the test CA.
fn signed_curl(d: &Daemon, key: (&str, &str), extra: &[&str], path: &str) -> (u16, Value) {
    let user = format!("{}:{}", key.0, key.1);
    let url = format!("{}{path}", d.url);
    let ca = ca(d);
    let mut args = vec![
        "--cacert",
        &ca,
        "--aws-sigv4",
        "aws:amz:us-east-1:firehose",
        "--user",
        &user,
    ];
    args.extend_from_slice(extra);
    args.push(&url);
    let (status, body) = curl(&args);
    let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, v)
}

pub(crate) const PRODUCER: (&str, &str) = ("AKIDPRODUCER", "producer-secret");
pub(crate) const ADMIN: (&str, &str) = ("AKIDADMIN", "admin-secret");

/// Every line delivered to the directory `out` of the daemon's dir.
pub(crate) fn delivered_lines(d: &Daemon, out: &str, keys: &[Value]) -> Vec<String> {
    let mut lines = Vec::new();
    for k in keys {
        let path = d.dir.path().join(out).join(k.as_str().expect("key"));
        let text = String::from_utf8(std::fs::read(path).expect("object")).expect("utf8");
        lines.extend(text.lines().filter(|l| !l.is_empty()).map(String::from));
    }
    lines
}

#[test]
fn boto3_signatures_are_verified_and_policies_decide_each_action() {
    let d = Daemon::launch(&secured_config(true))
        .in_dir(prepared())
        .start();
    assert!(d.url.starts_with("https://"), "{}", d.url);
    let v = boto3(&["scenario", &d.url, &ca(&d)]);
    assert_eq!(v["producer_put"]["ok"], json!(true), "{v}");
    assert_eq!(v["producer_batch"]["FailedPutCount"], json!(0), "{v}");
    assert_eq!(
        v["producer_put_other"],
        denied("producer", "firehose:PutRecord", Some("other"), false)
    );
    assert_eq!(
        v["producer_delete"],
        denied(
            "producer",
            "firehose:DeleteDeliveryStream",
            Some("logs-a"),
            false
        )
    );
    // An action on no stream in particular names no resource, as AWS's message does.
    assert_eq!(
        v["producer_list"],
        denied("producer", "firehose:ListDeliveryStreams", None, false)
    );
    assert_eq!(v["admin_list"]["ok"], json!(true), "{v}");
    assert_eq!(v["admin_create"]["ok"], json!(true), "{v}");
    // Allowed: what is left is the stream's own state (AWS refuses a delete while CREATING).
    assert!(
        v["admin_delete_new"]["ok"] == json!(true)
            || v["admin_delete_new"]["code"] == json!("ResourceInUseException"),
        "{v}"
    );
    // firehose:* is allowed, and an explicit Deny still wins.
    assert_eq!(
        v["admin_delete_denied"],
        denied(
            "admin",
            "firehose:DeleteDeliveryStream",
            Some("logs-keep"),
            true
        )
    );
    // A key whose principal has no policy may do nothing.
    assert_eq!(
        v["nobody_put"],
        denied("nobody", "firehose:PutRecord", Some("logs-a"), false)
    );
    assert_eq!(
        v["unknown_key"],
        json!({"code": "UnrecognizedClientException", "status": 400,
               "message": "The security token included in the request is invalid."})
    );
    assert_eq!(
        v["wrong_secret"]["code"],
        json!("InvalidSignatureException")
    );
    assert!(
        v["wrong_secret"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("The request signature we calculated does not match")),
        "{v}"
    );
    assert_eq!(
        v["unsigned"],
        json!({"code": "MissingAuthenticationTokenException", "status": 400,
               "message": "Missing Authentication Token"})
    );
    assert_eq!(v["expired"]["code"], json!("InvalidSignatureException"));
    assert!(
        v["expired"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Signature expired: ") && m.contains(" - 5 min.)")),
        "{v}"
    );
    assert_eq!(
        v["malformed"]["code"],
        json!("IncompleteSignatureException")
    );
    assert_eq!(v["malformed"]["status"], json!(400));
    assert_eq!(
        v["other_algorithm"]["code"],
        json!("IncompleteSignatureException")
    );

    // What was allowed arrived, and only that: 1 + 10 records in logs-a, none in other.
    let (status, flushed) = signed_curl(&d, ADMIN, &["-X", "POST"], "/v1/streams/logs-a/flush");
    assert_eq!(status, 200, "{flushed}");
    let lines = delivered_lines(&d, "out", flushed["keys"].as_array().expect("keys"));
    assert_eq!(lines.len(), 11, "{lines:?}");
    assert_eq!(
        files_under(&d.dir.path().join("other")),
        Vec::<String>::new()
    );
    // Secrets are never logged.
    let mut d = d;
    let log = d.logs();
    assert!(!log.contains("producer-secret") && !log.contains("admin-secret"));
}

#[test]
fn curl_sigv4_signs_plain_ingest_flush_query_strings_and_non_ascii_names() {
    let d = Daemon::launch(&secured_config(true))
        .in_dir(prepared())
        .start();
    let body = ["--data-binary", "{\"curl\":1}\n{\"curl\":2}\n"];
    let (status, v) = signed_curl(&d, PRODUCER, &body, "/v1/streams/logs-a/records");
    assert_eq!((status, &v), (200, &json!({"accepted": 2})));
    // Query strings, sorted or not (curl before 8.2 signs them in the order sent), encoded.
    for query in ["?a=1&b=2", "?zeta=1&alpha=two%20words", "?k=%E2%9C%93"] {
        let path = format!("/v1/streams/logs-a/records{query}");
        let (status, v) = signed_curl(&d, PRODUCER, &body, &path);
        assert_eq!((status, &v), (200, &json!({"accepted": 2})), "{query}");
    }
    // A body signed as UNSIGNED-PAYLOAD.
    let unsigned = ["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"];
    let args = [&unsigned[..], &body[..]].concat();
    let (status, v) = signed_curl(&d, PRODUCER, &args, "/v1/streams/logs-a/records");
    assert_eq!((status, &v), (200, &json!({"accepted": 2})));
    // A non-ASCII stream name: the signature holds; the name is judged after it.
    let (status, v) = signed_curl(&d, ADMIN, &body, "/v1/streams/caf%C3%A9/records");
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["__type"], json!("ResourceNotFoundException"), "{v}");
    let (status, v) = signed_curl(&d, PRODUCER, &body, "/v1/streams/caf%C3%A9/records");
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["__type"], json!("AccessDeniedException"), "{v}");
    // A body changed after signing: the signature no longer matches it.
    let (status, v) = signed_curl(
        &d,
        PRODUCER,
        &[
            "--data-binary",
            "{}\n",
            "-H",
            &format!("x-amz-content-sha256: {}", "0".repeat(64)),
        ],
        "/v1/streams/logs-a/records",
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["__type"], json!("InvalidSignatureException"), "{v}");
    // Records count as firehose:PutRecordBatch; a flush is its own action.
    let (status, v) = signed_curl(&d, PRODUCER, &["-X", "POST"], "/v1/streams/logs-a/flush");
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        v["message"],
        json!(
            "User: arn:aws:iam::000000000000:user/producer is not authorized to perform: firehose:FlushDeliveryStream on resource: arn:aws:firehose:us-east-1:000000000000:deliverystream/logs-a because no identity-based policy allows the firehose:FlushDeliveryStream action"
        )
    );
    let (status, v) = signed_curl(&d, ADMIN, &["-X", "POST"], "/v1/streams/logs-a/flush");
    assert_eq!(status, 200, "{v}");
    let lines = delivered_lines(&d, "out", v["keys"].as_array().expect("keys"));
    assert_eq!(lines.len(), 10, "{lines:?}");
    // Unsigned: refused; the probes and metrics stay open.
    let ca = ca(&d);
    let url = format!("{}/v1/streams/logs-a/records", d.url);
    let (status, text) = curl(&["--cacert", &ca, "--data-binary", "x\n", &url]);
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("MissingAuthenticationTokenException"),
        "{text}"
    );
    for probe in ["/healthz", "/readyz", "/metrics"] {
        let (status, text) = curl(&["--cacert", &ca, &format!("{}{probe}", d.url)]);
        assert_eq!(status, 200, "{probe}: {text}");
    }
}

#[test]
fn the_aws_cli_and_the_js_sdk_sign_over_tls() {
    let d = Daemon::launch(&secured_config(true))
        .in_dir(prepared())
        .start();
    let ca = ca(&d);
    let aws = |key: (&str, &str), args: &[&str]| {
        Command::new(venv_bin("aws"))
            .args([
                "--endpoint-url",
                &d.url,
                "--ca-bundle",
                &ca,
                "--region",
                "us-east-1",
            ])
            .args(["firehose"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", key.0)
            .env("AWS_SECRET_ACCESS_KEY", key.1)
            .env_remove("AWS_PROFILE")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .expect("aws runs")
    };
    // AWS CLI v1 base64-encodes a blob argument itself.
    let records = r#"[{"Data":"{\"cli\":1}"},{"Data":"{\"cli\":2}"}]"#;
    let out = aws(
        PRODUCER,
        &[
            "put-record-batch",
            "--delivery-stream-name",
            "logs-a",
            "--records",
            records,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["FailedPutCount"], json!(0));
    let out = aws(
        PRODUCER,
        &["delete-delivery-stream", "--delivery-stream-name", "logs-a"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("(AccessDeniedException) when calling the DeleteDeliveryStream operation: User: arn:aws:iam::000000000000:user/producer is not authorized"),
        "{err}"
    );

    // The JS SDK v3, from npm, trusting the test CA through NODE_EXTRA_CA_CERTS.
    let run = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(
        tools().join("js-sdk/node_modules"),
        run.path().join("node_modules"),
    )
    .expect("symlink");
    let script = run.path().join("firehose_sdk.mjs");
    std::fs::copy(repo().join("tests/js/firehose_sdk.mjs"), &script).expect("copied");
    let out = Command::new("node")
        .arg(&script)
        .args([&d.url, PRODUCER.0, PRODUCER.1, "logs-a"])
        .env("NODE_EXTRA_CA_CERTS", &ca)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["put"]["ok"], json!(true), "{v}");
    assert_eq!(v["batch"]["FailedPutCount"], json!(0), "{v}");
    assert_eq!(
        v["describe"],
        denied(
            "producer",
            "firehose:DescribeDeliveryStream",
            Some("logs-a"),
            false
        )
    );
    assert_eq!(v["delete"]["code"], json!("AccessDeniedException"), "{v}");

    let (status, v) = signed_curl(&d, ADMIN, &["-X", "POST"], "/v1/streams/logs-a/flush");
    assert_eq!(status, 200, "{v}");
    let lines = delivered_lines(&d, "out", v["keys"].as_array().expect("keys"));
    assert_eq!(lines.len(), 2 + 1 + 20, "{lines:?}");
}

#[test]
fn only_loopback_is_served_without_auth_and_secrets_must_be_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    let validate = |text: &str| {
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            text.replace("{dir}", &dir.path().display().to_string()),
        )
        .expect("written");
        let out = firehosed()
            .args(["validate", "--config"])
            .arg(&path)
            .output()
            .expect("runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let open = "listen: 0.0.0.0:4573\nstate_dir: '{dir}/state'\ndelivery_streams: []\n";
    let (code, err) = validate(open);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("listen")
            && err.contains("0.0.0.0:4573 is not a loopback address")
            && err.contains("auth: none"),
        "{err}"
    );
    // Said explicitly: served on every address without auth.
    let (code, err) = validate(&format!("auth: none\n{open}"));
    assert_eq!(code, Some(0), "{err}");
    // `run` refuses as `validate` does, before binding anything.
    let path = dir.path().join("c.yaml");
    std::fs::write(
        &path,
        open.replace("{dir}", &dir.path().display().to_string()),
    )
    .expect("written");
    let out = firehosed()
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a loopback address"));

    // A world-readable credentials file: refused by validate and by run.
    use std::os::unix::fs::PermissionsExt;
    let creds = dir.path().join("credentials");
    std::fs::write(&creds, CREDENTIALS).expect("written");
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let secured =
        format!("listen: 0.0.0.0:0\nstate_dir: '{{dir}}/state'\n{POLICIES}delivery_streams: []\n");
    let (code, err) = validate(&secured);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("is readable by every user (mode 644)"),
        "{err}"
    );
    let out = firehosed()
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (code, err) = validate(&secured);
    assert_eq!(code, Some(0), "{err}");

    // Policies are checked like the rest of the file, each problem with its place.
    let bad = secured
        .replace(
            "Effect: Allow\n          Action",
            "Effect: Allwo\n          Action",
        )
        .replace(
            "{Sid: All, Effect: Allow, Action: \"firehose:*\", Resource: \"*\"}",
            "{Effect: Allow, Action: \"s3:GetObject\", Resource: \"*\", Condition: {}}",
        );
    let (code, err) = validate(&bad);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("auth.policies.producer.Statement[0].Effect"),
        "{err}"
    );
    assert!(
        err.contains("\"s3:GetObject\" is not a firehose action"),
        "{err}"
    );
    assert!(err.contains("Condition: is not supported"), "{err}");
    let (code, err) = validate(&secured.replace(
        "credentials_file: '{dir}/credentials'",
        "credentials_file: '{dir}/missing'",
    ));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot read the credentials file"), "{err}");
}

/// The packaged configuration's commented auth and TLS block, uncommented, is a valid
/// configuration: what the file tells an operator to do works.
#[test]
fn the_packaged_config_shows_a_working_auth_and_tls_setup() {
    let dir = prepared();
    let root = dir.path().display().to_string();
    let packaged = std::fs::read_to_string(repo().join("packaging/firehosed.yaml")).expect("file");
    // The commented block runs from `#listen:` to the next line that is not a comment.
    let mut text = String::new();
    let mut in_block = false;
    for line in packaged.lines() {
        in_block = (in_block || line.starts_with("#listen:")) && line.starts_with('#');
        if line.starts_with("listen:") {
            continue;
        }
        text.push_str(if in_block { &line[1..] } else { line });
        text.push('\n');
    }
    assert!(
        text.contains("\nauth:\n") && text.contains("\ntls:"),
        "{text}"
    );
    let text = text
        .replace("/etc/firehosed/credentials", &format!("{root}/credentials"))
        .replace("/etc/firehosed/tls.", &format!("{root}/tls."))
        .replace("/var/lib/firehosed", &format!("{root}/state"));
    let path = dir.path().join("packaged.yaml");
    std::fs::write(&path, text).expect("written");
    let out = firehosed()
        .args(["validate", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn metrics_can_have_a_listener_of_their_own() {
    let dir = prepared();
    let metrics_port = free_port();
    let config = secured_config(false).replace(
        "listen: 127.0.0.1:0\n",
        &format!("listen: 127.0.0.1:0\nmetrics_listen: 127.0.0.1:{metrics_port}\n"),
    );
    let d = Daemon::launch(&config).in_dir(dir).start();
    let metrics = format!("http://127.0.0.1:{metrics_port}");
    let (status, text) = http(&format!("{metrics}/metrics"), "GET", &[], b"");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("firehose_incoming_bytes_total"), "{text}");
    assert_eq!(http(&format!("{metrics}/healthz"), "GET", &[], b"").0, 200);
    // The API is not on the metrics listener, and /metrics is not on the API's.
    assert_eq!(
        http(
            &format!("{metrics}/v1/streams/logs-a/flush"),
            "POST",
            &[],
            b""
        )
        .0,
        404
    );
    assert_eq!(d.get("/metrics").0, 404);
    assert_eq!(d.get("/healthz").0, 200);
}
