//! Inline metadata extraction for dynamic partitioning (docs/aws-behaviour.md section 7): a jq query,
//! run by jaq (a jq implementation in Rust), that builds an object of partition keys from a
//! JSON record. jaq values are not `Send`, so each thread compiles the query once and keeps it.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;

/// AWS's limit on the keys of one query.
pub(crate) const MAX_KEYS: usize = 50;

type Filter = jaq_core::Filter<data::JustLut<Val>>;

/// Why a query does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum QueryError {
    /// The first problem jaq found, and where (a character position, from 1).
    #[error("is not a valid jq query: {problem} at character {at}")]
    Syntax { problem: String, at: usize },
    #[error("is not a valid jq query: undefined {}", .0.join(", "))]
    Undefined(Vec<String>),
}

/// Why no partition keys came out of a record (the text of its error record).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ExtractError {
    #[error("the record is not valid JSON: {0}")]
    NotJson(String),
    #[error("the record has a number of more than {MAX_DIGITS} digits")]
    LongNumber,
    #[error("the query {0}")]
    Query(#[from] QueryError),
    #[error("the query failed: {0}")]
    Failed(String),
    #[error("the query produced no value")]
    NoValue,
    #[error("the query's result is not JSON: {0}")]
    ResultNotJson(String),
    #[error("the query must build an object of partition keys (got {0})")]
    NotAnObject(String),
    #[error("the query built {0} keys; at most {MAX_KEYS} are allowed")]
    TooManyKeys(usize),
    #[error("partition key {key:?} must be a string, number or boolean (got {got})")]
    KeyType { key: String, got: String },
    #[error("partition key {key:?} is {len} bytes long; at most {MAX_VALUE_BYTES} are kept")]
    KeyTooLong { key: String, len: usize },
    #[error("the query engine failed on this record")]
    Panicked,
}

/// Checks that `query` compiles; the error names what is wrong. Used at config load.
pub(crate) fn check(query: &str) -> Result<(), QueryError> {
    compile(query).map(|_| ())
}

fn compile(query: &str) -> Result<Filter, QueryError> {
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader
        .load(
            &arena,
            File {
                code: query,
                path: (),
            },
        )
        .map_err(|errs| syntax_error(query, errs))?;
    Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errs| {
            let names: Vec<String> = errs
                .into_iter()
                .flat_map(|(_, e)| e.into_iter().map(|(name, _)| name.to_string()))
                .collect();
            QueryError::Undefined(names)
        })
}

/// The first lex or parse error of a query, with its position in the query.
fn syntax_error(query: &str, errs: jaq_core::load::Errors<&str, ()>) -> QueryError {
    use jaq_core::load::{Error, lex};
    // jaq reports positions as slices of the query: their offset is the position.
    let at = |found: &str| {
        let offset = (found.as_ptr() as usize).wrapping_sub(query.as_ptr() as usize);
        let offset = if offset <= query.len() {
            offset
        } else {
            query.len()
        };
        query[..query.floor_char_boundary(offset)].chars().count() + 1
    };
    let found = |s: &str| match s.chars().next() {
        Some(c) => format!("found `{c}`"),
        None => "found the end of the query".to_string(),
    };
    let first = errs.into_iter().find_map(|(_, e)| match e {
        Error::Lex(errs) => errs.into_iter().next().map(|(expect, f)| {
            let what = match expect {
                lex::Expect::Delim(open) => format!("expected a closing match for `{open}`"),
                other => format!("expected {}", other.as_str()),
            };
            (format!("{what}, {}", found(f)), at(f))
        }),
        Error::Parse(errs) => errs
            .into_iter()
            .next()
            .map(|(expect, f)| (format!("expected {}, {}", expect.as_str(), found(f)), at(f))),
        Error::Io(errs) => errs
            .into_iter()
            .next()
            .map(|(path, why)| (format!("cannot load {path}: {why}"), 1)),
    });
    let (problem, at) = first.unwrap_or_else(|| ("it does not parse".to_string(), 1));
    QueryError::Syntax { problem, at }
}

thread_local! {
    static FILTERS: RefCell<HashMap<String, Filter>> = RefCell::new(HashMap::new());
}

/// Longest run of digits accepted in a record: jaq reads long integers exactly, in time that
/// grows with the square of their length.
const MAX_DIGITS: usize = 4096;
/// Longest partition key value kept (a prefix holds at most 512 characters anyway).
const MAX_VALUE_BYTES: usize = 1024;

/// Runs `query` on one record; the partition keys, or why none could be extracted. A panic in
/// the query engine fails this record only.
pub(crate) fn extract(
    query: &str,
    record: &[u8],
) -> Result<BTreeMap<String, String>, ExtractError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        extract_unguarded(query, record)
    }))
    .unwrap_or(Err(ExtractError::Panicked))
}

fn extract_unguarded(query: &str, record: &[u8]) -> Result<BTreeMap<String, String>, ExtractError> {
    // serde_json first: strict JSON (no NaN, no byte strings), nesting at most 128 deep. jaq's
    // own reader recurses without a limit and would overflow the stack on `[[[[...`.
    serde_json::from_slice::<serde::de::IgnoredAny>(record)
        .map_err(|e| ExtractError::NotJson(e.to_string()))?;
    if longest_digit_run(record) > MAX_DIGITS {
        return Err(ExtractError::LongNumber);
    }
    let input =
        jaq_json::read::parse_single(record).map_err(|e| ExtractError::NotJson(e.to_string()))?;
    FILTERS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if !cache.contains_key(query) {
            let filter = compile(query)?;
            cache.insert(query.to_string(), filter);
        }
        let Some(filter) = cache.get(query) else {
            return Err(ExtractError::NoValue);
        };
        let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
        let mut out = filter.id.run((ctx, input)).map(unwrap_valr);
        let value = match out.next() {
            Some(Ok(v)) => v,
            Some(Err(e)) => return Err(ExtractError::Failed(e.to_string())),
            None => return Err(ExtractError::NoValue),
        };
        keys_of(&value.to_string())
    })
}

/// The query's object as keys: strings as they are, numbers and booleans as text.
fn keys_of(json: &str) -> Result<BTreeMap<String, String>, ExtractError> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| ExtractError::ResultNotJson(e.to_string()))?;
    let serde_json::Value::Object(map) = value else {
        return Err(ExtractError::NotAnObject(excerpt(json)));
    };
    if map.len() > MAX_KEYS {
        return Err(ExtractError::TooManyKeys(map.len()));
    }
    let mut keys = BTreeMap::new();
    for (k, v) in map {
        let text = match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => number_text(&n),
            serde_json::Value::Bool(b) => b.to_string(),
            // A null key is a missing key: the record is partitioning-failed where it is used.
            serde_json::Value::Null => continue,
            other => {
                return Err(ExtractError::KeyType {
                    key: k,
                    got: excerpt(&other.to_string()),
                });
            }
        };
        if text.len() > MAX_VALUE_BYTES {
            return Err(ExtractError::KeyTooLong {
                key: k,
                len: text.len(),
            });
        }
        keys.insert(k, text);
    }
    Ok(keys)
}

/// A number as jq 1.6 prints it: whole floats without a fraction (`2.0` -> `2`).
fn number_text(n: &serde_json::Number) -> String {
    match n.as_f64() {
        Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e17 => format!("{}", f as i64),
        _ => n.to_string(),
    }
}

fn longest_digit_run(data: &[u8]) -> usize {
    let (mut best, mut run) = (0, 0);
    for b in data {
        if b.is_ascii_digit() {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

fn excerpt(s: &str) -> String {
    if s.len() > 80 {
        format!("{}...", &s[..s.floor_char_boundary(80)])
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_paths_strings_and_strftime() {
        let q = r#"{customer_id: .customer.id, region: (.region | ascii_downcase), year: (.ts | strftime("%Y")), day: (.ts | strftime("%d"))}"#;
        check(q).expect("compiles");
        let keys = extract(
            q,
            br#"{"customer":{"id":42},"region":"EU-West","ts":1714568862}"#,
        )
        .expect("extracts");
        assert_eq!(keys["customer_id"], "42");
        assert_eq!(keys["region"], "eu-west");
        assert_eq!(keys["year"], "2024");
        assert_eq!(keys["day"], "01");
    }

    #[test]
    fn failures_say_why() {
        assert!(check("{a: .a").is_err());
        assert!(check("{a: nosuchfunction}").is_err());
        let e = extract("{a: .a}", b"not json").unwrap_err();
        assert!(matches!(e, ExtractError::NotJson(_)), "{e}");
        let e = extract(".a", br#"{"a":[1]}"#).unwrap_err();
        assert!(e.to_string().contains("must build an object"), "{e}");
        let e = extract("{a: .a}", br#"{"a":{"b":1}}"#).unwrap_err();
        assert!(e.to_string().contains("string, number or boolean"), "{e}");
        let keys = extract("{a: .a, b: .b}", br#"{"a":"x"}"#).expect("null is missing");
        assert_eq!(keys.len(), 1);
    }

    #[test]
    fn hostile_records_fail_cleanly() {
        // 100,000 levels of nesting: serde_json refuses it before jaq could overflow the stack.
        let deep = "[".repeat(100_000);
        let e = extract("{a: .a}", deep.as_bytes()).unwrap_err();
        assert!(matches!(e, ExtractError::NotJson(_)), "{e}");
        let big = format!("{{\"a\":{}}}", "9".repeat(MAX_DIGITS + 1));
        assert!(extract("{a: .a}", big.as_bytes()).is_err());
        assert!(extract("{a: .a}", b"NaN").is_err());
        let long = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_VALUE_BYTES + 1));
        assert!(extract("{a: .a}", long.as_bytes()).is_err());
    }

    #[test]
    fn numbers_print_as_jq_does() {
        let keys =
            extract("{a: .a, b: .b, c: .c}", br#"{"a":2.0,"b":1.5,"c":7}"#).expect("extracts");
        assert_eq!(keys["a"], "2");
        assert_eq!(keys["b"], "1.5");
        assert_eq!(keys["c"], "7");
    }
}
