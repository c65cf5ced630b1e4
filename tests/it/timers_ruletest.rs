//! Rule tests on the virtual clock (DESIGN.md §12): expectations about what fires when, what
//! is cancelled, limited, postponed or left pending, and the messages when they fail.

use crate::helpers::*;

const RULES: &str = r#"
rules:
  - name: paid-not-shipped
    on: order.paid
    wait: { for: 48h, unless: [order.shipped] }
    actions:
      - log: { message: "late {{ order.id }} after {{ waited }}" }
  - name: ping
    on: order.paid
    limit: { key: "{{ order.customer.email }}", max: 1, per: 1h }
    quiet_hours: { from: "22:00", to: "07:00", tz: Europe/Berlin }
    actions:
      - log: { message: "ping {{ order.id }}" }
"#;

const PAID: &str = "{ at: +0s, source: selldone, fixture: PaymentOrder.json }";
const SHIPPED: &str = "{ at: +30h, source: selldone, fixture: SentOrder.json }";

/// Runs `storeflow test` over RULES plus `tests`; answers (exit code, stdout).
fn run_tests(tests: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    for f in ["PaymentOrder", "SentOrder"] {
        std::fs::copy(
            fixture_path(&format!("selldone/{f}.json")),
            rules.join(format!("{f}.json")),
        )
        .unwrap();
    }
    std::fs::write(rules.join("r.yaml"), format!("{RULES}\ntests:\n{tests}")).unwrap();
    let config = dir.path().join("storeflow.yaml");
    std::fs::write(&config, format!("rules_dir: {}\n", rules.display())).unwrap();
    let out = storeflow(&["test", "-c", config.to_str().unwrap()]);
    (out.status.code(), stdout(&out))
}

#[test]
fn virtual_clock_tests_pass_when_time_does_what_they_expect() {
    let tests = format!(
        "  - name: fires after 48h
    events: [{PAID}]
    expect:
      fires: [{{ rule: paid-not-shipped, at: +48h, contains: {{ message: late 48213 after 48h }} }}, {{ rule: ping, at: +0s }}]
  - name: shipping cancels
    events: [{PAID}, {SHIPPED}]
    expect: {{ cancelled: [paid-not-shipped], not_fired: [paid-not-shipped] }}
  - name: the clock can stop early
    events: [{PAID}]
    until: +47h
    expect: {{ pending: [paid-not-shipped], not_fired: [paid-not-shipped] }}
  - name: limited and postponed
    start: \"2026-03-28T23:00:00+01:00\"
    events: [{PAID}, {{ at: +10m, source: selldone, fixture: PaymentOrder.json, set: {{ basket.id: 2 }} }}]
    expect:
      limited: [ping]
      postponed: [ping]
      fires: [{{ rule: ping, at: +7h }}]
"
    );
    let (code, out) = run_tests(&tests);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("4 passed, 0 failed"), "{out}");
}

#[test]
fn virtual_clock_tests_fail_with_what_happened_instead() {
    let tests = format!(
        "  - name: wrong time
    events: [{PAID}]
    expect: {{ fires: [{{ rule: paid-not-shipped, at: +47h }}] }}
  - name: expects a cancel that does not happen
    events: [{PAID}]
    expect: {{ cancelled: [paid-not-shipped], limited: [ping], postponed: [ping] }}
  - name: expects a fire that was cancelled
    events: [{PAID}, {SHIPPED}]
    expect: {{ fires: [{{ rule: paid-not-shipped }}], pending: [paid-nt-shipped] }}
  - name: bad offset
    events: [{{ at: soon, source: selldone, fixture: PaymentOrder.json }}]
    expect: {{ fires: [{{ rule: ping }}] }}
"
    );
    let (code, out) = run_tests(&tests);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("0 passed, 4 failed"), "{out}");
    for want in [
        "expected `paid-not-shipped` to fire at +1d 23h, but it fired at +2d",
        "expected a timer of `paid-not-shipped` to be cancelled, but it was not: at +0s: waiting 48h until 2026-01-03T12:00:00.000Z; at +2d: fired (1 job(s))",
        "expected `ping` to be limited, but it was not: at +0s: fired (1 job(s))",
        "expected `ping` to be postponed by quiet hours, but it was not",
        "expected `paid-not-shipped` to fire, but it never did: at +0s: waiting 48h until 2026-01-03T12:00:00.000Z; at +1d 6h: cancelled by selldone/SentOrder (event evt_",
        "`pending` names `paid-nt-shipped`, which is no rule (did you mean `paid-not-shipped`?",
        "`at: soon` is not an offset such as `+30m` or `+49h`",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn check_reports_bad_durations_keys_and_time_zones_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("t.yaml"),
        "rules:
  - name: t
    on: order.paid
    wait: { for: 48 hours please, unles: [order.shipped] }
    limit: { key: \"{{ order.customer.emial }}\", max: 0, per: 1h }
    quiet_hours: { from: \"22:00\", to: \"7am\", tz: Europe/Berlni }
    digest: { every: 0s }
    actions:
      - log: { message: hi }
        delay: soon
        if_still: 'order.status =='
",
    )
    .unwrap();
    let config = dir.path().join("storeflow.yaml");
    std::fs::write(&config, format!("rules_dir: {}\n", rules.display())).unwrap();
    let out = storeflow(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    for want in [
        "t.yaml:4:18: error: `wait.for`: `48 hours please` is not a duration",
        "t.yaml:4:35: error: unknown key `unles` in `wait`",
        "hint: did you mean `unless`?",
        "t.yaml:5:19: error: `limit.key`: unknown field `emial` in `order.customer.emial`",
        "t.yaml:5:54: error: `limit.max` must be a whole number of at least 1",
        "t.yaml:6:39: error: `7am` is not a time of day",
        "hint: write it as \"HH:MM\"",
        "t.yaml:6:50: error: unknown time zone `Europe/Berlni`",
        "t.yaml:7:22: error: `digest.every` must be longer than zero",
        "t.yaml:10:16: error: `delay`: `soon` is not a duration",
        "t.yaml:11:35: error: Rhai syntax error in `if_still`",
        "(rule `t`)",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn simulate_prints_the_timers_an_event_would_create() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("r.yaml"), RULES).unwrap();
    let config = dir.path().join("storeflow.yaml");
    std::fs::write(&config, format!("rules_dir: {}\n", rules.display())).unwrap();
    let c = config.to_str().unwrap();
    let body = fixture_path("selldone/PaymentOrder.json");
    let body = body.to_str().unwrap();
    let out = storeflow(&["simulate", "--source", "selldone", body, "-c", c]);
    let text = stdout(&out);
    assert!(text.contains("timers this event would create:"), "{text}");
    assert!(
        text.contains("⏱ paid-not-shipped: waiting 48h until"),
        "{text}"
    );
    assert!(
        text.contains("runs log: {\"message\":\"late 48213 after 48h\"}"),
        "{text}"
    );

    let out = storeflow(&["simulate", "--json", "--source", "selldone", body, "-c", c]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["timers"][0]["rule"], "paid-not-shipped");
    assert_eq!(json["timers"][0]["kind"], "wait");
    assert_eq!(json["timers"][0]["jobs"][0]["kind"], "log");
    assert_eq!(json["time"][0]["what"], "wait");
}

/// An `unless` event journaled before the wait started is found when the wait comes due (as the
/// daemon's timer worker does), not when it starts: the wait is cancelled at its due time,
/// never fired, and a failing expectation tells that story.
#[test]
fn regression_an_unless_event_before_the_wait_cancels_it_at_its_due_time_on_the_virtual_clock() {
    let overtaken = "[{ at: +0s, source: selldone, fixture: SentOrder.json }, \
                     { at: +1h, source: selldone, fixture: PaymentOrder.json }]";
    let tests = format!(
        "  - name: the shipment came first
    events: {overtaken}
    expect: {{ cancelled: [paid-not-shipped], not_fired: [paid-not-shipped], fires: [{{ rule: ping, at: +1h }}] }}
  - name: expects the wait to fire anyway
    events: {overtaken}
    expect: {{ fired: [paid-not-shipped] }}
"
    );
    let (code, out) = run_tests(&tests);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("1 passed, 1 failed"), "{out}");
    let want = "expected `paid-not-shipped` to fire, but it never did: at +1h: waiting 48h until \
                2026-01-03T13:00:00.000Z; at +2d 1h: cancelled by selldone/SentOrder (event evt_";
    assert!(out.contains(want), "missing {want:?} in:\n{out}");
}
