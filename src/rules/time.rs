//! The pure side of time in rules (DESIGN.md §12): which events an `unless` pattern names,
//! when quiet hours end, `if_still` at fire time and a digest's actions over its events. No
//! clock is read here: callers pass the instant they mean.

use jiff::civil::Time;
use jiff::Timestamp as Instant;
use rhai::Dynamic;

use super::compile::time::QuietHours;
use super::{PlannedAction, RuleSet};
use crate::model::event::Event;
use crate::template::render::base_context;
use crate::template::EventView;

/// Whether an `on:`/`unless:` pattern names an event with this topic and canonical name (a
/// pattern with a `/` is for topics, one without for canonical names, `*` globs).
pub fn pattern_matches(pattern: &str, topic: &str, canonical: Option<&str>) -> bool {
    if pattern == "*" {
        return true;
    }
    let subject = match super::pattern::is_topic(pattern) {
        true => Some(topic),
        false => canonical,
    };
    subject.is_some_and(|s| super::pattern::Glob::new(pattern).is_match(s))
}

/// A duration as rules write it (`7d`, `1h 30m`, `45s`, `250ms`), for traces and messages
/// (humantime's own form reads `7days`).
pub fn duration_text(d: std::time::Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut parts = Vec::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            parts.push(format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    parts.join(" ")
}

impl QuietHours {
    /// When the quiet window around `at_ms` ends (ms), or `None` when `at_ms` is not in it.
    /// DST-correct: the end is the local wall time `to` on the right day, in the zone's offset
    /// of that day (a `to` that falls in a DST gap moves forward, as jiff's "compatible" rule).
    pub fn end_if_quiet(&self, at_ms: i64) -> Option<i64> {
        let at = Instant::from_millisecond(at_ms)
            .ok()?
            .to_zoned(self.tz.clone());
        let minute = (at.hour() as u16) * 60 + at.minute() as u16;
        let (from, to) = (self.from, self.to);
        let (quiet, end_tomorrow) = if from < to {
            (minute >= from && minute < to, false)
        } else {
            (minute >= from || minute < to, minute >= from)
        };
        if !quiet {
            return None;
        }
        let mut day = at.date();
        if end_tomorrow {
            day = day.tomorrow().ok()?;
        }
        let end = Time::new((to / 60) as i8, (to % 60) as i8, 0, 0).ok()?;
        let zoned = day.to_datetime(end).to_zoned(self.tz.clone()).ok()?;
        Some(zoned.timestamp().as_millisecond())
    }

    /// `22:00-07:00 Europe/Berlin`, for traces.
    pub fn describe(&self) -> String {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        format!("{}-{} {}", hm(self.from), hm(self.to), self.tz_name)
    }
}

impl RuleSet {
    /// Evaluates an `if_still` expression against an order's latest event, in the same hardened
    /// engine as `if` (operation limits, no I/O).
    pub fn if_still(&self, expr: &str, latest: &Event) -> Result<bool, String> {
        let ast = self
            .engine()
            .compile_expression(expr)
            .map_err(|e| format!("`if_still: {expr}` does not compile: {e}"))?;
        let view = EventView::new(latest);
        let mut scope = rhai::Scope::new();
        scope.push_constant_dynamic("event", view.rhai_event());
        scope.push_constant_dynamic("order", view.rhai_order());
        scope.push_constant_dynamic("payload", view.rhai_payload());
        let value = self
            .engine()
            .eval_ast_with_scope::<Dynamic>(&mut scope, &ast)
            .map_err(|e| format!("`if_still: {expr}` failed: {e}"))?;
        value
            .as_bool()
            .map_err(|t| format!("`if_still: {expr}` returned {t}, not a boolean"))
    }

    /// The actions of digest rule `rule` rendered over the window's `events` (oldest first):
    /// templates see `events` (each with `event`, `order`, `payload`) and the first event as
    /// `event`/`order`/`payload`. `None` when the rule is gone or has no events.
    pub fn render_digest(&self, rule: &str, events: &[Event]) -> Option<Vec<PlannedAction>> {
        let r = self.rule(rule)?;
        let first = events.first()?;
        let list: Vec<serde_json::Value> = events
            .iter()
            .map(|e| {
                let view = EventView::new(e);
                let scope = view.scope();
                serde_json::json!({
                    "event": scope.event_json(),
                    "order": scope.order_json(),
                    "payload": &e.payload,
                })
            })
            .collect();
        let first_view = EventView::new(first);
        let base = base_context(first_view.scope());
        let ctx = minijinja::context! {
            events => minijinja::Value::from(minijinja::value::Serde(serde_json::Value::Array(list))),
            rule => minijinja::context! { name => &r.name, description => &r.description },
            ..base
        };
        let planned = r
            .actions
            .iter()
            .enumerate()
            .map(|(index, a)| PlannedAction {
                index,
                kind: a.kind.clone(),
                params: self.templates().render(&a.params, &ctx),
            })
            .collect();
        Some(planned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin(from: u16, to: u16) -> QuietHours {
        QuietHours {
            from,
            to,
            tz: jiff::tz::TimeZone::get("Europe/Berlin").unwrap(),
            tz_name: "Europe/Berlin".into(),
        }
    }

    fn ms(s: &str) -> i64 {
        s.parse::<Instant>().unwrap().as_millisecond()
    }

    #[test]
    fn quiet_hours_span_midnight_and_follow_dst() {
        let q = berlin(22 * 60, 7 * 60);
        // 23:30 CET (UTC+1) → 07:00 CET next day.
        assert_eq!(
            q.end_if_quiet(ms("2026-01-10T22:30:00Z")),
            Some(ms("2026-01-11T06:00:00Z"))
        );
        // 05:00 local, same day's 07:00.
        assert_eq!(
            q.end_if_quiet(ms("2026-01-11T04:00:00Z")),
            Some(ms("2026-01-11T06:00:00Z"))
        );
        assert_eq!(q.end_if_quiet(ms("2026-01-11T12:00:00Z")), None);
        // The night DST starts (29 March 2026, 02:00 → 03:00): 07:00 is CEST (UTC+2).
        assert_eq!(
            q.end_if_quiet(ms("2026-03-28T22:30:00Z")),
            Some(ms("2026-03-29T05:00:00Z"))
        );
        // The night DST ends (25 October 2026): 07:00 is CET again (UTC+1).
        assert_eq!(
            q.end_if_quiet(ms("2026-10-24T21:30:00Z")),
            Some(ms("2026-10-25T06:00:00Z"))
        );
    }

    #[test]
    fn quiet_hours_within_one_day() {
        let q = berlin(12 * 60, 13 * 60);
        assert_eq!(
            q.end_if_quiet(ms("2026-06-01T10:30:00Z")),
            Some(ms("2026-06-01T11:00:00Z"))
        );
        assert_eq!(q.end_if_quiet(ms("2026-06-01T11:00:00Z")), None);
    }

    #[test]
    fn durations_read_as_rules_write_them() {
        let text = |ms: u64| duration_text(std::time::Duration::from_millis(ms));
        assert_eq!(text(7 * 86_400_000), "7d");
        assert_eq!(text(48 * 3_600_000), "2d");
        assert_eq!(text(5_400_000), "1h 30m");
        assert_eq!(text(1_250), "1s 250ms");
        assert_eq!(text(0), "0s");
    }

    #[test]
    fn unless_patterns_match_topics_and_canonical_names() {
        assert!(pattern_matches(
            "order.shipped",
            "selldone/SentOrder",
            Some("order.shipped")
        ));
        assert!(pattern_matches(
            "order.*",
            "sellix/order:paid",
            Some("order.paid")
        ));
        assert!(pattern_matches(
            "sellix/order:*",
            "sellix/order:paid",
            Some("order.paid")
        ));
        assert!(!pattern_matches(
            "order.shipped",
            "sellix/order:paid",
            Some("order.paid")
        ));
        assert!(!pattern_matches("order.shipped", "x/y", None));
    }
}
