//! Python's spelling of values, which Hugging Face templates were written against:
//! `json.dumps` (transformers' `tojson` filter) and `str()` (what jinja2 prints for `{{ x }}`).
//!
//! minijinja's own `tojson` escapes `<`, `>`, `&` and `'` for HTML and its printer writes
//! `none`/`true`; a prompt that differs by one byte from what the model was trained on is a
//! different prompt, so both are replaced.

use std::fmt::Write;

use minijinja::value::ValueKind;
use minijinja::{Error, ErrorKind, Value};

/// The options of transformers' `tojson(x, ensure_ascii=False, indent=None, separators=None,
/// sort_keys=False)`.
#[derive(Debug, Clone, Default)]
pub struct JsonStyle {
    pub ensure_ascii: bool,
    pub indent: Option<String>,
    pub sort_keys: bool,
    /// `(item, key)` separators; Python's default is `(", ", ": ")`, or `(",", ": ")` when
    /// indenting.
    pub separators: Option<(String, String)>,
}

/// `json.dumps(value, **style)`.
pub fn dumps(value: &Value, style: &JsonStyle) -> Result<String, Error> {
    let (item_sep, key_sep) = match (&style.separators, &style.indent) {
        (Some((item, key)), _) => (item.as_str(), key.as_str()),
        (None, Some(_)) => (",", ": "),
        (None, None) => (", ", ": "),
    };
    let mut writer = JsonWriter {
        out: String::new(),
        style,
        item_sep,
        key_sep,
    };
    writer.value(value, 0)?;
    Ok(writer.out)
}

struct JsonWriter<'a> {
    out: String,
    style: &'a JsonStyle,
    item_sep: &'a str,
    key_sep: &'a str,
}

impl JsonWriter<'_> {
    fn value(&mut self, value: &Value, depth: usize) -> Result<(), Error> {
        match value.kind() {
            ValueKind::None => self.out.push_str("null"),
            ValueKind::Bool => self
                .out
                .push_str(if value.is_true() { "true" } else { "false" }),
            ValueKind::Number => self.number(value, true)?,
            ValueKind::String => {
                write_json_string(&mut self.out, value.as_str().unwrap_or(""), self.style)
            }
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = value.try_iter()?.collect();
                self.out.push('[');
                for (index, item) in items.iter().enumerate() {
                    self.separator(index, depth + 1);
                    self.value(item, depth + 1)?;
                }
                self.close(']', items.is_empty(), depth);
            }
            ValueKind::Map => {
                let mut entries = Vec::new();
                for key in value.try_iter()? {
                    let item = value.get_item(&key)?;
                    entries.push((json_key(&key)?, item));
                }
                if self.style.sort_keys {
                    entries.sort_by(|a, b| a.0.cmp(&b.0));
                }
                self.out.push('{');
                for (index, (key, item)) in entries.iter().enumerate() {
                    self.separator(index, depth + 1);
                    write_json_string(&mut self.out, key, self.style);
                    self.out.push_str(self.key_sep);
                    self.value(item, depth + 1)?;
                }
                self.close('}', entries.is_empty(), depth);
            }
            // jinja2's Undefined, a namespace, a macro, bytes...: Python's json.dumps refuses too.
            kind => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("tojson cannot serialise a value of type {kind}"),
                ))
            }
        }
        Ok(())
    }

    fn number(&mut self, value: &Value, json: bool) -> Result<(), Error> {
        if value.is_integer() {
            let _ = write!(self.out, "{value}");
        } else {
            let float = f64::try_from(value.clone())?;
            self.out.push_str(&float_repr(float, json));
        }
        Ok(())
    }

    fn separator(&mut self, index: usize, depth: usize) {
        if index > 0 {
            self.out.push_str(self.item_sep);
        }
        self.newline(depth);
    }

    fn close(&mut self, bracket: char, empty: bool, depth: usize) {
        if !empty {
            self.newline(depth);
        }
        self.out.push(bracket);
    }

    fn newline(&mut self, depth: usize) {
        if let Some(indent) = &self.style.indent {
            self.out.push('\n');
            for _ in 0..depth {
                self.out.push_str(indent);
            }
        }
    }
}

/// Python turns non-string keys into strings the way it prints them as JSON values.
fn json_key(key: &Value) -> Result<String, Error> {
    match key.kind() {
        ValueKind::String => Ok(key.as_str().unwrap_or("").to_owned()),
        ValueKind::None => Ok("null".to_owned()),
        ValueKind::Bool => Ok(if key.is_true() { "true" } else { "false" }.to_owned()),
        ValueKind::Number if key.is_integer() => Ok(key.to_string()),
        ValueKind::Number => Ok(float_repr(f64::try_from(key.clone())?, true)),
        kind => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("tojson cannot use a {kind} as an object key"),
        )),
    }
}

/// A JSON string literal as Python's `json.dumps` writes it.
fn write_json_string(out: &mut String, text: &str, style: &JsonStyle) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if style.ensure_ascii && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(float)`; with `json`, the spellings `json.dumps` uses for the non-finite ones.
pub fn float_repr(value: f64, json: bool) -> String {
    if value.is_nan() {
        return if json { "NaN" } else { "nan" }.to_owned();
    }
    if value.is_infinite() {
        let text = match (json, value > 0.0) {
            (true, true) => "Infinity",
            (true, false) => "-Infinity",
            (false, true) => "inf",
            (false, false) => "-inf",
        };
        return text.to_owned();
    }
    // `{:e}` gives the shortest digits that round-trip, as Python's repr does; only the layout
    // differs.
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if value.is_sign_negative() { "-" } else { "" };
    if (-4..16).contains(&exponent) {
        let point = exponent + 1; // digits before the decimal point
        let text = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            let (whole, fraction) = digits.split_at(point as usize);
            format!("{whole}.{fraction}")
        };
        format!("{sign}{text}")
    } else {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{sign}{first}{fraction}e{exponent_sign}{:02}",
            exponent.unsigned_abs()
        )
    }
}

/// What jinja2 prints for `{{ value }}`: Python's `str(value)`.
pub fn write_str(out: &mut String, value: &Value) -> Result<(), Error> {
    match value.kind() {
        ValueKind::Undefined => {}
        ValueKind::String => out.push_str(value.as_str().unwrap_or("")),
        _ => write_repr(out, value)?,
    }
    Ok(())
}

/// Python's `repr(value)` for the data types a JSON document can hold (strings inside lists and
/// dicts are printed quoted, as Python does).
fn write_repr(out: &mut String, value: &Value) -> Result<(), Error> {
    match value.kind() {
        ValueKind::Undefined => {}
        ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if value.is_true() { "True" } else { "False" }),
        ValueKind::Number if value.is_integer() => {
            let _ = write!(out, "{value}");
        }
        ValueKind::Number => out.push_str(&float_repr(f64::try_from(value.clone())?, false)),
        ValueKind::String => write_string_repr(out, value.as_str().unwrap_or("")),
        ValueKind::Seq => {
            out.push('[');
            for (index, item) in value.try_iter()?.enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_repr(out, &item)?;
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            for (index, key) in value.try_iter()?.enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                let item = value.get_item(&key)?;
                write_repr(out, &key)?;
                out.push_str(": ");
                write_repr(out, &item)?;
            }
            out.push('}');
        }
        // Namespaces, macros, loop objects: Python would print an object address, which no
        // template relies on; minijinja's own spelling is as good.
        _ => {
            let _ = write!(out, "{value}");
        }
    }
    Ok(())
}

/// Python's `repr(str)`: single quotes unless the text holds a `'` and no `"`.
fn write_string_repr(out: &mut String, text: &str) {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn compact(text: &str) -> String {
        dumps(&json(text), &JsonStyle::default()).unwrap()
    }

    #[test]
    fn dumps_uses_python_separators_and_keeps_key_order() {
        assert_eq!(
            compact(r#"{"b":1,"a":[true,false,null,"x"],"c":{}}"#),
            r#"{"b": 1, "a": [true, false, null, "x"], "c": {}}"#
        );
        assert_eq!(compact("[]"), "[]");
    }

    #[test]
    fn dumps_keeps_non_ascii_and_escapes_controls() {
        assert_eq!(
            compact(r#""é <b> & 'q' \" \\ \n \t \u0001 \u007f""#),
            "\"é <b> & 'q' \\\" \\\\ \\n \\t \\u0001 \u{7f}\""
        );
        let ascii = JsonStyle {
            ensure_ascii: true,
            ..JsonStyle::default()
        };
        assert_eq!(
            dumps(&json(r#""é😀""#), &ascii).unwrap(),
            r#""\u00e9\ud83d\ude00""#
        );
    }

    #[test]
    fn dumps_indents_like_python() {
        let style = JsonStyle {
            indent: Some("    ".into()),
            ..JsonStyle::default()
        };
        assert_eq!(
            dumps(&json(r#"{"a":[1,{"b":[]}],"c":{}}"#), &style).unwrap(),
            "{\n    \"a\": [\n        1,\n        {\n            \"b\": []\n        }\n    ],\n    \"c\": {}\n}"
        );
    }

    #[test]
    fn dumps_sorts_keys_and_takes_separators() {
        let style = JsonStyle {
            sort_keys: true,
            separators: Some((",".into(), ":".into())),
            ..JsonStyle::default()
        };
        assert_eq!(
            dumps(&json(r#"{"b":1,"a":2}"#), &style).unwrap(),
            r#"{"a":2,"b":1}"#
        );
    }

    #[test]
    fn dumps_refuses_undefined() {
        let err = dumps(&Value::UNDEFINED, &JsonStyle::default()).unwrap_err();
        assert!(err.to_string().contains("undefined"), "{err}");
    }

    #[test]
    fn floats_print_as_python_repr() {
        let cases = [
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123.456, "123.456"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e100, "1.2345e+100"),
            (2.5e-300, "2.5e-300"),
        ];
        for (value, expected) in cases {
            assert_eq!(float_repr(value, true), expected, "{value}");
        }
        assert_eq!(float_repr(f64::NAN, true), "NaN");
        assert_eq!(float_repr(f64::NEG_INFINITY, false), "-inf");
        assert_eq!(compact("[1.0, 2, 1e16]"), "[1.0, 2, 1e+16]");
    }

    #[test]
    fn str_prints_python_spellings() {
        let mut out = String::new();
        for value in [
            Value::UNDEFINED,
            Value::from(()),
            Value::from(true),
            Value::from("plain"),
            json(r#"[1, 2.5, "it's", "a\"b", {"k": null}]"#),
        ] {
            write_str(&mut out, &value).unwrap();
            out.push('|');
        }
        assert_eq!(
            out,
            r#"|None|True|plain|[1, 2.5, "it's", 'a"b', {'k': None}]|"#
        );
    }
}
