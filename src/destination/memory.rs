//! An object store in memory, beside S3 and the directory: what the unit tier delivers into.
//! It keeps the same contract (`contract.rs`): an object is written whole or not at all, an
//! exactly-once object is written only if its name is free. A test can take it down (every
//! attempt fails as a transient error, as an unreachable S3 does), hold every attempt until it
//! is let go (a destination that does not answer), and count attempts.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::watch;

use super::sink::{DeliveryError, Written};
use super::staging::Sealed;
use crate::sync::Lock;

#[derive(Debug)]
pub(crate) struct MemorySink {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    /// Every attempt fails (transient) while set.
    down: AtomicBool,
    /// Every attempt waits while this is true.
    held: watch::Sender<bool>,
    attempts: AtomicU64,
}

impl Default for MemorySink {
    fn default() -> Self {
        MemorySink {
            objects: Mutex::new(BTreeMap::new()),
            down: AtomicBool::new(false),
            held: watch::Sender::new(false),
            attempts: AtomicU64::new(0),
        }
    }
}

impl MemorySink {
    /// Writes the sealed object's bytes under its key (an exactly-once object only if the
    /// name is free).
    pub(crate) async fn deliver(&self, object: &Sealed) -> Result<Written, DeliveryError> {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let _ = self.held.subscribe().wait_for(|held| !*held).await;
        if self.down.load(Ordering::Acquire) {
            return Err(DeliveryError {
                transient: true,
                message: "the memory sink is down".into(),
            });
        }
        let path = object.path.clone();
        let bytes = tokio::task::spawn_blocking(move || std::fs::read(path))
            .await
            .map_err(|e| DeliveryError {
                transient: true,
                message: format!("read task failed: {e}"),
            })?
            .map_err(|e| DeliveryError {
                transient: false,
                message: format!("the staging file cannot be read: {e}"),
            })?;
        let mut objects = self.objects.locked();
        if object.identity.is_some() && objects.contains_key(&object.key) {
            return Ok(Written::AlreadyThere);
        }
        objects.insert(object.key.clone(), bytes);
        Ok(Written::Put)
    }

    /// The conditional-write probe a stream's build makes (an attempt like any other: it
    /// waits while the store is held).
    pub(crate) async fn probe(&self) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let _ = self.held.subscribe().wait_for(|held| !*held).await;
    }

    /// Every object written, by key.
    pub(crate) fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        self.objects.locked().clone()
    }

    /// Every attempt fails while `down` (a transient error, retried).
    pub(crate) fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Release);
    }

    /// Every attempt waits while `held` (a destination that does not answer).
    pub(crate) fn hold(&self, held: bool) {
        self.held.send_replace(held);
    }

    pub(crate) fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }
}
