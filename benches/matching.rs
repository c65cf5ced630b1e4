//! Rule matching and loading speed: one Sellix `order:paid` event against 10, 1,000 and 10,000
//! generated rules, and loading 1,000 rules from disk.
//!
//! The generated mix is what a large installation looks like: most rules listen to other events
//! (exact topics and canonical names), some use globs, and a few listen to `order.paid` (half of
//! them match and render their actions, half fail a `match` condition), some with an `if`.

use std::path::Path;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::HeaderMap;
use storeflow::config::SellixConfig;
use storeflow::model::event::Event;
use storeflow::rules::{load_dir, LoadOptions, RuleSet};
use storeflow::sources::{sellix::Sellix, IntakeRequest, Source};

const OTHER_ON: &[&str] = &[
    "order.shipped",
    "order.delivered",
    "selldone/SentOrder",
    "sellix/product:stock",
    "order.cancelled",
    "sellix/order:disputed",
    "subscription.renewed",
    "selldone/CheckoutOrder",
    "product.updated",
    "order.returned",
];
const GLOBS: &[&str] = &[
    "product.*",
    "subscription.*",
    "sellix/product:*",
    "selldone/*",
];

/// Rule `i`; with `few`, only the first 1,000 rules may listen to `order:paid` (a large rule
/// base where the event's own rules stay few, which isolates the index's cost).
fn rule(i: usize, few: bool) -> String {
    let listens = !few || i < 1_000;
    let (on, cond, iff) = if listens && i % 500 == 0 {
        ("order.paid", "order.total: { gte: 20 }", i % 1000 == 0)
    } else if listens && i % 500 == 250 {
        ("\"sellix/order:*\"", "order.total: { gte: 1000 }", false)
    } else if i % 50 == 7 {
        (GLOBS[i % GLOBS.len()], "payload.data.type: PRODUCT", false)
    } else {
        (
            OTHER_ON[i % OTHER_ON.len()],
            "payload.basket.type: PHYSICAL",
            i % 3 == 0,
        )
    };
    let iff = if iff {
        "\n    if: 'order.customer.email != \"\" && order.total > 1'"
    } else {
        ""
    };
    format!(
        "  - name: rule-{i}\n    on: {on}\n    match:\n      {cond}\n      order.currency: {{ in: [USD, EUR] }}{iff}\n    actions:\n      - slack: {{ text: \"order {{{{ order.id }}}} paid {{{{ order.total | money(order.currency) }}}}\" }}\n      - flag: {{ kind: big, note: \"rule {{{{ rule.name }}}}\" }}\n"
    )
}

fn write_rules(dir: &Path, n: usize, few: bool) {
    let per_file = 500;
    for start in (0..n).step_by(per_file) {
        let mut text = String::from("rules:\n");
        (start..n.min(start + per_file)).for_each(|i| text.push_str(&rule(i, few)));
        std::fs::write(dir.join(format!("r{start:06}.yaml")), text).expect("write rules");
    }
}

fn load(n: usize, few: bool) -> RuleSet {
    let dir = tempfile::tempdir().expect("tempdir");
    write_rules(dir.path(), n, few);
    let loaded = load_dir(dir.path(), &LoadOptions::default());
    assert_eq!(loaded.errors().count(), 0, "{:?}", loaded.diagnostics);
    loaded.rules.expect("rules")
}

fn order_paid() -> Event {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sellix/order_paid.json");
    let body = std::fs::read(path).expect("fixture");
    let source = Sellix::new(SellixConfig::default());
    let headers = HeaderMap::new();
    let req = IntakeRequest {
        headers: &headers,
        body: Bytes::from(body),
        peer: Some("127.0.0.1:1".parse().expect("addr")),
        token: None,
    };
    let verified = source.verify(req).expect("verify");
    source
        .normalize(&verified, storeflow::model::event::Timestamp::now())
        .expect("normalize")
        .event
}

fn matching(c: &mut Criterion) {
    let event = order_paid();
    let mut group = c.benchmark_group("evaluate_order_paid");
    for n in [10, 1_000, 10_000] {
        let set = load(n, false);
        let eval = set.evaluate(&event);
        eprintln!(
            "{n} rules: {} candidates, {} matched",
            eval.rules.len(),
            eval.matched().count()
        );
        group.bench_with_input(BenchmarkId::from_parameter(n), &set, |b, set| {
            b.iter(|| set.evaluate(std::hint::black_box(&event)))
        });
    }
    let set = load(10_000, true);
    let eval = set.evaluate(&event);
    eprintln!(
        "10000 rules (few listening): {} candidates",
        eval.rules.len()
    );
    group.bench_function("10000_few_listening", |b| {
        b.iter(|| set.evaluate(std::hint::black_box(&event)))
    });
    group.finish();
}

fn loading(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_rules(dir.path(), 1_000, false);
    let options = LoadOptions::default();
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("1000_rules", |b| b.iter(|| load_dir(dir.path(), &options)));
    group.finish();
}

criterion_group!(benches, matching, loading);
criterion_main!(benches);
