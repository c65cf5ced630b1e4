//! Replaying an event (`POST /api/events/{id}/replay`): plan it again with the rules as they are
//! now and keep the jobs that are not already done, under keys that say they are a replay
//! (`RULE@replayN`, see [`replay_rule_key`]). Pure: the caller reads the event, its jobs and the
//! rules, and commits the answer (or, for a dry run, only shows it).
//!
//! A planned action whose job (original, replanned or replayed) is done, pending or running is
//! skipped unless forced, so a replay never sends the same thing twice by accident. Script state
//! written while replaying is not kept: the event's scripts already ran once.

use serde::Serialize;

use super::{plan, Trace};
use crate::journal::{base_rule, replay_rule_key, Job, JobKey, JobStatus, NewJob};
use crate::model::event::Event;
use crate::rules::RuleSet;
use crate::script::State;

/// What a replay creates, and what it leaves alone.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayPlan {
    pub trace: Trace,
    /// The jobs to create, with their replay keys.
    pub jobs: Vec<NewJob>,
    pub skipped: Vec<Skipped>,
}

/// A planned action left out because its job already succeeded or is queued.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub rule: String,
    pub action_index: usize,
    pub kind: String,
    /// The existing job that covers it.
    pub job: i64,
    pub status: JobStatus,
}

/// Plans `event` again; `existing` are all its jobs. With `force`, actions already done are
/// planned again too.
pub fn replay(
    event: &Event,
    rules: &RuleSet,
    state: &dyn State,
    existing: &[Job],
    force: bool,
) -> ReplayPlan {
    let planned = plan(event, rules, state, &[]);
    let mut jobs = Vec::new();
    let mut skipped = Vec::new();
    for job in planned.jobs {
        let covering = settled_by(existing, &job.key(&event.id));
        match covering {
            Some(done) if !force => skipped.push(Skipped {
                rule: job.rule.clone(),
                action_index: job.action_index,
                kind: job.kind.clone(),
                job: done.id,
                status: done.status,
            }),
            _ => {
                let n = next_number(existing, &job.rule, "@replay");
                jobs.push(NewJob {
                    rule: replay_rule_key(&job.rule, n),
                    ..job
                });
            }
        }
    }
    ReplayPlan {
        trace: planned.trace,
        jobs,
        skipped,
    }
}

/// The existing job (under its rule, or a replan or replay of it) for the action `key` names
/// that succeeded or will run, if any.
pub fn settled_by<'a>(existing: &'a [Job], key: &JobKey) -> Option<&'a Job> {
    existing.iter().find(|j| {
        let k = j.key();
        base_rule(&k.rule) == key.rule
            && (k.action, k.intent) == (key.action, key.intent)
            && matches!(
                j.status,
                JobStatus::Done | JobStatus::Pending | JobStatus::Running
            )
    })
}

/// The next number after `marker` (`@replan`, `@replay`) for `rule` on this event.
pub fn next_number(existing: &[Job], rule: &str, marker: &str) -> u32 {
    existing
        .iter()
        .filter_map(|j| {
            j.rule
                .strip_prefix(rule)?
                .strip_prefix(marker)?
                .parse()
                .ok()
        })
        .max()
        .unwrap_or(0)
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::Timestamp;

    fn job(id: i64, rule: &str, status: JobStatus) -> Job {
        Job {
            id,
            event_id: "e".into(),
            rule: rule.into(),
            action_index: 0,
            kind: "http".into(),
            params: serde_json::json!({}),
            status,
            attempts: 1,
            next_at: Timestamp(0),
            last_error: None,
            created_at: Timestamp(0),
        }
    }

    #[test]
    fn a_replayed_or_replanned_job_settles_its_action() {
        let key = JobKey::action("e", "r", 0);
        let done_replay = [
            job(1, "r", JobStatus::Dead),
            job(2, "r@replay1", JobStatus::Done),
        ];
        assert_eq!(settled_by(&done_replay, &key).map(|j| j.id), Some(2));
        let only_dead = [
            job(1, "r", JobStatus::Dead),
            job(2, "r@replan1", JobStatus::Dead),
        ];
        assert!(settled_by(&only_dead, &key).is_none());
        assert!(settled_by(&[job(3, "other", JobStatus::Done)], &key).is_none());
    }

    #[test]
    fn numbers_count_up_per_rule_and_marker() {
        let existing = [
            job(1, "r@replay1", JobStatus::Done),
            job(2, "r@replay2", JobStatus::Done),
            job(3, "r@replan5", JobStatus::Done),
            job(4, "rr@replay9", JobStatus::Done),
        ];
        assert_eq!(next_number(&existing, "r", "@replay"), 3);
        assert_eq!(next_number(&existing, "r", "@replan"), 6);
        assert_eq!(next_number(&existing, "x", "@replay"), 1);
    }
}
