//! The house keeps its shape: no module of `src/` uses one above it in the layering that
//! docs/ARCHITECTURE.md draws (read from its table), no import cycles between top-level modules, and
//! no file of `src/` grows past ~800 lines (those still above are listed with their current size,
//! to be split, never grown).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Files still above [`MAX_LINES`], each with the size it may not exceed until it is split.
const OVERSIZED: [(&str, usize); 0] = [];

/// About 800 lines: past ~600 a file usually holds two concerns.
const MAX_LINES: usize = 800;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Layer of each top-level module, from the table of docs/ARCHITECTURE.md.
fn layers() -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    let mut layers = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(layer) = cells.get(1).and_then(|c| c.parse::<usize>().ok()) else {
            continue;
        };
        for module in cells[2].split(',') {
            let module = module.trim().trim_matches('`');
            assert!(
                layers.insert(module.to_owned(), layer).is_none(),
                "{module} is in two layers"
            );
        }
    }
    assert!(layers.len() > 5, "no layer table in docs/ARCHITECTURE.md");
    layers
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`None` for lib.rs and main.rs).
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_owned())
}

/// The top-level modules a file's code (its tests left out) names through `crate::`.
fn uses(text: &str) -> BTreeSet<String> {
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(end) => &text[..end],
        None => text,
    };
    let mut used = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a::X, b};`
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for part in inner.split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    used.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            used.insert(name);
        }
    }
    used
}

/// The modules each top-level module uses (its test files left out).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        if relative.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let Some(module) = module_of(relative) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let used = graph.entry(module.clone()).or_default();
        used.extend(uses(&text).into_iter().filter(|m| *m != module));
    }
    graph
}

#[test]
fn no_module_uses_one_above_it() {
    let layers = layers();
    let mut wrong = Vec::new();
    for (module, used) in graph() {
        let Some(&own) = layers.get(&module) else {
            wrong.push(format!(
                "{module} is not in docs/ARCHITECTURE.md's layer table"
            ));
            continue;
        };
        for other in used {
            // Macros exported at the crate root (`crate::outln!`) are not modules.
            let Some(&theirs) = layers.get(&other) else {
                assert!(
                    !root().join("src").join(format!("{other}.rs")).exists()
                        && !root().join("src").join(&other).is_dir(),
                    "{other} (used by {module}) is not in docs/ARCHITECTURE.md's layer table"
                );
                continue;
            };
            if theirs > own {
                wrong.push(format!(
                    "{module} (layer {own}) uses {other} (layer {theirs})"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_import_cycles_between_modules() {
    let graph = graph();
    // Depth-first search; a module met again on the current path closes a cycle.
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut cycle = path[start..].to_vec();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = visit(module, &graph, &mut Vec::new(), &mut done) {
            panic!("an import cycle: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn no_source_file_grows_past_800_lines() {
    let src = root().join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let lines = std::fs::read_to_string(&file).unwrap().lines().count();
        let limit = OVERSIZED
            .iter()
            .find(|(name, _)| *name == relative)
            .map_or(MAX_LINES, |(_, limit)| *limit);
        if lines > limit {
            wrong.push(format!("src/{relative}: {lines} lines, at most {limit}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    for (name, _) in OVERSIZED {
        let lines = std::fs::read_to_string(src.join(name))
            .map(|text| text.lines().count())
            .unwrap_or(0);
        assert!(
            lines > MAX_LINES,
            "src/{name} is down to {lines} lines: take it off OVERSIZED"
        );
    }
}

/// Modules that speak the command line's language: only they may name a flag. The demo's cluster
/// starts `initdb` and `postgres` with their own flags.
const SPEAKS_FLAGS: [&str; 4] = ["cli.rs", "main.rs", "commands/", "demo/local_pg/"];

/// No library message names a command-line flag: a pipeline file has none of them, so the library
/// names the remedy and the command layer spells it (`commands/hints.rs`).
#[test]
fn no_library_text_names_a_flag() {
    let src = root().join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if SPEAKS_FLAGS
            .iter()
            .any(|prefix| relative.starts_with(prefix))
            || relative.ends_with("tests.rs")
            || relative.contains("/tests/")
        {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            let flag = line.match_indices("--").any(|(at, _)| {
                line[at + 2..].starts_with(|c: char| c.is_ascii_lowercase())
                    && !line[..at].ends_with(|c: char| c.is_ascii_alphanumeric())
            });
            if flag {
                found.push(format!("src/{relative}:{}: {}", number + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "library text naming a flag:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_parser_sees_grouped_and_plain_uses() {
    let used = uses(
        "use crate::{error::Result, pg};\nuse crate::record::Batch;\nfn f() { crate::outln!(); }\n\
         #[cfg(test)]\nmod tests { use crate::demo::x; }",
    );
    assert_eq!(
        used,
        ["error", "outln", "pg", "record"]
            .map(String::from)
            .into_iter()
            .collect()
    );
}
