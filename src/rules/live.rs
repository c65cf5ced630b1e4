//! The rule set a running daemon uses, swapped atomically on reload.
//!
//! A reload validates first: a broken edit keeps the previous rules running and is reported in
//! the log and on `/healthz`. At start-up with broken rules there is nothing to keep, so there
//! are no rules until a good edit arrives: the daemon still journals webhooks, and the pipeline
//! holds them (unprocessed) instead of running them past an empty rule set.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use serde::Serialize;

use super::{load_dir, LoadOptions, RuleSet};
use crate::model::event::Timestamp;

/// What `/healthz` says about rules.
#[derive(Debug, Clone, Serialize)]
pub struct RulesStatus {
    /// Rules in the running set (0 while none could be loaded).
    pub loaded: usize,
    pub last_reload_ok: bool,
    pub last_reload_at: Timestamp,
    /// The errors of the last failed reload, one line each (`file:line:col: error: ...`).
    pub errors: Vec<String>,
    pub warnings: usize,
    /// The warnings of the last reload, one line each (for `GET /api/rules`; `/healthz` shows
    /// only the count).
    #[serde(skip)]
    pub warning_lines: Vec<String>,
    /// Reloads since start-up (file changes and SIGHUP; the initial load does not count).
    pub reloads: u64,
}

pub struct LiveRules {
    dir: PathBuf,
    options: LoadOptions,
    current: RwLock<Option<Arc<RuleSet>>>,
    status: RwLock<RulesStatus>,
}

impl LiveRules {
    /// Loads `dir` for the first time.
    pub fn load(dir: PathBuf, options: LoadOptions) -> LiveRules {
        let live = LiveRules {
            dir,
            options,
            current: RwLock::new(None),
            status: RwLock::new(RulesStatus {
                loaded: 0,
                last_reload_ok: false,
                last_reload_at: Timestamp::now(),
                errors: Vec::new(),
                warnings: 0,
                warning_lines: Vec::new(),
                reloads: 0,
            }),
        };
        live.reload();
        live.status
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .reloads = 0;
        live
    }

    /// The running rule set; `None` while no valid set has been loaded.
    pub fn current(&self) -> Option<Arc<RuleSet>> {
        self.current
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn status(&self) -> RulesStatus {
        self.status
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Loads the directory again; swaps the rule set only when it has no errors. Returns
    /// whether the new set was taken.
    pub fn reload(&self) -> bool {
        let loaded = load_dir(&self.dir, &self.options);
        for d in loaded.warnings() {
            tracing::warn!("{d}");
        }
        let errors: Vec<String> = loaded.errors().map(|d| d.to_string()).collect();
        let warnings = loaded.warnings().count();
        let mut status = self.status.write().unwrap_or_else(|p| p.into_inner());
        status.last_reload_at = Timestamp::now();
        status.reloads += 1;
        status.warnings = warnings;
        status.warning_lines = loaded.warnings().map(|d| d.to_string()).collect();
        match loaded.rules.filter(|_| errors.is_empty()) {
            Some(rules) => {
                tracing::info!(rules = rules.len(), dir = %self.dir.display(), "rules loaded");
                status.loaded = rules.len();
                status.last_reload_ok = true;
                status.errors.clear();
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(rules));
                true
            }
            None => {
                for e in &errors {
                    tracing::error!("{e}");
                }
                let kept = if status.loaded > 0 {
                    "keeping the previous rules"
                } else {
                    "no rules are running; events wait in the journal"
                };
                tracing::error!(errors = errors.len(), "rules not reloaded: {kept}");
                status.last_reload_ok = false;
                status.errors = errors;
                false
            }
        }
    }
}
