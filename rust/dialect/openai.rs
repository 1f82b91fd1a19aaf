//! The `openai` dialect: an OpenAI-compatible upstream (vLLM, NIM, DeepSeek, OpenRouter,
//! DeepInfra's OpenAI endpoint, ...).
//!
//! Streaming, the upstream's own chunks are forwarded with `id`/`object`/`created`/`model`
//! replaced and `usage` lifted out: the top level is walked as borrowed raw values and copied
//! slice by slice, so unknown vendor fields pass through untouched and nothing is re-encoded.
//! The walk is the single-pass scanner of `json::scan` (the hot path: one pass over each chunk),
//! with serde_json behind it for whatever the scanner leaves alone (escaped keys, `error`
//! members, invalid JSON — the full parser then decides). Only `choices` is looked into, through
//! light borrowed views, and only while it can still change the outcome. Aggregating, the
//! chunks are translated into internal events instead.
//!
//! Either way the chunks that carried output are counted ([`UsageTally`]), so an answer the
//! upstream reported no usage for (a server that never sends it, a stream cut off before its
//! usage chunk) still gets one: the gateway's estimate, marked `"estimated":true`.

use std::borrow::Cow;
use std::fmt::Write;
use std::ops::Range;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{self, UpstreamError};
use crate::event::{ChoiceDelta, Event, FunctionCallDelta, ToolCallDelta};
use crate::json::scan::{self, GiveUp};
use crate::json::{self, carries_something, for_each_element, for_each_member, is_null, raw_str};
use crate::outcome::Outcome;
use crate::sse::SseEvent;
use crate::writer::ChunkWriter;

/// What one SSE event of an OpenAI stream is.
pub enum Frame<'a> {
    /// Nothing to act on (empty data, a vendor's named event).
    Skip,
    /// `data: [DONE]`.
    Done,
    Error(UpstreamError),
    /// A JSON payload to read as a chunk (not yet known to be UTF-8: the JSON scan checks).
    Chunk(&'a [u8]),
}

pub fn classify<'a>(event: &SseEvent<'a>) -> Frame<'a> {
    match event.event {
        b"" | b"message" => {}
        b"error" => return Frame::Error(error::from_error_event(event.data)),
        // The OpenAI SDK yields other named events as something other than chunks; they are
        // vendor extensions a chat client would choke on.
        _ => return Frame::Skip,
    }
    let data = event.data.trim_ascii();
    if data.is_empty() {
        return Frame::Skip;
    }
    // The SDK's own test, so `[DONE]` with trailing bytes also ends the stream.
    if data.starts_with(b"[DONE]") {
        return Frame::Done;
    }
    Frame::Chunk(data)
}

/// What the gateway counts of an answer, for the usage it estimates when the upstream reports
/// none.
#[derive(Debug, Default)]
pub struct UsageTally {
    /// The gateway's estimate of the prompt's tokens (the `prompt_tokens` option).
    prompt_tokens: Option<u64>,
    /// A chunk with at least one choice went out: the upstream answered, so the prompt was read
    /// (and billed) even if no output followed.
    answered: bool,
    /// Chunks that carried output. Nearly every OpenAI-compatible server sends one token per
    /// chunk, so this stands in for the completion count. Once output has gone out, the stream
    /// path no longer looks inside `choices` (see [`rewrite_chunk`]): from then on every chunk
    /// with choices counts, unless it has a finish reason or usage (those are read whole and
    /// count only with output).
    output_chunks: u64,
}

impl UsageTally {
    pub fn new(prompt_tokens: Option<u64>) -> Self {
        UsageTally {
            prompt_tokens,
            ..UsageTally::default()
        }
    }

    fn count(&mut self, seen: ChoicesSeen) {
        self.answered |= seen.any;
        self.output_chunks += u64::from(seen.output);
    }

    /// `{"prompt_tokens":P,"completion_tokens":C,"total_tokens":P+C,"estimated":true}` (the shape
    /// the token dialects give), or `None` while no choice went out: an answer without one has
    /// nothing to account for.
    pub fn estimate(&self) -> Option<String> {
        if !self.answered {
            return None;
        }
        let prompt = self.prompt_tokens.unwrap_or(0);
        let completion = self.output_chunks;
        let mut usage = String::with_capacity(96);
        // Writing into a String cannot fail.
        let _ = write!(
            usage,
            "{{\"prompt_tokens\":{prompt},\"completion_tokens\":{completion},\"total_tokens\":{},\"estimated\":true}}",
            prompt.saturating_add(completion)
        );
        Some(usage)
    }
}

/// What one chunk's `choices` held, for the [`UsageTally`].
#[derive(Debug, Clone, Copy, Default)]
struct ChoicesSeen {
    /// At least one choice.
    any: bool,
    /// At least one choice carried output (content, reasoning, refusal, a tool call).
    output: bool,
}

/// The parts of a choice the gateway looks at; everything else is skipped unparsed.
#[derive(Deserialize)]
struct ChoiceView<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default)]
    delta: Option<MessageView<'a>>,
    /// Non-streaming bodies carry `message` instead of `delta`.
    #[serde(borrow, default)]
    message: Option<MessageView<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<&'a RawValue>,
    #[serde(borrow, default)]
    logprobs: Option<LogprobsView<'a>>,
}

#[derive(Deserialize)]
struct MessageView<'a> {
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    reasoning_content: Option<&'a RawValue>,
    /// vLLM ≥ 0.11 and Ollama's OpenAI layer name reasoning `reasoning`.
    #[serde(borrow, default)]
    reasoning: Option<&'a RawValue>,
    #[serde(borrow, default)]
    refusal: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tool_calls: Option<&'a RawValue>,
    #[serde(borrow, default)]
    function_call: Option<&'a RawValue>,
}

impl MessageView<'_> {
    fn carries_output(&self) -> bool {
        [
            self.content,
            self.reasoning_content,
            self.reasoning,
            self.refusal,
            self.tool_calls,
            self.function_call,
        ]
        .into_iter()
        .flatten()
        .any(carries_something)
    }
}

#[derive(Deserialize)]
struct LogprobsView<'a> {
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ToolCallView<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<&'a RawValue>,
    #[serde(borrow, default)]
    function: Option<FunctionView<'a>>,
}

#[derive(Deserialize)]
struct FunctionView<'a> {
    #[serde(borrow, default)]
    name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
}

/// The top-level members the gateway acts on (`usage` and `choices` as raw JSON text; the
/// others only the full parser notes).
#[derive(Default)]
struct TopLevel<'a> {
    usage: Option<&'a [u8]>,
    choices: Option<&'a [u8]>,
    error: Option<&'a RawValue>,
    error_type: Option<&'a RawValue>,
    system_fingerprint: Option<&'a RawValue>,
}

impl<'a> TopLevel<'a> {
    /// Remembers `key`'s value if it is one the gateway acts on.
    fn note(&mut self, key: &str, value: &'a RawValue) {
        match key {
            "usage" => self.usage = Some(value.get().as_bytes()),
            "choices" => self.choices = Some(value.get().as_bytes()),
            "error" => self.error = Some(value),
            "error_type" => self.error_type = Some(value),
            "system_fingerprint" => self.system_fingerprint = Some(value),
            _ => {}
        }
    }

    fn upstream_error(&self) -> Option<UpstreamError> {
        self.error
            .and_then(|e| error::from_error_member(e, self.error_type))
    }

    /// The usage object's text, unless it is `null`. (Both parsers have checked the chunk is
    /// UTF-8, so the conversion never drops one.)
    fn usage(&self) -> Option<&'a str> {
        self.usage
            .filter(|u| *u != b"null")
            .and_then(|u| std::str::from_utf8(u).ok())
    }
}

/// The members every rewritten chunk or body gets from the gateway instead of the upstream.
fn is_identity(key: &str) -> bool {
    matches!(key, "id" | "object" | "created" | "model")
}

/// Streaming: appends the rewritten chunk frame for `text` to `out` (or nothing, for a usage-only
/// chunk), records usage, finish reason and content in `outcome`, and counts the chunk in
/// `tally`.
pub fn rewrite_chunk(
    text: &[u8],
    writer: &ChunkWriter,
    out: &mut Vec<u8>,
    outcome: &mut Outcome,
    tally: &mut UsageTally,
) -> Result<(), UpstreamError> {
    let mark = out.len();
    writer.begin_chunk(out);
    let walked = match scan_chunk_members(text, out) {
        Ok(top) => Ok(top),
        Err(GiveUp) => {
            out.truncate(mark);
            writer.begin_chunk(out);
            match std::str::from_utf8(text) {
                Ok(text) => parse_chunk_members(text, out),
                Err(_) => Err(UpstreamError::bad_response()),
            }
        }
    };
    let result = walked.and_then(|top| {
        if let Some(error) = top.upstream_error() {
            return Err(error);
        }
        if top.usage().is_none() && outcome.content_emitted && !mentions_finish(top.choices) {
            // Nothing in these choices can change the outcome: skip parsing them. Mid-answer,
            // a chunk with choices is one more token (a glance, not a parse: see UsageTally).
            let any = has_elements(top.choices);
            return Ok((ChoicesSeen { any, output: any }, top));
        }
        inspect_choices(top.choices, outcome, false).map(|seen| (seen, top))
    });
    let (seen, top) = match result {
        Ok(found) => found,
        Err(error) => {
            out.truncate(mark);
            return Err(error);
        }
    };
    tally.count(seen);
    if let Some(usage) = top.usage() {
        outcome.set_usage(usage);
        if !seen.any {
            // A usage-only chunk: usage goes out once, in the closing frames.
            out.truncate(mark);
            return Ok(());
        }
    }
    ChunkWriter::end_chunk(out);
    Ok(())
}

/// Copies a chunk's members but the identity and `usage` to `out` (each as `,"key":value`),
/// by the single-pass scanner. Gives up on an `error` member too: the full parser reads those.
fn scan_chunk_members<'a>(text: &'a [u8], out: &mut Vec<u8>) -> Result<TopLevel<'a>, GiveUp> {
    let mut top = TopLevel::default();
    let mut has_error = false;
    // Members that stand next to each other in the input go out in one copy (`,"a":1,"b":2`):
    // the usual chunk is then the gateway's head and a single copy of the upstream's tail.
    let mut run: Option<Range<usize>> = None;
    let flush = |run: Option<Range<usize>>, out: &mut Vec<u8>| {
        if let Some(run) = run {
            out.push(b',');
            out.extend_from_slice(&text[run]);
        }
    };
    scan::object_members(text, |member| {
        let key = &text[member.key.clone()];
        let value = &text[member.value.clone()];
        match key {
            b"id" | b"object" | b"created" | b"model" => return, // see is_identity
            b"usage" => {
                top.usage = Some(value);
                return;
            }
            b"choices" => top.choices = Some(value),
            b"error" => has_error = true,
            _ => {}
        }
        match (member.compact(), &mut run) {
            (Some(span), Some(run)) if run.end + 1 == span.start && text[run.end] == b',' => {
                run.end = span.end;
            }
            (Some(span), run) => flush(run.replace(span), out),
            (None, run) => {
                flush(run.take(), out);
                out.extend_from_slice(b",\"");
                out.extend_from_slice(key);
                out.extend_from_slice(b"\":");
                out.extend_from_slice(value);
            }
        }
    })?;
    flush(run, out);
    if has_error {
        return Err(GiveUp);
    }
    Ok(top)
}

/// The same as [`scan_chunk_members`] by the full parser, for everything the scanner leaves.
fn parse_chunk_members<'a>(
    text: &'a str,
    out: &mut Vec<u8>,
) -> Result<TopLevel<'a>, UpstreamError> {
    let mut top = TopLevel::default();
    for_each_member(text, |key, value| {
        let name = key.as_str();
        top.note(name, value);
        if is_identity(name) || name == "usage" {
            return;
        }
        out.push(b',');
        json::write_key(out, &key);
        out.extend_from_slice(value.get().as_bytes());
    })
    .map_err(|_| UpstreamError::bad_response())?;
    Ok(top)
}

/// Whether `choices` may carry a non-null `finish_reason`. A cheap byte search, so the common
/// mid-stream chunk (content already seen, `"finish_reason":null`) is not parsed a second time.
/// Inside JSON strings the quotes of such a key would be escaped, so a match is a real key;
/// anything unexpected answers `true` and takes the full parse.
fn mentions_finish(choices: Option<&[u8]>) -> bool {
    const KEY: &[u8] = b"\"finish_reason\"";
    // Built once: building a searcher costs more than searching one chunk.
    static FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(KEY));
    let Some(bytes) = choices else {
        return false;
    };
    FINDER.find_iter(bytes).any(|at| {
        let rest = bytes[at + KEY.len()..].trim_ascii_start();
        match rest.strip_prefix(b":") {
            Some(value) => !value.trim_ascii_start().starts_with(b"null"),
            None => true, // not a key after all: let the full parse decide
        }
    })
}

/// Whether `choices` (raw JSON) is an array with at least one element: a glance, not a parse.
fn has_elements(choices: Option<&[u8]>) -> bool {
    choices
        .and_then(|c| c.strip_prefix(b"["))
        .is_some_and(|rest| !rest.trim_ascii_start().starts_with(b"]"))
}

/// Records finish reason and content from `choices`; returns what they held.
fn inspect_choices(
    choices: Option<&[u8]>,
    outcome: &mut Outcome,
    whole_message: bool,
) -> Result<ChoicesSeen, UpstreamError> {
    let mut seen = ChoicesSeen::default();
    let Some(choices) = choices.filter(|c| *c != b"null") else {
        return Ok(seen);
    };
    let mut finish: Option<&RawValue> = None;
    for_each_element(choices, |position, choice: ChoiceView<'_>| {
        seen.any = true;
        let message = if whole_message {
            &choice.message
        } else {
            &choice.delta
        };
        if message.as_ref().is_some_and(MessageView::carries_output) {
            outcome.content_emitted = true;
            seen.output = true;
        }
        // Non-streaming bodies report choices[0]'s reason; streams the last one seen.
        if let Some(reason) = choice.finish_reason.filter(|r| !is_null(r)) {
            if !whole_message || position == 0 {
                finish = Some(reason);
            }
        }
    })
    .map_err(|_| UpstreamError::bad_response())?;
    if let Some(reason) = finish.and_then(raw_str) {
        outcome.set_finish_reason(&reason);
    }
    Ok(seen)
}

/// Non-streaming JSON body: appends the rewritten `chat.completion` to `out` and records usage,
/// finish reason and content. `usage` stays in the body.
pub fn rewrite_completion(
    text: &str,
    writer: &ChunkWriter,
    out: &mut Vec<u8>,
    outcome: &mut Outcome,
) -> Result<(), UpstreamError> {
    let mark = out.len();
    writer.begin_completion(out);
    let mut top = TopLevel::default();
    let walked = for_each_member(text, |key, value| {
        let name = key.as_str();
        top.note(name, value);
        if is_identity(name) {
            return;
        }
        out.push(b',');
        json::write_key(out, &key);
        out.extend_from_slice(value.get().as_bytes());
    });
    let result = walked
        .map_err(|_| UpstreamError::bad_response())
        .and_then(|()| top.upstream_error().map_or(Ok(()), Err))
        .and_then(|()| inspect_choices(top.choices, outcome, true).map(|_| ()));
    if let Err(error) = result {
        out.truncate(mark);
        return Err(error);
    }
    if let Some(usage) = top.usage() {
        outcome.set_usage(usage);
    }
    out.push(b'}');
    Ok(())
}

/// Aggregating: translates one chunk into internal events and counts it in `tally`. Every delta
/// is read here anyway, so a chunk counts exactly when it carried output.
pub fn chunk_events<F>(
    text: &[u8],
    tally: &mut UsageTally,
    emit: &mut F,
) -> Result<(), UpstreamError>
where
    F: FnMut(Event<'_>),
{
    let text = std::str::from_utf8(text).map_err(|_| UpstreamError::bad_response())?;
    let mut top = TopLevel::default();
    for_each_member(text, |key, value| top.note(key.as_str(), value))
        .map_err(|_| UpstreamError::bad_response())?;
    if let Some(error) = top.upstream_error() {
        return Err(error);
    }
    if let Some(fingerprint) = top.system_fingerprint.and_then(raw_str) {
        emit(Event::SystemFingerprint(&fingerprint));
    }
    if let Some(choices) = top.choices.filter(|c| *c != b"null") {
        let mut failed = false;
        let mut seen = ChoicesSeen::default();
        for_each_element(choices, |position, choice: ChoiceView<'_>| {
            seen.any = true;
            seen.output |= choice
                .delta
                .as_ref()
                .is_some_and(MessageView::carries_output);
            failed |= choice_events(position, &choice, emit).is_err();
        })
        .map_err(|_| UpstreamError::bad_response())?;
        if failed {
            return Err(UpstreamError::bad_response());
        }
        tally.count(seen);
    }
    if let Some(usage) = top.usage() {
        emit(Event::Usage(usage));
    }
    Ok(())
}

fn choice_events<F>(
    position: usize,
    choice: &ChoiceView<'_>,
    emit: &mut F,
) -> Result<(), serde_json::Error>
where
    F: FnMut(Event<'_>),
{
    let index = choice.index.unwrap_or(position as u64);
    if let Some(delta) = &choice.delta {
        let content = text(delta.content);
        let reasoning = text(delta.reasoning_content).or_else(|| text(delta.reasoning));
        let refusal = text(delta.refusal);
        let calls = tool_call_pieces(delta.tool_calls)?;
        let call_refs: Vec<ToolCallDelta<'_>> = calls.iter().map(ToolCallPiece::as_delta).collect();
        let function_call = match delta.function_call.filter(|f| !is_null(f)) {
            Some(raw) => Some(serde_json::from_str::<FunctionView<'_>>(raw.get())?),
            None => None,
        };
        let function_name = function_call.as_ref().and_then(|f| text(f.name));
        let function_arguments = function_call
            .as_ref()
            .and_then(|f| f.arguments.map(string_or_json));
        let logprobs = choice
            .logprobs
            .as_ref()
            .and_then(|l| l.content)
            .filter(|c| !is_null(c))
            .map(RawValue::get);
        emit(Event::Delta(ChoiceDelta {
            choice: index,
            content: content.as_deref(),
            reasoning: reasoning.as_deref(),
            refusal: refusal.as_deref(),
            tool_calls: &call_refs,
            function_call: function_call.as_ref().map(|_| FunctionCallDelta {
                name: function_name.as_deref(),
                arguments: function_arguments.as_deref(),
            }),
            logprobs,
        }));
    }
    if let Some(reason) = text(choice.finish_reason) {
        emit(Event::Finish {
            choice: index,
            reason: &reason,
        });
    }
    Ok(())
}

fn text(raw: Option<&RawValue>) -> Option<Cow<'_, str>> {
    raw.and_then(raw_str)
}

/// Strings come out decoded; anything else (an `arguments` object from a lax server) as its
/// JSON text, which is what `arguments` means anyway.
fn string_or_json(raw: &RawValue) -> Cow<'_, str> {
    raw_str(raw).unwrap_or_else(|| Cow::Borrowed(raw.get()))
}

struct ToolCallPiece<'a> {
    index: u64,
    id: Option<Cow<'a, str>>,
    kind: Option<Cow<'a, str>>,
    name: Option<Cow<'a, str>>,
    arguments: Option<Cow<'a, str>>,
}

impl ToolCallPiece<'_> {
    fn as_delta(&self) -> ToolCallDelta<'_> {
        ToolCallDelta {
            index: self.index,
            id: self.id.as_deref(),
            kind: self.kind.as_deref(),
            name: self.name.as_deref(),
            arguments: self.arguments.as_deref(),
        }
    }
}

fn tool_call_pieces(raw: Option<&RawValue>) -> Result<Vec<ToolCallPiece<'_>>, serde_json::Error> {
    let mut pieces = Vec::new();
    let Some(raw) = raw.filter(|r| !is_null(r)) else {
        return Ok(pieces);
    };
    for_each_element(raw.get().as_bytes(), |position, call: ToolCallView<'_>| {
        let function = call.function.as_ref();
        pieces.push(ToolCallPiece {
            index: call.index.unwrap_or(position as u64),
            id: call.id.and_then(raw_str),
            kind: call.kind.and_then(raw_str),
            name: function.and_then(|f| f.name).and_then(raw_str),
            arguments: function
                .and_then(|f| f.arguments)
                .filter(|a| !is_null(a))
                .map(string_or_json),
        });
    })?;
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> ChunkWriter {
        ChunkWriter::new("chatcmpl-gw", 1700000000, "alias")
    }

    fn rewrite(text: &str) -> (Result<String, UpstreamError>, Outcome) {
        let mut outcome = Outcome::default();
        let mut out = b"prev".to_vec();
        let mut tally = UsageTally::default();
        let result = rewrite_chunk(
            text.as_bytes(),
            &writer(),
            &mut out,
            &mut outcome,
            &mut tally,
        );
        let written = String::from_utf8(out[4..].to_vec()).unwrap();
        (result.map(|()| written), outcome)
    }

    const HEAD: &str = r#"data: {"id":"chatcmpl-gw","object":"chat.completion.chunk","created":1700000000,"model":"alias""#;

    #[test]
    fn finish_reason_is_found_after_content_whatever_the_spacing() {
        // Once content was seen, chunks are only searched for a finish_reason; the search
        // must not miss one however the upstream spaces its JSON.
        for chunk in [
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            r#"{"choices": [{"index": 0, "delta": {}, "finish_reason" : "length"}]}"#,
            "{\"choices\":[{\"finish_reason\"\n:\n\"tool_calls\"}]}",
        ] {
            let mut outcome = Outcome {
                content_emitted: true,
                ..Outcome::default()
            };
            let mut out = Vec::new();
            let mut tally = UsageTally::default();
            rewrite_chunk(
                chunk.as_bytes(),
                &writer(),
                &mut out,
                &mut outcome,
                &mut tally,
            )
            .unwrap();
            assert!(outcome.finish_reason.is_some(), "missed in {chunk}");
        }
    }

    #[test]
    fn mentions_finish_ignores_nulls_and_escaped_text() {
        fn raw(s: &str) -> &[u8] {
            s.as_bytes()
        }
        assert!(!mentions_finish(Some(raw(r#"[{"finish_reason":null}]"#))));
        assert!(!mentions_finish(Some(raw(r#"[{"finish_reason" : null}]"#))));
        assert!(!mentions_finish(Some(raw(
            r#"[{"delta":{"content":"say \"finish_reason\":\"stop\""},"finish_reason":null}]"#
        ))));
        assert!(mentions_finish(Some(raw(r#"[{"finish_reason":"stop"}]"#))));
        assert!(!mentions_finish(None));
    }

    #[test]
    fn identity_is_replaced_and_other_members_keep_their_bytes_and_order() {
        let (out, outcome) = rewrite(
            r#"{"vendor":{"a" : 1e5},"id":"x","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}],"usage":null,"z":[]}"#,
        );
        assert_eq!(
            out.unwrap(),
            format!(
                "{HEAD},\"vendor\":{{\"a\" : 1e5}},\"system_fingerprint\":\"fp\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"Hi\"}},\"logprobs\":null,\"finish_reason\":null}}],\"z\":[]}}\n\n"
            )
        );
        assert!(outcome.content_emitted);
        assert!(outcome.usage.is_none());
    }

    #[test]
    fn usage_on_a_finish_chunk_is_lifted_out_and_kept_exactly() {
        let (out, outcome) = rewrite(
            r#"{"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 48, "prompt_tokens_details": {"cached_tokens": 0}, "estimated_cost": 9.24e-05}}"#,
        );
        assert_eq!(
            out.unwrap(),
            format!("{HEAD},\"choices\":[{{\"index\": 0, \"delta\": {{}}, \"finish_reason\": \"stop\"}}]}}\n\n")
        );
        assert_eq!(
            outcome.usage.as_deref(),
            Some(
                r#"{"prompt_tokens": 48, "prompt_tokens_details": {"cached_tokens": 0}, "estimated_cost": 9.24e-05}"#
            )
        );
        assert_eq!(outcome.finish_reason.as_deref(), Some("stop"));
        assert!(!outcome.content_emitted);
    }

    #[test]
    fn usage_only_chunk_is_not_forwarded() {
        let (out, outcome) = rewrite(r#"{"id":"c","choices":[],"usage":{"total_tokens":3}}"#);
        assert_eq!(out.unwrap(), "");
        assert_eq!(outcome.usage.as_deref(), Some(r#"{"total_tokens":3}"#));
    }

    #[test]
    fn empty_choices_without_usage_is_forwarded() {
        let (out, _) = rewrite(r#"{"choices":[],"prompt_filter_results":[]}"#);
        assert_eq!(
            out.unwrap(),
            format!("{HEAD},\"choices\":[],\"prompt_filter_results\":[]}}\n\n")
        );
    }

    #[test]
    fn what_counts_as_content() {
        let cases = [
            (
                r#"{"role":"assistant","content":"","refusal":null,"tool_calls":null}"#,
                false,
            ),
            (r#"{"content":null,"reasoning_content":"Okay"}"#, true),
            (r#"{"reasoning":"hm"}"#, true),
            (r#"{"refusal":"I'm"}"#, true),
            (
                r#"{"tool_calls":[{"index":0,"function":{"arguments":""}}]}"#,
                true,
            ),
            (r#"{"tool_calls":[]}"#, false),
            (r#"{"function_call":{"name":"f"}}"#, true),
            (r#"{"content":" "}"#, true),
        ];
        for (delta, expected) in cases {
            let (_, outcome) =
                rewrite(&format!(r#"{{"choices":[{{"index":0,"delta":{delta}}}]}}"#));
            assert_eq!(outcome.content_emitted, expected, "{delta}");
        }
    }

    #[test]
    fn the_last_non_null_finish_reason_wins() {
        let (_, outcome) = rewrite(
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"},{"index":1,"delta":{},"finish_reason":null}]}"#,
        );
        assert_eq!(outcome.finish_reason.as_deref(), Some("length"));
    }

    #[test]
    fn garbage_and_errors_write_nothing() {
        for bad in [
            "not json",
            "[1,2]",
            "\"s\"",
            "{\"a\":1",
            "{\"choices\":5}",
            "{\"choices\":[1]}",
            "{} x",
        ] {
            let (out, _) = rewrite(bad);
            assert_eq!(
                out.unwrap_err().code.as_deref(),
                Some("upstream_bad_response"),
                "{bad}"
            );
        }
        for not_utf8 in [
            &b"\xFF{}"[..],
            b"{\"choices\":[],\"x\":\"\xC3\"}",
            b"{\"choices\":[],\"x\":\"\xED\xA0\x80\"}",
            b"{\"choices\":[],\"\xE9\":1}",
        ] {
            let mut out = b"prev".to_vec();
            let mut tally = UsageTally::default();
            let result = rewrite_chunk(
                not_utf8,
                &writer(),
                &mut out,
                &mut Outcome::default(),
                &mut tally,
            );
            assert!(tally.estimate().is_none(), "an unread chunk does not count");
            assert_eq!(
                result.unwrap_err().code.as_deref(),
                Some("upstream_bad_response")
            );
            assert_eq!(out, b"prev");
        }
        let (out, _) =
            rewrite(r#"{"error":{"message":"Overloaded","type":"server_error","code":503}}"#);
        let error = out.unwrap_err();
        assert_eq!(
            (error.message.as_str(), error.code.as_deref()),
            ("Overloaded", Some("503"))
        );
        let (out, _) = rewrite(r#"{"error":"Input validation error","error_type":"validation"}"#);
        assert_eq!(out.unwrap_err().kind, "validation");
    }

    #[test]
    fn a_falsy_error_member_is_just_a_member() {
        let (out, _) = rewrite(r#"{"choices":[],"error":null}"#);
        assert_eq!(
            out.unwrap(),
            format!("{HEAD},\"choices\":[],\"error\":null}}\n\n")
        );
    }

    #[test]
    fn completion_body_is_rewritten_and_usage_kept() {
        let mut outcome = Outcome::default();
        let mut out = Vec::new();
        rewrite_completion(
            r#"{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":"stop"},{"index":1,"message":{"content":"x"},"finish_reason":"length"}],"usage":{"total_tokens":2},"system_fingerprint":"fp"}"#,
            &writer(),
            &mut out,
            &mut outcome,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"id":"chatcmpl-gw","object":"chat.completion","created":1700000000,"model":"alias","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":"stop"},{"index":1,"message":{"content":"x"},"finish_reason":"length"}],"usage":{"total_tokens":2},"system_fingerprint":"fp"}"#
        );
        assert_eq!(outcome.finish_reason.as_deref(), Some("stop"));
        assert_eq!(outcome.usage.as_deref(), Some(r#"{"total_tokens":2}"#));
        assert!(outcome.content_emitted);
    }

    #[test]
    fn chunk_events_translate_every_delta_kind() {
        let mut seen = Vec::new();
        let mut tally = UsageTally::default();
        chunk_events(
            br#"{"system_fingerprint":"fp","choices":[{"index":1,"delta":{"content":"a\nb","reasoning":"r","refusal":"no","tool_calls":[{"index":2,"id":"c","type":"function","function":{"name":"f","arguments":{"k":1}}}],"function_call":{"name":"g","arguments":"{}"}},"logprobs":{"content":[{"token":"a"}]},"finish_reason":"tool_calls"}],"usage":{"total_tokens":1}}"#,
            &mut tally,
            &mut |event| seen.push(format!("{event:?}")),
        )
        .unwrap();
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert_eq!(seen[0], r#"SystemFingerprint("fp")"#);
        assert!(seen[1].contains(r#"content: Some("a\nb")"#), "{}", seen[1]);
        assert!(seen[1].contains(r#"reasoning: Some("r")"#));
        assert!(seen[1].contains(r#"refusal: Some("no")"#));
        assert!(seen[1].contains(r#"index: 2, id: Some("c"), kind: Some("function"), name: Some("f"), arguments: Some("{\"k\":1}")"#));
        assert!(seen[1].contains(r#"FunctionCallDelta { name: Some("g"), arguments: Some("{}") }"#));
        assert!(seen[1].contains(r#"logprobs: Some("[{\"token\":\"a\"}]")"#));
        assert_eq!(seen[2], r#"Finish { choice: 1, reason: "tool_calls" }"#);
        assert_eq!(seen[3], r#"Usage("{\"total_tokens\":1}")"#);
    }

    fn tally_after(chunks: &[&str], prompt_tokens: Option<u64>) -> Option<String> {
        let mut outcome = Outcome::default();
        let mut tally = UsageTally::new(prompt_tokens);
        for chunk in chunks {
            let mut out = Vec::new();
            let _ = rewrite_chunk(
                chunk.as_bytes(),
                &writer(),
                &mut out,
                &mut outcome,
                &mut tally,
            );
        }
        tally.estimate()
    }

    #[test]
    fn the_estimate_counts_chunks_with_output() {
        let role = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
        let token = r#"{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}"#;
        let finish = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
        let last_token =
            r#"{"choices":[{"index":0,"delta":{"content":"."},"finish_reason":"length"}]}"#;
        assert_eq!(
            tally_after(&[role, token, token, finish], Some(12)).as_deref(),
            Some(
                r#"{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14,"estimated":true}"#
            )
        );
        assert_eq!(
            tally_after(&[token, last_token], None).as_deref(),
            Some(r#"{"prompt_tokens":0,"completion_tokens":2,"total_tokens":2,"estimated":true}"#)
        );
        // The prompt was read even if nothing came of it.
        assert_eq!(
            tally_after(&[role], Some(5)).as_deref(),
            Some(r#"{"prompt_tokens":5,"completion_tokens":0,"total_tokens":5,"estimated":true}"#)
        );
        // No choice went out: nothing to estimate.
        let nothing = [r#"{"choices":[]}"#, r#"{"choices":null}"#, "{}", "not json"];
        assert_eq!(tally_after(&nothing, Some(5)), None);
    }

    #[test]
    fn mid_answer_the_estimate_counts_without_parsing_choices() {
        let token = r#"{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}"#;
        // After output, choices are not parsed: a chunk with any choice counts (even an empty
        // delta), one without choices does not.
        let empty_delta = r#"{"choices":[{"index":0,"delta":{},"finish_reason":null}]}"#;
        let no_choices = r#"{"choices": [ ],"x":1}"#;
        assert_eq!(
            tally_after(&[token, empty_delta, no_choices, token], None).as_deref(),
            Some(r#"{"prompt_tokens":0,"completion_tokens":3,"total_tokens":3,"estimated":true}"#)
        );
        assert!(has_elements(Some(b"[ {}]")));
        assert!(!has_elements(Some(b"[\n]")));
        assert!(!has_elements(Some(b"null")));
        assert!(!has_elements(None));
    }

    #[test]
    fn chunk_events_count_exactly_the_chunks_with_output() {
        let mut tally = UsageTally::new(Some(1));
        for chunk in [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}}]}"#,
            r#"{"choices":[],"usage":null}"#,
        ] {
            chunk_events(chunk.as_bytes(), &mut tally, &mut |_| {}).unwrap();
        }
        assert_eq!(
            tally.estimate().as_deref(),
            Some(r#"{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,"estimated":true}"#)
        );
    }

    /// The single-pass scanner and the full parser must copy the same members and note the same
    /// `usage` and `choices`, whatever the spacing and content; where the scanner gives up, the
    /// full parser takes over.
    #[test]
    fn scanner_and_full_parser_agree_member_for_member() {
        let chunks = [
            r#"{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":" fox"},"logprobs":null,"finish_reason":null}]}"#,
            " { \"vendor\" : { \"a\" : [ 1e5 , -0.5 , true , false , null ] } ,\r\n\t\"choices\" : [ ] , \"usage\" : null } ",
            r#"{"choices":[{"delta":{"content":"ünï \"q\" \\ \u00e9 😀"}}],"usage":{"prompt_tokens":1,"cost":9.24e-05},"usage":{"total_tokens":2}}"#,
            r#"{"\u0063hoices":[],"model":"m"}"#,
            r#"{"a":1,"id":"x","b":2,"c" :3,"d":4,"usage":{},"e":[5],"f":{"g":6}}"#,
            r#"{"error":null,"choices":[]}"#,
            r#"{"error":{"message":"x"}}"#,
            "{}",
        ];
        for chunk in chunks {
            let mut parsed = Vec::new();
            let full = parse_chunk_members(chunk, &mut parsed).ok().unwrap();
            let mut scanned = Vec::new();
            match scan_chunk_members(chunk.as_bytes(), &mut scanned) {
                Ok(top) => {
                    assert_eq!(scanned, parsed, "{chunk}");
                    assert_eq!(top.usage, full.usage, "{chunk}");
                    assert_eq!(top.choices, full.choices, "{chunk}");
                }
                // Only escaped keys and `error` members are left to the full parser here.
                Err(GiveUp) => assert!(chunk.contains("\\u0063") || chunk.contains("\"error\"")),
            }
        }
    }

    #[test]
    fn classify_frames() {
        let frame = |event: &'static [u8], data: &'static [u8]| {
            classify(&SseEvent {
                event,
                data,
                unterminated: false,
            })
        };
        assert!(matches!(frame(b"", b" [DONE] "), Frame::Done));
        assert!(matches!(frame(b"", b"  "), Frame::Skip));
        assert!(matches!(frame(b"ping", b"{}"), Frame::Skip));
        assert!(matches!(frame(b"message", b"{}"), Frame::Chunk(b"{}")));
        assert!(matches!(frame(b"error", b"x"), Frame::Error(_)));
        // Not UTF-8: the chunk's JSON scan finds out (see garbage_and_errors_write_nothing).
        assert!(matches!(frame(b"", b"\xFF{}"), Frame::Chunk(_)));
    }
}
