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

impl SourcesConfig {
    /// Shop names are unique path segments; each platform's shops use its own secret keys.
    pub(super) fn validate(&self) -> Result<(), String> {
        let sellix = &self.sellix;
        check_pair(
            "sources.sellix",
            "secret",
            &sellix.secret,
            &sellix.previous_secret,
        )?;
        check_shops("sellix", &sellix.shops, sellix.secret.is_set(), |s| {
            (&s.secret, &s.previous_secret, &s.token, "token")
        })?;
        let selldone = &self.selldone;
        check_pair(
            "sources.selldone",
            "token",
            &selldone.token,
            &selldone.previous_token,
        )?;
        check_shops("selldone", &selldone.shops, selldone.token.is_set(), |s| {
            (&s.token, &s.previous_token, &s.secret, "secret")
        })
    }
}

fn check_pair(at: &str, key: &str, current: &Secret, previous: &Secret) -> Result<(), String> {
    if previous.is_set() && !current.is_set() {
        return Err(format!(
            "{at}: previous_{key} is set but {key} is not; during a rotation both are set"
        ));
    }
    Ok(())
}

/// `pick` gives a shop's (key, previous key, the other platform's key, its name).
fn check_shops(
    source: &str,
    shops: &[ShopConfig],
    top_level_secret: bool,
    pick: impl Fn(&ShopConfig) -> (&Secret, &Secret, &Secret, &'static str),
) -> Result<(), String> {
    let key = if source == "sellix" {
        "secret"
    } else {
        "token"
    };
    let mut seen = std::collections::HashSet::new();
    for (i, shop) in shops.iter().enumerate() {
        let at = format!("sources.{source}.shops[{i}]");
        let valid = !shop.name.is_empty()
            && shop
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(format!(
                "{at}: name `{}` must be letters, digits, `-` or `_` (it is a URL path segment)",
                shop.name
            ));
        }
        if !seen.insert(shop.name.as_str()) {
            return Err(format!("{at}: shop `{}` is listed twice", shop.name));
        }
        if shop.name == "default" && top_level_secret {
            return Err(format!(
                "{at}: `default` is the shop of sources.{source}.{key}; name this one differently"
            ));
        }
        let (current, previous, other, other_key) = pick(shop);
        if other.is_set() {
            return Err(format!(
                "{at}: {source} shops have `{key}`, not `{other_key}`"
            ));
        }
        check_pair(&at, key, current, previous)?;
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

    use crate::config::{Config, ConfigError};

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
}
