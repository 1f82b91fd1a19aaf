//! The internal events every dialect translates its upstream into.
//!
//! A dialect reads native frames (SSE events, NDJSON lines) and emits these; the response state
//! then writes them as OpenAI chunks (streaming) or merges them into one `chat.completion`
//! (non-streaming). Strings borrow from the upstream frame, so emitting an event copies nothing.

use crate::error::UpstreamError;

/// One piece of a tool call, OpenAI style: only the first piece of a call carries `id`, `type`
/// and `name`; `arguments` pieces are concatenated by `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ToolCallDelta<'a> {
    pub index: u64,
    pub id: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub name: Option<&'a str>,
    pub arguments: Option<&'a str>,
}

/// The legacy `function_call` delta (pre-tools OpenAI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FunctionCallDelta<'a> {
    pub name: Option<&'a str>,
    pub arguments: Option<&'a str>,
}

/// Everything that arrived for one choice in one upstream frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChoiceDelta<'a> {
    pub choice: u64,
    pub content: Option<&'a str>,
    /// Reasoning text; written as `reasoning_content` (the DeepSeek/DeepInfra convention).
    pub reasoning: Option<&'a str>,
    pub refusal: Option<&'a str>,
    pub tool_calls: &'a [ToolCallDelta<'a>],
    pub function_call: Option<FunctionCallDelta<'a>>,
    /// The JSON text of the array of token logprob objects (`logprobs.content` in OpenAI's
    /// shape): copied from the upstream or written by a dialect, always valid JSON.
    pub logprobs: Option<&'a str>,
}

impl ChoiceDelta<'_> {
    /// Whether this delta shows the user anything (decides if a failure can still fall back).
    pub fn carries_output(&self) -> bool {
        let text = |t: Option<&str>| t.is_some_and(|t| !t.is_empty());
        text(self.content)
            || text(self.reasoning)
            || text(self.refusal)
            || !self.tool_calls.is_empty()
            || self.function_call.is_some()
    }
}

#[derive(Debug)]
pub enum Event<'a> {
    Delta(ChoiceDelta<'a>),
    /// The choice is finished; `reason` is already an OpenAI finish reason.
    Finish {
        choice: u64,
        reason: &'a str,
    },
    /// The upstream's usage, as the JSON text of an OpenAI `CompletionUsage` object.
    Usage(&'a str),
    SystemFingerprint(&'a str),
    /// The upstream failed; nothing after this counts.
    Error(UpstreamError),
    /// The upstream said the answer is complete.
    Done,
}
