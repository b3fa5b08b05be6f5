//! A destination's runtime parts, made from its specification: the prefix templates (kept as
//! written in the specification; the checks proved they parse), the time zone, and the format
//! conversion ready to make writers (Arrow schema, timestamp rules, writer properties).

use std::sync::Arc;

use crate::destination::stagers::Layout;
use crate::encode::columnar::timestamp::{Format, FormatError, TimestampRules};
use crate::encode::columnar::{KeyRules, Rules};
use crate::encode::conversion::{Conversion, Deserializer};
use crate::encode::parquet::ParquetOptions;
use crate::keys::template::{Template, TemplateError};
use crate::spec::{ConversionSpec, DestinationSpec, InputSpec, OutputSpec};

/// A specification that does not hold what its checks promised (a defect, reported as such).
#[derive(Debug, thiserror::Error)]
pub(crate) enum LayoutError {
    #[error("prefix {prefix:?}")]
    Template {
        prefix: String,
        #[source]
        source: TemplateError,
    },
    #[error("timestamp format {format:?}")]
    Format {
        format: String,
        #[source]
        source: FormatError,
    },
}

/// The main prefix's template and the rest of `d`'s layout.
pub(super) fn layout(d: &DestinationSpec) -> Result<(Template, Layout), LayoutError> {
    let prefix = match &d.prefix {
        Some(p) => template(p)?,
        None => Template::default(),
    };
    let layout = Layout {
        error_prefix: d.error_output_prefix.as_deref().map(template).transpose()?,
        backup_prefix: d
            .source_record_backup
            .as_deref()
            .map(template)
            .transpose()?,
        conversion: d
            .format_conversion
            .as_ref()
            .map(conversion)
            .transpose()?
            .map(Arc::new),
        tables: None,
    };
    Ok((prefix, layout))
}

fn template(prefix: &str) -> Result<Template, LayoutError> {
    Template::parse(prefix).map_err(|source| LayoutError::Template {
        prefix: prefix.to_string(),
        source,
    })
}

/// The `Conversion` of a specification: how JSON is read (keys, mappings, timestamp formats)
/// and what is written (Parquet, or ORC with nanosecond timestamps and its stripe bound).
pub(super) fn conversion(c: &ConversionSpec) -> Result<Conversion, LayoutError> {
    let (rules, mappings, deserializer) = match &c.input {
        InputSpec::OpenX {
            case_insensitive,
            dots_to_underscores,
            mappings,
        } => {
            let keys = KeyRules {
                case_insensitive: *case_insensitive,
                dots_to_underscores: *dots_to_underscores,
            };
            let rules = Rules {
                keys,
                ..Rules::default()
            };
            (rules, mappings.clone(), Deserializer::OpenX)
        }
        InputSpec::Hive { timestamp_formats } => {
            let formats = timestamp_formats
                .iter()
                .map(|f| {
                    Format::parse(f).map_err(|source| LayoutError::Format {
                        format: f.clone(),
                        source,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let rules = Rules {
                timestamps: TimestampRules { formats },
                ..Rules::default()
            };
            (
                rules,
                Vec::new(),
                Deserializer::Hive(timestamp_formats.clone()),
            )
        }
    };
    let (options, orc) = match &c.output {
        OutputSpec::Parquet(options) => (*options, None),
        OutputSpec::Orc {
            options,
            stripe_buffer_bytes,
        } => {
            // ORC's rows are read with the Parquet defaults, nanosecond timestamps and the
            // stripe's own memory bound.
            let rows = ParquetOptions {
                row_group_buffer_bytes: *stripe_buffer_bytes,
                timestamp_unit: crate::encode::columnar::TimestampUnit::Nanos,
                ..ParquetOptions::DEFAULT
            };
            (rows, Some(options.clone()))
        }
    };
    let mut conversion =
        Conversion::new(c.columns.clone(), rules, mappings, options, c.table.clone());
    if let Some(orc) = orc {
        conversion = conversion.with_orc(orc);
    }
    conversion.deserializer = deserializer;
    Ok(conversion)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination(yaml: &str) -> DestinationSpec {
        let text = format!("name: s\nsource: {{direct_put: {{}}}}\ndestinations:\n  - {yaml}\n");
        let mut spec = crate::config::parse_stream("t", &text, true).expect("valid");
        spec.destinations.remove(0)
    }

    #[test]
    fn orc_keeps_nanoseconds_and_its_stripe_bound() {
        let d = destination(
            "{directory: a, data_format_conversion: {schema: {columns: [{name: ts, type: timestamp}]}, output: {orc: {stripe_buffer_mib: 2}}}}",
        );
        let (_, layout) = layout(&d).expect("built");
        let c = layout.conversion.expect("converting");
        assert_eq!(
            c.options.timestamp_unit,
            crate::encode::columnar::TimestampUnit::Nanos
        );
        assert_eq!(c.options.row_group_buffer_bytes, 2 * 1024 * 1024);
        assert!(c.orc.is_some());
    }

    #[test]
    fn hive_formats_and_openx_mappings_reach_the_conversion() {
        let d = destination(
            "{directory: a, data_format_conversion: {schema: {columns: [{name: ts, type: timestamp}]}, input: {hive_json: {timestamp_formats: [millis]}}}}",
        );
        let c = conversion(d.format_conversion.as_ref().expect("on")).expect("built");
        assert_eq!(c.deserializer, Deserializer::Hive(vec!["millis".into()]));
        assert_eq!(c.rules.timestamps.formats, vec![Format::Millis]);
        let d = destination(
            "{directory: a, data_format_conversion: {schema: {columns: [{name: a, type: int}]}, input: {openx_json: {case_insensitive: false, column_to_json_key_mappings: {a: 'x.y'}}}}}",
        );
        let c = conversion(d.format_conversion.as_ref().expect("on")).expect("built");
        assert!(!c.rules.keys.case_insensitive);
        assert_eq!(c.mappings, vec![("a".to_string(), "x.y".to_string())]);
        let (prefix, layout) = layout(&destination(
            "{directory: a, prefix: 'p/!{timestamp:yyyy}/', error_output_prefix: 'e/!{firehose:error-output-type}/', source_record_backup: {prefix: raw/}}",
        ))
        .expect("built");
        assert!(prefix.has_expressions());
        assert!(layout.error_prefix.is_some() && layout.backup_prefix.is_some());
    }
}
