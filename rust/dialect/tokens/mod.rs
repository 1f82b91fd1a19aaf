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
mod scanned;
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
        // Most events are one token and nothing else: one pass, no parser.
        if let Ok(event) = scanned::token_event(data) {
            self.on_token(&event.token, event.top_tokens)?;
            return Ok(ControlFlow::Continue(()));
        }
        let text = std::str::from_utf8(data).map_err(|_| UpstreamError::bad_response())?;
        let view: EventView<'_> =
            serde_json::from_str(text).map_err(|_| UpstreamError::bad_response())?;
        if let Some(error) = view.errors().upstream_error(ErrorSource::Stream) {
            return Ok(self.fail(error, emit));
        }
        if let Some(token) = &view.token {
            self.on_token(token, view.top_tokens.map(RawValue::get))?;
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

    /// Every token event counts, special ones included; special tokens (EOS, end of turn) are
    /// never shown.
    fn on_token(&mut self, token: &TokenView<'_>, top: Option<&str>) -> Result<(), UpstreamError> {
        self.token_events += 1;
        if token.special {
            return Ok(());
        }
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

#[cfg(test)]
mod tests {
    use crate::dialect::GenerationOptions;
    use crate::text::think::ThinkMode;
    use crate::transcoder::StreamTranscoder;

    /// Common token events (the scanner's) among others (the full parser's): the deepinfra
    /// spacing with escapes, non-ASCII text, a null logprob and a huge one, then the final event.
    const DEEPINFRA: &[u8] = concat!(
        "data: {\"token\": {\"id\": 29892, \"text\": \",\", \"logprob\": -2.65625, \"special\": false}, \"generated_text\": null, \"details\": null}\n\n",
        "data: {\"token\": {\"id\": 988, \"text\": \" wh\\u00e9re\\n\", \"logprob\": -0.39575195, \"special\": false}, \"generated_text\": null, \"details\": null}\n\n",
        "data: {\"token\": {\"id\": 1432, \"text\": \" ünï 😀\", \"logprob\": -3.15625, \"special\": false}, \"generated_text\": null, \"details\": null}\n\n",
        "data: {\"token\": {\"id\": 1, \"text\": \"\\\"q\\\"\", \"logprob\": null}, \"generated_text\": null, \"details\": null, \"num_tokens\": null}\n\n",
        "data: {\"tok\\u0065n\": {\"id\": 2, \"text\": \"<think>\", \"logprob\": -1e400, \"special\": false}, \"generated_text\": null, \"details\": null}\n\n",
        "data: {\"token\": {\"id\": 128009, \"text\": \"<|eot_id|>\", \"logprob\": -0.0001, \"special\": true}, \"generated_text\": \", wh\\u00e9re\", \"details\": {\"finish_reason\": \"eos_token\", \"generated_tokens\": 6, \"input_tokens\": 12, \"seed\": null}, \"num_output_tokens\": 6, \"num_input_tokens\": 12, \"inference_status\": {\"status\": \"succeeded\", \"runtime_ms\": 243, \"cost\": 0.0000436, \"tokens_input\": 12, \"tokens_generated\": 6}}\n\n",
    ).as_bytes();

    /// TGI's compact framing, `index` and `top_tokens`, no `[DONE]`.
    const TGI: &[u8] = concat!(
        "data:{\"index\":1,\"token\":{\"id\":89554,\"text\":\" Deep\",\"logprob\":-0.9719473,\"special\":false},\"top_tokens\":[{\"id\":1,\"text\":\" Deep\",\"logprob\":-0.97,\"special\":false},{\"id\":2,\"text\":\" W\\u00efde\",\"logprob\":-1.5,\"special\":false}],\"generated_text\":null,\"details\":null}\n\n",
        "data:{\"index\":2,\"token\":{\"id\":89950,\"text\":\" Learning\",\"logprob\":-0.39028463,\"special\":false},\"top_tokens\":[],\"generated_text\":null,\"details\":null}\n\n",
        "data:{\"index\":3,\"token\":{\"id\":28723,\"text\":\".\",\"logprob\":-0.6196289,\"special\":false},\"generated_text\":\" Deep Learning.\",\"details\":null}\n\n",
    ).as_bytes();

    fn transcoder(stop: &[&str], think: ThinkMode) -> StreamTranscoder {
        let options = GenerationOptions {
            logprobs: true,
            stop: stop.iter().map(|s| s.to_string()).collect(),
            think,
            ..Default::default()
        };
        StreamTranscoder::new("deepinfra", "m", "chatcmpl-t", 7, true, true, options).unwrap()
    }

    fn run(mut t: StreamTranscoder, pieces: &[&[u8]]) -> String {
        let mut out = Vec::new();
        for piece in pieces {
            out.extend_from_slice(t.feed(piece));
        }
        out.extend_from_slice(t.finish());
        String::from_utf8(out).unwrap()
    }

    /// A chunk as far as its meaning goes; logprob entries stay raw (`-1e400` is no `f64`).
    #[derive(serde::Deserialize)]
    struct Chunk {
        choices: Option<Vec<Choice>>,
    }

    #[derive(serde::Deserialize)]
    struct Choice {
        delta: Delta,
        logprobs: Option<Logprobs>,
        finish_reason: Option<String>,
    }

    #[derive(serde::Deserialize)]
    struct Delta {
        content: Option<String>,
        reasoning_content: Option<String>,
    }

    #[derive(serde::Deserialize)]
    struct Logprobs {
        content: Vec<Box<serde_json::value::RawValue>>,
    }

    /// What a client makes of the output: the deltas' content, reasoning and logprob entries
    /// joined, every other frame as it is. It does not depend on how the input was split.
    fn meaning(out: &str) -> (String, String, Vec<String>, Vec<String>) {
        let mut meaning = (String::new(), String::new(), Vec::new(), Vec::new());
        for frame in out.strip_suffix("\n\n").unwrap().split("\n\n") {
            let payload = frame.strip_prefix("data: ").unwrap();
            let choices = serde_json::from_str(payload)
                .ok()
                .and_then(|c: Chunk| c.choices);
            let Some(choice) = choices.and_then(|c| c.into_iter().next()) else {
                meaning.3.push(payload.to_owned()); // usage, error, [DONE]
                continue;
            };
            if choice.finish_reason.is_some() {
                meaning.3.push(payload.to_owned());
                continue;
            }
            meaning.0 += choice.delta.content.as_deref().unwrap_or("");
            meaning.1 += choice.delta.reasoning_content.as_deref().unwrap_or("");
            let entries = choice.logprobs.map(|l| l.content).unwrap_or_default();
            (meaning.2).extend(entries.iter().map(|e| e.get().to_owned()));
        }
        meaning
    }

    /// Whole, split in two at every byte, and byte by byte: every run means the same. Returns
    /// the whole run's output and transcoder.
    fn run_every_split(
        input: &[u8],
        new: impl Fn() -> StreamTranscoder,
    ) -> (String, StreamTranscoder) {
        let mut whole_transcoder = new();
        let mut whole = Vec::new();
        whole.extend_from_slice(whole_transcoder.feed(input));
        whole.extend_from_slice(whole_transcoder.finish());
        let whole = String::from_utf8(whole).unwrap();
        let meant = meaning(&whole);
        for cut in 0..=input.len() {
            let split = run(new(), &[&input[..cut], &input[cut..]]);
            assert_eq!(meaning(&split), meant, "split at {cut}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(meaning(&run(new(), &bytes)), meant, "byte by byte");
        (whole, whole_transcoder)
    }

    /// The outputs are the ones from before the single-pass scanner, byte for byte.
    #[test]
    fn token_streams_come_out_as_before() {
        let (out, _) = run_every_split(DEEPINFRA, || transcoder(&["<|eot_id|>"], ThinkMode::Auto));
        assert_eq!(out, concat!(
            "data: {\"id\":\"chatcmpl-t\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\", whére\\n ünï 😀\\\"q\\\"<think>\"},\"logprobs\":{\"content\":[{\"token\":\",\",\"logprob\":-2.65625,\"bytes\":[44],\"top_logprobs\":[]},{\"token\":\" whére\\n\",\"logprob\":-0.39575195,\"bytes\":[32,119,104,195,169,114,101,10],\"top_logprobs\":[]},{\"token\":\" ünï 😀\",\"logprob\":-3.15625,\"bytes\":[32,195,188,110,195,175,32,240,159,152,128],\"top_logprobs\":[]},{\"token\":\"\\\"q\\\"\",\"logprob\":null,\"bytes\":[34,113,34],\"top_logprobs\":[]},{\"token\":\"<think>\",\"logprob\":-1e400,\"bytes\":[60,116,104,105,110,107,62],\"top_logprobs\":[]}],\"refusal\":null},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"chatcmpl-t\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n",
            "data: {\"id\":\"chatcmpl-t\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":6,\"total_tokens\":18,\"estimated_cost\":0.0000436}}\n\n",
            "data: [DONE]\n\n",
        ));
        let (out, _) = run_every_split(TGI, || transcoder(&[], ThinkMode::Off));
        assert_eq!(out, concat!(
            "data: {\"id\":\"chatcmpl-t\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\" Deep Learning.\"},\"logprobs\":{\"content\":[{\"token\":\" Deep\",\"logprob\":-0.9719473,\"bytes\":[32,68,101,101,112],\"top_logprobs\":[{\"token\":\" Deep\",\"logprob\":-0.97,\"bytes\":[32,68,101,101,112]},{\"token\":\" Wïde\",\"logprob\":-1.5,\"bytes\":[32,87,195,175,100,101]}]},{\"token\":\" Learning\",\"logprob\":-0.39028463,\"bytes\":[32,76,101,97,114,110,105,110,103],\"top_logprobs\":[]},{\"token\":\".\",\"logprob\":-0.6196289,\"bytes\":[46],\"top_logprobs\":[]}],\"refusal\":null},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"chatcmpl-t\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n",
            "data: {\"id\":\"chatcmpl-t\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":3,\"total_tokens\":3,\"estimated\":true}}\n\n",
            "data: [DONE]\n\n",
        ));
    }

    /// Events the scanner leaves to the full parser, each between two common ones: the text
    /// shown and how the answer ends are what they were before the scanner. (A stream that ends
    /// without a final event is cut off.)
    #[test]
    fn events_the_scanner_refuses_read_as_before() {
        #[rustfmt::skip]
        let cases: [(&[u8], &str, &str); 15] = [
            (br#"{"tok\u0065n": {"t\u0065xt": " esc", "special": false}, "details": null}"#, " ok esc ok", "upstream_stream_truncated"),
            (br#"{"token": {"text": " a"}, "token": {"text": " b"}}"#, " ok", "upstream_bad_response"),
            (br#"{"token": {"text": " a", "text": " b"}}"#, " ok", "upstream_bad_response"),
            (br#"{"token": {"text": " a"}, "details": null, "details": null}"#, " ok", "upstream_bad_response"),
            (br#"{"token": {"text": "!"}, "generated_text": null, "details": {"finish_reason": "length"}}"#, " ok!", "length"),
            (br#"{"token": {"text": " x"}, "error": "Model is overloaded", "error_type": "overloaded"}"#, " ok", "upstream_overloaded"),
            (br#"{"token": {"text": " x"}, "inference_status": {"status": "running"}, "num_tokens": 5}"#, " ok x ok", "upstream_stream_truncated"),
            (b"{\"token\":\t{\"text\": \" tab\"},\t\"details\": null}", " ok tab ok", "upstream_stream_truncated"),
            (b"{\"token\": {\"text\": \" x\"},\x0c\"details\": null}", " ok", "upstream_bad_response"),
            (b"{\"token\": {\"text\": \" x\"},\xc2\xa0\"details\": null}", " ok", "upstream_bad_response"),
            (br#"{"token": {"text": " x"},"#, " ok", "upstream_bad_response"),
            (br#"{"token": {"text": " \ud800"}}"#, " ok", "upstream_bad_response"),
            (b"{\"token\": {\"text\": \" \xff\"}}", " ok", "upstream_bad_response"),
            (br#"{"token": {"id": 123456789012345678901234567890, "text": " big", "logprob": -1.5e999}}"#, " ok big ok", "upstream_stream_truncated"),
            (br#"{"token": {"text": " x", "special": null}}"#, " ok", "upstream_bad_response"),
        ];
        let common = br#"data: {"token": {"text": " ok", "logprob": -0.5, "special": false}, "generated_text": null, "details": null}"#;
        for (event, content, end) in cases {
            let input = [&common[..], b"\n\ndata: ", event, b"\n\n", common, b"\n\n"].concat();
            let (out, t) = run_every_split(&input, || transcoder(&[], ThinkMode::Off));
            let shown = String::from_utf8_lossy(event);
            assert_eq!(meaning(&out).0, content, "{shown}");
            let ended = t
                .error()
                .and_then(|e| e.code.as_deref())
                .or(t.finish_reason());
            assert_eq!(ended, Some(end), "{shown}");
        }
    }
}
