//! storeflow: a self-hosted automation daemon for Selldone and Sellix shops.
//!
//! Webhooks are verified on their raw bytes, normalized into [`event::Event`]s and committed to a
//! durable journal before they are acknowledged.
//!
//! # Layout
//!
//! From the bottom up (each layer uses only those before it):
//! - [`event`]: the event model and canonical names.
//! - [`config`]: `storeflow.yaml`.
//! - [`journal`]: durable storage (SQLite, group commit); knows events, nothing above.
//! - [`sources`]: one adapter per platform: verify, then normalize.
//! - [`server`]: the warp routes; journals and answers, never runs actions.
//! - [`app`]: wiring under one shutdown token.
//! - [`cli`]: one file per subcommand.

pub mod app;
pub mod cli;
pub mod config;
pub mod event;
pub mod journal;
pub mod server;
pub mod sources;
