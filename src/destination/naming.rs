//! Object keys: evaluated prefix + `<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><ext>`, every
//! timestamp taken from the oldest record of the object, in the destination's time zone.

use chrono::DateTime;
use chrono_tz::Tz;

use crate::keys::template::{PartitionValues, Template, Values};

#[derive(Debug, Clone)]
pub(crate) struct Naming {
    pub(crate) stream: String,
    pub(crate) version: u32,
    pub(crate) prefix: Template,
    pub(crate) extension: String,
    pub(crate) time_zone: Tz,
    /// Set for error objects: the error_output_prefix and the error-output-type they hold.
    pub(crate) error: Option<ErrorNaming>,
    /// Set for a partition's objects (dynamic partitioning).
    pub(crate) partition: Option<std::sync::Arc<PartitionValues>>,
}

#[derive(Debug, Clone)]
pub(crate) struct ErrorNaming {
    pub(crate) template: Option<Template>,
    pub(crate) output_type: &'static str,
}

/// The key of one object, and its file name without the extension (the ZIP entry name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectName {
    pub(crate) key: String,
    pub(crate) base: String,
}

impl Naming {
    /// Length of `base`: fixed for a stream and version, so a ZIP header can be reserved.
    pub(crate) fn base_len(&self) -> usize {
        // stream "-" version "-" yyyy-MM-dd-HH-mm-ss "-" uuid
        self.stream.len() + 1 + self.version.to_string().len() + 1 + 19 + 1 + 36
    }

    pub(crate) fn time(&self, epoch_ms: i64) -> DateTime<Tz> {
        DateTime::from_timestamp_millis(epoch_ms)
            .unwrap_or_default()
            .with_timezone(&self.time_zone)
    }

    pub(crate) fn object(&self, oldest_ms: i64, uuid: &uuid::Uuid) -> ObjectName {
        let time = self.time(oldest_ms);
        let prefix = match &self.error {
            None => self.prefix.object_prefix(&Values {
                time,
                error_output_type: None,
                partition: self.partition.as_deref(),
            }),
            Some(e) => Template::error_prefix(
                e.template.as_ref(),
                &self.prefix,
                &Values {
                    time,
                    error_output_type: Some(e.output_type),
                    partition: None,
                },
            ),
        };
        let base = format!(
            "{}-{}-{}-{}",
            self.stream,
            self.version,
            time.format("%Y-%m-%d-%H-%M-%S"),
            uuid.hyphenated()
        );
        ObjectName {
            key: format!("{prefix}{base}{}", self.extension),
            base,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naming(prefix: &str, tz: Tz) -> Naming {
        Naming {
            stream: "orders".into(),
            version: 1,
            prefix: Template::parse(prefix).expect("parses"),
            extension: ".gz".into(),
            time_zone: tz,
            error: None,
            partition: None,
        }
    }

    const MAY_1_13_07_42: i64 = 1_714_568_862_000;

    #[test]
    fn aws_layout() {
        let id = uuid::Uuid::nil();
        let n = naming("logs/", chrono_tz::UTC);
        let o = n.object(MAY_1_13_07_42, &id);
        assert_eq!(
            o.key,
            "logs/2024/05/01/13/orders-1-2024-05-01-13-07-42-00000000-0000-0000-0000-000000000000.gz"
        );
        assert_eq!(o.base.len(), n.base_len());
    }

    #[test]
    fn error_objects_go_under_the_error_prefix() {
        let mut n = naming("logs/", chrono_tz::UTC);
        n.error = Some(ErrorNaming {
            template: None,
            output_type: "processing-failed",
        });
        let o = n.object(MAY_1_13_07_42, &uuid::Uuid::nil());
        assert!(
            o.key
                .starts_with("logs/processing-failed/2024/05/01/13/orders-1-"),
            "{}",
            o.key
        );
        n.error = Some(ErrorNaming {
            template: Some(
                Template::parse("err/!{firehose:error-output-type}/!{timestamp:yyyy}/")
                    .expect("parses"),
            ),
            output_type: "processing-failed",
        });
        let o = n.object(MAY_1_13_07_42, &uuid::Uuid::nil());
        assert!(
            o.key.starts_with("err/processing-failed/2024/orders-1-"),
            "{}",
            o.key
        );
    }

    #[test]
    fn custom_time_zone_applies_to_prefix_and_name() {
        let n = naming("", chrono_tz::America::New_York);
        let o = n.object(MAY_1_13_07_42, &uuid::Uuid::nil());
        assert!(
            o.key
                .starts_with("2024/05/01/09/orders-1-2024-05-01-09-07-42-"),
            "{}",
            o.key
        );
    }
}
