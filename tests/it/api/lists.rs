//! Lists: pages across the journal, each filter, the event page, and the 400/404 answers.

use std::collections::BTreeSet;

use super::{config, get, ids, selldone_sent, sellix_paid, start, VIP_RULES};
use crate::helpers::{wait_for_async, Daemon};

/// Every page up to the end, following `next`.
async fn walk(d: &Daemon, query: &str, limit: usize) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut before = String::new();
    loop {
        let path = format!("/api/events?{query}&limit={limit}{before}");
        let (status, page) = get(d, &path).await;
        assert_eq!(status, 200, "{path}: {page}");
        pages += 1;
        let items = ids(&page);
        assert!(items.len() <= limit);
        seen.extend(items);
        match page["next"].as_str() {
            Some(next) => before = format!("&before={next}"),
            None => return (seen, pages),
        }
    }
}

async fn processed(d: &Daemon, n: usize) {
    wait_for_async("the events to be processed", || async {
        let (_, page) = get(d, "/api/events?status=processed&limit=500").await;
        (ids(&page).len() == n).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_cover_every_event_once_newest_first() {
    let d = start(VIP_RULES, &config()).await;
    let mut posted = Vec::new();
    for i in 0..23 {
        posted.push(sellix_paid(&d, &format!("o-{i}"), "a@example.com").await);
    }
    posted.reverse();
    let (seen, pages) = walk(&d, "", 5).await;
    assert_eq!(seen, posted, "no repeats, no gaps, newest first");
    assert_eq!(pages, 5);
    // A last page exactly full still ends the walk.
    let (seen, pages) = walk(&d, "source=sellix", 23).await;
    assert_eq!((seen.len(), pages), (23, 1));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_filter_finds_exactly_its_events() {
    let d = start(VIP_RULES, &config()).await;
    let plain = sellix_paid(&d, "o-1", "Ann@Example.com").await;
    let vip = sellix_paid(&d, "vip-2", "bob@example.com").await;
    let ada = selldone_sent(&d, 701, "Ada Lovelace").await;
    let alan = selldone_sent(&d, 702, "Alan Turing").await;
    processed(&d, 4).await;
    let cases: &[(&str, Vec<&String>)] = &[
        ("source=selldone", vec![&alan, &ada]),
        ("topic=sellix/order:paid", vec![&vip, &plain]),
        ("canonical=order.shipped", vec![&alan, &ada]),
        ("order=vip-2", vec![&vip]),
        ("order=701", vec![&ada]),
        ("q=ann@example.com", vec![&plain]),
        ("q=ann@", vec![]),
        ("q=ada", vec![&ada]),
        ("q=a", vec![&alan, &ada]),
        ("q=lovelace", vec![]),
        ("rule=vip-orders", vec![&vip]),
        ("status=processed", vec![&alan, &ada, &vip, &plain]),
        ("status=unprocessed", vec![]),
        ("status=dead", vec![]),
        ("source=sellix&q=bob@example.com", vec![&vip]),
    ];
    for (query, want) in cases {
        let (status, page) = get(&d, &format!("/api/events?{query}")).await;
        assert_eq!(status, 200, "{query}: {page}");
        let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(ids(&page), want, "{query}");
    }
    let (_, page) = get(&d, "/api/events?order=701").await;
    assert_eq!(page["items"][0]["customer_name"], "Ada Lovelace");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_page_has_payload_typed_trace_and_jobs() {
    let d = start(VIP_RULES, &config()).await;
    let vip = sellix_paid(&d, "vip-7", "c@example.com").await;
    processed(&d, 1).await;
    let (status, page) = get(&d, &format!("/api/events/{vip}")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["status"], "processed");
    assert_eq!(page["event"]["payload"]["data"]["uniqid"], "vip-7");
    assert_eq!(page["trace"]["rules"][0]["rule"], "vip-orders");
    assert_eq!(page["trace"]["rules"][0]["matched"], true);
    let job = &page["jobs"][0];
    assert_eq!(job["job"]["kind"], "log");
    let attempts = wait_for_async("the log job to run", || async {
        let (_, page) = get(&d, &format!("/api/events/{vip}")).await;
        let attempts = page["jobs"][0]["attempts"].as_array()?.clone();
        (!attempts.is_empty()).then_some(attempts)
    })
    .await;
    assert_eq!(attempts[0]["outcome"], "done");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_are_400_naming_them_and_unknown_ids_404() {
    let d = start(VIP_RULES, &config()).await;
    let cases: &[(&str, u16, &str)] = &[
        ("/api/events?limit=0", 400, "parameter `limit`"),
        ("/api/events?limit=abc", 400, "parameter `limit`"),
        ("/api/events?before=-3", 400, "parameter `before`"),
        ("/api/events?status=done", 400, "parameter `status`"),
        (
            "/api/events?colour=red",
            400,
            "parameter `colour`: unknown parameter",
        ),
        ("/api/events?source=a&source=b", 400, "parameter `source`"),
        ("/api/jobs?status=stuck", 400, "parameter `status`"),
        ("/api/jobs/abc", 400, "parameter `job id`"),
        ("/api/flags?open=maybe", 400, "parameter `open`"),
        ("/api/events/nope", 404, "no event with id nope"),
        ("/api/jobs/99", 404, "no job with id 99"),
        ("/api/timers-or-anything", 404, "no API route"),
    ];
    for (path, status, message) in cases {
        let (got, body) = get(&d, path).await;
        assert_eq!(got, *status, "{path}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(message), "{path}: {error}");
    }
    let (status, body) = super::call(&d, "GET", "/api/simulate", Some(super::TOKEN), None).await;
    assert_eq!(status, 405, "{body}");
    let unique: BTreeSet<_> = cases.iter().map(|c| c.0).collect();
    assert_eq!(unique.len(), cases.len());
    d.stop().await;
}
