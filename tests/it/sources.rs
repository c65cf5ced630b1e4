//! Source adapters called directly, for what a loopback test client cannot show.

use std::net::SocketAddr;

use bytes::Bytes;
use http::HeaderMap;
use storeflow::config::{SelldoneConfig, SellixConfig};
use storeflow::sources::selldone::Selldone;
use storeflow::sources::sellix::Sellix;
use storeflow::sources::{IntakeError, IntakeRequest, Source};

fn remote() -> Option<SocketAddr> {
    Some("203.0.113.9:5555".parse().unwrap())
}

#[test]
fn without_a_secret_remote_clients_are_refused() {
    let headers = HeaderMap::new();
    let body = Bytes::from_static(br#"{"event":"order:paid","data":{}}"#);
    let req = IntakeRequest {
        headers: &headers,
        body: body.clone(),
        peer: remote(),
        token: None,
    };
    let err = Sellix::new(SellixConfig::default())
        .verify(req)
        .unwrap_err();
    let IntakeError::Unauthorized(msg) = err else {
        panic!("expected 401")
    };
    assert!(msg.contains("set sources.sellix.secret"), "{msg}");

    let req = IntakeRequest {
        headers: &headers,
        body,
        peer: remote(),
        token: Some("x".into()),
    };
    assert!(matches!(
        Selldone::new(SelldoneConfig::default()).verify(req),
        Err(IntakeError::Unauthorized(_))
    ));
}

#[test]
fn unknown_events_and_odd_shapes_are_accepted() {
    let source = Sellix::new(SellixConfig::default());
    let headers = HeaderMap::new();
    let body = Bytes::from_static(
        br#"{"event":"feedback:received","data":{"custom_fields":[],"total":"12.5","extra":{"x":1}}}"#,
    );
    let peer = Some("127.0.0.1:1".parse().unwrap());
    let req = IntakeRequest {
        headers: &headers,
        body,
        peer,
        token: None,
    };
    let verified = source.verify(req).unwrap();
    let inc = source
        .normalize(&verified, storeflow::model::event::Timestamp::now())
        .unwrap();
    assert_eq!(inc.event.topic, "sellix/feedback:received");
    assert_eq!(inc.event.canonical, None);
    assert_eq!(inc.event.payload["data"]["extra"]["x"], 1);

    let body = Bytes::from_static(
        br#"{"event":"order:paid","data":{"uniqid":"a","custom_fields":null,"total":7,"quantity":null}}"#,
    );
    let req = IntakeRequest {
        headers: &headers,
        body,
        peer,
        token: None,
    };
    let inc = source
        .normalize(
            &source.verify(req).unwrap(),
            storeflow::model::event::Timestamp::now(),
        )
        .unwrap();
    assert_eq!(inc.event.order.unwrap().total, Some(7.0));
}

#[test]
fn selldone_webhooks_other_than_online_order_keep_their_type() {
    let source = Selldone::new(SelldoneConfig::default());
    let headers = HeaderMap::new();
    let body = Bytes::from_static(br#"{"event":"Product","action":"Created","product":{"id":1}}"#);
    let peer = Some("127.0.0.1:1".parse().unwrap());
    let req = IntakeRequest {
        headers: &headers,
        body,
        peer,
        token: None,
    };
    let inc = source
        .normalize(
            &source.verify(req).unwrap(),
            storeflow::model::event::Timestamp::now(),
        )
        .unwrap();
    assert_eq!(inc.event.kind, "Product/Created");
    assert_eq!(inc.event.topic, "selldone/Product/Created");
    assert_eq!(inc.event.order, None);
}
