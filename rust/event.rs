//! The internal events every dialect translates its upstream into.
//!
//! A dialect reads native frames (SSE events, NDJSON lines) and emits these; the response state
//! then writes them as OpenAI chunks (streaming) or merges them into one `chat.completion`
//! (non-streaming). Strings borrow from the upstream frame, so emitting an event copies nothing.

use crate::error::UpstreamError;

/// `call_` + 8 base-36 characters derived from the response id + `_` + the call's index, e.g.
/// `call_k2x9q0ab_0`. The core is sans-IO (no randomness), so the id is derived: the same
/// response always names its calls the same, calls of one response never share an id, and
/// responses (whose ids the gateway makes unique) practically never do.
pub fn generated_call_id(response_id: &str, index: u64) -> String {
    // FNV-1a, 64 bits: small, stable across builds and platforms (unlike std's hasher).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in response_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut suffix = [0u8; 8];
    for slot in suffix.iter_mut().rev() {
        *slot = DIGITS[(hash % 36) as usize];
        hash /= 36;
    }
    let suffix = std::str::from_utf8(&suffix).unwrap_or("00000000");
    format!("call_{suffix}_{index}")
}

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
