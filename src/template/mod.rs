//! Templates and the event view shared by rules and scripts: the minijinja environment and its
//! filters ([`render`], [`filters`]), the fixed shapes of `event`/`order`/`rule` ([`fields`]),
//! and the event as JSON and Rhai values ([`view`]). Knows the event model, nothing above it.

pub mod fields;
pub mod filters;
pub mod render;
pub mod suggest;
pub mod view;

pub use render::*;
pub use view::{EventValues, EventView, Scope};
