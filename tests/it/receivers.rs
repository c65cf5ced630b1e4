//! Real servers on loopback that capture what storeflow sends: an SMTP server (mailin-embedded)
//! and an HTTP receiver (warp). Both report through channels, so tests wait on what arrived
//! (with a deadline) instead of sleeping.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mailin_embedded::{Handler, Response, Server, SslConfig};
use serde_json::Value;
use storeflow::actions::JobContext;
use tokio::sync::mpsc;
use warp::Filter;

/// How long a test waits for something to arrive.
pub const DEADLINE: Duration = Duration::from_secs(15);

pub fn job(event_id: &str, rule: &str, index: usize) -> JobContext {
    JobContext {
        job_id: 1,
        event_id: event_id.into(),
        rule: rule.into(),
        action_index: index,
        attempt: 1,
    }
}

/// One message as the SMTP server received it.
#[derive(Debug)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The DATA section as sent (headers, blank line, body).
    pub data: String,
}

impl Mail {
    /// The value of header `name` (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        header(&self.data, name)
    }
}

/// The value of header `name` in an RFC 5322 message (first occurrence, unfolded).
pub fn header(message: &str, name: &str) -> Option<String> {
    let head = message.split("\r\n\r\n").next()?;
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    let prefix = format!("{}:", name.to_ascii_lowercase());
    unfolded
        .split("\r\n")
        .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim().to_string())
}

#[derive(Clone)]
struct Capture {
    tx: mpsc::UnboundedSender<Mail>,
    /// Answer to every RCPT TO (e.g. a 550 or a 451) instead of accepting.
    refuse_rcpt: Option<(u16, &'static str)>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
    /// How long each message takes to be accepted (a slow server).
    delay: Duration,
}

impl Handler for Capture {
    fn rcpt(&mut self, _to: &str) -> Response {
        match self.refuse_rcpt {
            Some((code, text)) => Response::custom(code, text.to_string()),
            None => mailin_embedded::response::OK,
        }
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.from = from.to_string();
        self.to = to.to_vec();
        self.data.clear();
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        std::thread::sleep(self.delay);
        let _ = self.tx.send(Mail {
            from: std::mem::take(&mut self.from),
            to: std::mem::take(&mut self.to),
            data: String::from_utf8_lossy(&std::mem::take(&mut self.data)).into_owned(),
        });
        mailin_embedded::response::OK
    }
}

/// An SMTP server on 127.0.0.1:0, running on its own threads for the rest of the test process.
pub struct SmtpServer {
    pub port: u16,
    mails: mpsc::UnboundedReceiver<Mail>,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        Self::start_with(None, false)
    }

    /// `refuse_rcpt`: answer every recipient with this code and text. `starttls`: offer
    /// STARTTLS with the test certificate in `tests/fixtures/tls/`.
    pub fn start_with(refuse_rcpt: Option<(u16, &'static str)>, starttls: bool) -> SmtpServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        Self::start_on(listener, refuse_rcpt, starttls)
    }

    /// The same, on a listener the test bound (e.g. a port that was closed until now).
    pub fn start_on(
        listener: std::net::TcpListener,
        refuse_rcpt: Option<(u16, &'static str)>,
        starttls: bool,
    ) -> SmtpServer {
        Self::spawn(listener, refuse_rcpt, starttls, Duration::ZERO)
    }

    /// A server that takes `delay` to accept each message.
    pub fn slow(delay: Duration) -> SmtpServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        Self::spawn(listener, None, false, delay)
    }

    fn spawn(
        listener: std::net::TcpListener,
        refuse_rcpt: Option<(u16, &'static str)>,
        starttls: bool,
        delay: Duration,
    ) -> SmtpServer {
        let (tx, mails) = mpsc::unbounded_channel();
        let handler = Capture {
            tx,
            refuse_rcpt,
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
            delay,
        };
        let port = listener.local_addr().unwrap().port();
        let mut server = Server::new(handler);
        server.with_name("localhost").with_tcp_listener(listener);
        if starttls {
            let path = |f: &str| crate::helpers::fixture_path(&format!("tls/{f}"));
            let ssl = SslConfig::SelfSigned {
                cert_path: path("server.pem").display().to_string(),
                key_path: path("server.key").display().to_string(),
            };
            server.with_ssl(ssl).unwrap();
        }
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        SmtpServer { port, mails }
    }

    /// The next message, or a panic after [`DEADLINE`].
    pub async fn next(&mut self) -> Mail {
        tokio::time::timeout(DEADLINE, self.mails.recv())
            .await
            .expect("no message reached the SMTP server in time")
            .expect("SMTP server gone")
    }

    /// Whatever arrived so far, without waiting.
    pub fn try_next(&mut self) -> Option<Mail> {
        self.mails.try_recv().ok()
    }
}

/// One request as the HTTP receiver got it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// What the receiver answers: status, extra headers, body.
pub type Reply = (u16, Vec<(&'static str, String)>, String);

/// A warp server on 127.0.0.1:0 that records every request and answers with `reply`.
pub struct Receiver {
    pub base: String,
    requests: mpsc::UnboundedReceiver<Recorded>,
}

impl Receiver {
    pub async fn start(reply: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Receiver {
        let (tx, requests) = mpsc::unbounded_channel();
        let reply = Arc::new(reply);
        let route = warp::method()
            .and(warp::path::full())
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .map(
                move |method: http::Method,
                      path: warp::path::FullPath,
                      headers: http::HeaderMap,
                      body: bytes::Bytes| {
                    let recorded = Recorded {
                        method: method.to_string(),
                        path: path.as_str().to_string(),
                        headers: headers
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                            .collect(),
                        body: body.to_vec(),
                    };
                    let (status, extra, text) = reply(&recorded);
                    let _ = tx.send(recorded);
                    let mut response = http::Response::builder().status(status);
                    for (k, v) in extra {
                        response = response.header(k, v);
                    }
                    response.body(text).unwrap()
                },
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(warp::serve(route).incoming(listener).run());
        Receiver { base, requests }
    }

    /// Answers every request with `status` and `body`.
    pub async fn answering(status: u16, body: &'static str) -> Receiver {
        Self::start(move |_| (status, Vec::new(), body.to_string())).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The next request, or a panic after [`DEADLINE`].
    pub async fn next(&mut self) -> Recorded {
        tokio::time::timeout(DEADLINE, self.requests.recv())
            .await
            .expect("no request reached the receiver in time")
            .expect("receiver gone")
    }

    /// Whatever arrived so far, without waiting.
    pub fn try_next(&mut self) -> Option<Recorded> {
        self.requests.try_recv().ok()
    }
}

/// A reply function that answers with `answers` in order, then 200 `ok`.
pub fn scripted(answers: Vec<Reply>) -> impl Fn(&Recorded) -> Reply + Send + Sync + 'static {
    let queue = std::sync::Mutex::new(std::collections::VecDeque::from(answers));
    move |_| {
        queue
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or((200, Vec::new(), "ok".into()))
    }
}

/// A loopback port nobody listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
