//! `/ui/try` — "try a payload": paste a webhook body (or pick one a rule test uses) and see the
//! plan the running rules make of it: which rules fire, why the others do not, every action
//! rendered. Nothing is journaled and nothing is sent (the same planning as `storeflow
//! simulate`, scripts run into their intents).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use minijinja::value::Serde;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

use super::super::auth::{self, Form, Session};
use super::super::{view, Console};
use super::verdict::Verdict;
use crate::model::event::Timestamp;
use crate::plan::ruletest::{self, outcome, RuleTest};
use crate::sources::verify;

pub fn route(
    c: Arc<Console>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let show = {
        let c2 = c.clone();
        warp::path("try")
            .and(warp::path::end())
            .and(warp::get())
            .and(auth::session(c.clone()))
            .then(move |s: Session| {
                let c = c2.clone();
                async move { render(c, &s, HashMap::new()).await }
            })
    };
    let run = {
        let c2 = c.clone();
        warp::path("try")
            .and(warp::path::end())
            .and(warp::post())
            .and(auth::form(c))
            .then(move |s: Session, f: Form| {
                let c = c2.clone();
                async move { render(c, &s, f).await }
            })
    };
    show.or(run).unify()
}

/// Plans the form's payload (when there is one) on a blocking thread, and renders the page.
async fn render(c: Arc<Console>, s: &Session, form: Form) -> warp::reply::Response {
    let worker = c.clone();
    let planned = tokio::task::spawn_blocking(move || {
        let fixtures = fixtures(&worker.config.rules_dir);
        let mut form = form;
        let result = match form.contains_key("payload") || form.contains_key("fixture") {
            true => Some(plan(&worker, &fixtures, &mut form)),
            false => None,
        };
        (fixtures, form, result)
    })
    .await;
    let (fixtures, form, result) = match planned {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "console: planning a payload failed");
            return view::refused(
                &c,
                Some(s),
                StatusCode::INTERNAL_SERVER_ERROR,
                "Planning failed",
                "The daemon's log has the details.",
            );
        }
    };
    let (result, error) = match result {
        Some(Ok(r)) => (Some(r), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let ctx = minijinja::context! {
        sources => c.sources.names(),
        fixtures => fixtures.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        form => Serde(form),
        result => result,
        error => error,
    };
    view::page(&c, Some(s), status, ("try.html", "try"), ctx)
}

/// The payloads the rule tests use, by a label (`file: test name`), with the test.
fn fixtures(rules_dir: &Path) -> Vec<(String, (std::path::PathBuf, RuleTest))> {
    let Ok(tests) = ruletest::discover(rules_dir) else {
        return Vec::new();
    };
    tests
        .into_iter()
        .map(|(file, test)| {
            let shown = file.strip_prefix(rules_dir).unwrap_or(&file).display();
            (format!("{shown}: {}", test.name), (file, test))
        })
        .collect()
}

/// The body, source and event name to plan: the picked rule test's, or the form's own.
fn body_of(
    fixtures: &[(String, (std::path::PathBuf, RuleTest))],
    form: &mut Form,
) -> Result<(Vec<u8>, String, Option<String>), String> {
    let picked = form.get("fixture").filter(|f| !f.is_empty()).cloned();
    if let Some(label) = picked {
        let Some((_, (file, test))) = fixtures.iter().find(|(k, _)| *k == label) else {
            return Err(format!(
                "no rule test is called {label:?} any more; reload the page"
            ));
        };
        let body = match (&test.fixture, &test.payload) {
            (Some(f), _) => {
                let path = file.parent().unwrap_or(Path::new(".")).join(f);
                std::fs::read(&path)
                    .map_err(|e| format!("cannot read the fixture {}: {e}", path.display()))?
            }
            (None, Some(p)) => serde_json::to_vec_pretty(p).unwrap_or_default(),
            (None, None) => return Err(format!("the rule test {label:?} has no payload")),
        };
        form.insert(
            "payload".into(),
            String::from_utf8_lossy(&body).into_owned(),
        );
        form.insert("source".into(), test.source.clone());
        form.insert("event".into(), test.event.clone().unwrap_or_default());
        form.insert("fixture".into(), String::new());
        return Ok((body, test.source.clone(), test.event.clone()));
    }
    let payload = form.get("payload").cloned().unwrap_or_default();
    if payload.trim().is_empty() {
        return Err("Paste a webhook body (JSON) or pick a rule test's payload.".into());
    }
    let source = form.get("source").cloned().unwrap_or_default();
    let event = form
        .get("event")
        .filter(|e| !e.trim().is_empty())
        .map(|e| e.trim().to_string());
    Ok((payload.into_bytes(), source, event))
}

/// The plan of the form's payload with the running rules, as the template shows it.
fn plan(
    c: &Console,
    fixtures: &[(String, (std::path::PathBuf, RuleTest))],
    form: &mut Form,
) -> Result<minijinja::Value, String> {
    let (body, source, event_name) = body_of(fixtures, form)?;
    let Some(adapter) = c.sources.get(&source) else {
        return Err(format!(
            "unknown source {source:?}; use one of: {}",
            c.sources.names().join(", ")
        ));
    };
    let verified = verify::local_file(body.into(), event_name);
    let event = adapter
        .normalize(&verified, Timestamp::now())
        .map_err(|e| format!("This is not a {source} webhook: {e}"))?
        .event;
    let Some(rules) = c.rules.current() else {
        return Err(
            "No rules are running (the rule files have errors); see the Rules page.".into(),
        );
    };
    let planned = outcome(&rules, &event);
    let verdicts: Vec<Verdict> = planned
        .evaluation
        .rules
        .iter()
        .map(|r| {
            let error = planned.script_errors.get(&r.rule).map(String::as_str);
            Verdict::of(r, error, &c.config.rules_dir)
        })
        .collect();
    Ok(minijinja::context! {
        topic => event.topic.clone(),
        canonical => event.canonical.clone(),
        matched => verdicts.iter().filter(|v| v.state == "fired").count(),
        total => rules.len(),
        rules => Serde(&verdicts),
        not_listening => Serde(rules.not_listening(&event)),
    })
}
