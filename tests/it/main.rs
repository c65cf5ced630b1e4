//! Integration tests: one binary. `helpers` starts the daemon (in-process or as a real process)
//! on port 0 with a temporary data dir.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actions_email;
mod actions_http;
mod actions_slack;
mod api;
mod backup;
mod cli;
mod console;
mod crash;
mod delivery;
mod delivery_actions;
mod email_from;
mod end_to_end;
mod helpers;
mod init;
mod intake;
mod layering;
mod metrics;
mod postgres;
mod receivers;
mod regression_cli;
mod regression_model;
mod regression_perf;
mod regression_perf3;
mod regression_plan;
mod regression_quarantine;
mod regression_resilience;
mod regression_rulecheck;
mod regression_scripts;
mod regression_secure;
mod regression_shops;
mod regression_store;
mod regression_tokio;
mod regression_traces;
mod replicas;
mod rules;
mod scripts;
mod sources;
mod timers;
mod timers_limits;
mod timers_ruletest;
mod timers_unless;
mod timers_wake;
mod tls;
