//! Rhai scripting: the one place the engine is configured ([`engine::hardened_engine`]).
//!
//! Rule `if` expressions, scripts and plugins all run on an engine built here, so the limits
//! that keep a shop owner's script from hanging or exhausting the daemon are set once.

pub mod engine;

pub use engine::hardened_engine;
