//! Writes OpenAI `chat.completion.chunk` SSE frames: chunks built from internal events, the
//! frame around a chunk a dialect rewrites itself, and the closing frames (synthesized finish,
//! usage, error, `[DONE]`).
//!
//! `id`, `created` and `model` are the same in every chunk of a response, so the opening bytes
//! of a chunk are rendered once and copied.

use crate::error::UpstreamError;
use crate::event::{ChoiceDelta, ToolCallDelta};
use crate::json::write_str;

pub const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";

pub struct ChunkWriter {
    /// `data: {"id":..,"object":"chat.completion.chunk","created":..,"model":..`
    chunk_open: Vec<u8>,
    /// `{"id":..,"object":"chat.completion","created":..,"model":..`
    completion_open: Vec<u8>,
    /// Choices that already had their first delta (which carries `role`).
    roles_sent: Vec<u64>,
}

impl ChunkWriter {
    pub fn new(response_id: &str, created: i64, model: &str) -> Self {
        let open = |object: &str| {
            let mut out = b"{\"id\":".to_vec();
            write_str(&mut out, response_id);
            out.extend_from_slice(b",\"object\":\"");
            out.extend_from_slice(object.as_bytes());
            out.extend_from_slice(b"\",\"created\":");
            out.extend_from_slice(created.to_string().as_bytes());
            out.extend_from_slice(b",\"model\":");
            write_str(&mut out, model);
            out
        };
        let mut chunk_open = b"data: ".to_vec();
        chunk_open.extend_from_slice(&open("chat.completion.chunk"));
        ChunkWriter {
            chunk_open,
            completion_open: open("chat.completion"),
            roles_sent: Vec::new(),
        }
    }

    /// Starts a chunk frame; the caller appends `,"key":value` members, then [`Self::end_chunk`].
    pub fn begin_chunk(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.chunk_open);
    }

    pub fn end_chunk(out: &mut Vec<u8>) {
        out.extend_from_slice(b"}\n\n");
    }

    /// Starts a `chat.completion` body; the caller appends members and the closing `}`.
    pub fn begin_completion(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.completion_open);
    }

    /// One chunk for one choice's delta. The first delta of a choice carries `role`.
    pub fn write_delta(&mut self, out: &mut Vec<u8>, delta: &ChoiceDelta<'_>) {
        self.begin_chunk(out);
        out.extend_from_slice(b",\"choices\":[{\"index\":");
        out.extend_from_slice(delta.choice.to_string().as_bytes());
        out.extend_from_slice(b",\"delta\":{");
        let mut members = Members::new(out);
        if !self.roles_sent.contains(&delta.choice) {
            self.roles_sent.push(delta.choice);
            members.raw("role", b"\"assistant\"");
        }
        if let Some(text) = delta.content {
            members.string("content", text);
        }
        if let Some(text) = delta.reasoning {
            members.string("reasoning_content", text);
        }
        if let Some(text) = delta.refusal {
            members.string("refusal", text);
        }
        if !delta.tool_calls.is_empty() {
            let out = members.key("tool_calls");
            out.push(b'[');
            for (i, call) in delta.tool_calls.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_tool_call(out, call);
            }
            out.push(b']');
        }
        if let Some(call) = &delta.function_call {
            let out = members.key("function_call");
            let mut function = Members::open(out);
            if let Some(name) = call.name {
                function.string("name", name);
            }
            function.string("arguments", call.arguments.unwrap_or(""));
            function.close();
        }
        out.extend_from_slice(b"},\"logprobs\":");
        match delta.logprobs {
            Some(content) => {
                out.extend_from_slice(b"{\"content\":");
                out.extend_from_slice(content.as_bytes());
                out.extend_from_slice(b",\"refusal\":null}");
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"finish_reason\":null}]");
        Self::end_chunk(out);
    }

    /// The chunk that finishes a choice: empty delta, the reason.
    pub fn write_finish(&self, out: &mut Vec<u8>, choice: u64, reason: &str) {
        self.begin_chunk(out);
        out.extend_from_slice(b",\"choices\":[{\"index\":");
        out.extend_from_slice(choice.to_string().as_bytes());
        out.extend_from_slice(b",\"delta\":{},\"logprobs\":null,\"finish_reason\":");
        write_str(out, reason);
        out.extend_from_slice(b"}]");
        Self::end_chunk(out);
    }

    /// The usage chunk (`choices: []`) that `stream_options.include_usage` asks for.
    pub fn write_usage(&self, out: &mut Vec<u8>, usage_json: &str) {
        self.begin_chunk(out);
        out.extend_from_slice(b",\"choices\":[],\"usage\":");
        out.extend_from_slice(usage_json.as_bytes());
        Self::end_chunk(out);
    }

    /// The in-stream error event the OpenAI SDK raises on: `data: {"error":{...}}`.
    pub fn write_error(out: &mut Vec<u8>, error: &UpstreamError) {
        out.extend_from_slice(b"data: ");
        error.write_envelope(out);
        out.extend_from_slice(b"\n\n");
    }

    pub fn write_done(out: &mut Vec<u8>) {
        out.extend_from_slice(DONE_FRAME);
    }
}

fn write_tool_call(out: &mut Vec<u8>, call: &ToolCallDelta<'_>) {
    out.extend_from_slice(b"{\"index\":");
    out.extend_from_slice(call.index.to_string().as_bytes());
    if let Some(id) = call.id {
        out.extend_from_slice(b",\"id\":");
        write_str(out, id);
    }
    if let Some(kind) = call.kind {
        out.extend_from_slice(b",\"type\":");
        write_str(out, kind);
    }
    if call.name.is_some() || call.arguments.is_some() {
        out.extend_from_slice(b",\"function\":");
        let mut function = Members::open(out);
        if let Some(name) = call.name {
            function.string("name", name);
        }
        if let Some(arguments) = call.arguments {
            function.string("arguments", arguments);
        }
        function.close();
    }
    out.push(b'}');
}

/// Writes comma-separated object members into an already opened `{`.
struct Members<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl<'o> Members<'o> {
    fn new(out: &'o mut Vec<u8>) -> Self {
        Members { out, first: true }
    }

    fn open(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        Self::new(out)
    }

    fn close(self) {
        self.out.push(b'}');
    }

    fn key(&mut self, name: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_str(self.out, name);
        self.out.push(b':');
        self.out
    }

    fn raw(&mut self, name: &str, value: &[u8]) {
        self.key(name).extend_from_slice(value);
    }

    fn string(&mut self, name: &str, value: &str) {
        write_str(self.key(name), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::FunctionCallDelta;

    fn writer() -> ChunkWriter {
        ChunkWriter::new("chatcmpl-1", 1700000000, "my/model")
    }

    fn text(out: Vec<u8>) -> String {
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn first_delta_of_a_choice_carries_the_role() {
        let mut w = writer();
        let mut out = Vec::new();
        w.write_delta(
            &mut out,
            &ChoiceDelta {
                content: Some("Hi"),
                ..Default::default()
            },
        );
        w.write_delta(
            &mut out,
            &ChoiceDelta {
                content: Some("\"!\""),
                ..Default::default()
            },
        );
        assert_eq!(
            text(out),
            concat!(
                r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"my/model","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":null}]}"#,
                "\n\n",
                r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"my/model","choices":[{"index":0,"delta":{"content":"\"!\""},"logprobs":null,"finish_reason":null}]}"#,
                "\n\n",
            )
        );
    }

    #[test]
    fn tool_calls_reasoning_and_logprobs_are_written_in_openai_shape() {
        let mut w = writer();
        let mut out = Vec::new();
        let calls = [ToolCallDelta {
            index: 0,
            id: Some("call_1"),
            kind: Some("function"),
            name: Some("get_weather"),
            arguments: Some("{}"),
        }];
        let logprobs = "[{\"token\":\"a\"}]";
        w.write_delta(
            &mut out,
            &ChoiceDelta {
                choice: 1,
                reasoning: Some("think"),
                tool_calls: &calls,
                function_call: Some(FunctionCallDelta {
                    name: None,
                    arguments: Some("{"),
                }),
                logprobs: Some(logprobs),
                ..Default::default()
            },
        );
        let out = text(out);
        assert!(out.contains(
            r#""choices":[{"index":1,"delta":{"role":"assistant","reasoning_content":"think","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{}"}}],"function_call":{"arguments":"{"}},"logprobs":{"content":[{"token":"a"}],"refusal":null},"finish_reason":null}]}"#
        ), "{out}");
    }

    #[test]
    fn closing_frames() {
        let w = writer();
        let mut out = Vec::new();
        w.write_finish(&mut out, 0, "stop");
        w.write_usage(&mut out, r#"{"prompt_tokens":1}"#);
        ChunkWriter::write_error(&mut out, &UpstreamError::truncated());
        ChunkWriter::write_done(&mut out);
        let out = text(out);
        let frames: Vec<&str> = out.split_terminator("\n\n").collect();
        assert_eq!(frames.len(), 4);
        assert!(frames[0].ends_with(
            r#""choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}"#
        ));
        assert!(frames[1].ends_with(r#""choices":[],"usage":{"prompt_tokens":1}}"#));
        assert!(frames[2].starts_with(r#"data: {"error":{"message":"The upstream closed"#));
        assert_eq!(frames[3], "data: [DONE]");
    }

    #[test]
    fn ids_and_models_are_escaped() {
        let w = ChunkWriter::new("a\"b", -1, "m\\");
        let mut out = Vec::new();
        w.begin_completion(&mut out);
        assert_eq!(
            text(out),
            r#"{"id":"a\"b","object":"chat.completion","created":-1,"model":"m\\""#
        );
    }
}
