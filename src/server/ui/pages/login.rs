//! `/ui/login` (the form with the field `token`) and `/ui/logout`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use warp::http::{header, StatusCode};
use warp::{Filter, Rejection};

use super::super::auth::{self, Form, Session};
use super::super::{view, Console};

/// The largest sign-in form taken.
const MAX_LOGIN_FORM: u64 = 4096;

pub fn route(
    c: Arc<Console>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let show = {
        let c = c.clone();
        warp::path("login")
            .and(warp::path::end())
            .and(warp::get())
            .map(move || match c.token {
                Some(_) => form_page(&c, StatusCode::OK, None),
                None => view::see_other("/ui/"),
            })
    };
    let sign_in = {
        let c = c.clone();
        warp::path("login")
            .and(warp::path::end())
            .and(warp::post())
            .and(warp::body::content_length_limit(MAX_LOGIN_FORM))
            .and(warp::body::form::<HashMap<String, String>>())
            .and(super::super::super::intake::peer_addr())
            .map(
                move |form: HashMap<String, String>, peer: Option<SocketAddr>| {
                    sign_in(&c, form.get("token").map_or("", String::as_str), peer)
                },
            )
    };
    let sign_out = {
        let c2 = c.clone();
        warp::path("logout")
            .and(warp::path::end())
            .and(warp::post())
            .and(auth::form(c))
            .map(move |s: Session, _: Form| sign_out(&c2, &s))
    };
    show.or(sign_in).unify().or(sign_out).unify()
}

/// The sign-in page; `wrong` after a wrong token.
pub fn form_page(c: &Console, status: StatusCode, wrong: Option<bool>) -> warp::reply::Response {
    let idle = humantime::format_duration(c.config.admin.session_idle).to_string();
    view::page(
        c,
        None,
        status,
        ("login.html", ""),
        minijinja::context! { wrong => wrong.unwrap_or(false), idle => idle },
    )
}

fn sign_in(c: &Console, given: &str, peer: Option<SocketAddr>) -> warp::reply::Response {
    let Some(expected) = &c.token else {
        return view::see_other("/ui/");
    };
    if !auth::same_secret(given.trim(), expected) {
        tracing::warn!(peer = ?peer.map(|p| p.ip()), "console sign-in refused: wrong admin token");
        return form_page(c, StatusCode::UNAUTHORIZED, Some(true));
    }
    let session = match c.sessions.create() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "console: cannot make a session");
            return view::refused(
                c,
                None,
                StatusCode::SERVICE_UNAVAILABLE,
                "Cannot sign in right now",
                "The system's random number generator failed; the daemon's log has the details.",
            );
        }
    };
    tracing::info!(peer = ?peer.map(|p| p.ip()), "console: signed in");
    with_cookie(
        view::see_other("/ui/"),
        &auth::cookie(Some(&session), c.tls),
    )
}

fn sign_out(c: &Console, s: &Session) -> warp::reply::Response {
    c.sessions.remove(&s.id);
    let to = if c.token.is_some() {
        "/ui/login"
    } else {
        "/ui/"
    };
    with_cookie(view::see_other(to), &auth::cookie(None, c.tls))
}

fn with_cookie(mut r: warp::reply::Response, cookie: &str) -> warp::reply::Response {
    if let Ok(v) = cookie.parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}
