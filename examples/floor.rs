//! The floor under the intake benchmark (`bench/floor.sh`, results in BENCHMARKS.md, issue 11
//! fifth round): the least any verifying webhook receiver built like storeflow must do per
//! request, on the same stack (tokio multi-thread runtime, hyper HTTP/1.1 through warp), so that
//! storeflow's figures can be read against what this machine allows at all.
//!
//! `floor --listen 127.0.0.1:0 --secret S --mode MODE [--data DIR]` prints `listening on ADDR`,
//! then answers `POST /hooks/sellix`: 401 without or with a wrong `X-Sellix-Signature`
//! (HMAC-SHA512 of the raw body, constant-time compare), else 200 `{"ok":true}` after
//! - `verify`: nothing more (HTTP + HMAC: the floor of any verifying receiver);
//! - `parse`: + parsing the body as JSON (what every receiver that routes on content does);
//! - `file`: + appending the body to one file, answered after a group `fdatasync` (the floor of
//!   a durable receiver: one writer thread, every request waits for the sync that covers it);
//! - `sqlite`: + inserting the body into a one-table SQLite journal (WAL, `synchronous = FULL`),
//!   group commit on one writer thread (storeflow's journal without its indexes, dedupe or rows).
//!
//! `--parse value|typed|none` says how `parse`, `file` and `sqlite` read the body: `value` (the
//! default) builds a `serde_json::Value` as storeflow's intake does; `typed` validates the whole
//! body but reads only the fields intake needs (event, data.uniqid, customer email) into borrowed
//! structs; `none` skips parsing. In `peers.sh` a mode may carry it: `FLOOR="sqlite:typed"`.

// A benchmark tool, not daemon code: failing loudly on a broken setup is what we want here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::mpsc;

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha512;
use tokio::sync::oneshot;
use warp::http::StatusCode;
use warp::Filter;

type Job = (Bytes, oneshot::Sender<()>);

#[derive(Clone, Copy, PartialEq)]
enum Parse {
    Value,
    Typed,
    None,
}

/// The few fields intake needs; everything else is validated and skipped.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Typed<'a> {
    #[serde(borrow)]
    event: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    data: TypedData<'a>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct TypedData<'a> {
    #[serde(borrow)]
    uniqid: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    customer_email: Option<std::borrow::Cow<'a, str>>,
}

fn parsed(parse: Parse, body: &[u8]) -> bool {
    match parse {
        Parse::Value => serde_json::from_slice::<serde_json::Value>(body).is_ok(),
        Parse::Typed => serde_json::from_slice::<Typed<'_>>(body).is_ok(),
        Parse::None => true,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Verify,
    Parse,
    File,
    Sqlite,
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listen = arg(&args, "--listen").unwrap_or_else(|| "127.0.0.1:0".into());
    let secret = arg(&args, "--secret").expect("--secret");
    let mode = match arg(&args, "--mode").as_deref() {
        Some("verify") | None => Mode::Verify,
        Some("parse") => Mode::Parse,
        Some("file") => Mode::File,
        Some("sqlite") => Mode::Sqlite,
        Some(other) => panic!("unknown --mode {other}: verify, parse, file or sqlite"),
    };
    let parse = match arg(&args, "--parse").as_deref() {
        _ if mode == Mode::Verify => Parse::None,
        Some("value") | None => Parse::Value,
        Some("typed") => Parse::Typed,
        Some("none") => Parse::None,
        Some(other) => panic!("unknown --parse {other}: value, typed or none"),
    };
    let data = PathBuf::from(arg(&args, "--data").unwrap_or_else(|| ".".into()));
    let writer = (mode == Mode::File || mode == Mode::Sqlite).then(|| spawn_writer(mode, &data));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let key: &'static [u8] = Box::leak(secret.into_bytes().into_boxed_slice());
        let route = warp::post()
            .and(warp::path!("hooks" / "sellix"))
            .and(warp::header::optional::<String>("x-sellix-signature"))
            .and(warp::body::content_length_limit(1 << 20))
            .and(warp::body::bytes())
            .then(move |sig: Option<String>, body: Bytes| {
                let writer = writer.clone();
                async move {
                    let unauthorized = || {
                        warp::reply::with_status(
                            r#"{"error":"bad signature"}"#,
                            StatusCode::UNAUTHORIZED,
                        )
                    };
                    if !signed(key, sig.as_deref(), &body) {
                        return unauthorized();
                    }
                    {
                        if !parsed(parse, &body) {
                            return warp::reply::with_status(
                                r#"{"error":"not json"}"#,
                                StatusCode::BAD_REQUEST,
                            );
                        }
                    }
                    if let Some(writer) = writer {
                        let (done, written) = oneshot::channel();
                        writer.send((body, done)).unwrap();
                        written.await.unwrap();
                    }
                    warp::reply::with_status(r#"{"ok":true}"#, StatusCode::OK)
                }
            });
        let listener = tokio::net::TcpListener::bind(&listen).await.unwrap();
        println!("listening on {}", listener.local_addr().unwrap());
        std::io::stdout().flush().unwrap();
        warp::serve(route).incoming(listener).run().await;
    });
}

fn signed(key: &[u8], sig: Option<&str>, body: &[u8]) -> bool {
    let Some(sig) = sig else { return false };
    let Ok(expected) = hex::decode(sig.trim()) else {
        return false;
    };
    let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// One writer thread: takes every request waiting, writes them, syncs once, answers them all.
fn spawn_writer(mode: Mode, data: &std::path::Path) -> mpsc::Sender<Job> {
    std::fs::create_dir_all(data).unwrap();
    let (tx, rx) = mpsc::channel::<Job>();
    let data = data.to_path_buf();
    std::thread::Builder::new()
        .name("floor-writer".into())
        .spawn(move || {
            let mut file = (mode == Mode::File).then(|| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(data.join("floor.log"))
                    .unwrap()
            });
            let mut db = (mode == Mode::Sqlite).then(|| {
                let db = rusqlite::Connection::open(data.join("floor.db")).unwrap();
                db.pragma_update(None, "journal_mode", "WAL").unwrap();
                db.pragma_update(None, "synchronous", "FULL").unwrap();
                db.execute_batch("CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, body BLOB NOT NULL)")
                    .unwrap();
                db
            });
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                batch.extend(rx.try_iter());
                if let Some(file) = file.as_mut() {
                    for (body, _) in &batch {
                        file.write_all(&(body.len() as u32).to_le_bytes()).unwrap();
                        file.write_all(body).unwrap();
                    }
                    file.sync_data().unwrap();
                }
                if let Some(db) = db.as_mut() {
                    let tx = db.transaction().unwrap();
                    {
                        let mut insert = tx
                            .prepare_cached("INSERT INTO events (body) VALUES (?1)")
                            .unwrap();
                        for (body, _) in &batch {
                            insert.execute([&body[..]]).unwrap();
                        }
                    }
                    tx.commit().unwrap();
                }
                for (_, done) in batch {
                    let _ = done.send(());
                }
            }
        })
        .unwrap();
    tx
}
