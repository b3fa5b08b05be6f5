//! HTTP: the Firehose API (`firehose`, `describe`), plain ingest and helpers (`plain`),
//! AWS-shaped errors (`error`), capped bodies (`body`).

mod body;
mod control;
mod describe;
pub mod error;
pub mod firehose;
pub mod plain;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::routing::{get, post};

use crate::stream::DeliveryStream;

/// What every handler can see.
pub struct AppState {
    /// The running streams (an API stream appears once built, goes when deleted).
    pub streams: RwLock<BTreeMap<String, Arc<DeliveryStream>>>,
    pub region: String,
    pub account_id: String,
    /// True once every pipeline is started, false again when the drain begins (`/readyz`).
    pub ready: std::sync::atomic::AtomicBool,
    /// Every stream's origin, version, tags and status.
    pub control: crate::control::Control,
    /// Builds streams created or changed through the API.
    pub builder: crate::app::build::Builder,
    /// One lock per stream name, held by UpdateDestination and DeleteDeliveryStream: one
    /// change of a stream at a time (two updates cannot both pass the version check), while
    /// other streams change freely.
    pub changes: std::sync::Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Held while the set of streams is checked against the open-file limit and changed
    /// (CreateDeliveryStream, UpdateDestination, a reload): two changes cannot both pass.
    pub admission: tokio::sync::Mutex<()>,
}

impl AppState {
    pub fn stream(&self, name: &str) -> Option<Arc<DeliveryStream>> {
        self.streams
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    pub fn all_streams(&self) -> Vec<Arc<DeliveryStream>> {
        self.streams
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The configuration of every stream: running, or being created (its checked config).
    pub fn stream_configs(&self) -> BTreeMap<String, crate::config::StreamConfig> {
        let mut all: BTreeMap<_, _> = self
            .all_streams()
            .iter()
            .map(|s| (s.config.name.clone(), s.config.clone()))
            .collect();
        for name in self.control.names() {
            if !all.contains_key(&name)
                && let Some(config) = self.control.get(&name).and_then(|r| r.config)
            {
                all.insert(name, config);
            }
        }
        all
    }

    pub fn insert_stream(&self, stream: Arc<DeliveryStream>) {
        self.streams
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(stream.name().to_string(), stream);
    }

    /// Waits for, and holds, the right to change stream `name`.
    pub async fn change(&self, name: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    pub fn remove_stream(&self, name: &str) -> Option<Arc<DeliveryStream>> {
        self.streams
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
    }
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
