//! The API's edge: the request's signature verified (SigV4) and its principal's policy asked
//! before a handler acts. Without `auth` (loopback only, or `auth: none`) every caller may do
//! everything, as before.

use axum::http::{HeaderMap, Method, Uri};

use super::AppState;
use super::error::AwsError;
use crate::auth::{Principal, sigv4};

/// Who is calling: a verified principal, or anyone (no `auth`).
pub(super) struct Caller(Option<Principal>);

/// The request as it arrived, for its signature.
pub(super) struct RequestParts<'a> {
    pub(super) method: &'a Method,
    pub(super) uri: &'a Uri,
    pub(super) headers: &'a HeaderMap,
}

/// The caller whose signature `body` and the request's parts carry.
pub(super) fn authenticate(
    state: &AppState,
    parts: &RequestParts<'_>,
    body: &[u8],
) -> Result<Caller, AwsError> {
    let Some(auth) = &state.auth else {
        return Ok(Caller(None));
    };
    let arrived = sigv4::Arrived {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: parts.headers,
        body,
    };
    match auth.authenticate(&arrived) {
        Ok(p) => Ok(Caller(Some(p))),
        Err(e) => {
            crate::metrics::SERVER.unauthenticated.add(1);
            tracing::debug!(error = %e, "request refused");
            Err(e.into())
        }
    }
}

/// Whether the caller may perform `action` (`firehose:PutRecord`) on stream `stream` (or on
/// `*`, for operations on no one stream).
pub(super) fn authorize(
    state: &AppState,
    caller: &Caller,
    action: &str,
    stream: Option<&str>,
) -> Result<(), AwsError> {
    let (Some(auth), Some(principal)) = (&state.auth, &caller.0) else {
        return Ok(());
    };
    let resource = stream.map_or_else(|| "*".to_string(), |s| state.streams.arn(s));
    auth.authorize(principal, action, &resource).map_err(|e| {
        crate::metrics::SERVER.denied.add(1);
        tracing::debug!(error = %e, "request denied");
        AwsError::from(e)
    })
}
