//! The admin API under `/api` (DESIGN.md §11, docs/api.md): JSON, lists newest first with a
//! keyset cursor. Every request is checked first (`admin.token` as a Bearer token, or with none
//! configured loopback clients only), before its route or body is looked at, so a stranger
//! learns nothing, not even which routes exist.
//!
//! One file per resource; [`routes`] maps (method, path) to them, and every failure is an
//! [`AdminError`] that the one rejection handler turns into `{"error"}` with its status.

mod access;
mod error;
mod events;
mod flags;
mod jobs;
mod params;
mod rules;
mod simulate;
mod timers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::Notify;
use warp::http::{HeaderMap, Method};
use warp::{Buf, Filter, Rejection, Reply};

pub use error::AdminError;
use params::Params;

use super::rejection::ApiError;
use crate::journal::{Journal, Reader};
use crate::rules::live::LiveRules;
use crate::sources::Sources;

/// What the API's routes share.
pub struct Api {
    pub reader: Reader,
    /// Writes (replay, retry, resolve) go through the daemon's group-commit writer.
    pub journal: Journal,
    pub rules: Arc<LiveRules>,
    /// For `simulate`: how each platform's payload becomes an event.
    pub sources: Sources,
    /// `admin.token`; `None`: loopback clients only.
    pub token: Option<String>,
    /// Request bodies (`simulate`) are refused past this (`intake.max_body`)…
    pub max_body: u64,
    /// …or when they take longer than this to arrive (`intake.header_timeout`).
    pub body_timeout: Duration,
    /// Rung after jobs are created or re-queued, so the dispatcher looks at once.
    pub jobs_changed: Arc<Notify>,
}

/// The routes, as (method, path pattern): `{}` is an id.
const ROUTES: &[(Method, &str, Endpoint)] = &[
    (Method::GET, "events", Endpoint::Events),
    (Method::GET, "events/{}", Endpoint::Event),
    (Method::POST, "events/{}/replay", Endpoint::Replay),
    (Method::GET, "jobs", Endpoint::Jobs),
    (Method::POST, "jobs/retry", Endpoint::RetryAll),
    (Method::GET, "jobs/{}", Endpoint::Job),
    (Method::POST, "jobs/{}/retry", Endpoint::Retry),
    (Method::GET, "flags", Endpoint::Flags),
    (Method::POST, "flags/{}/resolve", Endpoint::Resolve),
    (Method::GET, "rules", Endpoint::Rules),
    (Method::POST, "simulate", Endpoint::Simulate),
    (Method::GET, "timers", Endpoint::Timers),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Events,
    Event,
    Replay,
    Jobs,
    RetryAll,
    Job,
    Retry,
    Flags,
    Resolve,
    Rules,
    Simulate,
    Timers,
}

/// A matched route: what to run, the id in its path, and the query parameters.
struct Call {
    endpoint: Endpoint,
    id: String,
    params: Params,
}

/// Every request under `/api`.
pub fn route(
    api: Arc<Api>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let with_api = warp::any().map(move || api.clone());
    warp::path("api")
        .and(warp::path::tail())
        .and(warp::method())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(super::intake::peer_addr())
        .and(warp::body::stream())
        .and(with_api)
        .and_then(
            |tail: warp::path::Tail, method, query: String, headers, peer, body, api| async move {
                let request = Request {
                    path: tail.as_str().to_string(),
                    method,
                    query,
                    headers,
                    peer,
                };
                handle(api, request, body)
                    .await
                    .map_err(|e| warp::reject::custom(ApiError::Admin(e)))
            },
        )
}

/// The parts of a request the API reads before its body.
struct Request {
    path: String,
    method: Method,
    query: String,
    headers: HeaderMap,
    peer: Option<SocketAddr>,
}

async fn handle<S, B>(
    api: Arc<Api>,
    request: Request,
    body: S,
) -> Result<warp::reply::Response, AdminError>
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    access::allow(&api, &request)?;
    let call = find(&request)?;
    let api = api.as_ref();
    let Call {
        endpoint,
        id,
        params,
    } = call;
    let reply = match endpoint {
        Endpoint::Events => events::list(api, params).await?,
        Endpoint::Event => events::show(api, &id, params).await?,
        Endpoint::Replay => events::replay(api, &id, params).await?,
        Endpoint::Jobs => jobs::list(api, params).await?,
        Endpoint::RetryAll => jobs::retry_all(api, params).await?,
        Endpoint::Job => jobs::show(api, &id, params).await?,
        Endpoint::Retry => jobs::retry(api, &id, params).await?,
        Endpoint::Flags => flags::list(api, params).await?,
        Endpoint::Resolve => flags::resolve(api, &id, params).await?,
        Endpoint::Rules => rules::status(api, params).await?,
        Endpoint::Timers => timers::list(api, params).await?,
        Endpoint::Simulate => {
            let body = read_body(api, body).await?;
            simulate::run(api, params, body).await?
        }
    };
    Ok(warp::reply::json(&reply).into_response())
}

/// The route `request` names; 405 when the path exists with another method, 404 otherwise.
fn find(request: &Request) -> Result<Call, AdminError> {
    let segments: Vec<&str> = request.path.split('/').filter(|s| !s.is_empty()).collect();
    let mut path_known = false;
    for (method, pattern, endpoint) in ROUTES {
        let Some(id) = matches(pattern, &segments) else {
            continue;
        };
        if method != request.method {
            path_known = true;
            continue;
        }
        return Ok(Call {
            endpoint: *endpoint,
            id,
            params: Params::parse(&request.query)?,
        });
    }
    let shown = format!("/api/{}", segments.join("/"));
    match path_known {
        true => Err(AdminError::MethodNotAllowed {
            path: shown,
            method: request.method.to_string(),
        }),
        false => Err(AdminError::NoRoute(shown)),
    }
}

/// The id a pattern captures from `segments` (empty when it has none), if they match.
fn matches(pattern: &str, segments: &[&str]) -> Option<String> {
    let parts: Vec<&str> = pattern.split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut id = String::new();
    for (part, segment) in parts.iter().zip(segments) {
        match *part {
            "{}" => id = percent_decode(segment),
            literal if literal == *segment => {}
            _ => return None,
        }
    }
    Some(id)
}

/// A path segment with `%XX` escapes decoded (ids are plain, but clients may escape them).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The request body, bounded in size and in time.
async fn read_body<S, B>(api: &Api, body: S) -> Result<Bytes, AdminError>
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let read = super::intake::collect_limited(body, api.max_body);
    match tokio::time::timeout(api.body_timeout, read).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(ApiError::TooLarge { max })) => Err(AdminError::TooLarge { max }),
        Ok(Err(e)) => Err(AdminError::BadBody(e.to_string())),
        Err(_) => Err(AdminError::BodyTimeout(api.body_timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_capture_the_id_and_need_every_segment() {
        assert_eq!(matches("events/{}", &["events", "e1"]), Some("e1".into()));
        assert_eq!(matches("events/{}", &["events"]), None);
        assert_eq!(
            matches("jobs/{}/retry", &["jobs", "7", "retry"]),
            Some("7".into())
        );
        assert_eq!(matches("jobs/retry", &["jobs", "7"]), None);
        assert_eq!(percent_decode("a%2Fb%zz"), "a/b%zz");
    }
}
