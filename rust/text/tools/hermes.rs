//! Hermes-style calls (Qwen 2.5/3, Hermes, ChatML templates): anywhere in the answer,
//! `<tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>`, several in a row for parallel
//! calls. A missing `</tool_call>` before the next call or the end is tolerated.

use super::call::CallObject;
use super::{lead, AfterCall, Core, Lead};
use crate::text::TextSink;

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";

#[derive(Default)]
enum State {
    /// At the start, or after a call (`after_call`): whitespace may come before a call.
    Lead {
        after_call: bool,
    },
    #[default]
    Start,
    /// Text: looking for `<tool_call>`.
    Text,
    /// After `<tool_call>`: whitespace, then the call's `{`.
    Open,
    Call(Box<CallObject>),
    /// After a call's JSON: whitespace, then `</tool_call>`.
    Close,
}

#[derive(Default)]
pub struct Hermes {
    state: State,
}

impl Hermes {
    pub fn run(&mut self, core: &mut Core, mut rest: &str, sink: &mut impl TextSink) {
        while !rest.is_empty() {
            match &mut self.state {
                State::Start => self.state = State::Lead { after_call: false },
                State::Lead { after_call } => match lead(rest, &[OPEN], *after_call) {
                    Lead::Hold => return core.held.push_str(rest),
                    Lead::Marker { ws, .. } => {
                        rest = core.take_marker(rest, ws, OPEN, !*after_call);
                        self.state = State::Open;
                    }
                    Lead::Text { from } => {
                        rest = &rest[from..];
                        self.state = State::Text;
                    }
                },
                State::Text => match core.until_marker(rest, OPEN, sink) {
                    Some(after) => {
                        rest = after;
                        self.state = State::Open;
                    }
                    None => return,
                },
                State::Open => {
                    rest = core.take_whitespace(rest);
                    if rest.starts_with('{') {
                        self.state = State::Call(Box::new(CallObject::new(core.calls)));
                    } else if !rest.is_empty() {
                        core.give_back("", sink);
                        self.state = State::Text;
                    }
                }
                State::Call(call) => match core.feed_call(call.as_mut(), rest, sink) {
                    AfterCall::More => return,
                    AfterCall::Ended { at, ok } => {
                        rest = &rest[at..];
                        self.state = if ok { State::Close } else { State::Text };
                    }
                },
                State::Close => {
                    let trimmed = rest.trim_start();
                    if let Some(after) = trimmed.strip_prefix(CLOSE) {
                        rest = after;
                        self.state = State::Lead { after_call: true };
                    } else if trimmed.is_empty() || CLOSE.starts_with(trimmed) {
                        return core.held.push_str(rest);
                    } else {
                        // No closing tag: the call still counts; what follows is read afresh.
                        self.state = State::Lead { after_call: true };
                    }
                }
            }
        }
    }

    pub fn finish(&mut self, core: &mut Core, sink: &mut impl TextSink) {
        match &mut self.state {
            State::Start | State::Text => core.release_held(false, sink),
            // Whitespace after a call is dropped; a partial marker is text.
            State::Lead { after_call } => core.release_held(*after_call, sink),
            State::Open => core.give_back_held(sink),
            State::Call(call) => core.end_in_call(call.as_mut(), sink),
            // A partial closing tag after a complete call is markup.
            State::Close => {}
        }
        self.state = State::Start;
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{call, every_split, Parsed};
    use super::super::ToolFormat::Hermes;

    #[test]
    fn one_call_after_text() {
        let text = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Hué 😀\", \"days\": [1, 2]}}\n</tool_call>";
        assert_eq!(
            every_split(Hermes, text),
            Parsed {
                content: "Let me check.\n".into(),
                calls: vec![call(
                    0,
                    "get_weather",
                    "{\"city\": \"Hué 😀\", \"days\": [1, 2]}"
                )],
            }
        );
    }

    #[test]
    fn parallel_calls_and_text_after() {
        let text = "\n<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"arguments\": {\"x\": \"</tool_call>\"}, \"name\": \"b\"}\n</tool_call>\n\nDone.";
        assert_eq!(
            every_split(Hermes, text),
            Parsed {
                content: "Done.".into(),
                calls: vec![
                    call(0, "a", "{}"),
                    call(1, "b", "{\"x\": \"</tool_call>\"}")
                ],
            }
        );
    }

    #[test]
    fn missing_or_string_arguments_and_no_close_tag() {
        let text = "<tool_call>{\"name\": \"now\"}<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": 1}\"}<tool_call>{\"name\": \"g\", \"arguments\": null}";
        assert_eq!(
            every_split(Hermes, text).calls,
            vec![
                call(0, "now", "{}"),
                call(1, "f", "{\"a\": 1}"),
                call(2, "g", "{}")
            ]
        );
    }

    #[test]
    fn text_that_only_looks_like_markup_is_content() {
        for text in [
            "a < b and <tool",
            "x <tool_call> not json",
            "<tool_call>{\"foo\": 1}</tool_call>",
            "<tool_call>{\"name\": 5}",
            "<tool_call>\n{\"name\": \"f\", \"argu",
            "  plain text  ",
        ] {
            assert_eq!(every_split(Hermes, text), Parsed::text(text), "{text}");
        }
    }

    #[test]
    fn a_call_that_breaks_after_its_header_is_closed() {
        // The arguments had started: the call counts, its JSON is closed, the rest is text.
        let parsed = every_split(
            Hermes,
            "<tool_call>{\"name\": \"f\", \"arguments\": {\"q\": \"ab\", \"n\": tru x</tool_call>",
        );
        assert_eq!(
            parsed.calls,
            vec![call(0, "f", "{\"q\": \"ab\", \"n\": true}")]
        );
        assert_eq!(parsed.content, " x</tool_call>");
        // Cut off by the end of the answer (max_tokens).
        let parsed = every_split(
            Hermes,
            "<tool_call>{\"name\": \"f\", \"arguments\": {\"q\": \"a\\u00",
        );
        assert_eq!(parsed.calls, vec![call(0, "f", "{\"q\": \"a\\u0000\"}")]);
        assert_eq!(parsed.content, "");
    }

    #[test]
    fn only_possible_markup_waits_and_arguments_stream() {
        use super::super::testing::Log;
        use super::super::ToolParser;
        let mut parser = ToolParser::new(Hermes);
        let mut log = Log::default();
        let mut step = |piece: &str, log: &mut Log| {
            parser.push(piece, log);
            std::mem::take(&mut log.0)
        };
        assert_eq!(step("Hi <tool", &mut log), ["content Hi "]);
        assert_eq!(step("_call>\n{\"name\": \"f\"", &mut log), [""; 0]);
        assert_eq!(
            step(", \"arguments\": {\"a\"", &mut log),
            ["call 0 f", "arguments 0 {\"a\""]
        );
        assert_eq!(step(": 1}}\n</tool", &mut log), ["arguments 0 : 1}"]);
        assert_eq!(step("_call> <b", &mut log), ["content <b"]);
        assert_eq!(step(" <tool_call>{\"x", &mut log), ["content  "]);
        parser.finish(&mut log);
        assert_eq!(log.0, ["content <tool_call>{\"x"]);
        assert_eq!(parser.calls(), 1);
    }
}
