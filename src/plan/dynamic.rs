//! Sellix dynamic products: for `sellix/product:dynamic`, the answer's body is what Sellix
//! delivers to the buyer (a license key, a download link). [`product`] is the one narrow
//! function the intake server, `simulate` and `storeflow test` call: the first matching rule's
//! script runs (blocking, within a deadline) and its return value is the answer. The pipeline
//! does not run that script a second time (see [`super::run`]).

use std::time::Duration;

use crate::model::actions::ActionKind;
use crate::model::event::Event;
use crate::rules::RuleSet;
use crate::template::EventView;

pub use crate::model::event::DYNAMIC_PRODUCT_TOPIC as TOPIC;
/// How long the script may take (Sellix waits for the answer while the buyer watches).
pub const DEADLINE: Duration = Duration::from_secs(10);

/// What a dynamic product answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The body Sellix delivers to the buyer.
    Produced(String),
    /// The script failed (file:line:column: reason), or its run broke.
    Failed(String),
    /// The script did not finish within its deadline (the reason names it).
    TimedOut(String),
    /// No matching rule has a script: the intake answers as for any webhook.
    NoScript,
}

impl Answer {
    /// The error of a failed or timed-out answer.
    pub fn error(&self) -> Option<&str> {
        match self {
            Answer::Failed(e) | Answer::TimedOut(e) => Some(e),
            Answer::Produced(_) | Answer::NoScript => None,
        }
    }
}

/// The answer to a dynamic-product `event`: the output of the first matching rule's script,
/// run within `deadline`. A script that panics the engine is reported as failed, not lost.
pub fn product(rules: &RuleSet, event: &Event, deadline: Duration) -> Answer {
    let view = EventView::new(event);
    let evaluation = rules.evaluate_view(&view);
    let found = evaluation.matched().find_map(|r| {
        let a = r.actions.iter().find(|a| a.kind == ActionKind::Script)?;
        rules.script(&r.rule, a.index)
    });
    let Some(script) = found else {
        return Answer::NoScript;
    };
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rules
            .runner()
            .dynamic_product_values(script, &view.values(), deadline)
    }));
    match run {
        Ok(Ok(body)) => Answer::Produced(body),
        Ok(Err(e)) if e.timed_out_after(deadline) => Answer::TimedOut(e.to_string()),
        Ok(Err(e)) => Answer::Failed(e.to_string()),
        Err(panic) => Answer::Failed(format!(
            "internal error while running the script: {}",
            super::panic_message(panic.as_ref())
        )),
    }
}
