//! HTTP: the Firehose API (`firehose`, `describe`), plain ingest and helpers (`plain`),
//! AWS-shaped errors (`error`), capped bodies (`body`).

mod access;
mod body;
mod control;
mod describe;
mod error;
mod firehose;
mod framing;
mod model;
mod plain;
mod put_batch;
mod server;
mod shaped;
mod tls;

pub(crate) use tls::{Tls, TlsError};

pub(crate) use plain::split_lines;
pub(crate) use server::{ServeOptions, serve};

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::watch;

use error::{AwsError, REQUEST_ID_HEADER};

use crate::auth::Authenticator;
use crate::streams::Streams;

/// What every handler can see.
pub(crate) struct AppState {
    /// The running streams and their records: the only way to change them.
    pub(crate) streams: Arc<Streams>,
    /// True once every pipeline is started, false again when the drain begins (`/readyz`).
    pub(crate) ready: AtomicBool,
    /// Turns true when the drain begins: a request body still arriving is cut off then.
    pub(crate) stopping: watch::Receiver<bool>,
    /// Signature and policy checks (`auth`); None: every caller may do everything.
    pub(crate) auth: Option<Arc<Authenticator>>,
    /// How long a request's body may take to arrive.
    pub(crate) body_timeout: std::time::Duration,
}

impl AppState {
    pub(crate) fn new(
        streams: Arc<Streams>,
        stopping: watch::Receiver<bool>,
        auth: Option<Arc<Authenticator>>,
        body_timeout: std::time::Duration,
    ) -> Self {
        AppState {
            streams,
            ready: AtomicBool::new(false),
            stopping,
            auth,
            body_timeout,
        }
    }

    /// What a request's body may be: `bytes` at most, whole within the body timeout, cut at
    /// the drain.
    fn body_limits(&self, bytes: usize) -> body::Limits<'_> {
        body::Limits {
            bytes,
            stopping: &self.stopping,
            timeout: self.body_timeout,
        }
    }
}

/// The API's routes; /metrics too unless it has a listener of its own (`metrics_listen`).
pub(crate) fn router(state: Arc<AppState>, with_metrics: bool) -> Router {
    let mut router = Router::new()
        .route("/", post(firehose::handle))
        .route("/v1/streams/{name}/records", post(plain::ingest))
        .route("/v1/streams/{name}/flush", post(plain::flush))
        .route("/healthz", get(plain::healthz))
        .route("/readyz", get(plain::readyz));
    if with_metrics {
        router = router.route("/metrics", get(plain::metrics));
    }
    finish(router, state)
}

/// /metrics, /healthz and /readyz alone (`metrics_listen`): open, unauthenticated.
pub(crate) fn metrics_router(state: Arc<AppState>) -> Router {
    let router = Router::new()
        .route("/healthz", get(plain::healthz))
        .route("/readyz", get(plain::readyz))
        .route("/metrics", get(plain::metrics));
    finish(router, state)
}

fn finish(router: Router<Arc<AppState>>, state: Arc<AppState>) -> Router {
    router
        .fallback(no_such_path)
        .method_not_allowed_fallback(no_such_method)
        .layer(axum::middleware::map_response(with_request_id))
        .with_state(state)
}

/// Every answer carries a request id, as AWS's do (handlers that made one keep theirs).
async fn with_request_id(mut response: Response) -> Response {
    if !response.headers().contains_key(REQUEST_ID_HEADER)
        && let Ok(v) = HeaderValue::from_str(&error::request_id())
    {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    response
}

async fn no_such_path(method: Method, uri: axum::http::Uri) -> Response {
    AwsError::bad_request(format!(
        "There is no {method} {} here (the Firehose API is POST /; plain ingest is POST /v1/streams/NAME/records)",
        uri.path()
    ))
    .with_status(axum::http::StatusCode::NOT_FOUND)
    .into_response()
}

async fn no_such_method(method: Method, uri: axum::http::Uri, _: HeaderMap) -> Response {
    AwsError::bad_request(format!("{} does not take {method}", uri.path()))
        .with_status(axum::http::StatusCode::METHOD_NOT_ALLOWED)
        .into_response()
}
