//! The HTTP endpoint sink: each sealed main object is one request of AWS's HTTP endpoint
//! delivery specification (docs/http-endpoint.md): a POST of
//! `{"requestId","timestamp","records":[{"data":base64}]}` with the X-Amz-Firehose-* headers,
//! answered by a 200 whose JSON body echoes the requestId. A request is retried, with the same
//! request id and body, until the retry duration is spent; then its records go to the backup
//! as `http-endpoint-failed` error records. Only then does the worker move the cursor: a record
//! is either taken by the endpoint (a 200) or in the backup. Error and backup objects of the
//! destination go to the backup sink as they are.

use std::io::{self, BufReader, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::time::Instant;

use super::sink::{DeliveryError, Sink, Written};
use super::stagers::Kind;
use super::staging::{FRAME_HEADER, ObjectStager, Rejected, Sealed};
use crate::metrics::DestinationMetrics;
use crate::processing::error_record::{HttpFailure, http_endpoint_failed};
use crate::record::{Record, now_ms};
use crate::retry::{Backoff, LogGate};
use crate::spec::HttpEndpoint;
use crate::sync::Lock;

/// The longest answer read from an endpoint (its body is a small JSON object).
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Error records staged per step of a failover (read from the staged request in one pass).
const FAILOVER_BATCH: usize = 1024;

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Why the endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    #[error("invalid endpoint URL {url:?}")]
    Url {
        url: String,
        #[source]
        source: http::uri::InvalidUri,
    },
    #[error("the {what} cannot be sent as an HTTP header value")]
    Header { what: &'static str },
}

/// One failed attempt, with AWS's error code for it.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("The endpoint did not answer within {0} seconds.")]
    Timeout(u64),
    #[error("Could not connect to the endpoint: {0}")]
    Connect(String),
    #[error("The connection to the endpoint was closed: {0}")]
    Reset(String),
    #[error("The following response was received from the endpoint destination. {status}: {body}")]
    Status { status: u16, body: String },
    #[error("The response received from the endpoint is invalid: {0}")]
    Invalid(String),
}

impl Failure {
    /// The error codes AWS reports for HTTP endpoint deliveries.
    fn code(&self) -> &'static str {
        match self {
            Failure::Timeout(_) => "HttpEndpoint.RequestTimeout",
            Failure::Connect(_) => "HttpEndpoint.ConnectionFailed",
            Failure::Reset(_) => "HttpEndpoint.ConnectionReset",
            Failure::Status { .. } => "HttpEndpoint.DestinationException",
            Failure::Invalid(_) => "HttpEndpoint.InvalidResponseFromDestination",
        }
    }
}

/// A request body built once per object: every attempt sends the same bytes.
struct Body {
    request_id: String,
    bytes: Bytes,
}

pub(crate) struct HttpSink {
    client: HttpsClient,
    uri: Uri,
    headers: Vec<(&'static str, HeaderValue)>,
    gzip: bool,
    retry: Duration,
    timeout: Duration,
    backup: Box<Sink>,
    /// Builds the `http-endpoint-failed` error objects (blocking I/O, one failover at a time).
    failed: Arc<Mutex<ObjectStager>>,
    metrics: Arc<DestinationMetrics>,
    label: String,
}

/// What an HTTP endpoint sink is made of.
pub(crate) struct HttpSetup<'a> {
    pub(crate) endpoint: &'a HttpEndpoint,
    /// The stream's ARN (X-Amz-Firehose-Source-Arn).
    pub(crate) source_arn: String,
    pub(crate) backup: Sink,
    /// The stager of `http-endpoint-failed` error objects.
    pub(crate) failed: ObjectStager,
    pub(crate) metrics: Arc<DestinationMetrics>,
    pub(crate) label: String,
}

impl HttpSink {
    pub(crate) fn new(setup: HttpSetup<'_>) -> Result<Self, SetupError> {
        let e = setup.endpoint;
        let uri: Uri = e.url.parse().map_err(|source| SetupError::Url {
            url: e.url.clone(),
            source,
        })?;
        let header = |what: &'static str, value: &str| {
            HeaderValue::from_str(value).map_err(|_| SetupError::Header { what })
        };
        let mut headers = vec![
            (
                "X-Amz-Firehose-Protocol-Version",
                HeaderValue::from_static("1.0"),
            ),
            (
                "X-Amz-Firehose-Source-Arn",
                header("stream ARN", &setup.source_arn)?,
            ),
        ];
        if let Some(key) = &e.access_key {
            headers.push(("X-Amz-Firehose-Access-Key", header("access key", key)?));
        }
        if !e.common_attributes.is_empty() {
            let json = common_attributes(&e.common_attributes);
            let value =
                HeaderValue::from_bytes(json.as_bytes()).map_err(|_| SetupError::Header {
                    what: "common attributes",
                })?;
            headers.push(("X-Amz-Firehose-Common-Attributes", value));
        }
        Ok(HttpSink {
            client: client(),
            uri,
            headers,
            gzip: e.gzip,
            retry: Duration::from_secs(e.retry_duration_seconds),
            timeout: Duration::from_secs(e.request_timeout_seconds),
            backup: Box::new(setup.backup),
            failed: Arc::new(Mutex::new(setup.failed)),
            metrics: setup.metrics,
            label: setup.label,
        })
    }

    pub(crate) fn url(&self) -> String {
        self.uri.to_string()
    }

    pub(crate) fn backup(&self) -> &Sink {
        &self.backup
    }

    /// Delivers one object: a request's records to the endpoint (or, past the retry duration,
    /// to the backup as error records), anything else to the backup.
    pub(crate) async fn deliver(
        &self,
        object: &Sealed,
        kind: Kind,
    ) -> Result<Written, DeliveryError> {
        if kind != Kind::Main {
            return self.backup.deliver(object, kind).await;
        }
        let body = self.body(object).await?;
        let (failure, attempts) = match self.attempts(object, &body).await {
            Ok(()) => return Ok(Written::Put),
            Err(failed) => failed,
        };
        tracing::warn!(destination = %self.label, request_id = %body.request_id, attempts,
            code = failure.code(), error = %failure, records = object.records,
            "the endpoint did not take the request within the retry duration: its records go to the backup as http-endpoint-failed");
        self.fail_over(object, &failure, attempts).await;
        self.metrics.http_failed_records.add(object.records);
        Ok(Written::BackedUp)
    }

    /// Builds the request body from the staged records (on the blocking pool).
    async fn body(&self, object: &Sealed) -> Result<Body, DeliveryError> {
        let (path, request_id, gzip) = (object.path.clone(), object.key.clone(), self.gzip);
        let built = tokio::task::spawn_blocking(move || {
            let bytes = build_body(&path, &request_id, now_ms(), gzip)?;
            Ok::<_, io::Error>(Body {
                request_id,
                bytes: Bytes::from(bytes),
            })
        })
        .await;
        match built {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(e)) => Err(local_error("cannot read the staged request", &e)),
            Err(e) => Err(local_error("the request body task failed", &e)),
        }
    }

    /// Sends the request until a 200 or the end of the retry duration; the last failure and
    /// the attempts made otherwise.
    /// The retry duration is counted from the first failure, as AWS counts it.
    async fn attempts(&self, object: &Sealed, body: &Body) -> Result<(), (Failure, u32)> {
        let mut deadline: Option<Instant> = None;
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut gate = LogGate::new(Duration::from_secs(30));
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let failure = match self.attempt(body).await {
                Ok(()) => {
                    if attempts > 1 {
                        tracing::info!(destination = %self.label, request_id = %body.request_id,
                            attempts, "delivery recovered");
                    }
                    return Ok(());
                }
                Err(f) => f,
            };
            self.metrics.http_failed_requests.add(1);
            let now = Instant::now();
            let deadline = *deadline.get_or_insert(now + self.retry);
            if now >= deadline {
                return Err((failure, attempts));
            }
            if gate.should_log(now) {
                tracing::warn!(destination = %self.label, request_id = %body.request_id,
                    records = object.records, attempts, code = failure.code(), error = %failure,
                    "request failed; retrying within the retry duration (records are kept)");
            }
            tokio::time::sleep(backoff.next_delay().min(deadline - now)).await;
        }
    }

    /// One request; Ok on a 200 whose body echoes the request id.
    async fn attempt(&self, body: &Body) -> Result<(), Failure> {
        let mut request = Request::post(self.uri.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("X-Amz-Firehose-Request-Id", body.request_id.as_str())
            .header(
                http::header::USER_AGENT,
                concat!("firehosed/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in &self.headers {
            request = request.header(*name, value.clone());
        }
        if self.gzip {
            request = request.header(http::header::CONTENT_ENCODING, "gzip");
        }
        let request = request
            .body(Full::new(body.bytes.clone()))
            .map_err(|e| Failure::Connect(e.to_string()))?;
        let exchange = async {
            let response =
                self.client
                    .request(request)
                    .await
                    .map_err(|e| match e.is_connect() {
                        true => Failure::Connect(crate::report::Chain(&e).to_string()),
                        false => Failure::Reset(crate::report::Chain(&e).to_string()),
                    })?;
            let (parts, incoming) = response.into_parts();
            let bytes = Limited::new(incoming, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(
                    |e| match e.downcast_ref::<http_body_util::LengthLimitError>() {
                        Some(_) => Failure::Invalid(format!(
                            "the response body is over {MAX_RESPONSE_BYTES} bytes"
                        )),
                        None => Failure::Reset(e.to_string()),
                    },
                )?
                .to_bytes();
            Ok::<_, Failure>((parts, bytes))
        };
        let (parts, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Failure::Timeout(self.timeout.as_secs()))??;
        check_response(
            parts.status.as_u16(),
            &parts.headers,
            &bytes,
            &body.request_id,
        )
    }

    /// Writes the object's records as `http-endpoint-failed` error records to the backup,
    /// retrying each error object until the backup takes it.
    async fn fail_over(&self, object: &Sealed, failure: &Failure, attempts: u32) {
        let why = HttpFailure {
            code: failure.code(),
            message: failure.to_string(),
            attempts,
            ending_ms: now_ms(),
        };
        let (path, seq) = (object.path.clone(), object.first_seq);
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        // Every error object is staged before any is delivered: a staging failure starts
        // again from the first record, with nothing half delivered.
        let sealed = loop {
            let (stager, path, why) = (self.failed.clone(), path.clone(), why.clone());
            let step = tokio::task::spawn_blocking(move || {
                let mut s = stager.locked();
                stage_failed(&mut s, &path, seq, &why)
            })
            .await;
            let error = match step {
                Ok(Ok(sealed)) => break sealed,
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            tracing::error!(destination = %self.label, error = %error,
                "cannot stage the http-endpoint-failed records of a request; retrying (its records stay in the log)");
            tokio::time::sleep(backoff.next_delay()).await;
        };
        for o in sealed {
            self.back_up(&o).await;
        }
    }

    /// Delivers one error object to the backup, retrying until it is written.
    async fn back_up(&self, object: &Sealed) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        let mut gate = LogGate::new(Duration::from_secs(30));
        while let Err(e) = self.backup.deliver(object, Kind::Error).await {
            self.metrics.put_failures.add(1);
            if gate.should_log(Instant::now()) {
                tracing::warn!(destination = %self.label, key = %object.key, error = %e.message,
                    "backup delivery failed; retrying (records are kept)");
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
        let _ = tokio::fs::remove_file(&object.path).await;
        self.metrics.delivered_objects.add(1);
        self.metrics.delivered_object_bytes.add(object.size);
        self.metrics.error_records.add(object.records);
    }
}

/// `{"commonAttributes":{...}}` with the attributes in the order written.
fn common_attributes(attributes: &[(String, String)]) -> String {
    let fields: Vec<String> = attributes
        .iter()
        .map(|(k, v)| {
            format!(
                "{}:{}",
                serde_json::Value::from(k.as_str()),
                serde_json::Value::from(v.as_str())
            )
        })
        .collect();
    format!("{{\"commonAttributes\":{{{}}}}}", fields.join(","))
}

/// A client over rustls (aws-lc-rs) trusting the system's roots (SSL_CERT_FILE and
/// SSL_CERT_DIR are honoured); plain http:// URLs are allowed (the YAML may name one).
fn client() -> HttpsClient {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b.with_root_certificates(roots).with_no_client_auth(),
        // The provider supports the default versions; this cannot happen.
        Err(_) => rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    };
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https)
}

/// The specification's answer: a 200 (any other status fails, even a 2xx), a JSON object
/// body whose requestId is the request's.
fn check_response(
    status: u16,
    headers: &http::HeaderMap,
    body: &[u8],
    request_id: &str,
) -> Result<(), Failure> {
    if status != 200 {
        let text = String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned();
        return Err(Failure::Status { status, body: text });
    }
    let json_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json_type {
        return Err(Failure::Invalid(
            "its Content-Type is not application/json".into(),
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Failure::Invalid(format!("its body is not JSON ({e})")))?;
    match value.get("requestId").and_then(|v| v.as_str()) {
        Some(id) if id == request_id => Ok(()),
        Some(id) => Err(Failure::Invalid(format!(
            "its requestId {id:?} is not the request's ({request_id:?})"
        ))),
        None => Err(Failure::Invalid("its body has no requestId".into())),
    }
}

/// Reads the framed records of a staged request.
struct Frames<R> {
    inner: R,
}

impl<R: Read> Frames<R> {
    /// The next record's arrival time and bytes; None at the end.
    fn next(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<i64>> {
        let mut header = [0u8; FRAME_HEADER];
        match self.inner.read_exact(&mut header[..1]) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            other => other?,
        }
        self.inner.read_exact(&mut header[1..])?;
        let mut len = [0u8; 4];
        len.copy_from_slice(&header[..4]);
        let mut arrival = [0u8; 8];
        arrival.copy_from_slice(&header[4..]);
        buf.resize(u32::from_le_bytes(len) as usize, 0);
        self.inner.read_exact(buf)?;
        Ok(Some(i64::from_le_bytes(arrival)))
    }
}

fn frames(path: &Path) -> io::Result<Frames<BufReader<std::fs::File>>> {
    Ok(Frames {
        inner: BufReader::with_capacity(256 * 1024, std::fs::File::open(path)?),
    })
}

/// The request body of the records staged at `path`, GZIP-compressed when `gzip`.
fn build_body(path: &Path, request_id: &str, timestamp_ms: i64, gzip: bool) -> io::Result<Vec<u8>> {
    let size = std::fs::metadata(path)?.len() as usize;
    if gzip {
        let out = flate2::write::GzEncoder::new(
            Vec::with_capacity(size / 4),
            flate2::Compression::default(),
        );
        write_body(out, path, request_id, timestamp_ms)?.finish()
    } else {
        write_body(
            Vec::with_capacity(size / 3 * 4 + 64),
            path,
            request_id,
            timestamp_ms,
        )
    }
}

fn write_body<W: Write>(
    mut out: W,
    path: &Path,
    request_id: &str,
    timestamp_ms: i64,
) -> io::Result<W> {
    let head = serde_json::json!({ "requestId": request_id, "timestamp": timestamp_ms });
    let head = head.to_string();
    // `{"requestId":..,"timestamp":..}` opened up to take the records.
    out.write_all(&head.as_bytes()[..head.len() - 1])?;
    out.write_all(b",\"records\":[")?;
    let mut frames = frames(path)?;
    let (mut data, mut encoded) = (Vec::new(), String::new());
    let mut first = true;
    while frames.next(&mut data)?.is_some() {
        encoded.clear();
        base64::engine::general_purpose::STANDARD.encode_string(&data, &mut encoded);
        out.write_all(if first {
            b"{\"data\":\""
        } else {
            b",{\"data\":\""
        })?;
        out.write_all(encoded.as_bytes())?;
        out.write_all(b"\"}")?;
        first = false;
    }
    out.write_all(b"]}")?;
    Ok(out)
}

/// Stages the error records of every record of the request at `path` (read once, in batches
/// of `FAILOVER_BATCH`); the error objects, all sealed. On an error nothing is left staged.
fn stage_failed(
    stager: &mut ObjectStager,
    path: &Path,
    seq: u64,
    why: &HttpFailure,
) -> io::Result<Vec<Sealed>> {
    let mut sealed = Vec::new();
    let staged = stage_failed_into(stager, path, seq, why, &mut sealed);
    if let Err(e) = staged {
        stager.discard_open();
        for o in &sealed {
            let _ = std::fs::remove_file(&o.path);
        }
        return Err(e);
    }
    Ok(sealed)
}

fn stage_failed_into(
    stager: &mut ObjectStager,
    path: &Path,
    seq: u64,
    why: &HttpFailure,
    sealed: &mut Vec<Sealed>,
) -> io::Result<()> {
    let mut frames = frames(path)?;
    let mut data = Vec::new();
    loop {
        let mut lines = Vec::with_capacity(FAILOVER_BATCH);
        while lines.len() < FAILOVER_BATCH {
            let Some(arrival_ms) = frames.next(&mut data)? else {
                break;
            };
            let original = Record {
                data: Bytes::copy_from_slice(&data),
                arrival_ms,
                seq,
                sub: 0,
                kinesis: None,
            };
            lines.push(http_endpoint_failed(&original, why).line);
        }
        if lines.is_empty() {
            sealed.extend(stager.seal()?);
            return Ok(());
        }
        let objects = stager
            .append(&lines, Instant::now(), &mut Rejected::default())
            .map_err(|(e, _)| e)?;
        sealed.extend(objects);
    }
}

fn local_error(what: &str, e: &dyn std::fmt::Display) -> DeliveryError {
    DeliveryError {
        transient: true,
        message: format!("{what}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staged(dir: &Path, records: &[&[u8]]) -> std::path::PathBuf {
        let path = dir.join("r.part");
        let mut out = Vec::new();
        for (i, r) in records.iter().enumerate() {
            out.extend_from_slice(&(r.len() as u32).to_le_bytes());
            out.extend_from_slice(&(1_000 + i as i64).to_le_bytes());
            out.extend_from_slice(r);
        }
        std::fs::write(&path, out).expect("write");
        path
    }

    #[test]
    fn the_body_is_the_specification_s_json_and_gzip_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = staged(dir.path(), &[b"hello", b"", b"{\"a\":1}\n"]);
        let plain = build_body(&path, "id-1", 42, false).expect("body");
        let v: serde_json::Value = serde_json::from_slice(&plain).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"requestId": "id-1", "timestamp": 42, "records": [
                {"data": "aGVsbG8="}, {"data": ""}, {"data": "eyJhIjoxfQo="}]})
        );
        let gz = build_body(&path, "id-1", 42, true).expect("body");
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .expect("gunzip");
        assert_eq!(back, plain);
        let empty = staged(dir.path(), &[]);
        let v: serde_json::Value =
            serde_json::from_slice(&build_body(&empty, "x", 1, false).expect("body"))
                .expect("json");
        assert_eq!(v["records"], serde_json::json!([]));
    }

    #[test]
    fn common_attributes_are_sent_in_the_order_written() {
        let attributes = [
            ("b".to_string(), "2".to_string()),
            ("a\"".to_string(), "é".to_string()),
        ];
        assert_eq!(
            common_attributes(&attributes),
            r#"{"commonAttributes":{"b":"2","a\"":"é"}}"#
        );
    }

    #[test]
    fn only_a_200_echoing_the_request_id_in_json_is_success() {
        let mut json = http::HeaderMap::new();
        json.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let ok = br#"{"requestId":"r1","timestamp":1}"#;
        assert!(check_response(200, &json, ok, "r1").is_ok());
        let code = |r: Result<(), Failure>| r.err().map(|f| f.code());
        assert_eq!(
            code(check_response(201, &json, ok, "r1")),
            Some("HttpEndpoint.DestinationException")
        );
        assert_eq!(
            code(check_response(503, &json, b"busy", "r1")),
            Some("HttpEndpoint.DestinationException")
        );
        let invalid = Some("HttpEndpoint.InvalidResponseFromDestination");
        assert_eq!(code(check_response(200, &json, ok, "r2")), invalid);
        assert_eq!(code(check_response(200, &json, b"not json", "r1")), invalid);
        assert_eq!(code(check_response(200, &json, b"{}", "r1")), invalid);
        assert_eq!(
            code(check_response(200, &http::HeaderMap::new(), ok, "r1")),
            invalid
        );
        let text = check_response(500, &json, br#"{"errorMessage":"down"}"#, "r1")
            .err()
            .map(|f| f.to_string());
        assert_eq!(
            text.as_deref(),
            Some(
                r#"The following response was received from the endpoint destination. 500: {"errorMessage":"down"}"#
            )
        );
    }
}
