//! Which changes of the set of streams may begin. A change (create, update, delete, a
//! reload's add, change or removal) is admitted in one short critical section, never held
//! across a drain, a build or a network call: the open-file budget is checked against every
//! stream counted now with the change's configuration reserved, the stream is marked as
//! changing (one change per stream at a time), and once the drain begins no change is admitted
//! at all. The change then drains and builds with no lock held, re-checks what may have
//! happened meanwhile (a delete, the drain), and ends (`end`), which frees its reservation.

use std::collections::{BTreeMap, BTreeSet};

use super::open_files::{self, TooManyOpenFiles};
use crate::spec::StreamSpec;

/// Why a change was not admitted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    #[error("firehosed is shutting down")]
    Closing,
    #[error("Firehose {0} is being changed by another request")]
    Changing(String),
    #[error(transparent)]
    TooManyOpenFiles(#[from] TooManyOpenFiles),
}

/// The changes in progress and what they reserved.
#[derive(Debug)]
pub(crate) struct Admission {
    /// The open-file limit the streams must fit in.
    limit: u64,
    /// Streams with a change in progress.
    changing: BTreeSet<String>,
    /// The configuration each change in progress will run (None: the stream goes away), counted
    /// by the open-file check in place of the stream's current one until the change ends.
    reserved: BTreeMap<String, Option<StreamSpec>>,
    /// The drain began: nothing more is admitted.
    closing: bool,
}

/// One change to admit: stream `name` runs `config` afterwards (None: it is removed).
pub(crate) struct Change<'a> {
    pub(crate) name: &'a str,
    pub(crate) config: Option<&'a StreamSpec>,
}

impl Admission {
    pub(crate) fn new(open_file_limit: u64) -> Self {
        Admission {
            limit: open_file_limit,
            changing: BTreeSet::new(),
            reserved: BTreeMap::new(),
            closing: false,
        }
    }

    /// Admits `changes` together, or none of them. `current`: every stream counted now
    /// (running or being created), by name.
    pub(crate) fn begin(
        &mut self,
        changes: &[Change<'_>],
        current: BTreeMap<String, StreamSpec>,
    ) -> Result<(), Refused> {
        if self.closing {
            return Err(Refused::Closing);
        }
        if let Some(c) = changes.iter().find(|c| self.changing.contains(c.name)) {
            return Err(Refused::Changing(c.name.to_string()));
        }
        let mut after = self.counted(current);
        for c in changes {
            match c.config {
                Some(config) => after.insert(c.name.to_string(), config.clone()),
                None => after.remove(c.name),
            };
        }
        open_files::check_within(after.values(), self.limit)?;
        for c in changes {
            self.changing.insert(c.name.to_string());
            self.reserved.insert(c.name.to_string(), c.config.cloned());
        }
        Ok(())
    }

    /// `current` with every reservation in place.
    pub(crate) fn counted(
        &self,
        mut current: BTreeMap<String, StreamSpec>,
    ) -> BTreeMap<String, StreamSpec> {
        for (name, config) in &self.reserved {
            match config {
                Some(c) => current.insert(name.clone(), c.clone()),
                None => current.remove(name),
            };
        }
        current
    }

    /// The change of `name` ended (done, refused later or abandoned): its reservation goes.
    pub(crate) fn end(&mut self, name: &str) {
        self.changing.remove(name);
        self.reserved.remove(name);
    }

    pub(crate) fn is_changing(&self, name: &str) -> bool {
        self.changing.contains(name)
    }

    pub(crate) fn any_changing(&self) -> bool {
        !self.changing.is_empty()
    }

    /// The drain began: no change is admitted from now on.
    pub(crate) fn close(&mut self) {
        self.closing = true;
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(name: &str, partitions: usize) -> StreamSpec {
        let yaml = format!(
            "name: {name}\nsource: {{direct_put: {{}}}}\nprocessing: {{metadata_extraction: {{query: '{{k: .k}}'}}}}\ndestinations:\n  - directory: /tmp/x\n    prefix: 'p/!{{partitionKeyFromQuery:k}}/'\n    error_output_prefix: 'e/!{{firehose:error-output-type}}/'\n    compression: ZIP\n    dynamic_partitioning: {{enabled: true, max_active_partitions: {partitions}}}\n"
        );
        crate::config::parse_stream("t", &yaml, true).expect("valid")
    }

    #[test]
    fn one_change_per_stream_and_none_once_closing() {
        let mut a = Admission::new(1024);
        let s = stream("a", 1);
        let change = [Change {
            name: "a",
            config: Some(&s),
        }];
        a.begin(&change, BTreeMap::new()).expect("admitted");
        assert!(a.is_changing("a"));
        assert!(matches!(
            a.begin(&change, BTreeMap::new()),
            Err(Refused::Changing(n)) if n == "a"
        ));
        a.end("a");
        assert!(!a.any_changing());
        a.close();
        assert!(matches!(
            a.begin(&change, BTreeMap::new()),
            Err(Refused::Closing)
        ));
    }

    #[test]
    fn a_reservation_counts_until_its_change_ends() {
        // 256 files of headroom: each fits alone, the two do not.
        let mut a = Admission::new(1024);
        let (big, other) = (stream("big", 500), stream("other", 500));
        a.begin(
            &[Change {
                name: "big",
                config: Some(&big),
            }],
            BTreeMap::new(),
        )
        .expect("alone it fits");
        let second = [Change {
            name: "other",
            config: Some(&other),
        }];
        assert!(matches!(
            a.begin(&second, BTreeMap::new()),
            Err(Refused::TooManyOpenFiles(_))
        ));
        // Removing `big` (reserved as None) makes room.
        a.end("big");
        a.begin(
            &[Change {
                name: "big",
                config: None,
            }],
            BTreeMap::from([("big".to_string(), big.clone())]),
        )
        .expect("a removal is admitted");
        a.begin(&second, BTreeMap::from([("big".to_string(), big)]))
            .expect("the removal's room is counted");
    }
}
