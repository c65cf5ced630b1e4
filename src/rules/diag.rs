//! Building [`Diagnostic`]s: the per-file collector that adds snippets, and "did you mean".

use std::path::{Path, PathBuf};

use super::{Diagnostic, Severity};

/// Collects the diagnostics of one file; knows its text so it can show the offending line.
pub struct FileDiags<'a> {
    pub file: PathBuf,
    text: &'a str,
    /// The rule being checked, attached to every diagnostic recorded meanwhile.
    pub rule: Option<String>,
    pub out: Vec<Diagnostic>,
}

impl<'a> FileDiags<'a> {
    pub fn new(file: &Path, text: &'a str) -> Self {
        FileDiags {
            file: file.to_path_buf(),
            text,
            rule: None,
            out: Vec::new(),
        }
    }

    pub fn error(&mut self, at: (usize, usize), message: impl Into<String>, hint: Option<String>) {
        self.push(Severity::Error, at, message.into(), hint);
    }

    pub fn warning(
        &mut self,
        at: (usize, usize),
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.push(Severity::Warning, at, message.into(), hint);
    }

    fn push(
        &mut self,
        severity: Severity,
        at: (usize, usize),
        message: String,
        hint: Option<String>,
    ) {
        let (line, column) = at;
        self.out.push(Diagnostic {
            severity,
            file: self.file.clone(),
            line,
            column,
            rule: self.rule.clone(),
            message,
            hint,
            snippet: snippet(self.text, line, column),
        });
    }

    /// The file position of (line, column) inside a string value written at `at`: plain and
    /// quoted scalars continue on the value's line, block scalars
    /// keep the indentation of their first content line.
    pub fn inner(&self, at: (usize, usize), inner: (usize, usize)) -> (usize, usize) {
        let (line, col) = at;
        let (il, ic) = (inner.0.max(1), inner.1.max(1));
        let lead = self
            .line_text(line)
            .and_then(|l| l.chars().nth(col.saturating_sub(1)))
            .unwrap_or(' ');
        match lead {
            '|' | '>' => {
                // The block's indentation is that of its first content line.
                let first = self.line_text(line + 1).unwrap_or_default();
                let indent = first.len() - first.trim_start().len();
                (line + il, indent + ic)
            }
            '"' | '\'' if il == 1 => (line, col + ic),
            _ if il == 1 => (line, col + ic - 1),
            // Quoted scalars fold their continuation lines, so the column is approximate.
            '"' | '\'' => (line + il - 1, ic),
            // serde-saphyr places a block scalar at its first content character.
            _ => (line + il - 1, col - 1 + ic),
        }
    }

    /// The text of a 1-based line, if it exists.
    pub fn line_text(&self, line: usize) -> Option<&'a str> {
        line.checked_sub(1).and_then(|i| self.text.lines().nth(i))
    }
}

/// `  12 | source line` and a caret under `column` (both 1-based).
pub fn snippet(text: &str, line: usize, column: usize) -> Option<String> {
    let src = text.lines().nth(line.checked_sub(1)?)?;
    let gutter = format!("{line:>4} | ");
    let pad: String = src
        .chars()
        .take(column.saturating_sub(1))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    Some(format!("{gutter}{src}\n{:>width$} | {pad}^", "", width = 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_has_caret_under_column() {
        let s = snippet("a: 1\n  bad: x\n", 2, 3).unwrap();
        assert_eq!(s, "   2 |   bad: x\n     |   ^");
    }
}
