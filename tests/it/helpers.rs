//! Starting daemons for tests and talking to them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use storeflow::config::Config;
use storeflow::journal::{SqliteStore, Store};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// The secret the Sellix fixtures are signed with.
pub const SELLIX_SECRET: &str = "whsec_test";
pub const SELLDONE_TOKEN: &str = "sd-token-123";

/// A config with both sources secured, as a shop would run it.
pub const SECURED: &str =
    "sources:\n  sellix:\n    secret: whsec_test\n  selldone:\n    token: sd-token-123\n";

/// The documented signatures of the Sellix fixtures (shared/fixtures/README.md).
pub const SELLIX_FIXTURES: &[(&str, &str, &str)] = &[
    ("test_vector_minimal.json", "order:paid", "5a576f7538e089eb97d167e358fa9de81a6a7cb31282822edde5084348bd3cb3c1b014f138a540031cf0d65a1bd41caa17517f0aab0d6b6f842c5777ff28f059"),
    ("order_created.json", "order:created", "8b0fbb3674137bde56d55dd921231678a4e602e1ee52cb6476f48a0b55fdcc325951a8faae39439d2a4b82fdd8ed2b1502e16f05f91f0aaa1c37c1d03aa6d58a"),
    ("order_paid.json", "order:paid", "198d1fc7700ced342f3bbf772ae1467f127a9c60e4019ff0e1fe7735d714c7d546a413579cdbb5c49b9ab91ceb6349f57cc926fb181a45379d5d909253d4a89a"),
    ("order_cancelled.json", "order:cancelled", "d41aa6b9a40a42b13fa68213035b3d70e825472a3e41ccd543f5f746a2d697380daf482d4ef04e8aa4f80c2b492e2fbf3a8343a950f203f4111aa4c28161f508"),
    ("order_disputed.json", "order:disputed", "dd640a152feba6e868a2e31fdb356129a628f9202e95b244bf4503ca42b9a17d819a7354ddfb0523ebf6e89a0c67223549f2416561fb0390242679075f453941"),
    ("product_stock.json", "product:stock", "e61d652dd915277bf1c12847544b612117ad5b86b3c2774bc95ea51341a71ac241ee7157dfebf86c99ae6c097000bfdfbf77cae51bc8bc6601e689691290304f"),
];

pub fn fixture_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

pub fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixture_path(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

/// A daemon running inside the test process.
pub struct Daemon {
    pub base: String,
    pub dir: TempDir,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Daemon {
    /// Starts on 127.0.0.1:0 with `yaml` as its config and a fresh data dir.
    pub async fn start(yaml: &str) -> Daemon {
        Self::start_in(tempfile::tempdir().unwrap(), yaml).await
    }

    /// Starts with the data dir `dir` (to restart over an existing journal).
    pub async fn start_in(dir: TempDir, yaml: &str) -> Daemon {
        let mut config = Config::parse(yaml, Path::new("test.yaml"), |_| None).unwrap();
        config.data_dir = dir.path().join("data");
        config.rules_dir = dir.path().join("rules");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            storeflow::app::run(config, listener, token).await.unwrap();
        });
        Daemon {
            base,
            dir,
            stop,
            task,
        }
    }

    /// Graceful shutdown; returns the data dir for a restart.
    pub async fn stop(self) -> TempDir {
        self.stop.cancel();
        self.task.await.unwrap();
        self.dir
    }

    pub fn journal(&self) -> SqliteStore {
        SqliteStore::open_existing(&self.dir.path().join("data/storeflow.db")).unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Writes a rules file into this daemon's rules directory.
    pub fn write_rules(&self, file: &str, yaml: &str) {
        write_rules(self.dir.path(), file, yaml);
    }

    /// Waits until the pipeline has processed `event_id`, and returns its trace.
    pub async fn trace(&self, event_id: &str) -> serde_json::Value {
        let id = event_id.to_string();
        wait_for("the event to be processed", || {
            self.journal().trace(&id).unwrap()
        })
        .await
    }

    pub async fn health(&self) -> serde_json::Value {
        reqwest::get(self.url("/healthz"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// Writes `rules/<file>` under `dir` (creating the folder).
pub fn write_rules(dir: &Path, file: &str, yaml: &str) {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join(file), yaml).unwrap();
}

/// A data dir with `rules/<file>` already written, for starting a daemon over it.
pub fn dir_with_rules(file: &str, yaml: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_rules(dir.path(), file, yaml);
    dir
}

/// Polls `probe` until it yields a value (deadline 20 s).
pub async fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls an async `probe` until it yields a value (deadline 20 s).
pub async fn wait_for_async<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What a webhook post answered.
pub struct Answer {
    pub status: u16,
    pub json: serde_json::Value,
}

pub async fn post(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    let mut req = reqwest::Client::new().post(url).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("non-JSON answer: {text}"));
    Answer { status, json }
}

pub async fn post_sellix(d: &Daemon, file: &str, event: &str, sig: &str) -> Answer {
    let headers = [("x-sellix-event", event), ("x-sellix-signature", sig)];
    post(
        &d.url("/hooks/sellix"),
        &headers,
        fixture(&format!("sellix/{file}")),
    )
    .await
}

pub fn sign(body: &[u8]) -> String {
    storeflow::sources::verify::sign_sha512_hex(SELLIX_SECRET.as_bytes(), body)
}

/// Runs the real binary with `args` (and no `RUST_LOG` or Sellix secret from the caller's
/// environment, so its output does not depend on who runs the tests).
pub fn storeflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_storeflow"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("SELLIX_WEBHOOK_SECRET")
        .output()
        .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A daemon running as a real `storeflow serve` process.
pub struct Process {
    pub child: Child,
    pub base: String,
}

impl Process {
    /// Writes `yaml` (plus `listen: 127.0.0.1:0` and `data_dir`) to `dir`, starts the binary and
    /// waits until it logs the address it listens on.
    pub fn start(dir: &Path, yaml: &str) -> Process {
        let config = dir.join("storeflow.yaml");
        let data = dir.join("data");
        std::fs::write(
            &config,
            format!("listen: 127.0.0.1:0\ndata_dir: {}\n{yaml}", data.display()),
        )
        .unwrap();
        let mut serve = Command::new(env!("CARGO_BIN_EXE_storeflow"));
        serve.args(["serve", "-c"]).arg(&config);
        Process::spawn(&mut serve)
    }

    /// Spawns `serve` (a `storeflow serve` command, set up by the caller) with its log at INFO on
    /// a pipe, and waits until it logs the address it listens on.
    pub fn spawn(serve: &mut Command) -> Process {
        let mut child = serve
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on ").nth(1) {
                    let _ = tx.send(addr.split_whitespace().next().unwrap_or("").to_string());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("daemon did not report its address within 30 s");
        Process { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM and waits (with a deadline) for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not exit within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every event id in the journal under `data`.
pub fn journal_ids(data: &Path) -> Vec<String> {
    let store = SqliteStore::open_existing(&data.join("storeflow.db")).unwrap();
    store
        .recent_events(1_000_000)
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect()
}
