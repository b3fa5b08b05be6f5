//! A key path such as `delivery_streams[2].destinations[0].buffering.size_mib`: where a problem
//! is, in the configuration file's terms (an API request's problems name the same keys).

use std::fmt;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Path(String);

impl Path {
    pub(crate) fn root() -> Self {
        Path(String::new())
    }

    pub(crate) fn key(&self, key: &str) -> Path {
        if self.0.is_empty() {
            Path(key.to_string())
        } else {
            Path(format!("{}.{key}", self.0))
        }
    }

    pub(crate) fn index(&self, i: usize) -> Path {
        Path(format!("{}[{i}]", self.0))
    }

    /// `other` below this path (`a.b` joined with `c[0]` is `a.b.c[0]`).
    pub(crate) fn join(&self, other: &Path) -> Path {
        match (self.0.is_empty(), other.0.is_empty()) {
            (true, _) => other.clone(),
            (_, true) => self.clone(),
            _ if other.0.starts_with('[') => Path(format!("{}{}", self.0, other.0)),
            _ => Path(format!("{}.{}", self.0, other.0)),
        }
    }

    /// The path one step up (`a.b[2]` -> `a.b`, `a.b` -> `a`), None at the top.
    pub(crate) fn parent(&self) -> Option<Path> {
        if self.0.is_empty() {
            return None;
        }
        let cut = self.0.rfind(['.', '[']).unwrap_or(0);
        Some(Path(self.0[..cut].to_string()))
    }

    /// This path is `other` or below it.
    pub(crate) fn within(&self, other: &Path) -> bool {
        self.0 == other.0
            || (self.0.starts_with(&other.0)
                && matches!(self.0.as_bytes().get(other.0.len()), Some(b'.' | b'[')))
            || other.0.is_empty()
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("(top level)")
        } else {
            f.write_str(&self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_and_climb() {
        let d = Path::root().key("destinations").index(0);
        assert_eq!(d.to_string(), "destinations[0]");
        let size = d.key("buffering").key("size_mib");
        assert_eq!(
            Path::root()
                .key("delivery_streams")
                .index(2)
                .join(&size)
                .to_string(),
            "delivery_streams[2].destinations[0].buffering.size_mib"
        );
        assert_eq!(size.parent().and_then(|p| p.parent()), Some(d.clone()));
        assert_eq!(
            d.parent().map(|p| p.to_string()),
            Some("destinations".into())
        );
        assert!(size.within(&d) && !d.within(&size));
        assert!(!Path::root().key("ab").within(&Path::root().key("a")));
        assert_eq!(Path::root().to_string(), "(top level)");
    }
}
