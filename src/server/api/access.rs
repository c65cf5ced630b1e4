//! Who may use the API: `admin.token` as `Authorization: Bearer` (compared in constant time, the
//! same check as `/metrics`), or with no token configured clients on this machine only.

use super::{AdminError, Api, Request};
use crate::server::metrics::{check, Refused};
use crate::telemetry;

/// Refuses a request that shows no (or the wrong) token, or, with none configured, that does
/// not come from this machine. The log line names the path and the peer, never a token.
pub(super) fn allow(api: &Api, request: &Request) -> Result<(), AdminError> {
    let refused = match check(api.token.as_deref(), &request.headers, request.peer) {
        Ok(()) => return Ok(()),
        Err(Refused::Token) => AdminError::Unauthorized,
        Err(Refused::NotLocal) => AdminError::NotLocal,
    };
    let why = match refused {
        AdminError::Unauthorized => "missing or wrong admin token",
        _ => "no admin.token set and the client is not on this machine",
    };
    // Only the path's first segment: the rest may be anything a stranger typed.
    let path = request
        .path
        .split('/')
        .find(|s| !s.is_empty())
        .unwrap_or("");
    telemetry::admin_refused(&format!("/api/{path}"), request.peer.map(|p| p.ip()), why);
    Err(refused)
}
