//! A throwaway PostgreSQL cluster for tests: one per test process, in a directory of its own
//! under the temp dir (`initdb`, then `pg_ctl start` on a free loopback port with the socket in
//! that directory), run as the `postgres` user when the tests run as root (as CI does), and
//! stopped and removed by a watchdog once the test process has ended. Each test takes a fresh
//! database ([`Cluster::database`]).
//!
//! Standard library only: the unit tests and the integration tests (`tests/it/postgres.rs`,
//! through `#[path]`) share this file. When PostgreSQL cannot be started the test fails with
//! the reason: it is not skipped.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The password of the cluster's superuser (the URL carries it; host connections check it).
pub const PASSWORD: &str = "storeflow-test-pw";
const USER: &str = "storeflow";

/// The test process's cluster.
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Who runs the server: `Some` when the tests run as root.
    run_as: Option<String>,
}

/// The process's cluster, started on first use.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    match CLUSTER.get_or_init(Cluster::start) {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot start a PostgreSQL cluster for the tests: {e}\n\
             (install Debian's `postgresql` package; scripts/test does it)"
        ),
    }
}

/// The directory holding `initdb` and `pg_ctl`: `$PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("no /usr/lib/postgresql ({e})"))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no initdb under /usr/lib/postgresql/*/bin".into())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

impl Cluster {
    /// A cluster of its own (e.g. to stop it without disturbing other tests), stopped and
    /// removed when dropped.
    pub fn private() -> Cluster {
        match Cluster::start() {
            Ok(c) => c,
            Err(e) => panic!("cannot start a PostgreSQL cluster for the tests: {e}"),
        }
    }

    fn start() -> Result<Cluster, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let bin = bin_dir()?;
        let run_as = is_root().then(|| "postgres".to_string());
        let dir = std::env::temp_dir().join(format!(
            "storeflow-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sock")).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("pw"), PASSWORD).map_err(|e| e.to_string())?;
        if let Some(user) = &run_as {
            run(Command::new("chown")
                .arg("-R")
                .arg(format!("{user}:"))
                .arg(&dir))?;
        }
        let mut cluster = Cluster {
            dir,
            bin,
            port: 0,
            run_as,
        };
        cluster.watch();
        run(cluster.command("initdb").args([
            "-D",
            &cluster.data().to_string_lossy(),
            "-U",
            USER,
            "--pwfile",
            &cluster.dir.join("pw").to_string_lossy(),
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]))?;
        let mut last = String::new();
        for _ in 0..3 {
            cluster.port = free_port()?;
            match cluster.pg_ctl_start() {
                Ok(()) => return Ok(cluster),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `program` of the PostgreSQL binaries, as the server's user.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.join("sock").display()
        );
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-t", "30", "-o", &options, "-l"])
            .arg(self.dir.join("log"))
            .arg("start")
            .stdout(Stdio::null()))
    }

    /// Stops the server (fast shutdown: open connections are cut), as a database outage.
    pub fn stop(&self) -> Result<(), String> {
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-m", "fast", "stop"]))
    }

    /// Starts the server again on the same port (after [`Cluster::stop`]).
    pub fn restart(&self) -> Result<(), String> {
        self.pg_ctl_start()
    }

    /// A watchdog that stops the cluster and removes its directory once this process ended.
    fn watch(&self) {
        let stop = format!(
            "{} -D {} -m immediate stop",
            self.bin.join("pg_ctl").display(),
            self.data().display()
        );
        let stop = match &self.run_as {
            Some(user) => format!("runuser -u {user} -- {stop}"),
            None => stop,
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; \
             rm -rf {dir}",
            pid = std::process::id(),
            dir = self.dir.display()
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }

    /// Runs one SQL statement as the superuser through the socket.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = self
            .command("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.dir.join("sock"))
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                database,
                "-c",
                sql,
            ])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// A fresh, empty database; answers its `postgres://` URL (with the password).
    pub fn database(&self) -> String {
        self.named_database().1
    }

    /// A fresh, empty database: its name and URL.
    pub fn named_database(&self) -> (String, String) {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        if let Err(e) = self.psql("postgres", &format!("CREATE DATABASE {name}")) {
            panic!("cannot create test database {name}: {e}");
        }
        let url = self.url(&name);
        (name, url)
    }

    /// The URL of `database` in this cluster.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = run(self.command("pg_ctl").arg("-D").arg(self.data()).args([
            "-w",
            "-m",
            "immediate",
            "stop",
        ]));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
