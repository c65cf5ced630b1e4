//! storeflow: a self-hosted automation daemon for Selldone and Sellix shops.
//!
//! Webhooks are verified on their raw bytes, normalized into [`model::event::Event`]s and
//! committed to a durable journal before they are acknowledged.
//!
//! # Layout
//!
//! From the bottom up (each layer uses only those before it):
//! - [`telemetry`] holds every repeated log line, defined once, and their rate limits.
//! - [`model`] holds the event model, canonical names and the built-in action table
//!   ([`model::actions`]); it uses nothing else in the crate.
//! - [`config`] holds `storeflow.yaml`.
//! - [`journal`] holds durable storage behind the `Store` trait (SQLite, group commit), reached
//!   through `journal::Reader` and `journal::Journal`; knows events, nothing above.
//! - [`sources`] holds one adapter per platform: verify, then normalize.
//! - [`template`] holds the minijinja environment, filters and the event view (JSON and Rhai
//!   values, converted once per event) shared by rules and scripts.
//! - [`script`] holds the hardened Rhai engine every script and `if` runs on.
//! - [`rules`] holds YAML rules: loading with diagnostics, pure matching, action planning and
//!   live reload.
//! - [`plan`] holds the pure plan (event + rules → trace, jobs, state) the pipeline, `simulate`,
//!   `test`, replans and dynamic products share; the typed trace; rule tests.
//! - [`actions`] holds the executors of jobs (email, Slack, HTTP, flag, log, Discord).
//! - [`worker`] holds the pipeline (events → plan → trace + jobs), the dispatcher (jobs →
//!   actions, retries, dead letters), rule reloading and retention.
//! - [`server`] holds the warp routes; journals and answers, never runs actions.
//! - [`app`] holds wiring under one shutdown token and one task tracker.
//! - [`cli`] holds one file per subcommand.

pub mod actions;
pub mod app;
pub mod cli;
pub mod config;
pub mod journal;
pub mod model;
pub mod plan;
pub mod rules;
pub mod script;
pub mod server;
pub mod sources;
pub mod telemetry;
pub mod template;
pub mod worker;
