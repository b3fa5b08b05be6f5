//! A destination's feeder: reads the stream's spool in order from the destination's cursor and
//! hands the records to the destination worker, at the worker's pace. A flush is forwarded once
//! every record acknowledged before it has been handed over.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::destination::retry::LogGate;
use crate::destination::{DestinationHandle, Input};
use crate::record::Record;
use crate::source::LogReader as Reader;

/// Bytes read from the spool per batch handed to the worker.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

pub enum Control {
    /// Flush once every record below `until` is handed over; the reply gets the keys written.
    Flush {
        until: u64,
        reply: oneshot::Sender<Vec<String>>,
    },
}

pub struct Feeder {
    pub control: mpsc::Sender<Control>,
    pub task: JoinHandle<()>,
}

impl Feeder {
    pub fn spawn(label: String, reader: Reader, destination: DestinationHandle) -> Feeder {
        let (control, rx) = mpsc::channel(16);
        let task = tokio::spawn(run(label, reader, destination, rx));
        Feeder { control, task }
    }
}

async fn run(
    label: String,
    mut reader: Reader,
    dest: DestinationHandle,
    mut control: mpsc::Receiver<Control>,
) {
    let mut closing = false;
    let mut gate = LogGate::new(Duration::from_secs(30));
    loop {
        match forward(&mut reader, &dest).await {
            Ok(true) => {
                match control.try_recv() {
                    Ok(c) => handle(c, &mut reader, &dest).await,
                    Err(mpsc::error::TryRecvError::Disconnected) => closing = true,
                    Err(mpsc::error::TryRecvError::Empty) => {}
                }
                continue;
            }
            Ok(false) => {}
            Err(e) => {
                if gate.should_log(tokio::time::Instant::now()) {
                    tracing::error!(destination = %label, error = %e, "cannot read the spool; retrying");
                }
                // Still answer control while the spool cannot be read: a flush fails (its
                // reply is dropped), a close stops the feeder.
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    c = control.recv() => match c {
                        Some(Control::Flush { reply, .. }) => drop(reply),
                        None => break,
                    },
                }
                continue;
            }
        }
        if closing {
            break;
        }
        tokio::select! {
            c = control.recv() => match c {
                Some(c) => handle(c, &mut reader, &dest).await,
                None => closing = true,
            },
            alive = reader.wait() => if !alive { closing = true },
        }
    }
    dest.close().await;
}

/// Hands one batch over; false when there was nothing durable to read.
async fn forward(reader: &mut Reader, dest: &DestinationHandle) -> std::io::Result<bool> {
    let batch = reader.read(BATCH_BYTES).await?;
    if batch.is_empty() {
        return Ok(false);
    }
    let bytes = batch.iter().map(|r| r.data.len()).sum();
    let batch: Arc<[Record]> = batch.into();
    if !dest.send_records(batch, bytes).await {
        return Err(std::io::Error::other("the destination worker is gone"));
    }
    Ok(true)
}

async fn handle(control: Control, reader: &mut Reader, dest: &DestinationHandle) {
    match control {
        Control::Flush { until, reply } => {
            while reader.next_seq() < until {
                match forward(reader, dest).await {
                    Ok(true) => {}
                    // Not everything acknowledged could be handed over: the flush fails
                    // (its reply is dropped) rather than answer without those records.
                    Ok(false) | Err(_) => return,
                }
            }
            dest.send(Input::Flush(reply)).await;
        }
    }
}
