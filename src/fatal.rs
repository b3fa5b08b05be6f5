//! Fatal local errors. A destination that can no longer stage what it was handed (a staging
//! file that cannot be written) must not let a later object move its log cursor past those
//! records: it freezes its watermark, stops, and reports here. `app::run` takes the first report,
//! stops taking records, logs the reason once and exits 1; after a restart every record past
//! the cursors is replayed from the spool (or re-read from Kinesis), as after a crash.

use tokio::sync::mpsc;

/// What failed, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("destination {component}: {reason}")]
pub(crate) struct Fatal {
    pub(crate) component: String,
    pub(crate) reason: String,
}

/// Where components report a fatal error; cheap to clone, never blocks.
#[derive(Clone, Debug)]
pub(crate) struct FatalSender(mpsc::Sender<Fatal>);

impl FatalSender {
    /// Reports a fatal error. Only the first one is kept: the process is about to stop.
    pub(crate) fn report(&self, component: &str, reason: impl Into<String>) {
        let _ = self.0.try_send(Fatal {
            component: component.to_string(),
            reason: reason.into(),
        });
    }
}

/// The sender for the components, and the receiver for `app::run`. Bounded: one report is all
/// it takes.
pub(crate) fn channel() -> (FatalSender, mpsc::Receiver<Fatal>) {
    let (tx, rx) = mpsc::channel(1);
    (FatalSender(tx), rx)
}
