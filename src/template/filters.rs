//! Shop filters for action templates: `money` and `date`.

use minijinja::{Error, ErrorKind, Value};

/// `{{ order.total | money(order.currency) }}` → `24.99 USD`; without a currency `24.99`.
/// Always two decimals; an absent value renders empty.
pub fn money(value: Value, currency: Option<String>) -> Result<String, Error> {
    if value.is_undefined() || value.is_none() {
        return Ok(String::new());
    }
    let amount = value_number(&value).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("money: `{value}` is not a number"),
        )
    })?;
    Ok(match currency.as_deref().map(str::trim) {
        Some(c) if !c.is_empty() => format!("{amount:.2} {c}"),
        _ => format!("{amount:.2}"),
    })
}

/// `{{ payload.data.created_at | date }}` → `2025-03-15`. Takes unix seconds (number or numeric
/// string) or an RFC 3339 string; the optional format understands `%Y %m %d %H %M %S %%`.
/// Times are shown in UTC. An absent value renders empty.
pub fn date(value: Value, format: Option<String>) -> Result<String, Error> {
    if value.is_undefined() || value.is_none() {
        return Ok(String::new());
    }
    let secs = value_number(&value)
        .map(|n| n.floor() as i64)
        .or_else(|| value.as_str().and_then(parse_rfc3339))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("date: cannot read `{value}` as a date"),
            )
        })?;
    Ok(strftime(secs, format.as_deref().unwrap_or("%Y-%m-%d")))
}

/// A number from a JSON number or a numeric string (spaces around it allowed): how the rule
/// operators (`gte`, `==` against a number, ...) read a field, as `money` and `date` do.
pub fn number(v: &serde_json::Value) -> Option<f64> {
    numeric(v.as_str(), || v.as_f64())
}

/// [`number`] for a template value.
fn value_number(v: &Value) -> Option<f64> {
    numeric(v.as_str(), || f64::try_from(v.clone()).ok())
}

/// The one reading of a number: a string is parsed (trimmed), anything else converted.
fn numeric(text: Option<&str>, convert: impl FnOnce() -> Option<f64>) -> Option<f64> {
    match text {
        Some(s) => s.trim().parse().ok(),
        None => convert(),
    }
}

/// Unix seconds of `YYYY-MM-DD[T ]HH:MM:SS[.frac](Z|±HH:MM)` (a bare date is midnight UTC).
fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let field = |from: usize, to: usize| s.get(from..to)?.parse::<i64>().ok();
    let (y, m, d) = (field(0, 4)?, field(5, 7)?, field(8, 10)?);
    if s.len() == 10 {
        return Some(days_from_civil(y, m, d) * 86_400);
    }
    let (hh, mm, ss) = (field(11, 13)?, field(14, 16)?, field(17, 19)?);
    let rest = s.get(19..)?;
    let rest = rest.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match rest {
        "" | "Z" | "z" => 0,
        tz => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            let h: i64 = tz.get(1..3)?.parse().ok()?;
            let m: i64 = tz.get(4..6).unwrap_or("0").parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    Some(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss - offset)
}

/// Formats unix seconds in UTC.
fn strftime(secs: i64, format: &str) -> String {
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&format!("{y:04}")),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('H') => out.push_str(&format!("{:02}", tod / 3600)),
            Some('M') => out.push_str(&format!("{:02}", tod % 3600 / 60)),
            Some('S') => out.push_str(&format!("{:02}", tod % 60)),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_has_two_decimals() {
        assert_eq!(
            money(Value::from(24.99), Some("USD".into())).unwrap(),
            "24.99 USD"
        );
        assert_eq!(money(Value::from(5), None).unwrap(), "5.00");
        assert_eq!(
            money(Value::from("7.5"), Some(String::new())).unwrap(),
            "7.50"
        );
        assert_eq!(money(Value::UNDEFINED, None).unwrap(), "");
        assert!(money(Value::from("abc"), None).is_err());
    }

    #[test]
    fn date_reads_unix_seconds_and_rfc3339() {
        assert_eq!(
            date(Value::from(1_742_040_000), None).unwrap(),
            "2025-03-15"
        );
        assert_eq!(
            date(
                Value::from("2025-03-15T12:00:00.123Z"),
                Some("%d/%m/%Y %H:%M:%S".into())
            )
            .unwrap(),
            "15/03/2025 12:00:00"
        );
        assert_eq!(
            date(
                Value::from("2024-02-29T23:30:00-01:00"),
                Some("%Y-%m-%d %H:%M".into())
            )
            .unwrap(),
            "2024-03-01 00:30"
        );
        assert_eq!(date(Value::from(0), None).unwrap(), "1970-01-01");
        assert!(date(Value::from("soon"), None).is_err());
    }
}
