//! Load generator for the intake benchmark (`bench/intake.sh`, results in `BENCHMARKS.md`).
//!
//! Posts uniquely-signed copies of `tests/fixtures/sellix/order_paid.json` to a running daemon
//! (`--target intake`), or sends `GET /healthz` (`--target healthz`, the ceiling), over loopback
//! HTTP/1.1 keep-alive connections, and prints counts, throughput and latency percentiles.
//!
//! * Closed loop: `--connections N --duration S`: N connections, each sends its next request as
//!   soon as the previous answer arrived (maximum throughput).
//! * Open loop: `--rate R --duration S`: requests are scheduled every 1/R seconds by a dedicated
//!   thread, whatever the server is doing; latency is measured from the *scheduled* send time, so
//!   a stalled server shows up in the percentiles (no coordinated omission). The time from the
//!   actual send is reported too, as "service".
//!
//! Every run is bounded: `--duration` (at most 300 s) plus `--warmup`, `--max-requests`, a
//! per-request `--timeout`, and a hard stop after all of them. Only loopback addresses are
//! accepted.
//!
//! The HTTP/1.1 client is a minimal one written on tokio's `TcpStream` rather than reqwest, to
//! keep the generator's own CPU cost low: on a 2-core machine it shares the cores with the daemon
//! it measures. It understands `Content-Length` answers (what warp sends) and nothing fancier.
//!
//! Every Sellix body is unique (the fixture's order `uniqid` is replaced by a per-request id) and
//! signed with HMAC-SHA512, so every request takes the durable path (verify, normalize, group
//! commit) instead of being answered as a duplicate; the `duplicate` flag of each answer is counted
//! to prove it.

// A benchmark tool, not daemon code: failing loudly on a broken setup is what we want here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use tokio::net::TcpStream;

use storeflow::sources::verify::sign_sha512_hex;

/// The fixture's order id, replaced by a unique one in every request.
const UNIQID_FIELD: &str = r#""uniqid": "7a31c2-9f0e4b6d21-58c0d3""#;
/// HMAC-SHA512 of the unmodified fixture with `whsec_test` (a self-check of the fixture bytes).
const FIXTURE_SIG_WHSEC_TEST: &str = "198d1fc7700ced342f3bbf772ae1467f127a9c60e4019ff0e1fe7735d714c7d546a413579cdbb5c49b9ab91ceb6349f57cc926fb181a45379d5d909253d4a89a";
const MAX_DURATION_S: f64 = 300.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Target {
    /// `POST /hooks/sellix` with a unique, signed `order_paid.json` per request.
    Intake,
    /// `GET /healthz`: no journal, the ceiling of the HTTP stack.
    Healthz,
}

#[derive(Parser, Debug)]
#[command(about = "storeflow intake load generator (loopback only)")]
struct Args {
    /// Daemon address; must be a loopback address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    #[arg(long, value_enum)]
    target: Target,
    /// Closed loop with this many connections.
    #[arg(long, conflicts_with = "rate")]
    connections: Option<usize>,
    /// Open loop at this many requests per second.
    #[arg(long)]
    rate: Option<f64>,
    /// Measured seconds (after the warm-up), at most 300.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring; their requests are not counted.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Upper bound on requests sent (warm-up included).
    #[arg(long, default_value_t = 2_000_000)]
    max_requests: u64,
    /// Seconds before one request counts as an error.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// Open loop: requests in flight at most (later ones wait, and their wait is measured).
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,
    /// Worker threads of the generator's runtime (1 leaves the other core to the daemon).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// The Sellix webhook secret the daemon is configured with.
    #[arg(long, env = "SELLIX_WEBHOOK_SECRET", default_value = "whsec_test")]
    secret: String,
    /// The Sellix payload template.
    #[arg(long, default_value = "tests/fixtures/sellix/order_paid.json")]
    fixture: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.addr.ip().is_loopback(),
        "--addr {} is not a loopback address; this generator only loads the local machine",
        args.addr
    );
    anyhow::ensure!(
        args.duration > 0.0 && args.duration <= MAX_DURATION_S,
        "--duration must be in (0, {MAX_DURATION_S}]"
    );
    anyhow::ensure!(
        (0.0..=60.0).contains(&args.warmup),
        "--warmup must be in [0, 60]"
    );
    anyhow::ensure!(
        args.timeout > 0.0 && args.timeout <= 60.0,
        "--timeout must be in (0, 60]"
    );
    let mode = match (args.connections, args.rate) {
        (Some(n), None) if (1..=4096).contains(&n) => Mode::Closed { connections: n },
        (None, Some(r)) if r > 0.0 && r <= 1_000_000.0 => Mode::Open { rate: r },
        _ => anyhow::bail!("give either --connections N (1..=4096) or --rate R (> 0)"),
    };
    let maker = Arc::new(RequestMaker::new(&args)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let run = Run {
        addr: args.addr,
        maker,
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
        timeout: Duration::from_secs_f64(args.timeout),
        max_requests: args.max_requests,
        max_in_flight: args.max_in_flight.max(1),
    };
    println!(
        "loadgen: target={:?} {} warmup={}s duration={}s addr={}",
        args.target,
        mode.describe(),
        args.warmup,
        args.duration,
        args.addr
    );
    let stats = runtime.block_on(async {
        match mode {
            Mode::Closed { connections } => run.closed(connections).await,
            Mode::Open { rate } => run.open(rate).await,
        }
    });
    let ok = stats.report(&args, &mode, run.duration);
    anyhow::ensure!(ok, "no successful answers in the measured window");
    Ok(())
}

enum Mode {
    Closed { connections: usize },
    Open { rate: f64 },
}

impl Mode {
    fn describe(&self) -> String {
        match self {
            Mode::Closed { connections } => format!("mode=closed connections={connections}"),
            Mode::Open { rate } => format!("mode=open rate={rate}/s"),
        }
    }
}

/// Builds the raw HTTP/1.1 requests.
struct RequestMaker {
    target: Target,
    host: String,
    secret: Vec<u8>,
    /// The fixture text before and after the `uniqid` value.
    before: String,
    after: String,
    /// Distinguishes this run's ids from earlier runs against the same journal.
    nonce: String,
    seq: AtomicU64,
}

impl RequestMaker {
    fn new(args: &Args) -> anyhow::Result<Self> {
        let mut maker = RequestMaker {
            target: args.target,
            host: args.addr.to_string(),
            secret: args.secret.clone().into_bytes(),
            before: String::new(),
            after: String::new(),
            nonce: format!(
                "bench-{:x}-{}",
                SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros(),
                std::process::id()
            ),
            seq: AtomicU64::new(0),
        };
        if args.target == Target::Intake {
            let text = std::fs::read_to_string(&args.fixture).map_err(|e| {
                anyhow::anyhow!(
                    "reading {} (run from the crate root): {e}",
                    args.fixture.display()
                )
            })?;
            if args.secret == "whsec_test"
                && sign_sha512_hex(b"whsec_test", text.as_bytes()) != FIXTURE_SIG_WHSEC_TEST
            {
                eprintln!("loadgen: warning: the fixture's bytes differ from the documented ones");
            }
            anyhow::ensure!(
                text.matches(UNIQID_FIELD).count() == 1,
                "{} must contain {UNIQID_FIELD} exactly once",
                args.fixture.display()
            );
            let (before, after) = text.split_once(UNIQID_FIELD).expect("checked above");
            maker.before = format!("{before}\"uniqid\": \"");
            maker.after = format!("\"{after}");
        }
        Ok(maker)
    }

    fn make(&self) -> Vec<u8> {
        match self.target {
            Target::Healthz => {
                format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", self.host).into_bytes()
            }
            Target::Intake => {
                let n = self.seq.fetch_add(1, Ordering::Relaxed);
                let body = format!("{}{}-{n:010}{}", self.before, self.nonce, self.after);
                let sig = sign_sha512_hex(&self.secret, body.as_bytes());
                format!(
                    "POST /hooks/sellix HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
                     X-Sellix-Event: order:paid\r\nX-Sellix-Signature: {sig}\r\n\
                     Content-Length: {}\r\n\r\n{body}",
                    self.host,
                    body.len()
                )
                .into_bytes()
            }
        }
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The server said `Connection: close`.
    closing: bool,
}

struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
            closing: false,
        })
    }

    async fn exchange(&mut self, request: &[u8]) -> io::Result<Answer> {
        let mut sent = 0;
        while sent < request.len() {
            self.stream.writable().await?;
            match self.stream.try_write(&request[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(answer) = self.parse()? {
                return Ok(answer);
            }
            self.stream.readable().await?;
            match self.stream.try_read(&mut chunk) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed before a full answer",
                    ))
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// One complete answer off the front of the buffer, if it is all there.
    fn parse(&mut self) -> io::Result<Option<Answer>> {
        let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
        let Some(head_len) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            return Ok(None);
        };
        let head = std::str::from_utf8(&self.buf[..head_len]).map_err(|_| bad("non-UTF-8 head"))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad status line"))?;
        let mut length = None;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| bad("bad content-length"))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(bad("chunked answers are not supported by this generator"));
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
            {
                self.closing = true;
            }
        }
        let length = length.ok_or_else(|| bad("answer without content-length"))?;
        let total = head_len + 4 + length;
        if self.buf.len() < total {
            return Ok(None);
        }
        let body = self.buf[head_len + 4..total].to_vec();
        self.buf.drain(..total);
        Ok(Some(Answer { status, body }))
    }
}

/// Everything measured; merged under one lock (a few thousand updates a second at most).
#[derive(Default)]
struct Stats {
    /// Answered requests in the measured window, latency in microseconds (from the scheduled send
    /// time in open loop).
    latency_us: Vec<u64>,
    /// Open loop: from the actual send.
    service_us: Vec<u64>,
    requests: u64,
    ok: u64,
    non_2xx: BTreeMap<u16, u64>,
    errors: u64,
    duplicates: u64,
    fresh: u64,
    /// 2xx intake answers without a `duplicate` flag.
    unparsed: u64,
    warmup_requests: u64,
    first_error: Option<String>,
    /// Open loop: how late the scheduler thread woke at worst (its own jitter).
    max_schedule_lag_us: u64,
    unfinished: u64,
}

enum Outcome {
    Answer(Answer),
    Error(String),
}

impl Stats {
    fn record(
        &mut self,
        target: Target,
        measured: bool,
        latency: Duration,
        service: Option<Duration>,
        outcome: &Outcome,
    ) {
        if !measured {
            self.warmup_requests += 1;
            return;
        }
        self.requests += 1;
        match outcome {
            Outcome::Answer(a) => {
                self.latency_us.push(latency.as_micros() as u64);
                if let Some(s) = service {
                    self.service_us.push(s.as_micros() as u64);
                }
                if (200..300).contains(&a.status) {
                    self.ok += 1;
                    if target == Target::Intake {
                        let dup = serde_json::from_slice::<serde_json::Value>(&a.body)
                            .ok()
                            .and_then(|v| v.get("duplicate").and_then(|d| d.as_bool()));
                        match dup {
                            Some(true) => self.duplicates += 1,
                            Some(false) => self.fresh += 1,
                            None => self.unparsed += 1,
                        }
                    }
                } else {
                    *self.non_2xx.entry(a.status).or_default() += 1;
                    if self.first_error.is_none() {
                        self.first_error = Some(format!(
                            "HTTP {}: {}",
                            a.status,
                            String::from_utf8_lossy(&a.body)
                        ));
                    }
                }
            }
            Outcome::Error(e) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(e.clone());
                }
            }
        }
    }

    /// Prints the human summary and one `RESULT` line for scripts; true if anything succeeded.
    fn report(mut self, args: &Args, mode: &Mode, window: Duration) -> bool {
        let secs = window.as_secs_f64();
        let non_2xx: u64 = self.non_2xx.values().sum();
        let rps = self.requests as f64 / secs;
        let ok_rps = self.ok as f64 / secs;
        let lat = Percentiles::of(&mut self.latency_us);
        let svc = Percentiles::of(&mut self.service_us);
        println!(
            "requests {}  ok {}  non-2xx {}  errors {}  (warm-up requests not counted: {})",
            self.requests, self.ok, non_2xx, self.errors, self.warmup_requests
        );
        if args.target == Target::Intake {
            println!(
                "intake answers: duplicate:false {}  duplicate:true {}  without the flag {}",
                self.fresh, self.duplicates, self.unparsed
            );
        }
        if !self.non_2xx.is_empty() {
            println!("non-2xx by status: {:?}", self.non_2xx);
        }
        if let Some(e) = &self.first_error {
            println!("first failure: {e}");
        }
        println!("throughput {rps:.1} req/s  ok {ok_rps:.1}/s  over {secs:.1} s");
        let from = match mode {
            Mode::Open { .. } => "from the scheduled send time",
            Mode::Closed { .. } => "from the send",
        };
        println!("latency ms ({from}): {}", lat.human());
        if let Mode::Open { rate } = mode {
            println!("service ms (from the actual send):   {}", svc.human());
            println!(
                "open loop: asked {rate}/s, sent {:.1}/s; scheduler woke late by {:.3} ms at worst; \
                 unfinished at the hard stop: {}",
                self.requests as f64 / secs,
                self.max_schedule_lag_us as f64 / 1000.0,
                self.unfinished
            );
        }
        let (mode_name, conns, rate) = match mode {
            Mode::Closed { connections } => ("closed", connections.to_string(), "-".to_string()),
            Mode::Open { rate } => ("open", "-".to_string(), rate.to_string()),
        };
        println!(
            "RESULT target={} mode={mode_name} connections={conns} rate={rate} duration={secs} \
             requests={} ok={} non2xx={non_2xx} errors={} fresh={} duplicates={} rps={rps:.1} \
             ok_rps={ok_rps:.1} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} max_ms={:.3} \
             svc_p50_ms={:.3} svc_p99_ms={:.3}",
            format!("{:?}", args.target).to_lowercase(),
            self.requests,
            self.ok,
            self.errors,
            self.fresh,
            self.duplicates,
            lat.p50,
            lat.p90,
            lat.p99,
            lat.max,
            svc.p50,
            svc.p99,
        );
        self.ok > 0
    }
}

/// Nearest-rank percentiles, in milliseconds.
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Percentiles {
    fn of(us: &mut [u64]) -> Percentiles {
        us.sort_unstable();
        let at = |p: f64| -> f64 {
            if us.is_empty() {
                return f64::NAN;
            }
            let rank = ((p * us.len() as f64).ceil() as usize).clamp(1, us.len());
            us[rank - 1] as f64 / 1000.0
        };
        Percentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        }
    }

    fn human(&self) -> String {
        format!(
            "p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
            self.p50, self.p90, self.p99, self.max
        )
    }
}

struct Run {
    addr: SocketAddr,
    maker: Arc<RequestMaker>,
    warmup: Duration,
    duration: Duration,
    timeout: Duration,
    max_requests: u64,
    max_in_flight: usize,
}

/// Sends one request on `conn` (opening one if needed); drops the connection after a failure.
async fn send(
    addr: SocketAddr,
    conn: &mut Option<Conn>,
    request: &[u8],
    timeout: Duration,
) -> Outcome {
    let attempt = async {
        if conn.is_none() {
            *conn = Some(Conn::open(addr).await?);
        }
        conn.as_mut().expect("just opened").exchange(request).await
    };
    let outcome = match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(answer)) => Outcome::Answer(answer),
        Ok(Err(e)) => Outcome::Error(e.to_string()),
        Err(_) => Outcome::Error(format!("no answer within {timeout:?}")),
    };
    let keep = matches!(outcome, Outcome::Answer(_)) && conn.as_ref().is_some_and(|c| !c.closing);
    if !keep {
        *conn = None;
    }
    outcome
}

impl Run {
    async fn closed(&self, connections: usize) -> Stats {
        let stats = Arc::new(Mutex::new(Stats::default()));
        let issued = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let measure_from = start + self.warmup;
        let end = measure_from + self.duration;
        let mut workers = Vec::with_capacity(connections);
        for _ in 0..connections {
            let (stats, issued, maker) = (stats.clone(), issued.clone(), self.maker.clone());
            let (addr, timeout) = (self.addr, self.timeout);
            let max_requests = self.max_requests;
            workers.push(tokio::spawn(async move {
                let mut conn = None;
                loop {
                    let now = Instant::now();
                    if now >= end || issued.fetch_add(1, Ordering::Relaxed) >= max_requests {
                        break;
                    }
                    let request = maker.make();
                    let sent = Instant::now();
                    let outcome = send(addr, &mut conn, &request, timeout).await;
                    let latency = sent.elapsed();
                    let failed = matches!(outcome, Outcome::Error(_));
                    stats.lock().expect("stats lock").record(
                        maker.target,
                        sent >= measure_from,
                        latency,
                        None,
                        &outcome,
                    );
                    if failed {
                        // Do not spin against a daemon that is gone.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }));
        }
        let hard_stop = end + self.timeout + Duration::from_secs(5);
        for w in workers {
            let left = hard_stop.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, w).await.is_err() {
                stats.lock().expect("stats lock").unfinished += 1;
            }
        }
        take(stats)
    }

    async fn open(&self, rate: f64) -> Stats {
        let stats = Arc::new(Mutex::new(Stats::default()));
        let pending = Arc::new(AtomicU64::new(0));
        let idle: Arc<Mutex<Vec<Conn>>> = Arc::new(Mutex::new(Vec::new()));
        let permits = Arc::new(tokio::sync::Semaphore::new(self.max_in_flight));
        let interval = Duration::from_secs_f64(1.0 / rate);
        let start = Instant::now() + Duration::from_millis(10);
        let measure_from = start + self.warmup;
        let end = measure_from + self.duration;
        let handle = tokio::runtime::Handle::current();
        let scheduler = {
            let (stats, pending, maker) = (stats.clone(), pending.clone(), self.maker.clone());
            let (addr, timeout, max_requests) = (self.addr, self.timeout, self.max_requests);
            // A plain thread sleeps with far finer resolution than tokio's 1 ms timer wheel, so
            // sends leave close to their scheduled times.
            std::thread::spawn(move || {
                let mut max_lag = Duration::ZERO;
                for i in 0..max_requests {
                    let at = start + interval.mul_f64(i as f64);
                    if at >= end {
                        break;
                    }
                    let now = Instant::now();
                    if at > now {
                        std::thread::sleep(at - now);
                    }
                    max_lag = max_lag.max(Instant::now().saturating_duration_since(at));
                    let (stats, pending, maker) = (stats.clone(), pending.clone(), maker.clone());
                    let (idle, permits) = (idle.clone(), permits.clone());
                    pending.fetch_add(1, Ordering::SeqCst);
                    handle.spawn(async move {
                        let _permit = permits.acquire_owned().await.expect("never closed");
                        let request = maker.make();
                        let mut conn = idle.lock().expect("pool lock").pop();
                        let sent = Instant::now();
                        let outcome = send(addr, &mut conn, &request, timeout).await;
                        let done = Instant::now();
                        if let Some(c) = conn {
                            idle.lock().expect("pool lock").push(c);
                        }
                        stats.lock().expect("stats lock").record(
                            maker.target,
                            at >= measure_from,
                            done - at,
                            Some(done - sent),
                            &outcome,
                        );
                        pending.fetch_sub(1, Ordering::SeqCst);
                    });
                }
                max_lag
            })
        };
        let max_lag = tokio::task::spawn_blocking(move || scheduler.join())
            .await
            .expect("scheduler task")
            .expect("scheduler thread");
        let hard_stop = end + self.timeout + Duration::from_secs(5);
        while pending.load(Ordering::SeqCst) > 0 && Instant::now() < hard_stop {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        {
            let mut s = stats.lock().expect("stats lock");
            s.max_schedule_lag_us = max_lag.as_micros() as u64;
            s.unfinished = pending.load(Ordering::SeqCst);
        }
        take(stats)
    }
}

fn take(stats: Arc<Mutex<Stats>>) -> Stats {
    std::mem::take(&mut *stats.lock().expect("stats lock"))
}
