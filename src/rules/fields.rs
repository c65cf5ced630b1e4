//! The fixed shapes of `event`, `order` and `rule` live in [`crate::template::fields`] (templates
//! check them too); this file reports the unknown fields an `if:` expression reads.

use crate::template::fields::{check, rhai_paths};

/// Reports every unknown `event.`/`order.` field an `if:` expression reads, at its position
/// in the file (`at` is where the expression's YAML value starts).
pub fn report_rhai(src: &str, at: (usize, usize), d: &mut super::diag::FileDiags<'_>) {
    for path in rhai_paths(src) {
        let segs: Vec<&str> = path.iter().map(|s| s.1).collect();
        if let Err(e) = check(&segs) {
            let inner = crate::template::offset_pos(src, path[e.segment].0);
            let pos = d.inner(at, inner);
            d.error(pos, format!("`if` reads {}", e.message), Some(e.hint));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_misspelt_field_in_if_is_reported_at_its_position() {
        let text = "rules:\n  - name: a\n    if: 'order.totl > 3 && order.total > 1'\n";
        let mut d = crate::rules::diag::FileDiags::new(std::path::Path::new("r.yaml"), text);
        d.rule = Some("a".into());
        report_rhai("order.totl > 3 && order.total > 1", (3, 9), &mut d);
        assert_eq!(d.out.len(), 1, "{:?}", d.out);
        let shown = d.out[0].to_string();
        assert!(
            shown.starts_with(
                "r.yaml:3:16: error: `if` reads unknown field `totl` in `order.totl` (rule `a`)"
            ),
            "{shown}"
        );
        assert!(shown.contains("hint: did you mean `total`?"), "{shown}");
    }
}
