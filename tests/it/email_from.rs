//! A rule's own `from` (an email action parameter) is the sender the SMTP server sees, in the
//! envelope and the header; without it, `email.from`.

use crate::helpers::*;
use crate::receivers::SmtpServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_mails_from_its_own_sender() {
    let dir = tempfile::tempdir().unwrap();
    let rules = "rules:\n  - name: outlet\n    on: order.shipped\n    actions:\n      - email: { to: \"{{ order.customer.email }}\", subject: s, body: b, from: \"Outlet <outlet@example.com>\" }\n  - name: main\n    on: order.shipped\n    actions:\n      - email: { to: \"{{ order.customer.email }}\", subject: t, body: b }\n";
    write_rules(dir.path(), "r.yaml", rules);
    let mut smtp = SmtpServer::start();
    let yaml = format!(
        "{SECURED}email:\n  from: \"Main <main@example.com>\"\n  smtp: {{ host: 127.0.0.1, port: {}, security: none }}\n",
        smtp.port
    );
    let daemon = Daemon::start_in(dir, &yaml).await;
    let url = daemon.url(&format!("/hooks/selldone/{SELLDONE_TOKEN}"));
    assert_eq!(
        post(&url, &[], fixture("selldone/SentOrder.json"))
            .await
            .status,
        200
    );
    let mut mails = [smtp.next().await, smtp.next().await];
    mails.sort_by_key(|m| m.header("Subject"));
    assert_eq!(mails[0].from, "outlet@example.com");
    assert_eq!(
        mails[0].header("From").as_deref(),
        Some("Outlet <outlet@example.com>")
    );
    assert_eq!(mails[1].from, "main@example.com");
    assert_eq!(
        mails[1].header("From").as_deref(),
        Some("Main <main@example.com>")
    );
}
