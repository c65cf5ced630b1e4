//! The HTTP server: webhook intake and health. It never runs rules or actions; it journals and
//! answers.

pub mod dynamic;
pub mod health;
pub mod intake;
pub mod rejection;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use warp::Filter;

pub use health::Health;
pub use intake::Intake;

/// All routes, with the one rejection handler.
pub fn routes(
    intake: Arc<Intake>,
    health: Arc<Health>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone {
    intake::route(intake)
        .or(health::route(health))
        .unify()
        .recover(rejection::recover)
        .unify()
}

/// Serves `routes` on an already bound `listener` until `shutdown` resolves, then finishes the
/// requests in flight.
pub async fn run(
    listener: TcpListener,
    intake: Arc<Intake>,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    warp::serve(routes(intake, health))
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
}
