//! Safe on a network, reloaded: a SIGHUP rotates the credentials file's keys and the policies
//! (a broken file changes nothing: the running keys stay) and picks up a renewed certificate
//! without dropping a connection or a record. The signatures, policies and listeners this
//! reloads are proven in security.rs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::security::{
    ADMIN, CREDENTIALS, PRODUCER, STREAMS, boto3, delivered_lines, make_certificate, prepared,
    secured_config, write_private,
};
use crate::support::*;
use serde_json::{Value, json};

#[test]
fn sighup_rotates_keys_and_policies_and_a_broken_file_changes_nothing() {
    let dir = prepared();
    let root = dir.path().to_path_buf();
    let mut d = Daemon::launch(&secured_config(false)).in_dir(dir).start();
    let url = d.url.clone();
    let put = |key: (&str, &str)| boto3(&["put", &url, "-", key.0, key.1, "logs-a", "3"]);
    assert_eq!(put(PRODUCER)["ok"], json!(true));
    // The producer's key is rotated; the admin may no longer put.
    let rotated = CREDENTIALS
        .replace("AKIDPRODUCER", "AKIDPRODUCER2")
        .replace("producer-secret", "producer-secret-2");
    write_private(&root.join("credentials"), &rotated);
    let config = secured_config(false).replace(
        "{Sid: All, Effect: Allow, Action: \"firehose:*\", Resource: \"*\"}",
        "{Sid: All, Effect: Allow, NotAction: \"firehose:Put*\", Resource: \"*\"}",
    );
    std::fs::write(
        root.join("firehosed.yaml"),
        config.replace("{dir}", &root.display().to_string()),
    )
    .expect("config");
    let reloads = |d: &mut Daemon| {
        d.logs()
            .matches("credentials file and policies reloaded")
            .count()
    };
    sighup(&d);
    d.wait_for_log(
        "credentials file and policies reloaded",
        Duration::from_secs(20),
    );
    assert_eq!(put(PRODUCER)["code"], json!("UnrecognizedClientException"));
    assert_eq!(
        put(("AKIDPRODUCER2", "producer-secret-2"))["ok"],
        json!(true)
    );
    assert_eq!(
        put(ADMIN)["code"],
        json!("AccessDeniedException"),
        "the reloaded policy applies"
    );
    // A credentials file made world-readable: refused on reload, the running keys stay.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        root.join("credentials"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let before = reloads(&mut d);
    sighup(&d);
    d.wait_for_log(
        "the running keys and policies stay",
        Duration::from_secs(20),
    );
    assert_eq!(reloads(&mut d), before);
    assert_eq!(
        put(("AKIDPRODUCER2", "producer-secret-2"))["ok"],
        json!(true)
    );
}

fn sighup(d: &Daemon) {
    // SAFETY: kill(2) with the child's pid and a signal number.
    let rc = unsafe { libc::kill(d.pid() as i32, libc::SIGHUP) };
    assert_eq!(rc, 0);
}

#[test]
fn sighup_picks_up_a_renewed_certificate_without_dropping_a_connection() {
    let dir = prepared();
    let root = dir.path().to_path_buf();
    // No auth needed for this: loopback, TLS alone.
    let config = format!(
        "listen: 127.0.0.1:0\nstate_dir: '{{dir}}/state'\ntls: {{cert_file: '{{dir}}/tls.crt', key_file: '{{dir}}/tls.key'}}\n{STREAMS}"
    );
    let mut d = Daemon::launch(&config).in_dir(dir).start();
    let addr = d.url.strip_prefix("https://").expect("https").to_string();
    let client = tls_client(&root.join("ca.pem"));
    let mut first = TlsConn::open(&addr, &client);
    assert_eq!(first.peer_certificate(), pem_der(&root.join("one.crt")));
    assert_eq!(
        first.post("/v1/streams/logs-a/records", b"{\"n\":1}\n").0,
        200
    );

    make_certificate(&root, "two");
    for ext in ["crt", "key"] {
        let tmp = root.join(format!("tls.{ext}.new"));
        std::fs::copy(root.join(format!("two.{ext}")), &tmp).expect("copied");
        std::fs::rename(&tmp, root.join(format!("tls.{ext}"))).expect("renamed");
    }
    sighup(&d);
    d.wait_for_log("TLS certificate reloaded", Duration::from_secs(20));
    // The open connection keeps going on the certificate it was made with.
    assert_eq!(
        first.post("/v1/streams/logs-a/records", b"{\"n\":2}\n").0,
        200
    );
    let mut second = TlsConn::open(&addr, &client);
    assert_eq!(second.peer_certificate(), pem_der(&root.join("two.crt")));
    assert_eq!(
        second.post("/v1/streams/logs-a/records", b"{\"n\":3}\n").0,
        200
    );

    // A certificate file that cannot be read: the running one stays.
    std::fs::write(root.join("tls.crt"), "not a certificate").expect("written");
    sighup(&d);
    d.wait_for_log(
        "the TLS certificate cannot be read again",
        Duration::from_secs(20),
    );
    let mut third = TlsConn::open(&addr, &client);
    assert_eq!(third.peer_certificate(), pem_der(&root.join("two.crt")));
    let (status, body) = third.post("/v1/streams/logs-a/flush", b"");
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("JSON");
    let lines = delivered_lines(&d, "out", v["keys"].as_array().expect("keys"));
    assert_eq!(lines, ["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"]);
    assert_eq!(
        first.post("/v1/streams/logs-a/records", b"{\"n\":4}\n").0,
        200
    );

    // Plain HTTP on the TLS port: refused in plain HTTP, AWS-shaped, and the port serves on.
    let (status, text) = http(
        &format!("http://{addr}/v1/streams/logs-a/records"),
        "POST",
        &[],
        b"x\n",
    );
    assert_eq!(status, 400, "{text}");
    let v: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(v["__type"], json!("BadRequestException"));
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("https://")),
        "{v}"
    );
    assert_eq!(
        second.post("/v1/streams/logs-a/records", b"{\"n\":5}\n").0,
        200
    );
}

fn tls_client(ca: &Path) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("CA file") {
        roots
            .add(cert.expect("CA certificate"))
            .expect("root added");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn pem_der(path: &Path) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_file(path)
        .expect("certificate")
        .as_ref()
        .to_vec()
}

/// One kept-alive HTTPS connection.
struct TlsConn {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    addr: String,
}

impl TlsConn {
    fn open(addr: &str, config: &Arc<rustls::ClientConfig>) -> TlsConn {
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let conn = rustls::ClientConnection::new(config.clone(), name).expect("client");
        let tcp = TcpStream::connect(addr).expect("connects");
        tcp.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .expect("handshake");
        }
        TlsConn {
            stream,
            addr: addr.to_string(),
        }
    }

    fn peer_certificate(&self) -> Vec<u8> {
        self.stream.conn.peer_certificates().expect("certificates")[0]
            .as_ref()
            .to_vec()
    }

    /// POST on this connection (kept alive): (status, body).
    fn post(&mut self, path: &str, body: &[u8]) -> (u16, String) {
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        self.stream.write_all(head.as_bytes()).expect("sent");
        self.stream.write_all(body).expect("sent");
        read_response(&mut self.stream)
    }
}

/// One response with a Content-Length body.
fn read_response(stream: &mut impl Read) -> (u16, String) {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("response");
        assert_eq!(n, 1, "the connection closed mid-response: {raw:?}");
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("content-length");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}
