//! A destination's delivered watermark. Its records are spread over several objects at once
//! (the main object, error objects, backup objects, each open or sealed and waiting for
//! upload); the log cursor may move only below the lowest record still in one of them, and
//! never past a record not handed to the destination yet.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::stagers::Place;
use crate::sync::Lock;

#[derive(Debug)]
pub(crate) struct Watermark {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Every record below this was handed to the destination (or skipped or dropped).
    handed: u64,
    /// Lowest sequence number of each stager's open object.
    open: HashMap<Place, u64>,
    /// Lowest sequence number of each sealed object not delivered yet, by object id.
    sealed: BTreeMap<u64, u64>,
    /// The cursor last released.
    released: u64,
    /// The cursor last recorded durably by the log (after `OnDelivered` returned).
    durable: u64,
    /// Set after a staging failure: the cursor never moves again in this process.
    poisoned: bool,
}

impl Watermark {
    /// Starting at the destination's cursor.
    pub(crate) fn new(cursor: u64) -> Self {
        Watermark {
            state: Mutex::new(State {
                handed: cursor,
                open: HashMap::new(),
                sealed: BTreeMap::new(),
                released: cursor,
                durable: cursor,
                poisoned: false,
            }),
        }
    }

    /// After a staging step: every record below `handed` is handed over, the open objects are
    /// `open` (a stager's place -> its lowest sequence number; None: it has none open now), and
    /// `sealed` (id, lowest) are on their way. Call before the sealed objects are sent to the
    /// uploader.
    pub(crate) fn staged(&self, handed: u64, open: &[(Place, Option<u64>)], sealed: &[(u64, u64)]) {
        let mut s = self.state.locked();
        s.handed = s.handed.max(handed);
        for &(slot, first) in open {
            match first {
                Some(f) => s.open.insert(slot, f),
                None => s.open.remove(&slot),
            };
        }
        for &(id, first) in sealed {
            s.sealed.insert(id, first);
        }
    }

    /// The log recorded the cursor `at` durably.
    pub(crate) fn recorded(&self, at: u64) {
        let mut s = self.state.locked();
        s.durable = s.durable.max(at);
    }

    /// The cursor last recorded durably: what the exactly-once journal may forget below (a
    /// cursor released but not yet written is not enough: a kill -9 then replays from before).
    pub(crate) fn durable(&self) -> u64 {
        self.state.locked().durable
    }

    /// Records may have been lost by a failed staging step: freeze the cursor (the process is
    /// about to exit; a restart replays from the last cursor).
    pub(crate) fn poison(&self) {
        self.state.locked().poisoned = true;
    }

    /// An object was delivered (`None`: nothing new, just check). Returns the new cursor when it
    /// moved.
    pub(crate) fn delivered(&self, id: Option<u64>) -> Option<u64> {
        let mut s = self.state.locked();
        if let Some(id) = id {
            s.sealed.remove(&id);
        }
        if s.poisoned {
            return None;
        }
        let cursor = s
            .open
            .values()
            .chain(s.sealed.values())
            .copied()
            .chain(std::iter::once(s.handed))
            .min()
            .unwrap_or(s.handed);
        if cursor > s.released {
            s.released = cursor;
            Some(cursor)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::stagers::Slot;

    const MAIN: Place = Place {
        set: 0,
        slot: Slot::Main,
    };
    const ERRORS: Place = Place {
        set: 0,
        slot: Slot::Error("processing-failed", 0),
    };

    #[test]
    fn cursor_waits_for_the_lowest_undelivered_record() {
        let w = Watermark::new(0);
        // main object holds 0.., an error object holds 5.. and is sealed as id 7.
        w.staged(10, &[(MAIN, Some(0)), (ERRORS, None)], &[(7, 5)]);
        assert_eq!(
            w.delivered(Some(7)),
            None,
            "the main object with 0.. is still open"
        );
        // main sealed as id 1 (0..), nothing open.
        w.staged(10, &[(MAIN, None)], &[(1, 0)]);
        assert_eq!(w.delivered(Some(1)), Some(10));
        // dropped records only: the cursor follows what was handed.
        w.staged(15, &[], &[]);
        assert_eq!(w.delivered(None), Some(15));
        assert_eq!(w.delivered(None), None, "no move, no release");
        w.staged(20, &[], &[(9, 15)]);
        w.poison();
        assert_eq!(
            w.delivered(Some(9)),
            None,
            "a poisoned watermark never moves"
        );
    }
}
