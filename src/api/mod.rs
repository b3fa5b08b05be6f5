//! HTTP: the Firehose API (`firehose`, `describe`), plain ingest and helpers (`plain`),
//! AWS-shaped errors (`error`), capped bodies (`body`).

mod body;
mod control;
mod describe;
mod error;
mod firehose;
mod plain;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::routing::{get, post};

use crate::streams::Streams;

/// What every handler can see.
pub(crate) struct AppState {
    /// The running streams and their records: the only way to change them.
    pub(crate) streams: Arc<Streams>,
    /// True once every pipeline is started, false again when the drain begins (`/readyz`).
    pub(crate) ready: AtomicBool,
}

impl AppState {
    pub(crate) fn new(streams: Arc<Streams>) -> Self {
        AppState {
            streams,
            ready: AtomicBool::new(false),
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
        .with_state(state)
}
