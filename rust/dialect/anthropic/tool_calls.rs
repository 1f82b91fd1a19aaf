//! Anthropic `tool_use` blocks as OpenAI tool calls (PROTOCOLS.md §4.7): a call's index counts
//! the tool blocks of the response from 0 (not Anthropic's block index, which counts text and
//! thinking blocks too), and a call must end up with arguments that are JSON, `"{}"` when the
//! model streamed none.

use serde_json::value::RawValue;

use crate::json::compact::compact;

/// A tool block that started and has not stopped yet.
struct OpenCall {
    /// Anthropic's block index.
    block: u64,
    /// The OpenAI call index.
    call: u64,
    /// A non-empty `input_json_delta` went out for it.
    streamed: bool,
    /// The block start's own `input`, when it was a non-empty object (a server that sends the
    /// arguments whole instead of streaming them).
    given: Option<String>,
}

/// The arguments a call still needs when its block stops.
pub struct Pending {
    pub call: u64,
    pub arguments: String,
}

#[derive(Default)]
pub struct ToolBlocks {
    open: Vec<OpenCall>,
    started: u64,
}

impl ToolBlocks {
    /// A `tool_use` block starts: returns its call index.
    pub fn start(&mut self, block: u64, input: Option<&RawValue>) -> u64 {
        let call = self.started;
        self.started += 1;
        self.open.retain(|open| open.block != block);
        self.open.push(OpenCall {
            block,
            call,
            streamed: false,
            given: given_arguments(input),
        });
        call
    }

    /// A non-empty argument fragment arrived for `block`: its call index, or `None` when the
    /// block is not an open tool call (a `server_tool_use` block, say, which runs at Anthropic).
    pub fn fragment(&mut self, block: u64) -> Option<u64> {
        let open = self.open.iter_mut().find(|open| open.block == block)?;
        open.streamed = true;
        Some(open.call)
    }

    /// `block` stopped: the arguments its call still needs, if it is a tool call that streamed
    /// none.
    pub fn stop(&mut self, block: u64) -> Option<Pending> {
        let at = self.open.iter().position(|open| open.block == block)?;
        pending(self.open.remove(at))
    }

    /// The message ends: what every block left open still needs, in the order they started.
    pub fn stop_all(&mut self) -> Vec<Pending> {
        self.open.drain(..).filter_map(pending).collect()
    }
}

fn pending(open: OpenCall) -> Option<Pending> {
    (!open.streamed).then(|| Pending {
        call: open.call,
        arguments: open.given.unwrap_or_else(|| "{}".to_owned()),
    })
}

fn given_arguments(input: Option<&RawValue>) -> Option<String> {
    let input = input.filter(|raw| raw.get() != "null")?;
    Some(compact(input.get())).filter(|text| text != "{}")
}

/// The `arguments` text of a call whose `input` came whole (a non-streaming body): its compact
/// JSON, `"{}"` when missing or null.
pub fn arguments_json(input: Option<&RawValue>) -> String {
    given_arguments(input).unwrap_or_else(|| "{}".to_owned())
}

/// The call's id: Anthropic's `toolu_...`, or for a block without one an id derived from the
/// response id (the core draws no random numbers).
pub fn call_id(given: Option<&str>, response_id: &str, call: u64) -> String {
    match given {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => format!("call_{response_id}_{call}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn calls_are_counted_over_tool_blocks_only() {
        let mut tools = ToolBlocks::default();
        let empty = raw("{}");
        assert_eq!(tools.start(1, Some(&empty)), 0);
        assert_eq!(tools.fragment(1), Some(0));
        assert_eq!(tools.fragment(0), None, "not a tool block");
        assert!(tools.stop(1).is_none(), "streamed its own arguments");
        assert_eq!(tools.start(3, Some(&empty)), 1);
        let pending = tools.stop(3).unwrap();
        assert_eq!((pending.call, pending.arguments.as_str()), (1, "{}"));
        assert!(tools.stop(3).is_none());
    }

    #[test]
    fn whole_input_is_the_arguments_unless_fragments_came() {
        let mut tools = ToolBlocks::default();
        let given = raw(r#"{ "city" : "Paris \"FR\"", "days": [1, 2.50] }"#);
        tools.start(0, Some(&given));
        tools.start(1, Some(&given));
        tools.fragment(1);
        tools.start(2, None);
        let left: Vec<(u64, String)> = tools
            .stop_all()
            .into_iter()
            .map(|p| (p.call, p.arguments))
            .collect();
        assert_eq!(
            left,
            vec![
                (0, r#"{"city":"Paris \"FR\"","days":[1,2.50]}"#.to_owned()),
                (2, "{}".to_owned()),
            ]
        );
    }

    #[test]
    fn body_arguments_and_ids() {
        assert_eq!(arguments_json(Some(&raw(r#"{"a": {}}"#))), r#"{"a":{}}"#);
        assert_eq!(arguments_json(Some(&raw("null"))), "{}");
        assert_eq!(arguments_json(None), "{}");
        assert_eq!(call_id(Some("toolu_1"), "r", 0), "toolu_1");
        assert_eq!(call_id(Some(""), "r", 2), "call_r_2");
    }
}
