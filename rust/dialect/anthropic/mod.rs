//! The Anthropic Messages dialect: `/v1/messages` answers (PROTOCOLS.md §4), an SSE stream of
//! named events (`message_start`, then per content block `content_block_start` → deltas →
//! `content_block_stop`, then `message_delta` → `message_stop`; `ping` anywhere); or, not
//! streaming, one `Message` body.
//!
//! Every delta that shows something becomes its own OpenAI chunk, so the output bytes do not
//! depend on how the input was split: `text_delta` → `content`, `thinking_delta` →
//! `reasoning_content`, a `tool_use` block start → the call's header (`id`, `type`, `name`,
//! `arguments: ""`), each non-empty `input_json_delta` → an `arguments` fragment, and a tool
//! block that streamed none → `"{}"` (or the block start's own non-empty `input`) when it stops.
//! `signature_delta`, `citations_delta`, `redacted_thinking` and server-tool blocks show nothing.
//! The role goes out with the first delta (no chunk for `message_start`). `message_delta`
//! gives the stop reason and the final counts; `message_stop` sends the finish and the usage.
//! An `error` event ends the answer with an OpenAI error event.

mod body;
mod ending;
mod tool_calls;
mod usage;
mod wire;

use std::ops::ControlFlow;

use crate::dialect::reported::ErrorSource;
use crate::dialect::GenerationOptions;
use crate::error::{UpstreamError, BAD_RESPONSE};
use crate::event::{ChoiceDelta, Event, ToolCallDelta};
use crate::sse::{SseEvent, SseItem};
use tool_calls::{call_id, Pending, ToolBlocks};
use usage::UsageSoFar;
use wire::{non_empty, EventView};

/// The state of one Anthropic answer.
pub struct AnthropicReader {
    /// The gateway's prompt estimate, for an answer that ends without Anthropic's counts.
    prompt_tokens: Option<u64>,
    /// Ids for tool blocks without one derive from it.
    response_id: String,
    usage: UsageSoFar,
    /// The mapped `stop_reason` of the last `message_delta` that had one.
    finish_reason: Option<&'static str>,
    tools: ToolBlocks,
    /// Deltas that showed something: the completion count when Anthropic reports none.
    pieces_sent: u64,
    /// `message_stop`, an error, or the end of input was seen; nothing after it counts.
    ended: bool,
}

impl AnthropicReader {
    /// Only `prompt_tokens` of the options applies: Anthropic applied the others itself.
    pub fn new(options: &GenerationOptions, response_id: &str) -> Self {
        AnthropicReader {
            prompt_tokens: options.prompt_tokens,
            response_id: response_id.to_owned(),
            usage: UsageSoFar::default(),
            finish_reason: None,
            tools: ToolBlocks::default(),
            pieces_sent: 0,
            ended: false,
        }
    }

    /// Reads one SSE item of a stream; `Break` once the answer is over.
    pub fn on_item<F>(&mut self, item: SseItem<'_>, emit: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        if self.ended {
            return ControlFlow::Break(());
        }
        let event = match item {
            SseItem::TooLarge => return self.fail(UpstreamError::event_too_large(), emit),
            SseItem::Event(event) => event,
        };
        match self.on_event(&event, emit) {
            Ok(flow) => flow,
            // Unreadable data in an event the stream ended inside of was cut off, not garbled.
            Err(error) if event.unterminated && error.code.as_deref() == Some(BAD_RESPONSE) => {
                self.fail(UpstreamError::truncated(), emit)
            }
            Err(error) => self.fail(error, emit),
        }
    }

    /// Not streaming, a JSON body: translates the whole `Message` into events.
    pub fn read_body<F>(&self, text: &str, emit: &mut F) -> Result<(), UpstreamError>
    where
        F: FnMut(Event<'_>),
    {
        body::body_events(text, &self.response_id, self.prompt_tokens, emit)
    }

    /// The answer ends without `message_stop` (a cut-off stream, an abort). After a
    /// `message_delta` with a stop reason the answer was complete: its finish goes out. Either
    /// way the usage as far as it is known is reported, for accounting.
    pub fn end_without_final<F>(&mut self, emit: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        if self.ended {
            return ControlFlow::Continue(());
        }
        self.ended = true;
        if let Some(reason) = self.finish_reason {
            self.stop_open_tools(emit)?;
            emit(Event::Finish { choice: 0, reason })?;
        }
        self.report_usage(emit)
    }

    fn on_event<F>(
        &mut self,
        event: &SseEvent<'_>,
        emit: &mut F,
    ) -> Result<ControlFlow<()>, UpstreamError>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        // The `event:` line names the event; without one, the data's own `type` does.
        let named = match event.event {
            b"" | b"message" => None,
            b"error" => return Ok(self.fail(ending::event_error(event.data), emit)),
            b"ping" => return Ok(ControlFlow::Continue(())),
            name => Some(name),
        };
        let data = event.data.trim_ascii();
        if data.is_empty() {
            return Ok(ControlFlow::Continue(()));
        }
        if data == b"[DONE]" {
            // Anthropic sends none; an OpenAI-minded proxy might. It ends the message.
            return Ok(self.finish(emit));
        }
        let text = std::str::from_utf8(data).map_err(|_| UpstreamError::bad_response())?;
        let view: EventView<'_> =
            serde_json::from_str(text).map_err(|_| UpstreamError::bad_response())?;
        let kind = named.unwrap_or_else(|| view.kind.as_deref().unwrap_or("").as_bytes());
        if kind == b"error" || view.kind.as_deref() == Some("error") {
            let error = ending::upstream_error(view.error, ErrorSource::Stream);
            return Ok(self.fail(error, emit));
        }
        let block = view.index.unwrap_or(0);
        Ok(match kind {
            b"message_start" => {
                if let Some(usage) = view.message.as_ref().and_then(|m| m.usage.as_ref()) {
                    self.usage.take(usage, false);
                }
                ControlFlow::Continue(())
            }
            b"content_block_start" => match &view.content_block {
                Some(start) => match start.kind.as_ref() {
                    "text" => self.show_text(non_empty(&start.text), None, emit),
                    "thinking" => self.show_text(None, non_empty(&start.thinking), emit),
                    "tool_use" => {
                        let call = self.tools.start(block, start.input);
                        let id = call_id(start.id.as_deref(), &self.response_id, call);
                        let header = [ToolCallDelta {
                            index: call,
                            id: Some(&id),
                            kind: Some("function"),
                            name: Some(start.name.as_deref().unwrap_or("")),
                            arguments: Some(""),
                        }];
                        self.send_calls(&header, emit)
                    }
                    _ => ControlFlow::Continue(()),
                },
                None => ControlFlow::Continue(()),
            },
            b"content_block_delta" => match &view.delta {
                Some(delta) => match delta.kind.as_deref() {
                    Some("text_delta") => self.show_text(non_empty(&delta.text), None, emit),
                    Some("thinking_delta") => {
                        self.show_text(None, non_empty(&delta.thinking), emit)
                    }
                    Some("input_json_delta") => match non_empty(&delta.partial_json) {
                        Some(fragment) => match self.tools.fragment(block) {
                            Some(call) => self.send_calls(
                                &[ToolCallDelta {
                                    index: call,
                                    arguments: Some(fragment),
                                    ..Default::default()
                                }],
                                emit,
                            ),
                            None => ControlFlow::Continue(()),
                        },
                        None => ControlFlow::Continue(()),
                    },
                    // signature_delta, citations_delta, anything newer: nothing to show.
                    _ => ControlFlow::Continue(()),
                },
                None => ControlFlow::Continue(()),
            },
            b"content_block_stop" => match self.tools.stop(block) {
                Some(pending) => self.send_pending(&pending, emit),
                None => ControlFlow::Continue(()),
            },
            b"message_delta" => {
                if let Some(reason) = view.delta.as_ref().and_then(|d| d.stop_reason.as_deref()) {
                    self.finish_reason = Some(ending::finish_reason(reason));
                }
                if let Some(usage) = &view.usage {
                    self.usage.take(usage, true);
                }
                ControlFlow::Continue(())
            }
            b"message_stop" => self.finish(emit),
            // ping without an event line, and event types newer than this code.
            _ => ControlFlow::Continue(()),
        })
    }

    /// `message_stop`: tool calls left open get their arguments, then the finish (only when
    /// Anthropic named a stop reason; the transcoder writes `stop` otherwise), the usage, the
    /// end.
    fn finish<F>(&mut self, emit: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        self.ended = true;
        self.stop_open_tools(emit)?;
        if let Some(reason) = self.finish_reason {
            emit(Event::Finish { choice: 0, reason })?;
        }
        self.report_usage(emit)?;
        emit(Event::Done)
    }

    fn fail<F>(&mut self, error: UpstreamError, emit: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        self.ended = true;
        self.report_usage(emit)?;
        emit(Event::Error(error))
    }

    fn report_usage<F>(&mut self, emit: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        let usage = self.usage.json(self.pieces_sent, self.prompt_tokens);
        emit(Event::Usage(&usage))
    }

    fn show_text<F>(
        &mut self,
        content: Option<&str>,
        reasoning: Option<&str>,
        emit: &mut F,
    ) -> ControlFlow<()>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        if content.is_none() && reasoning.is_none() {
            return ControlFlow::Continue(());
        }
        self.pieces_sent += 1;
        emit(Event::Delta(ChoiceDelta {
            content,
            reasoning,
            ..Default::default()
        }))
    }

    fn send_calls<F>(&mut self, calls: &[ToolCallDelta<'_>], emit: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        self.pieces_sent += 1;
        emit(Event::Delta(ChoiceDelta {
            tool_calls: calls,
            ..Default::default()
        }))
    }

    fn send_pending<F>(&mut self, pending: &Pending, emit: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        self.send_calls(
            &[ToolCallDelta {
                index: pending.call,
                arguments: Some(&pending.arguments),
                ..Default::default()
            }],
            emit,
        )
    }

    fn stop_open_tools<F>(&mut self, emit: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        for pending in self.tools.stop_all() {
            self.send_pending(&pending, emit)?;
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests;
