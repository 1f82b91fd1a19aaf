//! A minijinja environment that renders Hugging Face chat templates as transformers'
//! `apply_chat_template` does: jinja2 with `trim_blocks`, `lstrip_blocks`, loop controls, no
//! auto-escaping, Python string and dict methods, and the globals `raise_exception` and
//! `strftime_now`, with `tojson` meaning `json.dumps(x, ensure_ascii=False, ...)`.

use std::fmt;

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Value};

use super::pythonic::{self, JsonStyle};
use super::strftime::UtcDateTime;

/// Marks an error as the template's own `raise_exception(message)`: the message is then the
/// whole story (e.g. "System role not supported"), not an engine failure.
#[derive(Debug)]
pub struct RaisedByTemplate;

impl fmt::Display for RaisedByTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("raised by the template")
    }
}

impl std::error::Error for RaisedByTemplate {}

/// Whether `error` came from `raise_exception`.
pub fn is_raised_by_template(error: &Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.is::<RaisedByTemplate>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// A fresh environment with the Hugging Face conventions; templates are added by the caller.
pub fn hugging_face_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(false);
    // Prompts are not HTML: `<|im_start|>` must reach the model as written.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.set_formatter(|out, _state, value| {
        if value.kind() == ValueKind::String {
            return out
                .write_str(value.as_str().unwrap_or(""))
                .map_err(|_| Error::from(ErrorKind::WriteFailure));
        }
        let mut text = String::new();
        pythonic::write_str(&mut text, value)?;
        out.write_str(&text)
            .map_err(|_| Error::from(ErrorKind::WriteFailure))
    });
    env.add_filter("tojson", tojson);
    env.add_test("iterable", is_iterable);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", strftime_now);
    env
}

/// transformers' `tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`.
fn tojson(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let mut style = JsonStyle {
        ensure_ascii: kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(false),
        sort_keys: kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false),
        ..JsonStyle::default()
    };
    if let Some(indent) = kwargs.get::<Option<Value>>("indent")? {
        style.indent = match indent.kind() {
            ValueKind::None => None,
            ValueKind::Number => {
                let width = usize::try_from(indent.as_i64().unwrap_or(0)).unwrap_or(0);
                Some(" ".repeat(width))
            }
            ValueKind::String => Some(indent.as_str().unwrap_or("").to_owned()),
            kind => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("tojson: indent must be a number or a string, not {kind}"),
                ))
            }
        };
    }
    if let Some(separators) = kwargs.get::<Option<Vec<String>>>("separators")? {
        let [item, key]: [String; 2] = separators.try_into().map_err(|_| {
            Error::new(
                ErrorKind::InvalidOperation,
                "tojson: separators must be two strings, (item_separator, key_separator)",
            )
        })?;
        style.separators = Some((item, key));
    }
    kwargs.assert_all_used()?;
    pythonic::dumps(value, &style).map(Value::from)
}

/// Python's `iter(x)` succeeds: minijinja iterates `none` as an empty sequence, Python refuses
/// it, and templates branch on the difference (Gemma 3 raises "Invalid content type" for an
/// assistant turn whose content is `None`). Undefined stays iterable, as jinja2's `Undefined` is.
fn is_iterable(value: &Value) -> bool {
    value.kind() != ValueKind::None && value.try_iter().is_ok()
}

fn raise_exception(message: Value) -> Result<Value, Error> {
    let mut text = String::new();
    pythonic::write_str(&mut text, &message)?;
    Err(Error::new(ErrorKind::InvalidOperation, text).with_source(RaisedByTemplate))
}

fn strftime_now(format: &str) -> String {
    UtcDateTime::now().format(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str, context: Value) -> Result<String, Error> {
        hugging_face_environment().render_str(source, context)
    }

    #[test]
    fn blocks_are_trimmed_like_transformers() {
        let source =
            "{% for x in items %}\n    {% if x %}\n{{ x }}\n    {% endif %}\n{% endfor %}\n";
        let out = render(source, minijinja::context! { items => vec![1, 0, 2] }).unwrap();
        assert_eq!(out, "1\n2\n");
    }

    #[test]
    fn loop_controls_and_python_methods() {
        let source = "{% for x in items %}{% if x == 'skip' %}{% continue %}{% endif %}\
                      {% if x == 'stop' %}{% break %}{% endif %}{{ x.strip().upper() }}|{% endfor %}\
                      {{ 'a,b'.split(',') | join('+') }} {{ d.get('k', 'none') }}\
                      {% for k, v in d.items() %} {{ k }}={{ v }}{% endfor %}";
        let context = minijinja::context! {
            items => vec![" a ", "skip", "b", "stop", "c"],
            d => minijinja::context! { z => 1 },
        };
        assert_eq!(render(source, context).unwrap(), "A|B|a+b none z=1");
    }

    #[test]
    fn no_html_escaping_and_python_printing() {
        let source = "{{ '<|im_start|>' }}{{ none }}{{ true }}{{ missing }}{{ [1, 'x'] }}";
        assert_eq!(
            render(source, Value::from(())).unwrap(),
            "<|im_start|>NoneTrue[1, 'x']"
        );
    }

    #[test]
    fn tojson_is_python_json_dumps() {
        let context = minijinja::context! { t => minijinja::context! { name => "é<", n => 1.0 } };
        assert_eq!(
            render("{{ t | tojson }}", context.clone()).unwrap(),
            r#"{"name": "é<", "n": 1.0}"#
        );
        assert_eq!(
            render("{{ t | tojson(indent=2) }}", context.clone()).unwrap(),
            "{\n  \"name\": \"é<\",\n  \"n\": 1.0\n}"
        );
        assert_eq!(
            render(
                "{{ t | tojson(ensure_ascii=true, sort_keys=true, separators=[',', ':']) }}",
                context.clone()
            )
            .unwrap(),
            r#"{"n":1.0,"name":"\u00e9<"}"#
        );
        let err = render("{{ t | tojson(colour=1) }}", context).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn iterable_is_pythons_iter() {
        let source = "{{ none is iterable }} {{ missing is iterable }} {{ 'ab' is iterable }} \
                      {{ [1] is iterable }} {{ {} is iterable }} {{ 1 is iterable }}";
        assert_eq!(
            render(source, Value::from(())).unwrap(),
            "False True True True True False"
        );
    }

    #[test]
    fn raise_exception_is_recognisable() {
        let err = render(
            "{{ raise_exception('Roles must alternate') }}",
            Value::from(()),
        )
        .unwrap_err();
        assert!(is_raised_by_template(&err));
        assert_eq!(err.detail(), Some("Roles must alternate"));
        let other = render("{{ 1 + [] }}", Value::from(())).unwrap_err();
        assert!(!is_raised_by_template(&other));
    }

    #[test]
    fn strftime_now_formats_the_current_utc_date() {
        let year = render("{{ strftime_now('%Y') }}", Value::from(())).unwrap();
        let year: i64 = year.parse().unwrap();
        assert!((2024..3000).contains(&year), "{year}");
    }
}
