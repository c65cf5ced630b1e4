//! Query parameters: each read once by name; one the route does not take, or a value that does
//! not parse, is a 400 naming the parameter.

use super::AdminError;
use crate::journal::query::MAX_PAGE;

/// How many items a page holds when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 50;

/// The decoded query string, consumed as the route reads it.
#[derive(Debug, Default)]
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn parse(query: &str) -> Result<Params, AdminError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for (i, (name, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(n, _)| n == name) {
                return Err(AdminError::param(name, "given more than once"));
            }
        }
        Ok(Params(pairs))
    }

    /// The value of `name`, if given (an empty value counts as not given).
    pub(super) fn take(&mut self, name: &str) -> Option<String> {
        let i = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.remove(i).1).filter(|v| !v.is_empty())
    }

    /// `true`/`false` (also `1`/`0`); absent is `false`.
    pub(super) fn flag(&mut self, name: &str) -> Result<bool, AdminError> {
        match self.take(name).as_deref() {
            None | Some("false" | "0") => Ok(false),
            Some("true" | "1") => Ok(true),
            Some(other) => Err(AdminError::param(
                name,
                format!("`{other}` is not true or false"),
            )),
        }
    }

    /// `limit`: 1 to [`MAX_PAGE`], default [`DEFAULT_LIMIT`].
    pub(super) fn limit(&mut self) -> Result<usize, AdminError> {
        let Some(v) = self.take("limit") else {
            return Ok(DEFAULT_LIMIT);
        };
        match v.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(AdminError::param(
                "limit",
                format!("`{v}` is not a number from 1 to {MAX_PAGE}"),
            )),
        }
    }

    /// `before`: the `next` cursor of a previous page.
    pub(super) fn before(&mut self) -> Result<Option<i64>, AdminError> {
        let Some(v) = self.take("before") else {
            return Ok(None);
        };
        match v.parse::<i64>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(AdminError::param(
                "before",
                format!("`{v}` is not a cursor (use the `next` of the previous page)"),
            )),
        }
    }

    /// Fails on the first parameter nobody read: the route does not take it.
    pub(super) fn done(self, takes: &str) -> Result<(), AdminError> {
        match self.0.into_iter().next() {
            None => Ok(()),
            Some((name, _)) => Err(AdminError::param(
                &name,
                format!("unknown parameter; this route takes: {takes}"),
            )),
        }
    }
}

/// A numeric id from a path.
pub(super) fn id(what: &str, id: &str) -> Result<i64, AdminError> {
    id.parse().map_err(|_| {
        AdminError::param(
            &format!("{what} id"),
            format!(
                "`{}` is not a number",
                id.chars().take(40).collect::<String>()
            ),
        )
    })
}

/// A page as the API answers it: the cursor as a string.
pub(super) fn page<T: serde::Serialize>(page: crate::journal::query::Page<T>) -> serde_json::Value {
    serde_json::json!({
        "items": page.items,
        "next": page.next.map(|n| n.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_their_parameter() {
        let e = Params::parse("limit=0").unwrap().limit().unwrap_err();
        assert_eq!(
            e.to_string(),
            "parameter `limit`: `0` is not a number from 1 to 500"
        );
        let e = Params::parse("before=x").unwrap().before().unwrap_err();
        assert!(e.to_string().starts_with("parameter `before`"), "{e}");
        let e = Params::parse("a=1&a=2").unwrap_err();
        assert!(e.to_string().starts_with("parameter `a`"), "{e}");
        let e = Params::parse("nope=1").unwrap().done("limit").unwrap_err();
        assert!(e.to_string().contains("unknown parameter"), "{e}");
        let mut p = Params::parse("q=a%40b.c&open=true").unwrap();
        assert_eq!(p.take("q").as_deref(), Some("a@b.c"));
        assert!(p.flag("open").unwrap());
    }
}
