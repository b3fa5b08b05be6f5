//! The sealing rule. Whenever an object that is not a partition seals, the "companions" (the
//! unpartitioned main object, the error objects and the backup) holding records below it seal
//! with it, so that a small error or backup object never holds the destination's cursor behind
//! main objects already written. Partitions seal on their own (size, interval, flush), as
//! AWS's do. An object a replay is cutting again seals only when complete.

use tokio::time::Instant;

use super::{Kind, Slot, StagerSet, StagingError, StepResult};
use crate::destination::staging::{ObjectStager, Sealed};

impl StagerSet {
    /// Seals every open object (flush, close) but those a replay is cutting again: sealed
    /// early they would hold part of their entry under its name, and the rest would be lost or
    /// written twice. Left open, they keep holding the cursor, and the next run cuts them again.
    pub(crate) fn seal_all(&mut self) -> StepResult {
        let sealed = seal_each(self.all().filter(|(_, s)| !s.rebuilding()))?;
        self.forget_empty_partitions();
        Ok(sealed)
    }

    /// Seals the objects opened `interval` before `now` (and the companions with them).
    pub(crate) fn seal_due(&mut self, now: Instant, interval: std::time::Duration) -> StepResult {
        // An object cut again seals when complete, not on time.
        let due = self
            .all()
            .filter(|(_, s)| !s.rebuilding() && s.opened().is_some_and(|o| o + interval <= now));
        let mut sealed = seal_each(due)?;
        sealed.extend(self.seal_companions_of(&sealed)?);
        self.forget_empty_partitions();
        Ok(sealed)
    }

    /// Seals the companions that would hold the cursor behind the objects just `sealed`. One
    /// that opened after them (the main object's continuation, holding the rest of the
    /// delivery that filled it) stays open and fills up.
    pub(super) fn seal_companions_of(&mut self, sealed: &[(Sealed, Kind)]) -> StepResult {
        let Some(bound) = companion_bound(sealed) else {
            return Ok(Vec::new());
        };
        seal_each(self.companions().filter(|(slot, s)| {
            let main_continues = *slot == Slot::Main && bound.main_sealed;
            let holds = s.first_seq().is_some_and(|f| f < bound.below);
            !s.rebuilding() && !main_continues && holds
        }))
    }
}

/// Whether the companions must seal now, and below which record: an object sealed that is not
/// a partition (a partition sealing takes nothing with it: the cursor is held by the oldest
/// partition anyway, and hundreds of tiny error objects would follow). The bound is one past
/// the highest record of the objects sealed.
fn companion_bound(sealed: &[(Sealed, Kind)]) -> Option<Bound> {
    let below = sealed
        .iter()
        .filter(|(_, kind)| *kind != Kind::Partition)
        .map(|(o, _)| o.next_seq)
        .max()?;
    Some(Bound {
        below,
        main_sealed: sealed.iter().any(|(_, kind)| *kind == Kind::Main),
    })
}

/// Which companions seal with the objects a step sealed.
#[derive(Clone, Copy)]
struct Bound {
    /// Those holding a record below this.
    below: u64,
    /// The main object sealed (on size): its continuation stays open whatever it holds (a
    /// sub-record of the last record it took may share that record's sequence number).
    main_sealed: bool,
}

/// Seals each stager that has an open object.
fn seal_each<'a>(stagers: impl Iterator<Item = (Slot, &'a mut ObjectStager)>) -> StepResult {
    let mut sealed = Vec::new();
    for (slot, stager) in stagers {
        if let Some(o) = stager.seal().map_err(StagingError::Seal)? {
            sealed.push((o, slot.kind()));
        }
    }
    Ok(sealed)
}
