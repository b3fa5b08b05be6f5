//! Resources of each daemon over a chaos run, sampled once a second from /proc and the disk:
//! resident memory, open files, threads, and the size of its state_dir. The run's bound is that
//! none of them grows without bound: within one process's life (a kill -9 starts another), the
//! peak of its last quarter may not exceed the peak of its first half by more than half (plus a
//! floor for small numbers), for lives of at least two minutes (shorter ones say nothing about
//! growth); and no sample passes a hard ceiling.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Sample {
    pub(super) at: Duration,
    pub(super) rss_kib: u64,
    pub(super) fds: u64,
    pub(super) threads: u64,
    pub(super) state_kib: u64,
}

/// One daemon's process: None when it is not running (between a kill and its start).
pub(super) fn sample(at: Duration, pid: u32, state_dir: &Path) -> Option<Sample> {
    if pid == 0 {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    Some(Sample {
        at,
        rss_kib: field("VmRSS:"),
        fds,
        threads: field("Threads:"),
        state_kib: dir_size(state_dir) / 1024,
    })
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// Every daemon's samples, by name and process.
#[derive(Default)]
pub(super) struct Samples {
    by_life: BTreeMap<(String, u32), Vec<Sample>>,
}

/// A life shorter than this is not judged for growth.
const LIFE_JUDGED: Duration = Duration::from_secs(120);

/// A measure a bound is checked on: (name, value of a sample, floor of growth, ceiling).
type Measure = (&'static str, fn(&Sample) -> u64, u64, u64);

const MEASURES: [Measure; 4] = [
    ("RSS KiB", |s| s.rss_kib, 64 * 1024, 2 * 1024 * 1024),
    ("open files", |s| s.fds, 64, 4096),
    ("threads", |s| s.threads, 16, 512),
    (
        "state_dir KiB",
        |s| s.state_kib,
        128 * 1024,
        4 * 1024 * 1024,
    ),
];

impl Samples {
    pub(super) fn add(&mut self, name: &str, pid: u32, s: Sample) {
        self.by_life
            .entry((name.to_string(), pid))
            .or_default()
            .push(s);
    }

    /// Every sample of each daemon, lives in order.
    fn by_daemon(&self) -> BTreeMap<&str, Vec<Sample>> {
        let mut out: BTreeMap<&str, Vec<Sample>> = BTreeMap::new();
        for ((name, _), samples) in &self.by_life {
            out.entry(name).or_default().extend(samples.iter().copied());
        }
        for samples in out.values_mut() {
            samples.sort_by_key(|s| s.at);
        }
        out
    }

    /// Peak and last value of each measure, per daemon, as report lines.
    pub(super) fn report(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (name, samples) in self.by_daemon() {
            let Some(last) = samples.last() else { continue };
            let cells: Vec<String> = MEASURES
                .iter()
                .map(|(m, f, _, _)| {
                    let peak = samples.iter().map(f).max().unwrap_or(0);
                    format!("{m} peak {peak} final {}", f(last))
                })
                .collect();
            lines.push(format!("{name}: {}", cells.join(", ")));
        }
        lines
    }

    /// The bounds that did not hold.
    pub(super) fn violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        for ((name, pid), samples) in &self.by_life {
            let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
                continue;
            };
            let (begin, life) = (first.at, last.at - first.at);
            for (m, f, floor, ceiling) in MEASURES {
                let peak_where = |from: f64, to: f64| {
                    samples
                        .iter()
                        .filter(|s| {
                            s.at >= begin + life.mul_f64(from) && s.at <= begin + life.mul_f64(to)
                        })
                        .map(f)
                        .max()
                        .unwrap_or(0)
                };
                let (early, late) = (peak_where(0.0, 0.5), peak_where(0.75, 1.0));
                if life >= LIFE_JUDGED && late > early + (early / 2).max(floor) {
                    out.push(format!(
                        "{name} (pid {pid}): {m} grew from a peak of {early} in the first half \
                         of its life to {late} in the last quarter"
                    ));
                }
                let peak = samples.iter().map(f).max().unwrap_or(0);
                if peak > ceiling {
                    out.push(format!(
                        "{name} (pid {pid}): {m} reached {peak} (ceiling {ceiling})"
                    ));
                }
            }
        }
        out
    }
}

#[test]
fn growth_past_the_first_half_s_peak_is_a_violation_and_a_plateau_is_not() {
    let series = |f: fn(u64) -> u64| -> Samples {
        let mut s = Samples::default();
        for i in 0..200 {
            s.add(
                "d",
                1,
                Sample {
                    at: Duration::from_secs(i),
                    rss_kib: f(i),
                    ..Sample::default()
                },
            );
        }
        s
    };
    let plateau = series(|i| 100_000 + (i % 7) * 1000);
    assert!(
        plateau.violations().is_empty(),
        "{:?}",
        plateau.violations()
    );
    let leak = series(|i| 100_000 + i * 4000);
    let v = leak.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("RSS KiB grew"), "{v:?}");
    // Two lives (a kill -9 between): each judged on its own, the second's restart no growth.
    let mut lives = Samples::default();
    for i in 0..400u64 {
        let pid = if i < 200 { 1 } else { 2 };
        let sample = Sample {
            at: Duration::from_secs(i),
            rss_kib: 100_000 + (i % 200) * 100,
            ..Sample::default()
        };
        lives.add("d", pid, sample);
    }
    assert!(lives.violations().is_empty(), "{:?}", lives.violations());
}
