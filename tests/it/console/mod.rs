//! The console at `/ui/`: sign-in, sessions and CSRF over plain HTTP ([`http`]), and a real
//! headless Chromium driving every page ([`browser`]).

mod browser;
mod http;
mod timers;

use reqwest::redirect::Policy;

/// The admin token the tests configure.
pub const TOKEN: &str = "console-test-token-5f1c";

/// A client that shows redirects instead of following them and keeps no cookies: each test
/// handles the session cookie itself.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// The `storeflow_session=…` pair of a `Set-Cookie` header, and the whole header.
pub fn session_cookie(resp: &reqwest::Response) -> Option<(String, String)> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("storeflow_session="))
        .map(|v| (v.split(';').next().unwrap().to_string(), v.to_string()))
}

/// The CSRF token in a page's forms.
pub fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("the page has a form with a CSRF token");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// Extension: `.form()` without reqwest's `form` feature.
pub trait FormExt {
    fn form(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormExt for reqwest::RequestBuilder {
    fn form(self, pairs: &[(&str, &str)]) -> Self {
        let encode = |s: &str| -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect()
        };
        let body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body.join("&"))
    }
}
