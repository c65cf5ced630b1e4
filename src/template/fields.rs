//! The fixed shapes of `event`, `order` and `rule` as rules see them, so a misspelt field
//! (`order.totl`, `order.customer.emial`) is a load error with "did you mean" instead of a value
//! that silently renders empty and sends an email to `""`.
//!
//! `payload.*` is the platform's own body and stays free-form: it is never checked here.
//! The shapes mirror [`crate::model::event::Event`] (as `Scope::event_json` exposes it) and
//! [`crate::model::event::OrderView`]; a unit test keeps them in step with the serialized types.

use super::suggest::{nearest, suggest};

/// What a field holds.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// Text, a number or null: nothing below it.
    Leaf(&'static str),
    /// A map with exactly these fields.
    Object(&'static [(&'static str, Shape)]),
    /// A list whose items are maps with these fields (`order.items`).
    List(&'static [(&'static str, Shape)]),
}

use Shape::{Leaf, List, Object};

const TEXT: Shape = Leaf("text");
const NUMBER: Shape = Leaf("a number");

/// `event.*` (`shop` names the shop the webhook came for: several shops per platform).
pub const EVENT: &[(&str, Shape)] = &[
    ("id", TEXT),
    ("source", TEXT),
    ("kind", TEXT),
    ("topic", TEXT),
    ("canonical", TEXT),
    ("received_at", TEXT),
    ("shop", TEXT),
];

const CUSTOMER: &[(&str, Shape)] = &[("email", TEXT), ("name", TEXT), ("phone", TEXT)];
const ITEM: &[(&str, Shape)] = &[("title", TEXT), ("quantity", NUMBER), ("price", NUMBER)];
const SHOP: &[(&str, Shape)] = &[("id", TEXT), ("name", TEXT)];

/// `order.*` ([`crate::model::event::OrderView`]).
pub const ORDER: &[(&str, Shape)] = &[
    ("id", TEXT),
    ("status", TEXT),
    ("total", NUMBER),
    ("currency", TEXT),
    ("customer", Object(CUSTOMER)),
    ("items", List(ITEM)),
    ("shop", Object(SHOP)),
];

/// `rule.*` in templates.
pub const RULE: &[(&str, Shape)] = &[("name", TEXT), ("description", TEXT)];

/// A path that names a field the event does not have.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownField {
    /// Index of the offending segment in the path.
    pub segment: usize,
    /// `unknown field `totl` in `order.totl``.
    pub message: String,
    /// "did you mean `total`? `order` has: id, status, ..."
    pub hint: String,
}

/// Checks a dotted path (`order.customer.email`, `order.items.0.title`); `payload.*` and
/// roots that are not fixed pass. Numeric segments index lists.
pub fn check<S: AsRef<str>>(path: &[S]) -> Result<(), UnknownField> {
    let Some(root) = path.first().map(AsRef::as_ref) else {
        return Ok(());
    };
    let mut shape = match root {
        "event" => Object(EVENT),
        "order" => Object(ORDER),
        "rule" => Object(RULE),
        _ => return Ok(()),
    };
    for (i, seg) in path.iter().enumerate().skip(1) {
        let seg = seg.as_ref();
        let here = || join(&path[..i]);
        shape = match shape {
            Object(fields) => match fields.iter().find(|(name, _)| *name == seg) {
                Some((_, next)) => *next,
                None => return Err(unknown(i, seg, &here(), fields)),
            },
            List(fields) if seg.parse::<usize>().is_ok() => Object(fields),
            List(fields) => {
                let first = fields.first().map_or("", |f| f.0);
                return Err(UnknownField {
                    segment: i,
                    message: format!("`{}` is a list; it has no field `{seg}`", here()),
                    hint: format!(
                        "loop over it (`{{% for item in {p} %}}{{{{ item.{first} }}}}{{% endfor %}}`) or index it (`{p}.0.{first}`)",
                        p = here()
                    ),
                });
            }
            Leaf(what) => {
                return Err(UnknownField {
                    segment: i,
                    message: format!("`{}` is {what}; it has no field `{seg}`", here()),
                    hint: format!("use `{}` itself", here()),
                })
            }
        };
    }
    Ok(())
}

fn unknown(i: usize, seg: &str, parent: &str, fields: &[(&str, Shape)]) -> UnknownField {
    let names: Vec<&str> = fields.iter().map(|f| f.0).collect();
    let listed = format!("`{parent}` has: {}", names.join(", "));
    let hint = match nearest(seg, &names) {
        Some(_) => format!("{} {listed}", suggest(seg, &names, "fields")),
        None => listed,
    };
    UnknownField {
        segment: i,
        message: format!("unknown field `{seg}` in `{parent}.{seg}`"),
        hint,
    }
}

fn join<S: AsRef<str>>(parts: &[S]) -> String {
    parts
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(".")
}

/// The `event.…`/`order.…` paths a Rhai expression reads, each with the byte offset of every
/// segment: `order.customer.email.ends_with("x")` gives `order.customer.email` (a segment
/// followed by `(` is a method call and ends the path). String literals and `payload` are
/// skipped; an index (`order.items[0]`) ends the path.
pub fn rhai_paths(src: &str) -> Vec<Vec<(usize, &str)>> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if matches!(c, b'"' | b'\'' | b'`') {
            i = skip_string(bytes, i);
            continue;
        }
        if !is_ident_start(c) {
            i += 1;
            continue;
        }
        let start = i;
        i = ident_end(bytes, i);
        let preceded_by_dot = src[..start].trim_end().ends_with('.');
        if preceded_by_dot || !matches!(&src[start..i], "event" | "order") {
            continue;
        }
        let mut path = vec![(start, &src[start..i])];
        loop {
            let rest = &src[i..];
            let dot = rest.len() - rest.trim_start().len();
            if bytes.get(i + dot) != Some(&b'.') {
                break;
            }
            let seg_start =
                i + dot + 1 + (src[i + dot + 1..].len() - src[i + dot + 1..].trim_start().len());
            if !bytes.get(seg_start).is_some_and(|c| is_ident_start(*c)) {
                break;
            }
            let seg_end = ident_end(bytes, seg_start);
            if src[seg_end..].trim_start().starts_with('(') {
                break; // a method call: `.len()`, `.ends_with(...)`
            }
            path.push((seg_start, &src[seg_start..seg_end]));
            i = seg_end;
        }
        if path.len() > 1 {
            out.push(path);
        }
    }
    out
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn ident_end(bytes: &[u8], mut i: usize) -> usize {
    while bytes
        .get(i)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
    {
        i += 1;
    }
    i
}

/// The index after the string literal opening at `i` (backslash escapes honoured).
fn skip_string(bytes: &[u8], i: usize) -> usize {
    let quote = bytes[i];
    let mut j = i + 1;
    while j < bytes.len() && bytes[j] != quote {
        j += if bytes[j] == b'\\' { 2 } else { 1 };
    }
    j + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::{Customer, Item, OrderView};

    fn p(s: &str) -> Vec<&str> {
        s.split('.').collect()
    }

    #[test]
    fn known_paths_pass_and_payload_is_free_form() {
        for ok in [
            "order.customer.email",
            "order.total",
            "order.items",
            "order.items.0.title",
            "order.shop.name",
            "event.shop",
            "event.received_at",
            "rule.name",
            "payload.anything.at.all",
            "order",
        ] {
            assert_eq!(check(&p(ok)), Ok(()), "{ok}");
        }
    }

    #[test]
    fn a_misspelt_field_names_the_nearest_and_lists_the_valid_ones() {
        let e = check(&p("order.customer.emial")).unwrap_err();
        assert_eq!(e.segment, 2);
        assert_eq!(e.message, "unknown field `emial` in `order.customer.emial`");
        assert_eq!(
            e.hint,
            "did you mean `email`? `order.customer` has: email, name, phone"
        );
        let e = check(&p("order.totl")).unwrap_err();
        assert!(e.hint.starts_with("did you mean `total`?"), "{}", e.hint);
        let e = check(&p("event.payload")).unwrap_err();
        assert!(e.hint.contains("`event` has: id, source"), "{}", e.hint);
    }

    #[test]
    fn leaves_and_lists_have_no_named_fields() {
        let e = check(&p("order.total.amount")).unwrap_err();
        assert_eq!(
            e.message,
            "`order.total` is a number; it has no field `amount`"
        );
        let e = check(&p("order.items.title")).unwrap_err();
        assert!(
            e.message.contains("`order.items` is a list"),
            "{}",
            e.message
        );
    }

    /// The shapes follow the real types: every field `OrderView` serializes is known here.
    #[test]
    fn shapes_cover_every_serialized_order_field() {
        let order = OrderView {
            customer: Customer::default(),
            items: vec![Item::default()],
            ..Default::default()
        };
        let json = serde_json::to_value(&order).unwrap();
        let mut paths = Vec::new();
        collect(&json, "order", &mut paths);
        for path in paths {
            assert_eq!(check(&p(&path)), Ok(()), "{path}");
        }
    }

    fn collect(v: &serde_json::Value, at: &str, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    collect(v, &format!("{at}.{k}"), out);
                }
            }
            serde_json::Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, v)| collect(v, &format!("{at}.{i}"), out)),
            _ => out.push(at.to_string()),
        }
    }

    #[test]
    fn rhai_paths_skip_strings_methods_and_payload() {
        let src = r#"order.customer.email.ends_with("order.totl") && order.totl > 2 && payload.x.y == event.kind && order.items.len() > 1"#;
        let found: Vec<String> = rhai_paths(src)
            .iter()
            .map(|p| p.iter().map(|s| s.1).collect::<Vec<_>>().join("."))
            .collect();
        assert_eq!(
            found,
            [
                "order.customer.email",
                "order.totl",
                "event.kind",
                "order.items"
            ]
        );
        let totl = &rhai_paths(src)[1];
        assert_eq!(&src[totl[1].0..totl[1].0 + 4], "totl");
    }
}
