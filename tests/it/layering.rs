//! The layering rule of CONTRIBUTING.md, checked on the source: a module uses only the layers
//! below it (and its siblings on the same layer never use each other). A `use` that runs back up
//! fails this test with the file, line and the two layers.

use std::path::{Path, PathBuf};

/// From the bottom up; modules on one line form one layer.
const LAYERS: &[&[&str]] = &[
    &["model", "config", "telemetry"],
    &["template"],
    &["journal", "sources", "script"],
    &["rules"],
    &["plan"],
    &["actions"],
    &["worker"],
    &["server"],
    &["app"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to (`src/rules/load.rs` → `rules`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Every `crate::<module>` the text names, with its byte offset: in paths, in `use` lines and
/// in `use crate::{a::b, c}` groups (which rustfmt may spread over several lines).
fn named_modules(text: &str) -> Vec<(usize, String)> {
    let needle = "crate::";
    let mut out = Vec::new();
    for (at, _) in text.match_indices(needle) {
        let start = at + needle.len();
        let rest = &text[start..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphanumeric() || c == '_') => {
                        let name = identifier(&group[i..]);
                        out.push((start + 1 + i, name));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = identifier(rest);
            if !name.is_empty() {
                out.push((at, name));
            }
        }
    }
    out
}

fn identifier(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The text with `//` comments blanked (same length, so offsets still map to lines).
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(at) => format!("{}{}", &l[..at], " ".repeat(l.len() - at)),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn no_module_uses_a_layer_above_it_or_a_sibling() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let from = module_of(&src, file);
        let Some(from_layer) = layer_of(&from) else {
            continue; // lib.rs, main.rs: the crate root wires everything
        };
        let text = without_comments(&std::fs::read_to_string(file).unwrap());
        for (at, to) in named_modules(&text) {
            let Some(to_layer) = layer_of(&to) else {
                continue;
            };
            let upward = to_layer > from_layer;
            let sideways = to_layer == from_layer && to != from && from_layer > 0;
            if upward || sideways {
                let line = text[..at].matches('\n').count();
                let code = text.lines().nth(line).unwrap_or_default().trim();
                wrong.push(format!(
                    "{}:{}: {from} uses {to}: {code}",
                    file.display(),
                    line + 1
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layering:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let unplaced: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';'))
        .filter(|m| layer_of(m).is_none())
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules without a layer in tests/it/layering.rs: {unplaced:?}"
    );
}

#[test]
fn the_checker_sees_an_upward_use() {
    let names = |t: &str| -> Vec<String> { named_modules(t).into_iter().map(|(_, n)| n).collect() };
    assert_eq!(names("use crate::rules::live::LiveRules;"), ["rules"]);
    assert_eq!(
        names("use crate::{\n    journal::{Reader, Store},\n    rules,\n};"),
        ["journal", "rules"]
    );
    assert_eq!(names("let x = crate::plan::plan(e);"), ["plan"]);
    assert!(layer_of("rules") > layer_of("script"));
}
