//! `${VAR}` references in job parameters, resolved at delivery.
//!
//! Rules write `sign_secret: ${ERP_HOOK_SECRET}` (or a URL or header with `${…}` in it); the job
//! keeps that reference, so the secret is never journaled, listed or printed, and the executor
//! resolves it from the environment just before sending (`crate::rules::actions::secret_ref` says
//! which parameters). Rendered values had every `$` doubled, so only the rule author's own text
//! can name a variable. Syntax as in storeflow.yaml: `${NAME}`, `${NAME:-default}`, `$$` = `$`.

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
    let mut out = String::with_capacity(text.len());
    let mut secrets = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let Some((inner, tail)) = after
            .strip_prefix('{')
            .and_then(|body| body.split_once('}'))
        else {
            out.push('$');
            rest = after;
            continue;
        };
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        let value = match (env(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => {
                secrets.push(v.clone());
                v
            }
            (None, Some(d)) => d.to_string(),
            (None, None) => {
                return Err(SecretError::Unset {
                    name: name.to_string(),
                })
            }
        };
        out.push_str(&value);
        rest = tail;
    }
    out.push_str(rest);
    Ok(Resolved { text: out, secrets })
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
}
