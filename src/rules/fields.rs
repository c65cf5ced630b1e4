//! The fixed shapes of `event`, `order` and `rule` live in [`crate::template::fields`] (templates
//! check them too); this file reports the unknown fields an `if:` expression reads.

pub use crate::template::fields::*;

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

