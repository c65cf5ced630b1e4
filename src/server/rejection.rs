//! The one place where errors become HTTP responses. Every error body is
//! `{"error": "<what was wrong>"}`; none echoes a secret or an expected signature.

use std::convert::Infallible;

use warp::http::StatusCode;
use warp::reject::Reject;
use warp::{Rejection, Reply};

use crate::sources::IntakeError;

/// Everything the HTTP layer can refuse a request for.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Intake(#[from] IntakeError),
    #[error("no route {path}; {}", not_found_message(routes))]
    NotFound { path: String, routes: Vec<String> },
    #[error("method not allowed; webhooks are POSTed")]
    MethodNotAllowed,
    #[error("body is larger than intake.max_body ({max} bytes)")]
    TooLarge { max: u64 },
    #[error("cannot read the request body: {0}")]
    BodyRead(String),
    #[error("the event journal cannot be written right now; retry later")]
    JournalUnavailable,
    #[error(transparent)]
    Admin(#[from] super::api::AdminError),
}

impl Reject for ApiError {}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Intake(IntakeError::Unauthorized(_)) => StatusCode::UNAUTHORIZED,
            ApiError::Intake(IntakeError::Forbidden(_)) => StatusCode::FORBIDDEN,
            ApiError::Intake(IntakeError::Malformed(_)) | ApiError::BodyRead(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::NotFound { .. } | ApiError::Intake(IntakeError::UnknownShop(_)) => {
                StatusCode::NOT_FOUND
            }
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::JournalUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Admin(e) => e.status(),
        }
    }
}

/// A JSON error response.
pub fn error_reply(status: StatusCode, message: &str) -> warp::reply::Response {
    let body = warp::reply::json(&serde_json::json!({ "error": message }));
    warp::reply::with_status(body, status).into_response()
}

/// The 404 text: every route this daemon serves.
fn not_found_message(routes: &[String]) -> String {
    format!(
        "webhooks are POSTed to {}; GET /healthz for health, GET /metrics for metrics",
        routes.join(", ")
    )
}

/// Maps every rejection (ours and warp's) to a status and a message. `routes` are the webhook
/// routes, listed in a 404.
pub async fn recover(
    r: Rejection,
    routes: std::sync::Arc<Vec<String>>,
) -> Result<warp::reply::Response, Infallible> {
    let (status, message) = if let Some(e) = r.find::<ApiError>() {
        (e.status(), e.to_string())
    } else if r.is_not_found() {
        (
            StatusCode::NOT_FOUND,
            format!("not found; {}", not_found_message(&routes)),
        )
    } else if r.find::<warp::reject::MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed; webhooks are POSTed".to_string(),
        )
    } else if let Some(e) = r.find::<warp::reject::InvalidHeader>() {
        (StatusCode::BAD_REQUEST, e.to_string())
    } else if r.find::<warp::reject::InvalidQuery>().is_some() {
        (StatusCode::BAD_REQUEST, "invalid query string".to_string())
    } else if r.find::<warp::reject::PayloadTooLarge>().is_some() {
        (StatusCode::PAYLOAD_TOO_LARGE, "body too large".to_string())
    } else {
        tracing::warn!(rejection = ?r, "unhandled rejection");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error".to_string(),
        )
    };
    Ok(error_reply(status, &message))
}
