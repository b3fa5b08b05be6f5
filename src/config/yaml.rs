//! A YAML document as a tree whose every node remembers its line and column, so the decoder can
//! point at the exact place of each problem. Built from yaml-rust2's marked event stream; the
//! rest of the config code never sees the YAML library.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// 1-based line and column of a node in the source text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Mark {
    pub(crate) line: usize,
    pub(crate) col: usize,
}

impl From<Marker> for Mark {
    fn from(m: Marker) -> Self {
        Mark {
            line: m.line(),
            col: m.col() + 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind {
    /// A scalar; `plain` is false when it was quoted or a block scalar (then never null).
    Scalar {
        value: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub(crate) kind: Kind,
    pub(crate) mark: Mark,
}

impl Node {
    /// `~`, `null`, or nothing at all, written plainly.
    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { value, plain: true }
            if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// Whether this is a mapping with `key` among its keys.
    pub(crate) fn has_key(&self, key: &str) -> bool {
        matches!(&self.kind, Kind::Map(entries)
            if entries.iter().any(|(k, _)| matches!(&k.kind, Kind::Scalar { value, .. } if value == key)))
    }

    pub(crate) fn describe(&self) -> &'static str {
        match &self.kind {
            _ if self.is_null() => "nothing (null)",
            Kind::Scalar { .. } => "a scalar",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

/// A YAML syntax error with its position.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub(crate) mark: Mark,
    pub(crate) message: String,
}

/// Parses the first document of `text`. An empty document is an empty mapping.
pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| SyntaxError {
        mark: (*e.marker()).into(),
        message: e.info().to_string(),
    })?;
    if let Some(message) = builder.error {
        return Err(SyntaxError {
            mark: builder.error_mark,
            message,
        });
    }
    Ok(builder.root.unwrap_or(Node {
        kind: Kind::Map(Vec::new()),
        mark: Mark { line: 1, col: 1 },
    }))
}

enum Open {
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>, Option<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<(Open, Mark, usize)>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    error: Option<String>,
    error_mark: Mark,
}

impl Builder {
    fn complete(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some((Open::Seq(items), _, _)) => items.push(node),
            Some((Open::Map(entries, pending), _, _)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => entries.push((key, node)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, marker: Marker) {
        let mark = Mark::from(marker);
        match ev {
            Event::Scalar(value, style, anchor, _tag) => {
                let plain = style == TScalarStyle::Plain;
                let node = Node {
                    kind: Kind::Scalar { value, plain },
                    mark,
                };
                self.complete(node, anchor);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push((Open::Seq(Vec::new()), mark, anchor))
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push((Open::Map(Vec::new(), None), mark, anchor))
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((open, start, anchor)) = self.stack.pop() {
                    let kind = match open {
                        Open::Seq(items) => Kind::Seq(items),
                        Open::Map(entries, _) => Kind::Map(entries),
                    };
                    self.complete(Node { kind, mark: start }, anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(node) => {
                    let mut node = node.clone();
                    node.mark = mark;
                    self.complete(node, 0);
                }
                None => {
                    if self.error.is_none() {
                        self.error = Some("alias to an unknown anchor".into());
                        self.error_mark = mark;
                    }
                }
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_entries(node: &Node) -> &[(Node, Node)] {
        match &node.kind {
            Kind::Map(e) => e,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn marks_point_at_keys_and_values() {
        let doc = parse("a: 1\nb:\n  c: [x, y]\n  d: {e: f}\n").expect("parses");
        let top = map_entries(&doc);
        assert_eq!(top[0].0.mark, Mark { line: 1, col: 1 });
        assert_eq!(top[0].1.mark, Mark { line: 1, col: 4 });
        let b = map_entries(&top[1].1);
        assert_eq!(b[0].0.mark, Mark { line: 3, col: 3 });
        assert_eq!(b[1].1.mark.line, 4);
        let d = map_entries(&b[1].1);
        assert_eq!(d[0].0.mark, Mark { line: 4, col: 7 });
    }

    #[test]
    fn nulls_and_quoted_nulls() {
        let doc = parse("a:\nb: ~\nc: 'null'\n").expect("parses");
        let top = map_entries(&doc);
        assert!(top[0].1.is_null());
        assert!(top[1].1.is_null());
        assert!(!top[2].1.is_null());
    }

    #[test]
    fn aliases_are_copied() {
        let doc = parse("a: &x {k: v}\nb: *x\n").expect("parses");
        let top = map_entries(&doc);
        assert_eq!(top[0].1.kind, top[1].1.kind);
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse("a: [1, 2\nb: 3\n").expect_err("unclosed flow sequence");
        assert!(err.mark.line >= 1, "{err:?}");
    }

    #[test]
    fn empty_document_is_empty_map() {
        let doc = parse("").expect("parses");
        assert!(map_entries(&doc).is_empty());
    }
}
