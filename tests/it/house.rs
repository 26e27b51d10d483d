//! The house rules of `src/` (docs/architecture.md), checked on the source
//! itself so that they cannot drift: the parts import only the leaves
//! below them, never each other or the loop; the leaves import no part;
//! no import circle; every part's `mod.rs` says what it owns and what it
//! may not touch; no file grows past 600 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The loop and the API a server author sees: they may use everything.
const LOOP: &[&str] = &["lib", "reactor", "handler", "context", "handle", "group"];
/// The parts: each owns its fields and may use only the leaves.
const PARTS: &[&str] = &["conn", "listen", "schedule", "remote", "sources"];
/// The leaves: plain types and pure code, below every part.
const LEAVES: &[&str] = &[
    "backend", "close", "codec", "config", "interest", "limits", "logging", "stats", "stream",
    "sys", "token",
];

fn source_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// Each top-level module of the crate, with the modules its code (not its
/// comments) names through `crate::`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let module = first.to_str().unwrap().trim_end_matches(".rs").to_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        let used = graph.entry(module.clone()).or_default();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let name: String = line[at + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    used.insert(name);
                }
            }
        }
    }
    graph
}

#[test]
fn every_module_is_in_one_layer() {
    for module in imports().keys() {
        assert!(
            [LOOP, PARTS, LEAVES]
                .iter()
                .any(|l| l.contains(&module.as_str())),
            "src/{module} is in no layer of the house: add it to docs/architecture.md and here"
        );
    }
}

#[test]
fn parts_use_only_leaves_and_leaves_use_no_part() {
    for (module, used) in imports() {
        let lower: &[&str] =
            if PARTS.contains(&module.as_str()) || LEAVES.contains(&module.as_str()) {
                LEAVES
            } else {
                continue;
            };
        for name in &used {
            // Public re-exports at the crate root (`crate::Interest`) are
            // leaf types named by their public path.
            if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
                continue;
            }
            assert!(
                lower.contains(&name.as_str()),
                "src/{module} uses crate::{name}: a part may use only the leaves \
                 ({LEAVES:?}), a leaf no part and not the loop"
            );
        }
    }
}

#[test]
fn no_import_circle() {
    let graph = imports();
    // Depth-first search for a back edge.
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(node) {
            return;
        }
        if let Some(at) = path.iter().position(|&n| n == node) {
            let circle = path[at..].join(" -> ");
            // The loop and its API are one layer: Reactor, Context and
            // Handle name each other by design.
            let within_loop = path[at..].iter().all(|n| LOOP.contains(n));
            assert!(within_loop, "import circle: {circle} -> {node}");
            return;
        }
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(node);
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn each_part_says_what_it_owns_and_what_it_may_not_touch() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for part in PARTS.iter().chain(["reactor", "codec", "backend"].iter()) {
        let text = std::fs::read_to_string(src.join(part).join("mod.rs")).unwrap();
        let docs: String = text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        if PARTS.contains(part) {
            assert!(
                docs.contains("Owns:") && docs.contains("May not touch:"),
                "src/{part}/mod.rs must open with what it owns and what it may not touch"
            );
        } else {
            assert!(!docs.is_empty(), "src/{part}/mod.rs opens with no docs");
        }
    }
}

#[test]
fn no_source_file_passes_600_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    for file in files {
        let lines = std::fs::read_to_string(&file).unwrap().lines().count();
        let name = file
            .strip_prefix(&src)
            .unwrap_or(&file)
            .display()
            .to_string();
        assert!(lines <= 600, "src/{name} has {lines} lines: split it");
        assert!(
            lines <= 600,
            "{} has {lines} lines: split it",
            file.display()
        );
    }
}
