//! Engine hardening: operation, call-depth, expression-depth and size limits, no `eval`, no
//! module resolution (so no filesystem access).
//!
//! Every engine storeflow builds comes from [`hardened_engine`]; compile scripts once with it and
//! reuse the AST. With rhai's `sync` feature the engine is `Send + Sync` and can be shared.

use rhai::module_resolvers::DummyModuleResolver;
use rhai::Engine;

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
    fn limits_string_size() {
        let engine = hardened_engine(1_000_000);
        let err = engine
            .eval::<String>(r#"let s = "x"; loop { s += s; }"#)
            .unwrap_err();
        assert!(err.to_string().to_lowercase().contains("length"), "{err}");
    }
}
