//! One file per console page; [`routes`] lists them. Each route matches its path first, then
//! asks [`auth`](super::auth) for the session (so an unknown path is a 404, not a sign-in).

mod event;
mod events;
mod flags;
mod jobs;
pub mod login;
mod overview;
mod rules;
mod timers;
mod try_payload;
mod verdict;

use std::sync::Arc;

use warp::{Filter, Rejection};

use super::Console;

pub fn routes(
    c: Arc<Console>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    overview::route(c.clone())
        .or(events::route(c.clone()))
        .unify()
        .or(event::route(c.clone()))
        .unify()
        .or(jobs::route(c.clone()))
        .unify()
        .or(flags::route(c.clone()))
        .unify()
        .or(timers::route(c.clone()))
        .unify()
        .or(rules::route(c.clone()))
        .unify()
        .or(try_payload::route(c))
        .unify()
}

/// `?before=` links of a keyset-paged list: the first page and the next one.
pub(super) fn pager(
    base: &str,
    next: Option<i64>,
    paged: bool,
) -> (Option<String>, Option<String>) {
    let sep = if base.contains('?') { '&' } else { '?' };
    let first = paged.then(|| base.to_string());
    let next = next.map(|n| format!("{base}{sep}before={n}"));
    (first, next)
}
