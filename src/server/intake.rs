//! `POST /hooks/{source}[/{token}]`: verify, normalize, journal, and only then answer 200.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use warp::http::HeaderMap;
use warp::{Buf, Filter, Rejection};

use super::rejection::ApiError;
use crate::event::Timestamp;
use crate::journal::Journal;
use crate::sources::{IntakeRequest, Source, Sources};

/// What the intake route needs; shared by every request.
pub struct Intake {
    pub sources: Sources,
    pub journal: Journal,
    pub max_body: u64,
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The webhook route.
pub fn route(
    intake: Arc<Intake>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let max_body = intake.max_body;
    let with_intake = warp::any().map(move || intake.clone());
    let token_segment = warp::path::param::<String>()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();
    warp::post()
        .and(warp::path("hooks"))
        .and(with_intake)
        .and(warp::path::param::<String>())
        .and_then(|intake: Arc<Intake>, name: String| async move {
            match intake.sources.get(&name) {
                Some(source) => Ok((intake.clone(), source.clone())),
                None => Err(warp::reject::custom(ApiError::UnknownSource {
                    name,
                    known: intake.sources.names(),
                })),
            }
        })
        .untuple_one()
        .and(token_segment)
        .and(warp::path::end())
        .and(warp::query::<TokenQuery>())
        .and(warp::header::headers_cloned())
        .and(warp::addr::remote())
        .and(limited_body(max_body))
        .and_then(handle)
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    intake: Arc<Intake>,
    source: Arc<dyn Source>,
    path_token: Option<String>,
    query: TokenQuery,
    headers: HeaderMap,
    peer: Option<SocketAddr>,
    body: Bytes,
) -> Result<warp::reply::Response, Rejection> {
    let received_at = Timestamp::now();
    let request = IntakeRequest {
        headers: &headers,
        body,
        peer,
        token: path_token.or(query.token),
    };
    let reject = |e: ApiError| {
        tracing::info!(source = source.name(), status = e.status().as_u16(), reason = %e, "webhook refused");
        warp::reject::custom(e)
    };
    let verified = source.verify(request).map_err(|e| reject(e.into()))?;
    let incoming = source
        .normalize(&verified, received_at)
        .map_err(|e| reject(e.into()))?;
    let topic = incoming.event.topic.clone();
    let appended = intake.journal.append(incoming).await.map_err(|e| {
        tracing::error!(error = %e, "journal append failed; answering 503");
        reject(ApiError::JournalUnavailable)
    })?;
    tracing::info!(event_id = %appended.event_id, %topic, duplicate = appended.duplicate, "webhook accepted");
    Ok(warp::reply::json(&appended).into_response())
}

use warp::Reply;

/// The request body, refused with 413 once it passes `max` bytes: at once when `Content-Length`
/// says so, and while reading when the body is chunked.
fn limited_body(max: u64) -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and_then(move |len: Option<u64>| async move {
            match len {
                Some(len) if len > max => Err(warp::reject::custom(ApiError::TooLarge { max })),
                _ => Ok(()),
            }
        })
        .untuple_one()
        .and(warp::body::stream())
        .and_then(move |stream| collect_limited(stream, max))
}

async fn collect_limited<S, B>(stream: S, max: u64) -> Result<Bytes, Rejection>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut stream = std::pin::pin!(stream);
    let mut body = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk =
            chunk.map_err(|e| warp::reject::custom(ApiError::BodyRead(e.to_string())))?;
        if (body.len() + chunk.remaining()) as u64 > max {
            return Err(warp::reject::custom(ApiError::TooLarge { max }));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            body.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(body.freeze())
}
