//! Plugins: `plugins_dir/<name>.rhai` defining `fn run(params, event)` and optionally
//! `fn validate(params)`, with an optional `<name>.yaml` manifest describing the parameters.
//!
//! A plugin is an action `<name>` in rules and a function `<name>(#{...})` in scripts; its `run`
//! emits intents like any script. Loading reports every problem and keeps the plugins that
//! loaded; [`Plugins::validate`] checks a rule's static parameters so `check` reports them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rhai::{Dynamic, Engine, Scope, AST};
use serde_json::Value as J;

use super::engine::hardened_engine_with_plugins;
use super::manifest::{load_manifest, manifest_problems};
pub use super::manifest::{Manifest, ParamSpec, ParamType};
use super::{helpers, intents, run, Origin, RunLimits, ScriptError};
use crate::model::actions::ActionKind;

/// Whether `name` is taken: an intent (a row of the action table), a helper, or `script`.
fn reserved(name: &str) -> bool {
    intents::is_intent(name)
        || helpers::NAMES.contains(&name)
        || ActionKind::parse(name) == ActionKind::Script
}

/// One loaded plugin.
pub(crate) struct Plugin {
    pub file: PathBuf,
    pub ast: AST,
    pub manifest: Option<Manifest>,
    has_validate: bool,
}

/// Every plugin of `plugins_dir`, compiled.
pub struct Plugins {
    dir: Option<PathBuf>,
    /// Runs `validate`: no intents, no state.
    engine: Engine,
    max_operations: u64,
    /// Wall-clock time one `validate` call may take (`scripts.timeout`).
    timeout: Duration,
    items: BTreeMap<String, Plugin>,
}

impl Plugins {
    /// No plugins.
    pub fn empty() -> Plugins {
        Plugins {
            dir: None,
            engine: hardened_engine_with_plugins(10_000, None),
            max_operations: 10_000,
            timeout: RunLimits::default().timeout,
            items: BTreeMap::new(),
        }
    }

    /// Loads every plugins_dir/*.rhai (+ optional .yaml manifest); problems are returned, not
    /// fatal. A missing directory is no plugins.
    pub fn load_dir(dir: &Path, max_operations: u64) -> (Plugins, Vec<ScriptError>) {
        Plugins::load_dir_with(dir, max_operations, RunLimits::default().timeout)
    }

    /// [`Plugins::load_dir`] with `timeout` for each `validate` call.
    pub fn load_dir_with(
        dir: &Path,
        max_operations: u64,
        timeout: Duration,
    ) -> (Plugins, Vec<ScriptError>) {
        let mut engine = hardened_engine_with_plugins(max_operations, Some(dir));
        engine.on_progress(run::progress);
        let mut plugins = Plugins {
            dir: Some(dir.to_path_buf()),
            engine,
            max_operations,
            timeout,
            items: BTreeMap::new(),
        };
        let mut errors = Vec::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return (plugins, errors);
        };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for file in &files {
            let ext = file.extension().and_then(|e| e.to_str());
            let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            match ext {
                Some("rhai") => match plugins.load_one(stem, file) {
                    Ok(p) => {
                        plugins.items.insert(stem.to_string(), p);
                    }
                    Err(e) => errors.push(e),
                },
                Some("yaml") if !file.with_extension("rhai").exists() => {
                    errors.push(ScriptError::at(
                        &Origin::file(file),
                        format!("manifest without a plugin: no {stem}.rhai"),
                    ))
                }
                _ => {}
            }
        }
        errors.extend(plugins.check_libraries(&dir.join(super::engine::LIBRARY_DIR)));
        (plugins, errors)
    }

    /// Compiles every helper library in `lib` so syntax errors show at load, not at first use.
    fn check_libraries(&self, lib: &Path) -> Vec<ScriptError> {
        let Ok(entries) = std::fs::read_dir(lib) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "rhai"))
            .filter_map(|f| self.compile_file(f).err())
            .collect()
    }

    fn compile_file(&self, file: &Path) -> Result<AST, ScriptError> {
        let origin = Origin::file(file);
        let source = std::fs::read_to_string(file)
            .map_err(|e| ScriptError::at(&origin, format!("cannot read plugin: {e}")))?;
        let mut ast = self.engine.compile(&source).map_err(|e| {
            let (line, column) =
                origin.translate(e.1.line().unwrap_or(1), e.1.position().unwrap_or(1));
            ScriptError {
                file: file.to_path_buf(),
                line,
                column,
                message: format!("Rhai syntax error: {}", e.0),
            }
        })?;
        ast.set_source(file.display().to_string());
        Ok(ast)
    }

    fn load_one(&self, name: &str, file: &Path) -> Result<Plugin, ScriptError> {
        let origin = Origin::file(file);
        check_name(name).map_err(|m| ScriptError::at(&origin, m))?;
        let ast = imports_and_functions(&self.compile_file(file)?);
        let has = |f: &str, n: usize| {
            ast.iter_functions()
                .any(|d| d.name == f && d.params.len() == n)
        };
        if !has("run", 2) {
            let msg = format!(
                "a plugin must define `fn run(params, event)`; a helper library without one \
                 goes into {}/{name}.rhai (still `import \"{name}\"`), where it is no action",
                super::engine::LIBRARY_DIR
            );
            return Err(ScriptError::at(&origin, msg));
        }
        let has_validate = has("validate", 1);
        let manifest = load_manifest(&file.with_extension("yaml"))?;
        Ok(Plugin {
            file: file.to_path_buf(),
            ast,
            manifest,
            has_validate,
        })
    }

    /// The plugin names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.items.keys().cloned().collect()
    }

    /// The directory plugins (and their imports) load from.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    pub fn manifest(&self, name: &str) -> Option<&Manifest> {
        self.items.get(name)?.manifest.as_ref()
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Plugin> {
        self.items.get(name)
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &Plugin> {
        self.items.values()
    }

    /// `params` with the manifest's defaults filled in for absent (or `()`) parameters.
    pub fn with_defaults(&self, name: &str, params: &J) -> J {
        let mut params = params.clone();
        if let (Some(m), J::Object(map)) = (self.manifest(name), &mut params) {
            for p in &m.params {
                if let Some(d) = &p.default {
                    if map.get(&p.name).is_none_or(J::is_null) {
                        map.insert(p.name.clone(), d.clone());
                    }
                }
            }
        }
        params
    }

    /// Manifest checks (required/types/unknown params) + the plugin's own `validate(params)` if
    /// defined; Err(messages).
    pub fn validate(&self, name: &str, params: &J) -> Result<(), Vec<String>> {
        let Some(plugin) = self.items.get(name) else {
            return Err(vec![format!(
                "unknown plugin `{name}` (plugins: {})",
                self.names().join(", ")
            )]);
        };
        let params = self.with_defaults(name, params);
        let mut problems = match &plugin.manifest {
            Some(m) => manifest_problems(m, &params),
            None if params.is_object() => Vec::new(),
            None => vec![format!("parameters must be a map, got {params}")],
        };
        if problems.is_empty() && plugin.has_validate {
            problems.extend(self.own_validate(plugin, &params));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Calls `fn validate(params)`: `()`, `true` or an empty string/array is fine; a string, an
    /// array of strings or a thrown error are problems.
    fn own_validate(&self, plugin: &Plugin, params: &J) -> Vec<String> {
        let args = match rhai::serde::to_dynamic(params) {
            Ok(a) => a,
            Err(e) => return vec![e.to_string()],
        };
        let out = {
            let _budget = run::budget_scope(self.max_operations, self.timeout);
            self.engine
                .call_fn::<Dynamic>(&mut Scope::new(), &plugin.ast, "validate", (args,))
        };
        match out {
            Err(e) => vec![format!("validate: {}", super::report::describe(&e))],
            Ok(v) if v.is_unit() || v.as_bool() == Ok(true) => Vec::new(),
            Ok(v) if v.is_array() => v
                .into_array()
                .unwrap_or_default()
                .iter()
                .map(|p| p.to_string())
                .collect(),
            Ok(v) if v.is_string() && v.to_string().is_empty() => Vec::new(),
            Ok(v) => vec![v.to_string()],
        }
    }
}

/// The plugin's functions and its top-level `import`s, nothing else. Plugins are called with
/// the AST evaluated first, so their functions see the modules imported at the top of the file
/// (`import "common" as c;`), while no other top-level statement ever runs.
fn imports_and_functions(ast: &AST) -> AST {
    let imports: Vec<rhai::Stmt> = ast
        .statements()
        .iter()
        .filter(|s| matches!(s, rhai::Stmt::Import(..)))
        .cloned()
        .collect();
    let mut out = AST::new(imports, ast.shared_lib().clone());
    if let Some(source) = ast.source() {
        out.set_source(source);
    }
    out
}

fn check_name(name: &str) -> Result<(), String> {
    let ident = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ident {
        return Err(format!(
            "plugin name `{name}` must be lowercase letters, digits and `_`"
        ));
    }
    if reserved(name) {
        return Err(format!(
            "plugin name `{name}` is taken by a built-in function"
        ));
    }
    Ok(())
}
