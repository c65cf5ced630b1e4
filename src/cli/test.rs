//! `storeflow test`: run the rule tests (see [`crate::rules::ruletest`]). Exit 1 on any failure.

use std::process::ExitCode;

use clap::Args;

use crate::app::load_options;
use crate::config::Config;
use crate::event::Event;
use crate::rules::{self, ruletest, Evaluation, PlannedAction, RuleSet};

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Only run tests whose name contains this text
    pub filter: Option<String>,
}

/// The rules' evaluation with every script or plugin action replaced by the jobs it would
/// plan (its intents, numbered as the pipeline numbers them); nothing runs for real.
fn with_intents(rules: &RuleSet, event: &Event) -> Evaluation {
    let mut evaluation = rules.evaluate(event);
    let planned = crate::worker::pipeline::plan(event, rules, &crate::script::NoState, &[]);
    for r in evaluation.rules.iter_mut().filter(|r| r.matched) {
        r.actions = planned
            .jobs
            .iter()
            .filter(|j| j.rule == r.rule)
            .map(|j| PlannedAction {
                index: j.action_index,
                kind: j.kind.clone(),
                params: match &j.error {
                    Some(e) => Err(e.clone()),
                    None => Ok(j.params.clone()),
                },
            })
            .collect();
    }
    evaluation
}

pub fn run(config: &Config, args: TestArgs) -> anyhow::Result<ExitCode> {
    let loaded = rules::load_dir(&config.rules_dir, &load_options(config));
    let errors: Vec<_> = loaded.errors().collect();
    let Some(rules) = loaded.rules.as_ref().filter(|_| errors.is_empty()) else {
        for d in &errors {
            println!("{d}\n");
        }
        println!("the rules have errors; fix them first (see `storeflow check`)");
        return Ok(ExitCode::from(1));
    };
    let tests = ruletest::discover(&config.rules_dir).map_err(anyhow::Error::msg)?;
    let selected = tests.iter().filter(|(_, t)| {
        args.filter
            .as_ref()
            .is_none_or(|f| t.name.contains(f.as_str()))
    });
    let (mut passed, mut failed) = (0, 0);
    for (file, test) in selected {
        let result = ruletest::run(config, file, test, &|event| with_intents(rules, event));
        let shown = file
            .strip_prefix(&config.rules_dir)
            .unwrap_or(file)
            .display();
        if result.failures.is_empty() {
            passed += 1;
            println!("PASS {shown}: {}", result.name);
        } else {
            failed += 1;
            println!("FAIL {shown}: {}", result.name);
            for f in &result.failures {
                println!("  {f}");
            }
        }
    }
    if passed + failed == 0 {
        println!("no rule tests found in {}", config.rules_dir.display());
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
