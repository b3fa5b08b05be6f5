//! The seeded schedule of a chaos run: which fault happens when. Drawn all at once from the seed
//! before the run starts (so it is printed whole, and a failing seed replays the same faults at
//! the same times); only what the faults hit depends on the run's timing.

use std::fmt;
use std::time::Duration;

use rand::{Rng, SeedableRng};

/// The fleet's lease failover time: a freeze lasts longer, so the leases move.
pub(super) const FAILOVER_SECONDS: u64 = 6;

/// A process of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Node {
    /// The Direct PUT daemon (its state_dir on the small disk).
    Edge,
    /// A fleet instance reading the Kinesis stream (0 or 1).
    Fleet(usize),
}

/// A server behind a fault proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Upstream {
    S3,
    Kinesis,
    DynamoDb,
    HttpEndpoint,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Fault {
    /// kill -9, then a start on the same state.
    Kill(Node),
    /// SIGSTOP (a fleet instance: past the failover time, its leases move) ...
    Freeze(Node),
    /// ... and SIGCONT.
    Thaw(Node),
    /// The edge's disk filled to the last byte ...
    FillDisk,
    /// ... and freed.
    FreeDisk,
    /// The edge's configuration changed (a buffering interval) and SIGHUP.
    Reload,
    /// UpdateDestination of the API-created stream (its prefix).
    UpdateDestination,
    /// A split of an open shard, or a merge of the last split's children.
    Reshard,
    /// The proxy's fault rate raised ...
    Burst(Upstream, f64),
    /// ... and back to the base rate.
    Calm(Upstream),
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct Event {
    pub(super) at: Duration,
    pub(super) fault: Fault,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>7.1}s {:?}", self.at.as_secs_f64(), self.fault)
    }
}

impl Fault {
    /// The kind, for the report's counts.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Fault::Kill(_) => "kill -9 and restart",
            Fault::Freeze(_) => "SIGSTOP past failover",
            Fault::Thaw(_) => "SIGCONT",
            Fault::FillDisk => "disk filled",
            Fault::FreeDisk => "disk freed",
            Fault::Reload => "reload (SIGHUP)",
            Fault::UpdateDestination => "UpdateDestination",
            Fault::Reshard => "split or merge",
            Fault::Burst(..) => "proxy burst",
            Fault::Calm(_) => "proxy calm",
        }
    }
}

/// Faults for `run`, one every `mean_gap` on average (uniform between half and one and a half
/// of it), each with its end (thaw, free, calm) inside the run. `disk` says whether the edge's
/// state_dir is on a disk the run can fill.
pub(super) fn draw(seed: u64, run: Duration, mean_gap: Duration, disk: bool) -> Vec<Event> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut events = Vec::new();
    let mut at = Duration::ZERO;
    // The first faults come after the fleet has settled and records flow.
    let start = Duration::from_secs(5).min(run / 4);
    loop {
        at += mean_gap.mul_f64(rng.random_range(0.5..1.5));
        let t = start + at;
        if t >= run {
            break;
        }
        let left = run - t;
        let weights: [(u32, u8); 7] = [
            (4, 0),                        // kill
            (2, 1),                        // freeze
            (if disk { 1 } else { 0 }, 2), // disk
            (2, 3),                        // reload
            (2, 4),                        // update
            (1, 5),                        // reshard
            (3, 6),                        // burst
        ];
        let total: u32 = weights.iter().map(|(w, _)| w).sum();
        let mut pick = rng.random_range(0..total);
        let kind = weights
            .iter()
            .find(|(w, _)| {
                if pick < *w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .map(|(_, k)| *k)
            .unwrap_or(0);
        let node = match rng.random_range(0..3) {
            0 => Node::Edge,
            i => Node::Fleet(i - 1),
        };
        match kind {
            0 => events.push(Event {
                at: t,
                fault: Fault::Kill(node),
            }),
            1 => {
                let fleet = Node::Fleet(rng.random_range(0..2));
                let hold = Duration::from_secs(FAILOVER_SECONDS + rng.random_range(2..6));
                if hold < left {
                    events.push(Event {
                        at: t,
                        fault: Fault::Freeze(fleet),
                    });
                    events.push(Event {
                        at: t + hold,
                        fault: Fault::Thaw(fleet),
                    });
                }
            }
            2 => {
                let hold = Duration::from_secs(rng.random_range(2..8));
                if hold < left {
                    events.push(Event {
                        at: t,
                        fault: Fault::FillDisk,
                    });
                    events.push(Event {
                        at: t + hold,
                        fault: Fault::FreeDisk,
                    });
                }
            }
            3 => events.push(Event {
                at: t,
                fault: Fault::Reload,
            }),
            4 => events.push(Event {
                at: t,
                fault: Fault::UpdateDestination,
            }),
            5 => events.push(Event {
                at: t,
                fault: Fault::Reshard,
            }),
            _ => {
                let upstream = [
                    Upstream::S3,
                    Upstream::Kinesis,
                    Upstream::DynamoDb,
                    Upstream::HttpEndpoint,
                ][rng.random_range(0..4)];
                let rate = (rng.random_range(0.2..0.6) * 100.0_f64).round() / 100.0;
                let hold = Duration::from_secs(rng.random_range(3..10));
                if hold < left {
                    events.push(Event {
                        at: t,
                        fault: Fault::Burst(upstream, rate),
                    });
                    events.push(Event {
                        at: t + hold,
                        fault: Fault::Calm(upstream),
                    });
                }
            }
        }
    }
    events.sort_by_key(|e| e.at);
    events
}

#[test]
fn a_seed_draws_the_same_schedule_and_every_fault_ends_inside_the_run() {
    let run = Duration::from_secs(120);
    let a = draw(7, run, Duration::from_secs(4), true);
    let b = draw(7, run, Duration::from_secs(4), true);
    assert_eq!(a, b);
    assert_ne!(draw(8, run, Duration::from_secs(4), true), a);
    assert!(a.len() > 20, "{}", a.len());
    assert!(a.iter().all(|e| e.at < run));
    let opened = |f: &Fault| matches!(f, Fault::Freeze(_) | Fault::FillDisk | Fault::Burst(..));
    let closed = |f: &Fault| matches!(f, Fault::Thaw(_) | Fault::FreeDisk | Fault::Calm(_));
    assert_eq!(
        a.iter().filter(|e| opened(&e.fault)).count(),
        a.iter().filter(|e| closed(&e.fault)).count()
    );
    let no_disk = draw(7, run, Duration::from_secs(4), false);
    assert!(!no_disk.iter().any(|e| e.fault == Fault::FillDisk));
}
