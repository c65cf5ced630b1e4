//! Webhook intake against an in-process daemon: fixtures, rejections, duplicates, restarts.

use storeflow::journal::Store;

use crate::helpers::*;

#[tokio::test]
async fn every_sellix_fixture_is_journaled_with_topic_canonical_and_order() {
    let d = Daemon::start(SECURED).await;
    for (file, event, sig) in SELLIX_FIXTURES {
        let a = post_sellix(&d, file, event, sig).await;
        assert_eq!(a.status, 200, "{file}: {}", a.json);
        assert_eq!(a.json["duplicate"], false, "{file}");
        let id = a.json["event_id"].as_str().unwrap();
        let e = d.journal().event(id).unwrap().unwrap();
        assert_eq!(e.source, "sellix");
        assert_eq!(e.kind, *event);
        assert_eq!(e.topic, format!("sellix/{event}"));
        assert_eq!(e.payload["event"], *event, "{file}: payload kept");
    }
    let events = d.journal().recent_events(100).unwrap();
    assert_eq!(events.len(), SELLIX_FIXTURES.len());

    let paid = events
        .iter()
        .find(|e| {
            e.topic == "sellix/order:paid"
                && e.order_id.as_deref() == Some("7a31c2-9f0e4b6d21-58c0d3")
        })
        .unwrap();
    assert_eq!(paid.canonical.as_deref(), Some("order.paid"));
    let stock = events.iter().find(|e| e.kind == "product:stock").unwrap();
    assert_eq!(stock.canonical.as_deref(), Some("product.low_stock"));
    assert_eq!(stock.order_id, None, "a product event has no order");
    d.stop().await;
}

#[tokio::test]
async fn sellix_order_view_has_the_fields_rules_use() {
    let d = Daemon::start(SECURED).await;
    let (file, event, sig) = SELLIX_FIXTURES[4]; // order_disputed.json
    let a = post_sellix(&d, file, event, sig).await;
    let e = d
        .journal()
        .event(a.json["event_id"].as_str().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(e.canonical.as_deref(), Some("order.disputed"));
    let o = e.order.unwrap();
    assert_eq!(o.status, "CUSTOMER_DISPUTE_ONGOING");
    assert_eq!(o.total, Some(24.99));
    assert_eq!(o.currency, "USD");
    assert_eq!(o.customer.email, "buyer@example.com");
    assert_eq!(o.shop.id, "418230");
    assert_eq!(o.items.len(), 1);
    assert_eq!(
        e.payload["data"]["paypal_dispute"]["reason"],
        "MERCHANDISE_OR_SERVICE_NOT_AS_DESCRIBED"
    );
    d.stop().await;
}

#[tokio::test]
async fn every_selldone_fixture_is_journaled_with_canonical_names() {
    let d = Daemon::start(SECURED).await;
    let cases = [
        ("CheckoutOrder", "order.checkout"),
        ("PaymentOrder", "order.paid"),
        ("OrderConfirm", "order.confirmed"),
        ("PreparingOrder", "order.preparing"),
        ("SentOrder", "order.shipped"),
        ("ToCustomer", "order.delivered"),
        ("ReturnOrder", "order.returned"),
        ("CancelProduct", "order.item_cancelled"),
    ];
    for (action, canonical) in cases {
        let url = d.url(&format!("/hooks/selldone/{SELLDONE_TOKEN}"));
        let a = post(&url, &[], fixture(&format!("selldone/{action}.json"))).await;
        assert_eq!(a.status, 200, "{action}: {}", a.json);
        let e = d
            .journal()
            .event(a.json["event_id"].as_str().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(e.topic, format!("selldone/{action}"));
        assert_eq!(e.canonical.as_deref(), Some(canonical), "{action}");
        let o = e.order.expect("basket gives an order view");
        if action == "CancelProduct" {
            // A guest order: no user or customer, the buyer is in the basket.
            assert_eq!(o.customer.email, "guest.buyer@example.com");
            assert_eq!(o.customer.name, "Guest Buyer");
        } else {
            assert_eq!(o.id, "48213");
            assert_eq!(o.customer.email, "buyer@example.com");
            assert_eq!(o.customer.name, "Jane Example");
            assert_eq!(o.total, Some(59.97));
            assert_eq!(o.shop.name, "Example Store");
            assert_eq!(o.items.len(), 2);
            assert_eq!(o.items[1].title, "Paper Filters (100 pcs)");
            assert_eq!(o.items[1].quantity, 2.0);
        }
    }
    // The token may also come in the query string.
    let url = d.url(&format!("/hooks/selldone?token={SELLDONE_TOKEN}"));
    let body = String::from_utf8(fixture("selldone/SentOrder.json")).unwrap();
    let body = body.replace("2025-03-15T08:05:33", "2025-03-16T08:05:33"); // a later update
    assert_eq!(post(&url, &[], body.into_bytes()).await.status, 200);
    d.stop().await;
}

#[tokio::test]
async fn bad_requests_get_the_right_status_and_a_clear_error() {
    let d = Daemon::start(
        "sources:\n  sellix:\n    secret: whsec_test\n  selldone:\n    token: sd-token-123\nintake:\n  max_body: 64KiB\n",
    )
    .await;
    let (file, event, good_sig) = SELLIX_FIXTURES[2];
    let body = fixture(&format!("sellix/{file}"));
    let sellix = d.url("/hooks/sellix");

    let wrong = sign(b"something else");
    let a = post(
        &sellix,
        &[("x-sellix-event", event), ("x-sellix-signature", &wrong)],
        body.clone(),
    )
    .await;
    assert_eq!(a.status, 401);
    let msg = a.json["error"].as_str().unwrap();
    assert!(msg.contains("does not match"), "{msg}");
    assert!(
        !msg.contains(good_sig),
        "the expected signature is never echoed"
    );

    let a = post(&sellix, &[("x-sellix-event", event)], body.clone()).await;
    assert_eq!(
        (a.status, a.json["error"].as_str().unwrap()),
        (401, "missing X-Sellix-Signature header")
    );

    // Signed over a re-serialization: what serde_json would produce, not the bytes sent.
    let reserialized =
        serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&body).unwrap()).unwrap();
    assert_ne!(reserialized, body);
    let a = post(
        &sellix,
        &[("x-sellix-signature", &sign(&reserialized))],
        body.clone(),
    )
    .await;
    assert_eq!(a.status, 401);

    // The unescaped-signature header is accepted too.
    let a = post(
        &sellix,
        &[("x-sellix-unescaped-signature", good_sig)],
        body.clone(),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.json);

    let malformed = b"{\"event\": \"order:paid\", \"data\": ".to_vec();
    let a = post(
        &sellix,
        &[("x-sellix-signature", &sign(&malformed))],
        malformed,
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(
        a.json["error"]
            .as_str()
            .unwrap()
            .starts_with("body is not valid JSON"),
        "{}",
        a.json
    );

    let no_event = br#"{"data":{}}"#.to_vec();
    let a = post(
        &sellix,
        &[("x-sellix-signature", &sign(&no_event))],
        no_event,
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(
        a.json["error"].as_str().unwrap().contains("X-Sellix-Event"),
        "{}",
        a.json
    );

    let big = vec![b' '; 65 * 1024];
    let a = post(&sellix, &[("x-sellix-signature", &sign(&big))], big).await;
    assert_eq!(a.status, 413);
    assert_eq!(
        a.json["error"],
        "body is larger than intake.max_body (65536 bytes)"
    );

    // Chunked (no Content-Length): the limit still holds while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..70).map(|_| Ok(vec![b' '; 1024])).collect();
    let resp = reqwest::Client::new()
        .post(&sellix)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);

    let sd = fixture("selldone/SentOrder.json");
    let a = post(&d.url("/hooks/selldone/not-the-token"), &[], sd.clone()).await;
    assert_eq!(
        (a.status, a.json["error"].as_str().unwrap()),
        (401, "wrong token in the webhook URL")
    );
    let a = post(&d.url("/hooks/selldone"), &[], sd.clone()).await;
    assert_eq!(a.status, 401);
    assert!(a.json["error"]
        .as_str()
        .unwrap()
        .starts_with("missing token"));

    let a = post(&d.url("/hooks/shopify"), &[], b"{}".to_vec()).await;
    assert_eq!(a.status, 404);
    assert_eq!(
        a.json["error"],
        "no route /hooks/shopify; webhooks are POSTed to /hooks/sellix, \
         /hooks/selldone/<token>; GET /healthz for health, GET /metrics for metrics"
    );

    let resp = reqwest::get(d.url("/hooks/sellix")).await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);

    // Nothing refused was journaled, and the daemon still serves.
    assert_eq!(d.journal().recent_events(10).unwrap().len(), 1);
    let health = reqwest::get(d.url("/healthz")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let a = post(
        &d.url(&format!("/hooks/selldone/{SELLDONE_TOKEN}")),
        &[],
        sd,
    )
    .await;
    assert_eq!(a.status, 200);
    d.stop().await;
}

#[tokio::test]
async fn allowlist_refuses_other_addresses_and_honours_a_trusted_proxy() {
    let d = Daemon::start(
        "sources:\n  sellix:\n    secret: whsec_test\n    allow_ips: [99.81.24.41]\n",
    )
    .await;
    let (file, event, sig) = SELLIX_FIXTURES[0];
    let a = post_sellix(&d, file, event, sig).await;
    assert_eq!(a.status, 403);
    assert_eq!(
        a.json["error"],
        "client address 127.0.0.1 is not in sources.sellix.allow_ips"
    );
    // Without trust_proxy a forged header changes nothing.
    let body = fixture(&format!("sellix/{file}"));
    let a = post(
        &d.url("/hooks/sellix"),
        &[
            ("x-sellix-signature", sig),
            ("x-forwarded-for", "99.81.24.41"),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(a.status, 403);
    d.stop().await;

    let d = Daemon::start("sources:\n  sellix:\n    secret: whsec_test\n    allow_ips: [99.81.24.41]\n    trust_proxy: true\n").await;
    let a = post(
        &d.url("/hooks/sellix"),
        &[
            ("x-sellix-signature", sig),
            ("x-forwarded-for", "99.81.24.41"),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.json);
    // The last entry is the one our proxy added; an earlier one is the client's claim.
    let a = post(
        &d.url("/hooks/sellix"),
        &[
            ("x-sellix-signature", sig),
            ("x-forwarded-for", "99.81.24.41, 198.51.100.7"),
        ],
        body,
    )
    .await;
    assert_eq!(a.status, 403);
    d.stop().await;
}

#[tokio::test]
async fn the_same_delivery_twice_is_one_event() {
    let d = Daemon::start(SECURED).await;
    let (file, event, sig) = SELLIX_FIXTURES[2];
    let first = post_sellix(&d, file, event, sig).await;
    let second = post_sellix(&d, file, event, sig).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.json["duplicate"], true);
    assert_eq!(second.json["event_id"], first.json["event_id"]);

    // Selldone rebuilds the body on retry: same basket, trigger and update time is a duplicate.
    let url = d.url(&format!("/hooks/selldone/{SELLDONE_TOKEN}"));
    let body = fixture("selldone/SentOrder.json");
    let compact =
        serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&body).unwrap()).unwrap();
    let a = post(&url, &[], body).await;
    let b = post(&url, &[], compact).await;
    assert_eq!(
        (a.json["duplicate"].clone(), b.json["duplicate"].clone()),
        (false.into(), true.into())
    );
    assert_eq!(a.json["event_id"], b.json["event_id"]);
    assert_eq!(d.journal().recent_events(10).unwrap().len(), 2);
    d.stop().await;
}

#[tokio::test]
async fn events_survive_a_restart_and_still_dedupe() {
    let d = Daemon::start(SECURED).await;
    let (file, event, sig) = SELLIX_FIXTURES[1];
    let first = post_sellix(&d, file, event, sig).await;
    let dir = d.stop().await;

    let d = Daemon::start_in(dir, SECURED).await;
    let id = first.json["event_id"].as_str().unwrap();
    assert!(
        d.journal().event(id).unwrap().is_some(),
        "event kept across restart"
    );
    let again = post_sellix(&d, file, event, sig).await;
    assert_eq!(again.json["duplicate"], true);
    assert_eq!(again.json["event_id"], id);
    d.stop().await;
}

#[tokio::test]
async fn journal_failure_answers_503_and_the_daemon_recovers() {
    let d = Daemon::start(SECURED).await;
    let (file, event, sig) = SELLIX_FIXTURES[2];
    assert_eq!(post_sellix(&d, file, event, sig).await.status, 200);

    // Break the journal underneath the daemon: its next commit fails.
    let db = d.dir.path().join("data/storeflow.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("ALTER TABLE events RENAME TO events_away")
        .unwrap();
    let (file, event, sig) = SELLIX_FIXTURES[3];
    let a = post_sellix(&d, file, event, sig).await;
    assert_eq!(a.status, 503);
    assert_eq!(
        a.json["error"],
        "the event journal cannot be written right now; retry later"
    );

    // Repaired: the platform's retry is accepted. While commits fail, intake refuses at once
    // and lets one write through every 0.5 s as a probe, so recovery takes at most that long.
    conn.execute_batch("ALTER TABLE events_away RENAME TO events")
        .unwrap();
    let a = wait_for_async("a retry to be accepted", || async {
        let a = post_sellix(&d, file, event, sig).await;
        (a.status != 503).then_some(a)
    })
    .await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.json["duplicate"], false);
    d.stop().await;
}

#[tokio::test]
async fn without_secrets_loopback_clients_are_accepted_unsigned() {
    let d = Daemon::start("").await;
    let body = fixture("sellix/order_paid.json");
    let a = post(&d.url("/hooks/sellix"), &[], body).await;
    assert_eq!(a.status, 200, "{}", a.json);
    let a = post(
        &d.url("/hooks/selldone"),
        &[],
        fixture("selldone/PaymentOrder.json"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.json);
    let health: serde_json::Value = reqwest::get(d.url("/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(
        health["insecure_sources"],
        serde_json::json!(["sellix", "selldone"])
    );
    d.stop().await;
}
