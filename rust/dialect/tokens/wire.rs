//! The token-event wire format (TGI's, which DeepInfra's native API inherits), as borrowed
//! views: only the members the gateway reads are parsed, strings borrow from the input unless
//! they hold escapes, and numbers stay as the upstream wrote them.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::dialect::reported::{code_and_advice, error_message, ErrorSource};
use crate::error::UpstreamError;
use crate::json::raw_str;

/// One generated token.
#[derive(Deserialize)]
pub struct TokenView<'a> {
    #[serde(borrow)]
    pub text: Cow<'a, str>,
    /// As the upstream wrote the number.
    #[serde(borrow, default, deserialize_with = "raw_text")]
    pub logprob: Option<&'a str>,
    #[serde(default)]
    pub special: bool,
}

/// A raw value's text; `None` for null, as `Option<&RawValue>` reads it.
fn raw_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<&'de str>, D::Error> {
    Option::<&'de RawValue>::deserialize(deserializer).map(|raw| raw.map(RawValue::get))
}

/// `details` of a final event (`StreamDetails`) or of a `/generate` body (`Details`).
#[derive(Deserialize, Default)]
pub struct DetailsView<'a> {
    #[serde(borrow, default)]
    pub finish_reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub generated_tokens: Option<&'a RawValue>,
    /// DeepInfra's fork.
    #[serde(borrow, default)]
    pub input_tokens: Option<&'a RawValue>,
    /// Upstream TGI.
    #[serde(borrow, default)]
    pub input_length: Option<&'a RawValue>,
    /// `/generate` bodies: every generated token, special ones included.
    #[serde(borrow, default)]
    pub tokens: Option<&'a RawValue>,
}

/// DeepInfra's `inference_status`.
#[derive(Deserialize, Default)]
pub struct StatusView<'a> {
    #[serde(borrow, default)]
    pub tokens_generated: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub tokens_input: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub cost: Option<&'a RawValue>,
}

/// The `error`, `error_message`, `error_type` members any event or body may carry.
#[derive(Deserialize, Default)]
pub struct ErrorView<'a> {
    #[serde(borrow, default)]
    pub error: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub error_message: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub error_type: Option<&'a RawValue>,
}

/// One SSE event of a token stream. Every member but `token` is null until the final event.
#[derive(Deserialize)]
pub struct EventView<'a> {
    #[serde(borrow, default)]
    pub token: Option<TokenView<'a>>,
    /// TGI with `top_n_tokens`: the most likely tokens at this position.
    #[serde(borrow, default)]
    pub top_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub generated_text: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub details: Option<DetailsView<'a>>,
    #[serde(borrow, default)]
    pub inference_status: Option<StatusView<'a>>,
    #[serde(borrow, default)]
    pub num_output_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub num_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub num_input_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub error: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub error_message: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub error_type: Option<&'a RawValue>,
}

impl<'a> EventView<'a> {
    /// The last event of a stream carries the whole text or the details.
    pub fn is_final(&self) -> bool {
        self.generated_text.is_some() || self.details.is_some()
    }

    pub fn errors(&self) -> ErrorView<'a> {
        ErrorView {
            error: self.error,
            error_message: self.error_message,
            error_type: self.error_type,
        }
    }

    pub fn counts(&self) -> ReportedCounts<'a> {
        ReportedCounts::find(
            self.inference_status.as_ref(),
            [self.num_output_tokens, self.num_tokens],
            self.num_input_tokens,
            self.details.as_ref(),
        )
    }
}

/// The token counts and cost an upstream reported, each `None` when it did not.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReportedCounts<'a> {
    pub completion: Option<u64>,
    pub prompt: Option<u64>,
    /// The cost in USD as the upstream wrote the number.
    pub cost: Option<&'a str>,
}

impl<'a> ReportedCounts<'a> {
    /// First found wins: `inference_status`, then the top-level counts, then `details`.
    pub fn find(
        status: Option<&StatusView<'a>>,
        top_level_completion: [Option<&'a RawValue>; 2],
        top_level_prompt: Option<&'a RawValue>,
        details: Option<&DetailsView<'a>>,
    ) -> Self {
        let completion = [status.and_then(|s| s.tokens_generated)]
            .into_iter()
            .chain(top_level_completion)
            .chain([details.and_then(|d| d.generated_tokens)])
            .find_map(count);
        let prompt = [
            status.and_then(|s| s.tokens_input),
            top_level_prompt,
            details.and_then(|d| d.input_tokens),
            details.and_then(|d| d.input_length),
        ]
        .into_iter()
        .find_map(count);
        let cost = status
            .and_then(|s| s.cost)
            .map(RawValue::get)
            .filter(|text| text.starts_with(|c: char| c == '-' || c.is_ascii_digit()));
        ReportedCounts {
            completion,
            prompt,
            cost,
        }
    }
}

/// A token count: a non-negative JSON integer.
fn count(raw: Option<&RawValue>) -> Option<u64> {
    raw.and_then(|raw| raw.get().parse().ok())
}

/// TGI's finish reasons in OpenAI's terms: `length` stays, the rest (`eos_token`, `eos`,
/// `stop_sequence`, anything unknown) is a normal stop.
pub fn finish_reason(native: Option<&str>) -> &'static str {
    match native {
        Some("length") => "length",
        _ => "stop",
    }
}

impl ErrorView<'_> {
    /// The error these members describe, if any of them is present (and not null).
    ///
    /// `type` is always `upstream_error`, as for the gateway's other upstream failures; the
    /// upstream's own `error_type` is kept in the message. TGI's `overloaded` gets the code
    /// `upstream_overloaded` and advice to retry later; everything else `upstream_stream_error`
    /// (in a stream) or `upstream_reported_error` (a body).
    pub fn upstream_error(&self, source: ErrorSource) -> Option<UpstreamError> {
        fn present(raw: Option<&RawValue>) -> Option<&RawValue> {
            raw.filter(|raw| raw.get() != "null")
        }
        let (error, message, kind) = (
            present(self.error),
            present(self.error_message),
            present(self.error_type),
        );
        if error.is_none() && message.is_none() && kind.is_none() {
            return None;
        }
        let object_member = |name: &str| {
            let object: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(error?.get()).ok()?;
            match object.get(name)? {
                serde_json::Value::String(text) if !text.is_empty() => Some(text.clone()),
                _ => None,
            }
        };
        let text = error
            .and_then(raw_str)
            .map(Cow::into_owned)
            .or_else(|| message.and_then(raw_str).map(Cow::into_owned))
            .or_else(|| object_member("message"))
            .filter(|text| !text.is_empty());
        let kind = kind
            .and_then(raw_str)
            .map(Cow::into_owned)
            .or_else(|| object_member("type"))
            .filter(|kind| !kind.is_empty());
        Some(describe(text.as_deref(), kind.as_deref(), source))
    }
}

fn describe(text: Option<&str>, kind: Option<&str>, source: ErrorSource) -> UpstreamError {
    let overloaded = kind.is_some_and(|k| k.contains("overloaded"));
    let (code, mut advice) = code_and_advice(overloaded, source);
    if !overloaded && kind.is_some_and(|k| k.contains("validation")) {
        advice = "If the request is at fault (for example max_tokens beyond the model's context \
                  length), fix it; otherwise retry the request.";
    }
    let message = error_message(kind, text, advice);
    UpstreamError::new(message, "upstream_error", Some(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(json: &str, source: ErrorSource) -> Option<UpstreamError> {
        let view: ErrorView<'_> = serde_json::from_str(json).unwrap();
        view.upstream_error(source)
    }

    #[test]
    fn both_error_shapes_keep_the_upstream_type_in_the_message() {
        let tgi = error_of(
            r#"{"error":"Input validation error: `inputs` too long.","error_type":"validation"}"#,
            ErrorSource::Stream,
        )
        .unwrap();
        assert_eq!(
            tgi.message,
            "The upstream reported an error of type \"validation\": Input validation error: \
             `inputs` too long. If the request is at fault (for example max_tokens beyond the \
             model's context length), fix it; otherwise retry the request."
        );
        assert_eq!(
            (tgi.kind.as_str(), tgi.code.as_deref()),
            ("upstream_error", Some("upstream_stream_error"))
        );
        let deepinfra = error_of(
            r#"{"error_type": "validation_error", "error_message": "ConnectionError: x"}"#,
            ErrorSource::Body,
        )
        .unwrap();
        assert!(deepinfra
            .message
            .contains("\"validation_error\": ConnectionError: x"));
        assert_eq!(deepinfra.code.as_deref(), Some("upstream_reported_error"));
    }

    #[test]
    fn overloaded_says_retry_later() {
        let e = error_of(
            r#"{"error":"Model is overloaded","error_type":"overloaded"}"#,
            ErrorSource::Stream,
        )
        .unwrap();
        assert_eq!(e.code.as_deref(), Some("upstream_overloaded"));
        assert!(e.message.contains("retry later"), "{}", e.message);
    }

    #[test]
    fn object_errors_and_bare_types_are_errors_nulls_are_not() {
        let e = error_of(
            r#"{"error":{"message":"Not authenticated","type":"auth"}}"#,
            ErrorSource::Body,
        )
        .unwrap();
        assert!(
            e.message.contains("\"auth\": Not authenticated"),
            "{}",
            e.message
        );
        let e = error_of(r#"{"error_type":"generation"}"#, ErrorSource::Stream).unwrap();
        assert!(e
            .message
            .starts_with("The upstream reported an error of type \"generation\". "));
        assert!(error_of(r#"{"error":null,"error_type":null}"#, ErrorSource::Stream).is_none());
        assert!(error_of("{}", ErrorSource::Stream).is_none());
    }

    #[test]
    fn counts_first_found_wins() {
        let event: EventView<'_> = serde_json::from_str(
            r#"{"token": null, "generated_text": "x", "details": {"finish_reason": "eos_token", "generated_tokens": 25, "input_tokens": 12, "seed": null}, "num_output_tokens": 24, "num_input_tokens": 11, "inference_status": {"status": "succeeded", "cost": 0.0000436, "tokens_input": 10, "tokens_generated": 23}}"#,
        )
        .unwrap();
        assert_eq!(
            event.counts(),
            ReportedCounts {
                completion: Some(23),
                prompt: Some(10),
                cost: Some("0.0000436")
            }
        );
        let event: EventView<'_> = serde_json::from_str(
            r#"{"details":{"finish_reason":"length","generated_tokens":3,"input_length":7},"inference_status":{"cost":null}}"#,
        )
        .unwrap();
        assert_eq!(
            event.counts(),
            ReportedCounts {
                completion: Some(3),
                prompt: Some(7),
                cost: None
            }
        );
        assert!(event.is_final());
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason(Some("length")), "length");
        for other in [
            Some("eos_token"),
            Some("eos"),
            Some("stop_sequence"),
            Some("x"),
            None,
        ] {
            assert_eq!(finish_reason(other), "stop");
        }
    }
}
