//! The `sources` section of `storeflow.yaml`: each platform's secret, its shops (DESIGN.md §14),
//! and who may post.

use std::net::IpAddr;

use serde::Deserialize;

use super::Secret;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourcesConfig {
    pub sellix: SellixConfig,
    pub selldone: SelldoneConfig,
}

/// Why the `sources` section cannot be served; `at` is the key path (`sources.sellix.shops[1]`).
#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    #[error("{at}: previous_{key} is set but {key} is not; during a rotation both are set")]
    PreviousWithoutCurrent { at: String, key: &'static str },
    #[error("{at}: name `{name}` must be letters, digits, `-` or `_` (it is a URL path segment)")]
    ShopName { at: String, name: String },
    #[error("{at}: shop `{name}` is listed twice")]
    ShopTwice { at: String, name: String },
    #[error("{at}: `default` is the shop of sources.{platform}.{key}; name this one differently")]
    DefaultShop {
        at: String,
        platform: &'static str,
        key: &'static str,
    },
    #[error("{at}: {platform} shops have `{key}`, not `{other_key}`")]
    WrongKey {
        at: String,
        platform: &'static str,
        key: &'static str,
        other_key: &'static str,
    },
}

impl SourcesConfig {
    /// Shop names are unique path segments; each platform's shops use its own secret keys.
    pub(super) fn validate(&self) -> Result<(), SourcesError> {
        let sellix = &self.sellix;
        Platform {
            source: "sellix",
            key: "secret",
            other_key: "token",
            current: &sellix.secret,
            previous: &sellix.previous_secret,
            shops: &sellix.shops,
        }
        .validate(|s| (&s.secret, &s.previous_secret, &s.token))?;
        let selldone = &self.selldone;
        Platform {
            source: "selldone",
            key: "token",
            other_key: "secret",
            current: &selldone.token,
            previous: &selldone.previous_token,
            shops: &selldone.shops,
        }
        .validate(|s| (&s.token, &s.previous_token, &s.secret))
    }
}

/// One platform's keys as the checks see them: its key name, the other platform's, its secrets.
struct Platform<'a> {
    source: &'static str,
    key: &'static str,
    other_key: &'static str,
    current: &'a Secret,
    previous: &'a Secret,
    shops: &'a [ShopConfig],
}

impl Platform<'_> {
    /// `pick` gives a shop's (key, previous key, the other platform's key).
    fn validate(
        &self,
        pick: impl Fn(&ShopConfig) -> (&Secret, &Secret, &Secret),
    ) -> Result<(), SourcesError> {
        let (source, key) = (self.source, self.key);
        check_pair(
            format!("sources.{source}"),
            key,
            self.current,
            self.previous,
        )?;
        let mut seen = std::collections::HashSet::new();
        for (i, shop) in self.shops.iter().enumerate() {
            let at = format!("sources.{source}.shops[{i}]");
            let name = || shop.name.clone();
            if !is_path_segment(&shop.name) {
                return Err(SourcesError::ShopName { at, name: name() });
            }
            if !seen.insert(shop.name.as_str()) {
                return Err(SourcesError::ShopTwice { at, name: name() });
            }
            if shop.name == "default" && self.current.is_set() {
                return Err(SourcesError::DefaultShop {
                    at,
                    platform: source,
                    key,
                });
            }
            let (current, previous, other) = pick(shop);
            if other.is_set() {
                let other_key = self.other_key;
                return Err(SourcesError::WrongKey {
                    at,
                    platform: source,
                    key,
                    other_key,
                });
            }
            check_pair(at, key, current, previous)?;
        }
        Ok(())
    }
}

fn is_path_segment(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check_pair(
    at: String,
    key: &'static str,
    current: &Secret,
    previous: &Secret,
) -> Result<(), SourcesError> {
    if previous.is_set() && !current.is_set() {
        return Err(SourcesError::PreviousWithoutCurrent { at, key });
    }
    Ok(())
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SellixConfig {
    /// The shop's webhook secret; empty means "not configured" (loopback clients only).
    pub secret: Secret,
    /// The secret being retired during a rotation: still accepted, and counted, until removed.
    pub previous_secret: Secret,
    /// More shops, each on its own route `/hooks/sellix/{name}` (DESIGN.md §14).
    pub shops: Vec<ShopConfig>,
    /// When non-empty, only these client addresses may post (Sellix sends from 99.81.24.41).
    pub allow_ips: Vec<IpAddr>,
    /// Take the client address from `X-Forwarded-For` (the entry our proxy added, i.e. the
    /// last one) instead of the TCP peer. Only safe behind a proxy that sets the header.
    pub trust_proxy: bool,
    /// Serve a shop without a secret although the listener is not on loopback.
    pub allow_unsigned: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelldoneConfig {
    /// The secret token in the URL registered with Selldone; empty means loopback clients only.
    pub token: Secret,
    /// The token being retired during a rotation.
    pub previous_token: Secret,
    /// More shops, each on its own route `/hooks/selldone/{name}/{token}`.
    pub shops: Vec<ShopConfig>,
    /// When non-empty, only these client addresses may post.
    pub allow_ips: Vec<IpAddr>,
    /// As for Sellix: the client address is the last `X-Forwarded-For` entry.
    pub trust_proxy: bool,
    /// Serve a shop without a token although the listener is not on loopback.
    pub allow_unsigned: bool,
}

/// One shop of a platform. Sellix shops write `secret`/`previous_secret`, Selldone shops
/// `token`/`previous_token`; the other pair is an error naming the right key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShopConfig {
    pub name: String,
    pub secret: Secret,
    pub previous_secret: Secret,
    pub token: Secret,
    pub previous_token: Secret,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, ConfigError, SourcesError};

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("storeflow.yaml"), |_| None)
    }

    #[test]
    fn shops_are_validated_with_the_key_that_is_wrong() {
        let c = parse(
            "sources:\n  sellix:\n    shops:\n      - { name: main, secret: a, previous_secret: b }\n",
        )
        .unwrap();
        assert_eq!(c.sources.sellix.shops[0].previous_secret.expose(), "b");
        let err = |yaml: &str| parse(yaml).unwrap_err().to_string();
        let msg = err("sources:\n  sellix:\n    shops: [{ name: main, token: a }]\n");
        assert!(
            msg.contains("sellix shops have `secret`, not `token`"),
            "{msg}"
        );
        let msg = err(
            "sources:\n  sellix:\n    shops: [{ name: a, secret: x }, { name: a, secret: y }]\n",
        );
        assert!(msg.contains("shop `a` is listed twice"), "{msg}");
        let msg = err("sources:\n  selldone:\n    shops: [{ name: \"a/b\", token: x }]\n");
        assert!(msg.contains("URL path segment"), "{msg}");
        let msg = err("sources:\n  selldone:\n    previous_token: x\n");
        assert!(
            msg.contains("previous_token is set but token is not"),
            "{msg}"
        );
    }

    #[test]
    fn a_sources_error_carries_the_shop_it_is_about() {
        let e = parse("sources:\n  sellix:\n    shops: [{ name: a, secret: x }, { name: a }]\n");
        let Err(ConfigError::Sources {
            source: SourcesError::ShopTwice { at, name },
            ..
        }) = e
        else {
            panic!("{e:?}");
        };
        assert_eq!(
            (at.as_str(), name.as_str()),
            ("sources.sellix.shops[1]", "a")
        );
    }
}
