//! Keeping secrets and forged lines out of error messages.
//!
//! Every [`super::ActionError`] message passes through [`clean`] when it is built, before it
//! can reach a log line or a job's `last_error`: URLs lose their credentials, query values and
//! token-like path segments (`https://hooks.slack.com/services/***/***/***`), and control
//! characters are shown escaped (`\r\n`), so a value cannot start a new log line. Executors that
//! know the exact secret they used (a Slack webhook URL, a resolved `${VAR}`) also [`scrub`] it.

/// What replaces a secret.
pub const MASK: &str = "***";

/// `message` with URLs redacted and control characters escaped.
pub fn clean(message: &str) -> String {
    escape_controls(&redact_urls(message))
}

/// `text` with every control character (CR, LF, NUL, ESC, …) written as its escape (`\r`).
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_debug().to_string(),
            false => c.to_string(),
        })
        .collect()
}

/// `text` with each occurrence of each non-empty secret (and of a URL secret's path) masked.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret.as_str(), MASK);
        if let Some(path) = url_path(secret).filter(|p| p.len() >= 8) {
            out = out.replace(path, MASK);
        }
    }
    out
}

/// The part of a URL after its authority (`/services/T/B/X?x=1`).
fn url_path(url: &str) -> Option<&str> {
    let start = url.find("://")? + 3;
    let slash = url[start..].find(['/', '?'])?;
    Some(&url[start + slash..])
}

/// Every `http://` / `https://` URL in `text` redacted (see [`redact_url`]).
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find_url(rest) {
        out.push_str(&rest[..start]);
        let url = &rest[start..];
        let len = url
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ')'))
            .unwrap_or(url.len());
        out.push_str(&redact_url(&url[..len]));
        rest = &url[len..];
    }
    out.push_str(rest);
    out
}

fn find_url(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    ["http://", "https://"]
        .iter()
        .filter_map(|s| lower.find(s))
        .min()
}

/// One URL with user info, query values, the fragment and token-like path segments masked;
/// scheme, host, port and ordinary path words (`/hooks/orders`) stay, for diagnosis.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let start = scheme_end + 3;
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let authority = &url[start..end];
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("{MASK}@{host}"),
        None => authority.to_string(),
    };
    let rest = &url[end..];
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, _)) => (r, Some(MASK)),
        None => (rest, None),
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let mut out = format!("{}{host}", &url[..start]);
    let segments: Vec<&str> = path.split('/').collect();
    let masked: Vec<&str> = segments
        .iter()
        .map(|s| if looks_secret(s) { MASK } else { s })
        .collect();
    out.push_str(&masked.join("/"));
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) => format!("{k}={MASK}"),
                None if looks_secret(pair) => MASK.to_string(),
                None => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// A path segment that may be a credential: long, or mixing letters and digits.
fn looks_secret(segment: &str) -> bool {
    let letters = segment.chars().any(|c| c.is_ascii_alphabetic());
    let digits = segment.chars().any(|c| c.is_ascii_digit());
    segment.len() >= 16 || (segment.len() >= 6 && letters && digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_slack_webhook_url_is_redacted_in_messages() {
        let msg = "slack webhook: error sending request for url \
                   (https://hooks.slack.com/services/T0ABC123/B0DEF456/aBcDeFgHiJkLmNoPqRsTuVwX)";
        let out = clean(msg);
        assert!(
            !out.contains("T0ABC123") && !out.contains("aBcDeFgHiJkLmNoPqRsTuVwX"),
            "{out}"
        );
        assert!(
            out.contains("https://hooks.slack.com/services/***/***/***)"),
            "{out}"
        );
    }

    #[test]
    fn urls_keep_host_and_words_but_lose_credentials() {
        assert_eq!(
            redact_url("https://user:pw@erp.example.com:8443/hooks/orders?key=s3cr3t&x#frag"),
            "https://***@erp.example.com:8443/hooks/orders?key=***&x#***"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:9/hooks/selldone/sd-token-123"),
            "http://127.0.0.1:9/hooks/selldone/***"
        );
    }

    #[test]
    fn regression_control_characters_cannot_forge_log_lines() {
        assert_eq!(
            escape_controls("a\r\nINFO forged\0"),
            "a\\r\\nINFO forged\\0"
        );
        assert_eq!(clean("plain"), "plain");
    }

    #[test]
    fn scrub_masks_exact_secrets_and_url_paths() {
        let secrets = vec!["http://h/abc/def123".to_string(), "topsecret".into()];
        assert_eq!(
            scrub("x http://h/abc/def123 y /abc/def123 topsecret", &secrets),
            "x *** y *** ***"
        );
    }
}
