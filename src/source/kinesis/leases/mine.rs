//! What this instance knows of each lease it has had to do with: one state per lease. Held
//! (read, or about to be), owed (taken from it to balance the fleet: its reader stopped, the
//! last checkpoint still to write), or lost (where its reading stopped, and its tenure, for a
//! re-take that nobody else held in between).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::record::ShardPosition;

/// A lease this instance holds.
pub(super) struct Held {
    pub(super) counter: u64,
    /// When the last successful renewal was sent (the lease is ours until failover after it).
    pub(super) renewed: Instant,
    pub(super) acquired: Instant,
    /// Taken from a live holder that has not written its last checkpoint yet.
    pub(super) waiting_hand_off: bool,
    /// Where to resume when this instance itself read past the checkpoint before (a lease it
    /// lost only locally, re-taken with nobody else having held it).
    pub(super) resume: Option<ShardPosition>,
    /// Its reader read the shard to its end: not started again.
    pub(super) ended: bool,
    /// Until when the lease is certainly held: the reader stops by itself then.
    pub(super) valid: watch::Sender<Instant>,
    /// The tenure its readers read under, once one started (see `start_tenure`).
    pub(super) tenure: Option<Arc<str>>,
}

/// A hand-off this instance owes: its reader is stopped; once everything it read is
/// delivered it writes the last checkpoint.
pub(super) struct Owed {
    /// One past the last log record read of it.
    pub(super) until: u64,
    pub(super) since: Instant,
    /// The tenure it was read under: ended once the hand-off is over.
    pub(super) tenure: Option<Arc<str>>,
}

/// A lease this instance lost: the last record it read of it, and its tenure.
pub(super) struct Lost {
    pub(super) resume: Option<ShardPosition>,
    pub(super) tenure: Option<Arc<str>>,
}

enum Mine {
    Held(Held),
    Owed(Owed),
    Lost(Lost),
}

/// Every lease this instance has had to do with, in its one state.
#[derive(Default)]
pub(super) struct Leases(HashMap<String, Mine>);

impl Leases {
    pub(super) fn held(&self, key: &str) -> Option<&Held> {
        match self.0.get(key) {
            Some(Mine::Held(h)) => Some(h),
            _ => None,
        }
    }

    pub(super) fn held_mut(&mut self, key: &str) -> Option<&mut Held> {
        match self.0.get_mut(key) {
            Some(Mine::Held(h)) => Some(h),
            _ => None,
        }
    }

    /// Every lease held, with its state.
    pub(super) fn all_held(&self) -> impl Iterator<Item = (&String, &Held)> {
        self.0.iter().filter_map(|(k, m)| match m {
            Mine::Held(h) => Some((k, h)),
            _ => None,
        })
    }

    pub(super) fn held_keys(&self) -> Vec<String> {
        self.all_held().map(|(k, _)| k.clone()).collect()
    }

    pub(super) fn is_held(&self, key: &str) -> bool {
        self.held(key).is_some()
    }

    /// `key` is held from now on (whatever this instance knew of it before).
    pub(super) fn hold(&mut self, key: String, held: Held) {
        self.0.insert(key, Mine::Held(held));
    }

    /// Lets go of a held lease (finished, released, lost or handed off), returning its state.
    pub(super) fn unhold(&mut self, key: &str) -> Option<Held> {
        match self.0.remove(key) {
            Some(Mine::Held(h)) => Some(h),
            Some(other) => {
                self.0.insert(key.to_string(), other);
                None
            }
            None => None,
        }
    }

    pub(super) fn owe(&mut self, key: String, owed: Owed) {
        self.0.insert(key, Mine::Owed(owed));
    }

    pub(super) fn owed(&self, key: &str) -> Option<&Owed> {
        match self.0.get(key) {
            Some(Mine::Owed(o)) => Some(o),
            _ => None,
        }
    }

    pub(super) fn is_owed(&self, key: &str) -> bool {
        self.owed(key).is_some()
    }

    pub(super) fn owed_keys(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|(_, m)| matches!(m, Mine::Owed(_)))
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub(super) fn none_owed(&self) -> bool {
        !self.0.values().any(|m| matches!(m, Mine::Owed(_)))
    }

    /// A hand-off is over: the lease is no longer this instance's business.
    pub(super) fn settle(&mut self, key: &str) -> Option<Owed> {
        match self.0.remove(key) {
            Some(Mine::Owed(o)) => Some(o),
            Some(other) => {
                self.0.insert(key.to_string(), other);
                None
            }
            None => None,
        }
    }

    /// `key` was lost: kept with where its reading stopped.
    pub(super) fn lose(&mut self, key: String, lost: Lost) {
        self.0.insert(key, Mine::Lost(lost));
    }

    /// What this instance kept of a lease it lost (taken out).
    pub(super) fn take_lost(&mut self, key: &str) -> Option<Lost> {
        match self.0.remove(key) {
            Some(Mine::Lost(l)) => Some(l),
            Some(other) => {
                self.0.insert(key.to_string(), other);
                None
            }
            None => None,
        }
    }
}
