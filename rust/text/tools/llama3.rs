//! Llama 3.1+ JSON tool calling: the whole answer is `{"name": "f", "parameters": {...}}`
//! (`arguments` is accepted too), maybe after `<|python_tag|>`; several calls are separated by
//! `;`. The decision is made on the first non-whitespace output: anything but `{` or the tag
//! means a plain answer, and parsing is off for the rest of it. A JSON answer that is not a
//! call (`{"answer": 42}`) shows itself at its first key and goes out as content.

use super::call::CallObject;
use super::{content, lead, AfterCall, Core, Lead};
use crate::text::TextSink;

const PYTHON_TAG: &str = "<|python_tag|>";

#[derive(Default)]
enum State {
    /// Nothing but whitespace yet.
    #[default]
    Start,
    /// After `<|python_tag|>`: whitespace, then `{`.
    Tag,
    Call(Box<CallObject>),
    /// After a call: whitespace and `;`, then another call or the end.
    Between,
    /// A plain answer: everything is content.
    Off,
}

#[derive(Default)]
pub struct Llama3 {
    state: State,
}

impl Llama3 {
    pub fn run(&mut self, core: &mut Core, mut rest: &str, sink: &mut impl TextSink) {
        while !rest.is_empty() {
            match &mut self.state {
                State::Start | State::Between => {
                    let after_call = matches!(self.state, State::Between);
                    if after_call {
                        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
                        if rest.is_empty() {
                            return;
                        }
                    }
                    match lead(rest, &[PYTHON_TAG, "{"], after_call) {
                        Lead::Hold => return core.held.push_str(rest),
                        Lead::Marker { ws, which } => {
                            core.taken.push_str(&rest[..ws]);
                            rest = &rest[ws..];
                            if which == 0 {
                                core.taken.push_str(PYTHON_TAG);
                                rest = &rest[PYTHON_TAG.len()..];
                                self.state = State::Tag;
                            } else {
                                self.state = State::Call(Box::new(CallObject::new(core.calls)));
                            }
                        }
                        Lead::Text { from } => {
                            rest = &rest[from..];
                            self.state = State::Off;
                        }
                    }
                }
                State::Tag => {
                    rest = core.take_whitespace(rest);
                    if rest.starts_with('{') {
                        self.state = State::Call(Box::new(CallObject::new(core.calls)));
                    } else if !rest.is_empty() {
                        // E.g. a built-in tool's `brave_search.call(...)`: not ours to parse.
                        core.give_back("", sink);
                        self.state = State::Off;
                    }
                }
                State::Call(call) => match core.feed_call(call.as_mut(), rest, sink) {
                    AfterCall::More => return,
                    AfterCall::Ended { at, ok } => {
                        rest = &rest[at..];
                        self.state = if ok { State::Between } else { State::Off };
                    }
                },
                State::Off => return content(sink, rest),
            }
        }
    }

    pub fn finish(&mut self, core: &mut Core, sink: &mut impl TextSink) {
        match &mut self.state {
            State::Start | State::Off => content(sink, &core.held),
            // A partial tag after the calls is text.
            State::Between => content(sink, &core.held),
            State::Tag => core.give_back_held(sink),
            State::Call(call) => core.end_in_call(call.as_mut(), sink),
        }
        self.state = State::Start;
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{call, every_split, Parsed};
    use super::super::ToolFormat::Llama3;

    #[test]
    fn one_call_with_parameters() {
        let text = " {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Köln\"}}";
        assert_eq!(
            every_split(Llama3, text),
            Parsed {
                content: "".into(),
                calls: vec![call(0, "get_weather", "{\"city\": \"Köln\"}")],
            }
        );
    }

    #[test]
    fn python_tag_and_several_calls() {
        let text = "<|python_tag|>{\"type\": \"function\", \"name\": \"a\", \"arguments\": {\"n\": 1}}; {\"name\": \"b\", \"parameters\": {}}\n";
        assert_eq!(
            every_split(Llama3, text).calls,
            vec![call(0, "a", "{\"n\": 1}"), call(1, "b", "{}")]
        );
    }

    #[test]
    fn plain_and_json_answers_are_content() {
        for text in [
            "Hello {name}",
            "  {not a call",
            "{\"answer\": 42}",
            "{\"name\": \"Bob\", \"age\": 3}",
            "<|python_tag|>brave_search.call(query=\"x\")",
            "<|python",
            "{",
            "",
        ] {
            assert_eq!(every_split(Llama3, text), Parsed::text(text), "{text}");
        }
    }

    #[test]
    fn text_after_the_calls_is_content() {
        let parsed = every_split(
            Llama3,
            "{\"name\": \"a\", \"parameters\": {}}\n\nI called it.",
        );
        assert_eq!(parsed.calls, vec![call(0, "a", "{}")]);
        assert_eq!(parsed.content, "I called it.");
    }
}
