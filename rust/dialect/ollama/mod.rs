//! The Ollama dialect: `/api/chat` and `/api/generate` answers (PROTOCOLS.md §3.3–3.5), an
//! NDJSON stream of JSON objects, the last with `"done": true`; or, not streaming, one object.
//!
//! Every line that carries something becomes its own OpenAI chunk, so the output bytes do not
//! depend on how the input was split. Per line: `message.thinking` (`thinking`) →
//! `reasoning_content`, `message.content` (`response`) → `content`, each tool call → one complete
//! `tool_calls` entry; a line with reasoning and something else is split in two chunks,
//! reasoning first (as Ollama's own OpenAI layer does). The done line's own text goes out
//! before the finish, then the usage from `prompt_eval_count`/`eval_count`. An `{"error": ...}`
//! line ends the answer with an OpenAI error event.

mod ending;
mod logprobs;
mod tool_calls;
mod wire;

use std::ops::ControlFlow;

use crate::dialect::reported::ErrorSource;
use crate::dialect::GenerationOptions;
use crate::error::UpstreamError;
use crate::event::{ChoiceDelta, Event, ToolCallDelta};
use crate::ndjson::{NdjsonItem, NdjsonParser};
use tool_calls::ToolCall;
use wire::{count, LineView};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The state of one Ollama answer.
pub struct OllamaReader {
    /// The client asked for logprobs (the only generation option Ollama's answer needs; the
    /// others were applied by Ollama itself).
    logprobs: bool,
    /// The gateway's prompt estimate, for an answer that ends without Ollama's counts.
    prompt_tokens: Option<u64>,
    /// Generated tool-call ids derive from it.
    response_id: String,
    tool_calls_sent: u64,
    /// Lines that carried output: the completion count when Ollama reports none.
    output_lines: u64,
    /// The done line, an error, or the end of input was seen; nothing after it counts.
    ended: bool,
    /// The current line's logprob entries, reused across lines.
    entries: Vec<u8>,
}

impl OllamaReader {
    pub fn new(options: &GenerationOptions, response_id: &str) -> Self {
        OllamaReader {
            logprobs: options.logprobs,
            prompt_tokens: options.prompt_tokens,
            response_id: response_id.to_owned(),
            tool_calls_sent: 0,
            output_lines: 0,
            ended: false,
            entries: Vec::new(),
        }
    }

    /// Reads one NDJSON item of a stream; `Break` once the answer is over.
    pub fn on_item<F>(&mut self, item: NdjsonItem<'_>, emit: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        match item {
            NdjsonItem::TooLarge => self.fail(UpstreamError::event_too_large(), emit),
            NdjsonItem::Line(line) => match parse(line.text) {
                Some(view) => self.on_line(&view, ErrorSource::Stream, false, emit),
                // An unreadable object the input ended inside of was cut off, not garbled (an
                // HTML error page without a newline is still garbage).
                None if line.unterminated && line.text.starts_with(b"{") => {
                    self.fail(UpstreamError::truncated(), emit)
                }
                None => self.fail(UpstreamError::bad_response(), emit),
            },
        }
    }

    /// Not streaming: the whole body, one object (a `stream: false` answer, compact or not) or
    /// NDJSON lines (a stream after all). Always ends the answer: done, or an error.
    pub fn read_body<F>(&mut self, body: &[u8], emit: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        let body = body.strip_prefix(BOM).unwrap_or(body);
        if body.trim_ascii().is_empty() {
            return self.fail(UpstreamError::empty_response(), emit);
        }
        if let Some(view) = parse(body) {
            self.on_line(&view, ErrorSource::Body, true, emit)?;
        } else {
            let mut lines = NdjsonParser::new();
            lines.feed(body, &mut |item| self.on_item(item, emit));
            lines.finish(&mut |item| self.on_item(item, emit));
        }
        if self.ended {
            return ControlFlow::Break(());
        }
        self.fail(UpstreamError::truncated(), emit)
    }

    /// The answer ends without its done line (an error, a cut-off stream, an abort): reports the
    /// usage as far as it is known, marked estimated, for accounting.
    pub fn end_without_final<F>(&mut self, emit: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        self.ended = true;
        let usage = ending::estimated_usage_json(self.prompt_tokens, self.output_lines);
        emit(Event::Usage(&usage))
    }

    fn fail<F>(&mut self, error: UpstreamError, emit: &mut F) -> ControlFlow<()>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        self.end_without_final(emit)?;
        emit(Event::Error(error))
    }

    fn on_line<F>(
        &mut self,
        line: &LineView<'_>,
        source: ErrorSource,
        whole_body: bool,
        emit: &mut F,
    ) -> ControlFlow<()>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        if self.ended {
            return ControlFlow::Break(());
        }
        if let Some(error) = line.error() {
            return self.fail(ending::upstream_error(error, source), emit);
        }
        match self.forward(line, whole_body, emit) {
            Ok(flow) => flow?,
            Err(error) => return self.fail(error, emit),
        }
        if !line.is_done() {
            return ControlFlow::Continue(());
        }
        self.ended = true;
        let reason = ending::finish_reason(line.done_reason.as_deref(), self.tool_calls_sent > 0);
        let usage = ending::usage_json(
            count(line.prompt_eval_count).unwrap_or(0),
            count(line.eval_count),
            self.output_lines,
        );
        emit(Event::Finish { choice: 0, reason })?;
        emit(Event::Usage(&usage))?;
        emit(Event::Done)
    }

    /// Sends what the line carries: one delta, or two when reasoning comes with something else.
    /// A line with nothing (Ollama's empty first chunks, the metrics-only trailer) sends nothing;
    /// a whole body always gives the aggregator a message, `content: ""` when it was empty.
    fn forward<F>(
        &mut self,
        line: &LineView<'_>,
        whole_body: bool,
        emit: &mut F,
    ) -> Result<ControlFlow<()>, UpstreamError>
    where
        F: FnMut(Event<'_>) -> ControlFlow<()>,
    {
        let reasoning = line.thinking();
        let calls_sent = line.tool_calls();
        let content = match line.content() {
            None if whole_body && calls_sent.is_empty() => Some(""),
            content => content,
        };
        if reasoning.is_none() && content.is_none() && calls_sent.is_empty() {
            return Ok(ControlFlow::Continue(()));
        }
        self.output_lines += 1;
        let calls: Vec<ToolCall<'_>> = calls_sent
            .iter()
            .zip(self.tool_calls_sent..)
            .map(|(call, index)| ToolCall::new(call, index, &self.response_id))
            .collect();
        self.tool_calls_sent += calls.len() as u64;
        let deltas: Vec<ToolCallDelta<'_>> = calls.iter().map(ToolCall::delta).collect();
        let logprobs = if self.logprobs {
            self.entries.clear();
            logprobs::write_entries(&mut self.entries, line.logprobs)
                .map_err(|_| UpstreamError::bad_response())?;
            // Entries are written from `&str`s and JSON text, so this is always text.
            Some(std::str::from_utf8(&self.entries).unwrap_or("[]"))
        } else {
            None
        };
        let rest = content.is_some() || !deltas.is_empty();
        if rest {
            if let Some(reasoning) = reasoning {
                // The line's entries go with its last chunk; this one gets none.
                let flow = emit(Event::Delta(ChoiceDelta {
                    reasoning: Some(reasoning),
                    logprobs: logprobs.map(|_| "[]"),
                    ..Default::default()
                }));
                if flow.is_break() {
                    return Ok(flow);
                }
            }
        }
        Ok(emit(Event::Delta(ChoiceDelta {
            content,
            reasoning: reasoning.filter(|_| !rest),
            tool_calls: &deltas,
            logprobs,
            ..Default::default()
        })))
    }
}

/// The line as an answer object; `None` when it is not one (not UTF-8, not JSON, not an
/// object, members of the wrong type).
fn parse(text: &[u8]) -> Option<LineView<'_>> {
    let text = std::str::from_utf8(text).ok()?;
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the reader emitted, as text: `delta <content>|<reasoning>|<calls>|<logprobs>`,
    /// `finish <reason>`, `usage <json>`, `error <code>`, `done`.
    fn events_of(reader: &mut OllamaReader, lines: &[&str]) -> Vec<String> {
        let mut seen = Vec::new();
        let mut emit = |event: Event<'_>| {
            seen.push(match event {
                Event::Delta(d) => format!(
                    "delta {}|{}|{}|{}",
                    d.content.unwrap_or("-"),
                    d.reasoning.unwrap_or("-"),
                    d.tool_calls
                        .iter()
                        .map(|c| format!(
                            "{}:{}:{}:{}",
                            c.index,
                            c.id.unwrap_or("-"),
                            c.name.unwrap_or("-"),
                            c.arguments.unwrap_or("-")
                        ))
                        .collect::<Vec<_>>()
                        .join(","),
                    d.logprobs.unwrap_or("-"),
                ),
                Event::Finish { reason, .. } => format!("finish {reason}"),
                Event::Usage(usage) => format!("usage {usage}"),
                Event::Error(error) => format!("error {}", error.code.unwrap_or_default()),
                Event::Done => "done".to_owned(),
                Event::SystemFingerprint(_) => "fingerprint".to_owned(),
            });
            ControlFlow::Continue(())
        };
        let mut parser = NdjsonParser::new();
        for line in lines {
            parser.feed(line.as_bytes(), &mut |item| reader.on_item(item, &mut emit));
        }
        parser.finish(&mut |item| reader.on_item(item, &mut emit));
        seen
    }

    fn reader() -> OllamaReader {
        OllamaReader::new(&GenerationOptions::default(), "chatcmpl-1")
    }

    #[test]
    fn thinking_content_and_tool_calls() {
        let id = tool_calls::generated_id("chatcmpl-1", 1);
        let seen = events_of(
            &mut reader(),
            &[
                "{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":false}\n",
                "{\"message\":{\"content\":\"\",\"thinking\":\"Hm.\"},\"done\":false}\n",
                "{\"message\":{\"content\":\"Ok.\",\"thinking\":\" Yes\"},\"done\":false}\n",
                "{\"message\":{\"content\":\"\",\"tool_calls\":[{\"id\":\"call_a\",\"function\":{\"index\":0,\"name\":\"f\",\"arguments\":{\"x\": 1}}},{\"function\":{\"index\":0,\"name\":\"g\",\"arguments\":{}}}]},\"done\":false}\n",
                "{\"message\":{\"content\":\"\"},\"done_reason\":\"stop\",\"done\":true,\"prompt_eval_count\":5,\"eval_count\":7}\n",
            ],
        );
        assert_eq!(
            seen,
            vec![
                "delta -|Hm.||-".to_owned(),
                "delta -| Yes||-".to_owned(),
                "delta Ok.|-||-".to_owned(),
                format!("delta -|-|0:call_a:f:{{\"x\":1}},1:{id}:g:{{}}|-"),
                "finish tool_calls".to_owned(),
                "usage {\"prompt_tokens\":5,\"completion_tokens\":7,\"total_tokens\":12}"
                    .to_owned(),
                "done".to_owned(),
            ]
        );
    }

    #[test]
    fn text_on_the_done_line_goes_first_and_later_lines_are_ignored() {
        let seen = events_of(
            &mut reader(),
            &["{\"response\":\"!\",\"done\":true,\"done_reason\":\"length\"}\n{\"response\":\"x\"}\n"],
        );
        assert_eq!(
            seen,
            vec![
                "delta !|-||-",
                "finish length",
                "usage {\"prompt_tokens\":0,\"completion_tokens\":1,\"total_tokens\":1,\"estimated\":true}",
                "done",
            ]
        );
    }

    #[test]
    fn logprobs_go_with_the_last_chunk_of_their_line() {
        let mut reader = OllamaReader::new(
            &GenerationOptions {
                logprobs: true,
                ..Default::default()
            },
            "r",
        );
        let seen = events_of(
            &mut reader,
            &[
                "{\"message\":{\"content\":\"a\",\"thinking\":\"t\"},\"logprobs\":[{\"token\":\"a\",\"logprob\":-0.5}]}\n",
                "{\"message\":{\"content\":\"b\"}}\n",
            ],
        );
        assert_eq!(
            &seen[..3],
            [
                "delta -|t||[]",
                "delta a|-||[{\"token\":\"a\",\"logprob\":-0.5,\"bytes\":[97],\"top_logprobs\":[]}]",
                "delta b|-||[]",
            ]
        );
    }

    #[test]
    fn failures() {
        for (lines, expected) in [
            (
                &["{\"response\":\"can\",\"done\":false}\n{\"error\":\"boom\"}\n"][..],
                "error upstream_stream_error",
            ),
            (
                &["{\"error\":\"model is overloaded\"}"],
                "error upstream_overloaded",
            ),
            (
                &["{\"response\":\"a\"}\n"],
                "error upstream_stream_truncated",
            ),
            (
                &["{\"response\":\"a\"}\n{\"resp"],
                "error upstream_stream_truncated",
            ),
            (
                &["{\"response\":\"a\"}\n{\"resp\n"],
                "error upstream_bad_response",
            ),
            (&["[1]\n"], "error upstream_bad_response"),
            (
                &["{\"response\":\"a\"}\n<html>"],
                "error upstream_bad_response",
            ),
            (
                &["{\"message\":{\"tool_calls\":[{}]}}\n"],
                "error upstream_bad_response",
            ),
        ] {
            let mut reader = reader();
            let mut seen = events_of(&mut reader, lines);
            if !reader.ended {
                // The end of input without a done line: what the transcoder does.
                let _ = reader.fail(UpstreamError::truncated(), &mut |event| {
                    if let Event::Error(e) = event {
                        seen.push(format!("error {}", e.code.unwrap_or_default()));
                    }
                    ControlFlow::Continue(())
                });
            }
            assert_eq!(seen.last().unwrap(), expected, "{lines:?}");
        }
    }
}
