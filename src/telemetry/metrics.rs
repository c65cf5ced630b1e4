//! Every Prometheus metric name (DESIGN.md §11), defined once, and the functions that record
//! them. Nothing is recorded until [`install`] sets the recorder (the daemon does; CLI commands
//! that plan or simulate record into the no-op default).

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const WEBHOOKS_TOTAL: &str = "storeflow_webhooks_total";
pub const INTAKE_DURATION_SECONDS: &str = "storeflow_intake_duration_seconds";
pub const EVENTS_PROCESSED_TOTAL: &str = "storeflow_events_processed_total";
pub const PIPELINE_LAG_SECONDS: &str = "storeflow_pipeline_lag_seconds";
pub const RULE_FIRED_TOTAL: &str = "storeflow_rule_fired_total";
pub const JOBS_TOTAL: &str = "storeflow_jobs_total";
pub const JOBS: &str = "storeflow_jobs";
pub const FLAGS_OPEN: &str = "storeflow_flags_open";
pub const RULES_RELOAD_SUCCESS: &str = "storeflow_rules_reload_success";
pub const RULES_RELOAD_TIMESTAMP_SECONDS: &str = "storeflow_rules_reload_timestamp_seconds";
pub const JOURNAL_BYTES: &str = "storeflow_journal_bytes";
pub const TIMERS_PENDING: &str = "storeflow_timers_pending";

/// Every metric name, in the order of DESIGN.md §11 (`storeflow_timers_pending`: §12).
pub const NAMES: &[&str] = &[
    WEBHOOKS_TOTAL,
    INTAKE_DURATION_SECONDS,
    EVENTS_PROCESSED_TOTAL,
    PIPELINE_LAG_SECONDS,
    RULE_FIRED_TOTAL,
    JOBS_TOTAL,
    JOBS,
    FLAGS_OPEN,
    TIMERS_PENDING,
    RULES_RELOAD_SUCCESS,
    RULES_RELOAD_TIMESTAMP_SECONDS,
    JOURNAL_BYTES,
];

/// Intake latency buckets, in seconds (a journaled webhook takes one group commit).
const INTAKE_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder once per process; the handle renders `/metrics`. `None`
/// when another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(INTAKE_DURATION_SECONDS.into()),
                    INTAKE_BUCKETS,
                )
                .ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(WEBHOOKS_TOTAL, "Webhooks answered, by source and outcome.");
    metrics::describe_histogram!(INTAKE_DURATION_SECONDS, "Time to answer a webhook.");
    metrics::describe_counter!(EVENTS_PROCESSED_TOTAL, "Events planned by the pipeline.");
    metrics::describe_gauge!(PIPELINE_LAG_SECONDS, "Age of the oldest unprocessed event.");
    metrics::describe_counter!(RULE_FIRED_TOTAL, "Rule matches, by rule.");
    metrics::describe_counter!(JOBS_TOTAL, "Delivery attempts, by action and outcome.");
    metrics::describe_gauge!(JOBS, "Jobs in the journal, by status.");
    metrics::describe_gauge!(FLAGS_OPEN, "Open flags.");
    metrics::describe_gauge!(RULES_RELOAD_SUCCESS, "1 when the last rules reload worked.");
    metrics::describe_gauge!(
        RULES_RELOAD_TIMESTAMP_SECONDS,
        "Time of the last rules reload."
    );
    metrics::describe_gauge!(JOURNAL_BYTES, "Size of the journal database.");
}

/// How intake answered a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    Accepted,
    Duplicate,
    Unauthorized,
    Forbidden,
    BadRequest,
    TooLarge,
    Unavailable,
}

impl WebhookOutcome {
    pub const ALL: [WebhookOutcome; 7] = [
        WebhookOutcome::Accepted,
        WebhookOutcome::Duplicate,
        WebhookOutcome::Unauthorized,
        WebhookOutcome::Forbidden,
        WebhookOutcome::BadRequest,
        WebhookOutcome::TooLarge,
        WebhookOutcome::Unavailable,
    ];

    /// The outcome of an error answer with HTTP `status`.
    pub fn of_status(status: u16) -> WebhookOutcome {
        match status {
            401 => WebhookOutcome::Unauthorized,
            403 => WebhookOutcome::Forbidden,
            413 => WebhookOutcome::TooLarge,
            500.. => WebhookOutcome::Unavailable,
            _ => WebhookOutcome::BadRequest,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Accepted => "accepted",
            WebhookOutcome::Duplicate => "duplicate",
            WebhookOutcome::Unauthorized => "unauthorized",
            WebhookOutcome::Forbidden => "forbidden",
            WebhookOutcome::BadRequest => "bad_request",
            WebhookOutcome::TooLarge => "too_large",
            WebhookOutcome::Unavailable => "unavailable",
        }
    }
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    Done,
    Retried,
    Dead,
}

impl JobOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Done => "done",
            JobOutcome::Retried => "retried",
            JobOutcome::Dead => "dead",
        }
    }
}

/// A webhook answered after `elapsed`.
pub fn webhook_answered(source: &'static str, outcome: WebhookOutcome, elapsed: Duration) {
    // `&'static str` labels are borrowed by the metrics key: no allocation per webhook.
    metrics::counter!(WEBHOOKS_TOTAL, "source" => source, "outcome" => outcome.as_str())
        .increment(1);
    metrics::histogram!(INTAKE_DURATION_SECONDS, "source" => source).record(elapsed.as_secs_f64());
}

/// `n` events planned and committed by the pipeline.
pub fn events_processed(n: u64) {
    metrics::counter!(EVENTS_PROCESSED_TOTAL).increment(n);
}

/// A rule matched an event.
pub fn rule_fired(rule: &str) {
    metrics::counter!(RULE_FIRED_TOTAL, "rule" => rule.to_string()).increment(1);
}

/// A delivery attempt of `action` ended with `outcome`.
pub fn job_finished(action: &str, outcome: JobOutcome) {
    metrics::counter!(JOBS_TOTAL, "action" => action.to_string(), "outcome" => outcome.as_str())
        .increment(1);
}

/// The journal's state, read when `/metrics` is scraped.
#[derive(Debug, Clone, Default)]
pub struct JournalGauges {
    /// Jobs per status (`pending`, `running`, `done`, `dead`, …).
    pub jobs: Vec<(String, u64)>,
    pub flags_open: u64,
    /// Age of the oldest unprocessed event (0 when none waits).
    pub pipeline_lag: Duration,
    pub bytes: u64,
    /// Timers waiting to fire (waits, delayed actions, open digest windows).
    pub timers_pending: u64,
}

/// Sets the gauges read from the journal.
pub fn journal_gauges(g: &JournalGauges) {
    for (status, n) in &g.jobs {
        metrics::gauge!(JOBS, "status" => status.clone()).set(*n as f64);
    }
    metrics::gauge!(FLAGS_OPEN).set(g.flags_open as f64);
    metrics::gauge!(PIPELINE_LAG_SECONDS).set(g.pipeline_lag.as_secs_f64());
    metrics::gauge!(JOURNAL_BYTES).set(g.bytes as f64);
    metrics::gauge!(TIMERS_PENDING).set(g.timers_pending as f64);
}

/// The outcome of the last rules reload (`at`: seconds since the Unix epoch).
pub fn rules_reload(ok: bool, at: f64) {
    metrics::gauge!(RULES_RELOAD_SUCCESS).set(if ok { 1.0 } else { 0.0 });
    metrics::gauge!(RULES_RELOAD_TIMESTAMP_SECONDS).set(at);
}
