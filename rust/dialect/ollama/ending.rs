//! How an Ollama answer ends, in OpenAI's terms: the finish reason, the usage object, the error.

use serde_json::value::RawValue;

use crate::dialect::reported::{self, code_and_advice, error_message, ErrorSource};
use crate::error::UpstreamError;
use crate::json::raw_str;

/// `done_reason` as OpenAI's finish reason. `length` stays; everything else (`stop`, `load`,
/// `unload`, empty, missing, unknown) is a normal end: `tool_calls` when a tool call was sent
/// (as Ollama's own OpenAI layer does), else `stop`.
pub fn finish_reason(done_reason: Option<&str>, tool_call_sent: bool) -> &'static str {
    match done_reason {
        Some("length") => "length",
        _ if tool_call_sent => "tool_calls",
        _ => "stop",
    }
}

/// `{"prompt_tokens":P,"completion_tokens":C,"total_tokens":P+C[,"estimated":true]}`.
///
/// `prompt` is 0 when Ollama omitted it (it does when the whole prompt was cached, so 0 is
/// the truth there). A missing completion count is replaced by `counted` and marked estimated.
pub fn usage_json(prompt: u64, completion: Option<u64>, counted: u64) -> String {
    reported::usage_json(
        prompt,
        completion.unwrap_or(counted),
        completion.is_none(),
        |_| {},
    )
}

/// The usage of an answer that ended without its done line (an error, a cut-off stream): the
/// gateway's prompt estimate (or 0) and the lines counted, marked estimated.
pub fn estimated_usage_json(prompt_estimate: Option<u64>, counted: u64) -> String {
    reported::usage_json(prompt_estimate.unwrap_or(0), counted, true, |_| {})
}

/// The error an `{"error": ...}` member describes. Ollama sends a string; an object's `message`
/// is read too (servers imitating Ollama). `type` is always `upstream_error`; a message that
/// mentions overload gets the code `upstream_overloaded` and advice to retry later.
pub fn upstream_error(error: &RawValue, source: ErrorSource) -> UpstreamError {
    let text = raw_str(error).map(|text| text.into_owned()).or_else(|| {
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(error.get()).ok()?;
        match object.get("message")? {
            serde_json::Value::String(text) => Some(text.clone()),
            _ => None,
        }
    });
    let text = text
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty());
    let overloaded = text.is_some_and(|text| text.to_ascii_lowercase().contains("overload"));
    let (code, advice) = code_and_advice(overloaded, source);
    let message = error_message(None, text, advice);
    UpstreamError::new(message, "upstream_error", Some(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn finish_reasons() {
        for (native, sent, reason) in [
            (Some("stop"), false, "stop"),
            (Some("stop"), true, "tool_calls"),
            (None, true, "tool_calls"),
            (Some(""), false, "stop"),
            (Some("length"), true, "length"),
            (Some("load"), false, "stop"),
            (Some("unload"), false, "stop"),
            (Some("whatever"), false, "stop"),
        ] {
            assert_eq!(finish_reason(native, sent), reason, "{native:?} {sent}");
        }
    }

    #[test]
    fn usage_objects() {
        assert_eq!(
            usage_json(169, Some(15), 1),
            r#"{"prompt_tokens":169,"completion_tokens":15,"total_tokens":184}"#
        );
        assert_eq!(
            usage_json(0, None, 3),
            r#"{"prompt_tokens":0,"completion_tokens":3,"total_tokens":3,"estimated":true}"#
        );
        assert_eq!(
            estimated_usage_json(Some(9), 2),
            r#"{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,"estimated":true}"#
        );
    }

    #[test]
    fn errors() {
        let e = upstream_error(
            &raw(r#""an error was encountered while running the model""#),
            ErrorSource::Stream,
        );
        assert_eq!(
            e.message,
            "The upstream reported an error: an error was encountered while running the model. \
             Retry the request, or use another model or provider if it keeps happening."
        );
        assert_eq!(
            (e.kind.as_str(), e.code.as_deref()),
            ("upstream_error", Some("upstream_stream_error"))
        );
        let e = upstream_error(
            &raw(r#""server overloaded, please retry""#),
            ErrorSource::Body,
        );
        assert_eq!(e.code.as_deref(), Some("upstream_overloaded"));
        assert!(e.message.contains("retry later"));
        let e = upstream_error(&raw(r#"{"message":"nope."}"#), ErrorSource::Body);
        assert_eq!(e.code.as_deref(), Some("upstream_reported_error"));
        assert!(e
            .message
            .starts_with("The upstream reported an error: nope. Retry"));
        let e = upstream_error(&raw("5"), ErrorSource::Stream);
        assert!(e
            .message
            .starts_with("The upstream reported an error. Retry"));
    }
}
