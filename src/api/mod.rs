//! HTTP: the Firehose API (`firehose`, `describe`), plain ingest and helpers (`plain`),
//! AWS-shaped errors (`error`), capped bodies (`body`).

mod body;
mod control;
mod describe;
mod error;
mod firehose;
mod framing;
mod plain;
mod server;

pub(crate) use server::serve;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::watch;

use error::{AwsError, REQUEST_ID_HEADER};

use crate::streams::Streams;

/// What every handler can see.
pub(crate) struct AppState {
    /// The running streams and their records: the only way to change them.
    pub(crate) streams: Arc<Streams>,
    /// True once every pipeline is started, false again when the drain begins (`/readyz`).
    pub(crate) ready: AtomicBool,
    /// Turns true when the drain begins: a request body still arriving is cut off then.
    pub(crate) stopping: watch::Receiver<bool>,
}

impl AppState {
    pub(crate) fn new(streams: Arc<Streams>, stopping: watch::Receiver<bool>) -> Self {
        AppState {
            streams,
            ready: AtomicBool::new(false),
            stopping,
        }
    }
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", post(firehose::handle))
        .route("/v1/streams/{name}/records", post(plain::ingest))
        .route("/v1/streams/{name}/flush", post(plain::flush))
        .route("/healthz", get(plain::healthz))
        .route("/readyz", get(plain::readyz))
        .route("/metrics", get(plain::metrics))
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
