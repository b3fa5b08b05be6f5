//! Inline metadata extraction for dynamic partitioning (FIREHOSE.md section 7): a jq query,
//! run by jaq (a jq implementation in Rust), that builds an object of partition keys from a
//! JSON record. jaq values are not `Send`, so each thread compiles the query once and keeps it.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;

/// AWS's limit on the keys of one query.
pub const MAX_KEYS: usize = 50;

type Filter = jaq_core::Filter<data::JustLut<Val>>;

/// Checks that `query` compiles; the error names what is wrong. Used at config load.
pub fn check(query: &str) -> Result<(), String> {
    compile(query).map(|_| ())
}

fn compile(query: &str) -> Result<Filter, String> {
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
        .map_err(|errs| {
            format!(
                "is not a valid jq query ({} error(s) while parsing)",
                errs.len()
            )
        })?;
    Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errs| {
            let names: Vec<String> = errs
                .into_iter()
                .flat_map(|(_, e)| e.into_iter().map(|(name, _)| name.to_string()))
                .collect();
            format!("is not a valid jq query: undefined {}", names.join(", "))
        })
}

thread_local! {
    static FILTERS: RefCell<HashMap<String, Filter>> = RefCell::new(HashMap::new());
}

/// Runs `query` on one record; the partition keys, or why none could be extracted.
pub fn extract(query: &str, record: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let input = jaq_json::read::parse_single(record)
        .map_err(|e| format!("the record is not valid JSON: {e}"))?;
    FILTERS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if !cache.contains_key(query) {
            let filter = compile(query)?;
            cache.insert(query.to_string(), filter);
        }
        let Some(filter) = cache.get(query) else {
            return Err("the query is not compiled".to_string());
        };
        let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
        let mut out = filter.id.run((ctx, input)).map(unwrap_valr);
        let value = match out.next() {
            Some(Ok(v)) => v,
            Some(Err(e)) => return Err(format!("the query failed: {e}")),
            None => return Err("the query produced no value".to_string()),
        };
        keys_of(&value.to_string())
    })
}

/// The query's object as keys: strings as they are, numbers and booleans as text.
fn keys_of(json: &str) -> Result<BTreeMap<String, String>, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("the query's result is not JSON: {e}"))?;
    let serde_json::Value::Object(map) = value else {
        return Err(format!(
            "the query must build an object of partition keys (got {})",
            excerpt(json)
        ));
    };
    if map.len() > MAX_KEYS {
        return Err(format!(
            "the query built {} keys; at most {MAX_KEYS} are allowed",
            map.len()
        ));
    }
    let mut keys = BTreeMap::new();
    for (k, v) in map {
        let text = match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            // A null key is a missing key: the record is partitioning-failed where it is used.
            serde_json::Value::Null => continue,
            other => {
                return Err(format!(
                    "partition key {k:?} must be a string, number or boolean (got {})",
                    excerpt(&other.to_string())
                ));
            }
        };
        keys.insert(k, text);
    }
    Ok(keys)
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
        assert!(e.contains("not valid JSON"), "{e}");
        let e = extract(".a", br#"{"a":[1]}"#).unwrap_err();
        assert!(e.contains("must build an object"), "{e}");
        let e = extract("{a: .a}", br#"{"a":{"b":1}}"#).unwrap_err();
        assert!(e.contains("string, number or boolean"), "{e}");
        let keys = extract("{a: .a, b: .b}", br#"{"a":"x"}"#).expect("null is missing");
        assert_eq!(keys.len(), 1);
    }
}
