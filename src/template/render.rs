//! Action parameters as minijinja templates: one environment per rule set, every string
//! parameter parsed at load, rendered only for matched rules.
//!
//! Templates see `event`, `order`, `payload` and `rule` ({name, description}). Undefined values
//! render empty, even chained (`payload.a.b` when `a` is missing): a missing payload field should
//! not fail an email, but a template naming an
//! unknown top-level variable is a load error: that is a typo, not missing data.
//!
//! Interpolated values (`{{ … }}`) are escaped for the parameter they land in ([`Escape`],
//! decided per parameter by `model::actions::escape`); the template's own text never is, so
//! a rule author's `<!here>` or `<b>` keeps working while a buyer's cannot.

use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde_json::Value as J;

use super::fields;
use super::filters;
use super::view::Scope;

/// The variables a template may use.
pub const VARIABLES: &[&str] = &["event", "order", "payload", "rule", "events", "waited"];
/// Global functions minijinja provides, which templates may call.
const GLOBALS: &[&str] = &["range", "dict", "namespace", "debug"];

/// How the values a template interpolates are escaped. The template name carries it (a suffix),
/// so minijinja's auto-escape callback picks it per template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Plain text, JSON: values verbatim.
    None,
    /// HTML mail bodies (inline `html:` and `.html` template files): `< > & " ' /` escaped.
    Html,
    /// Slack mrkdwn: `& < >` as `&amp; &lt; &gt;`, so a value cannot become `<!channel>`, a
    /// mention or a link (Slack's "Escaping text" rules).
    Slack,
    /// Parameters where `${VAR}` names a secret resolved at delivery: a `$` in a value becomes
    /// `$$`, so buyer-typed `${…}` can never name an environment variable.
    SecretRef,
}

impl Escape {
    /// The suffix of the template name that selects this mode.
    pub fn suffix(self) -> &'static str {
        match self {
            Escape::None => "",
            Escape::Html => ".html",
            Escape::Slack => ".slack",
            Escape::SecretRef => ".ref",
        }
    }

    fn of_name(name: &str) -> minijinja::AutoEscape {
        if name.ends_with(".html") || name.ends_with(".htm") {
            minijinja::AutoEscape::Html
        } else if name.ends_with(".slack") {
            minijinja::AutoEscape::Custom("slack".into())
        } else if name.ends_with(".ref") {
            minijinja::AutoEscape::Custom("ref".into())
        } else {
            minijinja::AutoEscape::None
        }
    }
}

/// Writes an interpolated value escaped for the template's mode (see [`Escape`]).
fn format_value(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    let escaped = match state.auto_escape() {
        minijinja::AutoEscape::Custom(mode) if !value.is_safe() => {
            let text = value.to_string();
            match mode.as_ref() {
                "slack" => text
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;"),
                _ => text.replace('$', "$$"),
            }
        }
        _ => return minijinja::escape_formatter(out, state, value),
    };
    out.write_str(&escaped).map_err(minijinja::Error::from)
}

/// An action's parameters with their templates resolved to names in the environment.
#[derive(Debug, Clone)]
pub enum Param {
    /// A value with no template syntax, used as is.
    Lit(J),
    /// The name of a parsed template.
    Tmpl(String),
    Seq(Vec<Param>),
    Map(Vec<(String, Param)>),
}

/// A template problem found at load: the message and the 1-based (line, column) inside the
/// template source, when minijinja knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateIssue {
    pub message: String,
    pub at: Option<(usize, usize)>,
    pub hint: Option<String>,
}

/// The rule set's template environment.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        // The template name's suffix says how interpolated values are escaped ([`Escape`]).
        env.set_auto_escape_callback(Escape::of_name);
        env.set_formatter(format_value);
        env.add_filter("money", filters::money);
        env.add_filter("date", filters::date);
        Templates { env }
    }

    /// Parses `source` as template `name`. Strings with no `{{`, `{%` or `{#` stay literal.
    pub fn compile(&mut self, name: String, source: &str) -> Result<Param, TemplateIssue> {
        if !["{{", "{%", "{#"].iter().any(|m| source.contains(m)) {
            return Ok(Param::Lit(J::String(source.to_string())));
        }
        self.env
            .add_template_owned(name.clone(), source.to_string())
            .map_err(|e| issue_from_error(&e, source))?;
        let tmpl = self
            .env
            .get_template(&name)
            .map_err(|e| issue_from_error(&e, source))?;
        let mut unknown: Vec<String> = tmpl
            .undeclared_variables(false)
            .into_iter()
            .filter(|v| !VARIABLES.contains(&v.as_str()) && !GLOBALS.contains(&v.as_str()))
            .collect();
        unknown.sort();
        if let Some(var) = unknown.first() {
            return Err(TemplateIssue {
                message: format!("template uses unknown variable `{var}`"),
                at: source.find(var.as_str()).map(|off| offset_pos(source, off)),
                hint: Some(super::suggest::suggest(var, VARIABLES, "variables")),
            });
        }
        check_fields(&tmpl, source)?;
        Ok(Param::Tmpl(name))
    }

    /// Renders `source` once against `ctx` with this environment's filters and undefined
    /// behaviour: `render(template, map)` in scripts.
    pub fn render_str(&self, source: &str, ctx: &Value) -> Result<String, String> {
        self.env
            .render_str(source, ctx)
            .map_err(|e| render_message(&e))
    }

    /// Renders a parameter tree to JSON; the first render error wins.
    pub fn render(&self, param: &Param, ctx: &Value) -> Result<J, String> {
        Ok(match param {
            Param::Lit(v) => v.clone(),
            Param::Tmpl(name) => {
                let tmpl = self.env.get_template(name).map_err(|e| e.to_string())?;
                J::String(tmpl.render(ctx).map_err(|e| render_message(&e))?)
            }
            Param::Seq(items) => J::Array(
                items
                    .iter()
                    .map(|p| self.render(p, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            Param::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, p)| Ok((k.clone(), self.render(p, ctx)?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }
}

impl Templates {
    /// The variable paths a parameter's templates read (`payload.data.total`), cut at the first
    /// array index, so a render context can hold only those parts of the event.
    pub fn paths(&self, param: &Param, out: &mut Vec<Vec<String>>) {
        match param {
            Param::Lit(_) => {}
            Param::Tmpl(name) => {
                let Ok(tmpl) = self.env.get_template(name) else {
                    return;
                };
                for path in tmpl.undeclared_variables(true) {
                    let steps: Vec<String> = path
                        .split('.')
                        .take_while(|s| s.parse::<usize>().is_err())
                        .map(str::to_string)
                        .collect();
                    if !out.contains(&steps) {
                        out.push(steps);
                    }
                }
            }
            Param::Seq(items) => items.iter().for_each(|p| self.paths(p, out)),
            Param::Map(entries) => entries.iter().for_each(|(_, p)| self.paths(p, out)),
        }
    }
}

/// The render context of one rule holding only the `paths` its templates read (shortest
/// first), copied out of the event: rendering never converts the whole payload.
pub fn sparse_context(
    scope: &Scope<'_>,
    paths: &[Vec<String>],
    name: &str,
    description: &str,
) -> Value {
    let mut root = serde_json::Map::new();
    for path in paths {
        let Some((first, rest)) = path.split_first() else {
            continue;
        };
        let source = match first.as_str() {
            "event" => scope.event_json(),
            "order" => scope.order_json(),
            "payload" => &scope.event.payload,
            _ => continue,
        };
        let found = rest.iter().try_fold(source, |v, k| v.get(k.as_str()));
        if let Some(v) = found {
            insert_at(&mut root, path, v);
        }
    }
    root.insert(
        "rule".into(),
        serde_json::json!({"name": name, "description": description}),
    );
    Value::from(Serde(J::Object(root)))
}

/// Puts `v` at `path`, creating objects on the way; a shorter path already copied whole wins.
fn insert_at(root: &mut serde_json::Map<String, J>, path: &[String], v: &J) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut map = root;
    for key in parents {
        let slot = map
            .entry(key.clone())
            .or_insert_with(|| J::Object(Default::default()));
        match slot {
            J::Object(m) => map = m,
            _ => return,
        }
    }
    if !map.contains_key(last.as_str()) {
        map.insert(last.clone(), v.clone());
    }
}

/// The part of the render context shared by every rule that matched one event.
pub fn base_context(scope: &Scope<'_>) -> Value {
    minijinja::context! {
        event => Value::from(Serde(scope.event_json())),
        order => Value::from(Serde(scope.order_json())),
        payload => Value::from(Serde(&scope.event.payload)),
    }
}

/// The full context for one rule.
pub fn rule_context(base: &Value, name: &str, description: &str) -> Value {
    minijinja::context! {
        rule => minijinja::context! { name => name, description => description },
        ..base.clone()
    }
}

/// `event.*`, `order.*` and `rule.*` have fixed fields (see [`fields`]): a path naming
/// another one is a typo that would render empty. Reports the first one in the source.
fn check_fields(tmpl: &minijinja::Template<'_, '_>, source: &str) -> Result<(), TemplateIssue> {
    let mut issues: Vec<TemplateIssue> = tmpl
        .undeclared_variables(true)
        .into_iter()
        .filter_map(|path| {
            let segs: Vec<&str> = path.split('.').collect();
            let e = fields::check(&segs).err()?;
            let shown = segs[..=e.segment].join(".");
            let at = source
                .find(&shown)
                .map(|off| off + shown.len() - segs[e.segment].len())
                .or_else(|| source.find(segs[0]));
            Some((at, e))
        })
        .map(|(at, e)| TemplateIssue {
            message: e.message,
            at: at.map(|off| offset_pos(source, off)),
            hint: Some(e.hint),
        })
        .collect();
    issues.sort_by_key(|i| i.at);
    match issues.into_iter().next() {
        Some(issue) => Err(issue),
        None => Ok(()),
    }
}

fn render_message(e: &minijinja::Error) -> String {
    let mut msg = e.to_string();
    if let Some(detail) = e.detail() {
        if !msg.contains(detail) {
            msg = format!("{msg}: {detail}");
        }
    }
    msg
}

fn issue_from_error(e: &minijinja::Error, source: &str) -> TemplateIssue {
    let at = e
        .range()
        .map(|r| offset_pos(source, r.start))
        .or_else(|| e.line().map(|l| (l, 1)));
    let kind = e.kind().to_string();
    let message = match e.detail() {
        Some(detail) => format!("template syntax error: {detail}"),
        None => format!("template syntax error: {kind}"),
    };
    TemplateIssue {
        message,
        at,
        hint: None,
    }
}

/// 1-based (line, column) of a byte offset in `source`.
pub fn offset_pos(source: &str, offset: usize) -> (usize, usize) {
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
