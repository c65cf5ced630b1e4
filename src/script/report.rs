//! Run errors as [`ScriptError`]s: the position in the script's own file, and a message
//! without Rhai's position suffixes that names the function calls it happened in.

use rhai::EvalAltResult;

use super::{Origin, ScriptError};

/// The run error as a [`ScriptError`] at its position in `origin`: the innermost position that
/// is still in the script's own source (a function it defines), else the call site.
pub(super) fn translate(err: &EvalAltResult, origin: &Origin) -> ScriptError {
    let own = origin.file.display().to_string();
    let mut pos = err.position();
    let mut cur = err;
    while let EvalAltResult::ErrorInFunctionCall(_, src, inner, _) = cur {
        if src != &own && !src.is_empty() {
            break;
        }
        if !inner.position().is_none() {
            pos = inner.position();
        }
        cur = inner;
    }
    let (line, column) = origin.translate(pos.line().unwrap_or(1), pos.position().unwrap_or(1));
    ScriptError {
        file: origin.file.clone(),
        line,
        column,
        message: describe(err),
    }
}

/// A run error without Rhai's position suffixes, then the function calls it happened in
/// (outermost first, repeats folded: `Stack overflow (in f() ×32)`).
pub fn describe(err: &EvalAltResult) -> String {
    let mut frames: Vec<(String, usize)> = Vec::new();
    let mut cur = err;
    while let EvalAltResult::ErrorInFunctionCall(name, src, inner, _) = cur {
        let at = inner.position();
        let frame = match (src.is_empty(), at.line()) {
            (false, Some(l)) => format!("{name}() at {src}:{l}:{}", at.position().unwrap_or(1)),
            _ => format!("{name}()"),
        };
        match frames.last_mut() {
            Some((last, n)) if last.split(' ').next() == frame.split(' ').next() => *n += 1,
            _ => frames.push((frame, 1)),
        }
        cur = inner;
    }
    let root = match cur {
        EvalAltResult::ErrorRuntime(v, _) | EvalAltResult::ErrorTerminated(v, _) => v.to_string(),
        EvalAltResult::ErrorTooManyOperations(_) => {
            "operation budget exceeded (scripts.max_operations)".to_string()
        }
        EvalAltResult::ErrorStackOverflow(_) => {
            "stack overflow: function calls nested too deep (runaway recursion?)".to_string()
        }
        other => {
            let text = other.to_string();
            match text.rfind(" (line ") {
                Some(i) if text.ends_with(')') => text[..i].to_string(),
                _ => text,
            }
        }
    };
    if frames.is_empty() {
        return root;
    }
    let calls: Vec<String> = frames
        .into_iter()
        .map(|(f, n)| if n > 1 { format!("{f} ×{n}") } else { f })
        .collect();
    format!("{root} (in {})", calls.join(" → "))
}
