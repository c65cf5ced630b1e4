//! Script costs per event, on the Sellix `order:paid` fixture: a rule `if` expression (with and
//! without converting the event to Rhai values per evaluation) and a 20-line script.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use rhai::Dynamic;
use storeflow::config::SellixConfig;
use storeflow::model::event::{Event, Timestamp};
use storeflow::script::{hardened_engine, EventValues, Origin, Plugins, Runner};
use storeflow::sources::sellix::Sellix;
use storeflow::sources::{verify, Source};

const IF: &str =
    r#"order.total > 20.0 && payload.data.gateway == "LITECOIN" && order.customer.email != """#;

const SCRIPT: &str = r#"
let email = order.customer.email;
let n = state_incr("orders:" + email);
let total = order.total;
let vip = total >= 40.0 || n >= 3;
let fields = payload.data.custom_fields;
let who = if fields.discord_username != () { fields.discord_username } else { email };
if n == 3 {
    slack(`Third order from ${who}: ${money(total, order.currency)}`);
}
if vip {
    email(#{
        to: email,
        subject: "Thanks for being a VIP",
        body: `Hi ${who}, here is 10% off your next order: ${random_key(2, 4)}`,
    });
}
if payload.data.is_vpn_or_proxy {
    flag("review", `VPN order ${order.id}`);
}
state_set("last_order:" + email, #{ id: order.id, total: total, at: now() });
log(`order ${order.id} (${slug(payload.data.product_title)}) n=${n}`);
"#;

fn fixture_event() -> Event {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sellix/order_paid.json"
    );
    let body = std::fs::read(path).expect("fixture");
    let verified = verify::local_file(body.into(), None);
    Sellix::new(SellixConfig::default())
        .normalize(&verified, Timestamp::now())
        .expect("normalizes")
        .event
}

fn bench_if(c: &mut Criterion) {
    let event = fixture_event();
    let engine = hardened_engine(100_000);
    let ast = engine.compile_expression(IF).expect("compiles");
    let values = EventValues::new(&event);
    let eval = |values: &EventValues| {
        engine
            .eval_ast_with_scope::<Dynamic>(&mut values.scope(), &ast)
            .expect("runs")
            .as_bool()
            .expect("bool")
    };
    assert!(eval(&values));
    c.bench_function("event_values_new", |b| {
        b.iter(|| EventValues::new(black_box(&event)))
    });
    c.bench_function("if_cached_values", |b| b.iter(|| eval(black_box(&values))));
    c.bench_function("if_convert_per_eval", |b| {
        b.iter(|| eval(&EventValues::new(black_box(&event))))
    });
}

fn bench_script(c: &mut Criterion) {
    let event = fixture_event();
    let runner = Runner::new(100_000, Arc::new(Plugins::empty()));
    let script = runner
        .compile(SCRIPT, Origin::file("bench.rhai"))
        .expect("compiles");
    let mut state = BTreeMap::new();
    state.insert("orders:buyer@example.com".to_string(), serde_json::json!(2));
    let values = EventValues::new(&event);
    let (intents, _) = runner
        .run_script_values(&script, &values, &state)
        .expect("runs");
    assert_eq!(intents.len(), 3);
    c.bench_function("script_20_lines_cached_values", |b| {
        b.iter(|| runner.run_script_values(&script, black_box(&values), &state))
    });
    c.bench_function("script_20_lines", |b| {
        b.iter(|| runner.run_script(&script, black_box(&event), &state))
    });
}

criterion_group!(benches, bench_if, bench_script);
criterion_main!(benches);
