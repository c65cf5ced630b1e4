//! The console's templates (compiled into the binary, autoescaped) and how a page becomes a
//! response: one shared layout, the session's cookie and CSRF token added in one place.

use minijinja::{Environment, Value};
use serde::Serialize;
use warp::http::{header, StatusCode};
use warp::Reply;

use super::auth::{self, Session};
use super::Console;
use crate::model::event::Timestamp;

/// Every template, by name. `.html` names turn autoescaping on.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("login.html", include_str!("templates/login.html")),
    ("refused.html", include_str!("templates/refused.html")),
    ("overview.html", include_str!("templates/overview.html")),
    ("events.html", include_str!("templates/events.html")),
    ("event.html", include_str!("templates/event.html")),
    ("jobs.html", include_str!("templates/jobs.html")),
    ("flags.html", include_str!("templates/flags.html")),
    ("timers.html", include_str!("templates/timers.html")),
    ("rules.html", include_str!("templates/rules.html")),
    ("try.html", include_str!("templates/try.html")),
];

/// The template environment.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        if let Err(e) = env.add_template(name, source) {
            // The templates are part of the binary; a test renders every one.
            tracing::error!(template = name, error = %e, "console template does not compile");
        }
    }
    env.add_function("when", when);
    env.add_filter("urlencode", |v: String| encode(&v));
    env
}

/// Percent-encodes a URL query value or path segment.
pub fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `when(ts)`: a `<time>` element in UTC, turned into the browser's time zone by the layout's
/// script (UTC stays when JavaScript is off).
fn when(ts: Value) -> Value {
    let text = ts.as_str().map(str::to_string).unwrap_or_default();
    let shown = text
        .replace('T', " ")
        .split('.')
        .next()
        .unwrap_or("")
        .trim_end_matches('Z')
        .to_string();
    let attr = minijinja::HtmlEscape(&text).to_string();
    let shown = minijinja::HtmlEscape(&shown).to_string();
    Value::from_safe_string(format!("<time datetime=\"{attr}\">{shown} UTC</time>"))
}

/// A time as templates take it.
pub fn ts(t: Timestamp) -> String {
    t.to_rfc3339()
}

/// What every page shows besides its own content.
#[derive(Serialize)]
struct Frame<'a> {
    csrf: &'a str,
    /// Whether there is a sign-out button (only with `admin.token`).
    signed_in: bool,
    nav: &'a str,
    version: &'static str,
}

/// Renders `template` with `ctx` (a map) and the frame, as a response with `status`.
pub fn page(
    c: &Console,
    session: Option<&Session>,
    status: StatusCode,
    (template, nav): (&str, &str),
    ctx: Value,
) -> warp::reply::Response {
    let frame = Frame {
        csrf: session.map_or("", |s| s.csrf.as_str()),
        signed_in: c.token.is_some() && session.is_some(),
        nav,
        version: env!("CARGO_PKG_VERSION"),
    };
    let rendered = c.views.get_template(template).and_then(|t| {
        t.render(minijinja::context! { frame => minijinja::value::Serde(frame), ..ctx })
    });
    let mut response = match rendered {
        Ok(html) => warp::reply::with_status(warp::reply::html(html), status).into_response(),
        Err(e) => {
            tracing::error!(template, error = %e, "console page failed to render");
            let body = "<!doctype html><title>storeflow</title><p>This page failed to render; \
                        the daemon's log has the details.";
            warp::reply::with_status(warp::reply::html(body), StatusCode::INTERNAL_SERVER_ERROR)
                .into_response()
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    // No other site may frame the console (its buttons retry jobs) or learn its URLs.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static("frame-ancestors 'none'"),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    if let Some(s) = session.filter(|s| s.fresh) {
        if let Ok(v) = auth::cookie(Some(s), c.tls).parse() {
            headers.insert(header::SET_COOKIE, v);
        }
    }
    response
}

/// A 303 to `location` (after a form: the browser GETs the result page).
pub fn see_other(location: &str) -> warp::reply::Response {
    let mut r = warp::reply::with_status(warp::reply(), StatusCode::SEE_OTHER).into_response();
    if let Ok(v) = location.parse() {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// The page that says why a request was refused or failed.
pub fn refused(
    c: &Console,
    session: Option<&Session>,
    status: StatusCode,
    title: &str,
    message: &str,
) -> warp::reply::Response {
    page(
        c,
        session,
        status,
        ("refused.html", ""),
        minijinja::context! { title => title, message => message },
    )
}

/// The page for a journal that could not be read.
pub fn unavailable(
    c: &Console,
    session: &Session,
    error: impl std::fmt::Display,
) -> warp::reply::Response {
    tracing::warn!(error = %error, "console: cannot read the journal");
    refused(
        c,
        Some(session),
        StatusCode::SERVICE_UNAVAILABLE,
        "The journal cannot be read right now",
        "Try again in a moment; /healthz and the daemon's log say what is wrong.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        let env = environment();
        for (name, _) in TEMPLATES {
            env.get_template(name).unwrap();
        }
    }

    #[test]
    fn times_are_escaped_and_marked_utc() {
        let v = when(Value::from("2026-01-02T03:04:05.678Z"));
        assert_eq!(
            v.to_string(),
            "<time datetime=\"2026-01-02T03:04:05.678Z\">2026-01-02 03:04:05 UTC</time>"
        );
        let v = when(Value::from("<b>"));
        assert!(v.to_string().contains("&lt;b&gt;"));
    }
}
