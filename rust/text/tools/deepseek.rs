//! DeepSeek V3/R1 calls, one block of them anywhere in the answer:
//! `<｜tool▁calls▁begin｜>`, then per call `<｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME`, a
//! newline, the arguments object inside a json code fence (three backticks and `json` on the
//! line before it, three backticks after it) and `<｜tool▁call▁end｜>`, whitespace between
//! calls, and `<｜tool▁calls▁end｜>` after the last.
//!
//! V3.1's `<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{...}<｜tool▁call▁end｜>` (no type, no fence) is
//! read too. The markers are multi-byte (full-width bars, `▁`), which is harmless here: the text
//! stage works on whole characters.

use super::call::ArgumentsObject;
use super::{lead, scan, AfterCall, Core, Lead, Scan};
use crate::text::TextSink;

const CALLS_BEGIN: &str = "<｜tool▁calls▁begin｜>";
const CALLS_END: &str = "<｜tool▁calls▁end｜>";
const CALL_BEGIN: &str = "<｜tool▁call▁begin｜>";
const CALL_END: &str = "<｜tool▁call▁end｜>";
const SEP: &str = "<｜tool▁sep｜>";
const FENCE: &str = "```";
/// Longer than any function type or name: markup that does not end by then is not a call.
const MAX_NAME: usize = 256;

#[derive(Default)]
enum State {
    #[default]
    Start,
    /// At the start or after the calls: whitespace may come before the calls block.
    Lead {
        after_calls: bool,
    },
    /// Text: looking for `<｜tool▁calls▁begin｜>`.
    Text,
    /// Inside the block, before a call: `<｜tool▁call▁begin｜>` or `<｜tool▁calls▁end｜>`.
    Calls,
    /// After `<｜tool▁call▁begin｜>`: the type (V3) or the name (V3.1), up to `<｜tool▁sep｜>`.
    Kind(String),
    /// After `<｜tool▁sep｜>`: the name up to its newline (V3), or the arguments' `{` (V3.1).
    Name {
        kind: String,
        name: String,
    },
    /// After the name's newline: the opening fence, then the arguments' `{`.
    Fence {
        name: String,
        fenced: bool,
    },
    Arguments(Box<ArgumentsObject>),
    /// After the arguments: the closing fence, `<｜tool▁call▁end｜>`.
    AfterArguments,
}

#[derive(Default)]
pub struct DeepSeek {
    state: State,
}

impl DeepSeek {
    pub fn run(&mut self, core: &mut Core, mut rest: &str, sink: &mut impl TextSink) {
        while !rest.is_empty() {
            match &mut self.state {
                State::Start => self.state = State::Lead { after_calls: false },
                State::Lead { after_calls } => match lead(rest, &[CALLS_BEGIN], *after_calls) {
                    Lead::Hold => return core.held.push_str(rest),
                    Lead::Marker { ws, .. } => {
                        rest = core.take_marker(rest, ws, CALLS_BEGIN, !*after_calls);
                        self.state = State::Calls;
                    }
                    Lead::Text { from } => {
                        rest = &rest[from..];
                        self.state = State::Text;
                    }
                },
                State::Text => match core.until_marker(rest, CALLS_BEGIN, sink) {
                    Some(after) => {
                        rest = after;
                        self.state = State::Calls;
                    }
                    None => return,
                },
                // Before the block's first call `taken` holds its opening marker: whitespace
                // then is kept for giving back; after a call it is markup.
                State::Calls => match lead(rest, &[CALL_BEGIN, CALLS_END], core.taken.is_empty()) {
                    Lead::Hold => return core.held.push_str(rest),
                    Lead::Marker { ws, which: 0 } => {
                        rest = core.take_marker(rest, ws, CALL_BEGIN, true);
                        self.state = State::Kind(String::new());
                    }
                    Lead::Marker { ws, .. } => {
                        // Nothing taken is left to give back: an empty block is markup too.
                        core.taken.clear();
                        rest = &rest[ws + CALLS_END.len()..];
                        self.state = State::Lead { after_calls: true };
                    }
                    Lead::Text { from } => {
                        // Not a call: back to text (what the block took is content).
                        core.give_back("", sink);
                        rest = &rest[from..];
                        self.state = State::Text;
                    }
                },
                State::Kind(kind) => {
                    let (consumed, found) = match scan(rest, SEP) {
                        Scan::Marker(at) => (at, true),
                        Scan::Hold(at) => (at, false),
                        Scan::Text => (rest.len(), false),
                    };
                    kind.push_str(&rest[..consumed]);
                    core.taken.push_str(&rest[..consumed]);
                    if kind.contains(['\n', '<']) || kind.len() > MAX_NAME {
                        core.give_back("", sink);
                        rest = &rest[consumed..];
                        self.state = State::Text;
                    } else if found {
                        core.taken.push_str(SEP);
                        rest = &rest[consumed + SEP.len()..];
                        let kind = std::mem::take(kind);
                        self.state = State::Name {
                            kind,
                            name: String::new(),
                        };
                    } else {
                        return core.held.push_str(&rest[consumed..]);
                    }
                }
                State::Name { kind, name } => {
                    let end = rest.find(['\n', '{', '<']);
                    let consumed = end.unwrap_or(rest.len());
                    name.push_str(&rest[..consumed]);
                    core.taken.push_str(&rest[..consumed]);
                    rest = &rest[consumed..];
                    if end.is_none() {
                        if name.len() > MAX_NAME {
                            core.give_back("", sink);
                            self.state = State::Text;
                        }
                        continue;
                    }
                    let delimiter = rest.as_bytes()[0];
                    let (kind, found) = (std::mem::take(kind), std::mem::take(name));
                    let found = found.trim();
                    // V3.1 put the name before the separator and the arguments right after it.
                    let name = if found.is_empty() && delimiter == b'{' {
                        kind.trim().to_owned()
                    } else {
                        found.to_owned()
                    };
                    if name.is_empty() || delimiter == b'<' {
                        core.give_back("", sink);
                        self.state = State::Text;
                    } else if delimiter == b'{' {
                        self.state =
                            State::Arguments(Box::new(ArgumentsObject::new(core.calls, name)));
                    } else {
                        core.taken.push('\n');
                        rest = &rest[1..];
                        self.state = State::Fence {
                            name,
                            fenced: false,
                        };
                    }
                }
                State::Fence { name, fenced } => {
                    rest = core.take_whitespace(rest);
                    if rest.is_empty() {
                        return;
                    }
                    if !*fenced && rest.starts_with(FENCE) {
                        // "```json" or a bare "```": the language tag ends at the newline.
                        let Some(newline) = rest.find('\n') else {
                            return core.held.push_str(rest);
                        };
                        core.taken.push_str(&rest[..newline]);
                        rest = &rest[newline..];
                        *fenced = true;
                    } else if !*fenced && FENCE.starts_with(rest) {
                        return core.held.push_str(rest);
                    } else if rest.starts_with('{') {
                        let name = std::mem::take(name);
                        self.state =
                            State::Arguments(Box::new(ArgumentsObject::new(core.calls, name)));
                    } else {
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
                                State::AfterArguments
                            } else {
                                State::Text
                            };
                        }
                    }
                }
                State::AfterArguments => {
                    match lead(rest, &[FENCE, CALL_END, CALLS_END, CALL_BEGIN], true) {
                        Lead::Hold => return core.held.push_str(rest),
                        Lead::Marker { ws, which } => {
                            rest = &rest[ws..];
                            match which {
                                0 => rest = &rest[FENCE.len()..],
                                1 => {
                                    rest = &rest[CALL_END.len()..];
                                    self.state = State::Calls;
                                }
                                2 => {
                                    rest = &rest[CALLS_END.len()..];
                                    self.state = State::Lead { after_calls: true };
                                }
                                // The call's end marker was left out: the next call begins.
                                _ => self.state = State::Calls,
                            }
                        }
                        Lead::Text { from } => {
                            rest = &rest[from..];
                            self.state = State::Lead { after_calls: true };
                        }
                    }
                }
            }
        }
    }

    pub fn finish(&mut self, core: &mut Core, sink: &mut impl TextSink) {
        match &mut self.state {
            State::Start | State::Text => core.release_held(false, sink),
            State::Lead { after_calls } => core.release_held(*after_calls, sink),
            State::Calls | State::Kind(_) | State::Name { .. } | State::Fence { .. } => {
                // Taken markup (a block or call that never became one) is content; a partial
                // marker after a complete call is markup.
                if !core.taken.is_empty() {
                    core.give_back_held(sink);
                }
            }
            State::Arguments(arguments) => core.end_in_call(arguments.as_mut(), sink),
            State::AfterArguments => {}
        }
        self.state = State::Start;
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{call, every_split, Parsed};
    use super::super::ToolFormat::DeepSeek;

    const TWO_CALLS: &str = "Checking.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"東京\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>now\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";

    #[test]
    fn calls_block_after_text() {
        assert_eq!(
            every_split(DeepSeek, TWO_CALLS),
            Parsed {
                content: "Checking.".into(),
                calls: vec![
                    call(0, "get_weather", "{\"city\": \"東京\"}"),
                    call(1, "now", "{}")
                ],
            }
        );
    }

    #[test]
    fn v3_1_shape_and_text_after() {
        let text = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{\"a\": [1]}<｜tool▁call▁end｜><｜tool▁calls▁end｜>\nDone.";
        assert_eq!(
            every_split(DeepSeek, text),
            Parsed {
                content: "Done.".into(),
                calls: vec![call(0, "f", "{\"a\": [1]}")],
            }
        );
    }

    #[test]
    fn malformed_markup_is_content() {
        for text in [
            "<｜tool▁calls▁begin｜>oops",
            "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\nnot json",
            "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```js",
            "a <｜tool▁calls▁beg",
            "<｜tool",
        ] {
            assert_eq!(every_split(DeepSeek, text), Parsed::text(text), "{text}");
        }
    }

    #[test]
    fn cut_off_arguments_are_closed() {
        let cut = &TWO_CALLS[..TWO_CALLS.find("東").unwrap()];
        let parsed = every_split(DeepSeek, cut);
        assert_eq!(
            parsed.calls,
            vec![call(0, "get_weather", "{\"city\": \"\"}")]
        );
        assert_eq!(parsed.content, "Checking.");
    }
}
