//! `on:` patterns and the index that finds the candidate rules of an event without looking at
//! the others: exact topics and canonical names in hash maps, globs in a short list (each
//! distinct glob once, however many rules share it).
//!
//! A pattern with a `/` matches the event's `topic` (`sellix/order:disputed`), one without
//! matches its canonical name (`order.shipped`); `*` matches any run of characters, and a lone
//! `*` matches every event, including ones with no canonical name.

use std::collections::HashMap;

use crate::model::event::{Event, CANONICAL_NAMES};

/// Sources an event's topic can start with.
pub const SOURCES: &[&str] = &["sellix", "selldone"];

/// A `*` glob, split at the stars.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Glob {
    parts: Vec<String>,
}

impl Glob {
    pub fn new(pattern: &str) -> Self {
        Glob {
            parts: pattern.split('*').map(str::to_string).collect(),
        }
    }

    pub fn is_match(&self, s: &str) -> bool {
        let (first, rest) = match self.parts.split_first() {
            Some(x) => x,
            None => return s.is_empty(),
        };
        let Some(mut s) = s.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return s.is_empty();
        };
        for part in middle {
            match s.find(part.as_str()) {
                Some(i) => s = &s[i + part.len()..],
                None => return false,
            }
        }
        s.len() >= last.len() && s.ends_with(last.as_str())
    }
}

/// Whether a pattern is for topics (has a `/`).
pub fn is_topic(pattern: &str) -> bool {
    pattern.contains('/')
}

/// Why `pattern` can never match a known event, with a hint; `None` when it can.
pub fn never_matches(pattern: &str) -> Option<(String, String)> {
    if pattern == "*" {
        return None;
    }
    let glob = Glob::new(pattern);
    if let Some((source, _)) = pattern.split_once('/') {
        let sg = Glob::new(source);
        return (!SOURCES.iter().any(|s| sg.is_match(s))).then(|| {
            (
                format!("`on: {pattern}` can never match: no source `{source}`"),
                format!("topics start with {}", SOURCES.map_join()),
            )
        });
    }
    // Sellix subscription names are open-ended (`subscription.plan.cancelled-merchant`).
    if pattern.starts_with("subscription.") || CANONICAL_NAMES.iter().any(|n| glob.is_match(n)) {
        return None;
    }
    let near = crate::template::suggest::nearest(pattern, CANONICAL_NAMES);
    Some((
        format!("`on: {pattern}` can never match: no event is named like it"),
        match near {
            Some(n) => format!("did you mean `{n}`?"),
            None => "use a canonical name (`order.paid`) or a topic (`sellix/order:paid`)".into(),
        },
    ))
}

trait MapJoin {
    fn map_join(&self) -> String;
}

impl MapJoin for &[&str] {
    fn map_join(&self) -> String {
        self.iter()
            .map(|s| format!("`{s}/`"))
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

/// Rule indexes (load order) by the patterns they listen on.
#[derive(Debug, Default)]
pub struct Index {
    by_topic: HashMap<String, Vec<usize>>,
    by_canonical: HashMap<String, Vec<usize>>,
    /// Distinct globs: whether they apply to the topic, and the rules using them.
    globs: Vec<(Glob, bool, Vec<usize>)>,
    glob_slots: HashMap<(Glob, bool), usize>,
    everything: Vec<usize>,
}

impl Index {
    pub fn add(&mut self, rule: usize, pattern: &str) {
        let topic = is_topic(pattern);
        if pattern == "*" {
            self.everything.push(rule);
        } else if pattern.contains('*') {
            let key = (Glob::new(pattern), topic);
            let slot = *self.glob_slots.entry(key.clone()).or_insert_with(|| {
                self.globs.push((key.0, key.1, Vec::new()));
                self.globs.len() - 1
            });
            self.globs[slot].2.push(rule);
        } else {
            let map = if topic {
                &mut self.by_topic
            } else {
                &mut self.by_canonical
            };
            map.entry(pattern.to_string()).or_default().push(rule);
        }
    }

    /// The rules whose `on` matches the event, in load order, each once.
    pub fn candidates(&self, event: &Event) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        out.extend_from_slice(&self.everything);
        if let Some(rules) = self.by_topic.get(&event.topic) {
            out.extend_from_slice(rules);
        }
        let canonical = event.canonical.as_deref();
        if let Some(rules) = canonical.and_then(|c| self.by_canonical.get(c)) {
            out.extend_from_slice(rules);
        }
        for (glob, topic, rules) in &self.globs {
            let subject = if *topic {
                Some(event.topic.as_str())
            } else {
                canonical
            };
            if subject.is_some_and(|s| glob.is_match(s)) {
                out.extend_from_slice(rules);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_anywhere() {
        assert!(Glob::new("sellix/order:*").is_match("sellix/order:paid"));
        assert!(!Glob::new("sellix/order:*").is_match("sellix/product:stock"));
        assert!(Glob::new("order.*").is_match("order.shipped"));
        assert!(Glob::new("*.paid").is_match("order.paid"));
        assert!(Glob::new("*der*ai*").is_match("order.paid"));
        assert!(!Glob::new("*.paid").is_match("order.paidx"));
        assert!(Glob::new("a*a").is_match("aa"));
        assert!(!Glob::new("ab*ba").is_match("aba"));
        assert!(Glob::new("exact").is_match("exact"));
        assert!(!Glob::new("exact").is_match("exactly"));
    }

    #[test]
    fn never_matching_patterns_are_found() {
        assert!(never_matches("order.*").is_none());
        assert!(never_matches("order.shipped").is_none());
        assert!(never_matches("*").is_none());
        assert!(never_matches("sellix/anything").is_none());
        assert!(never_matches("sell*/order:paid").is_none());
        let (msg, hint) = never_matches("order.shiped").unwrap();
        assert_eq!(
            msg,
            "`on: order.shiped` can never match: no event is named like it"
        );
        assert_eq!(hint, "did you mean `order.shipped`?");
        let (msg, hint) = never_matches("shopify/orders:create").unwrap();
        assert_eq!(
            msg,
            "`on: shopify/orders:create` can never match: no source `shopify`"
        );
        assert_eq!(hint, "topics start with `sellix/` or `selldone/`");
    }
}
