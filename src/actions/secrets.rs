//! `${VAR}` references in job parameters, resolved at delivery.
//!
//! Rules write `sign_secret: ${ERP_HOOK_SECRET}` (or a URL or header with `${…}` in it); the job
//! keeps that reference, so the secret is never journaled, listed or printed, and the executor
//! resolves it from the environment just before sending (`crate::rules::actions::secret_ref` says
//! which parameters). Rendered values had every `$` doubled, so only the rule author's own text
//! can name a variable. Syntax as in storeflow.yaml: `${NAME}`, `${NAME:-default}`, `$$` = `$`.

use crate::config::expand_vars;

/// A parameter with its references replaced, and the values that replaced them (to scrub from
/// error messages).
#[derive(Debug, PartialEq)]
pub struct Resolved {
    pub text: String,
    pub secrets: Vec<String>,
}

/// Why a parameter's references could not be resolved; the action reports it as a permanent
/// failure of that parameter.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable `{name}` is not set")]
    Unset { name: String },
}

/// Resolves `text` against `env`; an unset (or empty) variable without a default is an error
/// naming it.
pub fn resolve(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Resolved, SecretError> {
    let mut secrets = Vec::new();
    let value =
        |name: &str, default: Option<&str>| match (env(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => {
                secrets.push(v.clone());
                Ok(v)
            }
            (None, Some(d)) => Ok(d.to_string()),
            (None, None) => Err(SecretError::Unset {
                name: name.to_string(),
            }),
        };
    // A `${` without its `}` is text here: job parameters are not config files.
    let text = expand_vars(text, value, |_| None)?;
    Ok(Resolved { text, secrets })
}

/// [`resolve`] against the process environment.
pub fn resolve_env(text: &str) -> Result<Resolved, SecretError> {
    resolve(text, |name| std::env::var(name).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "ERP").then(|| "s3cret".to_string())
    }

    #[test]
    fn references_resolve_and_doubled_dollars_stay_text() {
        let r = resolve("k=${ERP} $${ERP} ${NOPE:-dflt} $5", env).unwrap();
        assert_eq!(r.text, "k=s3cret ${ERP} dflt $5");
        assert_eq!(r.secrets, ["s3cret"]);
        let e = resolve("${NOPE}", env).unwrap_err();
        assert_eq!(
            e,
            SecretError::Unset {
                name: "NOPE".into()
            }
        );
        assert_eq!(e.to_string(), "environment variable `NOPE` is not set");
    }

    #[test]
    fn an_unclosed_reference_is_text_in_a_parameter() {
        let r = resolve("a ${ERP b $${ERP", env).unwrap();
        assert_eq!(r.text, "a ${ERP b ${ERP");
        assert!(r.secrets.is_empty());
    }
}
