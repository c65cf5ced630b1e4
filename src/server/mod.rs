//! The HTTP server: webhook intake and health. It never runs rules or actions; it journals and
//! answers.
//!
//! Connections are accepted here rather than by `warp::serve`, so that a client that never
//! finishes its headers is closed after `intake.header_timeout` and the number of connections
//! held stays under `intake.max_connections` ([`conn`]).

pub mod api;
pub mod conn;
pub mod dynamic;
pub mod health;
pub mod intake;
pub mod metrics;
pub mod rejection;
pub mod tls;
pub mod ui;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use warp::Filter;

pub use health::Health;
pub use intake::Intake;
pub use metrics::Metrics;
pub use tls::Tls;

/// Connection limits (`intake.header_timeout`, `intake.max_connections`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub max_connections: usize,
}

/// How connections are served: limits, and HTTPS when `tls` is set.
#[derive(Clone)]
pub struct Listening {
    pub limits: Limits,
    pub tls: Option<Arc<Tls>>,
}

/// How long the accept loop pauses after an accept error (out of file descriptors), so that it
/// never spins.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// What the routes share.
#[derive(Clone)]
pub struct Served {
    pub intake: Arc<Intake>,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub api: Arc<api::Api>,
    pub console: Arc<ui::Console>,
}

/// All routes, with the one rejection handler.
pub fn routes(
    served: Served,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone {
    let Served {
        intake,
        health,
        metrics,
        api,
        console,
    } = served;
    let known = Arc::new(intake.sources.routes());
    intake::route(intake)
        .or(health::route(health))
        .unify()
        .or(metrics::route(metrics))
        .unify()
        .or(api::route(api))
        .unify()
        .or(ui::route(console))
        .unify()
        .recover(move |r| rejection::recover(r, known.clone()))
        .unify()
}

/// Serves `routes` on an already bound `listener` until `shutdown` resolves, then finishes the
/// requests in flight.
pub async fn run(
    listener: TcpListener,
    served: Served,
    listening: Listening,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let service = warp::service(routes(served));
    let limits = listening.limits;
    let registry = conn::Registry::new(limits.max_connections);
    let graceful = GracefulShutdown::new();
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut accept_errors = 0u64;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = accept(&listener, &mut accept_errors) => match accepted {
                Some(pair) => pair,
                None => continue,
            },
            () = &mut shutdown => break,
        };
        let Some(admitted) = registry.admit() else {
            drop(stream);
            continue;
        };
        let inner = TowerToHyperService::new(service.clone());
        let busy = admitted.busy.clone();
        let svc = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
            req.extensions_mut().insert(conn::PeerAddr(peer));
            let guard = conn::BusyGuard::new(&busy);
            let served = hyper::service::Service::call(&inner, req);
            async move {
                let response = served.await;
                drop(guard);
                response
            }
        });
        let connection = Connection {
            http1: http1.clone(),
            watcher: graceful.watcher(),
            tls: listening.tls.as_ref().map(|t| t.acceptor()),
            handshake_timeout: limits.header_timeout,
        };
        tokio::spawn(async move {
            tokio::select! {
                () = connection.serve(stream, peer, svc) => {}
                () = admitted.close.cancelled() => {}
            }
            drop(admitted);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// What one connection's task needs to serve it.
struct Connection {
    http1: hyper::server::conn::http1::Builder,
    watcher: hyper_util::server::graceful::Watcher,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// The TLS handshake is bounded like the headers (`intake.header_timeout`).
    handshake_timeout: Duration,
}

impl Connection {
    async fn serve<S>(self, stream: TcpStream, peer: SocketAddr, svc: S)
    where
        S: hyper::service::HttpService<Incoming> + Send + 'static,
        S::Future: Send + 'static,
        S::ResBody: Send + 'static,
        <S::ResBody as hyper::body::Body>::Data: Send,
        <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Some(acceptor) = self.tls else {
            let conn = self.http1.serve_connection(TokioIo::new(stream), svc);
            let _ = self.watcher.watch(conn).await;
            return;
        };
        let stream =
            match tokio::time::timeout(self.handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
        let conn = self.http1.serve_connection(TokioIo::new(stream), svc);
        let _ = self.watcher.watch(conn).await;
    }
}

/// The next connection; `None` after an accept error (logged sparingly: the 1st, 2nd, 4th, 8th…
/// in a row), after a pause so a loop on "too many open files" never spins.
async fn accept(listener: &TcpListener, errors: &mut u64) -> Option<(TcpStream, SocketAddr)> {
    match listener.accept().await {
        Ok(pair) => {
            *errors = 0;
            Some(pair)
        }
        Err(e) => {
            *errors += 1;
            if errors.is_power_of_two() {
                tracing::error!(error = %e, in_a_row = *errors, "cannot accept a connection");
            }
            tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            None
        }
    }
}
