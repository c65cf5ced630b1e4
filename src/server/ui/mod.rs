//! The console at `/ui/` (DESIGN.md §11): server-rendered pages (minijinja templates compiled
//! into the binary, autoescaped), usable without JavaScript; the vendored htmx only enhances
//! (links and forms swap the page body instead of reloading it).
//!
//! Who gets in is decided in one place, [`auth`]; each page is one file in [`pages`]; every page
//! is rendered through [`view::page`] in the shared layout. Refusals (401 sign-in, 403) are
//! rejections turned into pages here, so a console user never sees the API's JSON errors.

mod assets;
pub mod auth;
mod pages;
mod view;

use std::sync::Arc;

use minijinja::Environment;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

use crate::config::Config;
use crate::journal::{Journal, Reader};
use crate::rules::live::LiveRules;
use crate::rules::LoadOptions;
use crate::sources::Sources;
use auth::{Refusal, Sessions};

/// What the console's pages read and change.
pub struct Console {
    pub reader: Reader,
    pub journal: Journal,
    pub rules: Arc<LiveRules>,
    /// How `/ui/rules` loads the rules again to show every diagnostic.
    pub load_options: LoadOptions,
    pub config: Arc<Config>,
    /// For "try a payload": the adapters that turn a body into an event.
    pub sources: Sources,
    /// Sources running without a secret (shown on the overview).
    pub insecure_sources: Vec<&'static str>,
    /// `admin.token`; `None`: clients on this machine only, no sign-in.
    pub token: Option<String>,
    pub sessions: Sessions,
    /// The listener serves HTTPS: the session cookie is `Secure`.
    pub tls: bool,
    views: Environment<'static>,
}

impl Console {
    /// The console of a daemon running with `config`.
    pub fn new(config: Arc<Config>, parts: ConsoleParts) -> Console {
        let token = Some(config.admin.token.expose().to_string()).filter(|t| !t.is_empty());
        Console {
            reader: parts.reader,
            journal: parts.journal,
            rules: parts.rules,
            load_options: parts.load_options,
            sources: crate::sources::registry(&config),
            insecure_sources: parts.insecure_sources,
            token,
            sessions: Sessions::new(config.admin.session_idle),
            tls: config.tls.is_some(),
            views: view::environment(),
            config,
        }
    }
}

/// What the daemon hands the console.
pub struct ConsoleParts {
    pub reader: Reader,
    pub journal: Journal,
    pub rules: Arc<LiveRules>,
    pub load_options: LoadOptions,
    pub insecure_sources: Vec<&'static str>,
}

/// Every `/ui` route.
pub fn route(
    c: Arc<Console>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    // warp's `end()` matches `/ui` and `/ui/` alike; only the bare one is sent on.
    let bare = warp::path("ui")
        .and(warp::path::end())
        .and(warp::path::full())
        .and_then(|p: warp::path::FullPath| async move {
            match p.as_str() {
                "/ui" => Ok(view::see_other("/ui/")),
                _ => Err(warp::reject::not_found()),
            }
        });
    let under = warp::path("ui").and(
        assets::route()
            .or(pages::login::route(c.clone()))
            .unify()
            .or(pages::routes(c.clone()))
            .unify(),
    );
    let recover_with = c.clone();
    bare.or(under)
        .unify()
        .recover(move |r: Rejection| {
            let c = recover_with.clone();
            async move { refusal(&c, r) }
        })
        .unify()
}

/// A refusal as a page; any other rejection goes on to the daemon's rejection handler.
fn refusal(c: &Console, r: Rejection) -> Result<warp::reply::Response, Rejection> {
    let Some(refusal) = r.find::<Refusal>() else {
        return bad_form(c, &r).ok_or(r);
    };
    Ok(match refusal {
        Refusal::SignIn => pages::login::form_page(c, StatusCode::UNAUTHORIZED, None),
        Refusal::NotLocal => view::refused(
            c,
            None,
            StatusCode::FORBIDDEN,
            "Only on this machine",
            "No admin.token is set, so the console answers clients on this machine only. Set \
             admin.token in storeflow.yaml to sign in from elsewhere.",
        ),
        Refusal::Csrf => view::refused(
            c,
            None,
            StatusCode::FORBIDDEN,
            "This form was refused",
            "It did not carry this session's CSRF token: it came from another site, or from a \
             page older than your session. Go back, reload the page and try again.",
        ),
    })
}

/// A form the console could not read (no length, not a form, too large) as a page.
fn bad_form(c: &Console, r: &Rejection) -> Option<warp::reply::Response> {
    let too_large = r.find::<warp::reject::PayloadTooLarge>().is_some();
    let unreadable = r.find::<warp::reject::LengthRequired>().is_some()
        || r.find::<warp::reject::UnsupportedMediaType>().is_some()
        || r.find::<warp::filters::body::BodyDeserializeError>()
            .is_some();
    let (status, message) = match (too_large, unreadable) {
        (true, _) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "The form is larger than the console takes (2 MiB).",
        ),
        (false, true) => (
            StatusCode::BAD_REQUEST,
            "The request did not carry a form the console can read. Go back and send the form again.",
        ),
        (false, false) => return None,
    };
    Some(view::refused(
        c,
        None,
        status,
        "This form could not be read",
        message,
    ))
}

/// A page handler's early answer (an error page), boxed: a response is large.
pub(crate) type Early = Box<warp::reply::Response>;

/// A page's answer when the journal cannot be read: used by the page handlers.
pub(crate) fn or_unavailable<T, E: std::fmt::Display>(
    c: &Console,
    session: &auth::Session,
    read: Result<T, E>,
) -> Result<T, Early> {
    read.map_err(|e| Box::new(view::unavailable(c, session, e)))
}

/// A response from either branch of a page handler.
pub(crate) fn either(r: Result<warp::reply::Response, Early>) -> warp::reply::Response {
    match r {
        Ok(r) => r,
        Err(r) => *r,
    }
}
