//! The house rules of docs/architecture.md, checked on the source text so that they stay kept:
//! no import loop between top-level modules, no `Result<_, String>` and no `process::exit` in
//! library code, and every document the repository points to is in the repository. (Function
//! length is clippy's `too_many_lines`, set in src/lib.rs and clippy.toml.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("readable folder").flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The code of a file with comments, strings and char literals blanked out (newlines kept, so
/// line numbers stay right).
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, c: u8| out.push(if c == b'\n' { b'\n' } else { b' ' });
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied().unwrap_or(0);
        if c == b'/' && next == b'/' {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if c == b'/' && next == b'*' {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    out.extend_from_slice(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if c == b'r' && (next == b'"' || next == b'#') && !ident_byte(out.last().copied()) {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            out.push(b'"');
            i = j + 1;
            while i < b.len() && !b[i..].starts_with(&close) {
                blank(&mut out, b[i]);
                i += 1;
            }
            out.push(b'"');
            i += close.len();
        } else if c == b'"' {
            out.push(b'"');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    blank(&mut out, b[i]);
                    i += 1;
                }
                if i < b.len() {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
            out.push(b'"');
            i += 1;
        } else if c == b'\'' {
            // A char literal ('x', '\n', '\u{..}'); otherwise a lifetime.
            let literal = if next == b'\\' {
                b[i + 2..]
                    .iter()
                    .position(|&x| x == b'\'')
                    .map(|p| i + 2 + p)
            } else if b.get(i + 2) == Some(&b'\'') {
                Some(i + 2)
            } else {
                None
            };
            match literal {
                Some(end) => {
                    out.extend(std::iter::repeat_n(b' ', end + 1 - i));
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn ident_byte(c: Option<u8>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The library code of a file: `tests.rs` files are test modules; a `#[cfg(test)]` item is cut
/// out (to its matching brace, or its `;`).
fn library_code(path: &Path) -> Option<String> {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return None;
    }
    let text = std::fs::read_to_string(path).expect("readable source");
    let code = code_only(&text);
    let mut out = String::with_capacity(code.len());
    let mut rest = code.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let end = item_end(after);
        out.extend(
            after[..end]
                .chars()
                .map(|c| if c == '\n' { '\n' } else { ' ' }),
        );
        rest = &after[end..];
    }
    out.push_str(rest);
    Some(out)
}

/// The end of the item that starts `text`: its matching `}` or the `;` before any brace.
fn item_end(text: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            ';' if depth == 0 => return i + 1,
            _ => {}
        }
    }
    text.len()
}

/// (file, library code) of every library source file.
fn library_sources() -> Vec<(PathBuf, String)> {
    let src = repo().join("src");
    rust_files(&src)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "main.rs"))
        .filter_map(|p| library_code(&p).map(|code| (p, code)))
        .collect()
}

fn relative(p: &Path) -> String {
    p.strip_prefix(repo()).unwrap_or(p).display().to_string()
}

/// The top-level module a source file belongs to (`src/a.rs`, `src/a/...` -> `a`).
fn top_module(p: &Path) -> Option<String> {
    let rel = p.strip_prefix(repo().join("src")).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib").then(|| name.to_string())
}

/// Where the group that `text` is inside of ends (`text` starts after its `{`).
fn matching_brace(text: &str) -> usize {
    let mut depth = 1;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    text.len()
}

/// The top-level modules a file's code names: `crate::x`, `crate::{x, y::z}`, and in a
/// top-level module's own root file, `super::x`.
fn named_modules(code: &str, own_root: bool) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut prefixes = vec!["crate::"];
    if own_root {
        prefixes.push("super::");
    }
    for prefix in prefixes {
        for (at, _) in code.match_indices(prefix) {
            if ident_byte(code.as_bytes().get(at.wrapping_sub(1)).copied()) {
                continue;
            }
            let rest = code[at + prefix.len()..].trim_start();
            if let Some(group) = rest.strip_prefix('{') {
                let inner = &group[..matching_brace(group)];
                let mut depth = 0;
                let mut start = true;
                for (i, c) in inner.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => start = true,
                        c if start && (c.is_alphanumeric() || c == '_') => {
                            let word: String = inner[i..]
                                .chars()
                                .take_while(|c| c.is_alphanumeric() || *c == '_')
                                .collect();
                            out.insert(word);
                            start = false;
                        }
                        _ => {}
                    }
                }
            } else {
                let word: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !word.is_empty() {
                    out.insert(word);
                }
            }
        }
    }
    out
}

/// Top-level module -> the top-level modules it names.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let src = repo().join("src");
    for (path, code) in library_sources() {
        let Some(module) = top_module(&path) else {
            continue;
        };
        let own_root = path.parent() == Some(src.as_path())
            || (path.file_name().is_some_and(|n| n == "mod.rs")
                && path.parent().and_then(Path::parent) == Some(src.as_path()));
        let names = named_modules(&code, own_root);
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(names.into_iter().filter(|n| *n != module));
    }
    let known: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| known.contains(d));
    }
    graph
}

/// A path of imports from `from` back to `to`, if there is one.
fn path_between(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    to: &str,
) -> Option<Vec<String>> {
    let mut stack = vec![vec![from.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().expect("paths are never empty").clone();
        if last == to && path.len() > 1 {
            return Some(path);
        }
        if !seen.insert(last.clone()) {
            continue;
        }
        for next in graph.get(&last).into_iter().flatten() {
            let mut longer = path.clone();
            longer.push(next.clone());
            stack.push(longer);
        }
    }
    None
}

#[test]
fn no_top_level_module_imports_one_that_imports_it_back() {
    let graph = module_graph();
    assert!(
        graph.len() > 10 && graph.get("streams").is_some_and(|d| d.contains("stream")),
        "the module graph was not read: {graph:?}"
    );
    let mut loops = Vec::new();
    for module in graph.keys() {
        if let Some(path) = path_between(&graph, module, module) {
            loops.push(path.join(" -> "));
        }
    }
    assert!(
        loops.is_empty(),
        "import loops between top-level modules:\n{}",
        loops.join("\n")
    );
}

/// The top-level modules of docs/architecture.md's table "Modules, top to bottom", by rank
/// (modules named in one row share it).
fn declared_order() -> BTreeMap<String, usize> {
    let doc = std::fs::read_to_string(repo().join("docs/architecture.md")).expect("the map");
    let table = doc
        .split("## Modules, top to bottom")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap_or_default();
    let mut ranks = BTreeMap::new();
    let rows = table.lines().filter(|l| l.starts_with("| `"));
    for (rank, row) in rows.enumerate() {
        let first = row.split('|').nth(1).unwrap_or_default();
        for name in first.split('`').skip(1).step_by(2) {
            ranks.insert(name.to_string(), rank);
        }
    }
    ranks
}

#[test]
fn every_module_imports_only_modules_below_it_in_the_map() {
    let ranks = declared_order();
    let mut problems = Vec::new();
    for (module, deps) in module_graph() {
        let Some(&own) = ranks.get(&module) else {
            problems.push(format!(
                "{module} is not in docs/architecture.md's module table"
            ));
            continue;
        };
        for dep in deps {
            match ranks.get(&dep) {
                Some(&r) if r < own => problems.push(format!(
                    "{module} imports {dep}, which the map puts above it"
                )),
                _ => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_loop_check_sees_grouped_imports_and_super_paths() {
    let names = named_modules(
        "use crate::{config::{A, B}, spool};\nuse super::stream::X;\nfn f() { crate::metrics::y(); }",
        true,
    );
    let expected: BTreeSet<String> = ["config", "metrics", "spool", "stream"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(names, expected);
    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    graph.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    graph.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(
        path_between(&graph, "a", "a"),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    graph.insert("c".to_string(), BTreeSet::new());
    assert_eq!(path_between(&graph, "a", "a"), None);
}

#[test]
fn library_errors_are_typed_not_strings() {
    let mut found = Vec::new();
    for (path, code) in library_sources() {
        let flat: String = code.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut rest = flat.as_str();
        while let Some(at) = rest.find("Result<") {
            let inner = &rest[at + "Result<".len()..];
            let mut depth = 1;
            let end = inner
                .char_indices()
                .find_map(|(i, c)| {
                    match c {
                        '<' => depth += 1,
                        '>' => depth -= 1,
                        _ => {}
                    }
                    (depth == 0).then_some(i)
                })
                .unwrap_or(inner.len());
            let args = &inner[..end];
            if args.ends_with(", String") || args.ends_with(",String") {
                found.push(format!("{}: Result<{args}>", relative(&path)));
            }
            rest = &inner[end.min(inner.len())..];
        }
    }
    assert!(
        found.is_empty(),
        "Result<_, String> in library code:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_main_exits_the_process() {
    let found: Vec<String> = library_sources()
        .into_iter()
        .filter(|(_, code)| code.contains("process::exit"))
        .map(|(p, _)| relative(&p))
        .collect();
    assert!(found.is_empty(), "process::exit in library code: {found:?}");
}

/// The repository's files a text names by path: `docs/x.md`, `src/a/b.rs`, `tests/e2e/c.rs`,
/// `bench/d.sh`, `scripts/e.sh` (a path starts a word: `target/src/x.rs` is not one).
fn paths_named(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["docs/", "src/", "tests/", "bench/", "scripts/"] {
        for (at, _) in text.match_indices(dir) {
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || "/._-{".contains(c)) {
                continue;
            }
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || "/._-".contains(*c))
                .collect();
            let name = name.trim_end_matches('.');
            if [".md", ".rs", ".sh", ".py"]
                .iter()
                .any(|e| name.ends_with(e))
            {
                out.push(name.to_string());
            }
        }
    }
    out
}

#[test]
fn the_path_finder_takes_paths_that_start_a_word() {
    let text = "see docs/a.md, `src/b/c.rs` and tests/e2e/d.rs; not target/src/e.rs or docs/.";
    assert_eq!(
        paths_named(text),
        ["docs/a.md", "src/b/c.rs", "tests/e2e/d.rs"]
    );
}

/// Files the repository's text refers to by name.
#[test]
fn every_document_referred_to_is_in_the_repository() {
    let root = repo();
    let mut texts: Vec<PathBuf> = rust_files(&root.join("src"));
    texts.extend(rust_files(&root.join("tests")));
    for dir in ["docs", "bench", "scripts", "packaging", "config"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        texts.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()));
    }
    texts.extend(["README.md", "BENCHMARKS.md"].map(|f| root.join(f)));
    let outside = [
        "DESIGN.md",
        "FIREHOSE.md",
        "INTERFACE.md",
        "LOCAL-SERVERS.md",
    ];
    let mut problems = Vec::new();
    for path in &texts {
        if path.ends_with("tests/e2e/house.rs") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        for name in outside {
            if text.contains(name) {
                problems.push(format!(
                    "{} names {name}, which is not in the repository",
                    relative(path)
                ));
            }
        }
        for name in paths_named(&text) {
            if !root.join(&name).exists() {
                problems.push(format!(
                    "{} points to {name}, which does not exist",
                    relative(path)
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
