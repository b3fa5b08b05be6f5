//! AWS Signature Version 4, verified: the canonical request and the string to sign rebuilt
//! from what arrived, exactly as the client built them
//! (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html), signed again
//! with the key's secret (the signing key and HMAC from the `aws-sigv4` crate) and compared in
//! constant time. Static access keys in the Authorization header; no session tokens, no
//! presigned query strings.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AuthError;
use super::credentials::Credentials;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// AWS's clock-skew window.
pub(crate) const MAX_SKEW: Duration = Duration::from_secs(5 * 60);
const UNSIGNED: &str = "UNSIGNED-PAYLOAD";

/// What arrived: the request as the client sent it.
pub(crate) struct Arrived<'a> {
    pub(crate) method: &'a str,
    /// The path as received (percent-encoded by the client).
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
}

/// The parts of an Authorization header.
#[derive(Debug, PartialEq, Eq)]
struct Authorization<'a> {
    key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

/// The principal whose key signed the request, or why it is refused.
pub(crate) fn verify(
    req: &Arrived<'_>,
    credentials: &Credentials,
    service: &str,
    now: SystemTime,
) -> Result<String, AuthError> {
    let header = req
        .headers
        .get("authorization")
        .ok_or(AuthError::Missing)?
        .to_str()
        .map_err(|_| AuthError::Incomplete("the Authorization header is not ASCII".into()))?;
    let auth = parse_authorization(header)?;
    let amz_date = request_date(req.headers)?;
    if !amz_date.starts_with(auth.date) || amz_date.len() != 16 {
        return Err(AuthError::WrongScope(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'",
            auth.date,
            amz_date.get(..8).unwrap_or(&amz_date)
        )));
    }
    if auth.service != service {
        return Err(AuthError::WrongScope(format!(
            "Credential should be scoped to correct service: '{service}'."
        )));
    }
    check_time(&amz_date, now)?;
    let secret = credentials.get(auth.key_id).ok_or(AuthError::UnknownKey)?;
    if !auth.signed_headers.contains(&"host") {
        return Err(AuthError::Incomplete(
            "the signed headers must include host".into(),
        ));
    }
    let payload = payload_hash(req)?;
    let headers = canonical_headers(req.headers, &auth.signed_headers);
    let queries = canonical_queries(req.query.unwrap_or(""));
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let day = scope_time(auth.date)?;
    let key = aws_sigv4::sign::v4::generate_signing_key(
        &secret.secret_access_key,
        day,
        auth.region,
        auth.service,
    );
    // Clients canonicalize the path differently (AWS's SDKs encode each segment again, curl
    // signs it as sent), and curl before 8.2 signs the query in the order sent rather than
    // sorted: any of them is the client's own signature over the same request.
    let candidates = canonical_uris(req.path)
        .into_iter()
        .flat_map(|uri| queries.iter().map(move |q| (uri.clone(), q)));
    for (uri, query) in candidates {
        let canonical = format!(
            "{}\n{uri}\n{query}\n{headers}\n{}\n{payload}",
            req.method,
            auth.signed_headers.join(";")
        );
        let to_sign = format!(
            "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let expected = aws_sigv4::sign::v4::calculate_signature(&key, to_sign.as_bytes());
        if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
            return Ok(secret.principal.clone());
        }
    }
    Err(AuthError::BadSignature)
}

fn parse_authorization(header: &str) -> Result<Authorization<'_>, AuthError> {
    let Some(params) = header.strip_prefix(ALGORITHM) else {
        let algorithm = header.split_whitespace().next().unwrap_or("");
        return Err(AuthError::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'"
        )));
    };
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in params.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let mut missing = Vec::new();
    for (name, value) in [
        ("Credential", credential),
        ("Signature", signature),
        ("SignedHeaders", signed),
    ] {
        if value.is_none_or(str::is_empty) {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    if !missing.is_empty() {
        return Err(AuthError::Incomplete(format!(
            "{} Authorization={header}",
            missing.join(" ")
        )));
    }
    let (credential, signed, signature) = (
        credential.unwrap_or_default(),
        signed.unwrap_or_default(),
        signature.unwrap_or_default(),
    );
    let scope: Vec<&str> = credential.split('/').collect();
    let [key_id, date, region, service, terminator] = scope[..] else {
        return Err(AuthError::Incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    if terminator != "aws4_request" || key_id.is_empty() {
        return Err(AuthError::Incomplete(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
        )));
    }
    Ok(Authorization {
        key_id,
        date,
        region,
        service,
        signed_headers: signed.split(';').collect(),
        signature,
    })
}

/// X-Amz-Date, or the Date header (RFC 1123) in the same ISO-8601 basic form.
fn request_date(headers: &HeaderMap) -> Result<String, AuthError> {
    if let Some(v) = headers.get("x-amz-date").and_then(|v| v.to_str().ok()) {
        return Ok(v.to_string());
    }
    if let Some(t) = headers
        .get("date")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
    {
        return Ok(t
            .with_timezone(&chrono::Utc)
            .format("%Y%m%dT%H%M%SZ")
            .to_string());
    }
    Err(AuthError::Incomplete(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
            .into(),
    ))
}

fn parse_amz_date(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// Within AWS's five minutes of now.
fn check_time(amz_date: &str, now: SystemTime) -> Result<(), AuthError> {
    let signed = parse_amz_date(amz_date).ok_or_else(|| {
        AuthError::Incomplete(format!(
            "X-Amz-Date must be yyyyMMddTHHmmssZ (got '{amz_date}')"
        ))
    })?;
    let now: chrono::DateTime<chrono::Utc> = now.into();
    let skew = chrono::Duration::from_std(MAX_SKEW).unwrap_or_default();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    if signed < now - skew {
        return Err(AuthError::Expired(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 5 min.)",
            fmt(now - skew),
            fmt(now)
        )));
    }
    if signed > now + skew {
        return Err(AuthError::Expired(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 5 min.)",
            fmt(now + skew),
            fmt(now)
        )));
    }
    Ok(())
}

/// The start of the credential scope's day (the signing key is derived from the date alone).
fn scope_time(date: &str) -> Result<SystemTime, AuthError> {
    let day = chrono::NaiveDate::parse_from_str(date, "%Y%m%d").map_err(|_| {
        AuthError::Incomplete(format!("bad date in the credential scope: '{date}'"))
    })?;
    Ok(day
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
        .into())
}

/// X-Amz-Content-Sha256 as sent (checked against the body unless UNSIGNED-PAYLOAD), or the
/// body's SHA-256.
fn payload_hash(req: &Arrived<'_>) -> Result<String, AuthError> {
    let sent = req
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok());
    match sent {
        Some(UNSIGNED) => Ok(UNSIGNED.to_string()),
        Some(hash) => {
            let actual = hex::encode(Sha256::digest(req.body));
            if actual.eq_ignore_ascii_case(hash) {
                Ok(hash.to_string())
            } else {
                Err(AuthError::WrongScope(
                    "The provided 'x-amz-content-sha256' header does not match what was computed."
                        .into(),
                ))
            }
        }
        None => Ok(hex::encode(Sha256::digest(req.body))),
    }
}

/// `name:value\n` for each signed header: values of one name joined with `,`, trimmed, inner
/// runs of spaces made one.
fn canonical_headers(headers: &HeaderMap, signed: &[&str]) -> String {
    let mut out = String::new();
    for name in signed {
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out
}

/// AWS's URI encoding: unreserved characters as they are, every other byte `%XX` (upper case);
/// `/` kept unless `encode_slash`.
fn uri_encode(bytes: &[u8], encode_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        if unreserved || (b == b'/' && !encode_slash) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex_digit(b[i + 1]), hex_digit(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn hex_digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// The canonical URIs a client may have signed: the path as sent, decoded and encoded once,
/// encoded twice, the path as sent encoded again (AWS's SDKs: `%3D` signed as `%253D`), and
/// the decoded ones normalized (AWS's SDKs normalize the path they sign for every service but
/// S3: `.` and `..` segments resolved, empty ones dropped; the request line keeps it as it was).
fn canonical_uris(path: &str) -> Vec<String> {
    let path = if path.is_empty() { "/" } else { path };
    let once = uri_encode(&percent_decode(path), false);
    let twice = uri_encode(once.as_bytes(), false);
    let normal_once = uri_encode(
        normalized(&String::from_utf8_lossy(&percent_decode(path))).as_bytes(),
        false,
    );
    let normal_twice = uri_encode(normal_once.as_bytes(), false);
    let again = uri_encode(path.as_bytes(), false);
    let mut out = vec![path.to_string()];
    for uri in [once, twice, again, normal_once, normal_twice] {
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    out
}

/// A path with its `.` and `..` segments resolved and empty segments dropped (RFC 3986's
/// remove_dot_segments, as AWS's signers apply it), a trailing slash kept.
fn normalized(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = format!("/{}", segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
    out
}

/// Parameters sorted by name then value, each encoded as AWS encodes them.
/// The sorted canonical query (AWS's rule), and the pairs in the order sent when that differs.
fn canonical_queries(query: &str) -> Vec<String> {
    let mut out = vec![canonical_query(query, true)];
    let as_sent = canonical_query(query, false);
    if as_sent != out[0] {
        out.push(as_sent);
    }
    out
}

fn canonical_query(query: &str, sorted: bool) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let decode = |s: &str| percent_decode(&s.replace('+', "%20"));
            (uri_encode(&decode(k), true), uri_encode(&decode(v), true))
        })
        .collect();
    if sorted {
        pairs.sort();
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
#[path = "sigv4_suite.rs"]
mod suite;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::credentials::Secret;

    /// The "get-vanilla" case of AWS's SigV4 test suite (the example key of AWS's docs).
    #[test]
    fn aws_test_suite_get_vanilla() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().expect("value"));
        headers.insert("x-amz-date", "20150830T123600Z".parse().expect("value"));
        headers.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
                .parse()
                .expect("value"),
        );
        let mut credentials = Credentials::default();
        credentials.keys.insert(
            "AKIDEXAMPLE".into(),
            Secret {
                principal: "example".into(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            },
        );
        let req = Arrived {
            method: "GET",
            path: "/",
            query: None,
            headers: &headers,
            body: b"",
        };
        let at = |s: &str| -> SystemTime { parse_amz_date(s).expect("date").into() };
        assert_eq!(
            verify(&req, &credentials, "service", at("20150830T123800Z")),
            Ok("example".to_string())
        );
        assert_eq!(
            verify(&req, &credentials, "firehose", at("20150830T123800Z")),
            Err(AuthError::WrongScope(
                "Credential should be scoped to correct service: 'firehose'.".into()
            ))
        );
        assert!(matches!(
            verify(&req, &credentials, "service", at("20150830T124200Z")),
            Err(AuthError::Expired(m)) if m.starts_with("Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z")
        ));
        let mut tampered = headers.clone();
        tampered.insert("host", "other.amazonaws.com".parse().expect("value"));
        let req2 = Arrived {
            headers: &tampered,
            ..req
        };
        assert_eq!(
            verify(&req2, &credentials, "service", at("20150830T123800Z")),
            Err(AuthError::BadSignature)
        );
        credentials.keys.clear();
        assert_eq!(
            verify(&req, &credentials, "service", at("20150830T123800Z")),
            Err(AuthError::UnknownKey)
        );
    }

    #[test]
    fn incomplete_headers_say_what_is_missing() {
        for (header, want) in [
            (
                "AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/firehose/aws4_request",
                "requires 'Signature'",
            ),
            (
                "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=ab",
                "requires 'Credential'",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=A/b, SignedHeaders=host, Signature=ab",
                "exactly 5",
            ),
            (
                "AWS4-ECDSA-P256-SHA256 Credential=x",
                "Unsupported AWS 'algorithm'",
            ),
        ] {
            match parse_authorization(header) {
                Err(AuthError::Incomplete(m)) => assert!(m.contains(want), "{header}: {m}"),
                other => panic!("{header}: {other:?}"),
            }
        }
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical_query("b=2&a=1&a=0&c", true), "a=0&a=1&b=2&c=");
        assert_eq!(canonical_query("k=a%20b&x=%7e+y", true), "k=a%20b&x=~%20y");
        assert_eq!(
            canonical_uris("/v1/streams/%C3%A9/records"),
            vec![
                "/v1/streams/%C3%A9/records".to_string(),
                "/v1/streams/%25C3%25A9/records".to_string()
            ]
        );
        assert_eq!(
            canonical_uris("/v1/streams/\u{e9}/records")[1],
            "/v1/streams/%C3%A9/records"
        );
        assert_eq!(canonical_uris(""), vec!["/".to_string()]);
    }
}
