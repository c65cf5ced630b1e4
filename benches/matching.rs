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
use storeflow::event::Event;
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

fn rule(i: usize) -> String {
    let (on, cond, iff) = if i % 500 == 0 {
        ("order.paid", "order.total: { gte: 20 }", i % 1000 == 0)
    } else if i % 500 == 250 {
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

fn write_rules(dir: &Path, n: usize) {
    let per_file = 500;
    for start in (0..n).step_by(per_file) {
        let mut text = String::from("rules:\n");
        (start..n.min(start + per_file)).for_each(|i| text.push_str(&rule(i)));
        std::fs::write(dir.join(format!("r{start:06}.yaml")), text).expect("write rules");
    }
}

fn load(n: usize) -> RuleSet {
    let dir = tempfile::tempdir().expect("tempdir");
    write_rules(dir.path(), n);
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
        .normalize(&verified, storeflow::event::Timestamp::now())
        .expect("normalize")
        .event
}

fn matching(c: &mut Criterion) {
    let event = order_paid();
    let mut group = c.benchmark_group("evaluate_order_paid");
    for n in [10, 1_000, 10_000] {
        let set = load(n);
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
    group.finish();
}

fn loading(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_rules(dir.path(), 1_000);
    let options = LoadOptions::default();
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("1000_rules", |b| b.iter(|| load_dir(dir.path(), &options)));
    group.finish();
}

criterion_group!(benches, matching, loading);
criterion_main!(benches);
