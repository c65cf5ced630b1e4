//! Slow and idle clients against a real `storeflow serve` under `ulimit -n 1024` (issue 8 item 8).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::{fixture, SELLIX_FIXTURES};

/// A `storeflow serve` process started through `sh -c 'ulimit -n …; exec …'`, with its log lines.
pub(super) struct Served {
    child: Child,
    pub base: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Served {
    pub fn start(dir: &Path, yaml: &str, fd_limit: u32) -> Served {
        let config = dir.join("storeflow.yaml");
        let data = dir.join("data");
        let text = format!("listen: 127.0.0.1:0\ndata_dir: {}\n{yaml}", data.display());
        std::fs::write(&config, text).unwrap();
        let script = format!("ulimit -n {fd_limit} && exec \"$0\" serve -c \"$1\"");
        let mut child = Command::new("sh")
            .args(["-c", &script, env!("CARGO_BIN_EXE_storeflow")])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on ").nth(1) {
                    let _ = tx.send(addr.split_whitespace().next().unwrap_or("").to_string());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("daemon did not report its address within 30 s");
        Served { child, base, log }
    }

    fn logged(&self, text: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(text))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn regression_slow_loris_idle_connections_do_not_make_the_daemon_unreachable() {
    // This test process holds 1,100 sockets itself.
    rlimit::increase_nofile_limit(4096).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), crate::helpers::SECURED, 1024);
    let addr = served.base.trim_start_matches("http://").to_string();
    let mut idle = Vec::with_capacity(1100);
    for _ in 0..1100 {
        let mut s = TcpStream::connect(&addr).unwrap();
        // Half a request line, then nothing: a slow-loris client.
        let _ = s.write_all(b"POST /hooks/sellix HTTP/1.1\r\nHost: x\r\n");
        idle.push(s);
    }
    let (file, event, sig) = SELLIX_FIXTURES[0];
    let headers = [("x-sellix-event", event), ("x-sellix-signature", sig)];
    let started = Instant::now();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut req = client
        .post(format!("{}/hooks/sellix", served.base))
        .body(fixture(&format!("sellix/{file}")));
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.expect("the webhook got an answer");
    let took = started.elapsed();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(took < Duration::from_secs(1), "answered after {took:?}");
    assert!(
        served.logged("connection limit reached (intake.max_connections = 512)"),
        "no log line about the limit"
    );
    assert!(!served.logged("Too many open files"));
    drop(idle);
}

#[tokio::test]
async fn regression_headers_that_never_finish_are_closed_after_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), "intake:\n  header_timeout: 1s\n", 1024);
    let addr = served.base.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(b"POST /hooks/sellix HTTP/1.1\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    // The server closes the connection (possibly after a 408): read reaches EOF.
    let closed = s.read_to_end(&mut buf).is_ok();
    let took = started.elapsed();
    assert!(closed, "connection still open after {took:?}");
    assert!(took < Duration::from_secs(5), "closed only after {took:?}");
}
