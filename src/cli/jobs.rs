//! `storeflow jobs [--json] [--status S] [--event ID]`, `storeflow jobs show ID`,
//! `storeflow jobs retry ID` and `storeflow jobs retry --dead`.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::journal::{JobStatus, Requeue, SqliteStore, Store, Write, Written};

#[derive(Debug, Args)]
pub struct JobsArgs {
    #[command(subcommand)]
    pub command: Option<JobsCommand>,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
    /// Only jobs in this state: pending, done or dead
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
    /// Put a job (or every dead letter) back in the queue, due now; the daemon picks it up
    Retry {
        /// The job to re-queue
        id: Option<i64>,
        /// Re-queue every dead letter
        #[arg(long, conflicts_with = "id")]
        dead: bool,
    },
}

fn parse_status(s: &str) -> Result<JobStatus, String> {
    JobStatus::parse(s)
        .ok_or_else(|| format!("unknown status `{s}`; use pending, running, done or dead"))
}

pub fn run(config: &Config, args: JobsArgs) -> anyhow::Result<ExitCode> {
    let mut store = SqliteStore::open_existing(&config.journal_path())?;
    match args.command {
        Some(JobsCommand::Show { id }) => show(&store, id),
        Some(JobsCommand::Retry { id, dead }) => {
            let which = match (id, dead) {
                (Some(id), _) => Requeue::One(id),
                (None, true) => Requeue::AllDead,
                (None, false) => anyhow::bail!("say which: `storeflow jobs retry ID` or `--dead`"),
            };
            let out = store.write_batch(&[Write::Requeue(which)], config.intake.dedupe_window)?;
            let n = match out.first() {
                Some(Written::Changed(n)) => *n,
                _ => 0,
            };
            println!("re-queued {n} job{}", if n == 1 { "" } else { "s" });
            Ok(if n == 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        None => list(&store, &args),
    }
}

fn show(store: &SqliteStore, id: i64) -> anyhow::Result<ExitCode> {
    let Some(job) = store.job(id)? else {
        eprintln!("no job with id {id}");
        return Ok(ExitCode::from(1));
    };
    let shown = serde_json::json!({ "job": job, "attempts": store.attempts(id)? });
    println!(
        "{}",
        serde_json::to_string_pretty(&shown).context("printing the job")?
    );
    Ok(ExitCode::SUCCESS)
}

fn list(store: &SqliteStore, args: &JobsArgs) -> anyhow::Result<ExitCode> {
    let jobs = store.jobs(args.event.as_deref(), args.status, args.limit)?;
    if args.json {
        for j in &jobs {
            println!("{}", serde_json::to_string(j).context("printing a job")?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if jobs.is_empty() {
        println!("no jobs");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>6}  {:<8}  {:>8}  {:<24}  {:<8}  {:<36}  LAST ERROR",
        "ID", "STATUS", "ATTEMPTS", "RULE", "ACTION", "EVENT"
    );
    for j in &jobs {
        println!(
            "{:>6}  {:<8}  {:>8}  {:<24}  {:<8}  {:<36}  {}",
            j.id,
            j.status.as_str(),
            j.attempts,
            j.rule,
            j.kind,
            j.event_id,
            j.last_error.as_deref().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}
