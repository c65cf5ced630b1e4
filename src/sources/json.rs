//! Lenient readers for platform JSON: numbers may be ints, floats or numeric strings; text may be
//! a number; anything may be null or missing.

use serde_json::Value;

/// The value at a dotted path (`basket.items`), if every step exists.
pub fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, key| match v {
        Value::Object(m) => m.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// Text at `path`: strings as they are, numbers and booleans printed, anything else empty.
pub fn text(v: &Value, path: &str) -> String {
    at(v, path).map(as_text).unwrap_or_default()
}

pub fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// The first non-empty text among `paths`.
pub fn first_text(v: &Value, paths: &[&str]) -> String {
    paths
        .iter()
        .map(|p| text(v, p))
        .find(|s| !s.is_empty())
        .unwrap_or_default()
}

/// A finite number at `path`, from a JSON number or a numeric string.
///
/// `"NaN"`, `"inf"`, `"-infinity"` and strings that overflow (`"1e999"`) parse as floats but are
/// not amounts: they read as no number at all. A non-finite value would be journaled as `null`
/// (JSON has no NaN) and could not be read back as the number it was.
pub fn number(v: &Value, path: &str) -> Option<f64> {
    let n = match at(v, path)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }?;
    n.is_finite().then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_leniently() {
        let v = json!({"a": {"n": 3, "f": 2.5, "s": "4.5", "t": null, "list": [{"x": "y"}]}});
        assert_eq!(text(&v, "a.n"), "3");
        assert_eq!(text(&v, "a.t"), "");
        assert_eq!(text(&v, "a.list.0.x"), "y");
        assert_eq!(number(&v, "a.f"), Some(2.5));
        assert_eq!(number(&v, "a.s"), Some(4.5));
        assert_eq!(number(&v, "a.missing"), None);
        assert_eq!(first_text(&v, &["a.t", "a.n"]), "3");
    }

    #[test]
    fn regression_non_finite_numbers_read_as_no_number() {
        let v = json!({"nan": "NaN", "ninf": "-inf", "inf": "infinity", "big": "1e999",
                       "huge": 18446744073709551615_u64, "neg": "-1e308"});
        for path in ["nan", "ninf", "inf", "big"] {
            assert_eq!(number(&v, path), None, "{path}");
        }
        assert_eq!(number(&v, "huge"), Some(18446744073709551615_u64 as f64));
        assert_eq!(number(&v, "neg"), Some(-1e308));
    }
}
