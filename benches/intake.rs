//! The intake path of one webhook, without HTTP and the journal: HMAC-SHA512 verification of the
//! raw bytes, then parsing and normalising `tests/fixtures/sellix/order_paid.json` (3 KB) into the
//! event handed to the journal.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue};
use storeflow::config::{Secret, SellixConfig};
use storeflow::model::event::Timestamp;
use storeflow::sources::{sellix::Sellix, verify, IntakeRequest, Source};

const SECRET: &str = "whsec_test";

fn sellix() -> Sellix {
    Sellix::new(SellixConfig {
        secret: Secret::new(SECRET),
        ..SellixConfig::default()
    })
}

fn request(body: &Bytes) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let sig = verify::sign_sha512_hex(SECRET.as_bytes(), body);
    headers.insert(
        "x-sellix-signature",
        HeaderValue::from_str(&sig).expect("hex"),
    );
    headers.insert("x-sellix-event", HeaderValue::from_static("order:paid"));
    headers
}

/// Verify + normalise one delivery, as the intake handler does.
fn deliver(source: &Sellix, headers: &HeaderMap, body: &Bytes) -> usize {
    let req = IntakeRequest {
        headers,
        body: body.clone(),
        peer: None,
        token: None,
    };
    let verified = source.verify(req).expect("verified");
    let incoming = source
        .normalize(&verified, Timestamp::now())
        .expect("normalized");
    incoming.dedupe_key.len()
}

fn intake(c: &mut Criterion) {
    let body =
        Bytes::from(std::fs::read("tests/fixtures/sellix/order_paid.json").expect("fixture"));
    let source = sellix();
    let headers = request(&body);
    c.bench_function("intake/sellix_order_paid", |b| {
        b.iter(|| deliver(&source, &headers, std::hint::black_box(&body)))
    });
    c.bench_function("intake/verify_only", |b| {
        b.iter(|| {
            let req = IntakeRequest {
                headers: &headers,
                body: body.clone(),
                peer: None,
                token: None,
            };
            source.verify(req).expect("verified").body().len()
        })
    });
}

criterion_group!(benches, intake);
criterion_main!(benches);
