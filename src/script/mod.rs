//! Rhai scripting: the hardened engine ([`engine::hardened_engine`]), scripts and plugins.
//!
//! Rule `if` expressions, scripts and plugins all run on engines built by the one hardening
//! function, so the limits that keep a shop owner's script from hanging or exhausting the daemon
//! are set once. Scripts never do I/O: they call *intent* functions (`email`, `slack`, `http`,
//! `flag`, `log`, plugin actions) that record [`Intent`]s, and they read and write persistent
//! state through [`State`] / [`StateChanges`]. The pipeline turns intents into jobs and applies
//! state changes in the same transaction as the event's trace, so a run's effects happen once.
//!
//! - [`engine`]: the hardening function and the plugins-only module resolver.
//! - [`runner`]: [`Runner`] compiles and runs scripts and plugins; [`Script`], [`EventValues`].
//! - [`plugins`]: [`Plugins`] loads `plugins_dir/*.rhai` and their manifests.
//! - `run`: the per-run context (intents, state, budget) native functions write into.
//! - `intents`, `helpers`: the functions scripts call.
//! - `manifest`: plugin manifests; `lint`: what `check` can know before a script runs;
//!   `report`: run errors as file:line:column.

pub mod engine;
mod helpers;
mod intents;
mod lint;
mod manifest;
pub mod plugins;
mod report;
mod run;
pub mod runner;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use engine::hardened_engine;
pub use plugins::{Manifest, ParamSpec, ParamType, Plugins};
pub use runner::{EventValues, Runner, Script};

/// What one script or plugin run may spend besides operations (`scripts:` in storeflow.yaml).
///
/// The pipeline runs events one after another, so a slow script delays every later event: the
/// wall-clock `timeout` bounds that. The state limits bound what one run can write into the
/// journal's `kv` table (and hold in memory until it commits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// Wall-clock time per run (replays included), and per plugin `validate` call at load.
    pub timeout: Duration,
    /// Distinct state keys one run may write.
    pub max_state_keys: usize,
    /// Bytes one run may write into state (keys plus JSON values, each key counted once).
    pub max_state_bytes: usize,
    /// Largest JSON value one `state_set` may store.
    pub max_value_bytes: usize,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits::from(&crate::config::ScriptsConfig::default())
    }
}

/// The run limits `scripts:` in storeflow.yaml gives (a zero timeout is read as 1 ms).
impl From<&crate::config::ScriptsConfig> for RunLimits {
    fn from(c: &crate::config::ScriptsConfig) -> Self {
        let bytes = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        RunLimits {
            timeout: c.timeout.max(Duration::from_millis(1)),
            max_state_keys: c.max_state_keys,
            max_state_bytes: bytes(c.max_state_bytes),
            max_value_bytes: bytes(c.max_value_bytes),
        }
    }
}

/// An action a script asked for; becomes a job. kind ∈ email | slack | http | flag | log.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Intent {
    pub kind: String,
    pub params: serde_json::Value,
}

/// Read access to persisted script state (the journal's `kv` table); the pipeline implements it.
pub trait State {
    fn get(&self, key: &str) -> Option<serde_json::Value>;
}

/// A [`State`] with nothing in it: for `simulate`, rule tests and dynamic products.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoState;

impl State for NoState {
    fn get(&self, _key: &str) -> Option<serde_json::Value> {
        None
    }
}

impl State for BTreeMap<String, serde_json::Value> {
    fn get(&self, key: &str) -> Option<serde_json::Value> {
        BTreeMap::get(self, key).cloned()
    }
}

/// State writes of one successful run, applied by the pipeline in the same transaction as the
/// event's trace and jobs. Later runs in the same batch must see them (the pipeline layers them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateChanges(pub BTreeMap<String, serde_json::Value>);

/// Where a script came from, to translate Rhai positions into file:line:col.
///
/// `line`/`column` are where the script's first character is in `file` (1-based): `(1, 1)` for a
/// `.rhai` file; for an inline YAML script, the first content character. Rhai position
/// `(l, c)` maps to `(line + l - 1, column + c - 1)`, which is exact for files, single-line
/// scalars and block scalars (`script: |`, whose lines share one indentation).
#[derive(Debug, Clone)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl Origin {
    /// A whole file: positions are Rhai's own.
    pub fn file(file: impl Into<PathBuf>) -> Origin {
        Origin {
            file: file.into(),
            line: 1,
            column: 1,
        }
    }

    /// The file position of Rhai position `(line, column)` (0 = unknown, read as 1).
    pub fn translate(&self, line: usize, column: usize) -> (usize, usize) {
        let (l, c) = (line.max(1), column.max(1));
        (self.line.max(1) + l - 1, self.column.max(1) + c - 1)
    }
}

/// A script or plugin that failed to compile, validate or run: where, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", file.display())]
pub struct ScriptError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ScriptError {
    /// An error about `origin` as a whole (no better position known).
    pub fn at(origin: &Origin, message: impl Into<String>) -> ScriptError {
        ScriptError {
            file: origin.file.clone(),
            line: origin.line,
            column: origin.column,
            message: message.into(),
        }
    }

    /// Whether the run was stopped by its deadline `d` (rather than failing by itself).
    pub fn timed_out_after(&self, d: Duration) -> bool {
        self.message == run::timed_out(d)
    }
}

#[cfg(test)]
mod limit_tests;
#[cfg(test)]
mod module_tests;
#[cfg(test)]
mod plugin_tests;
#[cfg(test)]
mod sandbox_tests;
#[cfg(test)]
mod script_tests;
