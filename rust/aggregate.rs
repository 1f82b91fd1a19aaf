//! Merges a stream of internal events into one OpenAI `chat.completion` body (for clients that
//! asked for `stream: false` when the upstream only streams, or streams anyway).

use crate::event::{ChoiceDelta, ToolCallDelta};
use crate::json::write_str;
use crate::writer::ChunkWriter;

#[derive(Default)]
pub struct Aggregator {
    choices: Vec<ChoiceSoFar>,
    system_fingerprint: Option<String>,
}

#[derive(Default)]
struct ChoiceSoFar {
    index: u64,
    content: Option<String>,
    reasoning: Option<String>,
    refusal: Option<String>,
    tool_calls: Vec<ToolCallSoFar>,
    function_call: Option<FunctionCallSoFar>,
    /// Token logprob objects, already comma-separated, ready to go inside `[...]`.
    logprobs: Option<Vec<u8>>,
    finish_reason: Option<String>,
}

#[derive(Default)]
struct ToolCallSoFar {
    index: u64,
    id: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    arguments: String,
}

#[derive(Default)]
struct FunctionCallSoFar {
    name: Option<String>,
    arguments: String,
}

fn append(slot: &mut Option<String>, text: Option<&str>) {
    if let Some(text) = text {
        slot.get_or_insert_with(String::new).push_str(text);
    }
}

fn first(slot: &mut Option<String>, value: Option<&str>) {
    if slot.is_none() {
        *slot = value.map(str::to_owned);
    }
}

impl Aggregator {
    pub fn new() -> Self {
        Self::default()
    }

    fn choice(&mut self, index: u64) -> &mut ChoiceSoFar {
        let at = match self.choices.iter().position(|c| c.index == index) {
            Some(at) => at,
            None => {
                self.choices.push(ChoiceSoFar {
                    index,
                    ..Default::default()
                });
                self.choices.len() - 1
            }
        };
        &mut self.choices[at]
    }

    pub fn delta(&mut self, delta: &ChoiceDelta<'_>) {
        let choice = self.choice(delta.choice);
        append(&mut choice.content, delta.content);
        append(&mut choice.reasoning, delta.reasoning);
        append(&mut choice.refusal, delta.refusal);
        for call in delta.tool_calls {
            choice.merge_tool_call(call);
        }
        if let Some(call) = &delta.function_call {
            let so_far = choice.function_call.get_or_insert_with(Default::default);
            first(&mut so_far.name, call.name);
            so_far.arguments.push_str(call.arguments.unwrap_or(""));
        }
        if let Some(logprobs) = delta.logprobs {
            let items = logprobs.trim();
            let items = items
                .strip_prefix('[')
                .and_then(|i| i.strip_suffix(']'))
                .unwrap_or("")
                .trim();
            let joined = choice.logprobs.get_or_insert_with(Vec::new);
            if !items.is_empty() {
                if !joined.is_empty() {
                    joined.push(b',');
                }
                joined.extend_from_slice(items.as_bytes());
            }
        }
    }

    pub fn finish(&mut self, choice: u64, reason: &str) {
        self.choice(choice).finish_reason = Some(reason.to_owned());
    }

    pub fn system_fingerprint(&mut self, fingerprint: &str) {
        self.system_fingerprint = Some(fingerprint.to_owned());
    }

    /// Writes the `chat.completion` body. Choices that never got a finish reason get
    /// `default_finish` (the stream ended cleanly without naming one).
    pub fn write(
        &self,
        writer: &ChunkWriter,
        usage: Option<&str>,
        default_finish: &str,
        out: &mut Vec<u8>,
    ) {
        writer.begin_completion(out);
        out.extend_from_slice(b",\"choices\":[");
        let mut order: Vec<&ChoiceSoFar> = self.choices.iter().collect();
        order.sort_by_key(|c| c.index);
        let empty = ChoiceSoFar::default();
        if order.is_empty() {
            order.push(&empty);
        }
        for (i, choice) in order.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            choice.write(out, default_finish);
        }
        out.push(b']');
        if let Some(fingerprint) = &self.system_fingerprint {
            out.extend_from_slice(b",\"system_fingerprint\":");
            write_str(out, fingerprint);
        }
        if let Some(usage) = usage {
            out.extend_from_slice(b",\"usage\":");
            out.extend_from_slice(usage.as_bytes());
        }
        out.push(b'}');
    }
}

impl ChoiceSoFar {
    fn merge_tool_call(&mut self, call: &ToolCallDelta<'_>) {
        let at = match self.tool_calls.iter().position(|c| c.index == call.index) {
            Some(at) => at,
            None => {
                self.tool_calls.push(ToolCallSoFar {
                    index: call.index,
                    ..Default::default()
                });
                self.tool_calls.len() - 1
            }
        };
        let so_far = &mut self.tool_calls[at];
        first(&mut so_far.id, call.id);
        first(&mut so_far.kind, call.kind);
        first(&mut so_far.name, call.name);
        so_far.arguments.push_str(call.arguments.unwrap_or(""));
    }

    fn write(&self, out: &mut Vec<u8>, default_finish: &str) {
        out.extend_from_slice(b"{\"index\":");
        out.extend_from_slice(self.index.to_string().as_bytes());
        out.extend_from_slice(b",\"message\":{\"role\":\"assistant\",\"content\":");
        match &self.content {
            Some(content) => write_str(out, content),
            None => out.extend_from_slice(b"null"),
        }
        if let Some(reasoning) = &self.reasoning {
            out.extend_from_slice(b",\"reasoning_content\":");
            write_str(out, reasoning);
        }
        if let Some(refusal) = &self.refusal {
            out.extend_from_slice(b",\"refusal\":");
            write_str(out, refusal);
        }
        if !self.tool_calls.is_empty() {
            out.extend_from_slice(b",\"tool_calls\":[");
            let mut calls: Vec<&ToolCallSoFar> = self.tool_calls.iter().collect();
            calls.sort_by_key(|c| c.index);
            for (i, call) in calls.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.push(b'{');
                if let Some(id) = &call.id {
                    out.extend_from_slice(b"\"id\":");
                    write_str(out, id);
                    out.push(b',');
                }
                out.extend_from_slice(b"\"type\":");
                write_str(out, call.kind.as_deref().unwrap_or("function"));
                out.extend_from_slice(b",\"function\":{\"name\":");
                write_str(out, call.name.as_deref().unwrap_or(""));
                out.extend_from_slice(b",\"arguments\":");
                write_str(out, &call.arguments);
                out.extend_from_slice(b"}}");
            }
            out.push(b']');
        }
        if let Some(call) = &self.function_call {
            out.extend_from_slice(b",\"function_call\":{\"name\":");
            write_str(out, call.name.as_deref().unwrap_or(""));
            out.extend_from_slice(b",\"arguments\":");
            write_str(out, &call.arguments);
            out.push(b'}');
        }
        out.extend_from_slice(b"},\"logprobs\":");
        match &self.logprobs {
            Some(items) => {
                out.extend_from_slice(b"{\"content\":[");
                out.extend_from_slice(items);
                out.extend_from_slice(b"],\"refusal\":null}");
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"finish_reason\":");
        write_str(out, self.finish_reason.as_deref().unwrap_or(default_finish));
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn body(agg: &Aggregator, usage: Option<&str>) -> Value {
        let mut out = Vec::new();
        agg.write(&ChunkWriter::new("r", 5, "m"), usage, "stop", &mut out);
        serde_json::from_slice(&out).expect("aggregated body is JSON")
    }

    #[test]
    fn text_pieces_are_concatenated_per_choice() {
        let mut agg = Aggregator::new();
        for (choice, text) in [(0, "Hel"), (1, "B"), (0, "lo"), (1, "ye")] {
            agg.delta(&ChoiceDelta {
                choice,
                content: Some(text),
                ..Default::default()
            });
        }
        agg.finish(1, "length");
        agg.system_fingerprint("fp_1");
        let v = body(
            &agg,
            Some(r#"{"prompt_tokens":3,"prompt_tokens_details":{"cached_tokens":0}}"#),
        );
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["message"]["content"], "Hello");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["choices"][1]["message"]["content"], "Bye");
        assert_eq!(v["choices"][1]["finish_reason"], "length");
        assert_eq!(v["system_fingerprint"], "fp_1");
        assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    }

    #[test]
    fn tool_calls_merge_by_index_and_keep_first_header() {
        let mut agg = Aggregator::new();
        let first = [
            ToolCallDelta {
                index: 1,
                id: Some("b"),
                kind: Some("function"),
                name: Some("g"),
                arguments: Some(""),
            },
            ToolCallDelta {
                index: 0,
                id: Some("a"),
                kind: None,
                name: Some("f"),
                arguments: Some("{\"x"),
            },
        ];
        let second = [
            ToolCallDelta {
                index: 0,
                arguments: Some("\":1}"),
                ..Default::default()
            },
            ToolCallDelta {
                index: 1,
                id: Some("ignored"),
                arguments: Some("{}"),
                ..Default::default()
            },
        ];
        agg.delta(&ChoiceDelta {
            tool_calls: &first,
            ..Default::default()
        });
        agg.delta(&ChoiceDelta {
            tool_calls: &second,
            ..Default::default()
        });
        let v = body(&agg, None);
        let message = &v["choices"][0]["message"];
        assert_eq!(message["content"], Value::Null);
        assert_eq!(
            message["tool_calls"],
            serde_json::json!([
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}},
                {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}},
            ])
        );
        assert!(v.get("usage").is_none());
    }

    #[test]
    fn reasoning_refusal_and_logprobs_are_kept() {
        let mut agg = Aggregator::new();
        let lp1 = r#"[{"token":"a"}]"#;
        let lp2 = r#"[ ]"#;
        let lp3 = r#"[{"token":"b"},{"token":"c"}]"#;
        agg.delta(&ChoiceDelta {
            reasoning: Some("hm"),
            logprobs: Some(lp1),
            ..Default::default()
        });
        agg.delta(&ChoiceDelta {
            refusal: Some("no"),
            logprobs: Some(lp2),
            ..Default::default()
        });
        agg.delta(&ChoiceDelta {
            refusal: Some("pe"),
            logprobs: Some(lp3),
            ..Default::default()
        });
        let v = body(&agg, None);
        let choice = &v["choices"][0];
        assert_eq!(choice["message"]["reasoning_content"], "hm");
        assert_eq!(choice["message"]["refusal"], "nope");
        assert_eq!(
            choice["logprobs"]["content"],
            serde_json::json!([{"token":"a"},{"token":"b"},{"token":"c"}])
        );
    }

    #[test]
    fn no_choices_still_gives_one_empty_answer() {
        let v = body(&Aggregator::new(), None);
        assert_eq!(
            v["choices"][0]["message"],
            serde_json::json!({"role":"assistant","content":null})
        );
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["choices"][0]["logprobs"], Value::Null);
    }
}
