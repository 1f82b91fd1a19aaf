//! How an Anthropic answer ends, in OpenAI's terms: the finish reason and the error.

use serde_json::value::RawValue;
use serde_json::Value;

use crate::dialect::reported::{code_and_advice, error_message, ErrorSource};
use crate::error::UpstreamError;

/// `stop_reason` as OpenAI's finish reason (PROTOCOLS.md §4.5, LiteLLM's map): `max_tokens` and
/// `model_context_window_exceeded` → `length`, `tool_use` → `tool_calls`, `refusal` →
/// `content_filter`; `end_turn`, `stop_sequence`, `pause_turn` and anything unknown → `stop`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// The data of an `error` event, whatever it holds (garbage is described, never echoed).
pub fn event_error(data: &[u8]) -> UpstreamError {
    let error = serde_json::from_slice::<Value>(data)
        .ok()
        .and_then(|value| value.get("error").cloned());
    describe(error.as_ref(), ErrorSource::Stream)
}

/// The error an `error` member describes: `{"type": "overloaded_error", "message": "..."}`
/// (a bare string is read as the message). The client's `type` is Anthropic's (else
/// `upstream_error`), the `code` `upstream_overloaded` for `overloaded_error`, else
/// `upstream_stream_error` or `upstream_reported_error` by `source`; Anthropic's message is
/// quoted, with what to do.
pub fn upstream_error(error: Option<&RawValue>, source: ErrorSource) -> UpstreamError {
    let error = error.and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok());
    describe(error.as_ref(), source)
}

fn describe(error: Option<&Value>, source: ErrorSource) -> UpstreamError {
    let member = |name: &str| match error?.get(name)? {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        _ => None,
    };
    let text = match error {
        Some(Value::String(text)) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        _ => member("message"),
    };
    let kind = member("type");
    let (code, advice) = code_and_advice(kind.as_deref() == Some("overloaded_error"), source);
    let message = error_message(None, text.as_deref(), advice);
    UpstreamError::new(
        message,
        kind.unwrap_or_else(|| "upstream_error".to_owned()),
        Some(code),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_reasons() {
        for (native, reason) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("pause_turn", "stop"),
            ("max_tokens", "length"),
            ("model_context_window_exceeded", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
            ("compaction", "stop"),
            ("", "stop"),
        ] {
            assert_eq!(finish_reason(native), reason, "{native}");
        }
    }

    #[test]
    fn overloaded_event() {
        let e = event_error(
            br#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#,
        );
        assert_eq!(
            e,
            UpstreamError::new(
                "The upstream reported an error: Overloaded. The model is busy: retry later, or \
                 use another model or provider.",
                "overloaded_error",
                Some("upstream_overloaded"),
            )
        );
    }

    #[test]
    fn other_errors_keep_their_type() {
        let e = event_error(
            br#"{"type":"error","error":{"type":"api_error","message":"Internal server error."}}"#,
        );
        assert_eq!(
            (e.kind.as_str(), e.code.as_deref()),
            ("api_error", Some("upstream_stream_error"))
        );
        assert!(e
            .message
            .starts_with("The upstream reported an error: Internal server error. Retry"));
        let raw =
            RawValue::from_string(r#"{"type":"not_found_error","message":"model: x"}"#.to_owned())
                .unwrap();
        let e = upstream_error(Some(&raw), ErrorSource::Body);
        assert_eq!(
            (e.kind.as_str(), e.code.as_deref()),
            ("not_found_error", Some("upstream_reported_error"))
        );
    }

    #[test]
    fn garbage_is_described_not_echoed() {
        for data in [
            &b"sk-ant-secret garbage"[..],
            b"{}",
            b"{\"error\":5}",
            b"[1]",
        ] {
            let e = event_error(data);
            assert_eq!(e.kind, "upstream_error");
            assert_eq!(e.code.as_deref(), Some("upstream_stream_error"));
            assert!(e
                .message
                .starts_with("The upstream reported an error. Retry"));
        }
        let e = event_error(br#"{"error":"plain words"}"#);
        assert!(e.message.contains(": plain words. "));
    }
}
