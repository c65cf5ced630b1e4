use super::*;

#[test]
fn email_needs_to_subject_and_a_body() {
    let email = spec("email").unwrap();
    assert_eq!(
        missing(email, &["to"]),
        vec!["`subject`", "one of `body`, `html`, `template`"]
    );
    assert!(missing(email, &["to", "subject", "template"]).is_empty());
}

#[test]
fn table_lists_every_kind() {
    assert_eq!(
        kinds(),
        ["email", "slack", "http", "flag", "log", "discord", "script"]
    );
    assert!(spec("script").is_none());
    assert!(missing(spec("slack").unwrap(), &["blocks"]).is_empty());
}

#[test]
fn kinds_parse_from_their_names_and_back() {
    for name in kinds() {
        assert_eq!(ActionKind::parse(name).name(), name);
    }
    assert_eq!(ActionKind::parse("script"), ActionKind::Script);
    assert_eq!(
        ActionKind::parse("telegram"),
        ActionKind::Plugin("telegram".into())
    );
    assert!(ActionKind::parse("telegram").is_scripted());
    assert!(!ActionKind::Email.is_scripted());
}

#[test]
fn http_method_is_case_insensitive_and_normalised_to_upper_case() {
    let method = spec("http").unwrap().param("method").unwrap();
    assert_eq!(method.normalize("post").unwrap(), "POST");
    let err = method.normalize("fetch").unwrap_err();
    assert!(err.to_string().contains("`method` must be one of"), "{err}");
    let level = spec("log").unwrap().param("level").unwrap();
    assert_eq!(level.normalize("WARN").unwrap(), "warn");
}

#[test]
fn secrets_and_escaping_come_from_the_rows() {
    assert!(secret_ref("http", "url"));
    assert!(secret_ref("slack", "webhook_url"));
    assert!(secret_ref("discord", "webhook_url"));
    assert!(!secret_ref("http", "body"));
    assert_eq!(escaping("email", "html"), Escaping::Html);
    assert_eq!(escaping("slack", "blocks"), Escaping::Slack);
    assert_eq!(escaping("email", "body"), Escaping::Verbatim);
}

/// Every required name is a parameter of its row, and names are unique.
#[test]
fn required_groups_name_parameters_of_their_row() {
    for row in ACTIONS {
        for name in row.required.iter().flat_map(|g| g.iter()) {
            assert!(row.param(name).is_some(), "{}: {name}", row.name());
        }
        let mut names = row.names();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), row.params.len(), "{}", row.name());
    }
}

/// docs/actions.md cannot drift from the table: every action has a section naming each of its
/// parameters.
#[test]
fn docs_mention_every_parameter_of_every_action() {
    let docs = include_str!("../../docs/actions.md");
    for row in ACTIONS {
        let heading = format!("\n## {}\n", row.name());
        let start = docs
            .find(&heading)
            .unwrap_or_else(|| panic!("docs/actions.md has no `{heading}` section"));
        let rest = &docs[start + heading.len()..];
        let section = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
        for param in row.params {
            assert!(
                section.contains(&format!("`{}`", param.name)),
                "docs/actions.md `{}` section does not mention `{}`",
                row.name(),
                param.name
            );
        }
    }
}
