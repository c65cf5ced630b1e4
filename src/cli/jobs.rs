//! `storeflow jobs [--json] [--status S] [--event ID]`, `storeflow jobs show ID`,
//! `storeflow jobs retry ID|--dead [--replan]` and `storeflow jobs dismiss ID...|--dead`.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::output::{changed_exit, plural};
use super::replan;
use super::table::{no_note, Column, Listing};
use crate::config::Config;
use crate::journal::{Job, JobStatus, Requeue, Store, Write};
use crate::outln;

#[derive(Debug, Args)]
pub struct JobsArgs {
    #[command(subcommand)]
    pub command: Option<JobsCommand>,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
    /// Only jobs in this state: pending, running, done, dead, dismissed or replanned
    #[arg(long, value_parser = parse_status)]
    pub status: Option<JobStatus>,
    /// Only the jobs of this event
    #[arg(long)]
    pub event: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// One job with every attempt (JSON)
    Show { id: i64 },
    /// Put a job (or every dead letter) back in the queue, due now; the daemon picks it up.
    /// Earlier attempts stay in the job's history.
    Retry {
        /// The job to re-queue
        id: Option<i64>,
        /// Re-queue every dead letter
        #[arg(long, conflicts_with = "id")]
        dead: bool,
        /// Plan the event again with the current rules instead of reusing the stored
        /// parameters: fresh jobs (keys `RULE@replanN`) replace the dead letters; actions of
        /// the rule that already succeeded are not sent again
        #[arg(long)]
        replan: bool,
    },
    /// Set dead letters aside: no longer listed as dead, never retried, pruned by retention
    Dismiss {
        /// The dead jobs to dismiss
        ids: Vec<i64>,
        /// Dismiss every dead letter
        #[arg(long, conflicts_with = "ids")]
        dead: bool,
    },
}

fn parse_status(s: &str) -> Result<JobStatus, String> {
    JobStatus::parse(s).ok_or_else(|| {
        format!("unknown status `{s}`; use pending, running, done, dead, dismissed or replanned")
    })
}

pub fn run(config: &Config, args: JobsArgs) -> anyhow::Result<ExitCode> {
    let journal = crate::journal::open_existing(crate::journal::Location::of(config))?;
    journal.write_blocking(|store| run_on(config, args, store))
}

fn run_on(config: &Config, args: JobsArgs, store: &mut dyn Store) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(JobsCommand::Show { id }) => show(store, id),
        Some(JobsCommand::Retry { id, dead, replan }) => {
            let which = match (id, dead) {
                (Some(id), _) => Requeue::One(id),
                (None, true) => Requeue::AllDead,
                (None, false) => anyhow::bail!("say which: `storeflow jobs retry ID` or `--dead`"),
            };
            if replan {
                let targets = dead_letters(store, &which)?;
                return replan::run(config, store, targets);
            }
            let n = super::write_one(store, config, Write::Requeue(which))?;
            outln!("re-queued {n} job{}", plural(n))?;
            Ok(changed_exit(n))
        }
        Some(JobsCommand::Dismiss { ids, dead }) => {
            let ids = match (ids.is_empty(), dead) {
                (false, _) => ids,
                (true, true) => dead_letters(store, &Requeue::AllDead)?
                    .iter()
                    .map(|j| j.id)
                    .collect(),
                (true, false) => {
                    anyhow::bail!("say which: `storeflow jobs dismiss ID...` or `--dead`")
                }
            };
            let n = super::write_one(store, config, Write::Dismiss(ids))?;
            outln!("dismissed {n} dead letter{}", plural(n))?;
            Ok(changed_exit(n))
        }
        None => list(store, &args),
    }
}

/// The dead jobs `which` names (a named job that is not dead is an error).
fn dead_letters(store: &dyn Store, which: &Requeue) -> anyhow::Result<Vec<Job>> {
    match which {
        Requeue::AllDead => Ok(store.jobs(None, Some(JobStatus::Dead), usize::MAX >> 1)?),
        Requeue::One(id) => match store.job(*id)? {
            None => anyhow::bail!("no job with id {id}"),
            Some(job) if job.status != JobStatus::Dead => anyhow::bail!(
                "job {id} is {}, not dead: only dead letters are replanned",
                job.status.as_str()
            ),
            Some(job) => Ok(vec![job]),
        },
    }
}

fn show(store: &dyn Store, id: i64) -> anyhow::Result<ExitCode> {
    let Some(job) = store.job(id)? else {
        eprintln!("no job with id {id}");
        return Ok(ExitCode::from(1));
    };
    let shown = serde_json::json!({ "job": job, "attempts": store.attempts(id)? });
    outln!(
        "{}",
        serde_json::to_string_pretty(&shown).context("printing the job")?
    )?;
    Ok(ExitCode::SUCCESS)
}

fn list(store: &dyn Store, args: &JobsArgs) -> anyhow::Result<ExitCode> {
    let jobs = store.jobs(args.event.as_deref(), args.status, args.limit)?;
    JOBS.print(&jobs, args.json)?;
    Ok(ExitCode::SUCCESS)
}

const JOBS: Listing<'static, Job> = Listing {
    item: "a job",
    empty: "no jobs",
    columns: &[
        Column::right("ID", 6),
        Column::left("STATUS", 9),
        Column::right("ATTEMPTS", 8),
        Column::left("RULE", 24),
        Column::left("ACTION", 8),
        Column::left("EVENT", 36),
        Column::rest("LAST ERROR"),
    ],
    cells: |j| {
        vec![
            j.id.to_string(),
            j.status.as_str().to_string(),
            j.attempts.to_string(),
            j.rule.clone(),
            j.kind.clone(),
            j.event_id.clone(),
            j.last_error.clone().unwrap_or_default(),
        ]
    },
    note: no_note,
};
