//! A stream's start-up checks, waited out through transient failures (server errors,
//! throttling, no answer) for up to `START_PATIENCE`; permanent answers end them at once.

use std::time::Duration;

use crate::destination::s3::{BucketError, S3Sink};

/// How long a stream's start waits out transient failures of its destination's checks (server
/// errors, throttling, no answer) before it gives up: a fault at the moment of a start is not a
/// reason to refuse the stream (found by an outside check with a fault proxy in front of S3).
const START_PATIENCE: Duration = Duration::from_secs(120);

/// `attempt` until it succeeds, fails for good, or transient failures outlast
/// `START_PATIENCE`; each wait logged.
pub(super) async fn patiently<
    T,
    E: std::fmt::Display,
    F: std::future::Future<Output = Result<T, E>>,
>(
    what: &str,
    mut attempt: impl FnMut() -> F,
    transient: impl Fn(&E) -> bool,
) -> Result<T, E> {
    let deadline = tokio::time::Instant::now() + START_PATIENCE;
    let mut backoff =
        crate::retry::Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
    loop {
        match attempt().await {
            Err(e) if transient(&e) && tokio::time::Instant::now() < deadline => {
                let delay = backoff.next_delay();
                tracing::warn!(check = what, error = %e, retry_in_ms = delay.as_millis() as u64,
                    "start-up check failed; retrying");
                tokio::time::sleep(delay).await;
            }
            other => return other,
        }
    }
}

/// The conditional-write probe, transient failures waited out.
pub(super) async fn probe_with_retries(
    s3: &S3Sink,
) -> Result<bool, crate::destination::sink::DeliveryError> {
    patiently(
        "conditional-write probe",
        || s3.conditional_writes(),
        |e| e.transient,
    )
    .await
}

/// The start-up bucket check, transient failures waited out (a server still starting, a 5xx).
pub(super) async fn check_with_retries(s3: &S3Sink) -> Result<(), BucketError> {
    patiently("bucket", || s3.check_bucket(), BucketError::is_transient).await
}
