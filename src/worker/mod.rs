//! Background work: the pipeline (journaled events → rules → trace + jobs), the dispatcher
//! (jobs → actions, with retries) and rule reloading.

mod claims;
pub mod dispatcher;
mod lease;
pub mod pipeline;
pub mod reload;
pub mod retention;
pub mod retry;
pub mod timers;
