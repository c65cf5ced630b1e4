//! Engine hardening: operation, call-depth, expression-depth and size limits, no `eval`, no
//! filesystem access; `import` resolves only plugin modules inside `plugins_dir`
//! ([`hardened_engine_with_plugins`]), and nothing at all for rule `if` expressions.
//!
//! Every engine storeflow builds comes from [`hardened_engine`]; compile scripts once with it and
//! reuse the AST. With rhai's `sync` feature the engine is `Send + Sync` and can be shared.

use std::path::{Path, PathBuf};

use rhai::module_resolvers::{DummyModuleResolver, FileModuleResolver};
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position};

/// Deepest function-call nesting a script may reach.
const MAX_CALL_LEVELS: usize = 32;
/// Deepest expression nesting at global level / inside functions.
const MAX_EXPR_DEPTH: usize = 64;
const MAX_FN_EXPR_DEPTH: usize = 32;
/// Largest string, array and map a script may build (bytes / elements / entries).
const MAX_STRING_SIZE: usize = 64 * 1024;
const MAX_ARRAY_SIZE: usize = 10_000;
const MAX_MAP_SIZE: usize = 10_000;
const MAX_VARIABLES: usize = 256;
const MAX_MODULES: usize = 0;
/// Modules one script run may import (plugin engines only).
const MAX_PLUGIN_MODULES: usize = 16;

/// An engine for untrusted shop-owner scripts.
///
/// `max_operations` comes from `scripts.max_operations` in storeflow.yaml; a script that exceeds
/// it stops with an error instead of looping forever. `eval` is disabled (it would bypass the
/// compile-once rule) and `import` resolves nothing: plugins are loaded by storeflow itself.
pub fn hardened_engine(max_operations: u64) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(max_operations.max(1))
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(MAX_EXPR_DEPTH, MAX_FN_EXPR_DEPTH)
        .set_max_string_size(MAX_STRING_SIZE)
        .set_max_array_size(MAX_ARRAY_SIZE)
        .set_max_map_size(MAX_MAP_SIZE)
        .set_max_variables(MAX_VARIABLES)
        .set_max_modules(MAX_MODULES)
        .set_module_resolver(DummyModuleResolver::new());
    engine.disable_symbol("eval");
    engine
}

/// [`hardened_engine`] whose `import "name"` loads `plugins_dir/name.rhai` and nothing else:
/// absolute paths, `..` and anything but letters, digits, `_`, `-` and `/` are refused, and the
/// importing script's own location is ignored (so a rule file cannot import its neighbours).
pub fn hardened_engine_with_plugins(max_operations: u64, plugins_dir: Option<&Path>) -> Engine {
    let mut engine = hardened_engine(max_operations);
    if let Some(dir) = plugins_dir {
        engine
            .set_max_modules(MAX_PLUGIN_MODULES)
            .set_module_resolver(PluginModules::new(dir));
    }
    engine
}

/// The folder of `plugins_dir` that holds helper libraries: importable, never actions.
pub const LIBRARY_DIR: &str = "lib";

/// Resolves imports to `.rhai` files directly under (or below) the plugins directory.
struct PluginModules {
    dir: PathBuf,
    files: FileModuleResolver,
}

impl PluginModules {
    fn new(dir: &Path) -> Self {
        let mut files = FileModuleResolver::new_with_path(dir);
        // Plugins reload with the rules; a cached module would outlive its file.
        files.enable_cache(false);
        PluginModules {
            dir: dir.to_path_buf(),
            files,
        }
    }
}

/// A plugin module name: `common`, `lib/util`; never absolute, never `..`.
fn is_module_name(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|part| {
            !part.is_empty()
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

impl ModuleResolver for PluginModules {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<std::sync::Arc<Module>, Box<EvalAltResult>> {
        if !is_module_name(path) {
            let msg = format!(
                "import \"{path}\" refused: scripts may only import plugin modules by name \
                 (like \"common\"), which load from {}",
                self.dir.display()
            );
            // Not `ErrorModuleNotFound`: Rhai replaces that with a bare "Module not found".
            return Err(EvalAltResult::ErrorRuntime(msg.into(), pos).into());
        }
        // Helper libraries live in `lib/` (not actions): `import "common"` finds
        // `lib/common.rhai` when there is no plugin `common.rhai`.
        let own = self.dir.join(format!("{path}.rhai"));
        let lib = format!("{LIBRARY_DIR}/{path}");
        if !own.exists() && self.dir.join(format!("{lib}.rhai")).exists() {
            return self.files.resolve(engine, None, &lib, pos);
        }
        self.files.resolve(engine, None, path, pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_plain_expressions() {
        let engine = hardened_engine(1_000);
        assert_eq!(engine.eval_expression::<i64>("1 + 2").unwrap(), 3);
    }

    #[test]
    fn stops_runaway_loops() {
        let engine = hardened_engine(1_000);
        let err = engine.eval::<()>("loop { }").unwrap_err();
        assert!(err.to_string().contains("operations"), "{err}");
    }

    #[test]
    fn eval_is_disabled() {
        let engine = hardened_engine(1_000);
        assert!(engine.compile(r#"eval("1")"#).is_err());
    }

    #[test]
    fn imports_resolve_nothing() {
        let engine = hardened_engine(1_000);
        assert!(engine.eval::<()>(r#"import "/etc/passwd" as p;"#).is_err());
    }

    #[test]
    fn plugin_imports_stay_inside_plugins_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("common.rhai"), "fn twice(x) { x * 2 }").unwrap();
        let engine = hardened_engine_with_plugins(10_000, Some(dir.path()));
        let v = engine
            .eval::<i64>(r#"import "common" as c; c::twice(21)"#)
            .unwrap();
        assert_eq!(v, 42);
        for bad in ["/etc/passwd", "../common", "a/../../x", "c:\\x"] {
            let err = engine
                .eval::<()>(&format!("import {bad:?} as p;"))
                .unwrap_err();
            assert!(err.to_string().contains("refused"), "{bad}: {err}");
        }
    }

    #[test]
    fn limits_string_size() {
        let engine = hardened_engine(1_000_000);
        let err = engine
            .eval::<String>(r#"let s = "x"; loop { s += s; }"#)
            .unwrap_err();
        assert!(err.to_string().to_lowercase().contains("length"), "{err}");
    }
}
