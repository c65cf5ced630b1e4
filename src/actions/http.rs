//! The `http` action (call any endpoint, optionally signed) and the HTTP plumbing it shares with
//! `slack`: the one client, and how an HTTP answer becomes success, retryable or permanent.
//!
//! Receivers must be able to trust and de-duplicate what we send, so every request carries
//! `X-Storeflow-Idempotency-Key` (the same on every retry of a job) and, with `sign_secret`,
//! `X-Storeflow-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>`. Redirects are
//! followed only to the same host: a signed request must not be replayed to a third party.

use std::time::{Duration, SystemTime};

use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{redirect, Client, Method, Response, StatusCode};
use sha2::Sha256;

use super::params::Params;
use super::{secrets, ActionError, Executor, JobContext};
use crate::model::actions::ActionKind;

/// Header carrying the job's idempotency key (`{event_id}/{rule}/{action_index}`).
pub const IDEMPOTENCY_HEADER: &str = "x-storeflow-idempotency-key";
/// Header carrying `sha256=<hex>` when `sign_secret` is given.
pub const SIGNATURE_HEADER: &str = "x-storeflow-signature";

/// Longest part of a response body quoted in an error message.
const EXCERPT_CHARS: usize = 200;

/// The shared client: one connection pool, `delivery.timeout` per request, same-host redirects.
pub(crate) fn client(timeout: Duration) -> Result<Client, reqwest::Error> {
    Client::builder()
        .timeout(timeout)
        .user_agent(concat!("storeflow/", env!("CARGO_PKG_VERSION")))
        .redirect(redirect::Policy::custom(same_host_only))
        .build()
}

fn same_host_only(attempt: redirect::Attempt<'_>) -> redirect::Action {
    let first = attempt.previous().first().and_then(|u| u.host_str());
    if attempt.previous().len() > 5 {
        attempt.error("more than 5 redirects")
    } else if first.is_some() && attempt.url().host_str() == first {
        attempt.follow()
    } else {
        // The 3xx answer itself is returned and reported as a permanent failure.
        attempt.stop()
    }
}

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`: the `X-Storeflow-Signature` value.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Calls `url` with `method`, `headers` and a `json` or `body` payload.
pub struct HttpAction {
    client: Client,
    /// `http.allow_hosts`; when not empty, every request's host must be listed.
    allow_hosts: Vec<String>,
}

impl HttpAction {
    pub fn new(client: Client, allow_hosts: Vec<String>) -> HttpAction {
        HttpAction {
            client,
            allow_hosts,
        }
    }

    async fn send(&self, request: Request, job: &JobContext) -> Result<(), ActionError> {
        let response = self
            .client
            .request(request.method, &request.url)
            .headers(request.headers)
            .header(IDEMPOTENCY_HEADER, header_value(&job.idempotency_key())?)
            .body(request.body)
            .send()
            .await
            .map_err(|e| transport_error(&request.url, e))?;
        check_response(&format!("http {}", request.url), response).await?;
        Ok(())
    }
}

impl Executor for HttpAction {
    const KIND: ActionKind = ActionKind::Http;

    async fn run(&self, params: &serde_json::Value, job: &JobContext) -> Result<(), ActionError> {
        let p = Params::new("http", params)?;
        let mut secrets = Vec::new();
        let request = Request::parse(&p, &mut secrets)
            .and_then(|r| r.check_host(&p, &self.allow_hosts))
            .map_err(|e| e.scrub(&secrets))?;
        self.send(request, job).await.map_err(|e| e.scrub(&secrets))
    }
}

/// A validated `http` job.
struct Request {
    method: Method,
    url: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// Param `name`'s text with its `${VAR}` references resolved; the values go into `secrets`.
fn resolved(
    p: &Params<'_>,
    name: &str,
    text: &str,
    secrets: &mut Vec<String>,
) -> Result<String, ActionError> {
    let r = secrets::resolve_env(text).map_err(|e| p.error(name, e))?;
    secrets.extend(r.secrets);
    Ok(r.text)
}

impl Request {
    /// Reads the params, resolving `${VAR}` in `url`, `headers` and `sign_secret` (the values
    /// used go into `secrets`, to be masked in any error).
    fn parse(p: &Params<'_>, secrets: &mut Vec<String>) -> Result<Request, ActionError> {
        let method = p.opt_str("method")?.unwrap_or("POST").to_ascii_uppercase();
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| p.error("method", format!("`{method}` is not an HTTP method")))?;
        let url = resolved(p, "url", p.str("url")?, secrets)?;
        let parsed = reqwest::Url::parse(&url).map_err(|e| p.error("url", format!("{e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(p.error("url", "must be an http:// or https:// URL"));
        }
        let mut headers = HeaderMap::new();
        let (body, content_type) = body(p)?;
        if let Some(ct) = content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        for (name, value) in p.string_map("headers")? {
            let param = format!("headers.{name}");
            let bad = |e: &dyn std::fmt::Display| p.error(&param, e);
            let value = resolved(p, &param, value, secrets)?;
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(&e))?;
            let value = HeaderValue::from_str(&value).map_err(|e| bad(&e))?;
            headers.insert(name, value);
        }
        if let Some(secret) = p.opt_str("sign_secret")? {
            let secret = resolved(p, "sign_secret", secret, secrets)?;
            let sig = signature(secret.as_bytes(), &body);
            headers.insert(SIGNATURE_HEADER, header_value(&sig)?);
        }
        Ok(Request {
            method,
            url,
            headers,
            body,
        })
    }

    /// With `http.allow_hosts` set, the URL's host must be listed (a rendered URL may come from
    /// the event's data: server-side request forgery).
    fn check_host(self, p: &Params<'_>, allow: &[String]) -> Result<Request, ActionError> {
        if allow.is_empty() {
            return Ok(self);
        }
        let host = reqwest::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(String::from))
            .unwrap_or_default();
        if crate::rules::safety::host_allowed(&host, allow) {
            Ok(self)
        } else {
            Err(p.error("url", format!("host `{host}` is not in http.allow_hosts")))
        }
    }
}

/// The exact outgoing bytes (what gets signed) and their default content type.
fn body(p: &Params<'_>) -> Result<(Vec<u8>, Option<&'static str>), ActionError> {
    match (p.value("json"), p.opt_str("body")?) {
        (Some(_), Some(_)) => Err(p.error("body", "give either `json` or `body`, not both")),
        (Some(json), None) => {
            let bytes = serde_json::to_vec(json).map_err(|e| p.error("json", e))?;
            Ok((bytes, Some("application/json")))
        }
        (None, Some(text)) => Ok((text.as_bytes().to_vec(), None)),
        (None, None) => Ok((Vec::new(), None)),
    }
}

fn header_value(s: &str) -> Result<HeaderValue, ActionError> {
    HeaderValue::from_str(s)
        .map_err(|_| ActionError::permanent(format!("`{s}` cannot be sent as a header value")))
}

/// A request that got no answer: a bad URL is permanent, the network is worth retrying.
/// `what` names the destination; reqwest's own copy of the URL is dropped (it may hold a token).
pub(crate) fn transport_error(what: &str, e: reqwest::Error) -> ActionError {
    let e = e.without_url();
    let message = format!("{what}: {}", error_chain(&e));
    if e.is_builder() || e.is_redirect() {
        ActionError::permanent(message)
    } else {
        ActionError::retryable(message)
    }
}

/// An error with its sources ("error sending request: connection refused").
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// 2xx → the body; 429 and 5xx → retryable (with `Retry-After`); anything else → permanent.
/// `what` names the destination in messages.
pub(crate) async fn check_response(what: &str, response: Response) -> Result<String, ActionError> {
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let text = response.text().await.unwrap_or_default();
    if status.is_success() {
        return Ok(text);
    }
    let mut message = format!("{what}: HTTP {status}");
    if let Some(location) = location.filter(|_| status.is_redirection()) {
        message.push_str(&format!(
            " (redirect to another host not followed: {location})"
        ));
    }
    let excerpt = excerpt(&text);
    if !excerpt.is_empty() {
        message.push_str(&format!(": {excerpt}"));
    }
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Err(ActionError::retryable_after(message, retry_after))
    } else {
        Err(ActionError::permanent(message))
    }
}

/// `Retry-After` as seconds (`7`) or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The start of a response body on one line, for error messages.
pub(crate) fn excerpt(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn signature_is_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        let sig = signature(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn bad_params_are_permanent_and_named() {
        let cases = [
            (json!({"url": "not a url"}), "`url`"),
            (json!({}), "`url`"),
            (json!({"url": "ftp://x/"}), "`url`"),
            (json!({"url": "http://x/", "method": "GE T"}), "`method`"),
            (
                json!({"url": "http://x/", "json": {}, "body": "b"}),
                "`body`",
            ),
            (
                json!({"url": "http://x/", "headers": {"Bad Name": "v"}}),
                "`headers.Bad Name`",
            ),
        ];
        for (params, named) in cases {
            let e = Request::parse(&Params::new("http", &params).unwrap(), &mut Vec::new())
                .err()
                .unwrap();
            assert!(!e.is_retryable() && e.to_string().contains(named), "{e}");
        }
    }

    #[test]
    fn excerpts_are_short_single_lines() {
        assert_eq!(excerpt("a\n  b"), "a b");
        assert_eq!(excerpt(&"x".repeat(500)).chars().count(), EXCERPT_CHARS + 1);
    }
}
