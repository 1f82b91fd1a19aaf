//! Mistral calls: `[TOOL_CALLS] [{"name": "f", "arguments": {...}}, ...]` (with or without the
//! space), or the newer tokenizers' `[TOOL_CALLS]f[ARGS]{...}` once per call. `[TOOL_CALLS]` is
//! a control token that a server may drop from the text as special; so an answer that starts
//! with `[` is read as the calls array too (and goes out as content if it is not one).

use super::call::{ArgumentsObject, CallObject};
use super::{lead, AfterCall, Core, Lead};
use crate::text::TextSink;

const MARKER: &str = "[TOOL_CALLS]";
const ARGS: &str = "[ARGS]";
/// Longer than any function name: markup that does not reach `[ARGS]` by then is not a call.
const MAX_NAME: usize = 256;

#[derive(Default)]
enum State {
    #[default]
    Start,
    /// At the start or after calls: whitespace may come before `[TOOL_CALLS]`.
    Lead {
        after_call: bool,
    },
    /// Text: looking for `[TOOL_CALLS]`.
    Text,
    /// After `[TOOL_CALLS]`: an array, one object, or a name and `[ARGS]`.
    Open,
    /// After `[` or `,` in the array: a call object.
    Element,
    Call {
        call: Box<CallObject>,
        in_array: bool,
    },
    /// After a call in the array: `,` or `]`.
    Next,
    /// A name before `[ARGS]`.
    Name(String),
    Arguments(Box<ArgumentsObject>),
}

#[derive(Default)]
pub struct Mistral {
    state: State,
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

impl Mistral {
    pub fn run(&mut self, core: &mut Core, mut rest: &str, sink: &mut impl TextSink) {
        while !rest.is_empty() {
            match &mut self.state {
                State::Start => self.state = State::Lead { after_call: false },
                State::Lead { after_call } => {
                    // The bare array is only looked for at the very start of the answer.
                    let markers: &[&str] = if *after_call {
                        &[MARKER]
                    } else {
                        &[MARKER, "["]
                    };
                    match lead(rest, markers, *after_call) {
                        Lead::Hold => return core.held.push_str(rest),
                        Lead::Marker { ws, which } => {
                            let (marker, next) = if which == 0 {
                                (MARKER, State::Open)
                            } else {
                                ("[", State::Element)
                            };
                            rest = core.take_marker(rest, ws, marker, !*after_call);
                            self.state = next;
                        }
                        Lead::Text { from } => {
                            rest = &rest[from..];
                            self.state = State::Text;
                        }
                    }
                }
                State::Text => match core.until_marker(rest, MARKER, sink) {
                    Some(after) => {
                        rest = after;
                        self.state = State::Open;
                    }
                    None => return,
                },
                State::Open => {
                    rest = core.take_whitespace(rest);
                    if let Some(after) = rest.strip_prefix('[') {
                        core.taken.push('[');
                        rest = after;
                        self.state = State::Element;
                    } else if rest.starts_with('{') {
                        self.state = State::Call {
                            call: Box::new(CallObject::new(core.calls)),
                            in_array: false,
                        };
                    } else if rest.starts_with(is_name_char) {
                        self.state = State::Name(String::new());
                    } else if !rest.is_empty() {
                        core.give_back("", sink);
                        self.state = State::Text;
                    }
                }
                State::Element => {
                    rest = core.take_whitespace(rest);
                    if rest.starts_with('{') {
                        self.state = State::Call {
                            call: Box::new(CallObject::new(core.calls)),
                            in_array: true,
                        };
                    } else if !rest.is_empty() {
                        core.give_back("", sink);
                        self.state = State::Text;
                    }
                }
                State::Call { call, in_array } => {
                    let in_array = *in_array;
                    match core.feed_call(call.as_mut(), rest, sink) {
                        AfterCall::More => return,
                        AfterCall::Ended { at, ok } => {
                            rest = &rest[at..];
                            self.state = match (ok, in_array) {
                                (true, true) => State::Next,
                                (true, false) => State::Lead { after_call: true },
                                (false, _) => State::Text,
                            };
                        }
                    }
                }
                State::Next => {
                    rest = rest.trim_start();
                    if let Some(after) = rest.strip_prefix(',') {
                        rest = after;
                        self.state = State::Element;
                    } else if let Some(after) = rest.strip_prefix(']') {
                        rest = after;
                        self.state = State::Lead { after_call: true };
                    } else if !rest.is_empty() {
                        self.state = State::Lead { after_call: true };
                    }
                }
                State::Name(name) => {
                    let end = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
                    name.push_str(&rest[..end]);
                    core.taken.push_str(&rest[..end]);
                    rest = &rest[end..];
                    if name.len() > MAX_NAME {
                        core.give_back("", sink);
                        self.state = State::Text;
                    } else if let Some(after) = rest.strip_prefix(ARGS) {
                        core.taken.push_str(ARGS);
                        rest = after;
                        let name = std::mem::take(name);
                        self.state =
                            State::Arguments(Box::new(ArgumentsObject::new(core.calls, name)));
                    } else if ARGS.starts_with(rest) && !rest.is_empty() {
                        return core.held.push_str(rest);
                    } else if !rest.is_empty() {
                        core.give_back("", sink);
                        self.state = State::Text;
                    }
                }
                State::Arguments(arguments) => {
                    match core.feed_call(arguments.as_mut(), rest, sink) {
                        AfterCall::More => return,
                        AfterCall::Ended { at, ok } => {
                            rest = &rest[at..];
                            self.state = if ok {
                                State::Lead { after_call: true }
                            } else {
                                State::Text
                            };
                        }
                    }
                }
            }
        }
    }

    pub fn finish(&mut self, core: &mut Core, sink: &mut impl TextSink) {
        match &mut self.state {
            State::Start | State::Text => core.release_held(false, sink),
            State::Lead { after_call } => core.release_held(*after_call, sink),
            State::Open | State::Element | State::Name(_) => core.give_back_held(sink),
            State::Call { call, .. } => core.end_in_call(call.as_mut(), sink),
            State::Arguments(arguments) => core.end_in_call(arguments.as_mut(), sink),
            // An array left open after complete calls: the calls stand.
            State::Next => {}
        }
        self.state = State::Start;
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{call, every_split, Parsed};
    use super::super::ToolFormat::Mistral;

    #[test]
    fn array_of_calls() {
        for text in [
            "[TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {\"x\": [1]}}, {\"name\": \"b\", \"arguments\": {}}]",
            "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"x\": [1]}},{\"name\": \"b\"}]",
            " [{\"name\": \"a\", \"arguments\": {\"x\": [1]}}, {\"name\": \"b\", \"arguments\": {}}]",
        ] {
            assert_eq!(
                every_split(Mistral, text),
                Parsed {
                    content: "".into(),
                    calls: vec![call(0, "a", "{\"x\": [1]}"), call(1, "b", "{}")],
                },
                "{text}"
            );
        }
    }

    #[test]
    fn name_and_args_shape_after_text() {
        let text = "Sure.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}[TOOL_CALLS]now[ARGS]{}";
        assert_eq!(
            every_split(Mistral, text),
            Parsed {
                content: "Sure.".into(),
                calls: vec![
                    call(0, "get_weather", "{\"city\": \"Paris\"}"),
                    call(1, "now", "{}")
                ],
            }
        );
    }

    #[test]
    fn lookalikes_are_content() {
        for text in [
            "[1] See the notes.",
            "[]",
            "a [TOOL_CALLS] nothing",
            "[TOOL_CALLS]f[ARG",
            "[TOOL_CALLS]f(x)",
            "x [TOOL_",
        ] {
            assert_eq!(every_split(Mistral, text), Parsed::text(text), "{text}");
        }
    }
}
