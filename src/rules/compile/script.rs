//! `script:` actions: a `.rhai` path or an inline script, compiled at load.

use super::{Action, Compiler};
use crate::rules::actions::ActionKind;
use crate::rules::diag::FileDiags;
use crate::rules::model::{pos, Node, Value};
use crate::rules::{Diagnostic, Severity};
use crate::template::render::Param;

/// `script:` takes a `.rhai` path (relative to the rule file's folder) or an inline script;
/// either is compiled now, with errors at their position in the file.
pub(super) fn compile_script(
    v: &Node,
    c: &mut Compiler<'_>,
    d: &mut FileDiags<'_>,
) -> Option<Action> {
    let Value::Str(s) = &v.value else {
        let msg = format!(
            "`script` takes a file path or an inline script, found {}",
            v.value.type_name()
        );
        d.error(pos(v), msg, None);
        return None;
    };
    let (source, origin) = script_source(s, v, d)?;
    let script = match c.runner.compile(&source, origin) {
        Ok(script) => script,
        Err(e) => {
            script_error(d, &e, &source);
            return None;
        }
    };
    let problems = c.runner.lint(&script);
    problems.iter().for_each(|e| script_error(d, e, &source));
    if !problems.is_empty() {
        return None;
    }
    let script = std::sync::Arc::new(script);
    let params = Param::Map(vec![("script".into(), Param::Lit(s.clone().into()))]);
    Some(Action {
        kind: ActionKind::Script,
        params,
        script: Some(script),
    })
}

/// The text of a `script:` value and where it comes from: the `.rhai` file it names (relative
/// to the rule file's folder) or the inline script itself.
fn script_source(
    s: &str,
    v: &Node,
    d: &mut FileDiags<'_>,
) -> Option<(String, crate::script::Origin)> {
    if !s.trim_end().ends_with(".rhai") || s.contains('\n') {
        let (line, column) = d.inner(pos(v), (1, 1));
        let origin = crate::script::Origin {
            file: d.file.to_path_buf(),
            line,
            column,
        };
        return Some((s.to_string(), origin));
    }
    let path = d
        .file
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join(s.trim());
    match std::fs::read_to_string(&path) {
        Ok(text) => Some((text, crate::script::Origin::file(path))),
        Err(e) => {
            d.error(
                pos(v),
                format!("cannot read script `{}`: {e}", path.display()),
                None,
            );
            None
        }
    }
}

/// A problem of a script at its own position: in the `.rhai` file (with a snippet of the script)
/// for a script file, in the rule file for an inline script.
fn script_error(d: &mut FileDiags<'_>, e: &crate::script::ScriptError, source: &str) {
    let message = format!("Rhai error in `script`: {}", e.message);
    if e.file == d.file {
        d.error((e.line, e.column), message, None);
        return;
    }
    d.out.push(Diagnostic {
        severity: Severity::Error,
        file: e.file.clone(),
        line: e.line,
        column: e.column,
        rule: d.rule.clone(),
        message,
        hint: None,
        snippet: crate::rules::diag::snippet(source, e.line, e.column),
    });
}
