//! The intake path after the fourth round of issue 11 (branch `tokio`): a body that arrives in one
//! chunk is used as it is, one in several chunks is reassembled; the HMAC sees the same bytes.

use storeflow::journal::Store;

use crate::helpers::*;

/// A signed body sent chunked (no Content-Length) in uneven pieces is verified on the reassembled
/// bytes and journaled as the same event as the one-piece delivery (a duplicate of it).
#[tokio::test]
async fn regression_chunked_body_is_reassembled_before_the_hmac() {
    let d = Daemon::start(SECURED).await;
    let body = fixture("sellix/order_paid.json");
    let sig = sign(&body);
    let sellix = d.url("/hooks/sellix");
    let headers = [
        ("x-sellix-signature", sig.as_str()),
        ("x-sellix-event", "order:paid"),
    ];
    let whole = post(&sellix, &headers, body.clone()).await;
    assert_eq!(
        (whole.status, &whole.json["duplicate"]),
        (200, &false.into())
    );

    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(997).map(|c| Ok(c.to_vec())).collect();
    assert!(pieces.len() > 2, "the fixture spans several chunks");
    let resp = reqwest::Client::new()
        .post(&sellix)
        .header("x-sellix-signature", &sig)
        .header("x-sellix-event", "order:paid")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            pieces,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let chunked: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        chunked["duplicate"], true,
        "the same bytes dedupe: {chunked}"
    );
    assert_eq!(chunked["event_id"], whole.json["event_id"]);

    let e = d
        .journal()
        .event(whole.json["event_id"].as_str().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(e.payload["data"]["uniqid"], "7a31c2-9f0e4b6d21-58c0d3");
    d.stop().await;
}

/// A signature header that is a prefix of the right one, or the right one with extra hex, is
/// refused with 401 and nothing is journaled.
#[tokio::test]
async fn regression_signature_of_another_length_is_refused() {
    let d = Daemon::start(SECURED).await;
    let body = fixture("sellix/order_paid.json");
    let sig = sign(&body);
    let sellix = d.url("/hooks/sellix");
    for wrong in [sig[..126].to_string(), format!("{sig}00"), String::new()] {
        let a = post(&sellix, &[("x-sellix-signature", &wrong)], body.clone()).await;
        assert_eq!(a.status, 401, "{wrong}: {}", a.json);
    }
    assert!(d.journal().recent_events(10).unwrap().is_empty());
    d.stop().await;
}
