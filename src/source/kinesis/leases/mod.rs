//! Shard leases for a fleet of instances reading one stream (`source.kinesis_stream.leases`),
//! the way the Kinesis Client Library shares shards: each instance reads only the shards it
//! holds a lease on in the lease store (`lease_store`), renews them every failover / 3, takes
//! expired and unowned ones and steals towards an even split (`balance`), and stops reading a
//! shard the moment it cannot renew or finds the lease taken. Its checkpoints are writes on
//! the lease, conditional on still holding it, so an instance that lost a lease never moves its
//! checkpoint again.
//!
//! Hand-off: a lease taken from a live holder carries `checkpointOwner` (the holder). The
//! holder stops reading it, delivers what it staged (`Hurry` seals the stream's buffers),
//! writes its last checkpoint and clears `checkpointOwner`; only then does the new owner read,
//! from that exact checkpoint (after the failover time it reads anyway). On SIGTERM or a
//! reload, `finish` writes the last checkpoints and releases every lease (owner removed), so
//! the next instance starts at once. Children are taken only once every parent's checkpoint
//! is SHARD_END; a parent's item is deleted once its children are being read.
//!
//! `progress.rs`: what was delivered (the shard ledger, tenures); `mine.rs`: each lease's state
//! on this instance; `manager.rs`: the passes; `coordinate.rs`: the loop that runs them.

mod coordinate;
mod manager;
mod mine;
mod progress;

pub(crate) use coordinate::coordinate;
pub(crate) use manager::{LeaseSetup, Manager};
pub(crate) use progress::Progress;

/// Seals the stream's buffers now, so what a handed-off shard staged is delivered soon
/// (the stream implements it; nothing to seal by default).
pub(crate) trait Hurry: Send + Sync {
    fn hurry(&self);
}

impl Hurry for () {
    fn hurry(&self) {}
}
