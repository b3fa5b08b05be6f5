//! The lease manager: one pass every failover / 6 renews what this instance holds, reads the
//! lease store, hands off what it owes, writes the checkpoints of what was delivered, makes
//! leases for new shards (parents first), takes and steals towards an even split (`balance`),
//! and starts a reader for every lease whose previous holder is done with it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::mine::{Held, Leases, Lost, Owed};
use super::{Hurry, Progress};
use crate::record::ShardPosition;
use crate::retry::LogGate;
use crate::source::kinesis::ShardInfo;
use crate::source::kinesis::balance::{self, Pick, Seen};
use crate::source::kinesis::checkpoint::{Checkpoints, Origin};
use crate::source::kinesis::lease_store::{Lease, LeaseStore, Position, TableError};
use crate::source::kinesis::ledger::Taken;
use crate::source::kinesis::metrics::LeaseMetrics;
use crate::source::kinesis::readers::Readers;
use crate::source::kinesis::shard::{ReadEnd, Start, Tenure};

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
    pub(super) s: LeaseSetup,
    hurry: Arc<dyn Hurry>,
    /// The leases this instance has had to do with, each in its one state.
    mine: Leases,
    /// Per lease: the counter last seen and when it was first seen (its owner's liveness,
    /// on this instance's clock, as the KCL judges it).
    seen: HashMap<String, (u64, Instant)>,
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
            hurry: Arc::new(()),
            mine: Leases::default(),
            seen: HashMap::new(),
            gate: LogGate::new(Duration::from_secs(30)),
            passes: 0,
            scanned: None,
        }
    }

    /// How to seal the stream's buffers (known once the stream is built).
    pub(crate) fn set_hurry(&mut self, hurry: Arc<dyn Hurry>) {
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
    pub(super) async fn renew(&mut self, readers: &mut Readers) {
        let every = self.s.failover / 3;
        let due: Vec<(String, u64)> = self
            .mine
            .all_held()
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
                    if let Some(h) = self.mine.held_mut(&key) {
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
            .mine
            .all_held()
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
        let Some(h) = self.mine.unhold(key) else {
            return;
        };
        self.s.metrics.lost.add(1);
        let resume = match readers.stop(key).await {
            Some(ReadEnd::Stopped(a)) => a.or(h.resume),
            _ => h.resume,
        };
        let tenure = h.tenure.clone();
        self.mine.lose(key.to_string(), Lost { resume, tenure });
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
        let Some(h) = self.mine.held_mut(&lease.key) else {
            return;
        };
        if lease.owner.as_deref() == Some(self.s.me.as_str()) {
            h.counter = h.counter.max(lease.counter);
            return;
        }
        if lease.checkpoint_owner.as_deref() == Some(self.s.me.as_str()) {
            let tenure = self.mine.unhold(&lease.key).and_then(|h| h.tenure);
            self.s.metrics.handed_off.add(1);
            readers.stop(&lease.key).await;
            let until = readers.shared().log.end();
            tracing::info!(shard = %lease.key, to = ?lease.owner,
                "lease taken to balance the fleet: delivering what was read, then handing it off");
            self.mine.owe(
                lease.key.clone(),
                Owed {
                    until,
                    since: Instant::now(),
                    tenure,
                },
            );
            self.hurry.hurry();
        } else {
            tracing::warn!(shard = %lease.key, owner = ?lease.owner, "lease lost: stopped reading");
            self.lose(&lease.key, readers).await;
        }
    }

    /// Writes the checkpoints of what was delivered on held leases.
    pub(super) async fn checkpoint(
        &mut self,
        readers: &mut Readers,
        table: &HashMap<String, Lease>,
    ) {
        for key in self.s.progress.pending() {
            if self.mine.is_owed(&key) {
                continue;
            }
            let Some((counter, waiting)) = self
                .mine
                .held(&key)
                .map(|h| (h.counter, h.waiting_hand_off))
            else {
                self.not_held(&key, table);
                continue;
            };
            if waiting {
                continue;
            }
            let taken = self.s.progress.take(&key);
            let Some(at) = position(&taken) else {
                continue;
            };
            match self
                .s
                .table
                .checkpoint(&key, &self.s.me, counter, &at)
                .await
            {
                Ok(()) => {
                    if let Some(d) = &taken.delivered {
                        self.s.progress.note_written(&key, d);
                    }
                    if taken.finished {
                        tracing::info!(shard = %key, "shard finished: read to its end and delivered");
                        self.mine.unhold(&key);
                    } else if let Some(h) = self.mine.held_mut(&key) {
                        h.counter += 1;
                    }
                }
                Err(TableError::Conflict) => {
                    self.s.progress.put_back(&key, taken);
                    self.changed_under_us(&key, readers).await;
                }
                Err(e) => {
                    self.s.progress.put_back(&key, taken);
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
    pub(super) async fn hand_over(&mut self, table: &HashMap<String, Lease>) {
        let floor = self.s.progress.floor();
        let patience = self.s.failover.mul_f64(0.8);
        for key in self.mine.owed_keys() {
            let Some(o) = self.mine.owed(&key) else {
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
            let taken = self.s.progress.take(&key);
            let at = position(&taken);
            match self.s.table.hand_over(lease, &self.s.me, at.as_ref()).await {
                Ok(()) => {
                    tracing::info!(shard = %key, checkpoint = ?at, "lease handed off");
                    self.end_owed(&key);
                }
                Err(e) => {
                    self.s.progress.put_back(&key, taken);
                    if !matches!(e, TableError::Conflict) {
                        self.complain("cannot hand a lease off", &e);
                    }
                }
            }
        }
    }

    /// A hand-off is over (done, or the new owner stopped waiting): its tenure ends.
    fn end_owed(&mut self, key: &str) {
        if let Some(o) = self.mine.settle(key) {
            self.end_tenure(o.tenure);
        }
    }

    /// This instance reads no more under `tenure`: exactly-once destinations drop what they
    /// still stage of it (objects being cut again that will never complete, fresh ones never
    /// journaled), which the lease's next owner cuts; told at once (`hurry` runs a step).
    fn end_tenure(&self, tenure: Option<Arc<str>>) {
        // At-least-once keeps delivering what it read (and resumes after it on a re-take).
        if let Some(t) = tenure.filter(|_| self.s.progress.exactly_once()) {
            self.s.progress.fence(t);
            self.hurry.hurry();
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
                    !self.mine.is_held(&l.key)
                } else {
                    l.owner.is_some() && stale
                },
                ready: s.parents.iter().chain(&l.parents).all(|p| parent_done(p)),
                handing_off: l.checkpoint_owner.is_some() || self.mine.is_owed(&l.key),
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
                        .mine
                        .take_lost(key)
                        .filter(|_| lease.owner.as_deref() == Some(self.s.me.as_str()))
                        .map_or((None, None), |l| (l.resume, l.tenure));
                    tracing::info!(shard = %key, from = ?lease.owner, steal, "took lease");
                    if steal {
                        self.s.metrics.stolen.add(1);
                    } else {
                        self.s.metrics.taken.add(1);
                    }
                    self.mine.hold(
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
        for key in self.mine.held_keys() {
            if readers.is_reading(&key) {
                continue;
            }
            let Some(lease) = table.get(&key) else {
                continue;
            };
            let Some(h) = self.mine.held_mut(&key) else {
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
            let Some(h) = self.mine.held_mut(&key) else {
                continue;
            };
            let start = match (&lease.checkpoint, h.resume.take()) {
                (Position::ShardEnd, _) => continue,
                (Position::Sequence(seq, sub), Some(r))
                    if r > (ShardPosition {
                        sequence: seq.as_str().into(),
                        sub: *sub,
                    }) =>
                {
                    resume_at(r)
                }
                (Position::TrimHorizon | Position::Latest | Position::AtTimestamp(_), Some(r)) => {
                    resume_at(r)
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
        let h = self.mine.held_mut(key)?;
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
                let h = self.mine.held_mut(key)?;
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
    pub(super) async fn pass(&mut self, shards: &[ShardInfo], readers: &mut Readers) {
        self.passes += 1;
        for (key, end) in readers.reap().await {
            let Some(h) = self.mine.held_mut(&key) else {
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
            let counter = self.mine.held(&l.key).map(|h| h.counter);
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
        self.s.metrics.set_held(self.mine.all_held().count() as u64);
    }

    /// After the stream delivered everything it read: the last checkpoints, the hand-offs
    /// owed, every lease released so the next instance starts at once from them.
    pub(super) async fn finish(mut self, readers: &mut Readers) {
        let deadline = Instant::now() + self.s.failover;
        let keys = self.mine.held_keys();
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
                .all(|k| !self.mine.is_held(k))
                && self.mine.none_owed();
            if done || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for key in keys {
            let Some(h) = self.mine.unhold(&key) else {
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

/// What a taken delivery is written as: SHARD_END once finished, else the last delivered
/// record (None: nothing to write).
fn position(taken: &Taken) -> Option<Position> {
    match (&taken.delivered, taken.finished) {
        (_, true) => Some(Position::ShardEnd),
        (Some(d), false) => Some(Position::Sequence(d.sequence.to_string(), d.sub)),
        (None, false) => None,
    }
}

/// A reader's start right after what this instance itself read of a lease before.
fn resume_at(r: ShardPosition) -> Start {
    Start::AtCheckpoint {
        sequence: r.sequence.to_string(),
        subsequence: r.sub,
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
