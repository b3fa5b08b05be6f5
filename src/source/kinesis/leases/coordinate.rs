//! The lease-mode coordinator's loop: discovery on an interval, a pass of the manager on every
//! tick (sooner when something was delivered or a reader ended), and, once stopped, the
//! leases kept renewed while the stream delivers what was read, then released.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Manager;
use crate::source::kinesis::readers::Readers;
use crate::source::kinesis::{ShardInfo, Signals, discover};

/// The lease-mode coordinator: a pass every failover / 6, sooner when something was
/// delivered or a reader ended; ListShards every discovery interval. Once stopped, it keeps
/// the leases renewed and their checkpoints written while the stream delivers what was read
/// (a drain longer than the failover time must not let another instance take them), then
/// `finish`es.
pub(crate) async fn coordinate(
    mut m: Manager,
    mut readers: Readers,
    signals: Signals,
    mut wake: mpsc::Receiver<()>,
    discovery: Duration,
) {
    let Signals {
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
