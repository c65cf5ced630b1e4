//! `/ui/flags` — flags raised by rules (open ones first), each with a resolve button.

use std::collections::HashMap;
use std::sync::Arc;

use warp::http::StatusCode;
use warp::{Filter, Rejection};

use super::super::auth::{self, Form, Session};
use super::super::{either, or_unavailable, view, Console, Early};
use crate::journal::query::FlagQuery;
use crate::journal::{Flag, Write, Written};

/// Flags on one page.
const PAGE: usize = 50;

pub fn route(
    c: Arc<Console>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let list = {
        let c2 = c.clone();
        warp::path("flags")
            .and(warp::path::end())
            .and(warp::get())
            .and(warp::query::<HashMap<String, String>>())
            .and(auth::session(c.clone()))
            .then(move |q: HashMap<String, String>, s: Session| {
                let c = c2.clone();
                async move { either(list(&c, &s, &q).await) }
            })
    };
    let resolve = {
        let c2 = c.clone();
        warp::path!("flags" / i64 / "resolve")
            .and(warp::post())
            .and(auth::form(c))
            .then(move |id: i64, s: Session, _: Form| {
                let c = c2.clone();
                async move { resolve(&c, &s, id).await }
            })
    };
    list.or(resolve).unify()
}

async fn list(
    c: &Console,
    s: &Session,
    q: &HashMap<String, String>,
) -> Result<warp::reply::Response, Early> {
    let all = q.get("all").is_some_and(|v| v == "true");
    let before = q.get("before").and_then(|b| b.parse::<i64>().ok());
    let query = FlagQuery {
        open: !all,
        before,
        limit: PAGE,
    };
    let read = c.reader.read(move |store| store.flag_page(&query)).await;
    let page = or_unavailable(c, s, read)?;
    let (flags, next): (Vec<Flag>, _) = (page.items, page.next);
    let base = if all {
        "/ui/flags?all=true"
    } else {
        "/ui/flags"
    };
    let (first_page, next_page) = super::pager(base, next, before.is_some());
    let items: Vec<_> = flags
        .into_iter()
        .map(|f| {
            minijinja::context! {
                id => f.id, source => f.source, order_id => f.order_id, kind => f.kind,
                note => f.note, event_id => f.event_id, rule => f.rule,
                created_at => view::ts(f.created_at),
                resolved_at => f.resolved_at.map(view::ts),
            }
        })
        .collect();
    let notice = q.get("resolved").filter(|id| id.parse::<i64>().is_ok());
    let ctx = minijinja::context! {
        all => all,
        items => items,
        notice => notice.map(|id| format!("Flag #{id} is resolved.")),
        first_page => first_page,
        next_page => next_page,
    };
    Ok(view::page(
        c,
        Some(s),
        StatusCode::OK,
        ("flags.html", "flags"),
        ctx,
    ))
}

async fn resolve(c: &Console, s: &Session, id: i64) -> warp::reply::Response {
    match c.journal.write(Write::ResolveFlag(id)).await {
        Ok(Written::Changed(n)) => {
            tracing::info!(flag = id, changed = n, "console: flag resolved");
            view::see_other(&format!("/ui/flags?resolved={id}"))
        }
        Ok(_) => view::see_other("/ui/flags"),
        Err(e) => view::unavailable(c, s, e),
    }
}
