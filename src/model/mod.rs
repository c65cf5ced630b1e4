//! The domain model every layer shares: events, canonical names and the built-in action table.
//!
//! Nothing here does I/O or knows about storage, rules or delivery; every other module may
//! use it (DESIGN.md §9, the bottom layer).

pub mod actions;
pub mod event;
