//! Ollama's answer objects (`ChatResponse` of `/api/chat`, `GenerateResponse` of
//! `/api/generate`, PROTOCOLS.md §3.3–3.5) as borrowed views: only the members the gateway reads
//! are parsed (`model`, `created_at`, the durations... are skipped), strings borrow from the line
//! unless they hold escapes, and numbers stay as the upstream wrote them.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// One NDJSON line, or a whole `stream: false` body.
#[derive(Deserialize, Default)]
pub struct LineView<'a> {
    /// `/api/chat`.
    #[serde(borrow, default)]
    pub message: Option<MessageView<'a>>,
    /// `/api/generate`: the text.
    #[serde(borrow, default)]
    pub response: Option<Cow<'a, str>>,
    /// `/api/generate`: the reasoning.
    #[serde(borrow, default)]
    pub thinking: Option<Cow<'a, str>>,
    /// `/api/generate`.
    #[serde(borrow, default)]
    pub tool_calls: Option<Vec<ToolCallView<'a>>>,
    /// `true` on the last object (null or missing: not the last).
    #[serde(default)]
    pub done: Option<bool>,
    #[serde(borrow, default)]
    pub done_reason: Option<Cow<'a, str>>,
    /// Omitted when 0 (a fully cached prompt).
    #[serde(borrow, default)]
    pub prompt_eval_count: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub eval_count: Option<&'a RawValue>,
    /// `[{token, logprob, bytes?, top_logprobs?}]` when the request asked for them.
    #[serde(borrow, default)]
    pub logprobs: Option<&'a RawValue>,
    /// A failure: `{"error": "..."}` (mid-stream, or a whole body).
    #[serde(borrow, default)]
    pub error: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
pub struct MessageView<'a> {
    #[serde(borrow, default)]
    pub content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub tool_calls: Option<Vec<ToolCallView<'a>>>,
}

/// `{"id"?, "function": {"index"?, "name", "arguments": {object}}}`; every call arrives whole.
#[derive(Deserialize)]
pub struct ToolCallView<'a> {
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub function: FunctionView<'a>,
}

#[derive(Deserialize)]
pub struct FunctionView<'a> {
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    /// An object from Ollama; other servers of the same API may send a string.
    #[serde(borrow, default)]
    pub arguments: Option<&'a RawValue>,
}

/// One entry of `logprobs`.
#[derive(Deserialize)]
pub struct LogprobView<'a> {
    #[serde(borrow)]
    pub token: Cow<'a, str>,
    #[serde(borrow)]
    pub logprob: &'a RawValue,
    #[serde(borrow, default)]
    pub bytes: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub top_logprobs: Option<&'a RawValue>,
}

fn non_empty<'b>(text: Option<&'b Cow<'_, str>>) -> Option<&'b str> {
    text.map(Cow::as_ref).filter(|text| !text.is_empty())
}

impl<'a> LineView<'a> {
    /// The answer text this line adds (`message.content`, else `response`), if any.
    pub fn content(&self) -> Option<&str> {
        non_empty(self.message.as_ref().and_then(|m| m.content.as_ref()))
            .or_else(|| non_empty(self.response.as_ref()))
    }

    /// The reasoning this line adds (`message.thinking`, else `thinking`), if any.
    pub fn thinking(&self) -> Option<&str> {
        non_empty(self.message.as_ref().and_then(|m| m.thinking.as_ref()))
            .or_else(|| non_empty(self.thinking.as_ref()))
    }

    /// The tool calls this line completes (`message.tool_calls`, else `tool_calls`).
    pub fn tool_calls(&self) -> &[ToolCallView<'a>] {
        self.message
            .as_ref()
            .and_then(|m| m.tool_calls.as_deref())
            .filter(|calls| !calls.is_empty())
            .or(self.tool_calls.as_deref())
            .unwrap_or(&[])
    }

    pub fn is_done(&self) -> bool {
        self.done == Some(true)
    }

    /// The `error` member when it is present and not null.
    pub fn error(&self) -> Option<&'a RawValue> {
        self.error.filter(|raw| raw.get() != "null")
    }
}

/// A token count: a non-negative JSON integer.
pub fn count(raw: Option<&RawValue>) -> Option<u64> {
    raw.and_then(|raw| raw.get().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_and_generate_lines_read_the_same() {
        let chat: LineView<'_> = serde_json::from_str(
            r#"{"model":"m","created_at":"2025-07-07T20:22:19.184789Z","message":{"role":"assistant","content":"Hi","thinking":"hm","images":null},"done":false}"#,
        )
        .unwrap();
        let generate: LineView<'_> = serde_json::from_str(
            r#"{"model":"m","response":"Hi","thinking":"hm","done":false,"context":[1,2]}"#,
        )
        .unwrap();
        for line in [&chat, &generate] {
            assert_eq!((line.content(), line.thinking()), (Some("Hi"), Some("hm")));
            assert!(line.tool_calls().is_empty() && !line.is_done());
        }
    }

    #[test]
    fn empty_text_and_null_members_are_nothing() {
        let line: LineView<'_> = serde_json::from_str(
            r#"{"message":{"role":"assistant","content":"","tool_calls":null},"response":null,"error":null,"done":true,"done_reason":"stop","prompt_eval_count":169,"eval_count":15}"#,
        )
        .unwrap();
        assert_eq!((line.content(), line.thinking()), (None, None));
        assert!(line.tool_calls().is_empty() && line.error().is_none());
        assert_eq!(
            (count(line.prompt_eval_count), count(line.eval_count)),
            (Some(169), Some(15))
        );
        assert_eq!(line.done_reason.as_deref(), Some("stop"));
    }

    #[test]
    fn tool_calls_keep_their_arguments_raw() {
        let line: LineView<'_> = serde_json::from_str(
            r#"{"message":{"content":"","tool_calls":[{"id":"call_cy3xwkra","function":{"index":0,"name":"get_weather","arguments":{"city": "Hue"}}}]}}"#,
        )
        .unwrap();
        let call = &line.tool_calls()[0];
        assert_eq!(call.id.as_deref(), Some("call_cy3xwkra"));
        assert_eq!(call.function.name.as_deref(), Some("get_weather"));
        assert_eq!(call.function.arguments.unwrap().get(), r#"{"city": "Hue"}"#);
    }
}
