//! The lease store a fleet shares: one item per shard, every change conditional on the
//! lease's counter (and the owner it expects), every change of ownership or checkpoint moving
//! the counter on, so two instances can never both believe they hold a shard. DynamoDB in the
//! KCL's shape (`dynamo.rs`), or memory (the unit tier: `memory.rs`), which keeps the same
//! contract (`contract.rs`, run over both).

pub(crate) mod contract;
mod dynamo;
#[cfg(test)]
pub(crate) mod memory;

pub(crate) use dynamo::LeaseTable;

use std::time::Duration;

/// Where a shard's reading resumes, as the KCL writes it in `checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Position {
    TrimHorizon,
    Latest,
    /// `AT_TIMESTAMP`; the time is firehosed's `startingTimestampMillis` attribute.
    AtTimestamp(i64),
    /// The last delivered record: its sequence number and `checkpointSubSequenceNumber`.
    Sequence(String, u64),
    ShardEnd,
}

/// One item of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lease {
    pub(crate) key: String,
    pub(crate) owner: Option<String>,
    pub(crate) counter: u64,
    pub(crate) checkpoint: Position,
    pub(crate) owner_switches: u64,
    pub(crate) parents: Vec<String>,
    /// Set by an instance that took the lease from a live holder: the holder still has to
    /// write its last checkpoint (the KCL 3.x graceful hand-off); the new owner reads only
    /// once it is cleared.
    pub(crate) checkpoint_owner: Option<String>,
    /// firehosed's `firehosedTenure`: written by an owner when it starts reading, so the
    /// exactly-once journal writes of an earlier tenure (another instance's, or its own before
    /// the lease moved) fail their condition.
    pub(crate) tenure: Option<String>,
}

impl Lease {
    pub(crate) fn finished(&self) -> bool {
        self.checkpoint == Position::ShardEnd
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum TableError {
    /// The condition did not hold: someone else changed the item first.
    #[error("the lease changed under us (conditional check failed)")]
    Conflict,
    #[error("DynamoDB table {0:?} does not exist (set leases.create_table: true to create it)")]
    Missing(String),
    #[error("DynamoDB table {table:?} did not become ACTIVE within {waited:?}")]
    NotActive { table: String, waited: Duration },
    #[error("item {key:?} of the lease table is not a lease: {what}")]
    Malformed { key: String, what: &'static str },
    /// Any other failure of the call (the SDK's error with its context), retried by callers.
    #[error("{0}")]
    Call(String),
}

/// Where the leases are kept.
#[derive(Clone)]
pub(crate) enum LeaseStore {
    Dynamo(LeaseTable),
    #[cfg(test)]
    Memory(std::sync::Arc<memory::MemoryLeases>),
}

/// The same call on whichever store holds the leases.
macro_rules! each {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            LeaseStore::Dynamo($s) => $call,
            #[cfg(test)]
            LeaseStore::Memory($s) => $call,
        }
    };
}

impl LeaseStore {
    /// For logs: the table's name.
    pub(crate) fn name(&self) -> &str {
        each!(self, s => s.name())
    }

    /// The table exists (created when `create` and it does not) and is ready.
    pub(crate) async fn ensure(&self, create: bool) -> Result<(), TableError> {
        each!(self, s => s.ensure(create).await)
    }

    /// Every lease, read consistently.
    pub(crate) async fn scan(&self) -> Result<Vec<Lease>, TableError> {
        each!(self, s => s.scan().await)
    }

    /// One lease, read consistently; None when it does not exist.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Lease>, TableError> {
        each!(self, s => s.get(key).await)
    }

    /// A new lease, unowned, unless one exists (false then).
    pub(crate) async fn create(
        &self,
        key: &str,
        parents: &[String],
        at: &Position,
    ) -> Result<bool, TableError> {
        each!(self, s => s.create(key, parents, at).await)
    }

    /// Renews a lease this instance holds at `counter`.
    pub(crate) async fn renew(&self, key: &str, me: &str, counter: u64) -> Result<(), TableError> {
        each!(self, s => s.renew(key, me, counter).await)
    }

    /// Takes a lease as seen (its counter and owner). `hand_off`: the holder is alive and must
    /// write its last checkpoint first (`checkpointOwner`).
    pub(crate) async fn take(
        &self,
        lease: &Lease,
        me: &str,
        hand_off: bool,
    ) -> Result<(), TableError> {
        each!(self, s => s.take(lease, me, hand_off).await)
    }

    /// Moves the checkpoint of a lease this instance holds at `counter`.
    pub(crate) async fn checkpoint(
        &self,
        key: &str,
        me: &str,
        counter: u64,
        at: &Position,
    ) -> Result<(), TableError> {
        each!(self, s => s.checkpoint(key, me, counter, at).await)
    }

    /// The last checkpoint of a lease handed off by this instance, which clears
    /// `checkpointOwner`.
    pub(crate) async fn hand_over(
        &self,
        lease: &Lease,
        me: &str,
        at: Option<&Position>,
    ) -> Result<(), TableError> {
        each!(self, s => s.hand_over(lease, me, at).await)
    }

    /// The new owner gives up waiting for the previous holder's last checkpoint.
    pub(crate) async fn clear_hand_off(
        &self,
        key: &str,
        me: &str,
        counter: u64,
    ) -> Result<(), TableError> {
        each!(self, s => s.clear_hand_off(key, me, counter).await)
    }

    /// Gives a lease up (owner removed).
    pub(crate) async fn release(
        &self,
        key: &str,
        me: &str,
        counter: u64,
    ) -> Result<(), TableError> {
        each!(self, s => s.release(key, me, counter).await)
    }

    /// Starts a tenure of a lease this instance holds at `counter`.
    pub(crate) async fn set_tenure(
        &self,
        key: &str,
        me: &str,
        counter: u64,
        tenure: &str,
    ) -> Result<(), TableError> {
        each!(self, s => s.set_tenure(key, me, counter, tenure).await)
    }

    /// Destination `destination`'s journal of a shard's objects, and the lease.
    pub(crate) async fn journal(
        &self,
        key: &str,
        destination: usize,
    ) -> Result<Option<(Lease, String)>, TableError> {
        each!(self, s => s.journal(key, destination).await)
    }

    /// Replaces a journal, on the condition that the lease is still in `tenure`.
    pub(crate) async fn write_journal(
        &self,
        key: &str,
        destination: usize,
        tenure: &str,
        text: &str,
    ) -> Result<(), TableError> {
        each!(self, s => s.write_journal(key, destination, tenure, text).await)
    }

    /// Deletes a finished shard's lease (its children are being read).
    pub(crate) async fn delete_finished(&self, key: &str) -> Result<(), TableError> {
        each!(self, s => s.delete_finished(key).await)
    }
}
