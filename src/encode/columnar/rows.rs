//! A record's JSON objects into rows of the table: keys matched to columns as the SerDe says
//! (case, dots, column-to-key mappings), missing fields null, unknown fields skipped, duplicate
//! keys refused. A record is all or nothing: if any of its objects does not fit, none of its
//! rows stay.

use std::borrow::Cow;
use std::collections::HashSet;

use super::columns::{Builder, Lookup};
use super::json::{JsonError, Kind, MAX_DEPTH, Parser};
use super::timestamp::TimestampRules;
use super::values::{self, Scalar, ValueError};

/// How JSON keys find their columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyRules {
    /// Keys are lowercased before matching (OpenX `case_insensitive`, always on for Hive).
    pub(crate) case_insensitive: bool,
    /// `.` in keys becomes `_` (OpenX `convert_dots_in_json_keys_to_underscores`).
    pub(crate) dots_to_underscores: bool,
}

impl KeyRules {
    /// The form of a key (or a field name) that is looked up.
    pub(crate) fn normalize<'a>(&self, key: &'a str) -> Cow<'a, str> {
        let mut k = Cow::Borrowed(key);
        if self.case_insensitive && key.chars().any(char::is_uppercase) {
            k = Cow::Owned(key.to_lowercase());
        }
        if self.dots_to_underscores && k.contains('.') {
            k = Cow::Owned(k.replace('.', "_"));
        }
        k
    }
}

/// What reading needs besides the builders.
#[derive(Debug, Clone)]
pub struct Rules {
    pub(crate) keys: KeyRules,
    pub(crate) timestamps: TimestampRules,
    /// AWS's value rules for Iceberg tables beside the SerDe's: dates also as epoch days,
    /// booleans also as 1 and 0 (timestamps as epoch microseconds are `timestamps`' rule).
    pub(crate) iceberg: bool,
}

impl Default for Rules {
    /// The OpenX JSON SerDe's defaults (case-insensitive keys, dots kept, AWS's timestamps).
    fn default() -> Self {
        Rules {
            keys: KeyRules {
                case_insensitive: true,
                dots_to_underscores: false,
            },
            timestamps: TimestampRules::default(),
            iceberg: false,
        }
    }
}

/// Why a record does not fit the table, and where in it: the text of its error record.
#[derive(Debug, Clone, thiserror::Error)]
pub struct Misfit {
    /// Innermost first.
    path: Vec<String>,
    problem: Problem,
}

/// What is wrong with the record.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum Problem {
    #[error(transparent)]
    Json(#[from] JsonError),
    #[error(transparent)]
    Value(#[from] ValueError),
    /// The record's shape is not the table's (not an object, a duplicate key, too deep).
    #[error("{0}")]
    Shape(Cow<'static, str>),
    /// A required column has no value.
    #[error("the column is required and the record has no value for it")]
    Missing,
}

impl<T: Into<Problem>> From<T> for Misfit {
    fn from(problem: T) -> Self {
        Misfit {
            path: Vec::new(),
            problem: problem.into(),
        }
    }
}

fn shape(what: impl Into<Cow<'static, str>>) -> Misfit {
    Misfit::from(Problem::Shape(what.into()))
}

impl Misfit {
    fn within(mut self, segment: String) -> Self {
        self.path.push(segment);
        self
    }

    /// A record without a value for a required column.
    pub(crate) fn missing(column: &str) -> Misfit {
        Misfit::from(Problem::Missing).within(column.to_string())
    }

    /// A record of several JSON objects where a table takes one (AWS's Iceberg rule).
    pub(crate) fn several_objects() -> Misfit {
        shape("The record holds more than one JSON object; an Iceberg table takes one per record.")
    }

    /// Whether the record lacks a required column (`missing`).
    pub(crate) fn is_missing_column(&self) -> bool {
        matches!(self.problem, Problem::Missing)
    }
}

impl std::fmt::Display for Misfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            return write!(f, "{}", self.problem);
        }
        let mut path = String::new();
        for seg in self.path.iter().rev() {
            if !seg.starts_with('[') && !path.is_empty() {
                path.push('.');
            }
            path.push_str(seg);
        }
        write!(f, "column {path}: {}", self.problem)
    }
}

/// Appends the rows of one record (one or more concatenated JSON objects) to `root`, the
/// table's struct builder. Returns the row count, or why the record does not fit (and then
/// nothing of it is left in the builders).
pub(crate) fn read_record(root: &mut Builder, data: &[u8], rules: &Rules) -> Result<usize, Misfit> {
    let text = std::str::from_utf8(data).map_err(|e| {
        shape(format!(
            "The record is not valid UTF-8 (at byte {}), so it is not JSON.",
            e.valid_up_to()
        ))
    })?;
    let mut p = Parser::new(text);
    if p.at_end() {
        return Err(shape("The record was empty or contained only whitespace."));
    }
    let before = root.len();
    let mut rows = 0;
    let result = (|| -> Result<(), Misfit> {
        while !p.at_end() {
            match p.peek()? {
                Kind::Object => read_struct(root, &mut p, rules, 1)?,
                Kind::Array => {
                    return Err(shape(
                        "A top-level JSON array is not valid input: send the objects one after another ({...}{...}).",
                    ));
                }
                other => {
                    return Err(shape(format!(
                        "Expected a JSON object, got {}.",
                        other.name()
                    )));
                }
            }
            rows += 1;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(rows),
        Err(f) => {
            root.truncate(before);
            Err(f)
        }
    }
}

/// Which fields of one object were given.
enum Seen {
    Few(u64),
    Many(Vec<bool>),
}

impl Seen {
    fn new(n: usize) -> Self {
        if n <= 64 {
            Seen::Few(0)
        } else {
            Seen::Many(vec![false; n])
        }
    }

    /// Marks field `i`; false if it was already marked.
    fn mark(&mut self, i: usize) -> bool {
        match self {
            Seen::Few(bits) => {
                let was = *bits & (1 << i) != 0;
                *bits |= 1 << i;
                !was
            }
            Seen::Many(v) => !std::mem::replace(&mut v[i], true),
        }
    }

    fn has(&self, i: usize) -> bool {
        match self {
            Seen::Few(bits) => *bits & (1 << i) != 0,
            Seen::Many(v) => v[i],
        }
    }
}

fn find(lookup: &Lookup, key: &str, rules: &KeyRules, hint: usize) -> Option<usize> {
    lookup.get(key, hint).or_else(|| {
        let k = rules.normalize(key);
        match k {
            Cow::Owned(k) => lookup.get(&k, hint),
            Cow::Borrowed(_) => None,
        }
    })
}

/// An object into a struct builder (the table's row, or a struct column).
fn read_struct(
    b: &mut Builder,
    p: &mut Parser<'_>,
    rules: &Rules,
    depth: usize,
) -> Result<(), Misfit> {
    let Builder::Struct {
        valid,
        children,
        names,
        lookup,
        ..
    } = b
    else {
        return Err(shape("expected a struct"));
    };
    p.begin_object()?;
    let mut seen = Seen::new(children.len());
    let mut first = true;
    let mut hint = 0;
    while let Some(key) = p.next_key(first)? {
        first = false;
        match find(lookup, &key, &rules.keys, hint) {
            Some(i) => {
                hint = i + 1;
                if !seen.mark(i) {
                    return Err(shape(format!("duplicate key {key:?}")).within(names[i].clone()));
                }
                read_value(&mut children[i], p, rules, depth + 1)
                    .map_err(|f| f.within(names[i].clone()))?;
            }
            None => p.skip_value(depth + 1)?,
        }
    }
    for (i, child) in children.iter_mut().enumerate() {
        if !seen.has(i) {
            child.push_null();
        }
    }
    valid.push(true);
    Ok(())
}

fn read_value(
    b: &mut Builder,
    p: &mut Parser<'_>,
    rules: &Rules,
    depth: usize,
) -> Result<(), Misfit> {
    if depth > MAX_DEPTH {
        return Err(shape(format!("nested deeper than {MAX_DEPTH} levels")));
    }
    let kind = p.peek()?;
    match (kind, &mut *b) {
        (Kind::Null, _) => {
            p.null()?;
            b.push_null();
            Ok(())
        }
        (Kind::Object, Builder::Struct { .. }) => read_struct(b, p, rules, depth),
        (
            Kind::Array,
            Builder::List {
                offsets,
                valid,
                child,
                ..
            },
        ) => {
            read_list(child, p, rules, depth)?;
            offsets.push(offset(child.len())?);
            valid.push(true);
            Ok(())
        }
        (
            Kind::Object,
            Builder::Map {
                offsets,
                valid,
                keys,
                values,
                ..
            },
        ) => {
            read_map(keys, values, p, rules, depth)?;
            offsets.push(offset(keys.len())?);
            valid.push(true);
            Ok(())
        }
        // Nested JSON in a string column is kept as its text (as the OpenX SerDe does).
        (Kind::Object | Kind::Array, Builder::Utf8 { .. }) => {
            let raw = p.raw_value(depth)?;
            values::push(b, Scalar::Str(Cow::Borrowed(raw)), rules).map_err(Misfit::from)
        }
        (Kind::Object | Kind::Array, _) => Err(shape(format!(
            "expected {}, got {}",
            expected(b),
            kind.name()
        ))),
        (Kind::String, _) => {
            let s = p.string()?;
            values::push(b, Scalar::Str(s), rules).map_err(Misfit::from)
        }
        (Kind::Number, _) => {
            let n = p.number()?;
            values::push(b, Scalar::Num(n), rules).map_err(Misfit::from)
        }
        (Kind::Bool, _) => {
            let v = p.bool()?;
            values::push(b, Scalar::Bool(v), rules).map_err(Misfit::from)
        }
    }
}

/// The elements of a JSON array into a list's child builder.
fn read_list(
    child: &mut Builder,
    p: &mut Parser<'_>,
    rules: &Rules,
    depth: usize,
) -> Result<(), Misfit> {
    p.begin_array()?;
    let mut i = 0;
    while p.next_element(i == 0)? {
        read_value(child, p, rules, depth + 1).map_err(|f| f.within(format!("[{i}]")))?;
        i += 1;
    }
    Ok(())
}

/// The members of a JSON object into a map's key and value builders; keys are compared as
/// converted ("1" and "01" are one int key).
fn read_map(
    keys: &mut Builder,
    values: &mut Builder,
    p: &mut Parser<'_>,
    rules: &Rules,
    depth: usize,
) -> Result<(), Misfit> {
    p.begin_object()?;
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut first = true;
    while let Some(key) = p.next_key(first)? {
        first = false;
        let at = || format!("[{key:?}]");
        values::push(keys, Scalar::Str(key.clone()), rules)
            .map_err(|m| shape(format!("map key: {m}")).within(at()))?;
        if keys.last_value_bytes().is_some_and(|k| !seen.insert(k)) {
            return Err(shape("duplicate map key").within(at()));
        }
        read_value(values, p, rules, depth + 1).map_err(|f| f.within(at()))?;
    }
    Ok(())
}

fn offset(len: usize) -> Result<i32, Misfit> {
    i32::try_from(len).map_err(|_| shape("a batch of nested values passed 2^31"))
}

fn expected(b: &Builder) -> &'static str {
    match b {
        Builder::List { .. } => "an array",
        Builder::Map { .. } | Builder::Struct { .. } => "an object",
        Builder::Utf8 { .. } => "a string",
        Builder::Bool { .. } => "a boolean",
        Builder::Date(_) => "a date",
        Builder::Timestamp(..) => "a timestamp",
        Builder::Binary(_) => "base64 binary data",
        Builder::TimestampTz(..) => "a timestamp",
        Builder::Time(_) => "a time of day",
        Builder::Fixed { uuid: true, .. } => "a UUID",
        Builder::Fixed { .. } => "fixed-size binary data",
        _ => "a number",
    }
}
