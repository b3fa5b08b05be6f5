//! HTTP: the Firehose API (`firehose`, `describe`), plain ingest and helpers (`plain`),
//! AWS-shaped errors (`error`), capped bodies (`body`).

mod body;
mod describe;
pub mod error;
pub mod firehose;
pub mod plain;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::stream::DeliveryStream;

/// What every handler can see.
pub struct AppState {
    pub streams: BTreeMap<String, Arc<DeliveryStream>>,
    pub region: String,
    pub account_id: String,
    /// True once every pipeline is started, false again when the drain begins (`/readyz`).
    pub ready: std::sync::atomic::AtomicBool,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", post(firehose::handle))
        .route("/v1/streams/{name}/records", post(plain::ingest))
        .route("/v1/streams/{name}/flush", post(plain::flush))
        .route("/healthz", get(plain::healthz))
        .route("/readyz", get(plain::readyz))
        .route("/metrics", get(plain::metrics))
        .with_state(state)
}
