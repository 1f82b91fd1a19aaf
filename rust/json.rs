//! Small JSON tools for the hot path: walk an object's members without building a tree, read
//! strings out of raw values, write escaped strings. Values stay as borrowed `&RawValue` slices
//! of the input so a rewritten chunk can copy them byte for byte (unknown fields, exact numbers).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

pub mod compact;
#[cfg(test)]
pub mod edits;
pub mod scan;

/// An object key, borrowed from the input unless it contained escapes.
pub struct Key<'a>(pub Cow<'a, str>);

impl Key<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Calls `on_member(key, raw_value)` for each member of the JSON object `text`, in order.
///
/// Fails when `text` is not exactly one JSON object (trailing bytes included).
pub fn for_each_member<'a, F>(text: &'a str, on_member: F) -> Result<(), serde_json::Error>
where
    F: FnMut(Key<'a>, &'a RawValue),
{
    struct Members<F>(F);
    impl<'a, F: FnMut(Key<'a>, &'a RawValue)> Visitor<'a> for Members<F> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'a>>(mut self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<Key<'a>>()? {
                let value: &'a RawValue = map.next_value()?;
                (self.0)(key, value);
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_map(Members(on_member))?;
    de.end()
}

/// Calls `on_element` for each element of the JSON array `raw`, deserialised as `T`, without
/// collecting them (no allocation per chunk).
pub fn for_each_element<'a, T, F>(raw: &'a [u8], on_element: F) -> Result<(), serde_json::Error>
where
    T: Deserialize<'a>,
    F: FnMut(usize, T),
{
    struct Elements<T, F>(F, PhantomData<T>);
    impl<'a, T: Deserialize<'a>, F: FnMut(usize, T)> Visitor<'a> for Elements<T, F> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON array")
        }
        fn visit_seq<A: SeqAccess<'a>>(mut self, mut seq: A) -> Result<(), A::Error> {
            let mut position = 0;
            while let Some(element) = seq.next_element_seed(PhantomData::<T>)? {
                (self.0)(position, element);
                position += 1;
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_slice(raw);
    de.deserialize_seq(Elements(on_element, PhantomData))?;
    de.end()
}

/// The string inside a raw JSON string value, borrowed when it has no escapes; `None` when the
/// value is not a string.
pub fn raw_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    quoted_str(raw.get())
}

/// The string a JSON string literal (`text`, quotes included) stands for, borrowed when it has
/// no escapes; `None` when `text` is not a valid string literal (serde_json decodes escapes, and
/// refuses a lone surrogate).
pub fn quoted_str(text: &str) -> Option<Cow<'_, str>> {
    if text.len() < 2 || !text.starts_with('"') {
        return None;
    }
    let inner = &text[1..text.len() - 1];
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

/// True for JSON `null`.
pub fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// True unless the value is `null`, `""` or an empty array: "something was sent" for a delta
/// field (`content: ""` on the role chunk and `tool_calls: null` carry nothing).
pub fn carries_something(raw: &RawValue) -> bool {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'n') => false,
        Some(b'"') => text.len() > 2,
        Some(b'[') => !text[1..].trim_start().starts_with(']'),
        _ => true,
    }
}

/// Python truthiness of a JSON value (what the OpenAI SDK applies to a chunk's `error` key):
/// `null`, `false`, `0`, `""`, `[]` and `{}` are false.
pub fn is_truthy(raw: &RawValue) -> bool {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'n') | Some(b'f') => false,
        Some(b'"') => text.len() > 2,
        Some(b'[') => !text[1..].trim_start().starts_with(']'),
        Some(b'{') => !text[1..].trim_start().starts_with('}'),
        Some(b't') => true,
        _ => text.parse::<f64>().map(|n| n != 0.0).unwrap_or(true),
    }
}

/// Appends `value` as a JSON string literal (quoted and escaped).
pub fn write_str(out: &mut Vec<u8>, value: &str) {
    // Writing into a Vec cannot fail, and a &str always serialises.
    serde_json::to_writer(&mut *out, value).expect("serialising a str into a Vec cannot fail");
}

/// Appends `"key":` (key escaped only when it needs to be).
pub fn write_key(out: &mut Vec<u8>, key: &Key<'_>) {
    match &key.0 {
        // A borrowed key had no escapes in the input and JSON forbids raw control characters in
        // strings, so its bytes are already a valid string body.
        Cow::Borrowed(text) => {
            out.push(b'"');
            out.extend_from_slice(text.as_bytes());
            out.push(b'"');
        }
        Cow::Owned(text) => write_str(out, text),
    }
    out.push(b':');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn members_keep_order_and_raw_bytes() {
        let mut seen = Vec::new();
        for_each_member(
            r#"{"b": 1.50, "a":{"x" : [1, 2]}, "\u0063":"z"}"#,
            |k, v| seen.push((k.as_str().to_owned(), v.get().to_owned())),
        )
        .unwrap();
        assert_eq!(
            seen,
            vec![
                ("b".into(), "1.50".into()),
                ("a".into(), r#"{"x" : [1, 2]}"#.into()),
                ("c".into(), r#""z""#.into()),
            ]
        );
    }

    #[test]
    fn members_reject_non_objects_and_trailing_bytes() {
        for bad in ["[1]", "\"x\"", "1", "null", "{} {}", "{\"a\":}", "{\"a\":1"] {
            assert!(for_each_member(bad, |_, _| {}).is_err(), "{bad}");
        }
    }

    #[test]
    fn raw_str_borrows_plain_strings_and_decodes_escapes() {
        assert!(matches!(
            raw_str(&raw(r#""hi""#)),
            Some(Cow::Borrowed("hi"))
        ));
        assert_eq!(raw_str(&raw(r#""a\nb\u00e9""#)).unwrap(), "a\nb\u{e9}");
        assert!(raw_str(&raw("1")).is_none());
        assert!(raw_str(&raw("null")).is_none());
    }

    #[test]
    fn truthiness_follows_python() {
        for falsy in [
            "null", "false", "0", "0.0", "\"\"", "[]", "[ ]", "{}", "{ }",
        ] {
            assert!(!is_truthy(&raw(falsy)), "{falsy}");
        }
        for truthy in ["true", "1", "-2.5", "\"x\"", "[0]", "{\"a\":1}"] {
            assert!(is_truthy(&raw(truthy)), "{truthy}");
        }
    }

    #[test]
    fn carries_something_ignores_empty_values() {
        for empty in ["null", "\"\"", "[]", "[ ]"] {
            assert!(!carries_something(&raw(empty)), "{empty}");
        }
        for full in ["\"a\"", "[{}]", "{}", "0"] {
            assert!(carries_something(&raw(full)), "{full}");
        }
    }

    #[test]
    fn write_key_escapes_only_owned_keys() {
        let mut out = Vec::new();
        write_key(&mut out, &Key(Cow::Borrowed("id")));
        write_key(&mut out, &Key(Cow::Owned("a\"b".into())));
        assert_eq!(out, br#""id":"a\"b":"#);
    }
}
