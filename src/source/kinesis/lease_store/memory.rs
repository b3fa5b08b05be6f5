//! Leases in memory, for the unit tier: every change checks what DynamoDB's condition
//! expressions check in `dynamo.rs` (the counter, the owner, `checkpointOwner`, the tenure, a
//! finished checkpoint) and moves the counter as they do, so the lease manager runs on it as on
//! the table (`contract.rs` holds both to one suite). A test can take it down: every call fails
//! as an unreachable table does.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Lease, Position, TableError};
use crate::sync::Lock;

#[derive(Debug, Default)]
pub(crate) struct MemoryLeases {
    items: Mutex<BTreeMap<String, Item>>,
    down: AtomicBool,
}

#[derive(Debug, Clone)]
struct Item {
    lease: Lease,
    /// Per destination, its exactly-once journal of the shard's objects.
    journals: BTreeMap<usize, String>,
}

/// A change's condition: the counter, and the owner (None: no owner).
struct On<'a> {
    counter: u64,
    owner: Option<&'a str>,
}

impl MemoryLeases {
    /// Every call fails while `down` (a table that does not answer).
    pub(crate) fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Release);
    }

    fn up(&self) -> Result<(), TableError> {
        match self.down.load(Ordering::Acquire) {
            true => Err(TableError::Call("the memory lease store is down".into())),
            false => Ok(()),
        }
    }

    /// Applies `change` to `key`'s lease if `on` holds, and moves its counter on.
    fn apply(
        &self,
        key: &str,
        on: On<'_>,
        change: impl FnOnce(&mut Lease) -> Result<(), TableError>,
    ) -> Result<(), TableError> {
        self.up()?;
        let mut items = self.items.locked();
        let item = items.get_mut(key).ok_or(TableError::Conflict)?;
        let l = &mut item.lease;
        if l.counter != on.counter || l.owner.as_deref() != on.owner {
            return Err(TableError::Conflict);
        }
        let mut changed = l.clone();
        change(&mut changed)?;
        changed.counter += 1;
        *l = changed;
        Ok(())
    }

    /// Every lease as it is now (a test's view; no call, never down).
    pub(crate) fn leases(&self) -> Vec<Lease> {
        self.items
            .locked()
            .values()
            .map(|i| i.lease.clone())
            .collect()
    }

    pub(crate) fn name(&self) -> &str {
        "memory"
    }

    pub(crate) async fn ensure(&self, _create: bool) -> Result<(), TableError> {
        self.up()
    }

    pub(crate) async fn scan(&self) -> Result<Vec<Lease>, TableError> {
        self.up()?;
        Ok(self
            .items
            .locked()
            .values()
            .map(|i| i.lease.clone())
            .collect())
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Lease>, TableError> {
        self.up()?;
        Ok(self.items.locked().get(key).map(|i| i.lease.clone()))
    }

    pub(crate) async fn create(
        &self,
        key: &str,
        parents: &[String],
        at: &Position,
    ) -> Result<bool, TableError> {
        self.up()?;
        let mut items = self.items.locked();
        if items.contains_key(key) {
            return Ok(false);
        }
        let lease = Lease {
            key: key.to_string(),
            owner: None,
            counter: 0,
            checkpoint: at.clone(),
            owner_switches: 0,
            parents: parents.to_vec(),
            checkpoint_owner: None,
            tenure: None,
        };
        items.insert(
            key.to_string(),
            Item {
                lease,
                journals: BTreeMap::new(),
            },
        );
        Ok(true)
    }

    pub(crate) async fn renew(&self, key: &str, me: &str, counter: u64) -> Result<(), TableError> {
        let on = On {
            counter,
            owner: Some(me),
        };
        self.apply(key, on, |_| Ok(()))
    }

    pub(crate) async fn take(
        &self,
        lease: &Lease,
        me: &str,
        hand_off: bool,
    ) -> Result<(), TableError> {
        let on = On {
            counter: lease.counter,
            owner: lease.owner.as_deref(),
        };
        self.apply(&lease.key, on, |l| {
            l.owner = Some(me.to_string());
            l.owner_switches = lease.owner_switches + 1;
            if let (true, Some(holder)) = (hand_off, &lease.owner) {
                l.checkpoint_owner = Some(holder.clone());
            }
            Ok(())
        })
    }

    pub(crate) async fn checkpoint(
        &self,
        key: &str,
        me: &str,
        counter: u64,
        at: &Position,
    ) -> Result<(), TableError> {
        let on = On {
            counter,
            owner: Some(me),
        };
        self.apply(key, on, |l| {
            l.checkpoint = at.clone();
            l.owner_switches = 0;
            Ok(())
        })
    }

    pub(crate) async fn hand_over(
        &self,
        lease: &Lease,
        me: &str,
        at: Option<&Position>,
    ) -> Result<(), TableError> {
        let on = On {
            counter: lease.counter,
            owner: lease.owner.as_deref(),
        };
        self.apply(&lease.key, on, |l| {
            if l.checkpoint_owner.as_deref() != Some(me) {
                return Err(TableError::Conflict);
            }
            if let Some(at) = at {
                l.checkpoint = at.clone();
                l.owner_switches = 0;
            }
            l.checkpoint_owner = None;
            Ok(())
        })
    }

    pub(crate) async fn clear_hand_off(
        &self,
        key: &str,
        me: &str,
        counter: u64,
    ) -> Result<(), TableError> {
        let on = On {
            counter,
            owner: Some(me),
        };
        self.apply(key, on, |l| {
            l.checkpoint_owner = None;
            Ok(())
        })
    }

    pub(crate) async fn release(
        &self,
        key: &str,
        me: &str,
        counter: u64,
    ) -> Result<(), TableError> {
        let on = On {
            counter,
            owner: Some(me),
        };
        self.apply(key, on, |l| {
            l.owner = None;
            Ok(())
        })
    }

    pub(crate) async fn set_tenure(
        &self,
        key: &str,
        me: &str,
        counter: u64,
        tenure: &str,
    ) -> Result<(), TableError> {
        let on = On {
            counter,
            owner: Some(me),
        };
        self.apply(key, on, |l| {
            l.tenure = Some(tenure.to_string());
            Ok(())
        })
    }

    pub(crate) async fn journal(
        &self,
        key: &str,
        destination: usize,
    ) -> Result<Option<(Lease, String)>, TableError> {
        self.up()?;
        Ok(self.items.locked().get(key).map(|i| {
            let text = i.journals.get(&destination).cloned().unwrap_or_default();
            (i.lease.clone(), text)
        }))
    }

    pub(crate) async fn write_journal(
        &self,
        key: &str,
        destination: usize,
        tenure: &str,
        text: &str,
    ) -> Result<(), TableError> {
        self.up()?;
        let mut items = self.items.locked();
        let item = items.get_mut(key).ok_or(TableError::Conflict)?;
        if item.lease.tenure.as_deref() != Some(tenure) {
            return Err(TableError::Conflict);
        }
        item.journals.insert(destination, text.to_string());
        Ok(())
    }

    pub(crate) async fn delete_finished(&self, key: &str) -> Result<(), TableError> {
        self.up()?;
        let mut items = self.items.locked();
        match items.get(key) {
            Some(i) if i.lease.finished() => {
                items.remove(key);
                Ok(())
            }
            _ => Err(TableError::Conflict),
        }
    }
}
