//! The built-in action table as rules see it: [`crate::model::actions`] plus the mapping of its
//! escaping modes onto the template engine's.

pub use crate::model::actions::*;

use crate::template::render::Escape;

/// How the values interpolated into parameter `param` of `kind` are escaped in a template.
pub fn escape(kind: &str, param: &str) -> Escape {
    match escaping(kind, param) {
        Escaping::Html => Escape::Html,
        Escaping::Slack => Escape::Slack,
        Escaping::SecretRef => Escape::SecretRef,
        Escaping::Verbatim => Escape::None,
    }
}
