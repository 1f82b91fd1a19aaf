//! Ollama tool calls in OpenAI's shape. Ollama sends each call whole, its `arguments` a JSON
//! object; OpenAI wants them as a JSON string, and every call needs an `id` and a running
//! `index` (over the whole response, not Ollama's per-message `function.index`).

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::wire::ToolCallView;
use crate::event::ToolCallDelta;
use crate::json::compact::compact;
use crate::json::raw_str;

/// One call, ready to be borrowed by a [`ToolCallDelta`].
pub struct ToolCall<'a> {
    pub index: u64,
    pub id: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub arguments: String,
}

impl<'a> ToolCall<'a> {
    /// The call numbered `index` in this response. Ollama's `id` when it sent one, else
    /// [`generated_id`].
    pub fn new(view: &ToolCallView<'a>, index: u64, response_id: &str) -> Self {
        let id = match &view.id {
            Some(id) if !id.is_empty() => id.clone(),
            _ => Cow::Owned(generated_id(response_id, index)),
        };
        ToolCall {
            index,
            id,
            name: view.function.name.clone().unwrap_or_default(),
            arguments: arguments_json(view.function.arguments),
        }
    }

    /// The whole call as one OpenAI delta entry (`type` is always `function`).
    pub fn delta(&self) -> ToolCallDelta<'_> {
        ToolCallDelta {
            index: self.index,
            id: Some(&self.id),
            kind: Some("function"),
            name: Some(&self.name),
            arguments: Some(&self.arguments),
        }
    }
}

pub use crate::event::generated_call_id as generated_id;

/// The `arguments` string OpenAI expects; always valid JSON:
/// - an object (Ollama), array, number or boolean → its compact JSON text;
/// - missing or null → `{}`;
/// - a string (some servers send the JSON text already) → that string when it is valid JSON,
///   else the JSON encoding of the string.
pub fn arguments_json(raw: Option<&RawValue>) -> String {
    let Some(raw) = raw.filter(|raw| raw.get() != "null") else {
        return "{}".to_owned();
    };
    if let Some(text) = raw_str(raw) {
        if serde_json::from_str::<IgnoredAny>(&text).is_ok() {
            return text.into_owned();
        }
        return raw.get().to_owned();
    }
    compact(raw.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    fn arguments(text: &str) -> String {
        arguments_json(Some(&raw(text)))
    }

    #[test]
    fn objects_become_compact_json_strings() {
        assert_eq!(
            arguments(r#"{ "city" : "Hue, \"VN\"  ", "days": [1, 2.50], "x": {} }"#),
            r#"{"city":"Hue, \"VN\"  ","days":[1,2.50],"x":{}}"#
        );
        assert_eq!(arguments(r#"{"a\\":"b \\"}"#), r#"{"a\\":"b \\"}"#);
        assert_eq!(arguments("[1, true]"), "[1,true]");
    }

    #[test]
    fn missing_null_and_string_arguments_stay_valid_json() {
        assert_eq!(arguments_json(None), "{}");
        assert_eq!(arguments("null"), "{}");
        assert_eq!(arguments(r#""{\"city\": \"Hue\"}""#), r#"{"city": "Hue"}"#);
        assert_eq!(arguments(r#""not json""#), r#""not json""#);
        assert_eq!(arguments(r#""""#), r#""""#);
        for text in [
            arguments(r#""not json""#),
            arguments(r#""{\"a\":""#),
            arguments(r#"{"é": "\u00e9"}"#),
        ] {
            serde_json::from_str::<IgnoredAny>(&text).unwrap();
        }
    }

    #[test]
    fn generated_ids_are_stable_and_distinct() {
        let first = generated_id("chatcmpl-abc", 0);
        assert!(first.starts_with("call_") && first.ends_with("_0"));
        assert_eq!(first.len(), "call_".len() + 8 + 2);
        assert!(first[5..13]
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
        assert_eq!(first, generated_id("chatcmpl-abc", 0));
        assert_ne!(first, generated_id("chatcmpl-abc", 1));
        assert_ne!(first, generated_id("chatcmpl-abd", 0));
    }

    #[test]
    fn given_ids_are_kept_and_names_default_to_empty() {
        let view: ToolCallView<'_> = serde_json::from_str(
            r#"{"id":"call_cy3xwkra","function":{"index":0,"name":"get_weather","arguments":{"city":"Hue"}}}"#,
        )
        .unwrap();
        let call = ToolCall::new(&view, 3, "r");
        assert_eq!(
            call.delta(),
            ToolCallDelta {
                index: 3,
                id: Some("call_cy3xwkra"),
                kind: Some("function"),
                name: Some("get_weather"),
                arguments: Some(r#"{"city":"Hue"}"#),
            }
        );
        let view: ToolCallView<'_> = serde_json::from_str(r#"{"id":"","function":{}}"#).unwrap();
        let call = ToolCall::new(&view, 0, "r");
        assert_eq!(call.id, generated_id("r", 0));
        assert_eq!((call.name.as_ref(), call.arguments.as_str()), ("", "{}"));
    }
}
