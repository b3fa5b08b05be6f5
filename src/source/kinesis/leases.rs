//! Shard leases for a fleet of instances reading one stream (`source.kinesis_stream.leases`),
//! the way the Kinesis Client Library shares shards: each instance reads only the shards it
//! holds a lease on in the DynamoDB table (`table`), renews them every failover / 3, takes
//! expired and unowned ones and steals towards an even split (`balance`), and stops reading a
//! shard the moment it cannot renew or finds the lease taken. Its checkpoints are writes on
//! the lease, conditional on still holding it, so an instance that lost a lease never moves its
//! checkpoint again.
//!
//! Hand-off: a lease taken from a live holder carries `checkpointOwner` (the holder). The
//! holder stops reading it, delivers what it staged (`hurry` seals the stream's buffers), writes
//! its last checkpoint and clears `checkpointOwner`; only then does the new owner read, from
//! that exact checkpoint (after the failover time it reads anyway). On SIGTERM or a reload,
//! `finish` writes the last checkpoints and releases every lease (owner removed), so the
//! next instance starts at once. Children are taken only once every parent's checkpoint is
//! SHARD_END; a parent's item is deleted once its children are being read.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::balance::{self, Pick, Seen};
use super::checkpoint::{Checkpoints, Origin};
use super::lease_store::{Lease, LeaseStore, Position, TableError};
use super::metrics::LeaseMetrics;
use super::readers::Readers;
use super::seqnum;
use super::shard::{Appended, ReadEnd, Start, Tenure};
use super::{ShardInfo, discover};
use crate::record::Record;
use crate::retry::LogGate;
use crate::sync::Lock;

/// Seals the stream's buffers now, so what a handed-off shard staged is delivered soon.
pub(crate) type Hurry = Arc<dyn Fn() + Send + Sync>;

/// What the stream's destinations delivered, per shard, not yet written to the table: filled
/// by the memory log's release (any thread), written by the manager.
#[derive(Default)]
pub(crate) struct Progress {
    state: Mutex<ProgressState>,
    wake: Notify,
    /// A destination delivers exactly once: a tenure this instance stops reading under is
    /// fenced (its staged remainder dropped, the next owner cuts it).
    exactly_once: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct ProgressState {
    delivered: HashMap<String, Delivered>,
    /// Log position one past a shard's last record, once its reader reached the shard end.
    ends: HashMap<Arc<str>, u64>,
    /// Read to the end and delivered: SHARD_END to write.
    finished: HashSet<String>,
    /// Every record below it is delivered.
    floor: u64,
    /// Tenures whose exactly-once journal writes failed (another instance's tenure began):
    /// their records were dropped, never delivered, so they never move a checkpoint.
    fenced: HashSet<Arc<str>>,
    /// The last checkpoint written per shard (exactly-once journals forget below it).
    written: HashMap<String, Appended>,
    /// The tenure each held shard is read under: records of any other tenure of the shard
    /// (an earlier one of this instance, still on their way) never move its checkpoint.
    current: HashMap<String, Arc<str>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Delivered {
    at: Appended,
    /// Records delivered since the last checkpoint written.
    records: u64,
}

impl Progress {
    pub(crate) fn shard_ended(&self, shard: Arc<str>, end: u64) {
        {
            let mut s = self.state.locked();
            if end <= s.floor {
                // Everything the shard had is delivered already (its reader saw the end only
                // after an empty read): `released` runs only when a cursor moves, and with no
                // other shard feeding this log none might, so the shard is finished now. Left
                // in `ends`, it never got its SHARD_END and its children were never read.
                s.finished.insert(shard.to_string());
            } else {
                s.ends.insert(shard, end);
            }
        }
        self.wake.notify_one();
    }

    /// Every destination has delivered `records` and everything below `floor`.
    pub(crate) fn released(&self, records: &[Record], floor: u64) {
        let mut s = self.state.locked();
        for r in records {
            let Some(k) = &r.kinesis else { continue };
            let other = s
                .current
                .get(k.shard_id.as_ref())
                .is_some_and(|t| *t != k.tenure);
            if other || s.fenced.contains(&k.tenure) {
                continue;
            }
            let at = (k.sequence_number.to_string(), k.subsequence_number);
            let d = s
                .delivered
                .entry(k.shard_id.to_string())
                .or_insert_with(|| Delivered {
                    at: at.clone(),
                    records: 0,
                });
            // A lease re-taken re-reads from its checkpoint: never move back.
            if after(&at, &d.at) {
                d.at = at;
            }
            d.records += 1;
        }
        s.floor = s.floor.max(floor);
        let ended: Vec<Arc<str>> = s
            .ends
            .iter()
            .filter(|(_, end)| **end <= floor)
            .map(|(k, _)| k.clone())
            .collect();
        for shard in ended {
            s.ends.remove(&shard);
            s.finished.insert(shard.to_string());
        }
        drop(s);
        self.wake.notify_one();
    }

    /// An exactly-once destination could not journal objects under `tenure`: another
    /// instance's tenure of the shard began, and that instance cuts the objects now.
    pub(crate) fn fence(&self, tenure: Arc<str>) {
        self.state.locked().fenced.insert(tenure);
    }

    /// A destination of the stream delivers exactly once (see `Manager::end_tenure`).
    pub(crate) fn set_exactly_once(&self) {
        self.exactly_once
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn is_fenced(&self, tenure: &str) -> bool {
        self.state.locked().fenced.contains(tenure)
    }

    /// `shard` is read under `tenure` from now on; `fresh`: a new tenure, reading from the
    /// checkpoint, so what earlier ones delivered, ended or finished is forgotten.
    fn set_current(&self, shard: &str, tenure: Arc<str>, fresh: bool) {
        let mut s = self.state.locked();
        if fresh {
            s.delivered.remove(shard);
            s.finished.remove(shard);
            s.ends.remove(shard);
        }
        s.current.insert(shard.to_string(), tenure);
    }

    /// The last checkpoint this instance wrote for `shard`.
    pub(crate) fn written(&self, shard: &str) -> Option<Appended> {
        self.state.locked().written.get(shard).cloned()
    }

    fn note_written(&self, shard: &str, at: &Appended) {
        self.state
            .locked()
            .written
            .insert(shard.to_string(), at.clone());
    }

    fn floor(&self) -> u64 {
        self.state.locked().floor
    }

    /// What to write for `shard`: the last delivered record, whether the shard is finished.
    fn take(&self, shard: &str) -> (Option<Delivered>, bool) {
        let mut s = self.state.locked();
        (s.delivered.remove(shard), s.finished.remove(shard))
    }

    /// A write that failed: merged back with what came since.
    fn put_back(&self, shard: &str, delivered: Option<Delivered>, finished: bool) {
        let mut s = self.state.locked();
        if finished {
            s.finished.insert(shard.to_string());
        }
        let Some(d) = delivered else { return };
        match s.delivered.get_mut(shard) {
            Some(now) => {
                now.records += d.records;
                if after(&d.at, &now.at) {
                    now.at = d.at;
                }
            }
            None => {
                s.delivered.insert(shard.to_string(), d);
            }
        }
    }

    fn pending(&self) -> Vec<String> {
        let s = self.state.locked();
        s.delivered
            .keys()
            .cloned()
            .chain(s.finished.iter().cloned())
            .collect()
    }

    /// Another instance owns `shard`: what this one delivered past its last checkpoint will
    /// be read again there. Returns how many records that is.
    fn forget(&self, shard: &str) -> u64 {
        let mut s = self.state.locked();
        s.finished.remove(shard);
        s.ends.remove(shard);
        s.delivered.remove(shard).map_or(0, |d| d.records)
    }
}

fn after(a: &Appended, b: &Appended) -> bool {
    seqnum::cmp(&a.0, &b.0).then(a.1.cmp(&b.1)).is_gt()
}

/// A lease this instance holds.
struct Held {
    counter: u64,
    /// When the last successful renewal was sent (the lease is ours until failover after it).
    renewed: Instant,
    acquired: Instant,
    /// Taken from a live holder that has not written its last checkpoint yet.
    waiting_hand_off: bool,
    /// Where to resume when this instance itself read past the checkpoint before (a lease it
    /// lost only locally, re-taken with nobody else having held it).
    resume: Option<Appended>,
    /// Its reader read the shard to its end: not started again.
    ended: bool,
    /// Until when the lease is certainly held: the reader stops by itself then.
    valid: watch::Sender<Instant>,
    /// The tenure its readers read under, once one started (see `start_tenure`).
    tenure: Option<Arc<str>>,
}

/// A hand-off this instance owes: its reader is stopped; once everything it read is
/// delivered it writes the last checkpoint.
struct Owed {
    until: u64,
    since: Instant,
    /// The tenure it was read under: ended once the hand-off is over.
    tenure: Option<Arc<str>>,
}

/// What the manager is started with.
pub(crate) struct LeaseSetup {
    pub(crate) table: LeaseStore,
    pub(crate) me: String,
    pub(crate) failover: Duration,
    pub(crate) progress: Arc<Progress>,
    pub(crate) metrics: Arc<LeaseMetrics>,
    /// The local checkpoints of an earlier single-instance run: new items start from them.
    pub(crate) files: Arc<Checkpoints>,
    pub(crate) origin: Origin,
}

pub(crate) struct Manager {
    s: LeaseSetup,
    hurry: Hurry,
    held: HashMap<String, Held>,
    owed: HashMap<String, Owed>,
    /// Per lease: the counter last seen and when it was first seen (its owner's liveness,
    /// on this instance's clock, as the KCL judges it).
    seen: HashMap<String, (u64, Instant)>,
    /// Leases this instance lost: the last record it read of each, and its tenure.
    previous: HashMap<String, (Option<Appended>, Option<Arc<str>>)>,
    gate: LogGate,
    passes: u64,
    /// The last scan that succeeded: after a longer gap (the table was unreachable) nobody
    /// could renew, so every owner gets a fresh failover time before its leases count as
    /// expired, and each instance takes its own back first.
    scanned: Option<Instant>,
}

impl Manager {
    pub(crate) fn new(setup: LeaseSetup) -> Manager {
        Manager {
            s: setup,
            hurry: Arc::new(|| {}),
            held: HashMap::new(),
            owed: HashMap::new(),
            seen: HashMap::new(),
            previous: HashMap::new(),
            gate: LogGate::new(Duration::from_secs(30)),
            passes: 0,
            scanned: None,
        }
    }

    /// How to seal the stream's buffers (known once the stream is built).
    pub(crate) fn set_hurry(&mut self, hurry: Hurry) {
        self.hurry = hurry;
    }

    pub(crate) fn table(&self) -> &LeaseStore {
        &self.s.table
    }

    pub(crate) fn progress(&self) -> Arc<Progress> {
        self.s.progress.clone()
    }

    fn complain(&mut self, what: &str, e: &TableError) {
        if self.gate.should_log(Instant::now()) {
            tracing::warn!(table = %self.s.table.name(), error = %e, "{what}; retrying");
        }
    }

    /// Renews the leases due; one that cannot be renewed for the failover time is lost.
    async fn renew(&mut self, readers: &mut Readers) {
        let every = self.s.failover / 3;
        let due: Vec<(String, u64)> = self
            .held
            .iter()
            .filter(|(_, h)| h.renewed.elapsed() >= every)
            .map(|(k, h)| (k.clone(), h.counter))
            .collect();
        // At once, so a slow table delays every renewal by one call, not one per lease.
        let mut calls = JoinSet::new();
        for (key, counter) in due {
            let (table, me) = (self.s.table.clone(), self.s.me.clone());
            calls.spawn(async move {
                let sent = Instant::now();
                let result = table.renew(&key, &me, counter).await;
                (key, sent, result)
            });
        }
        while let Some(done) = calls.join_next().await {
            let Ok((key, sent, result)) = done else {
                continue;
            };
            match result {
                Ok(()) => {
                    if let Some(h) = self.held.get_mut(&key) {
                        h.counter += 1;
                        h.renewed = sent;
                        let _ = h.valid.send(sent + self.s.failover);
                    }
                }
                Err(TableError::Conflict) => self.changed_under_us(&key, readers).await,
                Err(e) => {
                    self.s.metrics.renew_failures.add(1);
                    self.complain("cannot renew a lease", &e);
                }
            }
        }
        let expired: Vec<String> = self
            .held
            .iter()
            .filter(|(_, h)| h.renewed.elapsed() >= self.s.failover)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            tracing::warn!(shard = %key, "lease not renewed for the failover time: stopped reading");
            self.lose(&key, readers).await;
        }
    }

    /// Stops reading a lease this instance no longer holds; remembers where it was.
    async fn lose(&mut self, key: &str, readers: &mut Readers) {
        let Some(h) = self.held.remove(key) else {
            return;
        };
        self.s.metrics.lost.add(1);
        let appended = match readers.stop(key).await {
            Some(ReadEnd::Stopped(a)) => a.or(h.resume),
            _ => h.resume,
        };
        self.previous
            .insert(key.to_string(), (appended, h.tenure.clone()));
        self.end_tenure(h.tenure);
    }

    /// A conditional write on a held lease failed: read it to learn why.
    async fn changed_under_us(&mut self, key: &str, readers: &mut Readers) {
        match self.s.table.get(key).await {
            Ok(Some(lease)) => self.reconcile(&lease, readers).await,
            Ok(None) => self.lose(key, readers).await,
            Err(e) => {
                self.s.metrics.renew_failures.add(1);
                self.complain("cannot read a lease", &e);
            }
        }
    }

    /// Brings a held lease in line with the table: still ours (a hand-over or a write whose
    /// answer was lost moved the counter), taken from us to be handed off, or lost.
    async fn reconcile(&mut self, lease: &Lease, readers: &mut Readers) {
        let Some(h) = self.held.get_mut(&lease.key) else {
            return;
        };
        if lease.owner.as_deref() == Some(self.s.me.as_str()) {
            h.counter = h.counter.max(lease.counter);
            return;
        }
        if lease.checkpoint_owner.as_deref() == Some(self.s.me.as_str()) {
            let tenure = self.held.remove(&lease.key).and_then(|h| h.tenure);
            self.s.metrics.handed_off.add(1);
            readers.stop(&lease.key).await;
            let until = readers.shared().log.end();
            tracing::info!(shard = %lease.key, to = ?lease.owner,
                "lease taken to balance the fleet: delivering what was read, then handing it off");
            self.owed.insert(
                lease.key.clone(),
                Owed {
                    until,
                    since: Instant::now(),
                    tenure,
                },
            );
            (self.hurry)();
        } else {
            tracing::warn!(shard = %lease.key, owner = ?lease.owner, "lease lost: stopped reading");
            self.lose(&lease.key, readers).await;
        }
    }

    /// Writes the checkpoints of what was delivered on held leases.
    async fn checkpoint(&mut self, readers: &mut Readers, table: &HashMap<String, Lease>) {
        for key in self.s.progress.pending() {
            if self.owed.contains_key(&key) {
                continue;
            }
            let Some((counter, waiting)) =
                self.held.get(&key).map(|h| (h.counter, h.waiting_hand_off))
            else {
                self.not_held(&key, table);
                continue;
            };
            if waiting {
                continue;
            }
            let (delivered, finished) = self.s.progress.take(&key);
            let at = match (&delivered, finished) {
                (_, true) => Position::ShardEnd,
                (Some(d), false) => Position::Sequence(d.at.0.clone(), d.at.1),
                (None, false) => continue,
            };
            match self
                .s
                .table
                .checkpoint(&key, &self.s.me, counter, &at)
                .await
            {
                Ok(()) => {
                    if let Position::Sequence(seq, sub) = &at {
                        self.s.progress.note_written(&key, &(seq.clone(), *sub));
                    }
                    if finished {
                        tracing::info!(shard = %key, "shard finished: read to its end and delivered");
                        self.held.remove(&key);
                    } else if let Some(h) = self.held.get_mut(&key) {
                        h.counter += 1;
                    }
                }
                Err(TableError::Conflict) => {
                    self.s.progress.put_back(&key, delivered, finished);
                    self.changed_under_us(&key, readers).await;
                }
                Err(e) => {
                    self.s.progress.put_back(&key, delivered, finished);
                    self.complain("cannot write a checkpoint", &e);
                }
            }
        }
    }

    /// Delivered records of a shard this instance does not hold: once another instance owns
    /// it, they will be read there again (counted); otherwise kept for a re-take.
    fn not_held(&mut self, key: &str, table: &HashMap<String, Lease>) {
        let owner = table.get(key).and_then(|l| l.owner.as_deref());
        if owner.is_some_and(|o| o != self.s.me) {
            let n = self.s.progress.forget(key);
            if n > 0 {
                self.s.metrics.duplicates.add(n);
                tracing::warn!(shard = %key, records = n,
                    "records delivered after the lease was lost: its new owner reads them again");
            }
        }
    }

    /// The hand-offs owed: once what was read is delivered (or the failover time is nearly
    /// up), the last checkpoint, clearing `checkpointOwner`.
    async fn hand_over(&mut self, table: &HashMap<String, Lease>) {
        let floor = self.s.progress.floor();
        let patience = self.s.failover.mul_f64(0.8);
        let keys: Vec<String> = self.owed.keys().cloned().collect();
        for key in keys {
            let Some(o) = self.owed.get(&key) else {
                continue;
            };
            if floor < o.until && o.since.elapsed() < patience {
                continue;
            }
            let Some(lease) = table.get(&key) else {
                self.end_owed(&key);
                continue;
            };
            if lease.checkpoint_owner.as_deref() != Some(self.s.me.as_str()) {
                // The new owner stopped waiting.
                self.end_owed(&key);
                continue;
            }
            let (delivered, finished) = self.s.progress.take(&key);
            let at = match (&delivered, finished) {
                (_, true) => Some(Position::ShardEnd),
                (Some(d), false) => Some(Position::Sequence(d.at.0.clone(), d.at.1)),
                (None, false) => None,
            };
            match self.s.table.hand_over(lease, &self.s.me, at.as_ref()).await {
                Ok(()) => {
                    tracing::info!(shard = %key, checkpoint = ?at, "lease handed off");
                    self.end_owed(&key);
                }
                Err(e) => {
                    self.s.progress.put_back(&key, delivered, finished);
                    if !matches!(e, TableError::Conflict) {
                        self.complain("cannot hand a lease off", &e);
                    }
                }
            }
        }
    }

    /// A hand-off is over (done, or the new owner stopped waiting): its tenure ends.
    fn end_owed(&mut self, key: &str) {
        if let Some(o) = self.owed.remove(key) {
            self.end_tenure(o.tenure);
        }
    }

    /// This instance reads no more under `tenure`: exactly-once destinations drop what they
    /// still stage of it (objects being cut again that will never complete, fresh ones never
    /// journaled), which the lease's next owner cuts; told at once (`hurry` runs a step).
    fn end_tenure(&self, tenure: Option<Arc<str>>) {
        let exactly_once = self
            .s
            .progress
            .exactly_once
            .load(std::sync::atomic::Ordering::Relaxed);
        // At-least-once keeps delivering what it read (and resumes after it on a re-take).
        if let Some(t) = tenure.filter(|_| exactly_once) {
            self.s.progress.fence(t);
            (self.hurry)();
        }
    }

    /// Items for listed shards that have none (parents first), unless a descendant has one
    /// (its item was deleted once finished): from this instance's checkpoint file if an
    /// earlier single-instance run left one, else where the source starts.
    async fn create_missing(&mut self, shards: &[ShardInfo], table: &HashMap<String, Lease>) {
        let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
        for s in shards {
            for p in &s.parents {
                children.entry(p.as_str()).or_default().push(s.id.as_str());
            }
        }
        let superseded = |id: &str| {
            let mut stack: Vec<&str> = children.get(id).cloned().unwrap_or_default();
            let mut visited = HashSet::new();
            while let Some(c) = stack.pop() {
                if table.contains_key(c) {
                    return true;
                }
                if visited.insert(c) {
                    stack.extend(children.get(c).cloned().unwrap_or_default());
                }
            }
            false
        };
        for s in shards {
            if table.contains_key(&s.id) || superseded(&s.id) {
                continue;
            }
            let at = self.initial_position(s);
            match self.s.table.create(&s.id, &s.parents, &at).await {
                Ok(_) => {}
                Err(e) => {
                    // Stop here: a child is never created before its parent.
                    self.complain("cannot create a lease", &e);
                    return;
                }
            }
        }
    }

    fn initial_position(&self, s: &ShardInfo) -> Position {
        if let Some(ck) = self.s.files.get(&s.id) {
            if ck.finished {
                return Position::ShardEnd;
            }
            if let Some(seq) = ck.sequence_number {
                return Position::Sequence(seq, ck.subsequence_number);
            }
        }
        if !s.parents.is_empty() {
            return Position::TrimHorizon;
        }
        match self.s.origin {
            Origin::TrimHorizon => Position::TrimHorizon,
            Origin::AtTimestamp { timestamp_ms } => Position::AtTimestamp(timestamp_ms),
        }
    }

    /// The leases as the taker sees them: liveness by counter changes on this clock, parents
    /// finished or gone, this instance's own from an earlier run free to take back.
    fn view<'a>(
        &mut self,
        shards: &'a [ShardInfo],
        table: &'a HashMap<String, Lease>,
    ) -> Vec<Seen<'a>> {
        let now = Instant::now();
        for l in table.values() {
            let e = self.seen.entry(l.key.clone()).or_insert((l.counter, now));
            if e.0 != l.counter {
                *e = (l.counter, now);
            }
        }
        let listed: HashSet<&str> = shards.iter().map(|s| s.id.as_str()).collect();
        let parent_done = |p: &str| !listed.contains(p) || table.get(p).is_none_or(Lease::finished);
        let mut out = Vec::new();
        for s in shards {
            let Some(l) = table.get(&s.id).filter(|l| !l.finished()) else {
                continue;
            };
            let mine = l.owner.as_deref() == Some(self.s.me.as_str());
            let stale = self
                .seen
                .get(&l.key)
                .is_some_and(|(_, since)| now.duration_since(*since) >= self.s.failover);
            out.push(Seen {
                key: &l.key,
                owner: l.owner.as_deref(),
                expired: if mine {
                    !self.held.contains_key(&l.key)
                } else {
                    l.owner.is_some() && stale
                },
                ready: s.parents.iter().chain(&l.parents).all(|p| parent_done(p)),
                handing_off: l.checkpoint_owner.is_some() || self.owed.contains_key(&l.key),
            });
        }
        out
    }

    /// Takes and steals what the balance says, one conditional write each.
    async fn take(&mut self, shards: &[ShardInfo], table: &HashMap<String, Lease>) {
        let picks = {
            let me = self.s.me.clone();
            let seen = self.view(shards, table);
            balance::plan(&me, &seen)
        };
        for pick in picks {
            let (key, steal) = match &pick {
                Pick::Take(k) => (k, false),
                Pick::Steal(k) => (k, true),
            };
            let Some(lease) = table.get(key) else {
                continue;
            };
            let sent = Instant::now();
            match self.s.table.take(lease, &self.s.me, steal).await {
                Ok(()) => {
                    // Still ours in the table: nobody has owned it since this instance lost it
                    // (an owner changes only by a take or a release), so nobody read past
                    // what this instance read and will deliver: resume right after that. (Its
                    // counter may have moved: renewals sent while the table was unreachable
                    // can land after their timeout.)
                    let (resume, tenure) = self
                        .previous
                        .remove(key)
                        .filter(|_| lease.owner.as_deref() == Some(self.s.me.as_str()))
                        .unwrap_or_default();
                    tracing::info!(shard = %key, from = ?lease.owner, steal, "took lease");
                    if steal {
                        self.s.metrics.stolen.add(1);
                    } else {
                        self.s.metrics.taken.add(1);
                    }
                    self.held.insert(
                        key.clone(),
                        Held {
                            counter: lease.counter + 1,
                            renewed: sent,
                            acquired: sent,
                            waiting_hand_off: steal || lease.checkpoint_owner.is_some(),
                            resume,
                            ended: false,
                            valid: watch::channel(sent + self.s.failover).0,
                            tenure,
                        },
                    );
                }
                Err(TableError::Conflict) => {}
                Err(e) => self.complain("cannot take a lease", &e),
            }
        }
    }

    /// Starts a reader for every held lease whose previous holder is done with it. A stolen
    /// lease waits for a scan made after it was taken (`scanned` is when `table` was read):
    /// only such a scan can show the previous holder's `checkpointOwner` and last checkpoint.
    async fn start_readers(
        &mut self,
        readers: &mut Readers,
        table: &HashMap<String, Lease>,
        scanned: Instant,
    ) {
        let keys: Vec<String> = self.held.keys().cloned().collect();
        for key in keys {
            if readers.is_reading(&key) {
                continue;
            }
            let Some(lease) = table.get(&key) else {
                continue;
            };
            let Some(h) = self.held.get_mut(&key) else {
                continue;
            };
            if h.ended || (h.waiting_hand_off && scanned < h.acquired) {
                continue;
            }
            if h.waiting_hand_off {
                if lease.checkpoint_owner.is_some() && h.acquired.elapsed() < self.s.failover {
                    continue;
                }
                if lease.checkpoint_owner.is_some() {
                    tracing::warn!(shard = %key, holder = ?lease.checkpoint_owner,
                        "the previous holder did not hand the lease off in time: reading from its last checkpoint");
                    match self
                        .s
                        .table
                        .clear_hand_off(&key, &self.s.me, h.counter)
                        .await
                    {
                        Ok(()) => h.counter += 1,
                        Err(_) => continue,
                    }
                }
                h.waiting_hand_off = false;
            }
            if lease.finished() {
                continue;
            }
            let Some(tenure) = self.start_tenure(&key).await else {
                continue;
            };
            let Some(h) = self.held.get_mut(&key) else {
                continue;
            };
            let start = match (&lease.checkpoint, h.resume.take()) {
                (Position::ShardEnd, _) => continue,
                (Position::Sequence(seq, sub), Some(r)) if after(&r, &(seq.clone(), *sub)) => {
                    Start::AtCheckpoint {
                        sequence: r.0,
                        subsequence: r.1,
                    }
                }
                (Position::TrimHorizon | Position::Latest | Position::AtTimestamp(_), Some(r)) => {
                    Start::AtCheckpoint {
                        sequence: r.0,
                        subsequence: r.1,
                    }
                }
                (at, _) => start_at(at),
            };
            let lease = Tenure {
                valid: h.valid.subscribe(),
                token: tenure,
            };
            readers.spawn(&key, start, Some(lease));
        }
    }

    /// The tenure a held lease's reader reads under. The one it had goes on while nobody else
    /// held the lease since and nothing was fenced (the reader resumes where it stopped, its
    /// records still staged under that tenure); otherwise a new one is written to the lease
    /// (conditional on holding it), which fences off every earlier tenure's journal writes,
    /// and the reader starts from the checkpoint. None: it could not be written now.
    async fn start_tenure(&mut self, key: &str) -> Option<Arc<str>> {
        let progress = self.s.progress.clone();
        let h = self.held.get_mut(key)?;
        if let Some(t) = h.tenure.clone() {
            if !progress.is_fenced(&t) {
                progress.set_current(key, t.clone(), false);
                return Some(t);
            }
            h.resume = None;
        }
        let token: Arc<str> = format!("{}/{}", self.s.me, uuid::Uuid::new_v4()).into();
        let counter = h.counter;
        match self
            .s
            .table
            .set_tenure(key, &self.s.me, counter, &token)
            .await
        {
            Ok(()) => {
                let h = self.held.get_mut(key)?;
                h.counter += 1;
                // A tenure of this instance's own that was cut short: what it read is
                // dropped or fenced, so reading starts again from the checkpoint.
                if h.tenure.is_some() {
                    h.resume = None;
                }
                h.tenure = Some(token.clone());
                progress.set_current(key, token.clone(), h.resume.is_none());
                Some(token)
            }
            Err(e) => {
                self.complain("cannot start a lease's tenure", &e);
                None
            }
        }
    }

    /// Deletes finished parents whose children are all being read (the KCL's order).
    async fn clean_up(&mut self, shards: &[ShardInfo], table: &HashMap<String, Lease>) {
        for parent in table.values().filter(|l| l.finished()) {
            let children: Vec<&ShardInfo> = shards
                .iter()
                .filter(|s| s.parents.contains(&parent.key))
                .collect();
            let read = |c: &&ShardInfo| {
                table.get(&c.id).is_some_and(|l| {
                    l.owner.is_some()
                        || matches!(l.checkpoint, Position::Sequence(..) | Position::ShardEnd)
                })
            };
            if !children.is_empty() && children.iter().all(read) {
                match self.s.table.delete_finished(&parent.key).await {
                    Ok(()) => {
                        tracing::info!(shard = %parent.key, "deleted the finished parent's lease")
                    }
                    Err(TableError::Conflict) => {}
                    Err(e) => self.complain("cannot delete a finished lease", &e),
                }
            }
        }
    }

    /// One pass: renew, read the table, hand off, checkpoint, create, take, start readers.
    async fn pass(&mut self, shards: &[ShardInfo], readers: &mut Readers) {
        self.passes += 1;
        for (key, end) in readers.reap().await {
            let Some(h) = self.held.get_mut(&key) else {
                continue;
            };
            match end {
                ReadEnd::Ended => h.ended = true,
                ReadEnd::Stopped(a) => h.resume = a.or(h.resume.take()),
            }
        }
        self.renew(readers).await;
        let table = match self.s.table.scan().await {
            Ok(leases) => leases
                .into_iter()
                .map(|l| (l.key.clone(), l))
                .collect::<HashMap<_, _>>(),
            Err(e) => {
                self.complain("cannot read the lease table", &e);
                return;
            }
        };
        let now = Instant::now();
        if self
            .scanned
            .is_some_and(|t| now.duration_since(t) >= self.s.failover / 2)
        {
            for (_, since) in self.seen.values_mut() {
                *since = now;
            }
        }
        self.scanned = Some(now);
        for l in table.values() {
            let ours = l.owner.as_deref() == Some(self.s.me.as_str());
            let counter = self.held.get(&l.key).map(|h| h.counter);
            if counter.is_some_and(|c| !ours || l.counter > c) {
                self.reconcile(l, readers).await;
            }
        }
        self.hand_over(&table).await;
        self.checkpoint(readers, &table).await;
        self.create_missing(shards, &table).await;
        self.take(shards, &table).await;
        self.start_readers(readers, &table, now).await;
        if self.passes.is_multiple_of(10) {
            self.clean_up(shards, &table).await;
        }
        self.s.metrics.set_held(self.held.len() as u64);
    }

    /// After the stream delivered everything it read: the last checkpoints, the hand-offs
    /// owed, every lease released so the next instance starts at once from them.
    async fn finish(mut self, readers: &mut Readers) {
        let deadline = Instant::now() + self.s.failover;
        let keys: Vec<String> = self.held.keys().cloned().collect();
        for _ in 0..5 {
            let table = match self.s.table.scan().await {
                Ok(leases) => leases.into_iter().map(|l| (l.key.clone(), l)).collect(),
                Err(e) => {
                    self.complain("cannot read the lease table", &e);
                    HashMap::new()
                }
            };
            self.hand_over(&table).await;
            self.checkpoint(readers, &table).await;
            let done = self
                .s
                .progress
                .pending()
                .iter()
                .all(|k| !self.held.contains_key(k))
                && self.owed.is_empty();
            if done || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for key in keys {
            let Some(h) = self.held.remove(&key) else {
                continue;
            };
            match self.s.table.release(&key, &self.s.me, h.counter).await {
                Ok(()) => tracing::info!(shard = %key, "released lease"),
                Err(e) => tracing::warn!(shard = %key, error = %e,
                    "cannot release a lease: it expires after the failover time"),
            }
        }
        self.s.metrics.set_held(0);
    }
}

/// A reader's start from a lease's checkpoint.
fn start_at(at: &Position) -> Start {
    match at {
        Position::TrimHorizon | Position::ShardEnd => Start::TrimHorizon,
        Position::Latest => Start::Latest,
        Position::AtTimestamp(ms) => Start::AtTimestamp(*ms),
        Position::Sequence(seq, sub) => Start::AtCheckpoint {
            sequence: seq.clone(),
            subsequence: *sub,
        },
    }
}

/// The lease-mode coordinator: a pass every failover / 6, sooner when something was
/// delivered or a reader ended; ListShards every discovery interval. Once stopped, it keeps
/// the leases renewed and their checkpoints written while the stream delivers what was read
/// (a drain longer than the failover time must not let another instance take them), then
/// `finish`es.
pub(crate) async fn coordinate(
    mut m: Manager,
    mut readers: Readers,
    signals: super::Signals,
    mut wake: mpsc::Receiver<()>,
    discovery: Duration,
) {
    let super::Signals {
        mut stop,
        stopped,
        mut finish,
    } = signals;
    let tick = (m.s.failover / 6).max(Duration::from_millis(100));
    let progress = m.s.progress.clone();
    let mut failures = 0u32;
    let mut shards: Option<Vec<ShardInfo>> = None;
    let mut listed_at: Option<Instant> = None;
    loop {
        if listed_at.is_none_or(|t| t.elapsed() >= discovery) {
            let label = readers.label().to_string();
            if let Some(s) = discover(readers.shared(), &mut failures, &label).await {
                shards = Some(s);
                listed_at = Some(Instant::now());
            }
        }
        if let Some(s) = &shards {
            m.pass(s, &mut readers).await;
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = tokio::time::sleep(tick) => {}
            _ = wake.recv() => listed_at = None,
            _ = progress.wake.notified() => {}
        }
    }
    readers.stop_all().await;
    let _ = stopped.send(());
    loop {
        m.renew(&mut readers).await;
        if let Ok(leases) = m.s.table.scan().await {
            let table = leases.into_iter().map(|l| (l.key.clone(), l)).collect();
            m.hand_over(&table).await;
            m.checkpoint(&mut readers, &table).await;
        }
        tokio::select! {
            _ = &mut finish => break,
            _ = tokio::time::sleep(tick) => {}
            _ = progress.wake.notified() => {}
        }
    }
    m.finish(&mut readers).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::KinesisMeta;
    use bytes::Bytes;

    fn rec(shard: &str, seq: &str, sub: u64) -> Record {
        Record {
            data: Bytes::new(),
            arrival_ms: 0,
            seq: 0,
            sub: 0,
            kinesis: Some(Arc::new(KinesisMeta {
                shard_id: shard.into(),
                partition_key: "k".into(),
                sequence_number: seq.into(),
                subsequence_number: sub,
                approximate_arrival_ms: 0,
                tenure: "".into(),
            })),
        }
    }

    #[test]
    fn progress_moves_forward_only_and_finishes_a_shard_once_its_end_is_delivered() {
        let p = Progress::default();
        p.released(&[rec("s0", "200", 0), rec("s0", "100", 5)], 2);
        p.shard_ended("s1".into(), 4);
        p.released(&[rec("s1", "9", 0)], 3);
        let (d, finished) = p.take("s0");
        assert_eq!(
            d,
            Some(Delivered {
                at: ("200".into(), 0),
                records: 2
            }),
            "an older record (a re-read) never moves the checkpoint back"
        );
        assert!(!finished);
        assert!(!p.take("s1").1, "its end (4) is not delivered yet");
        p.released(&[], 4);
        assert!(p.take("s1").1);
        p.released(&[rec("s2", "5", 0)], 5);
        let (d, _) = p.take("s2");
        p.released(&[rec("s2", "3", 0)], 6);
        p.put_back("s2", d, false);
        assert_eq!(
            p.take("s2").0,
            Some(Delivered {
                at: ("5".into(), 0),
                records: 2
            })
        );
        p.released(&[rec("s3", "1", 0), rec("s3", "2", 0)], 7);
        assert_eq!(p.forget("s3"), 2);
        assert_eq!(p.floor(), 7);
    }

    /// A shard whose end is reported once all it had is delivered (the last records went out
    /// before the reader's final, empty read) is finished then: no later delivery may come.
    #[test]
    fn an_end_reported_after_its_records_were_delivered_finishes_the_shard() {
        let p = Progress::default();
        p.released(&[rec("s", "9", 0)], 4);
        p.shard_ended("s".into(), 4);
        assert!(p.take("s").1, "its records below 4 are all delivered");
        p.shard_ended("t".into(), 6);
        assert!(!p.take("t").1, "its end (6) is not delivered yet");
    }
}
