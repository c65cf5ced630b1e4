//! Real servers on loopback that capture what the daemon sends: an SMTP server (mailin-embedded)
//! and an HTTP receiver (warp) with scripted answers.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use mailin_embedded::{response, Handler, Response, Server};
use warp::http::{HeaderMap, StatusCode};
use warp::Filter;

/// One message as the SMTP server received it.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

impl Mail {
    /// A header's value (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
    }
}

#[derive(Clone)]
struct Capture {
    mails: Arc<Mutex<Vec<Mail>>>,
    current: Arc<Mutex<Mail>>,
    /// Answer to RCPT TO (e.g. a permanent refusal).
    rcpt: Response,
}

impl Handler for Capture {
    fn rcpt(&mut self, _to: &str) -> Response {
        self.rcpt.clone()
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        *self.current.lock().unwrap() = Mail {
            from: from.to_string(),
            to: to.to_vec(),
            data: String::new(),
        };
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current
            .lock()
            .unwrap()
            .data
            .push_str(&String::from_utf8_lossy(buf));
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mail = self.current.lock().unwrap().clone();
        self.mails.lock().unwrap().push(mail);
        response::OK
    }
}

/// An SMTP server on 127.0.0.1 that keeps every message it accepts.
pub struct SmtpSink {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        Self::start_on(TcpListener::bind("127.0.0.1:0").unwrap(), response::OK)
    }

    /// A server that refuses every recipient with `rcpt` (e.g. 550).
    pub fn refusing(rcpt: Response) -> SmtpSink {
        Self::start_on(TcpListener::bind("127.0.0.1:0").unwrap(), rcpt)
    }

    pub fn start_on(listener: TcpListener, rcpt: Response) -> SmtpSink {
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let capture = Capture {
            mails: mails.clone(),
            current: Arc::default(),
            rcpt,
        };
        let mut server = Server::new(capture);
        server.with_name("sink.test").with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        SmtpSink { port, mails }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

/// One request as the HTTP receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// A scripted answer: status, extra headers, body.
pub type Answer = (u16, Vec<(&'static str, String)>, String);

/// An HTTP server on 127.0.0.1 that records every request and answers from a script (then 200).
#[derive(Clone)]
pub struct HttpSink {
    pub base: String,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
}

impl HttpSink {
    pub async fn start() -> HttpSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let sink = HttpSink {
            base,
            received: Arc::default(),
            script: Arc::default(),
        };
        let s = sink.clone();
        let route = warp::method()
            .and(warp::path::full())
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .map(
                move |method: warp::http::Method,
                      path: warp::path::FullPath,
                      headers: HeaderMap,
                      body: Bytes| {
                    let at = Instant::now();
                    s.received.lock().unwrap().push(Received {
                        method: method.to_string(),
                        path: path.as_str().to_string(),
                        headers,
                        body,
                        at,
                    });
                    let (status, extra, text) = s.script.lock().unwrap().pop_front().unwrap_or((
                        200,
                        Vec::new(),
                        "ok".into(),
                    ));
                    let mut resp = warp::http::Response::builder()
                        .status(StatusCode::from_u16(status).unwrap());
                    for (k, v) in extra {
                        resp = resp.header(k, v);
                    }
                    resp.body(text).unwrap()
                },
            );
        tokio::spawn(warp::serve(route).incoming(listener).run());
        sink
    }

    /// Queues answers for the next requests.
    pub fn answer(&self, answers: Vec<Answer>) {
        self.script.lock().unwrap().extend(answers);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

/// A loopback port nobody listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
