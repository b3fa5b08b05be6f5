//! Jittered exponential backoff for deliveries, and failure logging that stays readable during
//! a long outage (first failure, then at most one line per interval).

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// Exponential backoff with "equal jitter": each delay is uniform in [c/2, c] where
/// c = min(cap, base * 2^attempt), so retries of many objects spread out but never stall.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The ceiling of the next delay (before jitter).
    pub(crate) fn ceiling(&self) -> Duration {
        let factor = 1u32 << self.attempt.min(20);
        self.base.saturating_mul(factor).min(self.cap)
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let ms = ceiling.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(ms / 2..=ms.max(1)))
    }
}

/// Says whether a failure should be logged now.
#[derive(Debug)]
pub(crate) struct LogGate {
    every: Duration,
    last: Option<Instant>,
}

impl LogGate {
    pub(crate) fn new(every: Duration) -> Self {
        LogGate { every, last: None }
    }

    pub(crate) fn should_log(&mut self, now: Instant) -> bool {
        let due = self
            .last
            .is_none_or(|l| now.duration_since(l) >= self.every);
        if due {
            self.last = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut ceilings = Vec::new();
        for _ in 0..10 {
            ceilings.push(b.ceiling());
            let d = b.next_delay();
            assert!(d <= *ceilings.last().expect("pushed"));
        }
        assert_eq!(ceilings[0], Duration::from_millis(100));
        assert_eq!(ceilings[3], Duration::from_millis(800));
        assert_eq!(ceilings[9], Duration::from_secs(5));
    }

    #[test]
    fn jitter_varies() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let mut b = Backoff::new(Duration::from_millis(1000), Duration::from_secs(5));
            seen.insert(b.next_delay());
        }
        assert!(seen.len() > 5, "delays should be spread: {seen:?}");
    }

    #[test]
    fn log_gate() {
        let mut g = LogGate::new(Duration::from_secs(30));
        let t = Instant::now();
        assert!(g.should_log(t));
        assert!(!g.should_log(t + Duration::from_secs(10)));
        assert!(g.should_log(t + Duration::from_secs(31)));
    }
}
