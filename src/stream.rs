//! A running delivery stream: accepts records (the Direct PUT entry point), fans them out to its
//! destinations, flushes and closes them. `put` is where the durable spool slots in: records
//! are acknowledged once `put` returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::{RwLock, oneshot};

use crate::config::StreamConfig;
use crate::destination::{DestinationHandle, Input};
use crate::metrics::{DestinationMetrics, StreamMetrics};
use crate::record::{Record, now_ms};

#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("delivery stream {0} is shutting down")]
    Closed(String),
}

pub struct DeliveryStream {
    pub config: StreamConfig,
    /// Goes up by one on every configuration change (object names carry it).
    pub version: u32,
    pub arn: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub metrics: Arc<StreamMetrics>,
    pub destination_metrics: Vec<Arc<DestinationMetrics>>,
    destinations: RwLock<Vec<DestinationHandle>>,
    ids: RecordIds,
}

impl DeliveryStream {
    pub fn new(
        config: StreamConfig,
        version: u32,
        arn: String,
        destinations: Vec<(DestinationHandle, Arc<DestinationMetrics>)>,
    ) -> Self {
        let (handles, metrics): (Vec<_>, Vec<_>) = destinations.into_iter().unzip();
        DeliveryStream {
            config,
            version,
            arn,
            created_at: chrono::Utc::now(),
            metrics: Arc::new(StreamMetrics::default()),
            destination_metrics: metrics,
            destinations: RwLock::new(handles),
            ids: RecordIds::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Accepts records; returns one RecordId per record, in order.
    pub async fn put(&self, data: Vec<Bytes>) -> Result<Vec<String>, PutError> {
        let destinations = self.destinations.read().await;
        if destinations.is_empty() {
            return Err(PutError::Closed(self.config.name.clone()));
        }
        let arrival_ms = now_ms();
        let bytes: usize = data.iter().map(Bytes::len).sum();
        let count = data.len();
        let batch: Arc<[Record]> = data
            .into_iter()
            .map(|data| Record { data, arrival_ms })
            .collect();
        for d in destinations.iter() {
            if !d.send_records(batch.clone(), bytes).await {
                return Err(PutError::Closed(self.config.name.clone()));
            }
        }
        self.metrics.incoming_put_requests.add(1);
        self.metrics.incoming_records.add(count as u64);
        self.metrics.incoming_bytes.add(bytes as u64);
        Ok((0..count).map(|_| self.ids.next()).collect())
    }

    /// Seals every buffer, waits until the objects are written, returns their keys (and those
    /// of every object written since the previous flush).
    pub async fn flush(&self) -> Result<Vec<String>, PutError> {
        let destinations = self.destinations.read().await;
        if destinations.is_empty() {
            return Err(PutError::Closed(self.config.name.clone()));
        }
        let mut waits = Vec::new();
        for d in destinations.iter() {
            let (tx, rx) = oneshot::channel();
            if d.send(Input::Flush(tx)).await {
                waits.push(rx);
            }
        }
        drop(destinations);
        let mut keys = Vec::new();
        for w in waits {
            keys.extend(w.await.unwrap_or_default());
        }
        Ok(keys)
    }

    /// Stops accepting records, seals and delivers everything buffered.
    pub async fn close(&self) {
        let handles = std::mem::take(&mut *self.destinations.write().await);
        for h in handles {
            h.close().await;
        }
    }
}

/// Record ids unique across restarts: a random per-process nonce and a counter, 32 hex digits.
struct RecordIds {
    nonce: u64,
    next: AtomicU64,
}

impl RecordIds {
    fn new() -> Self {
        RecordIds {
            nonce: rand::random(),
            next: AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}{n:016x}", self.nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_are_unique() {
        let ids = RecordIds::new();
        let a = ids.next();
        let b = ids.next();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
    }
}
