//! The console's timers page (`/ui/timers`, DESIGN.md §11/§12): a real `wait` rule fed
//! through the daemon shows up as a pending timer with its order and event, the overview counts
//! it, the event page lists it, cancelling needs the session's CSRF token and makes the same
//! journal write as `storeflow timers cancel`; the empty state says what creates timers. A real
//! Chromium opens the page and saves desktop and 390 px screenshots.

use storeflow::journal::{Store, Timer, TimerFilter, TimerStatus};

use super::browser::{browser, click, driver, screenshots, wait_text};
use super::{client, csrf_of, session_cookie, FormExt, TOKEN};
use crate::helpers::{dir_with_rules, Daemon, SECURED};
use crate::timers::selldone;

const RULES: &str = r#"
rules:
  - name: paid-not-shipped
    on: order.paid
    wait: { for: 48h, unless: [order.shipped, order.cancelled] }
    actions:
      - flag: { kind: late-shipment, note: "order {{ order.id }} not shipped in 48 h" }
  - name: review-request
    on: order.paid
    actions:
      - flag: { kind: ask-review, note: "ask {{ order.id }} for a review" }
        delay: 7d
"#;

fn config() -> String {
    format!("{SECURED}admin:\n  token: {TOKEN}\n")
}

async fn sign_in(d: &Daemon) -> String {
    let resp = client()
        .post(d.url("/ui/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    session_cookie(&resp).expect("a session cookie").0
}

async fn get(d: &Daemon, path: &str, cookie: &str) -> String {
    let resp = client()
        .get(d.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.text().await.unwrap()
}

/// Posts the cancel form; answers the status and the `Location` header.
async fn cancel(d: &Daemon, cookie: &str, id: i64, csrf: Option<&str>) -> (u16, String) {
    let form = match csrf {
        Some(token) => vec![("csrf", token)],
        None => vec![("note", "no token")],
    };
    let resp = client()
        .post(d.url(&format!("/ui/timers/{id}/cancel")))
        .header("cookie", cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    let location = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    (resp.status().as_u16(), location)
}

fn timers(d: &Daemon) -> Vec<Timer> {
    d.journal().timers(&TimerFilter::default()).unwrap()
}

/// A daemon with the rules and one paid order (41): a pending wait and a pending delay.
async fn shop_with_timers() -> (Daemon, String) {
    let d = Daemon::start_in(dir_with_rules("time.yaml", RULES), &config()).await;
    let event = selldone(&d.base, "PaymentOrder", 41, "2026-01-01 10:00:00").await;
    d.trace(&event).await;
    assert_eq!(timers(&d).len(), 2, "{:?}", timers(&d));
    (d, event)
}

#[tokio::test]
async fn console_timers_page_lists_a_pending_wait_with_its_order_event_and_why() {
    let (d, event) = shop_with_timers().await;
    let cookie = sign_in(&d).await;
    let wait = timers(&d)
        .into_iter()
        .find(|t| t.rule == "paid-not-shipped");
    let wait = wait.expect("the wait rule's timer");

    let page = get(&d, "/ui/timers", &cookie).await;
    assert!(
        page.contains("ui&#x2f;timers\" aria-current=\"page\">Timers</a>"),
        "{page}"
    );
    assert!(
        page.contains(&format!("id=\"timer-{}\"", wait.id)),
        "{page}"
    );
    assert!(page.contains("paid-not-shipped") && page.contains("review-request"));
    assert!(page.contains("href=\"/ui/events?order=41\""), "{page}");
    assert!(
        page.contains(&event),
        "the event's id is shown and linked: {page}"
    );
    assert!(
        page.contains(
            "waits 48h, cancelled if order.shipped or order.cancelled of the same order arrives"
        ),
        "{page}"
    );
    assert!(page.contains("will run flag late-shipment"), "{page}");
    assert!(page.contains(&format!("<time datetime=\"{}\">", wait.due_at.to_rfc3339())));

    // The overview counts them; the event page lists them.
    let overview = get(&d, "/ui/", &cookie).await;
    assert!(
        overview.contains(
            "<div class=\"n\">2</div><div class=\"l\"><a href=\"/ui/timers\">timers pending"
        ),
        "{overview}"
    );
    let event_page = get(&d, &format!("/ui/events/{event}"), &cookie).await;
    assert!(event_page.contains("<h2>Timers</h2>"), "{event_page}");
    assert!(
        event_page.contains(&format!("#{}", wait.id)),
        "{event_page}"
    );
    assert!(event_page.contains("No jobs yet: the timers above create them"));

    // Filters: another order, another status.
    let other = get(&d, "/ui/timers?order=999", &cookie).await;
    assert!(
        other.contains("No pending timers for order <code>999</code>"),
        "{other}"
    );
    let fired = get(&d, "/ui/timers?status=fired&order=41", &cookie).await;
    assert!(fired.contains("No fired timers for order"), "{fired}");
    let all = get(&d, "/ui/timers?status=all&order=41", &cookie).await;
    assert!(all.contains(&format!("id=\"timer-{}\"", wait.id)), "{all}");
    d.stop().await;
}

#[tokio::test]
async fn console_timer_cancel_needs_the_csrf_token_and_cancels_it_for_good() {
    let (d, _) = shop_with_timers().await;
    let cookie = sign_in(&d).await;
    let page = get(&d, "/ui/timers", &cookie).await;
    let csrf = csrf_of(&page);
    let id = timers(&d)[0].id;

    let (status, _) = cancel(&d, &cookie, id, None).await;
    assert_eq!(status, 403, "a form without the CSRF token is refused");
    let (status, _) = cancel(&d, &cookie, id, Some("forged")).await;
    assert_eq!(status, 403);
    assert!(timers(&d).iter().all(|t| t.status == TimerStatus::Pending));

    let (status, location) = cancel(&d, &cookie, id, Some(&csrf)).await;
    assert_eq!(
        (status, location.as_str()),
        (303, &*format!("/ui/timers?notice=one:{id}"))
    );
    let t = timers(&d).into_iter().find(|t| t.id == id).unwrap();
    assert_eq!(t.status, TimerStatus::Cancelled);
    assert_eq!(t.outcome.as_deref(), Some("cancelled by hand"));
    let after = get(&d, &location, &cookie).await;
    assert!(
        after.contains(&format!("Timer #{id} is cancelled")),
        "{after}"
    );
    assert!(
        !after.contains(&format!("id=\"timer-{id}\"")),
        "no longer pending: {after}"
    );
    let cancelled = get(&d, "/ui/timers?status=cancelled", &cookie).await;
    assert!(cancelled.contains(&format!("id=\"timer-{id}\"")));
    assert!(cancelled.contains("cancelled by hand"), "{cancelled}");
    assert!(cancelled.contains("would have run flag"), "{cancelled}");

    // Cancelling it again changes nothing and says so.
    let (_, again) = cancel(&d, &cookie, id, Some(&csrf)).await;
    assert_eq!(again, format!("/ui/timers?notice=none:{id}"));
    let page = get(&d, &again, &cookie).await;
    assert!(page.contains("was not cancelled"), "{page}");
    d.stop().await;
}

#[tokio::test]
async fn console_timers_empty_state_says_what_creates_timers() {
    let d = Daemon::start(&config()).await;
    let cookie = sign_in(&d).await;
    let page = get(&d, "/ui/timers", &cookie).await;
    assert!(page.contains("No pending timers."), "{page}");
    for word in [
        "<code>wait</code>",
        "<code>delay</code>",
        "<code>digest</code>",
        "<code>quiet_hours</code>",
        "docs/rules.md",
    ] {
        assert!(page.contains(word), "{word}: {page}");
    }
    let unknown = get(&d, "/ui/timers?status=nonsense", &cookie).await;
    assert!(
        unknown.contains("No pending timers."),
        "an unknown status shows pending ones"
    );
    d.stop().await;
}

#[tokio::test]
async fn browser_opens_the_timers_page_and_cancels_the_timers() {
    let Some(driver) = driver().await else {
        return;
    };
    let (d, _) = shop_with_timers().await;
    let c = browser(&driver).await;
    c.goto(&d.url("/ui/login")).await.unwrap();
    wait_text(&c, "Admin token").await;
    c.find(fantoccini::Locator::Css("input[name=token]"))
        .await
        .unwrap()
        .send_keys(TOKEN)
        .await
        .unwrap();
    click(&c, "form[action='/ui/login'] button").await;
    wait_text(&c, "timers pending").await;
    click(&c, "nav a[href='/ui/timers']").await;
    wait_text(&c, "review-request").await;
    screenshots(&c, "timers").await;
    click(&c, "tr a.id").await;
    wait_text(&c, "No jobs yet: the timers above create them").await;
    screenshots(&c, "event-timers").await;
    c.goto(&d.url("/ui/timers")).await.unwrap();
    wait_text(&c, "review-request").await;

    click(&c, "tr form.inline button").await;
    wait_text(&c, "is cancelled").await;
    click(&c, "tr form.inline button").await;
    wait_text(&c, "No pending timers.").await;
    assert!(timers(&d)
        .iter()
        .all(|t| t.status == TimerStatus::Cancelled));
    screenshots(&c, "timers-empty").await;

    c.goto(&d.url("/ui/timers?status=cancelled")).await.unwrap();
    wait_text(&c, "cancelled by hand").await;
    screenshots(&c, "timers-cancelled").await;
    c.close().await.unwrap();
    d.stop().await;
}
