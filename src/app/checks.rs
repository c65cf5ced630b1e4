//! What the daemon checks and reports before it serves: unsigned shops on a public listener, the
//! open-file limit, deliveries per secret.

use tokio::net::TcpListener;

use super::AppError;
use crate::config::Config;
use crate::journal::Reader;
use crate::server;
use crate::sources;

/// Logs a warning for every shop running without a secret; returns the names of their sources.
pub(super) fn warn_insecure(sources: &sources::Sources) -> Vec<&'static str> {
    sources
        .iter()
        .filter_map(|s| {
            let warnings = s.insecure_warnings();
            warnings.iter().for_each(|w| tracing::warn!("{w}"));
            (!warnings.is_empty()).then(|| s.name())
        })
        .collect()
}

/// Unsigned shops are for trying storeflow on this machine: on a listener others can reach they
/// need `allow_unsigned: true`. (Behind a same-host proxy the listener is loopback, and the
/// forwarding headers keep the proxy's clients out: see `sources::client`.)
pub(super) fn refuse_unsigned_on_a_public_listener(
    listener: &TcpListener,
    sources: &sources::Sources,
) -> Result<(), AppError> {
    let Ok(addr) = listener.local_addr() else {
        return Ok(());
    };
    if addr.ip().is_loopback() {
        return Ok(());
    }
    let unsigned: Vec<String> = sources
        .iter()
        .filter(|s| !s.allow_unsigned())
        .flat_map(|s| {
            let (name, key) = (s.name(), s.secret_key());
            let shops = s.shops().unsigned();
            shops
                .into_iter()
                .map(move |shop| format!("sources.{name} shop `{shop}` has no {key}"))
        })
        .collect();
    if unsigned.is_empty() {
        return Ok(());
    }
    Err(AppError::Unsigned {
        addr: addr.to_string(),
        unsigned,
    })
}

/// Raises the soft open-file limit to the hard one, and keeps `intake.max_connections` under it
/// with room for the journal, mail and HTTP clients.
pub(super) fn connection_limits(config: &Config) -> server::Limits {
    const RESERVED_FDS: u64 = 128;
    let soft = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => soft,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    };
    let room = usize::try_from(soft.saturating_sub(RESERVED_FDS).max(16)).unwrap_or(usize::MAX);
    let max_connections = config.intake.max_connections.min(room);
    if max_connections < config.intake.max_connections {
        tracing::warn!(
            "intake.max_connections lowered to {max_connections}: the open-file limit is {soft}"
        );
    }
    tracing::info!(
        max_connections,
        open_file_limit = soft,
        header_timeout = ?config.intake.header_timeout,
        "connection limits"
    );
    server::Limits {
        header_timeout: config.intake.header_timeout,
        max_connections,
    }
}

/// Deliveries per shop and secret so far (from the journal), logged once so a rotated secret can
/// be retired when its count stops growing.
pub(super) fn secret_counts(
    reader: &Reader,
    sources: &sources::Sources,
) -> server::health::SecretCounts {
    let counts = reader
        .read_blocking(|s| s.secret_counts())
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot count deliveries per secret");
            Vec::new()
        });
    for s in sources.iter() {
        for shop in s.shops().iter() {
            let of = |secret: &str| {
                counts
                    .iter()
                    .filter(|c| c.source == s.name() && c.shop == shop.name && c.secret == secret)
                    .map(|c| (c.events, Some(c.last.to_rfc3339())))
                    .next()
                    .unwrap_or((0, None))
            };
            let (current, _) = of("current");
            let (previous, last_previous) = of("previous");
            tracing::info!(
                source = s.name(),
                shop = %shop.name,
                current,
                previous,
                last_previous = last_previous.as_deref().unwrap_or("never"),
                rotating = shop.previous.is_set(),
                "journaled deliveries per secret"
            );
        }
    }
    server::health::SecretCounts::seeded(&counts)
}
