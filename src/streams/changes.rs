//! The API's changes of the set of streams: CreateDeliveryStream (recorded at once, built in a
//! task the drain waits for), DeleteDeliveryStream (recorded, then drained and forgotten in
//! such a task), UpdateDestination (the old configuration drains, the next version starts on
//! the same spool). Each is admitted in one short critical section (`admission.rs`); no lock
//! is held while a stream drains or builds, so an update waiting on a dead destination holds
//! up nothing else.

use crate::sync::Lock;
use std::sync::Arc;

use super::admission::Change;
use super::{NewStream, Prepared, Streams, StreamsError};
use crate::control::{ControlError, Origin, Status, StreamRecord};
use crate::report::Chain;

impl Streams {
    /// CreateDeliveryStream: the record is kept at once (CREATING) and the stream built in a
    /// task (ACTIVE, or CREATING_FAILED). Returns the stream's ARN.
    pub(crate) async fn create(self: &Arc<Self>, new: NewStream) -> Result<String, StreamsError> {
        let NewStream {
            request,
            config,
            tags,
            encryption,
            glue_columns,
        } = new;
        let name = config.name.clone();
        let already = || StreamsError::AlreadyExists {
            name: name.clone(),
            account: self.account_id().to_string(),
        };
        let change = [Change {
            name: &name,
            config: Some(&config),
        }];
        // Admitted with the record inserted in the same critical section: from then on the
        // open-file check counts this stream through its record.
        {
            let mut admission = self.admission.locked();
            if self.records.get(&name).is_some() {
                return Err(already());
            }
            admission.begin(&change, self.configs())?;
            let record = StreamRecord {
                request: Some(Box::new(request)),
                tags,
                encryption,
                glue_columns,
                status: Status::Creating,
                config: Some(config.clone()),
                ..StreamRecord::new(Origin::Api, crate::record::now_ms())
            };
            let inserted = self.records.insert(&name, record);
            admission.end(&name);
            match inserted {
                Ok(true) => {}
                Ok(false) => return Err(already()),
                Err(e) => return Err(ControlError::Io(e).into()),
            }
        };
        let this = self.clone();
        self.tasks.spawn(async move {
            if this
                .start(&config, 1, "creating a stream failed")
                .await
                .is_ok()
            {
                tracing::info!(stream = %config.name, "created through the API");
            }
        });
        Ok(self.arn(&name))
    }

    /// DeleteDeliveryStream: recorded on disk first (a restart in the middle finishes it), then
    /// drained and forgotten in a task, once a change of the stream in progress has ended; puts
    /// meanwhile get ServiceUnavailableException.
    pub(crate) async fn delete(self: &Arc<Self>, name: &str) -> Result<(), StreamsError> {
        let admission = self.admission.locked();
        if admission.is_closing() {
            return Err(super::admission::Refused::Closing.into());
        }
        let record = self.record(name)?;
        match (record.origin, &record.status) {
            (Origin::File, _) => {
                return Err(StreamsError::FileStream {
                    name: name.to_string(),
                    action: "remove",
                });
            }
            (_, Status::Creating) => return Err(StreamsError::BeingCreated(name.to_string())),
            (_, Status::Deleting) => return Ok(()),
            _ => {}
        }
        self.records.update(name, |r| {
            r.status = Status::Deleting;
            r.deleting = true;
            Ok::<_, ControlError>(())
        })?;
        // An update in progress sees `deleting` at its next check and ends without starting its
        // new configuration; the retirement waits for it.
        let pending_update = admission.is_changing(name);
        drop(admission);
        let (this, name) = (self.clone(), name.to_string());
        self.tasks.spawn(async move {
            if pending_update {
                this.changes_ended(Some(&name)).await;
            }
            this.retire(&name).await;
            tracing::info!(stream = %name, "deleted through the API");
        });
        Ok(())
    }

    /// UpdateDestination of an ACTIVE API stream: `prepare` checks the request against the
    /// record (version, destination) and returns the merged request and its checked
    /// configuration; nothing changes when it refuses. The old stream drains (its objects keep
    /// the old version), then the new one takes over the same spool from the cursor with the
    /// next version: nothing acknowledged is lost or written twice. A delete or the daemon's
    /// drain that comes meanwhile wins: the new configuration is not started.
    pub(crate) async fn update<E: From<StreamsError>>(
        &self,
        name: &str,
        prepare: impl FnOnce(&StreamRecord) -> Result<Prepared, E>,
    ) -> Result<(), E> {
        let (
            record,
            Prepared {
                request,
                config,
                glue_columns,
            },
            admitted,
        ) = {
            // One critical section: the record is read, the request checked against it and
            // the change marked, so two updates cannot both pass the version check.
            let mut admission = self.admission.locked();
            let record = self.record(name)?;
            self.updatable(name, &record)?;
            let prepared = prepare(&record)?;
            let change = [Change {
                name,
                config: Some(&prepared.config),
            }];
            admission
                .begin(&change, self.configs())
                .map_err(StreamsError::from)?;
            drop(admission);
            let mut guards = self.guards(&change);
            (record, prepared, guards.pop())
        };
        let version = record.version + 1;
        if let Some(old) = self.get(name) {
            old.close().await;
        }
        self.still_wanted(name)?;
        if let Err(e) = self.run(&config, version).await {
            let why = Chain(&e).to_string();
            // Back to the configuration it had, so the stream keeps running; if even that
            // fails, it is CREATING_FAILED with the update's reason.
            let back = match record.config.as_ref() {
                Some(old) => self.run(old, record.version).await.is_ok(),
                None => false,
            };
            tracing::error!(stream = %name, error = %why, back_on_the_previous_configuration = back,
                "the updated destination cannot start");
            if !back {
                self.records.set_status(name, Status::Failed(why.clone()));
            }
            return Err(StreamsError::CannotStart(why).into());
        }
        self.records
            .update(name, |r| {
                r.request = Some(Box::new(request));
                r.glue_columns = glue_columns;
                r.version = version;
                r.updated_ms = Some(crate::record::now_ms());
                r.config = Some(config);
                Ok::<_, ControlError>(())
            })
            .map_err(StreamsError::from)?;
        drop(admitted);
        Ok(())
    }

    /// An update applies to an API stream that is ACTIVE.
    fn updatable(&self, name: &str, record: &StreamRecord) -> Result<(), StreamsError> {
        if record.origin == Origin::File {
            return Err(StreamsError::FileStream {
                name: name.to_string(),
                action: "change",
            });
        }
        if record.status != Status::Active {
            return Err(StreamsError::NotActive {
                name: name.to_string(),
                status: record.status.api_name(),
            });
        }
        Ok(())
    }

    /// After a drain: Err when the stream was deleted meanwhile, or the daemon began its own
    /// drain (the new configuration is not started; a restart runs the recorded one).
    fn still_wanted(&self, name: &str) -> Result<(), StreamsError> {
        if self.closing() {
            return Err(super::admission::Refused::Closing.into());
        }
        match self.records.get(name) {
            Some(r) if !r.deleting => Ok(()),
            _ => Err(self.not_found(name)),
        }
    }
}
