//! AWS's SigV4 test suite, vendored whole (tests/data/aws-signing-test-suite/v4, see its
//! ORIGIN.md), run through the verifier: every case's signed request is accepted at its
//! timestamp by the key of its context, with the canonical URI, query and headers AWS lists
//! among the verifier's; and the cases that must fail do: the same request with one hex digit of
//! its signature changed, with its X-Amz-Date a second later (a signed header changed), or a
//! byte of a signed body changed; the presigned form (query-string authentication, which
//! firehosed does not take) is refused as unsigned.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::*;
use crate::auth::credentials::{Credentials, Secret};

/// Why a case did not hold, for the test's report.
#[derive(Debug)]
struct Mismatch(String);

impl From<String> for Mismatch {
    fn from(s: String) -> Self {
        Mismatch(s)
    }
}

impl From<&str> for Mismatch {
    fn from(s: &str) -> Self {
        Mismatch(s.to_string())
    }
}

#[derive(serde::Deserialize)]
struct Context {
    credentials: ContextCredentials,
    service: String,
    timestamp: String,
}

#[derive(serde::Deserialize)]
struct ContextCredentials {
    access_key_id: String,
    secret_access_key: String,
}

/// A request as the suite writes it: the request line, headers (folded lines joined with a
/// space, as AWS's canonical form of them reads), a blank line, the body.
struct Written {
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
}

fn suite() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/aws-signing-test-suite/v4")
}

/// Bytes a request line cannot carry raw (spaces, non-ASCII) as a client sends them: `%XX`.
fn as_sent(text: &str) -> String {
    let mut out = String::new();
    for &b in text.as_bytes() {
        if b.is_ascii_graphic() {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn parse(text: &str) -> Written {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().expect("a request line");
    let (method, rest) = request_line.split_once(' ').expect("a method");
    let target = rest.rsplit_once(' ').map_or(rest, |(t, _)| t);
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (as_sent(p), Some(as_sent(q))),
        None => (as_sent(target), None),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = pairs.last_mut().expect("a folded line follows a header");
            last.1 = format!("{} {}", last.1, line.trim());
        } else if let Some((name, value)) = line.split_once(':') {
            pairs.push((name.to_ascii_lowercase(), value.to_string()));
        }
    }
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            HeaderValue::from_str(&value).expect("a header value"),
        );
    }
    Written {
        method: method.to_string(),
        path,
        query,
        headers,
        body: body.as_bytes().to_vec(),
    }
}

fn verify_written(
    w: &Written,
    credentials: &Credentials,
    ctx: &Context,
) -> Result<String, AuthError> {
    let now: SystemTime = chrono::DateTime::parse_from_rfc3339(&ctx.timestamp)
        .expect("the context's timestamp")
        .with_timezone(&chrono::Utc)
        .into();
    let req = Arrived {
        method: &w.method,
        path: &w.path,
        query: w.query.as_deref(),
        headers: &w.headers,
        body: &w.body,
    };
    verify(&req, credentials, &ctx.service, now)
}

/// The canonical request's URI, query and headers (AWS's header-canonical-request.txt) are
/// among the verifier's candidates for the request as sent.
/// `with_headers`: false for the crate's two cases of its own, whose canonical request carries
/// another date than their signed request.
fn check_canonical(dir: &Path, w: &Written, with_headers: bool) -> Result<(), Mismatch> {
    let text = std::fs::read_to_string(dir.join("header-canonical-request.txt"))
        .map_err(|e| e.to_string())?;
    let lines: Vec<&str> = text.lines().collect();
    let (uri, query) = (lines[1], lines[2]);
    let blank = lines[3..]
        .iter()
        .position(|l| l.is_empty())
        .expect("a blank line")
        + 3;
    let expected_headers: String = lines[3..blank].iter().map(|l| format!("{l}\n")).collect();
    let signed: Vec<&str> = lines[blank + 1].split(';').collect();
    let uris = canonical_uris(&w.path);
    if !uris.iter().any(|u| u == uri) {
        return Err(format!("canonical URI {uri:?} not among {uris:?}").into());
    }
    let queries = canonical_queries(w.query.as_deref().unwrap_or(""));
    if !queries.iter().any(|q| q == query) {
        return Err(format!("canonical query {query:?} not among {queries:?}").into());
    }
    let headers = canonical_headers(&w.headers, &signed);
    if with_headers && headers != expected_headers {
        return Err(format!("canonical headers {headers:?}, AWS's {expected_headers:?}").into());
    }
    Ok(())
}

/// The cases that must fail, made from one that passes.
fn check_refusals(w: &Written, credentials: &Credentials, ctx: &Context) -> Result<(), Mismatch> {
    let auth = w.headers["authorization"]
        .to_str()
        .expect("ASCII")
        .to_string();
    let last = auth.chars().last().expect("a signature");
    let other = if last == '0' { '1' } else { '0' };
    let mut headers = w.headers.clone();
    let tampered = format!("{}{other}", &auth[..auth.len() - 1]);
    headers.insert(
        "authorization",
        HeaderValue::from_str(&tampered).expect("value"),
    );
    let changed = Written {
        headers,
        ..clone(w)
    };
    if verify_written(&changed, credentials, ctx) != Err(AuthError::BadSignature) {
        return Err("a changed signature was not refused".into());
    }
    if let Some(date) = w.headers.get("x-amz-date").and_then(|d| d.to_str().ok()) {
        let later = parse_amz_date(date).expect("a date") + chrono::Duration::seconds(1);
        let mut headers = w.headers.clone();
        let text = later.format("%Y%m%dT%H%M%SZ").to_string();
        headers.insert("x-amz-date", HeaderValue::from_str(&text).expect("value"));
        let changed = Written {
            headers,
            ..clone(w)
        };
        if verify_written(&changed, credentials, ctx) != Err(AuthError::BadSignature) {
            return Err("a changed X-Amz-Date was not refused".into());
        }
    }
    if !w.body.is_empty() {
        let mut body = w.body.clone();
        body[0] ^= 1;
        let changed = Written { body, ..clone(w) };
        if verify_written(&changed, credentials, ctx).is_ok() {
            return Err("a changed body was not refused".into());
        }
    }
    Ok(())
}

fn clone(w: &Written) -> Written {
    Written {
        method: w.method.clone(),
        path: w.path.clone(),
        query: w.query.clone(),
        headers: w.headers.clone(),
        body: w.body.clone(),
    }
}

fn run_case(dir: &Path) -> Result<(), Mismatch> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).map_err(|e| e.to_string());
    let written = parse(&read("header-signed-request.txt")?);
    // Two cases of the crate's own (double-url-encode, double-encode-path) carry no context:
    // their canonical URI and query are all they check.
    let context = read("context.json");
    check_canonical(dir, &written, context.is_ok())?;
    let Ok(context) = context else {
        return Ok(());
    };
    let ctx: Context = serde_json::from_str(&context).map_err(|e| e.to_string())?;
    let mut credentials = Credentials::default();
    credentials.keys.insert(
        ctx.credentials.access_key_id.clone(),
        Secret {
            principal: "suite".into(),
            secret_access_key: ctx.credentials.secret_access_key.clone(),
        },
    );
    match verify_written(&written, &credentials, &ctx) {
        Ok(p) if p == "suite" => {}
        other => return Err(format!("the signed request: {other:?}").into()),
    }
    check_refusals(&written, &credentials, &ctx)?;
    if let Ok(presigned) = read("query-signed-request.txt") {
        let w = parse(&presigned);
        if verify_written(&w, &credentials, &ctx) != Err(AuthError::Missing) {
            return Err("a presigned request was not refused as unsigned".into());
        }
    }
    Ok(())
}

#[test]
fn every_case_of_aws_sigv4_test_suite() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(suite())
        .expect("the vendored suite")
        .map(|e| e.expect("an entry").path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|dir| {
            run_case(dir).err().map(|Mismatch(e)| {
                format!(
                    "{}: {e}",
                    dir.file_name().unwrap_or_default().to_string_lossy()
                )
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
