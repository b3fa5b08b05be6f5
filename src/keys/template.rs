//! S3 prefix templates: literal text with `!{namespace:value}` expressions (docs/aws-behaviour.md
//! section 2). Parsed and checked once at config load; evaluated per object.

use chrono::DateTime;
use chrono_tz::Tz;
use rand::Rng;

use super::timefmt::{PatternError, TimeFormat};

/// Longest prefix AWS accepts as written.
pub(crate) const MAX_RAW_LEN: usize = 1024;
/// Longest prefix AWS accepts after evaluation.
pub(crate) const MAX_EVALUATED_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    Literal(String),
    Timestamp(TimeFormat),
    RandomString,
    ErrorOutputType,
    PartitionKeyFromQuery(String),
    PartitionKeyFromLambda(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

/// What one evaluation needs to know.
pub(crate) struct Values<'a> {
    /// The oldest record's arrival time, already in the destination's time zone.
    pub(crate) time: DateTime<Tz>,
    pub(crate) error_output_type: Option<&'a str>,
    /// The partition's key values (dynamic partitioning).
    pub(crate) partition: Option<&'a PartitionValues>,
}

/// The values of the partition keys a prefix uses, by namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct PartitionValues {
    pub(crate) query: std::collections::BTreeMap<String, String>,
    pub(crate) lambda: std::collections::BTreeMap<String, String>,
}

/// Why a prefix is not a valid template, in AWS's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TemplateError {
    #[error("is {0} characters long; at most {MAX_RAW_LEN} are allowed")]
    TooLong(usize),
    #[error("the expression starting at `{0}` is not closed with `}}`")]
    Unclosed(String),
    #[error("`!{{{0}}}` is not a valid expression: expressions have the form !{{namespace:value}}")]
    NoNamespace(String),
    #[error("`!{{{body}}}`: {problem}")]
    Timestamp { body: String, problem: PatternError },
    #[error("`!{{{0}}}`: the firehose namespace has random-string and error-output-type")]
    Firehose(String),
    #[error("`!{{{0}}}`: the partition key name is empty")]
    EmptyKey(String),
    #[error(
        "`!{{{body}}}`: unknown namespace {namespace:?} (allowed: timestamp, firehose, partitionKeyFromQuery, partitionKeyFromLambda)"
    )]
    Namespace { body: String, namespace: String },
}

impl Template {
    /// Parses `raw`; the error says what is wrong in AWS's terms.
    pub(crate) fn parse(raw: &str) -> Result<Template, TemplateError> {
        if raw.chars().count() > MAX_RAW_LEN {
            return Err(TemplateError::TooLong(raw.chars().count()));
        }
        let mut parts = Vec::new();
        let mut rest = raw;
        while let Some(start) = rest.find("!{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let body_and_more = &rest[start + 2..];
            let end = body_and_more
                .find('}')
                .ok_or_else(|| TemplateError::Unclosed(rest[start..].to_string()))?;
            let body = &body_and_more[..end];
            parts.push(parse_expression(body)?);
            rest = &body_and_more[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Template { parts })
    }

    pub(crate) fn has_expressions(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Literal(_)))
    }

    pub(crate) fn has_error_output_type(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::ErrorOutputType))
    }

    pub(crate) fn has_partition_keys(&self) -> bool {
        self.parts.iter().any(|p| {
            matches!(
                p,
                Part::PartitionKeyFromQuery(_) | Part::PartitionKeyFromLambda(_)
            )
        })
    }

    pub(crate) fn has_query_keys(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::PartitionKeyFromQuery(_)))
    }

    pub(crate) fn has_lambda_keys(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::PartitionKeyFromLambda(_)))
    }

    /// The partition keys the template uses, in order: (from the query?, key name).
    pub(crate) fn partition_keys(&self) -> impl Iterator<Item = (bool, &str)> {
        self.parts.iter().filter_map(|p| match p {
            Part::PartitionKeyFromQuery(k) => Some((true, k.as_str())),
            Part::PartitionKeyFromLambda(k) => Some((false, k.as_str())),
            _ => None,
        })
    }

    /// The literal text, when the template has no expressions.
    fn literal(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Literal(s) => s.as_str(),
                _ => "",
            })
            .collect()
    }

    /// Evaluates every expression.
    pub(crate) fn render(&self, values: &Values) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Timestamp(f) => out.push_str(&f.format(&values.time)),
                Part::RandomString => out.push_str(&random_string()),
                Part::ErrorOutputType => out.push_str(values.error_output_type.unwrap_or("")),
                Part::PartitionKeyFromQuery(k) => {
                    if let Some(v) = values.partition.and_then(|p| p.query.get(k)) {
                        out.push_str(v);
                    }
                }
                Part::PartitionKeyFromLambda(k) => {
                    if let Some(v) = values.partition.and_then(|p| p.lambda.get(k)) {
                        out.push_str(v);
                    }
                }
            }
        }
        out
    }

    /// The prefix of a delivered object: a plain prefix gets `yyyy/MM/dd/HH/` appended by plain
    /// concatenation, as AWS does; a prefix with expressions is used as evaluated.
    pub(crate) fn object_prefix(&self, values: &Values) -> String {
        if self.has_expressions() {
            self.render(values)
        } else {
            let mut s = self.literal();
            s.push_str(&values.time.format("%Y/%m/%d/%H/").to_string());
            s
        }
    }

    /// The prefix of an error object. A plain error prefix (or, without one, the plain main
    /// prefix) gets `<error-output-type>/yyyy/MM/dd/HH/` appended.
    pub(crate) fn error_prefix(
        error: Option<&Template>,
        main: &Template,
        values: &Values,
    ) -> String {
        match error {
            Some(t) if t.has_expressions() => t.render(values),
            other => {
                let base = match other {
                    Some(t) => t.literal(),
                    None if main.has_expressions() => String::new(),
                    None => main.literal(),
                };
                format!(
                    "{base}{}/{}",
                    values.error_output_type.unwrap_or("unknown"),
                    values.time.format("%Y/%m/%d/%H/")
                )
            }
        }
    }
}

fn parse_expression(body: &str) -> Result<Part, TemplateError> {
    let Some((namespace, value)) = body.split_once(':') else {
        return Err(TemplateError::NoNamespace(body.to_string()));
    };
    match namespace {
        "timestamp" => TimeFormat::parse(value)
            .map(Part::Timestamp)
            .map_err(|problem| TemplateError::Timestamp {
                body: body.to_string(),
                problem,
            }),
        "firehose" => match value {
            "random-string" => Ok(Part::RandomString),
            "error-output-type" => Ok(Part::ErrorOutputType),
            _ => Err(TemplateError::Firehose(body.to_string())),
        },
        "partitionKeyFromQuery" | "partitionKeyFromLambda" => {
            if value.is_empty() {
                return Err(TemplateError::EmptyKey(body.to_string()));
            }
            Ok(if namespace == "partitionKeyFromQuery" {
                Part::PartitionKeyFromQuery(value.to_string())
            } else {
                Part::PartitionKeyFromLambda(value.to_string())
            })
        }
        _ => Err(TemplateError::Namespace {
            body: body.to_string(),
            namespace: namespace.to_string(),
        }),
    }
}

/// 11 random lowercase letters and digits, as `!{firehose:random-string}`.
pub(crate) fn random_string() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..11)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn values(error: Option<&str>) -> Values<'_> {
        Values {
            time: chrono_tz::UTC
                .with_ymd_and_hms(2024, 5, 1, 13, 7, 42)
                .single()
                .expect("valid"),
            error_output_type: error,
            partition: None,
        }
    }

    fn prefix(raw: &str) -> String {
        Template::parse(raw)
            .expect("template parses")
            .object_prefix(&values(None))
    }

    #[test]
    fn plain_prefixes_get_the_hour_concatenated() {
        assert_eq!(prefix(""), "2024/05/01/13/");
        assert_eq!(prefix("logs/"), "logs/2024/05/01/13/");
        assert_eq!(
            prefix("logs"),
            "logs2024/05/01/13/",
            "no slash inserted, as AWS"
        );
    }

    #[test]
    fn expressions_are_evaluated_and_nothing_appended() {
        assert_eq!(prefix("logs/!{timestamp:yyyy/MM/dd}/"), "logs/2024/05/01/");
        assert_eq!(
            prefix("dt=!{timestamp:yyyy'-'MM'-'dd}/h=!{timestamp:HH}/"),
            "dt=2024-05-01/h=13/"
        );
        let p = prefix("x/!{firehose:random-string}/!{firehose:random-string}/");
        let parts: Vec<&str> = p.split('/').collect();
        assert_eq!(parts[1].len(), 11);
        assert!(
            parts[1]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_ne!(parts[1], parts[2], "new at each occurrence");
    }

    #[test]
    fn error_prefixes() {
        let main = Template::parse("logs/").expect("parses");
        let v = values(Some("processing-failed"));
        assert_eq!(
            Template::error_prefix(None, &main, &v),
            "logs/processing-failed/2024/05/01/13/"
        );
        let err = Template::parse("err/!{firehose:error-output-type}/!{timestamp:yyyy}/")
            .expect("parses");
        assert_eq!(
            Template::error_prefix(Some(&err), &main, &v),
            "err/processing-failed/2024/"
        );
    }

    #[test]
    fn bad_expressions() {
        assert!(Template::parse("a/!{timestamp}").is_err());
        assert!(Template::parse("a/!{nope:x}").is_err());
        assert!(Template::parse("a/!{firehose:uuid}").is_err());
        assert!(Template::parse("a/!{timestamp:yyyy").is_err());
        assert!(Template::parse("a/!{timestamp:ww}").is_err());
        assert!(Template::parse(&"a".repeat(1025)).is_err());
        let t = Template::parse("!{partitionKeyFromQuery:id}/").expect("parses");
        assert!(t.has_partition_keys());
    }
}
