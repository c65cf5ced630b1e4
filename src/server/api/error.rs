//! Everything the admin API refuses a request for; [`AdminError::status`] is its HTTP status.
//! The rejection handler (`server::rejection`) turns it into `{"error": "<message>"}`.

use std::time::Duration;

use warp::http::StatusCode;

use crate::journal::JournalError;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("missing or wrong admin token (send Authorization: Bearer <admin.token>)")]
    Unauthorized,
    #[error("no admin.token is set: the API answers clients on this machine only")]
    NotLocal,
    #[error("no API route {0}; see docs/api.md for the routes")]
    NoRoute(String),
    #[error("{path} does not take {method}")]
    MethodNotAllowed { path: String, method: String },
    /// A query parameter (named) with a bad value, or one the route does not take.
    #[error("parameter `{name}`: {message}")]
    BadParam { name: String, message: String },
    #[error("bad request body: {0}")]
    BadBody(String),
    #[error("the body is larger than intake.max_body ({max} bytes)")]
    TooLarge { max: u64 },
    #[error("the body did not arrive within {0:?}")]
    BodyTimeout(Duration),
    #[error("{0}")]
    NotFound(String),
    /// The request is understood but the thing is not in a state that allows it.
    #[error("{0}")]
    Conflict(String),
    #[error("no rules are running (the last reload failed: see GET /api/rules)")]
    NoRules,
    #[error("the journal cannot be read or written right now: {0}")]
    Journal(String),
}

impl AdminError {
    pub fn status(&self) -> StatusCode {
        match self {
            AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminError::NotLocal => StatusCode::FORBIDDEN,
            AdminError::NoRoute(_) | AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AdminError::BadParam { .. } | AdminError::BadBody(_) => StatusCode::BAD_REQUEST,
            AdminError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AdminError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::NoRules | AdminError::Journal(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub(super) fn param(name: &str, message: impl Into<String>) -> AdminError {
        AdminError::BadParam {
            name: name.to_string(),
            message: message.into(),
        }
    }
}

/// A journal failure, as much of it as anyone may see (no file paths).
impl From<JournalError> for AdminError {
    fn from(e: JournalError) -> AdminError {
        tracing::warn!(target: "storeflow::server::api", error = %e, "admin API: journal failed");
        AdminError::Journal(e.public_reason())
    }
}
