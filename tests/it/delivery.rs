//! The dispatcher delivering jobs in a running daemon: flags, dead letters, re-queueing.

use storeflow::journal::{JobStatus, Store};

use crate::helpers::*;

const DISPUTE_RULES: &str = r#"
rules:
  - name: flag-disputes
    on: sellix/order:disputed
    actions:
      - flag: { kind: dispute, note: "{{ payload.data.paypal_dispute.reason }}" }
"#;

#[tokio::test]
async fn a_dispute_is_flagged_once_even_when_delivered_twice() {
    let d = Daemon::start_in(dir_with_rules("d.yaml", DISPUTE_RULES), SECURED).await;
    let (file, event, sig) = SELLIX_FIXTURES[4];
    let first = post_sellix(&d, file, event, sig).await;
    let again = post_sellix(&d, file, event, sig).await;
    assert_eq!(again.json["duplicate"], true);
    let id = first.json["event_id"].as_str().unwrap().to_string();
    let job = wait_for("the flag job to be delivered", || {
        let jobs = d.journal().jobs(Some(&id), None, 10).unwrap();
        jobs.into_iter().find(|j| j.status == JobStatus::Done)
    })
    .await;
    assert_eq!(job.attempts, 1);
    let flags = d
        .journal()
        .flags(Some("dispute"), storeflow::journal::FlagFilter::Open, 10)
        .unwrap();
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert_eq!(flags[0].order_id, "e19d3f-6b0c2a8e47-9d21a5");
    assert_eq!(flags[0].source, "sellix");
    assert_eq!(flags[0].note, "MERCHANDISE_OR_SERVICE_NOT_AS_DESCRIBED");
    assert_eq!(flags[0].rule, "flag-disputes");
    let attempts = d.journal().attempts(job.id).unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, "done");
    d.stop().await;
}
