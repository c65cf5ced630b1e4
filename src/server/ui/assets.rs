//! The console's static files, compiled into the binary: the vendored htmx (BSD Zero Clause,
//! its licence beside it in `assets/`), the stylesheet and the few lines of script that show
//! times in the browser's time zone. Public: they hold nothing about the shop.

use warp::http::header;
use warp::{Filter, Rejection, Reply};

/// The htmx release vendored here (from the npm registry, `htmx.org`).
pub const HTMX: &str = "htmx-2.0.11.min.js";

/// (name, content type, cache lifetime, body). The htmx file's name carries its version, so it
/// may be cached for good; the console's own files for an hour.
const FILES: &[(&str, &str, &str, &str)] = &[
    (
        HTMX,
        "text/javascript; charset=utf-8",
        "public, max-age=31536000, immutable",
        include_str!("assets/htmx-2.0.11.min.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        "public, max-age=3600",
        include_str!("assets/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        "public, max-age=3600",
        include_str!("assets/console.js"),
    ),
    (
        "htmx-LICENSE",
        "text/plain; charset=utf-8",
        "public, max-age=3600",
        include_str!("assets/htmx-LICENSE"),
    ),
];

/// `GET /ui/assets/{name}`.
pub fn route() -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path("assets")
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::get())
        .and_then(|name: String| async move {
            let Some((_, kind, cache, body)) = FILES.iter().find(|f| f.0 == name) else {
                return Err(warp::reject::not_found());
            };
            let mut r = warp::reply::Response::new((*body).into());
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(kind));
            h.insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static(cache),
            );
            Ok::<_, Rejection>(r.into_response())
        })
}
