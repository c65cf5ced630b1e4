//! `storeflow test [FILTER]`: run the rule tests (see [`crate::plan::ruletest`]). Exit 1 on any
//! failure, and when FILTER matches no test.

use crate::outln;
use std::process::ExitCode;

use clap::Args;

use crate::app::load_options;
use crate::config::Config;
use crate::plan::ruletest::{self, outcome, RuleTest};
use crate::rules;

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Only run tests whose name contains this text
    pub filter: Option<String>,
    /// Print the pipeline's log lines (INFO and up) to stderr
    #[arg(short, long)]
    pub verbose: bool,
}

pub fn run(config: &Config, args: TestArgs) -> anyhow::Result<ExitCode> {
    let loaded = rules::load_dir(&config.rules_dir, &load_options(config));
    let errors: Vec<_> = loaded.errors().collect();
    let Some(rules) = loaded.rules.as_ref().filter(|_| errors.is_empty()) else {
        for d in &errors {
            outln!("{d}\n")?;
        }
        outln!("the rules have errors; fix them first (see `storeflow check`)")?;
        return Ok(ExitCode::from(1));
    };
    let tests = ruletest::discover(&config.rules_dir)?;
    let selected: Vec<&(std::path::PathBuf, RuleTest)> = tests
        .iter()
        .filter(|(_, t)| {
            args.filter
                .as_ref()
                .is_none_or(|f| t.name.contains(f.as_str()))
        })
        .collect();
    if let (Some(filter), true) = (&args.filter, selected.is_empty()) {
        outln!(
            "no rule test name contains {filter:?} ({} test{} in {})",
            tests.len(),
            if tests.len() == 1 { "" } else { "s" },
            config.rules_dir.display()
        )?;
        return Ok(ExitCode::from(1));
    }
    let names: Vec<&str> = rules.rules().iter().map(|r| r.name.as_str()).collect();
    let (mut passed, mut failed) = (0, 0);
    for (file, test) in selected {
        let result = match test.events.is_empty() && !test.expect.has_time() {
            true => ruletest::run(config, file, test, &names, &|e| outcome(rules, e)),
            false => ruletest::run_timeline(config, file, test, &names, rules),
        };
        let shown = file
            .strip_prefix(&config.rules_dir)
            .unwrap_or(file)
            .display();
        if result.failures.is_empty() {
            passed += 1;
            outln!("PASS {shown}: {}", result.name)?;
        } else {
            failed += 1;
            outln!("FAIL {shown}: {}", result.name)?;
            for f in &result.failures {
                outln!("  {f}")?;
            }
        }
    }
    if passed + failed == 0 {
        outln!(
            "no rule tests found in {} (add `tests:` to a rule file, see docs/rules.md)",
            config.rules_dir.display()
        )?;
    }
    outln!("{passed} passed, {failed} failed")?;
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
