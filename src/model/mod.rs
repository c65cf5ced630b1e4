//! The domain model every layer shares: events, canonical names and the built-in action table.
//!
//! Nothing here does I/O or knows about storage, rules or delivery; every other module may
//! use it (DESIGN.md §9, the bottom layer).

pub mod actions;
pub mod clock;
pub mod event;

/// The bottom layer: nothing in `src/model/` may use another module of the crate.
#[cfg(test)]
mod layering {
    #[test]
    fn model_uses_nothing_above_it() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/model");
        let needle = ["crate", "::"].concat();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let upward = line
                    .match_indices(&needle)
                    .any(|(at, _)| !line[at + needle.len()..].starts_with("model"));
                assert!(!upward, "{}:{}: {line}", path.display(), n + 1);
            }
        }
    }
}
