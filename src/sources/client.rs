//! Who the client really is: the address allowlists apply to, and whether an unsigned request may
//! be served because it comes from this machine.
//!
//! Behind a reverse proxy on the same host every TCP peer is loopback, so "loopback clients only"
//! must look past the proxy: a request that carries a forwarding header naming anyone else is not
//! local, whatever `trust_proxy` says.

use std::net::IpAddr;

use super::{IntakeError, IntakeRequest};

/// Headers through which proxies name the client they relay for.
const FORWARDING_HEADERS: [&str; 2] = ["x-forwarded-for", "x-real-ip"];

/// The TCP peer, or with `trust_proxy` the last `X-Forwarded-For` entry (earlier entries are the
/// client's word and can be forged).
pub fn client_ip(req: &IntakeRequest<'_>, trust_proxy: bool) -> Option<IpAddr> {
    if trust_proxy {
        if let Some(xff) = req.header("x-forwarded-for") {
            return xff.rsplit(',').next().and_then(|ip| ip.trim().parse().ok());
        }
    }
    req.peer.map(|p| p.ip())
}

/// True when the request comes from this machine: the client address (as for [`client_ip`]) is
/// loopback, and no forwarding header names a client elsewhere (a same-host proxy relays for
/// the whole internet). `Forwarded` (RFC 7239) always counts as relayed.
pub fn is_local(req: &IntakeRequest<'_>, trust_proxy: bool) -> bool {
    if !client_ip(req, trust_proxy).is_some_and(|ip| ip.is_loopback()) {
        return false;
    }
    if !req.peer.is_some_and(|p| p.ip().is_loopback()) || req.headers.contains_key("forwarded") {
        return false;
    }
    FORWARDING_HEADERS.iter().all(|name| {
        req.headers.get_all(*name).iter().all(|value| {
            value.to_str().is_ok_and(|v| {
                v.split(',')
                    .all(|ip| ip.trim().parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()))
            })
        })
    })
}

/// A shown form of the client address for messages: the peer, and the forwarded address when
/// there is one.
pub fn describe(req: &IntakeRequest<'_>, trust_proxy: bool) -> String {
    let peer = req.peer.map(|p| p.ip().to_string());
    let peer = peer.unwrap_or_else(|| "unknown".into());
    match req.header("x-forwarded-for").or(req.header("x-real-ip")) {
        Some(fwd) if !trust_proxy => format!("{peer}, forwarding for {}", fwd.trim()),
        _ => client_ip(req, trust_proxy)
            .map(|ip| ip.to_string())
            .unwrap_or(peer),
    }
}

/// Refuses a client outside `allow_ips` (no check when the list is empty).
pub fn check_allowlist(
    source: &str,
    allow_ips: &[IpAddr],
    trust_proxy: bool,
    req: &IntakeRequest<'_>,
) -> Result<(), IntakeError> {
    if allow_ips.is_empty() {
        return Ok(());
    }
    let ip = client_ip(req, trust_proxy);
    if ip.is_some_and(|ip| allow_ips.contains(&ip)) {
        return Ok(());
    }
    let shown = ip
        .map(|i| i.to_string())
        .unwrap_or_else(|| "unknown".into());
    Err(IntakeError::Forbidden(format!(
        "client address {shown} is not in sources.{source}.allow_ips"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn req<'a>(headers: &'a HeaderMap, peer: &str) -> IntakeRequest<'a> {
        IntakeRequest {
            headers,
            body: bytes::Bytes::new(),
            peer: Some(peer.parse().unwrap()),
            token: None,
        }
    }

    #[test]
    fn forwarded_requests_from_a_local_proxy_are_not_local() {
        let mut h = HeaderMap::new();
        assert!(is_local(&req(&h, "127.0.0.1:9"), false));
        assert!(!is_local(&req(&h, "192.0.2.1:9"), false));
        h.insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
        assert!(!is_local(&req(&h, "127.0.0.1:9"), true));
        assert!(!is_local(&req(&h, "127.0.0.1:9"), false));
        h.insert("x-forwarded-for", "127.0.0.1".parse().unwrap());
        assert!(is_local(&req(&h, "127.0.0.1:9"), true));
        let mut h = HeaderMap::new();
        h.insert("forwarded", "for=203.0.113.9".parse().unwrap());
        assert!(!is_local(&req(&h, "[::1]:9"), false));
        let mut h = HeaderMap::new();
        h.insert("x-real-ip", "203.0.113.9".parse().unwrap());
        assert!(!is_local(&req(&h, "[::1]:9"), false));
    }
}
