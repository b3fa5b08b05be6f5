//! A decoder over the marked YAML tree that keeps going after a problem: every error is collected
//! with its position and key path, so one `validate` run reports all of them. The decoder reads
//! the document's structure (which keys, of which types); what the values must be is the
//! specification's checks (`spec::check`), whose problems it places at the keys they are about
//! (`report`). A value that could not be read is remembered as broken: a rule that depends on
//! it saw a stand-in, so its problem is not reported.

use std::collections::HashMap;
use std::fmt;

use super::error::ConfigError;
use super::yaml::{Kind, Mark, Node};
use crate::spec::check::Problem;
pub(crate) use crate::spec::path::Path;

/// Collects errors while a document is decoded.
pub(crate) struct Ctx<'a> {
    pub(crate) file: &'a str,
    pub(crate) errors: Vec<ConfigError>,
    env: &'a dyn Fn(&str) -> Option<String>,
    /// Keys whose value could not be read.
    broken: Vec<Path>,
    /// Where each key that was read is written.
    marks: HashMap<Path, Mark>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(file: &'a str, env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Ctx {
            file,
            errors: Vec::new(),
            env,
            broken: Vec::new(),
            marks: HashMap::new(),
        }
    }

    /// A problem of the document's structure at `path` (its value is broken).
    pub(crate) fn error(&mut self, mark: Mark, path: &Path, message: impl fmt::Display) {
        self.broken.push(path.clone());
        self.push(mark, path, message);
    }

    /// A problem of the document's structure reported at `path` about keys below it (which
    /// the caller marks `broken` itself).
    pub(crate) fn note(&mut self, mark: Mark, path: &Path, message: impl fmt::Display) {
        self.push(mark, path, message);
    }

    /// The value at `path` could not be read: what stands in for it is judged by no rule.
    pub(crate) fn broken(&mut self, path: &Path) {
        self.broken.push(path.clone());
    }

    fn push(&mut self, mark: Mark, path: &Path, message: impl fmt::Display) {
        self.errors.push(ConfigError {
            file: self.file.to_string(),
            line: mark.line,
            col: mark.col,
            path: path.to_string(),
            message: message.to_string(),
        });
    }

    /// `path` is written at `mark`.
    pub(crate) fn mark(&mut self, path: &Path, mark: Mark) {
        self.marks.insert(path.clone(), mark);
    }

    /// The specification's problems of what was decoded under `base`, each at the position of
    /// its key (or, when that key is not written, of the first key it depends on that is, or of
    /// the nearest enclosing key); problems that depend on a broken value are left out.
    pub(crate) fn report(&mut self, base: &Path, problems: Vec<Problem>) {
        for p in problems {
            let keys: Vec<Path> = p.keys().map(|k| base.join(k)).collect();
            if keys.iter().any(|k| self.broken.iter().any(|b| k.within(b))) {
                continue;
            }
            let written = keys.iter().find_map(|k| self.marks.get(k).copied());
            let mark = written.or_else(|| {
                let mut up = keys[0].parent();
                while let Some(p) = up {
                    if let Some(m) = self.marks.get(&p) {
                        return Some(*m);
                    }
                    up = p.parent();
                }
                None
            });
            self.push(mark.unwrap_or_default(), &keys[0], p.message);
        }
    }

    /// The scalar text of `node` with `${VAR}` and `${VAR:-default}` replaced from the
    /// environment; `$${` is a literal `${`. None (with an error) when it is not a scalar.
    pub(crate) fn scalar(&mut self, node: &Node, path: &Path) -> Option<String> {
        match &node.kind {
            Kind::Scalar { value, .. } => match substitute(value, self.env) {
                Ok(v) => Some(v),
                Err(msg) => {
                    self.error(node.mark, path, msg);
                    None
                }
            },
            _ => {
                self.error(
                    node.mark,
                    path,
                    format!("expected a value, got {}", node.describe()),
                );
                None
            }
        }
    }

    pub(crate) fn string(&mut self, node: &Node, path: &Path) -> Option<String> {
        if node.is_null() {
            self.error(node.mark, path, "expected a string, got nothing");
            return None;
        }
        self.scalar(node, path)
    }

    pub(crate) fn bool(&mut self, node: &Node, path: &Path) -> Option<bool> {
        let text = self.scalar(node, path)?;
        match text.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                self.error(
                    node.mark,
                    path,
                    format!("must be true or false (got {text:?})"),
                );
                None
            }
        }
    }

    /// A whole number (its range is the specification's check).
    pub(crate) fn int(&mut self, node: &Node, path: &Path) -> Option<u64> {
        let text = self.scalar(node, path)?;
        match text.trim().parse::<u64>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.error(
                    node.mark,
                    path,
                    format!("must be a whole number (got {text:?})"),
                );
                None
            }
        }
    }

    /// An integer within `range` (inclusive): the daemon's own settings (a stream's ranges
    /// are `spec::check`'s).
    pub(crate) fn int_in(
        &mut self,
        node: &Node,
        path: &Path,
        range: std::ops::RangeInclusive<u64>,
    ) -> Option<u64> {
        let v = self.int(node, path)?;
        if !range.contains(&v) {
            self.error(
                node.mark,
                path,
                format!("must be {}..={} (got {v})", range.start(), range.end()),
            );
            return None;
        }
        Some(v)
    }

    /// A number (its range is the specification's check).
    pub(crate) fn number(&mut self, node: &Node, path: &Path) -> Option<f64> {
        let text = self.scalar(node, path)?;
        match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Some(v),
            _ => {
                self.error(node.mark, path, format!("must be a number (got {text:?})"));
                None
            }
        }
    }

    /// One of `allowed`, compared without regard to case; returns the index into `allowed`.
    pub(crate) fn one_of(&mut self, node: &Node, path: &Path, allowed: &[&str]) -> Option<usize> {
        let text = self.scalar(node, path)?;
        let found = allowed
            .iter()
            .position(|a| a.eq_ignore_ascii_case(text.trim()));
        if found.is_none() {
            self.error(
                node.mark,
                path,
                format!("must be one of {} (got {text:?})", allowed.join(" | ")),
            );
        }
        found
    }

    /// One of the values of an enum, by its name (`name`; case ignored).
    pub(crate) fn one_of_enum<T: Copy>(
        &mut self,
        node: &Node,
        path: &Path,
        all: &[T],
        name: fn(T) -> &'static str,
    ) -> Option<T> {
        let names: Vec<&str> = all.iter().map(|&v| name(v)).collect();
        self.one_of(node, path, &names).map(|i| all[i])
    }

    /// The entries of a mapping whose keys are the user's (names, columns); `what` says what
    /// the mapping maps, for the error.
    pub(crate) fn entries<'n>(
        &mut self,
        node: &'n Node,
        path: &Path,
        what: &str,
    ) -> Option<&'n [(Node, Node)]> {
        match &node.kind {
            Kind::Map(entries) => Some(entries),
            _ => {
                self.error(
                    node.mark,
                    path,
                    format!("expected a mapping {what}, got {}", node.describe()),
                );
                None
            }
        }
    }

    pub(crate) fn list<'n>(&mut self, node: &'n Node, path: &Path) -> Option<&'n [Node]> {
        match &node.kind {
            Kind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.mark(&path.index(i), item.mark);
                }
                Some(items)
            }
            _ => {
                self.error(
                    node.mark,
                    path,
                    format!("expected a list, got {}", node.describe()),
                );
                None
            }
        }
    }
}

/// Reads the keys of one mapping; `finish` reports the keys nobody asked for.
pub(crate) struct MapReader<'n> {
    node: &'n Node,
    entries: &'n [(Node, Node)],
    used: Vec<bool>,
    asked: Vec<&'static str>,
    /// Keys written with no value (`state_dir:`): errors, not silent defaults.
    nulls: Vec<(&'static str, Mark)>,
    /// Entries whose key was written before in this mapping (reported once, as duplicates).
    duplicate: Vec<bool>,
    pub(crate) path: Path,
}

impl<'n> MapReader<'n> {
    /// A reader over `node`, which must be a mapping; `null` reads as an empty mapping.
    pub(crate) fn new(ctx: &mut Ctx, node: &'n Node, path: Path) -> Option<Self> {
        const EMPTY: &[(Node, Node)] = &[];
        let entries: &'n [(Node, Node)] = match &node.kind {
            Kind::Map(entries) => entries,
            _ if node.is_null() => EMPTY,
            _ => {
                ctx.error(
                    node.mark,
                    &path,
                    format!("expected a mapping, got {}", node.describe()),
                );
                return None;
            }
        };
        let mut seen: Vec<(&str, usize)> = Vec::new();
        // A key written twice is reported once, as a duplicate (not also as unknown).
        let mut duplicate = vec![false; entries.len()];
        ctx.mark(&path, node.mark);
        for (i, (key, v)) in entries.iter().enumerate() {
            if let Kind::Scalar { value, .. } = &key.kind {
                let at = if v.is_null() { key.mark } else { v.mark };
                if !seen.iter().any(|(k, _)| *k == value.as_str()) {
                    ctx.mark(&path.key(value), at);
                }
                if let Some((_, line)) = seen.iter().find(|(k, _)| *k == value.as_str()) {
                    ctx.error(
                        key.mark,
                        &path.key(value),
                        format!("duplicate key (first written on line {line})"),
                    );
                    duplicate[i] = true;
                }
                seen.push((value, key.mark.line));
            }
        }
        Some(MapReader {
            node,
            entries,
            used: vec![false; entries.len()],
            asked: Vec::new(),
            nulls: Vec::new(),
            duplicate,
            path,
        })
    }

    /// The value under `key`. A key written without a value (`key:` or `key: ~`) is reported
    /// by `finish` as an error naming it; here it reads as absent, so decoding goes on.
    pub(crate) fn get(&mut self, key: &'static str) -> Option<&'n Node> {
        self.asked.push(key);
        let entries = self.entries;
        for (i, (k, v)) in entries.iter().enumerate() {
            if matches!(&k.kind, Kind::Scalar { value, .. } if value == key) {
                if self.duplicate[i] {
                    continue;
                }
                self.used[i] = true;
                if v.is_null() {
                    // At the key: a missing value's own position is wherever the next token is.
                    if !self.nulls.iter().any(|(n, _)| *n == key) {
                        self.nulls.push((key, k.mark));
                    }
                    return None;
                }
                return Some(v);
            }
        }
        None
    }

    /// The value under `key`, or an error naming the missing key.
    pub(crate) fn require(&mut self, ctx: &mut Ctx, key: &'static str) -> Option<&'n Node> {
        let found = self.get(key);
        // A key written without a value is reported once, by `finish`.
        if found.is_none() && !self.nulls.iter().any(|(k, _)| *k == key) {
            ctx.error(
                self.node.mark,
                &self.path.key(key),
                "required key is missing",
            );
        }
        found
    }

    /// Whether the key is written at all (even as null): `direct_put: {}` vs. absent.
    pub(crate) fn has(&mut self, key: &'static str) -> Option<&'n Node> {
        self.asked.push(key);
        let entries = self.entries;
        for (i, (k, v)) in entries.iter().enumerate() {
            if matches!(&k.kind, Kind::Scalar { value, .. } if value == key) && !self.duplicate[i] {
                self.used[i] = true;
                return Some(v);
            }
        }
        None
    }

    pub(crate) fn mark(&self) -> Mark {
        self.node.mark
    }

    /// Reports every key written without a value, and every key that no `get`/`require`/`has`
    /// asked for.
    pub(crate) fn finish(self, ctx: &mut Ctx) {
        for (key, mark) in &self.nulls {
            ctx.error(
                *mark,
                &self.path.key(key),
                "has no value: write one, or leave the key out for its default",
            );
        }
        for (i, (key, _)) in self.entries.iter().enumerate() {
            if self.used[i] || self.duplicate[i] {
                continue;
            }
            let name = match &key.kind {
                Kind::Scalar { value, .. } => value.clone(),
                _ => "<complex key>".to_string(),
            };
            let mut allowed = self.asked.clone();
            allowed.sort_unstable();
            allowed.dedup();
            let hint = match closest(&name, &allowed) {
                Some(s) => format!(" (did you mean `{s}`?)"),
                None => String::new(),
            };
            ctx.error(
                key.mark,
                &self.path.key(&name),
                format!("unknown key{hint}; allowed here: {}", allowed.join(", ")),
            );
        }
    }
}

/// The allowed key nearest to a misspelt one, if it is near enough to be a typo.
fn closest<'a>(name: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (edit_distance(name, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Why a `${...}` reference cannot be replaced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SubstituteError {
    #[error("unclosed `${{` in {0:?}")]
    Unclosed(String),
    #[error("`${{{0}}}` is not a valid environment variable reference")]
    Invalid(String),
    #[error("environment variable {0} is not set (write ${{{0}:-default}} for a default)")]
    Unset(String),
}

/// Replaces `${VAR}` / `${VAR:-default}`; `$${` stays a literal `${`.
pub(crate) fn substitute(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, SubstituteError> {
    if !text.contains("${") {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("${") {
        if rest[..pos].ends_with('$') {
            out.push_str(&rest[..pos - 1]);
            out.push_str("${");
            rest = &rest[pos + 2..];
            continue;
        }
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| SubstituteError::Unclosed(text.to_string()))?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(SubstituteError::Invalid(inner.to_string()));
        }
        match (env(name), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(SubstituteError::Unset(name.to_string()));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "BUCKET").then(|| "logs".to_string())
    }

    #[test]
    fn substitution() {
        assert_eq!(
            substitute("s3://${BUCKET}/x", &env).as_deref(),
            Ok("s3://logs/x")
        );
        assert_eq!(substitute("${NOPE:-d}", &env).as_deref(), Ok("d"));
        assert_eq!(substitute("$${BUCKET}", &env).as_deref(), Ok("${BUCKET}"));
        assert!(substitute("${NOPE}", &env).unwrap_err() == SubstituteError::Unset("NOPE".into()));
        assert!(substitute("${1X}", &env).is_err());
        assert!(substitute("${BUCKET", &env).is_err());
    }

    #[test]
    fn typo_suggestion() {
        assert_eq!(
            closest("size_mb", &["size_mib", "interval_seconds"]),
            Some("size_mib")
        );
        assert_eq!(closest("zzz", &["size_mib"]), None);
    }
}
