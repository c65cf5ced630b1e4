//! Reading job parameters: rendered templates are text, so every reader is lenient about
//! numbers-as-text and says which parameter was wrong when it fails.

use serde_json::Value;

use super::ActionError;

/// A text parameter; empty when absent.
pub fn text(params: &Value, key: &str) -> String {
    match params.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A text parameter that must be present and non-empty.
pub fn required(params: &Value, action: &str, key: &str) -> Result<String, ActionError> {
    let v = text(params, key);
    if v.trim().is_empty() {
        return Err(ActionError::permanent(format!(
            "{action}: parameter `{key}` is missing or empty"
        )));
    }
    Ok(v)
}

/// A list parameter: a JSON list, or text with comma-separated items.
pub fn list(params: &Value, key: &str) -> Vec<String> {
    let items: Vec<String> = match params.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect(),
        _ => text(params, key).split(',').map(str::to_string).collect(),
    };
    items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}
