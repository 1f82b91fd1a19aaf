//! Upstream failures, normalised into the OpenAI error object `{message, type, param, code}`.
//!
//! Upstream error payloads are mapped, never passed through raw: only the fields the OpenAI
//! object has are kept, with their types fixed. Garbage is described, not echoed.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::json::{self, is_truthy};
use crate::sse::MAX_EVENT_BYTES;

/// The error object the client receives (the inside of `{"error": ...}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    pub message: String,
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

/// The code for an upstream that broke its own protocol.
pub const BAD_RESPONSE: &str = "upstream_bad_response";

const DEFAULT_MESSAGE: &str = "The upstream reported an error";
const UPSTREAM_ERROR: &str = "upstream_error";

impl UpstreamError {
    pub fn new(message: impl Into<String>, kind: impl Into<String>, code: Option<&str>) -> Self {
        UpstreamError {
            message: message.into(),
            kind: kind.into(),
            param: None,
            code: code.map(str::to_owned),
        }
    }

    /// The upstream sent bytes that are not the protocol it speaks.
    pub fn bad_response() -> Self {
        Self::new(
            "The upstream sent malformed data that is not a valid answer. Retry the request, \
             or use another model or provider if it keeps happening.",
            UPSTREAM_ERROR,
            Some(BAD_RESPONSE),
        )
    }

    /// The upstream answered with nothing at all.
    pub fn empty_response() -> Self {
        Self::new(
            "The upstream sent an empty answer. Retry the request, or use another model or \
             provider if it keeps happening.",
            UPSTREAM_ERROR,
            Some(BAD_RESPONSE),
        )
    }

    /// One event was larger than any real answer event can be.
    pub fn event_too_large() -> Self {
        Self::new(
            format!(
                "The upstream sent a single stream event larger than {} MiB, which is not a valid \
                 answer. Retry the request, or use another model or provider.",
                MAX_EVENT_BYTES / (1024 * 1024)
            ),
            UPSTREAM_ERROR,
            Some(BAD_RESPONSE),
        )
    }

    /// The stream ended before the upstream said it was finished.
    pub fn truncated() -> Self {
        Self::new(
            "The upstream closed the stream before it finished, so the answer is incomplete. \
             Retry the request.",
            UPSTREAM_ERROR,
            Some("upstream_stream_truncated"),
        )
    }

    /// Appends the error object `{"message":..,"type":..,"param":..,"code":..}`.
    pub fn write_object(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"message\":");
        json::write_str(out, &self.message);
        out.extend_from_slice(b",\"type\":");
        json::write_str(out, &self.kind);
        out.extend_from_slice(b",\"param\":");
        write_opt_str(out, self.param.as_deref());
        out.extend_from_slice(b",\"code\":");
        write_opt_str(out, self.code.as_deref());
        out.push(b'}');
    }

    /// Appends the envelope `{"error":{...}}`.
    pub fn write_envelope(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"error\":");
        self.write_object(out);
        out.push(b'}');
    }
}

fn write_opt_str(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(text) => json::write_str(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

/// The error carried by an OpenAI-style payload's `error` member, or `None` when that member is
/// falsy (the OpenAI SDK raises only on a truthy `error`).
///
/// - `"error": {...}` → its `message`, `type`, `code` (string, or a number as a string), `param`;
/// - `"error": "text"` → message `text`, type from the sibling `error_type` (TGI) if a string;
/// - any other truthy value → a generic upstream error.
pub fn from_error_member(error: &RawValue, error_type: Option<&RawValue>) -> Option<UpstreamError> {
    if !is_truthy(error) {
        return None;
    }
    let sibling_type = error_type.and_then(json::raw_str).map(|t| t.into_owned());
    Some(match serde_json::from_str::<Value>(error.get()) {
        Ok(Value::Object(object)) => from_error_object(&object),
        Ok(Value::String(text)) => UpstreamError {
            message: text,
            kind: sibling_type.unwrap_or_else(|| UPSTREAM_ERROR.to_owned()),
            param: None,
            code: None,
        },
        _ => UpstreamError::new(DEFAULT_MESSAGE, UPSTREAM_ERROR, None),
    })
}

/// Normalises an error object `{message?, type?, code?, param?}`; wrong types are dropped.
pub fn from_error_object(object: &Map<String, Value>) -> UpstreamError {
    let string = |name: &str| match object.get(name) {
        Some(Value::String(text)) if !text.is_empty() => Some(text.clone()),
        _ => None,
    };
    let code = match object.get("code") {
        Some(Value::String(text)) => Some(text.clone()),
        Some(Value::Number(number)) => Some(number.to_string()),
        _ => None,
    };
    UpstreamError {
        message: string("message").unwrap_or_else(|| DEFAULT_MESSAGE.to_owned()),
        kind: string("type").unwrap_or_else(|| UPSTREAM_ERROR.to_owned()),
        param: string("param"),
        code,
    }
}

/// The data of an SSE `event: error`: an envelope with a truthy `error` member (OpenAI,
/// Anthropic), a bare error object, or anything else (a generic error; never echoed).
pub fn from_error_event(data: &[u8]) -> UpstreamError {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(data) else {
        return UpstreamError::new(DEFAULT_MESSAGE, UPSTREAM_ERROR, None);
    };
    if let Some(error) = object.get("error") {
        let raw = serde_json::value::to_raw_value(error).ok();
        let error_type = object
            .get("error_type")
            .and_then(|t| serde_json::value::to_raw_value(t).ok());
        if let Some(found) = raw
            .as_deref()
            .and_then(|e| from_error_member(e, error_type.as_deref()))
        {
            return found;
        }
    }
    from_error_object(&object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(error: &str, error_type: Option<&str>) -> Option<UpstreamError> {
        let error = RawValue::from_string(error.to_owned()).unwrap();
        let error_type = error_type.map(|t| RawValue::from_string(t.to_owned()).unwrap());
        from_error_member(&error, error_type.as_deref())
    }

    fn envelope(error: &UpstreamError) -> String {
        let mut out = Vec::new();
        error.write_envelope(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn object_fields_are_kept_with_fixed_types() {
        let e = member(
            r#"{"message":"Rate limited","type":"rate_limit_error","code":429,"param":"model","extra":1}"#,
            None,
        )
        .unwrap();
        assert_eq!(
            envelope(&e),
            r#"{"error":{"message":"Rate limited","type":"rate_limit_error","param":"model","code":"429"}}"#
        );
    }

    #[test]
    fn missing_or_mistyped_fields_fall_back() {
        let e = member(
            r#"{"message":5,"type":null,"code":{"x":1},"param":3}"#,
            None,
        )
        .unwrap();
        assert_eq!(
            e,
            UpstreamError::new(DEFAULT_MESSAGE, "upstream_error", None)
        );
        let e = member(r#"{"message":"boom","code":"overloaded"}"#, None).unwrap();
        assert_eq!(e.code.as_deref(), Some("overloaded"));
        assert_eq!(e.kind, "upstream_error");
    }

    #[test]
    fn string_error_takes_the_sibling_error_type() {
        let e = member(r#""Input validation error""#, Some(r#""validation""#)).unwrap();
        assert_eq!(e.message, "Input validation error");
        assert_eq!(e.kind, "validation");
        let e = member(r#""x""#, Some("7")).unwrap();
        assert_eq!(e.kind, "upstream_error");
    }

    #[test]
    fn falsy_error_members_are_not_errors() {
        for falsy in ["null", "false", "\"\"", "{}", "[]", "0"] {
            assert!(member(falsy, None).is_none(), "{falsy}");
        }
        assert_eq!(member("true", None).unwrap().message, DEFAULT_MESSAGE);
    }

    #[test]
    fn error_events_accept_envelopes_bare_objects_and_garbage() {
        let anthropic =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        let e = from_error_event(anthropic);
        assert_eq!(
            (e.message.as_str(), e.kind.as_str()),
            ("Overloaded", "overloaded_error")
        );
        let e = from_error_event(br#"{"message":"bare","code":"c"}"#);
        assert_eq!((e.message.as_str(), e.code.as_deref()), ("bare", Some("c")));
        let e = from_error_event(b"secret-looking garbage sk-123");
        assert!(!e.message.contains("sk-123"));
    }

    #[test]
    fn messages_are_escaped() {
        let e = UpstreamError::new("a \"quoted\"\nline", "t", None);
        assert_eq!(
            envelope(&e),
            r#"{"error":{"message":"a \"quoted\"\nline","type":"t","param":null,"code":null}}"#
        );
    }
}
