//! The library's floors, checked from its source: every module imports only from its own floor
//! and the floors below it (as docs/design.md draws them), names that floor in each path rather
//! than borrowing a name the crate root re-exports, and no two files import each other, however
//! far round the circle.
//!
//! `cargo test --test layers` prints each violation with its file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The floors, lowest first; a module may use its own floor and those before it.
const FLOORS: &[&[&str]] = &[
    &["model"],
    &["proof"],
    &["engine"],
    &["subscribe"],
    &["store"],
    &["audit", "trace"],
    &["costs"],
    &["observe"],
    &["server", "replicate", "ship"],
    // The crate root and the test support behind cargo features stand over everything.
    &["lib", "fuzzing", "internals"],
];

fn rank(floor: &str) -> Option<usize> {
    FLOORS.iter().position(|names| names.contains(&floor))
}

fn library_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                if path.file_name().unwrap() != "bin" {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    files
}

/// The module path of a file under `src/`: `src/engine/writer/plan.rs` is `engine::writer::plan`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The library code of a file, line by line with line numbers: without its unit tests (which
/// may use any floor to set up a case), its comments and the contents of its string literals.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let library = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    library
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let code = without_strings(line.split("//").next().unwrap_or(""));
            (!code.trim().is_empty()).then_some((i + 1, code))
        })
        .collect()
}

/// A line with what is between double quotes left out.
fn without_strings(line: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in line.chars() {
        match (quoted, escaped, c) {
            (true, false, '\\') => escaped = true,
            (true, true, _) => escaped = false,
            (_, false, '"') => quoted = !quoted,
            (false, _, c) => out.push(c),
            _ => {}
        }
    }
    out
}

/// Every `crate::a::b::…` path in a line (with `$crate` for macros), as its segments.
fn crate_paths(line: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let before = &rest[..at];
        let is_path_start = before
            .chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'));
        rest = &rest[at + "crate::".len()..];
        if !is_path_start {
            continue;
        }
        let mut segments = Vec::new();
        let mut tail = rest;
        loop {
            let end = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            if end == 0 {
                break;
            }
            segments.push(tail[..end].to_owned());
            tail = &tail[end..];
            match tail.strip_prefix("::") {
                Some(next) => tail = next,
                None => break,
            }
        }
        // `use crate::model::{event::Event, filter::Query}` names files inside the braces.
        if let Some(group) = tail.strip_prefix('{') {
            for item in group.split(['}', ',']) {
                if !item.trim().starts_with(|c: char| c.is_alphanumeric()) {
                    continue;
                }
                let mut full = segments.clone();
                full.extend(
                    item.trim()
                        .split("::")
                        .take_while(|s| !s.is_empty() && *s != "self")
                        .map(str::to_owned),
                );
                paths.push(full);
            }
        } else {
            paths.push(segments);
        }
    }
    paths
}

/// The file a path leads into: its longest prefix that is a module of the library.
fn file_of(modules: &BTreeSet<Vec<String>>, path: &[String]) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| modules.contains(prefix))
}

#[test]
fn no_module_imports_from_a_floor_above_its_own_or_through_the_crate_root() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut problems = Vec::new();
    for file in library_files() {
        let module = module_of(&src, &file);
        let floor = module.first().map_or("lib", String::as_str);
        let own =
            rank(floor).unwrap_or_else(|| panic!("{}: a folder no floor names", file.display()));
        let text = std::fs::read_to_string(&file).unwrap();
        for (line_number, line) in code_lines(&text) {
            for path in crate_paths(&line) {
                let Some(first) = path.first() else { continue };
                let place = format!("{}:{line_number}", file.display());
                match rank(first) {
                    Some(target) if target > own => problems.push(format!(
                        "{place}: the {floor} floor imports `crate::{}` from the {first} floor above it",
                        path.join("::")
                    )),
                    Some(_) => {}
                    None if own + 1 < FLOORS.len() => problems.push(format!(
                        "{place}: `crate::{}` borrows a name of the crate root; name its floor",
                        path.join("::")
                    )),
                    None => {}
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_two_files_import_each_other_even_round_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = library_files();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut uses: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        let text = std::fs::read_to_string(file).unwrap();
        let targets = uses.entry(module.clone()).or_default();
        for (_, line) in code_lines(&text) {
            let mut paths = crate_paths(&line);
            // `super::x` from `a/b.rs` is `a::x`.
            if let Some(at) = line.find("super::") {
                let name: String = line[at + "super::".len()..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let is_folder_root = file.file_name().is_some_and(|n| n == "mod.rs");
                let mut parent = module.clone();
                if !is_folder_root {
                    parent.pop();
                }
                parent.pop();
                if !name.is_empty() {
                    parent.push(name);
                    paths.push(parent);
                }
            }
            for path in paths {
                if let Some(target) = file_of(&modules, &path) {
                    // A folder's own module (its mod.rs) declares its children; that is not a use.
                    if target != module && !module.starts_with(&target) && !target.is_empty() {
                        targets.insert(target);
                    }
                }
            }
        }
    }

    // Depth-first search for a path that comes back to where it started.
    fn circle(
        uses: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        node: &Vec<String>,
        trail: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        if let Some(start) = trail.iter().position(|n| n == node) {
            let mut found = trail[start..].to_vec();
            found.push(node.clone());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        trail.push(node.clone());
        for next in uses.get(node).into_iter().flatten() {
            if let Some(found) = circle(uses, next, trail, done) {
                return Some(found);
            }
        }
        trail.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    for module in uses.keys() {
        if let Some(found) = circle(&uses, module, &mut Vec::new(), &mut done) {
            let names: Vec<String> = found.iter().map(|m| m.join("::")).collect();
            panic!("an import circle: {}", names.join(" -> "));
        }
    }
}
