//! The shape of the code, checked like behaviour: the `use crate::` edges between the binary's
//! modules form no cycle (between files, and between top-level modules), the network layer
//! knows no protocol and no privilege, and no function in `src/` or `storage/src/` runs over 80
//! lines. Reads the sources only; starts nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest function allowed, in lines (signature to closing brace).
const MAX_FUNCTION_LINES: usize = 80;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// `src/imap/fetch/mod.rs` → `imap::fetch`; `src/main.rs` → ``.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "main") {
        parts.pop();
    }
    parts.join("::")
}

/// The source without its `#[cfg(test)] mod tests` block (tests may reach anywhere).
fn without_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    }
}

/// Every `crate::a::b::…` path the text names, with `use crate::{…}` groups expanded.
fn crate_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let end = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '{'))
            .unwrap_or(after.len());
        let head = &after[..end];
        if let Some(prefix) = head.strip_suffix('{') {
            let close = after.find('}').unwrap_or(after.len());
            for item in after[end..close].split(',') {
                out.push(format!("{prefix}{}", item.trim()));
            }
        } else {
            out.push(head.to_string());
        }
        rest = after;
    }
    out
}

/// `module → modules it uses`, resolving each path to the longest module it names.
fn edges(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files = rust_files(src);
    let modules: BTreeMap<String, PathBuf> = files
        .iter()
        .map(|f| (module_of(src, f), f.clone()))
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        for path in crate_paths(without_tests(&text)) {
            let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            let target = (1..=segments.len())
                .rev()
                .map(|n| segments[..n].join("::"))
                .find(|candidate| modules.contains_key(candidate));
            match target {
                // A module may use its own ancestors' items (a parent's re-exports).
                Some(t) if t != *module && !module.starts_with(&format!("{t}::")) => {
                    edges.entry(module.clone()).or_default().insert(t);
                }
                _ => {}
            }
        }
    }
    edges
}

/// The first cycle found, as a path `a → b → … → a`.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

fn top_level(module: &str) -> String {
    module.split("::").next().unwrap_or_default().to_string()
}

/// The edges between top-level modules.
fn layer_edges(edges: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, targets) in edges {
        for to in targets {
            let (a, b) = (top_level(from), top_level(to));
            if a != b && !a.is_empty() && !b.is_empty() {
                out.entry(a).or_default().insert(b);
            }
        }
    }
    out
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let edges = edges(&root().join("src"));
    assert!(edges.len() > 20, "found the modules: {edges:?}");
    if let Some(cycle) = find_cycle(&edges) {
        panic!("an import cycle between files: {}", cycle.join(" → "));
    }
    let layers = layer_edges(&edges);
    if let Some(cycle) = find_cycle(&layers) {
        panic!(
            "an import cycle between top-level modules: {}",
            cycle.join(" → ")
        );
    }
}

#[test]
fn the_network_layer_knows_no_protocol_and_no_privilege() {
    let layers = layer_edges(&edges(&root().join("src")));
    // `system` is a leaf (NSS users, am-I-root): a TLS file error names the user who needed it.
    let allowed: BTreeSet<String> = ["config", "counters", "system"].map(String::from).into();
    let used = layers.get("listen").cloned().unwrap_or_default();
    assert!(used.is_subset(&allowed), "listen uses {used:?}");
    for leaf in ["config", "system", "password", "counters"] {
        let used = layers.get(leaf).cloned().unwrap_or_default();
        let below: BTreeSet<String> = ["config", "system", "password"].map(String::from).into();
        assert!(used.is_subset(&below), "{leaf} uses {used:?}");
    }
}

/// `(lines, file, name)` of every function longer than the limit, outside test modules.
fn long_functions(dir: &Path) -> Vec<(usize, String, String)> {
    let mut found = Vec::new();
    for file in rust_files(dir) {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = without_tests(&text).lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            let signature = trimmed
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub(super) ")
                .trim_start_matches("async ")
                .trim_start_matches("unsafe ")
                .trim_start_matches("const ");
            let Some(name) = signature.strip_prefix("fn ") else {
                continue;
            };
            if line.trim_end().ends_with(';') || line.trim_end().ends_with('}') {
                continue;
            }
            let close = format!("{indent}}}");
            let Some(len) = lines[i + 1..].iter().position(|l| l.starts_with(&close)) else {
                continue;
            };
            if len + 2 > MAX_FUNCTION_LINES {
                let name: String = name
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.push((len + 2, file.display().to_string(), name));
            }
        }
    }
    found
}

#[test]
fn no_function_runs_over_eighty_lines() {
    let mut long = long_functions(&root().join("src"));
    long.extend(long_functions(&root().join("storage/src")));
    assert!(long.is_empty(), "split these into named steps: {long:#?}");
}
