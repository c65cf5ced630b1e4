//! Several shops per platform, each with its own secret and, during a rotation, the previous one
//! (DESIGN.md §14). The single-shop form of the config is the shop `default` on the old routes.

use serde::Serialize;

use crate::config::{Secret, ShopConfig};

pub use crate::model::event::DEFAULT_SHOP;

/// Which configured secret a delivery was verified with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretUsed {
    /// The shop's `secret` / `token`.
    Current,
    /// The shop's `previous_secret` / `previous_token` (a rotation in progress).
    Previous,
    /// No secret is configured: an unsigned request from this machine.
    None,
}

impl SecretUsed {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretUsed::Current => "current",
            SecretUsed::Previous => "previous",
            SecretUsed::None => "none",
        }
    }
}

/// One shop's name and secrets.
#[derive(Debug, Clone)]
pub struct ShopSecrets {
    pub name: String,
    pub current: Secret,
    pub previous: Secret,
}

impl ShopSecrets {
    /// Whether any secret is configured (else only loopback clients are served).
    pub fn is_signed(&self) -> bool {
        self.current.is_set() || self.previous.is_set()
    }

    /// The first configured secret that `matches` accepts: the current one, then the previous.
    pub fn matching(&self, matches: impl Fn(&str) -> bool) -> Option<SecretUsed> {
        [
            (&self.current, SecretUsed::Current),
            (&self.previous, SecretUsed::Previous),
        ]
        .into_iter()
        .find(|(s, _)| s.is_set() && matches(s.expose()))
        .map(|(_, used)| used)
    }
}

/// The shops of one platform.
#[derive(Debug, Clone, Default)]
pub struct Shops(Vec<ShopSecrets>);

impl Shops {
    /// The shop `default` from the top-level keys (when they are set, or when no `shops:` list
    /// exists), then every listed shop. `pick` reads a listed shop's (current, previous) pair.
    pub fn from_config(
        top: (&Secret, &Secret),
        listed: &[ShopConfig],
        pick: impl Fn(&ShopConfig) -> (&Secret, &Secret),
    ) -> Shops {
        let mut shops = Vec::new();
        if listed.is_empty() || top.0.is_set() || top.1.is_set() {
            shops.push(ShopSecrets {
                name: DEFAULT_SHOP.into(),
                current: top.0.clone(),
                previous: top.1.clone(),
            });
        }
        shops.extend(listed.iter().map(|s| {
            let (current, previous) = pick(s);
            ShopSecrets {
                name: s.name.clone(),
                current: current.clone(),
                previous: previous.clone(),
            }
        }));
        Shops(shops)
    }

    pub fn get(&self, name: &str) -> Option<&ShopSecrets> {
        self.0.iter().find(|s| s.name == name)
    }

    pub fn has_default(&self) -> bool {
        self.get(DEFAULT_SHOP).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = &ShopSecrets> {
        self.0.iter()
    }

    /// Names of the listed shops other than `default`, for route listings.
    pub fn named(&self) -> Vec<&str> {
        self.0
            .iter()
            .map(|s| s.name.as_str())
            .filter(|n| *n != DEFAULT_SHOP)
            .collect()
    }

    /// Names of the shops without any secret.
    pub fn unsigned(&self) -> Vec<&str> {
        self.0
            .iter()
            .filter(|s| !s.is_signed())
            .map(|s| s.name.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop(name: &str, secret: &str, previous: &str) -> ShopConfig {
        ShopConfig {
            name: name.into(),
            secret: Secret::new(secret),
            previous_secret: Secret::new(previous),
            ..ShopConfig::default()
        }
    }

    fn pick(s: &ShopConfig) -> (&Secret, &Secret) {
        (&s.secret, &s.previous_secret)
    }

    #[test]
    fn single_shop_form_is_the_default_shop() {
        let top = (Secret::new("a"), Secret::default());
        let shops = Shops::from_config((&top.0, &top.1), &[], pick);
        assert!(shops.has_default());
        assert!(shops.named().is_empty());
        let none = Secret::default();
        let shops = Shops::from_config((&none, &none), &[], pick);
        assert_eq!(shops.unsigned(), vec![DEFAULT_SHOP]);
    }

    #[test]
    fn a_shop_list_alone_has_no_default_shop() {
        let none = Secret::default();
        let shops = Shops::from_config((&none, &none), &[shop("main", "m", "old")], pick);
        assert!(!shops.has_default());
        assert_eq!(shops.named(), vec!["main"]);
        let main = shops.get("main").unwrap();
        assert_eq!(main.matching(|s| s == "m"), Some(SecretUsed::Current));
        assert_eq!(main.matching(|s| s == "old"), Some(SecretUsed::Previous));
        assert_eq!(main.matching(|s| s == "x"), None);
    }
}
