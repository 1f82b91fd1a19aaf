//! The dialect through the whole transcoder, on the fixtures the Python tests use
//! (tests/fixtures/anthropic): whole, split in two at every byte, one byte at a time.

use crate::dialect::GenerationOptions;
use crate::transcoder::StreamTranscoder;

const BASIC: &[u8] = include_bytes!("../../../tests/fixtures/anthropic/basic_text.sse");
const TOOL_USE: &[u8] = include_bytes!("../../../tests/fixtures/anthropic/tool_use.sse");
const THINKING: &[u8] = include_bytes!("../../../tests/fixtures/anthropic/thinking_refusal.sse");
const PARALLEL: &[u8] = include_bytes!("../../../tests/fixtures/anthropic/parallel_tools.sse");
const ERROR: &[u8] = include_bytes!("../../../tests/fixtures/anthropic/error_midstream.sse");
const TRUNCATED: &[u8] = include_bytes!("../../../tests/fixtures/anthropic/truncated.sse");
const TOOL_BODY: &[u8] = include_bytes!("../../../tests/fixtures/anthropic/message_tool_use.json");

const HEAD: &str =
    "data: {\"id\":\"r\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[";

fn transcoder(stream: bool) -> StreamTranscoder {
    let options = GenerationOptions::default();
    StreamTranscoder::new("anthropic", "m", "r", 1, stream, true, options).unwrap()
}

fn run(t: &mut StreamTranscoder, pieces: &[&[u8]]) -> String {
    let mut out = Vec::new();
    for piece in pieces {
        out.extend_from_slice(t.feed(piece));
    }
    out.extend_from_slice(t.finish());
    String::from_utf8(out).unwrap()
}

/// Whole, every two-way split, byte by byte: the same output and outcome.
fn every_split(input: &[u8], stream: bool) -> (String, StreamTranscoder) {
    let mut reference = transcoder(stream);
    let whole = run(&mut reference, &[input]);
    for cut in 0..=input.len() {
        let mut t = transcoder(stream);
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
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(&mut transcoder(stream), &bytes), whole, "byte by byte");
    (whole, reference)
}

fn delta(body: &str) -> String {
    format!("{HEAD}{{\"index\":0,\"delta\":{{{body}}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n")
}

fn finish(reason: &str) -> String {
    format!("{HEAD}{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"{reason}\"}}]}}\n\n")
}

fn usage(json: &str) -> String {
    format!("{HEAD}],\"usage\":{json}}}\n\n")
}

const DONE: &str = "data: [DONE]\n\n";

#[test]
fn basic_text_stream_exact_bytes() {
    let (out, t) = every_split(BASIC, true);
    let counts = r#"{"prompt_tokens":11,"completion_tokens":6,"total_tokens":17}"#;
    assert_eq!(
        out,
        [
            delta(r#""role":"assistant","content":"Hello""#),
            delta(r#""content":" there""#),
            delta(r#""content":"!""#),
            finish("stop"),
            usage(counts),
            DONE.to_owned(),
        ]
        .concat()
    );
    assert_eq!(t.usage(), Some(counts));
    assert_eq!(t.finish_reason(), Some("stop"));
    assert!(t.content_emitted() && t.done() && t.error().is_none());
}

#[test]
fn tool_use_stream_counts_tool_blocks_and_skips_empty_fragments() {
    let (out, t) = every_split(TOOL_USE, true);
    let call = |body: &str| delta(&format!("\"tool_calls\":[{body}]"));
    assert_eq!(
        out,
        [
            delta(r#""role":"assistant","content":"I'll check the weather in Paris.""#),
            call(r#"{"index":0,"id":"toolu_01NRLabsLyVHZPKxbKvkfSMn","type":"function","function":{"name":"get_weather","arguments":""}}"#),
            call(r#"{"index":0,"function":{"arguments":"{\"locati"}}"#),
            call(r#"{"index":0,"function":{"arguments":"on\": \"P"}}"#),
            call(r#"{"index":0,"function":{"arguments":"ar"}}"#),
            call(r#"{"index":0,"function":{"arguments":"is\"}"}}"#),
            finish("tool_calls"),
            usage(r#"{"prompt_tokens":377,"completion_tokens":65,"total_tokens":442,"prompt_tokens_details":{"cached_tokens":0}}"#),
            DONE.to_owned(),
        ]
        .concat()
    );
    assert_eq!(t.finish_reason(), Some("tool_calls"));
}

#[test]
fn thinking_with_trailing_spaces_and_a_refusal() {
    let (out, t) = every_split(THINKING, true);
    assert_eq!(
        out,
        [
            delta(r#""role":"assistant","reasoning_content":"Simple educ""#),
            finish("content_filter"),
            usage(r#"{"prompt_tokens":24,"completion_tokens":70,"total_tokens":94,"completion_tokens_details":{"reasoning_tokens":67}}"#),
            DONE.to_owned(),
        ]
        .concat()
    );
    assert!(!out.contains("c3ludGhl"), "the signature is dropped");
    assert_eq!(t.finish_reason(), Some("content_filter"));
}

#[test]
fn a_tool_without_input_gets_empty_object_arguments() {
    let (out, _) = every_split(PARALLEL, true);
    assert!(out.contains(&delta(
        r#""tool_calls":[{"index":1,"id":"toolu_01B","type":"function","function":{"name":"get_time","arguments":""}}]"#
    )));
    assert!(out.contains(&delta(
        r#""tool_calls":[{"index":1,"function":{"arguments":"{}"}}]"#
    )));
    assert!(out.contains(&delta(
        r#""tool_calls":[{"index":0,"function":{"arguments":"é\"}"}}]"#
    )));
    assert_eq!(out.matches("\"arguments\":\"{}\"").count(), 1);
}

#[test]
fn error_event_mid_stream() {
    let (out, t) = every_split(ERROR, true);
    assert!(out.starts_with(&delta(r#""role":"assistant","content":"Once upon""#)));
    assert!(out.ends_with(&format!(
        "data: {{\"error\":{{\"message\":\"The upstream reported an error: Overloaded. The model is busy: retry later, or use another model or provider.\",\"type\":\"overloaded_error\",\"param\":null,\"code\":\"upstream_overloaded\"}}}}\n\n{DONE}"
    )));
    assert_eq!(out.matches("data: ").count(), 3);
    assert_eq!(
        t.usage(),
        Some(r#"{"prompt_tokens":15,"completion_tokens":1,"total_tokens":16,"estimated":true}"#)
    );
    assert_eq!(t.finish_reason(), None);
}

#[test]
fn truncated_stream_and_a_stop_reason_without_message_stop() {
    let (out, t) = every_split(TRUNCATED, true);
    assert!(out.contains("\"code\":\"upstream_stream_truncated\""));
    assert_eq!(out.matches(DONE).count(), 1);
    assert_eq!(
        t.usage(),
        Some(r#"{"prompt_tokens":11,"completion_tokens":2,"total_tokens":13,"estimated":true}"#)
    );
    // Cut inside an event: truncated too, not garbage.
    let (_, t) = every_split(&BASIC[..BASIC.len() - 20], true);
    assert_eq!(
        t.error().unwrap().code.as_deref(),
        Some("upstream_stream_truncated")
    );
    // Everything but message_stop: complete.
    let end = BASIC.len() - "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".len();
    let (out, t) = every_split(&BASIC[..end], true);
    let (expected, _) = every_split(BASIC, true);
    assert_eq!(out, expected);
    assert!(t.error().is_none());
}

#[test]
fn events_named_only_by_their_type_and_crlf() {
    let unnamed: Vec<u8> = String::from_utf8(BASIC.to_vec())
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with("event:"))
        .map(|line| format!("{line}\r\n"))
        .collect::<String>()
        .into_bytes();
    let (out, _) = every_split(&unnamed, true);
    let (expected, _) = every_split(BASIC, true);
    assert_eq!(out, expected);
}

#[test]
fn garbage_is_a_bad_response() {
    let first_two = BASIC
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w == b"\n\n")
        .nth(1)
        .map(|(at, _)| at + 2)
        .unwrap();
    let input = [
        &BASIC[..first_two],
        b"data: <html>\n\n",
        &BASIC[first_two..],
    ]
    .concat();
    let (_, t) = every_split(&input, true);
    assert_eq!(
        t.error().unwrap().code.as_deref(),
        Some("upstream_bad_response")
    );
}

#[test]
fn not_streaming_body_and_stream() {
    let (out, t) = every_split(TOOL_BODY, false);
    assert_eq!(
        out,
        r#"{"id":"r","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi, I'm Claude.","tool_calls":[{"id":"toolu_01A09q90qw90lq917835lq9","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Paris\"}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":377,"completion_tokens":65,"total_tokens":442,"prompt_tokens_details":{"cached_tokens":0}}}"#
    );
    assert_eq!(t.finish_reason(), Some("tool_calls"));
    let (out, _) = every_split(TOOL_USE, false);
    assert!(out.contains(
        r#""content":"I'll check the weather in Paris.","tool_calls":[{"id":"toolu_01NRLabsLyVHZPKxbKvkfSMn","type":"function","function":{"name":"get_weather","arguments":"{\"location\": \"Paris\"}"}}]"#
    ), "{out}");
}
