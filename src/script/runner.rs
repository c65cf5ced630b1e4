//! [`Runner`]: compiles scripts once and runs scripts and plugins on one shared engine that has
//! the intent, state and helper functions and one function per plugin registered.
//!
//! Every run is all-or-nothing: its intents and state changes are returned only when it
//! succeeds; an error, a spent operation budget or a deadline discards them and names the
//! script's file:line:col.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rhai::{CallFnOptions, Dynamic, Engine, EvalAltResult, Map, NativeCallContext, Scope, AST};
use serde_json::Value as J;

use super::engine::hardened_engine_with_plugins;
use super::report::translate;
use super::run::{self, RunCtx};
use super::{
    helpers, intents, Intent, Origin, Plugins, RunLimits, ScriptError, State, StateChanges,
};
use crate::model::event::Event;
pub use crate::template::EventValues;
use crate::template::Templates;

/// Distinct state keys one run may read (each costs a replay, see `run`).
const MAX_STATE_READS: usize = 32;
/// How deeply plugins may call plugins.
const MAX_PLUGIN_DEPTH: usize = 8;

/// A compiled script and where it came from.
#[derive(Debug, Clone)]
pub struct Script {
    ast: AST,
    origin: Origin,
}

impl Script {
    pub fn origin(&self) -> &Origin {
        &self.origin
    }
}

/// `event` as a plugin's `run(params, event)` sees it: the event's fields plus `order` and
/// `payload`, a private copy.
fn for_plugin(values: &EventValues) -> Dynamic {
    let mut map: Map = values
        .event
        .flatten_clone()
        .try_cast::<Map>()
        .unwrap_or_default();
    map.insert("order".into(), values.order.flatten_clone());
    map.insert("payload".into(), values.payload.flatten_clone());
    map.into()
}

/// Runs scripts and plugins with one shared hardened engine. Send + Sync.
pub struct Runner {
    engine: Engine,
    plugins: Arc<Plugins>,
    max_operations: u64,
    limits: RunLimits,
    /// Every function a script can call (for [`Runner::lint`]).
    known: HashSet<String>,
}

impl Runner {
    /// A runner with the default [`RunLimits`].
    pub fn new(max_operations: u64, plugins: Arc<Plugins>) -> Runner {
        Runner::with_limits(max_operations, RunLimits::default(), plugins)
    }

    pub fn with_limits(max_operations: u64, limits: RunLimits, plugins: Arc<Plugins>) -> Runner {
        let mut engine = hardened_engine_with_plugins(max_operations, plugins.dir());
        engine.on_progress(run::progress);
        engine.on_print(|s| tracing::info!(target: "storeflow::script", "{s}"));
        engine.on_debug(|s, _, pos| tracing::debug!(target: "storeflow::script", %pos, "{s}"));
        intents::register(&mut engine);
        helpers::register(&mut engine, Arc::new(Templates::new()));
        for name in plugins.names() {
            let (p, n) = (plugins.clone(), name.clone());
            engine.register_fn(name.as_str(), move |ctx: NativeCallContext, params: Map| {
                call_plugin(&ctx, &p, &n, params)
            });
        }
        Runner {
            known: super::lint::known_functions(&engine),
            engine,
            plugins,
            max_operations: max_operations.max(1),
            limits,
        }
    }

    pub fn plugins(&self) -> &Plugins {
        &self.plugins
    }

    /// Compiles an inline script or a file's contents; syntax errors carry positions translated
    /// via `origin`.
    pub fn compile(&self, source: &str, origin: Origin) -> Result<Script, ScriptError> {
        match self.engine.compile(source) {
            Ok(mut ast) => {
                ast.set_source(origin.file.display().to_string());
                Ok(Script { ast, origin })
            }
            Err(e) => {
                let (line, column) =
                    origin.translate(e.1.line().unwrap_or(1), e.1.position().unwrap_or(1));
                Err(ScriptError {
                    file: origin.file,
                    line,
                    column,
                    message: format!("Rhai syntax error: {}", e.0),
                })
            }
        }
    }

    /// What can be known wrong about `script` before it runs: unknown functions, intent and
    /// plugin calls with unknown or missing parameters (see `lint`).
    pub fn lint(&self, script: &Script) -> Vec<ScriptError> {
        lint_ast(&script.ast, &script.origin, &self.known, &self.plugins)
    }

    /// [`Runner::lint`] for every plugin's own file.
    pub fn lint_plugins(&self) -> Vec<ScriptError> {
        self.plugins
            .all()
            .flat_map(|p| lint_ast(&p.ast, &Origin::file(&p.file), &self.known, &self.plugins))
            .collect()
    }

    /// Runs a script for an event: returns its intents and (on success only) its state changes.
    pub fn run_script(
        &self,
        script: &Script,
        event: &Event,
        state: &dyn State,
    ) -> Result<(Vec<Intent>, StateChanges), ScriptError> {
        self.run_script_values(script, &EventValues::new(event), state)
    }

    /// [`Runner::run_script`] with the event's values converted once for all its scripts.
    pub fn run_script_values(
        &self,
        script: &Script,
        values: &EventValues,
        state: &dyn State,
    ) -> Result<(Vec<Intent>, StateChanges), ScriptError> {
        let out = self.replay(values, state, None, |engine| {
            engine.eval_ast_with_scope::<Dynamic>(&mut values.scope(), &script.ast)
        });
        out.map(|(_, intents, changes)| (intents, changes))
            .map_err(|e| translate(&e, &script.origin))
    }

    /// Runs plugin `name`'s `run(params, event)`; same contract. `params` are the rendered
    /// parameters; manifest defaults are filled in and the manifest checks run first.
    pub fn run_plugin(
        &self,
        name: &str,
        params: &J,
        event: &Event,
        state: &dyn State,
    ) -> Result<(Vec<Intent>, StateChanges), ScriptError> {
        self.run_plugin_values(name, params, &EventValues::new(event), state)
    }

    /// [`Runner::run_plugin`] with the event's values already converted (shared with the
    /// event's `if` expressions and scripts).
    pub fn run_plugin_values(
        &self,
        name: &str,
        params: &J,
        values: &EventValues,
        state: &dyn State,
    ) -> Result<(Vec<Intent>, StateChanges), ScriptError> {
        let Some(plugin) = self.plugins.get(name) else {
            let msg = format!("unknown plugin `{name}`");
            return Err(ScriptError::at(&Origin::file("plugins"), msg));
        };
        let origin = Origin::file(&plugin.file);
        self.plugins
            .validate(name, params)
            .map_err(|p| ScriptError::at(&origin, format!("{name}: {}", p.join("; "))))?;
        let params = rhai::serde::to_dynamic(self.plugins.with_defaults(name, params))
            .map_err(|e| ScriptError::at(&origin, e.to_string()))?;
        let out = self.replay(values, state, None, |engine| {
            run::with(|c| c.depth = 1)?;
            let event = for_plugin(values);
            let opts = CallFnOptions::new().eval_ast(true);
            engine.call_fn_with_options::<Dynamic>(
                opts,
                &mut Scope::new(),
                &plugin.ast,
                "run",
                (params.clone(), event),
            )
        });
        out.map(|(_, intents, changes)| (intents, changes))
            .map_err(|e| translate(&e, &origin))
    }

    /// Sellix dynamic products: the script's return value as text (the HTTP response body).
    /// Strings are returned as they are, maps and arrays as JSON, `()` as empty. The script has
    /// no state (reads are `()`) and its intents and writes are dropped: there is no journal
    /// transaction to put them in.
    pub fn dynamic_product(
        &self,
        script: &Script,
        event: &Event,
        deadline: Duration,
    ) -> Result<String, ScriptError> {
        self.dynamic_product_values(script, &EventValues::new(event), deadline)
    }

    /// [`Runner::dynamic_product`] with the event's values already converted (shared with the
    /// rules' `if` expressions).
    pub fn dynamic_product_values(
        &self,
        script: &Script,
        values: &EventValues,
        deadline: Duration,
    ) -> Result<String, ScriptError> {
        let out = self.replay(values, &super::NoState, Some(deadline), |engine| {
            engine.eval_ast_with_scope::<Dynamic>(&mut values.scope(), &script.ast)
        });
        let value = out.map_err(|e| translate(&e, &script.origin))?.0;
        body_text(value).map_err(|m| ScriptError::at(&script.origin, m))
    }

    /// Runs `f` in a fresh run context, replaying it whenever it needed a state key it had not
    /// fetched yet (see `run`); `now()` and the random seed are the same in every attempt.
    /// `deadline` overrides `scripts.timeout` for the whole run, replays included.
    fn replay(
        &self,
        values: &EventValues,
        state: &dyn State,
        deadline: Option<Duration>,
        f: impl Fn(&Engine) -> Result<Dynamic, Box<EvalAltResult>>,
    ) -> Result<(Dynamic, Vec<Intent>, StateChanges), Box<EvalAltResult>> {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let (now, seed) = (since.as_secs() as i64, since.as_nanos() as u64);
        let mut fetched = BTreeMap::new();
        let d = deadline.unwrap_or(self.limits.timeout);
        let deadline = Some((Instant::now() + d, d));
        for _ in 0..=MAX_STATE_READS {
            let ctx = RunCtx::new(now, seed, fetched, values.clone(), self.limits);
            let guard = run::enter(ctx, self.max_operations, deadline)?;
            let result = f(&self.engine);
            let ctx = guard.finish().ok_or("script run context lost")?;
            if let Some(key) = ctx.wanted {
                fetched = ctx.fetched;
                let value = state.get(&key);
                fetched.insert(key, value);
                continue;
            }
            let value = result?;
            return Ok((value, ctx.intents, StateChanges(ctx.changes)));
        }
        Err(format!("a run may read at most {MAX_STATE_READS} state keys").into())
    }
}

/// A plugin called from a script: manifest checks and `validate`, then its `run` on the same
/// engine and in the same run (its intents join the caller's).
fn call_plugin(
    ctx: &NativeCallContext,
    plugins: &Plugins,
    name: &str,
    params: Map,
) -> Result<(), Box<EvalAltResult>> {
    let plugin = plugins
        .get(name)
        .ok_or_else(|| format!("unknown plugin `{name}`"))?;
    let json = intents::to_json(&params.into()).map_err(|e| format!("{name}(): {e}"))?;
    plugins
        .validate(name, &json)
        .map_err(|p| format!("{name}(): {}", p.join("; ")))?;
    let params = rhai::serde::to_dynamic(plugins.with_defaults(name, &json))?;
    let event = run::with(|c| {
        c.depth += 1;
        (c.depth <= MAX_PLUGIN_DEPTH).then(|| for_plugin(&c.values))
    })?
    .ok_or_else(|| format!("{name}(): plugins nested deeper than {MAX_PLUGIN_DEPTH}"))?;
    let opts = CallFnOptions::new().eval_ast(true);
    let out = ctx.engine().call_fn_with_options::<Dynamic>(
        opts,
        &mut Scope::new(),
        &plugin.ast,
        "run",
        (params, event),
    );
    run::with(|c| c.depth -= 1)?;
    out.map(|_| ()).map_err(|e| {
        let file = plugin.file.display().to_string();
        EvalAltResult::ErrorInFunctionCall(name.into(), file, e, ctx.call_position()).into()
    })
}

fn lint_ast(
    ast: &AST,
    origin: &Origin,
    known: &HashSet<String>,
    plugins: &Plugins,
) -> Vec<ScriptError> {
    super::lint::lint(ast, known, plugins)
        .into_iter()
        .map(|(pos, message)| {
            let (line, column) =
                origin.translate(pos.line().unwrap_or(1), pos.position().unwrap_or(1));
            ScriptError {
                file: origin.file.clone(),
                line,
                column,
                message,
            }
        })
        .collect()
}

fn body_text(value: Dynamic) -> Result<String, String> {
    if value.is_unit() {
        return Ok(String::new());
    }
    if value.is_string() {
        return Ok(value.to_string());
    }
    if value.is_map() || value.is_array() {
        let json = intents::to_json(&value)?;
        return serde_json::to_string(&json).map_err(|e| e.to_string());
    }
    Ok(value.to_string())
}
