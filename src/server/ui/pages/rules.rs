//! `/ui/rules` — the rule files as they are on disk now: their rules, every error and warning
//! (file:line:column, hint), the running set's reload status, and the rule tests' results
//! (run here as `storeflow test` runs them: no side effects).

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::value::{Serde, Value};
use serde::Serialize;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

use super::super::auth::{self, Session};
use super::super::{either, view, Console, Early};
use crate::plan::ruletest::{self, outcome};
use crate::rules::{self, Severity};

pub fn route(
    c: Arc<Console>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let c2 = c.clone();
    warp::path("rules")
        .and(warp::path::end())
        .and(warp::get())
        .and(auth::session(c))
        .then(move |s: Session| {
            let c = c2.clone();
            async move { either(page(c, &s).await) }
        })
}

#[derive(Serialize, Default)]
struct OnDisk {
    errors: Vec<String>,
    warnings: Vec<String>,
    files: Vec<FileView>,
    tests: Vec<TestView>,
    test_error: Option<String>,
}

#[derive(Serialize)]
struct FileView {
    file: String,
    rules: Vec<RuleView>,
}

#[derive(Serialize)]
struct RuleView {
    name: String,
    description: String,
    on: Vec<String>,
    enabled: bool,
    last_fired: Option<Fired>,
}

#[derive(Serialize)]
struct Fired {
    event_id: String,
    received_at: String,
}

#[derive(Serialize)]
struct TestView {
    file: String,
    name: String,
    failures: Vec<String>,
}

async fn page(c: Arc<Console>, s: &Session) -> Result<warp::reply::Response, Early> {
    let loader = c.clone();
    let disk = tokio::task::spawn_blocking(move || on_disk(&loader))
        .await
        .unwrap_or_else(|e| OnDisk {
            errors: vec![format!("loading the rules failed: {e}")],
            ..OnDisk::default()
        });
    let status = c.rules.status();
    let passed = disk.tests.iter().filter(|t| t.failures.is_empty()).count();
    let ctx = minijinja::context! {
        dir => c.config.rules_dir.display().to_string(),
        status => minijinja::context! {
            loaded => status.loaded,
            last_reload_ok => status.last_reload_ok,
            last_reload_at => view::ts(status.last_reload_at),
        },
        passed => passed,
        failed => disk.tests.len() - passed,
        ..Value::from(Serde(&disk))
    };
    Ok(view::page(
        &c,
        Some(s),
        StatusCode::OK,
        ("rules.html", "rules"),
        ctx,
    ))
}

/// Loads the rules directory and runs its tests (blocking: files and scripts).
fn on_disk(c: &Console) -> OnDisk {
    let dir = &c.config.rules_dir;
    let loaded = rules::load_dir(dir, &c.load_options);
    let shown = |sev| {
        loaded
            .diagnostics
            .iter()
            .filter(|d| d.severity == sev)
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
    };
    let mut disk = OnDisk {
        errors: shown(Severity::Error),
        warnings: shown(Severity::Warning),
        ..OnDisk::default()
    };
    let Some(set) = &loaded.rules else {
        return disk;
    };
    let names: Vec<String> = set.rules().iter().map(|r| r.name.clone()).collect();
    let fired = c
        .reader
        .read_blocking(|store| store.last_fired(&names))
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "console: cannot read when rules last fired");
            Vec::new()
        });
    let mut files: BTreeMap<String, Vec<RuleView>> = BTreeMap::new();
    for r in set.rules() {
        let last_fired = fired.iter().find(|f| f.rule == r.name).map(|f| Fired {
            event_id: f.event_id.clone(),
            received_at: view::ts(f.received_at),
        });
        let file = r
            .file
            .strip_prefix(dir)
            .unwrap_or(&r.file)
            .display()
            .to_string();
        files.entry(file).or_default().push(RuleView {
            name: r.name.clone(),
            description: r.description.clone(),
            on: r.on.clone(),
            enabled: r.enabled,
            last_fired,
        });
    }
    disk.files = files
        .into_iter()
        .map(|(file, rules)| FileView { file, rules })
        .collect();
    if !disk.errors.is_empty() {
        disk.test_error = Some("The rule tests run once the errors above are fixed.".into());
        return disk;
    }
    match ruletest::discover(dir) {
        Ok(tests) => {
            let names: Vec<&str> = set.rules().iter().map(|r| r.name.as_str()).collect();
            disk.tests = tests
                .iter()
                .map(|(file, test)| {
                    let result = ruletest::run(&c.config, file, test, &names, &|e| outcome(set, e));
                    TestView {
                        file: file.strip_prefix(dir).unwrap_or(file).display().to_string(),
                        name: result.name,
                        failures: result.failures,
                    }
                })
                .collect();
        }
        Err(e) => disk.test_error = Some(e.to_string()),
    }
    disk
}
