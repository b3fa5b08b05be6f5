//! Exactly-once naming of a stager's objects: each is named from its identity (the
//! destination's namespace, its slot, its first record's position), and after a restart the
//! journal's objects are cut again from the same records under the same names. This is the
//! part of an object's life that only exactly-once destinations have; `super` calls in here
//! when a stager has an identity.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use super::{ObjectStager, Open, Sealed};
use crate::destination::journal::{self, Entry, Pos};
use crate::destination::naming::ObjectName;

/// Exactly-once delivery of a stager's objects: names derived from their identity, and the
/// journal's entries of this slot that a replay cuts again.
pub(crate) struct Identity {
    /// The destination's: `<stream>/<destination index>`.
    pub(crate) namespace: Arc<str>,
    pub(crate) slot: String,
    /// The journal's entries of this slot, in log order, not yet cut again.
    pub(crate) replay: VecDeque<Entry>,
    /// The open object is the front entry's, cut again: it seals when the log passes that
    /// entry's last record, not on size, interval or with its companions.
    rebuilding: bool,
}

impl Identity {
    pub(crate) fn new(namespace: Arc<str>, slot: String, replay: VecDeque<Entry>) -> Self {
        Identity {
            namespace,
            slot,
            replay,
            rebuilding: false,
        }
    }
}

/// Where a record goes in a stager with an identity.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    /// Into the open object, sealed on size as usual.
    Fresh,
    /// Into the object a journal entry names, cut again.
    Rebuild,
    /// Nowhere: the journal says its object was delivered.
    Skip,
}

impl ObjectStager {
    /// Names objects by their identity and cuts the journal's objects again (exactly-once).
    pub(crate) fn with_identity(mut self, identity: Option<Identity>) -> Self {
        self.identity = identity;
        self
    }

    /// The open object is one a replay cuts again: it seals only when complete.
    pub(crate) fn rebuilding(&self) -> bool {
        self.identity.as_ref().is_some_and(|i| i.rebuilding)
    }

    /// The journal still has entries for this slot (the stager must stay).
    pub(crate) fn replaying(&self) -> bool {
        self.identity.as_ref().is_some_and(|i| !i.replay.is_empty())
    }

    /// Where the record at `pos` goes; seals the objects it completes.
    pub(super) fn route(&mut self, pos: &Pos, sealed: &mut Vec<Sealed>) -> io::Result<Route> {
        loop {
            let Some(id) = self.identity.as_mut() else {
                return Ok(Route::Fresh);
            };
            let Some(front) = id.replay.front() else {
                return Ok(Route::Fresh);
            };
            if *pos > front.last {
                sealed.extend(self.end_entry()?);
                continue;
            }
            if *pos < front.first {
                return Ok(Route::Fresh);
            }
            // A Parquet object's records are converted again even when it was delivered: the
            // records the schema refused went to an error object that may not have been, and
            // only the conversion says which they were. Cut again, it is found already there.
            if front.delivered && self.conversion.is_none() {
                return Ok(Route::Skip);
            }
            if !id.rebuilding {
                // A fresh object open before this entry (records the original did not have
                // here) seals first under its own name.
                sealed.extend(self.seal()?);
                if let Some(id) = self.identity.as_mut() {
                    id.rebuilding = true;
                }
            }
            return Ok(Route::Rebuild);
        }
    }

    /// The front journal entry is done: its object seals (if any of its records came again).
    fn end_entry(&mut self) -> io::Result<Option<Sealed>> {
        if self.rebuilding() && self.current.is_some() {
            return self.seal();
        }
        if let Some(id) = self.identity.as_mut() {
            id.replay.pop_front();
            id.rebuilding = false;
        }
        Ok(None)
    }

    /// Seals the objects of journal entries the log has passed (`end`: every record below it
    /// was handed over).
    pub(crate) fn finish_replayed(&mut self, end: &Pos) -> io::Result<Vec<Sealed>> {
        let mut sealed = Vec::new();
        while let Some(front) = self.identity.as_ref().and_then(|i| i.replay.front()) {
            if front.last >= *end {
                break;
            }
            sealed.extend(self.end_entry()?);
        }
        Ok(sealed)
    }

    /// The sealing object's name: random (at-least-once), the journal entry's (cut again), or
    /// derived from its identity (a new exactly-once object).
    pub(super) fn name(&mut self, cur: &Open) -> (ObjectName, Option<(Entry, bool)>) {
        let Some(id) = self.identity.as_mut() else {
            return (self.naming.object(cur.oldest_ms, &cur.uuid), None);
        };
        if id.rebuilding {
            id.rebuilding = false;
            if let Some(entry) = id.replay.pop_front() {
                let fresh = self.naming.object(cur.oldest_ms, &cur.uuid);
                // The ZIP entry's name as journaled (its length is reserved in the header: a
                // journaled base of another length, after a version change, is not used).
                let base = Some(entry.base.clone())
                    .filter(|b| b.len() == fresh.base.len())
                    .unwrap_or(fresh.base);
                let name = ObjectName {
                    key: entry.key.clone(),
                    base,
                };
                return (name, Some((entry, true)));
            }
        }
        let uuid = journal::object_uuid(&id.namespace, &id.slot, &cur.first);
        let name = self.naming.object(cur.oldest_ms, &uuid);
        let entry = Entry {
            slot: id.slot.clone(),
            first: cur.first.clone(),
            last: cur.last.clone(),
            key: name.key.clone(),
            base: name.base.clone(),
            delivered: false,
        };
        (name, Some((entry, false)))
    }
}
