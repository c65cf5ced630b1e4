//! `POST /hooks/{source}[/{token}]`: verify, normalize, journal, and only then answer 200.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use warp::http::HeaderMap;
use warp::{Buf, Filter, Rejection};

use super::conn::PeerAddr;
use super::dynamic;
pub use super::health::SecretCounts;
use super::rejection::ApiError;
use crate::journal::{Journal, Reader};
use crate::model::event::Timestamp;
use crate::rules::live::LiveRules;
use crate::sources::{IntakeRequest, Route, Source, Sources};
use crate::telemetry::{self, metrics, metrics::WebhookOutcome};

/// What the intake route needs; shared by every request.
pub struct Intake {
    pub sources: Sources,
    pub journal: Journal,
    pub max_body: u64,
    /// For Sellix dynamic products, whose answer a rule's script produces.
    pub rules: Arc<LiveRules>,
    /// Reads earlier answers to repeated dynamic-product deliveries.
    pub reader: Reader,
    /// Deliveries per shop and secret, for `/healthz`.
    pub counts: Arc<SecretCounts>,
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The webhook route: any method on `/hooks/…`, so a known route with the wrong method gets 405
/// and an unknown one 404 with the valid routes.
pub fn route(
    intake: Arc<Intake>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let max_body = intake.max_body;
    let with_intake = warp::any().map(move || intake.clone());
    warp::path("hooks")
        .and(warp::path::tail())
        .and(warp::method())
        .and(with_intake)
        .and_then(resolve)
        .untuple_one()
        .and(warp::query::<TokenQuery>())
        .and(warp::header::headers_cloned())
        .and(peer_addr())
        .and(limited_body(max_body))
        .and_then(handle)
}

/// The TCP peer: recorded by our own accept loop ([`super::conn`]), or by warp (`warp::test`).
pub(super) fn peer_addr(
) -> impl Filter<Extract = (Option<SocketAddr>,), Error = std::convert::Infallible> + Clone {
    warp::addr::remote()
        .and(warp::ext::optional::<PeerAddr>())
        .map(|warp: Option<SocketAddr>, ours: Option<PeerAddr>| ours.map(|p| p.0).or(warp))
}

/// The source and shop a `/hooks/…` path names; 404 listing the routes when none, 405 when the
/// route exists but the method is not POST.
async fn resolve(
    tail: warp::path::Tail,
    method: warp::http::Method,
    intake: Arc<Intake>,
) -> Result<(Arc<Intake>, Arc<dyn Source>, Route), Rejection> {
    let mut segments = tail.as_str().split('/').filter(|s| !s.is_empty());
    let name = segments.next();
    let rest: Vec<&str> = segments.collect();
    let found = name.and_then(|name| {
        let source = intake.sources.get(name)?;
        Some((source.clone(), source.route(&rest)?))
    });
    let Some((source, route)) = found else {
        return Err(not_found(&intake, name, rest.is_empty()));
    };
    if method != warp::http::Method::POST {
        return Err(warp::reject::custom(ApiError::MethodNotAllowed));
    }
    Ok((intake.clone(), source, route))
}

/// The 404 listing the routes. Only the source segment is shown: the rest may hold a token.
fn not_found(intake: &Intake, name: Option<&str>, alone: bool) -> Rejection {
    let path = match (name, alone) {
        (None, _) => "/hooks".to_string(),
        (Some(name), true) => format!("/hooks/{name}"),
        (Some(name), false) => format!("/hooks/{name}/…"),
    };
    warp::reject::custom(ApiError::NotFound {
        path,
        routes: intake.sources.routes(),
    })
}

async fn handle(
    intake: Arc<Intake>,
    source: Arc<dyn Source>,
    route: Route,
    query: TokenQuery,
    headers: HeaderMap,
    peer: Option<SocketAddr>,
    body: Result<Bytes, ApiError>,
) -> Result<warp::reply::Response, Rejection> {
    let received_at = Timestamp::now();
    let started = std::time::Instant::now();
    let answered = |outcome| metrics::webhook_answered(source.name(), outcome, started.elapsed());
    let shop = route.shop.clone();
    let reject = |e: ApiError| {
        let status = e.status().as_u16();
        telemetry::webhook_refused(source.name(), &shop, status, &e);
        answered(WebhookOutcome::of_status(status));
        warp::reject::custom(e)
    };
    let request = IntakeRequest {
        headers: &headers,
        body: body.map_err(reject)?,
        peer,
        token: route.token.or(query.token),
    };
    let verified = source
        .verify_shop(&shop, request)
        .map_err(|e| reject(e.into()))?;
    let secret = verified.secret();
    let incoming = source
        .normalize(&verified, received_at)
        .map_err(|e| reject(e.into()))?;
    let topic = incoming.event.topic.clone();
    let dynamic = (topic == dynamic::TOPIC).then(|| incoming.event.clone());
    let appended = journal_append(&intake, incoming)
        .await
        .inspect_err(|_| answered(WebhookOutcome::Unavailable))?;
    answered(if appended.duplicate {
        WebhookOutcome::Duplicate
    } else {
        WebhookOutcome::Accepted
    });
    telemetry::webhook_accepted(
        &appended.event_id,
        &topic,
        &shop,
        secret.as_str(),
        appended.duplicate,
    );
    if !appended.duplicate {
        intake.counts.record(source.name(), &shop, secret);
    }
    if let Some(event) = dynamic {
        if let Some(reply) = dynamic_reply(&intake, event, &appended).await {
            return Ok(reply);
        }
    }
    Ok(warp::reply::json(&appended).into_response())
}

/// Appends to the journal, or answers 503: at once while commits are failing (no write is
/// queued that would fail anyway), or when this commit failed.
async fn journal_append(
    intake: &Intake,
    incoming: crate::model::event::Incoming,
) -> Result<crate::journal::Appended, Rejection> {
    if let Err(problem) = intake.journal.admit() {
        telemetry::intake_unavailable(Ok(&problem.reason));
        return Err(warp::reject::custom(ApiError::JournalUnavailable));
    }
    intake.journal.append(incoming).await.map_err(|e| {
        telemetry::intake_unavailable(Err(&e));
        warp::reject::custom(ApiError::JournalUnavailable)
    })
}

/// The product text for a dynamic-product webhook (the journaled one for a repeated delivery);
/// `None` when no rule with a script listens to it.
async fn dynamic_reply(
    intake: &Intake,
    mut event: crate::model::event::Event,
    appended: &crate::journal::Appended,
) -> Option<warp::reply::Response> {
    let answer = if appended.duplicate {
        let key = dynamic::state_key(&appended.event_id);
        match intake.reader.state(&key).await {
            Ok(Some(kept)) => dynamic::from_kept(kept),
            Ok(None) => dynamic::Answer::NoScript,
            Err(e) => dynamic::Answer::Failed(format!("reading the kept answer failed: {e}")),
        }
    } else {
        event.id = appended.event_id.clone();
        dynamic::answer(&intake.rules, &intake.journal, event).await
    };
    Some(match answer {
        dynamic::Answer::NoScript => return None,
        dynamic::Answer::Produced(body) => {
            warp::reply::with_header(body, "content-type", "text/plain; charset=utf-8")
                .into_response()
        }
        dynamic::Answer::Failed(e) | dynamic::Answer::TimedOut(e) => {
            tracing::error!(event_id = %appended.event_id, error = %e, "dynamic product script failed");
            let status = warp::http::StatusCode::INTERNAL_SERVER_ERROR;
            super::rejection::error_reply(
                status,
                &format!("the dynamic product script failed: {e}"),
            )
        }
    })
}

use warp::Reply;

/// The request body, refused with 413 once it passes `max` bytes: at once when `Content-Length`
/// says so, and while reading when the body is chunked. The refusal is handed to the handler,
/// which knows the source to count it for.
fn limited_body(
    max: u64,
) -> impl Filter<Extract = (Result<Bytes, ApiError>,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .then(move |len: Option<u64>, stream| async move {
            match len {
                Some(len) if len > max => Err(ApiError::TooLarge { max }),
                _ => collect_limited(stream, max).await,
            }
        })
}

pub(super) async fn collect_limited<S, B>(stream: S, max: u64) -> Result<Bytes, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut stream = std::pin::pin!(stream);
    // Most bodies arrive in one chunk: that chunk is the body, not copied (`copy_to_bytes` of
    // hyper's `Bytes` is a reference count). Only a second chunk starts a buffer.
    let mut first: Option<Bytes> = None;
    let mut rest: Option<BytesMut> = None;
    let mut len = 0u64;
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|e| ApiError::BodyRead(e.to_string()))?;
        len += chunk.remaining() as u64;
        if len > max {
            return Err(ApiError::TooLarge { max });
        }
        match (&first, &mut rest) {
            (None, _) => first = Some(chunk.copy_to_bytes(chunk.remaining())),
            (Some(head), None) => {
                let mut buf = BytesMut::with_capacity(len as usize);
                buf.extend_from_slice(head);
                rest.insert(buf).put(&mut chunk);
            }
            (Some(_), Some(buf)) => buf.put(&mut chunk),
        }
    }
    Ok(match (first, rest) {
        (_, Some(buf)) => buf.freeze(),
        (Some(head), None) => head,
        (None, None) => Bytes::new(),
    })
}
