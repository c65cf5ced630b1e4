//! Who may use the console: the one place that decides it (DESIGN.md §11).
//!
//! With `admin.token` set, a person signs in once at `/ui/login` with the token and gets a
//! session: a random id in an HttpOnly, SameSite=Strict cookie (Secure when the listener serves
//! HTTPS), looked up in a map kept here in memory. A session ends after `admin.session_idle`
//! without a request, at sign-out, and when the daemon restarts. Without `admin.token`, only
//! clients on this machine get in, and they get a session without signing in.
//!
//! Every session has its own CSRF token; every form carries it and a POST without the right
//! one is refused (403). SameSite=Strict alone would stop other sites' forms in current
//! browsers; the token also covers older ones and a console reached without a token.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use warp::http::HeaderMap;
use warp::{Filter, Rejection};

use super::Console;
use crate::sources::{client, IntakeRequest};

/// The session cookie's name.
pub const COOKIE: &str = "storeflow_session";

/// The most sessions kept at once; the least recently used one goes first beyond it.
const MAX_SESSIONS: usize = 1000;

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    /// The token every form of this session carries (field `csrf`).
    pub csrf: String,
    /// Made for this request (a loopback client without `admin.token`): the reply sets the
    /// cookie.
    pub fresh: bool,
}

struct Entry {
    csrf: String,
    last_seen: Instant,
}

/// The sessions of this daemon, in memory.
pub struct Sessions {
    map: Mutex<HashMap<String, Entry>>,
    idle: Duration,
}

/// Why a request to the console was refused.
#[derive(Debug)]
pub enum Refusal {
    /// 401: no session (or an expired one) while `admin.token` is set: the sign-in page.
    SignIn,
    /// 403: no `admin.token` and the client is not on this machine.
    NotLocal,
    /// 403: a form without this session's CSRF token.
    Csrf,
}

impl warp::reject::Reject for Refusal {}

/// Why a random id could not be made.
#[derive(Debug, thiserror::Error)]
#[error("the system's random number generator failed: {0}")]
pub struct NoRandom(String);

impl Sessions {
    pub fn new(idle: Duration) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            idle,
        }
    }

    /// A new session.
    pub fn create(&self) -> Result<Session, NoRandom> {
        let (id, csrf) = (random_id()?, random_id()?);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, e| now.duration_since(e.last_seen) < self.idle);
        if map.len() >= MAX_SESSIONS {
            let oldest = map
                .iter()
                .min_by_key(|(_, e)| e.last_seen)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        map.insert(
            id.clone(),
            Entry {
                csrf: csrf.clone(),
                last_seen: now,
            },
        );
        Ok(Session {
            id,
            csrf,
            fresh: true,
        })
    }

    /// The live session with this id, its idle time restarted; an expired one is removed.
    pub fn touch(&self, id: &str) -> Option<Session> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let entry = map.get_mut(id)?;
        if now.duration_since(entry.last_seen) >= self.idle {
            map.remove(id);
            return None;
        }
        entry.last_seen = now;
        Some(Session {
            id: id.to_string(),
            csrf: entry.csrf.clone(),
            fresh: false,
        })
    }

    pub fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// 32 random bytes, hex.
fn random_id() -> Result<String, NoRandom> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| NoRandom(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// Compares two secrets in constant time: digests of equal length, so neither the content
/// nor the length shows in the time taken.
pub fn same_secret(given: &str, expected: &str) -> bool {
    !given.is_empty()
        && bool::from(Sha256::digest(given.as_bytes()).ct_eq(&Sha256::digest(expected.as_bytes())))
}

/// Whether the client is on this machine and relays for no one (the rule of `/metrics`).
pub fn is_local(headers: &HeaderMap, peer: Option<SocketAddr>) -> bool {
    let req = IntakeRequest {
        headers,
        body: bytes::Bytes::new(),
        peer,
        token: None,
    };
    client::is_local(&req, false)
}

/// The request's session, or the refusal: the guard in front of every page.
pub fn session(c: Arc<Console>) -> impl Filter<Extract = (Session,), Error = Rejection> + Clone {
    warp::cookie::optional::<String>(COOKIE)
        .and(warp::header::headers_cloned())
        .and(super::super::intake::peer_addr())
        .and_then(move |cookie: Option<String>, headers: HeaderMap, peer| {
            let c = c.clone();
            async move { admit(&c, cookie.as_deref(), &headers, peer).map_err(warp::reject::custom) }
        })
}

fn admit(
    c: &Console,
    cookie: Option<&str>,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<Session, Refusal> {
    if c.token.is_none() && !is_local(headers, peer) {
        return Err(Refusal::NotLocal);
    }
    if let Some(session) = cookie.and_then(|id| c.sessions.touch(id)) {
        return Ok(session);
    }
    match c.token {
        Some(_) => Err(Refusal::SignIn),
        None => c.sessions.create().map_err(|e| {
            tracing::error!(error = %e, "console: cannot make a session");
            Refusal::SignIn
        }),
    }
}

/// A form of this session: its fields, once the CSRF token was checked.
pub type Form = HashMap<String, String>;

/// The largest form the console takes (the "try a payload" page posts whole webhook bodies).
const MAX_FORM: u64 = 2 * 1024 * 1024;

/// The session of a POST and its form, refused (403) without the session's CSRF token.
pub fn form(c: Arc<Console>) -> impl Filter<Extract = (Session, Form), Error = Rejection> + Clone {
    session(c)
        .and(warp::body::content_length_limit(MAX_FORM))
        .and(warp::body::form::<Form>())
        .and_then(|session: Session, form: Form| async move {
            let given = form.get("csrf").map_or("", String::as_str);
            if session.fresh || !same_secret(given, &session.csrf) {
                return Err(warp::reject::custom(Refusal::Csrf));
            }
            Ok((session, form))
        })
        .untuple_one()
}

/// The `Set-Cookie` value for a session (`None`: the one that ends it).
pub fn cookie(session: Option<&Session>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match session {
        Some(s) => format!(
            "{COOKIE}={}; Path=/ui; HttpOnly; SameSite=Strict{secure}",
            s.id
        ),
        None => format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_after_the_idle_time_and_are_removed() {
        let sessions = Sessions::new(Duration::from_millis(30));
        let s = sessions.create().unwrap();
        assert!(sessions.touch(&s.id).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(sessions.touch(&s.id).is_none());
        assert!(sessions.map.lock().unwrap().is_empty());
    }

    #[test]
    fn secrets_compare_whole_and_never_empty() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("", ""));
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_only_over_tls() {
        let s = Session {
            id: "abc".into(),
            csrf: "x".into(),
            fresh: true,
        };
        let plain = cookie(Some(&s), false);
        assert_eq!(
            plain,
            "storeflow_session=abc; Path=/ui; HttpOnly; SameSite=Strict"
        );
        assert!(cookie(Some(&s), true).ends_with("; Secure"));
        assert!(cookie(None, true).contains("Max-Age=0"));
    }

    #[test]
    fn session_ids_are_random_and_long() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let (a, b) = (sessions.create().unwrap(), sessions.create().unwrap());
        assert_ne!(a.id, b.id);
        assert_eq!(a.id.len(), 64);
        assert_ne!(a.id, a.csrf);
    }
}
