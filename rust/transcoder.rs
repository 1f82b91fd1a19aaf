//! `StreamTranscoder`: one per response. Upstream bytes in, OpenAI bytes out, in any split.
//!
//! Streaming, `feed` returns the complete OpenAI SSE frames the input finished and `finish`
//! the closing frames; `data: [DONE]` goes out exactly once whatever happens. Not streaming,
//! everything is read first and `finish` returns one JSON body: the upstream's own completion
//! rewritten, or a stream merged into one, or the error envelope.
//!
//! Upstream streams are SSE, except Ollama's NDJSON.

use std::ops::ControlFlow;

use crate::aggregate::Aggregator;
use crate::dialect::anthropic::AnthropicReader;
use crate::dialect::ollama::OllamaReader;
use crate::dialect::tokens::TokenReader;
use crate::dialect::{openai, Dialect, GenerationOptions};
use crate::error::{UpstreamError, BAD_RESPONSE};
use crate::event::Event;
use crate::ndjson::{NdjsonItem, NdjsonParser};
use crate::outcome::Outcome;
use crate::sse::{SseItem, SseParser};
use crate::writer::ChunkWriter;

/// How the upstream's bytes are being framed.
enum Input {
    Sse(SseParser),
    /// Ollama's stream: one JSON object per line.
    Ndjson(NdjsonParser),
    /// Not streaming, and not yet known whether the body is one JSON document or a stream.
    Sniffing(Vec<u8>),
    Json(Vec<u8>),
}

/// The dialect and whatever it keeps between upstream reads.
enum Reader {
    /// Counts what it reads, for a usage estimate when the upstream reports none.
    OpenAi(openai::UsageTally),
    Tokens(Box<TokenReader>),
    Ollama(Box<OllamaReader>),
    Anthropic(Box<AnthropicReader>),
}

pub struct StreamTranscoder {
    reader: Reader,
    input: Input,
    response: Response,
}

/// Everything but the framing, so a frame parser can borrow its buffers while the response
/// state is updated.
struct Response {
    stream: bool,
    include_usage: bool,
    writer: ChunkWriter,
    outcome: Outcome,
    aggregator: Aggregator,
    /// No further upstream input counts: `[DONE]`, an error, or the end of input was seen.
    closed: bool,
    /// The closing output has been produced.
    done: bool,
    /// The input had at least one SSE line (tells a non-streaming stream body from garbage).
    looked_like_sse: bool,
    /// The output of the current call, reused across calls.
    out: Vec<u8>,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl StreamTranscoder {
    pub fn new(
        dialect: &str,
        model: &str,
        response_id: &str,
        created: i64,
        stream: bool,
        include_usage: bool,
        options: GenerationOptions,
    ) -> Result<Self, String> {
        let dialect = Dialect::from_name(dialect)?;
        let input = match (dialect, stream) {
            (Dialect::Ollama, true) => Input::Ndjson(NdjsonParser::new()),
            // One object or NDJSON lines, both starting with `{`: nothing to sniff.
            (Dialect::Ollama, false) => Input::Json(Vec::new()),
            (_, true) => Input::Sse(SseParser::new()),
            (_, false) => Input::Sniffing(Vec::new()),
        };
        let reader = match dialect {
            Dialect::OpenAi => Reader::OpenAi(openai::UsageTally::new(options.prompt_tokens)),
            Dialect::Tokens => Reader::Tokens(Box::new(TokenReader::new(options, response_id))),
            Dialect::Ollama => Reader::Ollama(Box::new(OllamaReader::new(&options, response_id))),
            Dialect::Anthropic => {
                Reader::Anthropic(Box::new(AnthropicReader::new(&options, response_id)))
            }
        };
        Ok(StreamTranscoder {
            reader,
            input,
            response: Response {
                stream,
                include_usage,
                writer: ChunkWriter::new(response_id, created, model),
                outcome: Outcome::default(),
                aggregator: Aggregator::new(),
                closed: false,
                done: false,
                looked_like_sse: false,
                out: Vec::with_capacity(if stream { 4096 } else { 0 }),
            },
        })
    }

    /// Reads `chunk`; returns the OpenAI frames it completed (always empty when not streaming).
    pub fn feed(&mut self, chunk: &[u8]) -> &[u8] {
        self.response.out.clear();
        if self.response.closed || self.response.done {
            return &[];
        }
        let reader = &mut self.reader;
        let response = &mut self.response;
        match &mut self.input {
            Input::Sse(parser) => {
                parser.feed(chunk, &mut |item| response.on_sse(reader, item));
                response.end_of_read(reader);
            }
            Input::Ndjson(parser) => {
                parser.feed(chunk, &mut |item| response.on_ndjson(reader, item));
            }
            Input::Json(body) => body.extend_from_slice(chunk),
            Input::Sniffing(head) => {
                head.extend_from_slice(chunk);
                match sniff(head) {
                    None => {}
                    Some(true) => self.input = Input::Json(std::mem::take(head)),
                    Some(false) => {
                        let head = std::mem::take(head);
                        let mut parser = SseParser::new();
                        parser.feed(&head, &mut |item| response.on_sse(reader, item));
                        response.end_of_read(reader);
                        self.input = Input::Sse(parser);
                    }
                }
            }
        }
        &self.response.out
    }

    /// The upstream has no more bytes; returns the closing output (empty if already produced).
    pub fn finish(&mut self) -> &[u8] {
        self.response.out.clear();
        self.finish_into();
        &self.response.out
    }

    /// Ends the response now with `error` (the upstream went silent, the connection broke...),
    /// unless it already ended. Returns the closing output, like `finish`.
    pub fn abort(&mut self, error: UpstreamError) -> &[u8] {
        self.response.out.clear();
        if !self.response.closed {
            self.response.end_without_final(&mut self.reader);
            self.response.fail(error);
        }
        self.finish_into();
        &self.response.out
    }

    fn finish_into(&mut self) {
        if self.response.done {
            return;
        }
        let reader = &mut self.reader;
        let response = &mut self.response;
        match &mut self.input {
            Input::Sse(parser) => {
                parser.finish(&mut |item| response.on_sse(reader, item));
                response.looked_like_sse = parser.saw_sse_line();
                if !response.closed {
                    response.end_without_final(reader);
                }
            }
            Input::Ndjson(parser) => {
                parser.finish(&mut |item| response.on_ndjson(reader, item));
                if !response.closed {
                    response.end_without_final(reader);
                }
            }
            Input::Sniffing(_) => {
                if !response.closed {
                    response.fail(UpstreamError::empty_response());
                }
            }
            Input::Json(body) => {
                if !response.closed {
                    let body = std::mem::take(body);
                    response.on_json_body(reader, &body);
                }
            }
        }
        response.end_of_input();
    }

    pub fn usage(&self) -> Option<&str> {
        self.response.outcome.usage.as_deref()
    }

    pub fn finish_reason(&self) -> Option<&str> {
        self.response.outcome.finish_reason.as_deref()
    }

    pub fn content_emitted(&self) -> bool {
        self.response.outcome.content_emitted
    }

    pub fn error(&self) -> Option<&UpstreamError> {
        self.response.outcome.error.as_ref()
    }

    pub fn done(&self) -> bool {
        self.response.done
    }
}

/// `Some(true)` for a JSON body (an object, or an array: TGI's compat route), `Some(false)` for
/// a stream, `None` while only a BOM prefix or whitespace has arrived.
fn sniff(head: &[u8]) -> Option<bool> {
    if head.len() < BOM.len() && BOM.starts_with(head) {
        return None;
    }
    let body = head.strip_prefix(BOM).unwrap_or(head);
    body.iter()
        .find(|b| !b.is_ascii_whitespace())
        .map(|&b| b == b'{' || b == b'[')
}

impl Response {
    fn on_sse(&mut self, reader: &mut Reader, item: SseItem<'_>) -> ControlFlow<()> {
        if self.closed {
            return ControlFlow::Break(());
        }
        match reader {
            Reader::OpenAi(tally) => self.on_openai_sse(tally, item),
            Reader::Tokens(tokens) => match item {
                SseItem::TooLarge => {
                    tokens.end_without_final(&mut |event| self.apply(event))?;
                    self.apply(Event::Error(UpstreamError::event_too_large()))
                }
                SseItem::Event(event) => tokens.on_event(&event, &mut |event| self.apply(event)),
            },
            // Ollama answers are framed as NDJSON, never SSE.
            Reader::Ollama(_) => ControlFlow::Break(()),
            Reader::Anthropic(anthropic) => anthropic.on_item(item, &mut |event| self.apply(event)),
        }
    }

    fn on_ndjson(&mut self, reader: &mut Reader, item: NdjsonItem<'_>) -> ControlFlow<()> {
        match reader {
            Reader::Ollama(ollama) if !self.closed => {
                ollama.on_item(item, &mut |event| self.apply(event))
            }
            // Closed, or (never) a dialect that is not framed as NDJSON.
            _ => ControlFlow::Break(()),
        }
    }

    fn on_openai_sse(
        &mut self,
        tally: &mut openai::UsageTally,
        item: SseItem<'_>,
    ) -> ControlFlow<()> {
        let event = match item {
            SseItem::TooLarge => {
                return self
                    .end_openai_answer(tally, Event::Error(UpstreamError::event_too_large()))
            }
            SseItem::Event(event) => event,
        };
        // Unreadable data in an event the stream ended inside of was cut off, not garbled.
        let failed = |error: UpstreamError| {
            if event.unterminated && error.code.as_deref() == Some(BAD_RESPONSE) {
                UpstreamError::truncated()
            } else {
                error
            }
        };
        let ending = match openai::classify(&event) {
            openai::Frame::Skip => return ControlFlow::Continue(()),
            openai::Frame::Done => Event::Done,
            openai::Frame::Error(error) => Event::Error(failed(error)),
            openai::Frame::Chunk(text) if self.stream => {
                match openai::rewrite_chunk(
                    text,
                    &self.writer,
                    &mut self.out,
                    &mut self.outcome,
                    tally,
                ) {
                    Ok(()) => return ControlFlow::Continue(()),
                    Err(error) => Event::Error(failed(error)),
                }
            }
            openai::Frame::Chunk(text) => {
                let mut flow = ControlFlow::Continue(());
                let translated =
                    openai::chunk_events(text, tally, &mut |event| flow = self.apply(event));
                match translated {
                    Ok(()) => return flow,
                    Err(error) => Event::Error(failed(error)),
                }
            }
        };
        self.end_openai_answer(tally, ending)
    }

    /// An OpenAI answer ends (`[DONE]` or an error): the usage estimate goes in first, so the
    /// closing usage chunk carries it.
    fn end_openai_answer(
        &mut self,
        tally: &openai::UsageTally,
        ending: Event<'_>,
    ) -> ControlFlow<()> {
        self.estimate_missing_usage(tally);
        self.apply(ending)
    }

    /// Usage is what the upstream reported; when it reported none, the gateway's estimate.
    fn estimate_missing_usage(&mut self, tally: &openai::UsageTally) {
        if self.outcome.usage.is_none() {
            self.outcome.usage = tally.estimate();
        }
    }

    fn on_json_body(&mut self, reader: &mut Reader, body: &[u8]) {
        if let Reader::Ollama(ollama) = reader {
            // Translated into events for the aggregator, written at the end of input; the
            // reader always ends the answer (done, or an error).
            let _ = ollama.read_body(body, &mut |event| self.apply(event));
            return;
        }
        let body = body.strip_prefix(BOM).unwrap_or(body);
        let Ok(text) = std::str::from_utf8(body) else {
            return self.fail(UpstreamError::bad_response());
        };
        match reader {
            Reader::OpenAi(_) => {
                match openai::rewrite_completion(
                    text,
                    &self.writer,
                    &mut self.out,
                    &mut self.outcome,
                ) {
                    Ok(()) => {
                        self.closed = true;
                        self.done = true;
                    }
                    Err(error) => self.fail(error),
                }
            }
            Reader::Ollama(_) => {} // read above, bytes and all
            // Translated into events for the aggregator, written at the end of input.
            Reader::Anthropic(anthropic) => {
                match anthropic.read_body(text, &mut |event| {
                    let _ = self.apply(event);
                }) {
                    Ok(()) => self.close(),
                    Err(error) => self.fail(error),
                }
            }
            // Translated into events for the aggregator, written at the end of input.
            Reader::Tokens(tokens) => {
                match tokens.read_body(text, &mut |event| {
                    let _ = self.apply(event);
                }) {
                    Ok(()) => self.close(),
                    Err(error) => self.fail(error),
                }
            }
        }
    }

    /// The end of one upstream read: a token stream sends what the read released.
    fn end_of_read(&mut self, reader: &mut Reader) {
        if let Reader::Tokens(tokens) = reader {
            if !self.closed {
                let _ = tokens.end_of_read(&mut |event| self.apply(event));
            }
        }
    }

    /// The response is ending without the upstream's final word (cut off, aborted): a token
    /// stream releases the text it still holds, so nothing generated is lost; every dialect
    /// reports the usage as far as it is known (an OpenAI stream only if the upstream sent none).
    fn end_without_final(&mut self, reader: &mut Reader) {
        match reader {
            Reader::Tokens(tokens) => {
                let _ = tokens.end_without_final(&mut |event| self.apply(event));
            }
            Reader::Ollama(ollama) => {
                let _ = ollama.end_without_final(&mut |event| self.apply(event));
            }
            Reader::Anthropic(anthropic) => {
                let _ = anthropic.end_without_final(&mut |event| self.apply(event));
            }
            Reader::OpenAi(tally) => self.estimate_missing_usage(tally),
        }
    }

    /// Applies one internal event; `Break` once the response is closed.
    fn apply(&mut self, event: Event<'_>) -> ControlFlow<()> {
        if self.closed {
            return ControlFlow::Break(());
        }
        match event {
            Event::Delta(delta) => {
                if delta.carries_output() {
                    self.outcome.content_emitted = true;
                }
                if self.stream {
                    self.writer.write_delta(&mut self.out, &delta);
                } else {
                    self.aggregator.delta(&delta);
                }
            }
            Event::Finish { choice, reason } => {
                self.outcome.set_finish_reason(reason);
                if self.stream {
                    self.writer.write_finish(&mut self.out, choice, reason);
                } else {
                    self.aggregator.finish(choice, reason);
                }
            }
            Event::Usage(usage) => self.outcome.set_usage(usage),
            Event::SystemFingerprint(fingerprint) => {
                if !self.stream {
                    self.aggregator.system_fingerprint(fingerprint);
                }
            }
            Event::Error(error) => {
                self.fail(error);
                return ControlFlow::Break(());
            }
            Event::Done => {
                self.close();
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    /// The upstream finished cleanly.
    fn close(&mut self) {
        self.closed = true;
        if !self.stream {
            return; // the body is written at the end of input
        }
        if self.outcome.finish_reason.is_none() {
            self.writer.write_finish(&mut self.out, 0, "stop");
        }
        if self.include_usage {
            if let Some(usage) = &self.outcome.usage {
                self.writer.write_usage(&mut self.out, usage);
            }
        }
        ChunkWriter::write_done(&mut self.out);
        self.done = true;
    }

    /// The response ends with `error`.
    fn fail(&mut self, error: UpstreamError) {
        self.closed = true;
        if self.stream {
            ChunkWriter::write_error(&mut self.out, &error);
            ChunkWriter::write_done(&mut self.out);
            self.done = true;
        }
        self.outcome.error = Some(error);
    }

    /// No more input: close whatever is still open and produce the closing output.
    fn end_of_input(&mut self) {
        if !self.closed {
            // A finish reason without `[DONE]` is a complete answer; neither is a cut-off one.
            // A body read whole that was neither JSON nor had a single event (an HTML error
            // page from a proxy, say) was never a stream.
            if !self.stream && !self.looked_like_sse {
                self.fail(UpstreamError::bad_response());
            } else if self.outcome.finish_reason.is_some() {
                self.close();
            } else {
                self.fail(UpstreamError::truncated());
            }
        }
        if self.done {
            return;
        }
        // Not streaming, and the body was not a rewritten JSON completion.
        match &self.outcome.error {
            Some(error) => error.write_envelope(&mut self.out),
            None => self.aggregator.write(
                &self.writer,
                self.outcome.usage.as_deref(),
                "stop",
                &mut self.out,
            ),
        }
        self.done = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT_STREAM: &str = concat!(
        "data: {\"id\":\"chatcmpl-A\",\"object\":\"chat.completion.chunk\",\"created\":1727346168,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_5050236cbd\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-A\",\"object\":\"chat.completion.chunk\",\"created\":1727346168,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_5050236cbd\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"I'm\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-A\",\"object\":\"chat.completion.chunk\",\"created\":1727346168,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_5050236cbd\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"chatcmpl-A\",\"object\":\"chat.completion.chunk\",\"created\":1727346168,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_5050236cbd\",\"choices\":[],\"usage\":{\"prompt_tokens\":14,\"completion_tokens\":30,\"total_tokens\":44,\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n",
        "data: [DONE]\n\n",
    );

    fn transcoder(stream: bool, include_usage: bool) -> StreamTranscoder {
        openai_transcoder(stream, include_usage, GenerationOptions::default())
    }

    fn openai_transcoder(
        stream: bool,
        include_usage: bool,
        options: GenerationOptions,
    ) -> StreamTranscoder {
        StreamTranscoder::new(
            "openai",
            "alias",
            "chatcmpl-gw",
            7,
            stream,
            include_usage,
            options,
        )
        .unwrap()
    }

    fn run(t: &mut StreamTranscoder, pieces: &[&[u8]]) -> String {
        let mut out = Vec::new();
        for piece in pieces {
            out.extend_from_slice(t.feed(piece));
        }
        out.extend_from_slice(t.finish());
        String::from_utf8(out).unwrap()
    }

    /// Whole, every two-way split, byte by byte: the same output and the same outcome.
    fn run_every_split(
        input: &[u8],
        stream: bool,
        include_usage: bool,
    ) -> (String, StreamTranscoder) {
        let mut reference = transcoder(stream, include_usage);
        let whole = run(&mut reference, &[input]);
        for cut in 0..=input.len() {
            let mut t = transcoder(stream, include_usage);
            assert_eq!(
                run(&mut t, &[&input[..cut], &input[cut..]]),
                whole,
                "split at {cut}"
            );
            assert_eq!(t.usage(), reference.usage());
            assert_eq!(t.finish_reason(), reference.finish_reason());
            assert_eq!(t.content_emitted(), reference.content_emitted());
            assert_eq!(t.error(), reference.error());
        }
        let mut t = transcoder(stream, include_usage);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run(&mut t, &bytes), whole, "byte by byte");
        (whole, reference)
    }

    #[test]
    fn text_stream_is_rewritten_exactly() {
        let (out, t) = run_every_split(TEXT_STREAM.as_bytes(), true, true);
        let head = "data: {\"id\":\"chatcmpl-gw\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"alias\"";
        let expected = [
            format!("{head},\"system_fingerprint\":\"fp_5050236cbd\",\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"),
            format!("{head},\"system_fingerprint\":\"fp_5050236cbd\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"I'm\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"),
            format!("{head},\"system_fingerprint\":\"fp_5050236cbd\",\"choices\":[{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}]}}\n\n"),
            format!("{head},\"choices\":[],\"usage\":{{\"prompt_tokens\":14,\"completion_tokens\":30,\"total_tokens\":44,\"completion_tokens_details\":{{\"reasoning_tokens\":0}}}}}}\n\n"),
            "data: [DONE]\n\n".to_owned(),
        ]
        .concat();
        assert_eq!(out, expected);
        assert_eq!(t.finish_reason(), Some("stop"));
        assert!(t.content_emitted() && t.done() && t.error().is_none());
    }

    #[test]
    fn usage_chunk_only_when_asked() {
        let (out, t) = run_every_split(TEXT_STREAM.as_bytes(), true, false);
        assert!(!out.contains("usage"));
        assert!(t.usage().unwrap().contains("\"total_tokens\":44"));
    }

    #[test]
    fn done_without_finish_reason_synthesizes_one() {
        let input = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]\n\n";
        let (out, t) = run_every_split(input, true, false);
        assert!(out.ends_with(
            "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"
        ));
        assert_eq!(t.finish_reason(), None, "the upstream reported none");
    }

    #[test]
    fn truncated_stream_ends_with_an_error_and_one_done() {
        let input = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n";
        let (out, t) = run_every_split(input, true, false);
        assert_eq!(out.matches("data: [DONE]").count(), 1);
        assert!(out.contains("\"code\":\"upstream_stream_truncated\""));
        assert_eq!(
            t.error().unwrap().code.as_deref(),
            Some("upstream_stream_truncated")
        );
    }

    #[test]
    fn a_stream_cut_inside_an_event_is_truncated_not_garbage() {
        let (out, t) = run_every_split(&TEXT_STREAM.as_bytes()[..300], true, false);
        assert_eq!(out.matches("data: [DONE]").count(), 1);
        assert_eq!(
            t.error().unwrap().code.as_deref(),
            Some("upstream_stream_truncated")
        );
        // Garbage that was followed by its blank line is still garbage.
        let (_, t) = run_every_split(b"data: {\"cho\n\n", true, false);
        assert_eq!(
            t.error().unwrap().code.as_deref(),
            Some("upstream_bad_response")
        );
    }

    #[test]
    fn finish_reason_without_done_is_complete() {
        let input =
            b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}";
        let (out, t) = run_every_split(input, true, false);
        assert!(out.ends_with("\"finish_reason\":\"length\"}]}\n\ndata: [DONE]\n\n"));
        assert!(t.error().is_none());
    }

    #[test]
    fn nothing_counts_after_done_or_an_error() {
        let mut t = transcoder(true, false);
        let out = run(
            &mut t,
            &[
                b"data: [DONE]\n\ndata: {\"choices\":[]}\n\n",
                b"data: x\n\n",
            ],
        );
        assert_eq!(out.matches("data: ").count(), 2, "{out}");
        assert!(t.done());
        assert_eq!(t.feed(b"data: [DONE]\n\n"), b"");
        assert_eq!(t.finish(), b"");

        let mut t = transcoder(true, false);
        let out = run(
            &mut t,
            &[b"data: {\"error\":\"boom\"}\n\ndata: {\"choices\":[]}\n\n"],
        );
        assert_eq!(out.matches("data: ").count(), 2, "{out}");
        assert!(
            out.starts_with("data: {\"error\":{\"message\":\"boom\",\"type\":\"upstream_error\"")
        );
    }

    #[test]
    fn abort_closes_once() {
        let mut t = transcoder(true, false);
        t.feed(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n");
        let out = t
            .abort(UpstreamError::new(
                "went quiet",
                "upstream_error",
                Some("upstream_idle_timeout"),
            ))
            .to_vec();
        assert!(out.starts_with(b"data: {\"error\":{\"message\":\"went quiet\""));
        assert!(out.ends_with(b"data: [DONE]\n\n"));
        assert_eq!(t.finish(), b"");
        assert_eq!(t.abort(UpstreamError::truncated()), b"");
        assert_eq!(t.error().unwrap().message, "went quiet");
    }

    /// TEXT_STREAM as a server that never reports usage sends it.
    fn without_usage_chunk() -> String {
        let usage_event = TEXT_STREAM.split("\n\n").nth(3).unwrap();
        assert!(usage_event.contains("\"usage\""));
        TEXT_STREAM.replace(&format!("{usage_event}\n\n"), "")
    }

    fn with_prompt_estimate(stream: bool, include_usage: bool) -> StreamTranscoder {
        let options = GenerationOptions {
            prompt_tokens: Some(14),
            ..GenerationOptions::default()
        };
        openai_transcoder(stream, include_usage, options)
    }

    const ESTIMATE: &str =
        r#"{"prompt_tokens":14,"completion_tokens":1,"total_tokens":15,"estimated":true}"#;

    #[test]
    fn no_usage_from_upstream_gives_an_estimate_in_any_split() {
        let input = without_usage_chunk();
        let whole = run(&mut with_prompt_estimate(true, true), &[input.as_bytes()]);
        for cut in 0..=input.len() {
            let mut t = with_prompt_estimate(true, true);
            let (a, b) = input.as_bytes().split_at(cut);
            assert_eq!(run(&mut t, &[a, b]), whole, "split at {cut}");
            assert_eq!(t.usage(), Some(ESTIMATE));
        }
        let bytes: Vec<&[u8]> = input.as_bytes().chunks(1).collect();
        assert_eq!(run(&mut with_prompt_estimate(true, true), &bytes), whole);
        // The role chunk carries no output; "I'm" does; the finish chunk none.
        assert!(whole.ends_with(&format!(
            "\"choices\":[],\"usage\":{ESTIMATE}}}\n\ndata: [DONE]\n\n"
        )));
        // Not streaming, the aggregated completion carries the same estimate.
        let mut t = with_prompt_estimate(false, false);
        let body = run(&mut t, &[input.as_bytes()]);
        assert!(
            body.ends_with(&format!(",\"usage\":{ESTIMATE}}}")),
            "{body}"
        );
        assert_eq!(t.usage(), Some(ESTIMATE));
    }

    #[test]
    fn reported_usage_is_never_replaced_by_an_estimate() {
        let mut t = with_prompt_estimate(true, true);
        let out = run(&mut t, &[TEXT_STREAM.as_bytes()]);
        assert!(!out.contains("estimated"));
        assert!(t.usage().unwrap().contains("\"total_tokens\":44"));
    }

    #[test]
    fn every_ending_records_the_estimate() {
        let content = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n";
        let endings: [(&str, &str); 4] = [
            ("", "upstream_stream_truncated"),
            ("data: {\"error\":\"boom\"}\n\n", ""),
            ("event: error\ndata: {}\n\n", ""),
            ("data: not json\n\n", "upstream_bad_response"),
        ];
        for (ending, code) in endings {
            let mut t = with_prompt_estimate(true, true);
            let out = run(&mut t, &[content.as_bytes(), ending.as_bytes()]);
            assert!(
                !out.contains("usage"),
                "a failed stream sends no usage chunk: {out}"
            );
            assert_eq!(t.usage(), Some(ESTIMATE), "{ending}");
            if !code.is_empty() {
                assert_eq!(t.error().unwrap().code.as_deref(), Some(code));
            }
        }
        let mut t = with_prompt_estimate(true, true);
        t.feed(content.as_bytes());
        assert_eq!(t.usage(), None, "estimated once the answer ends");
        t.abort(UpstreamError::truncated());
        assert_eq!(t.usage(), Some(ESTIMATE));
        // Nothing with a choice went out: nothing to account for.
        let mut t = with_prompt_estimate(true, true);
        run(
            &mut t,
            &[b": ping\n\ndata: {\"choices\":[]}\n\ndata: [DONE]\n\n"],
        );
        assert_eq!(t.usage(), None);
    }

    #[test]
    fn ollama_lines_are_one_chunk_each_in_any_split() {
        let input = concat!(
            "\u{feff}{\"message\":{\"content\":\"\",\"thinking\":\"Hm\"},\"done\":false}\r\n",
            "{\"message\":{\"content\":\"Hi\"},\"done\":false}\n\n",
            "{\"message\":{\"content\":\"!\"},\"done\":true,\"prompt_eval_count\":3,\"eval_count\":2}",
        );
        let new = || {
            StreamTranscoder::new("ollama", "m", "r", 1, true, true, Default::default()).unwrap()
        };
        let whole = run(&mut new(), &[input.as_bytes()]);
        for cut in 0..=input.len() {
            let mut t = new();
            let (a, b) = input.as_bytes().split_at(cut);
            assert_eq!(run(&mut t, &[a, b]), whole, "split at {cut}");
            assert_eq!(t.finish_reason(), Some("stop"));
        }
        let bytes: Vec<&[u8]> = input.as_bytes().chunks(1).collect();
        assert_eq!(run(&mut new(), &bytes), whole);
        let head = "data: {\"id\":\"r\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[";
        assert_eq!(
            whole,
            [
                format!("{head}{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"reasoning_content\":\"Hm\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"),
                format!("{head}{{\"index\":0,\"delta\":{{\"content\":\"Hi\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"),
                format!("{head}{{\"index\":0,\"delta\":{{\"content\":\"!\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"),
                format!("{head}{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}]}}\n\n"),
                "data: {\"id\":\"r\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n".to_owned(),
                "data: [DONE]\n\n".to_owned(),
            ]
            .concat()
        );
    }

    #[test]
    fn unknown_dialect_names_the_known_ones() {
        let error =
            StreamTranscoder::new("anthropicx", "m", "r", 0, true, false, Default::default())
                .err()
                .unwrap();
        assert!(error.contains("openai"), "{error}");
    }

    #[test]
    fn not_streaming_sse_is_aggregated() {
        let (out, t) = run_every_split(TEXT_STREAM.as_bytes(), false, false);
        assert_eq!(
            out,
            "{\"id\":\"chatcmpl-gw\",\"object\":\"chat.completion\",\"created\":7,\"model\":\"alias\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"I'm\"},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"system_fingerprint\":\"fp_5050236cbd\",\"usage\":{\"prompt_tokens\":14,\"completion_tokens\":30,\"total_tokens\":44,\"completion_tokens_details\":{\"reasoning_tokens\":0}}}"
        );
        assert!(t.done() && t.content_emitted());
    }

    #[test]
    fn not_streaming_json_body_with_bom_and_whitespace() {
        let body = b"\xEF\xBB\xBF \n{\"id\":\"x\",\"choices\":[{\"index\":0,\"message\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}]}";
        let (out, t) = run_every_split(body, false, false);
        assert_eq!(
            out,
            "{\"id\":\"chatcmpl-gw\",\"object\":\"chat.completion\",\"created\":7,\"model\":\"alias\",\"choices\":[{\"index\":0,\"message\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}]}"
        );
        assert_eq!(t.finish_reason(), Some("stop"));
    }

    #[test]
    fn not_streaming_errors_become_the_envelope() {
        for (body, code) in [
            (
                &b"{\"error\":{\"message\":\"nope\",\"code\":\"x\"}}"[..],
                Some("x"),
            ),
            (b"{\"id\":", Some("upstream_bad_response")),
            (b"", Some("upstream_bad_response")),
            (b"  \r\n", Some("upstream_bad_response")),
            (
                b"<html>502 Bad Gateway</html>",
                Some("upstream_bad_response"),
            ),
            (b": ping\n\n", Some("upstream_stream_truncated")),
            (
                b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n",
                Some("upstream_stream_truncated"),
            ),
            (
                b"data: {\"error\":\"e\",\"error_type\":\"validation\"}\n\n",
                None,
            ),
        ] {
            let (out, t) = run_every_split(body, false, false);
            let value: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(value["error"]["code"].as_str(), code, "{out}");
            assert_eq!(t.error().unwrap().code.as_deref(), code);
            assert!(t.done());
        }
    }
}
