//! The token-event dialect, shared by DeepInfra's native `/v1/inference/{model}` and TGI's
//! `/generate_stream` (PROTOCOLS.md §1.3–1.5, §2.3–2.8): one SSE event per generated token,
//! the last one carrying `generated_text` and/or `details`; or, not streaming, one JSON body.
//!
//! Each non-special token's text goes through the text stage (stop strings, then reasoning
//! tags). What one upstream read released goes out as ONE chunk — content and reasoning side by
//! side in its delta, with the logprob entries of the tokens behind that text — so a read costs
//! one chunk, not one per token. A read that released no text sends nothing. Which chunk a piece
//! lands in depends on how the input was split; the concatenated content and reasoning, the
//! logprob entries, the finish reason, usage and errors do not.
//!
//! With a tool-call format, the text stage also turns call markup into tool-call pieces, which
//! go out in the same chunk as the read's text; a logprob entry goes out with the chunk of the
//! read that released its token's text (for markup: the tool-call chunk, or a later one). When
//! calls went out, an upstream `stop` (or a `[DONE]` without a final event) finishes with
//! `tool_calls`.

mod body;
mod logprobs;
mod usage;
mod wire;

use std::ops::ControlFlow;

use serde_json::value::RawValue;

use crate::dialect::reported::ErrorSource;
use crate::dialect::GenerationOptions;
use crate::error::{self, UpstreamError, BAD_RESPONSE};
use crate::event::{generated_call_id, ChoiceDelta, Event, ToolCallDelta};
use crate::sse::SseEvent;
use crate::text::{Released, ReleasedCall, TextStage};
use logprobs::EntryQueue;
use wire::{finish_reason, EventView, ReportedCounts, TokenView};

/// The state of one token stream.
pub struct TokenReader {
    options: GenerationOptions,
    /// Tool-call ids are derived from it.
    response_id: String,
    text: TextStage,
    /// The text the current read released.
    released: Released,
    /// Logprob entries whose text is still held back.
    entries: EntryQueue,
    /// `[` and the entries released for the next chunk, comma-separated.
    read_logprobs: Vec<u8>,
    /// Token events seen, special ones included: the completion count when none is reported.
    token_events: u64,
}

impl TokenReader {
    pub fn new(options: GenerationOptions, response_id: &str) -> Self {
        TokenReader {
            text: TextStage::new(options.stop.clone(), options.think, options.tools),
            options,
            response_id: response_id.to_owned(),
            released: Released::default(),
            entries: EntryQueue::default(),
            read_logprobs: b"[".to_vec(),
            token_events: 0,
        }
    }

    /// Not streaming, a JSON body: translates the whole answer into events.
    pub fn read_body<F>(&self, text: &str, emit: &mut F) -> Result<(), UpstreamError>
    where
        F: FnMut(Event<'_>),
    {
        body::body_events(text, &self.options, &self.response_id, emit)
    }

    /// Reads one SSE event; `Break` once the answer is over (final event, error, `[DONE]`).
    pub fn on_event<F>(&mut self, event: &SseEvent<'_>, emit: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        match event.event {
            b"" | b"message" => {}
            b"error" => return self.fail(error::from_error_event(event.data), emit),
            _ => return ControlFlow::Continue(()), // not a token event
        }
        let data = event.data.trim_ascii();
        if data.is_empty() {
            return ControlFlow::Continue(());
        }
        if data.starts_with(b"[DONE]") {
            // TGI sends none; tolerated. Before a final event it still ends the answer.
            self.end_without_final(emit)?;
            if self.text.tool_calls() > 0 {
                emit(Event::Finish {
                    choice: 0,
                    reason: "tool_calls",
                })?;
            }
            return emit(Event::Done);
        }
        match self.read_event(data, emit) {
            Ok(flow) => flow,
            // Unreadable data in an event the stream ended inside of was cut off, not garbled.
            Err(error) if event.unterminated && error.code.as_deref() == Some(BAD_RESPONSE) => {
                self.fail(UpstreamError::truncated(), emit)
            }
            Err(error) => self.fail(error, emit),
        }
    }

    fn read_event<F>(&mut self, data: &[u8], emit: &mut F) -> Result<ControlFlow<()>, UpstreamError>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        let text = std::str::from_utf8(data).map_err(|_| UpstreamError::bad_response())?;
        let view: EventView<'_> =
            serde_json::from_str(text).map_err(|_| UpstreamError::bad_response())?;
        if let Some(error) = view.errors().upstream_error(ErrorSource::Stream) {
            return Ok(self.fail(error, emit));
        }
        if let Some(token) = &view.token {
            self.token_events += 1;
            // Special tokens (EOS, end of turn) are never shown; they still count.
            if !token.special {
                self.take(token, view.top_tokens)?;
            }
        }
        if !view.is_final() {
            return Ok(ControlFlow::Continue(()));
        }
        let reason = finish_reason(
            view.details
                .as_ref()
                .and_then(|d| d.finish_reason.as_deref()),
        );
        let usage = usage::usage_json(
            &view.counts(),
            self.token_events,
            self.options.prompt_tokens,
        );
        Ok(self.finish(reason, &usage, emit))
    }

    /// The final event: everything held goes out, then the finish, the usage, the end.
    fn finish<F>(&mut self, reason: &str, usage: &str, emit: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        self.release_all(emit)?;
        let reason = if reason == "stop" && self.text.tool_calls() > 0 {
            "tool_calls"
        } else {
            reason
        };
        emit(Event::Finish { choice: 0, reason })?;
        emit(Event::Usage(usage))?;
        emit(Event::Done)
    }

    fn take(&mut self, token: &TokenView<'_>, top: Option<&RawValue>) -> Result<(), UpstreamError> {
        let start = self.text.pushed();
        self.text.push(&token.text, &mut self.released);
        if self.options.logprobs {
            self.entries
                .push(start, token, top)
                .map_err(|_| UpstreamError::bad_response())?;
        }
        Ok(())
    }

    /// The end of one upstream read: what it released goes out as one delta.
    pub fn end_of_read<F>(&mut self, emit: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        self.flush(false, emit)
    }

    /// The answer ends without a final event (`[DONE]`, an error, a cut-off stream, an abort):
    /// releases every bit of text still held, then reports the usage as far as it is known
    /// (the tokens seen, marked estimated) for accounting.
    pub fn end_without_final<F>(&mut self, emit: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        self.release_all(emit)?;
        let usage = usage::usage_json(
            &ReportedCounts::default(),
            self.token_events,
            self.options.prompt_tokens,
        );
        emit(Event::Usage(&usage))
    }

    fn fail<F>(&mut self, error: UpstreamError, emit: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        self.end_without_final(emit)?;
        emit(Event::Error(error))
    }

    fn release_all<F>(&mut self, emit: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        self.text.finish(&mut self.released);
        self.flush(true, emit)
    }

    /// Sends the released text (and its logprob entries) as one delta. Closing, entries whose
    /// text showed nothing (reasoning tags, say) go out even without text.
    fn flush<F>(&mut self, closing: bool, emit: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        if self.options.logprobs {
            self.entries.release(
                self.text.released(),
                self.text.cut(),
                &mut self.read_logprobs,
            );
        }
        let entries_waiting = self.read_logprobs.len() > 1;
        if self.released.is_empty() && !(closing && entries_waiting) {
            return ControlFlow::Continue(());
        }
        if self.options.logprobs {
            self.read_logprobs.push(b']');
        }
        fn non_empty(text: &str) -> Option<&str> {
            (!text.is_empty()).then_some(text)
        }
        let ids: Vec<String> = (self.released.calls.iter())
            .map(|call| match call.name {
                Some(_) => generated_call_id(&self.response_id, call.index),
                None => String::new(),
            })
            .collect();
        let calls: Vec<ToolCallDelta<'_>> = (self.released.calls.iter().zip(&ids))
            .map(|(call, id)| tool_call_delta(call, id))
            .collect();
        let flow = emit(Event::Delta(ChoiceDelta {
            choice: 0,
            content: non_empty(&self.released.content),
            reasoning: non_empty(&self.released.reasoning),
            tool_calls: &calls,
            // Entries are written from `&str`s and ASCII, so this is always text.
            logprobs: self
                .options
                .logprobs
                .then(|| std::str::from_utf8(&self.read_logprobs).unwrap_or("[]")),
            ..Default::default()
        }));
        self.released.clear();
        self.read_logprobs.truncate(1);
        flow
    }
}

/// The OpenAI piece of a released call: the header (`id`, `type`, `name`, `arguments` so far,
/// maybe `""`) when it started in this release, else an arguments fragment.
pub(crate) fn tool_call_delta<'a>(call: &'a ReleasedCall, id: &'a str) -> ToolCallDelta<'a> {
    let header = call.name.is_some();
    ToolCallDelta {
        index: call.index,
        id: header.then_some(id),
        kind: header.then_some("function"),
        name: call.name.as_deref(),
        arguments: Some(&call.arguments),
    }
}
